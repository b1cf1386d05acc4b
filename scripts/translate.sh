#!/usr/bin/env bash
# Translate raw text with a trained model directory, streaming line by line:
#   scripts/translate.sh MODEL_DIR [key=value ...] < raw.en > raw.de
#   scripts/translate.sh MODEL_DIR input=FILE output=FILE beam_size=8
# Applies the tokenisation and BPE of the config's prep_dir, decodes (best/ if present, else
# the latest checkpoint) and detokenizes; each line is answered as soon as it is read.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 MODEL_DIR [key=value ...]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
run_mode translate "$@"
