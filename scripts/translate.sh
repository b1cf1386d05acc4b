#!/usr/bin/env bash
# Translate raw text with a trained model directory, streaming line by line:
#   scripts/translate.sh MODEL_DIR [key=value ...] < raw.en > raw.de
#   scripts/translate.sh MODEL_DIR input=FILE output=FILE beam_size=8
# Applies the tokenisation and BPE of the config's prep_dir, decodes (best/ if present, else
# the latest checkpoint) and detokenizes; each line is answered as soon as it is read.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 MODEL_DIR [key=value ...]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
model="$1"; shift
[ -f "$model/config.yaml" ] || { echo "error: $model/config.yaml not found (not a model directory)" >&2; exit 1; }
sets=(--set "output_dir=$model")
for kv in "$@"; do sets+=(--set "$kv"); done
exec "$PY" "$ROOT/run.py" --mode translate --config "$model/config.yaml" "${sets[@]}"
