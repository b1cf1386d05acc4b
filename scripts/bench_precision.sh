#!/usr/bin/env bash
# bfloat16 against float32 (see scripts/bench_precision.py): plain matrix products, then the
# training step and beam-search decoding of LRN and GRU at the sample and the paper size, on one
# pinned core (BENCH_CORES).
# Needs the prepared sample (bash scripts/prepare_sample.sh prepared/sample) or --data DIR.
# Smoke run: BENCH_CELLS=lrn BENCH_SIZES=sample BENCH_ROUNDS=1 BENCH_STEPS=1 \
#     BENCH_DECODE_SENTENCES=5 BENCH_TOKENS=300 BENCH_MATMUL_ROUNDS=1 bash scripts/bench_precision.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" scripts/bench_precision.py "$@"
