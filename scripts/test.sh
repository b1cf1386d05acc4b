#!/usr/bin/env bash
# Runs the test suite (installing into .venv first if needed). Extra arguments go to pytest.
# ZERO_FAST_TESTS=1 skips the slow end-to-end tests (CI runs them).
set -euo pipefail
ZERO_REQUIREMENTS=requirements-dev.txt
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
"$PY" -m ruff check . && "$PY" -m ruff format --check .
# Two worker processes: graph building is single-threaded Python, and CI has 2 cores.
exec "$PY" -m pytest -q -p no:cacheprovider -n "${ZERO_TEST_WORKERS:-2}" "$@"
