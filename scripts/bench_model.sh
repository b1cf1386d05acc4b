#!/usr/bin/env bash
# Whole-model speed of every cell at the paper and the sample size: training step, beam-4
# decoding, peak memory, FLOPs and % of the machine's matmul peak: python -m bench model.
# Needs the prepared sample (bash scripts/prepare_sample.sh prepared/sample) or --data DIR.
# Smoke run: bash scripts/bench_model.sh --cells gru lrn --sizes sample --steps 1 --warmup 1 \
#     --decode-sentences 10 --tokens 300
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m bench model "$@"
