# Sourced by the other scripts: finds the checkout, creates .venv there if needed and installs
# requirements (again only when requirements*.txt change). Sets ROOT and PY.
# ZERO_PYTHON=/path/to/python skips the virtual environment (use an existing interpreter).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"  # TensorFlow's own log lines: run.py --verbose shows them
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

# run_mode MODE MODEL_DIR [key=value ...]: run.py in MODE with the model directory's saved
# config, output_dir=MODEL_DIR and every key=value as --set (the scripts that use a model).
run_mode() {
    local mode="$1" model="$2" kv
    shift 2
    [ -f "$model/config.yaml" ] || {
        echo "error: $model/config.yaml not found (not a model directory)" >&2
        exit 1
    }
    local sets=(--set "output_dir=$model")
    for kv in "$@"; do sets+=(--set "$kv"); done
    exec "$PY" "$ROOT/run.py" --mode "$mode" --config "$model/config.yaml" "${sets[@]}"
}
