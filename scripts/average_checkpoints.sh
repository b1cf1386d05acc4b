#!/usr/bin/env bash
# Average the last N checkpoints of a model directory into MODEL_DIR/averaged/:
#   scripts/average_checkpoints.sh MODEL_DIR [N=5]
# Decode with it: scripts/decode.sh MODEL_DIR IN OUT checkpoint=$(cat MODEL_DIR/averaged/...)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 MODEL_DIR [N]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
model="$1"; n="${2:-5}"
[ -f "$model/config.yaml" ] || { echo "error: $model/config.yaml not found (not a model directory)" >&2; exit 1; }
exec "$PY" "$ROOT/run.py" --mode average --config "$model/config.yaml" \
    --set "output_dir=$model" --set "average_last=$n"
