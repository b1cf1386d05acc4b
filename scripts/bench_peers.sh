#!/usr/bin/env bash
# This project's sample GRU and LRN beside OpenNMT-tf 2.32's small GRU on the same prepared
# data and 3000-token batches: python -m bench peers. Installs OpenNMT-tf (with TensorFlow 2.13)
# into runs/peers/opennmt-venv, a benchmark's tool, not a dependency of the project.
# --budget SECONDS also trains each for that long, decodes and scores the test set.
# Smoke run: bash scripts/bench_peers.sh --steps 40 --cells lrn
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m bench peers "$@"
