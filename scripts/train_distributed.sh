#!/usr/bin/env bash
# Synchronous data-parallel training over several processes or machines, through TensorFlow's
# distributed runtime (a gRPC server per worker, gradients summed by collective all-reduce;
# see zero/parallel.py). Every worker trains on its own shard of the batches; worker 0, the
# chief, validates and writes the model directory. Rerun the same commands to resume.
#
#   scripts/train_distributed.sh CONFIG WORKERS INDEX [key=value ...]
#       This machine's worker. WORKERS: host:port of every worker, comma-separated, the same
#       list on every machine; INDEX: this machine's position in it (0 = the chief).
#   scripts/train_distributed.sh --local N CONFIG [key=value ...]
#       N workers on this machine, on free loopback ports (trying it out, measuring); if one
#       fails, the others are stopped.
#
# Two machines with two GPUs each (four devices, four batches of batch_tokens per update).
# Both need this checkout and the data at the same paths; the port must be open between them
# (the servers are unauthenticated: use a trusted network only):
#   on 10.0.0.1:  bash scripts/train_distributed.sh configs/wmt14_lrn.yaml \
#                     10.0.0.1:2222,10.0.0.2:2222 0 'devices=[/gpu:0, /gpu:1]'
#   on 10.0.0.2:  bash scripts/train_distributed.sh configs/wmt14_lrn.yaml \
#                     10.0.0.1:2222,10.0.0.2:2222 1 'devices=[/gpu:0, /gpu:1]'
# Each waits for the others (TensorFlow logs "connection refused ... Retrying" meanwhile).
# With TF_CONFIG set instead (as cluster managers do), scripts/train.sh CONFIG is enough.
set -euo pipefail
usage="usage: $0 CONFIG WORKERS INDEX [key=value ...]  or  $0 --local N CONFIG [key=value ...]"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

run_worker() {  # CONFIG WORKERS INDEX [key=value ...]
    local config="$1" workers="$2" index="$3"
    shift 3
    local sets=(--set "workers=[${workers//,/, }]" --set "worker_index=$index")
    for kv in "$@"; do sets+=(--set "$kv"); done
    exec "$PY" "$ROOT/run.py" --mode train --config "$config" "${sets[@]}"
}

if [ "${1:-}" != "--local" ]; then
    [ $# -ge 3 ] || { echo "$usage" >&2; exit 2; }
    config="$1" workers="$2" index="$3"
    shift 3
    run_worker "$config" "$workers" "$index" "$@"
    exit
fi

[ $# -ge 3 ] && [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "$usage" >&2; exit 2; }
n="$2" config="$3"
shift 3
workers=$("$PY" - "$n" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(",".join(f"127.0.0.1:{s.getsockname()[1]}" for s in socks))
EOF
)
pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT INT TERM
for ((i = 0; i < n; i++)); do
    # Worker 0 speaks on the terminal; the others' lines are prefixed with their index.
    if [ "$i" -eq 0 ]; then
        run_worker "$config" "$workers" "$i" "$@" &
    else
        run_worker "$config" "$workers" "$i" "$@" > >(sed -u "s/^/[worker $i] /") 2>&1 &
    fi
    pids+=("$!")
done
status=0
while [ "${#pids[@]}" -gt 0 ]; do
    for k in "${!pids[@]}"; do
        pid="${pids[$k]}"
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" || status=$?
            unset 'pids[k]'
            if [ "$status" -ne 0 ]; then
                echo "worker process $pid failed (exit $status): stopping the others" >&2
                exit "$status"
            fi
        fi
    done
    sleep 1
done
trap - EXIT
