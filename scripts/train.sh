#!/usr/bin/env bash
# Train (or resume) a model: scripts/train.sh CONFIG [key=value ...]
# Rerunning the same command resumes from the last checkpoint in the config's output_dir.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 CONFIG [key=value ...]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
config="$1"; shift
sets=(); for kv in "$@"; do sets+=(--set "$kv"); done
exec "$PY" "$ROOT/run.py" --mode train --config "$config" "${sets[@]}"
