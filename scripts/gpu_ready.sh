#!/usr/bin/env bash
# Proves from TensorFlow's kernel registry, without a GPU, that every op of the training step and
# the decoder loop (every cell; float32, float16, bfloat16; beam search, greedy, export) has a
# GPU kernel for its dtypes, and lists the host ops placed on the CPU by design:
# python -m bench gpu-ready in .venv-gpu, which this creates if needed with the GPU wheel
# (tensorflow, not tensorflow-cpu; it registers its GPU kernels even where no GPU is).
#   bash scripts/gpu_ready.sh [--cells lrn gru] [--precisions float32] [--graphs train beam export]
# Ends with: GPU kernels: 0 ops without a GPU kernel in the training and decoding loops (...)
# About 10 minutes on one core; details in runs/bench/gpu_ready.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_env.sh"
gpu_venv tensorflow "$ROOT/requirements.txt"
cd "$ROOT"
exec "$PY" -m bench gpu-ready "$@"
