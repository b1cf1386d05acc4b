#!/usr/bin/env bash
# Beam-search decode a BPE'd input file with a trained model directory:
#   scripts/decode.sh MODEL_DIR INPUT OUTPUT [key=value ...]   (e.g. beam_size=8 n_best=4)
# Uses MODEL_DIR/best if present, else the latest checkpoint; output is BPE'd like the input.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 MODEL_DIR INPUT OUTPUT [key=value ...]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
run_mode test "$1" "input=$2" "output=$3" "${@:4}"
