#!/usr/bin/env bash
# Prepares WMT14 English-German for training (the paper's setting).
#
#   scripts/prepare_wmt14.sh OUTDIR [--from DIR] [--test full|filtered] [--merges N]
#                            [other zero.prepare options]
#
# Train: Europarl v7 + Common Crawl + News Commentary v9 (~4.5M pairs); dev newstest2013;
# test newstest2014, full (3003 sentences, default) or filtered (2737).
# --from DIR   take the official archives from DIR instead of downloading them
# --test       full | filtered
# --merges     joint BPE merge operations (default 32000)
# Any other option goes to `python -m zero.prepare corpus` (--max-len, --ratio, --jobs, ...).
# Downloads go to OUTDIR/downloads, unpacked de-en files to OUTDIR/raw. Every step is skipped
# when its output is already complete, so rerunning after an interruption redoes only the rest.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "error: $*" >&2; exit 1; }

OUT=""
FROM=""
TEST=full
MERGES=32000
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage 0 ;;
        --from) [ $# -ge 2 ] || usage 2; FROM=$2; shift 2 ;;
        --test) [ $# -ge 2 ] || usage 2; TEST=$2; shift 2 ;;
        --merges) [ $# -ge 2 ] || usage 2; MERGES=$2; shift 2 ;;
        --*=*) EXTRA+=("$1"); shift ;;
        -*) [ $# -ge 2 ] || usage 2; EXTRA+=("$1" "$2"); shift 2 ;;  # every option takes a value
        *) [ -z "$OUT" ] || die "unexpected argument: $1"; OUT=$1; shift ;;
    esac
done
[ -n "$OUT" ] || { echo "error: OUTDIR missing" >&2; usage 2; }
case "$TEST" in
    full) TEST_ARCHIVE=test-full.tgz ;;
    filtered) TEST_ARCHIVE=test-filtered.tgz ;;
    *) die "--test must be full or filtered, not '$TEST'" ;;
esac
if [ -n "$FROM" ]; then
    [ -d "$FROM" ] || die "--from $FROM: no such directory"
    FROM=$(cd "$FROM" && pwd)
fi

source "$ROOT/scripts/env.sh"  # sets PY, installing into .venv first if needed

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DL=$OUT/downloads
RAW=$OUT/raw

url() {
    case "$1" in
        training-parallel-europarl-v7.tgz|training-parallel-commoncrawl.tgz)
            echo "http://www.statmt.org/wmt13/$1" ;;
        *) echo "http://www.statmt.org/wmt14/$1" ;;
    esac
}

# Path of an archive: from --from, or downloaded (resumable, renamed when complete).
fetch() {
    local name=$1
    if [ -n "$FROM" ]; then
        [ -f "$FROM/$name" ] || die "$FROM/$name not found (--from needs the official archive names)"
        echo "$FROM/$name"
        return
    fi
    mkdir -p "$DL"
    if [ -f "$DL/$name" ]; then
        echo "[download] already complete: $name" >&2
    else
        echo "[download] $(url "$name")" >&2
        if command -v wget >/dev/null; then
            wget -c -O "$DL/$name.part" "$(url "$name")" >&2 || die "download of $name failed"
        elif command -v curl >/dev/null; then
            curl -fL -C - -o "$DL/$name.part" "$(url "$name")" >&2 || die "download of $name failed"
        else
            die "neither wget nor curl is installed (or use --from DIR)"
        fi
        mv "$DL/$name.part" "$DL/$name"
    fi
    echo "$DL/$name"
}

# Unpacks only the members matching the patterns into RAW/DEST (renamed when complete).
unpack() {
    local name=$1 dest=$RAW/$2
    shift 2
    if [ -d "$dest" ]; then
        echo "[unpack] already complete: $name -> raw/$(basename "$dest")"
        return
    fi
    local archive
    archive=$(fetch "$name")
    echo "[unpack] $name -> raw/$(basename "$dest")"
    rm -rf "$dest.tmp"
    mkdir -p "$dest.tmp"
    tar -xzf "$archive" -C "$dest.tmp" --wildcards "$@" \
        || die "$archive: could not extract $* (corrupt or not the official archive?)"
    mv "$dest.tmp" "$dest"
}

# The one file called NAME under RAW/DIR.
member() {
    local found
    found=$(find "$RAW/$1" -type f -name "$2" | head -n 1)
    [ -n "$found" ] || die "$2 not found in the archive unpacked to raw/$1"
    echo "$found"
}

unpack training-parallel-europarl-v7.tgz europarl '*europarl-v7.de-en.*'
unpack training-parallel-commoncrawl.tgz commoncrawl '*commoncrawl.de-en.*'
unpack training-parallel-nc-v9.tgz nc-v9 '*news-commentary-v9.de-en.*'
unpack dev.tgz dev '*newstest2013*'
unpack "$TEST_ARCHIVE" "test-$TEST" '*newstest2014-deen-*'

# (assignments, not inline $(...), so that a missing member stops the script)
EP_EN=$(member europarl europarl-v7.de-en.en)
EP_DE=$(member europarl europarl-v7.de-en.de)
CC_EN=$(member commoncrawl commoncrawl.de-en.en)
CC_DE=$(member commoncrawl commoncrawl.de-en.de)
NC_EN=$(member nc-v9 news-commentary-v9.de-en.en)
NC_DE=$(member nc-v9 news-commentary-v9.de-en.de)
DEV_EN=$(member dev newstest2013.en)
DEV_DE=$(member dev newstest2013.de)
TEST_EN=$(member "test-$TEST" newstest2014-deen-src.en.sgm)
TEST_DE=$(member "test-$TEST" newstest2014-deen-ref.de.sgm)

exec "$PY" -m zero.prepare corpus "$OUT" --src-lang en --tgt-lang de \
    --train "$EP_EN" "$EP_DE" --train "$CC_EN" "$CC_DE" --train "$NC_EN" "$NC_DE" \
    --dev "$DEV_EN" "$DEV_DE" --test "$TEST_EN" "$TEST_DE" \
    --merges "$MERGES" ${EXTRA[@]+"${EXTRA[@]}"}
