#!/usr/bin/env bash
# Beam-4 decoding speed of every cell at the sample size beside the paper's decode column
# (see scripts/bench_decode.py). Needs the prepared sample (bash scripts/prepare_sample.sh
# prepared/sample) or --data DIR; --model-root DIR decodes with the trained
# models DIR/<cell> (scripts/compare_cells.sh) or DIR/sample_<cell>.
# Smoke run: BENCH_CELLS="gru lrn" BENCH_SENTENCES=20 BENCH_RUNS=1 bash scripts/bench_decode.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" scripts/bench_decode.py "$@"
