#!/usr/bin/env bash
# Whole-model speed of every cell at the paper and the sample size (see scripts/bench_model.py):
# training step, beam-4 decoding, peak memory, FLOPs and % of the machine's matmul peak.
# Needs the prepared sample (bash scripts/prepare_sample.sh prepared/sample) or --data DIR.
# Smoke run: BENCH_CELLS="gru lrn" BENCH_SIZES=sample BENCH_STEPS=1 BENCH_WARMUP=1 \
#     BENCH_DECODE_SENTENCES=10 BENCH_TOKENS=300 bash scripts/bench_model.sh --data DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" scripts/bench_model.py "$@"
