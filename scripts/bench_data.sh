#!/usr/bin/env bash
# Measures the training input pipeline: start-up time, batches/s, peak memory, restore time,
# on the prepared sample corpus and a synthetic 4.5M-pair corpus (generated once in WORKDIR,
# ~1.5 GB): python -m bench data (--sample, --workdir, --pairs, --batch-tokens, ...).
#
#   scripts/bench_data.sh [--sample PREPARED_DIR] [--workdir /tmp/zero-bench] [--pairs N]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m bench data "$@"
