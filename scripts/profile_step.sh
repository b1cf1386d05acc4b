#!/usr/bin/env bash
# Where the time of one training step goes, by op type and model part: python -m bench profile.
#   bash scripts/profile_step.sh CELL [paper|sample] [--data DIR] [--timeline FILE] [--decode N]
# Smoke run: bash scripts/profile_step.sh lrn sample --runs 1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m bench profile "$@"
