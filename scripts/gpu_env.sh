# Sourced by gpu_ready.sh and gpu_check.sh: the GPU environment .venv-gpu, kept apart from
# .venv (env.sh installs tensorflow-cpu there). Sets ROOT and PY (.venv-gpu's python; with
# ZERO_GPU_PYTHON=/path/to/python that interpreter, nothing installed).
#   gpu_venv WHEEL REQUIREMENTS...: creates .venv-gpu if needed, installs WHEEL (tensorflow or
#   tensorflow[and-cuda]) at the version requirements.txt pins for tensorflow-cpu, and the
#   REQUIREMENTS files without tensorflow-cpu. pip leaves what is installed already alone.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
VENV="$ROOT/.venv-gpu"
PY="${ZERO_GPU_PYTHON:-$VENV/bin/python}"

gpu_venv() {
    local wheel="$1" version list
    shift
    [ -z "${ZERO_GPU_PYTHON:-}" ] || return 0
    version=$(sed -n 's/^tensorflow-cpu==\([0-9.]*\).*/\1/p' "$ROOT/requirements.txt")
    [ -n "$version" ] || { echo "error: no tensorflow-cpu==VERSION in requirements.txt" >&2; exit 1; }
    if [ ! -x "$PY" ]; then
        echo "creating virtual environment $VENV" >&2
        python3 -m venv "$VENV"
        "$PY" -m pip install --quiet --upgrade pip >&2
    fi
    list=$(mktemp)
    trap "rm -f '$list'" EXIT
    # `-r` lines are the requirements.txt given too; comments and tensorflow-cpu go.
    { echo "$wheel==$version"; grep -hv -e '^tensorflow-cpu' -e '^-r ' -e '^#' "$@"; } > "$list"
    echo "installing $wheel==$version and $(basename -a "$@" | tr '\n' ' ')into $VENV" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$list" >&2
    rm -f "$list"  # the callers exec, which skips the EXIT trap
    trap - EXIT
}
