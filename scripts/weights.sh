#!/usr/bin/env bash
# What an LRN/oLRN encoder layer attends to: token-weight heatmaps of a trained model.
#   scripts/weights.sh MODEL_DIR INPUT OUTDIR [key=value ...]   (e.g. direction=bw layer=1)
# INPUT is BPE'd like decode.sh's; OUTDIR gets per-sentence .npz files, PNGs and index.html.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 MODEL_DIR INPUT OUTDIR [key=value ...]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
model="$1" input="$2" outdir="$3"; shift 3
[ -f "$model/config.yaml" ] || { echo "error: $model/config.yaml not found (not a model directory)" >&2; exit 1; }
sets=(--set "output_dir=$model" --set "input=$input" --set "weights_dir=$outdir")
for kv in "$@"; do sets+=(--set "$kv"); done
exec "$PY" "$ROOT/run.py" --mode weights --config "$model/config.yaml" "${sets[@]}"
