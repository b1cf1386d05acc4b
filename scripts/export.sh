#!/usr/bin/env bash
# Export a trained model directory as a TensorFlow SavedModel for serving:
#   scripts/export.sh MODEL_DIR EXPORT_DIR [key=value ...]   (e.g. beam_size=8 checkpoint=PREFIX)
# EXPORT_DIR must not exist (or be empty); TensorFlow Serving expects BASE/VERSION, e.g.
# exports/ende/1. Signature 'serving_default': BPE'd source strings -> translation, score.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 MODEL_DIR EXPORT_DIR [key=value ...]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
run_mode export "$1" "export_dir=$2" "${@:3}"
