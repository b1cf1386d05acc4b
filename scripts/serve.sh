#!/usr/bin/env bash
# Serve a trained model directory over HTTP: OpenNMT-py's REST API and a page at /.
#   scripts/serve.sh MODEL_DIR [--host 127.0.0.1] [--port 5000] [key=value ...]
# Raw text in, raw text out (the config's prep_dir tokenisation and BPE, beam search,
# detokenisation). It prints `serving on http://HOST:PORT` when ready (--port 0: any free
# port) and serves until Ctrl-C or SIGTERM. README "Translation server" has curl examples.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 MODEL_DIR [--host HOST] [--port PORT] [key=value ...]" >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
model="$1"
shift
sets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --host|--port)
            [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }
            sets+=("${1#--}=$2")
            shift 2
            ;;
        --host=*|--port=*) sets+=("${1#--}"); shift ;;
        *) sets+=("$1"); shift ;;
    esac
done
run_mode serve "$model" "${sets[@]}"
