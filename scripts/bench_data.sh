#!/usr/bin/env bash
# Measures the training input pipeline: start-up time, batches/s, peak memory, restore time,
# on the prepared sample corpus and a synthetic 4.5M-pair corpus (generated once in WORKDIR,
# ~1.5 GB). Options go to scripts/bench_data.py (--workdir, --pairs, --batch-tokens, ...).
#
#   scripts/bench_data.sh [--sample PREPARED_DIR] [--workdir /tmp/zero-bench] [--pairs N]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" "$ROOT/scripts/bench_data.py" "$@"
