#!/usr/bin/env bash
# Speed of every rnns cell beside Keras GRU/LSTM: python -m bench cells (options: --help).
# Smoke run: bash scripts/bench_cells.sh --sizes 64 --steps 5 --runs 1 --warmup 1 --cells lrn
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m bench cells "$@"
