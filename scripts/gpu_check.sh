#!/usr/bin/env bash
# For a machine with an NVIDIA GPU: installs tensorflow[and-cuda] into .venv-gpu, runs the cell
# equation tests and a short training and decoding test on the GPU, then measures every cell at
# the paper size (27750-word vocabularies): median seconds per training step (20 steps of a
# 3000-token batch) in float32, float16 and bfloat16 and beam-4 decoding ms per sentence (200
# sentences), printed beside the paper's table and written to runs/bench/gpu.json (which
# scripts/reproduce_table.sh then shows): python -m bench gpu-speed.
#   bash scripts/gpu_check.sh [--cells lrn gru] [--precisions float32] [other gpu-speed options]
# Without a GPU (no nvidia-smi, or it lists none) it prints "no GPU visible: nothing measured"
# and exits at once. Needs the prepared sample (made here if missing).
set -euo pipefail
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo "no GPU visible: nothing measured"
    exit 0
fi
source "$(dirname "${BASH_SOURCE[0]}")/gpu_env.sh"
gpu_venv "tensorflow[and-cuda]" "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt"
cd "$ROOT"
nvidia-smi -L
echo "== the cell equations and a short training and decoding run, on the GPU (IEEE float32:"
echo "   NVIDIA_TF32_OVERRIDE=0, the tests compare with numpy to 2e-5)"
NVIDIA_TF32_OVERRIDE=0 "$PY" -m pytest -q -p no:cacheprovider tests/test_rnns.py \
    tests/test_engine.py "tests/test_train.py::test_checkpoints_best_and_params"
if [ ! -f prepared/sample/test.bpe.en ]; then
    ZERO_PYTHON="$PY" bash scripts/prepare_sample.sh prepared/sample
fi
echo "== speed at the paper size"
exec "$PY" -m bench gpu-speed "$@"
