#!/usr/bin/env bash
# The decoding engine on one trained model (--model DIR: every technique side by side), or
# beam-4 decoding speed of every cell beside the paper's decode column: python -m bench decode.
# Needs the prepared sample (bash scripts/prepare_sample.sh
# prepared/sample) or --data DIR; --model-root DIR decodes with the trained models DIR/<cell>
# (scripts/compare_cells.sh) or DIR/sample_<cell>.
# Smoke run: bash scripts/bench_decode.sh --cells gru lrn --sentences 20 --runs 1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m bench decode "$@"
