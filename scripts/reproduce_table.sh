#!/usr/bin/env bash
# Prints the paper-versus-ours table (Markdown) from results earlier runs left behind:
#   bash scripts/bench_model.sh                          -> runs/bench/model.json
#   bash scripts/compare_cells.sh                        -> runs/compare/<cell>/
#   bash scripts/bench_decode.sh --model-root runs/compare -> runs/bench/decode.json
#   bash scripts/reproduce_table.sh [--bench DIR] [--compare DIR]
# Missing results show as "-" with the command that produces them: python -m bench table.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m bench table "$@"
