# Sourced by the other scripts: finds the checkout, creates .venv there if needed and installs
# requirements (again only when requirements*.txt change). Sets ROOT and PY.
# ZERO_PYTHON=/path/to/python skips the virtual environment (use an existing interpreter).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
if [ -n "${ZERO_PYTHON:-}" ]; then
    PY="$ZERO_PYTHON"
else
    VENV="$ROOT/.venv"
    PY="$VENV/bin/python"
    want="${ZERO_REQUIREMENTS:-requirements.txt}"
    stamp="$VENV/.installed-$(cat "$ROOT/requirements.txt" "$ROOT/$want" | sha1sum | cut -c1-12)"
    if [ ! -f "$stamp" ]; then
        if [ ! -x "$PY" ]; then
            echo "creating virtual environment $VENV" >&2
            python3 -m venv "$VENV"
        fi
        echo "installing $want into $VENV" >&2
        "$PY" -m pip install --quiet --upgrade pip >&2
        "$PY" -m pip install --quiet -r "$ROOT/$want" >&2
        touch "$stamp"
    fi
fi
