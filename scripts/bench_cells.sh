#!/usr/bin/env bash
# Times forward+backward of every rnns cell beside Keras's GRU/LSTM (see scripts/bench_cells.py).
# Quick smoke test: BENCH_SIZES=64 BENCH_RUNS=1 BENCH_WARMUP=1 bash scripts/bench_cells.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" scripts/bench_cells.py "$@"
