#!/usr/bin/env bash
# The translation server under load: N concurrent clients (default 8, one sentence per
# request) against `--mode serve` started on port 0, requests/s, sentences/s, p50/p99 latency,
# beside translate mode's batch throughput on the same sentences: python -m bench serve.
#   scripts/bench_serve.sh --model MODEL_DIR [--clients 8] [--sentences 400] [--url URL]
# Smoke run: bash scripts/bench_serve.sh --model runs/sample_lrn --sentences 40
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m bench serve "$@"
