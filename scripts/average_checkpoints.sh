#!/usr/bin/env bash
# Average the last N checkpoints of a model directory into MODEL_DIR/averaged/:
#   scripts/average_checkpoints.sh MODEL_DIR [N=5]
# Decode with it: scripts/decode.sh MODEL_DIR IN OUT checkpoint=$(cat MODEL_DIR/averaged/...)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 MODEL_DIR [N]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
run_mode average "$1" "average_last=${2:-5}"
