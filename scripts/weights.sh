#!/usr/bin/env bash
# What an LRN/oLRN encoder layer attends to: token-weight heatmaps of a trained model.
#   scripts/weights.sh MODEL_DIR INPUT OUTDIR [key=value ...]   (e.g. direction=bw layer=1)
# INPUT is BPE'd like decode.sh's; OUTDIR gets per-sentence .npz files, PNGs and index.html.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 MODEL_DIR INPUT OUTDIR [key=value ...]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
run_mode weights "$1" "input=$2" "weights_dir=$3" "${@:4}"
