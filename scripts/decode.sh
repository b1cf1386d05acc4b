#!/usr/bin/env bash
# Beam-search decode a BPE'd input file with a trained model directory:
#   scripts/decode.sh MODEL_DIR INPUT OUTPUT [key=value ...]   (e.g. beam_size=8 n_best=4)
# Uses MODEL_DIR/best if present, else the latest checkpoint; output is BPE'd like the input.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 MODEL_DIR INPUT OUTPUT [key=value ...]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
model="$1" input="$2" output="$3"; shift 3
[ -f "$model/config.yaml" ] || { echo "error: $model/config.yaml not found (not a model directory)" >&2; exit 1; }
sets=(--set "output_dir=$model" --set "input=$input" --set "output=$output")
for kv in "$@"; do sets+=(--set "$kv"); done
exec "$PY" "$ROOT/run.py" --mode test --config "$model/config.yaml" "${sets[@]}"
