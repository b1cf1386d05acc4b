#!/usr/bin/env bash
# Score decoder output against a reference.
#   scripts/score.sh HYP REF [--lang de] [--split-hyphens]
# HYP: model output as decoded (BPE subwords, Moses-tokenized). REF: raw detokenized reference.
# Removes BPE, detokenizes, and prints sacreBLEU with its signature, chrF2, and the paper's
# case-insensitive tokenized BLEU (--split-hyphens: compounds split as in Google-style papers).
set -euo pipefail

usage() {
    echo "usage: $0 HYP REF [--lang LANG] [--split-hyphens]" >&2
    exit 2
}

[[ $# -ge 2 ]] || usage
hyp=$1
ref=$2
shift 2
for f in "$hyp" "$ref"; do
    [[ -f $f ]] || { echo "error: $f: no such file" >&2; exit 1; }
done

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec "$PY" -m zero.evaluate "$hyp" "$ref" --raw-hyp "$@"
