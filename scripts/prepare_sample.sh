#!/usr/bin/env bash
# Prepares the bundled English-German sample corpus (data/) for training:
# sacremoses normalisation + tokenisation, cleaning, joint BPE, vocabularies.
#
#   scripts/prepare_sample.sh OUTDIR [--merges N] [--max-pairs N] [other zero.prepare options]
#
# --merges     BPE merge operations (default 8000)
# --max-pairs  use only the first N training pairs (quick smoke runs)
# Any other option goes to `python -m zero.prepare corpus` (--max-len, --ratio, --jobs, ...).
# Rerunning with the same OUTDIR skips the stages already complete.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

OUT=""
MERGES=8000
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage 0 ;;
        --merges) [ $# -ge 2 ] || usage 2; MERGES=$2; shift 2 ;;
        --merges=*) MERGES=${1#*=}; shift ;;
        --*=*) EXTRA+=("$1"); shift ;;
        -*) [ $# -ge 2 ] || usage 2; EXTRA+=("$1" "$2"); shift 2 ;;  # every option takes a value
        *) if [ -z "$OUT" ]; then OUT=$1; else EXTRA+=("$1"); fi; shift ;;
    esac
done
[ -n "$OUT" ] || { echo "error: OUTDIR missing" >&2; usage 2; }

source "$ROOT/scripts/env.sh"  # sets PY, installing into .venv first if needed
D=$ROOT/data
exec "$PY" -m zero.prepare corpus "$OUT" --src-lang en --tgt-lang de \
    --train "$D/train.en.gz" "$D/train.de.gz" \
    --dev "$D/dev.en.gz" "$D/dev.de.gz" \
    --test "$D/test.en.gz" "$D/test.de.gz" \
    --merges "$MERGES" ${EXTRA[@]+"${EXTRA[@]}"}
