#!/usr/bin/env bash
# bfloat16 against float32: plain matrix products, then the training step and beam-search
# decoding of LRN and GRU at the sample and the paper size, on one pinned core (--cores):
# python -m bench precision. Needs the prepared sample or --data DIR.
# Smoke run: bash scripts/bench_precision.sh --cells lrn --sizes sample --rounds 1 --steps 1 \
#     --decode-sentences 5 --tokens 300 --matmul-rounds 1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m bench precision "$@"
