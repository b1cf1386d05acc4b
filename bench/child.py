"""The one child-process protocol of the benchmarks: a measurement that needs a fresh process
(its own peak memory, its own TensorFlow settings, eager rather than graph mode, pinned cores)
runs as

    python -m bench.child MODULE FUNCTION JSON_KWARGS [JSON_TF_ENV]

which imports MODULE, calls its module-level FUNCTION(**kwargs) and prints the JSON-able
result as the last stdout line. Every option reaches the child as an argument, never through
the environment.
"""

import importlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STDERR_TAIL = 3000  # characters of a failed child's stderr shown


def _name(function):
    """(module, name) of a module-level function, checked: the child looks it up by name."""
    module, name = function.__module__, function.__qualname__
    found = getattr(sys.modules.get(module), name, None) if module != "__main__" else None
    if found is not function:
        raise ValueError(
            f"run_in_child needs a module-level function of an importable module, "
            f"not {module}.{name}"
        )
    return module, name


def _describe(module, name, kwargs):
    shown = ", ".join(f"{k}={v!r}"[:80] for k, v in kwargs.items())
    return f"{module}.{name}({shown})"


def run_in_child(function, tf_env=None, **kwargs):
    """function(**kwargs) in a fresh `python -m bench.child` process; returns its result.
    tf_env: environment variables TensorFlow reads when it loads (set before it does, and
    passed as an argument like every option). A failing child raises SystemExit naming the
    call and showing the end of its stderr."""
    module, name = _name(function)
    cmd = [sys.executable, "-m", "bench.child", module, name, json.dumps(kwargs)]
    cmd += [json.dumps(tf_env or {})]
    # The child imports bench and the toolkit from this checkout wherever it was started.
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": ROOT + (os.pathsep + path if path else "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    what = _describe(module, name, kwargs)
    if proc.returncode != 0:
        raise SystemExit(
            f"{what} failed in its child process (exit {proc.returncode}); "
            f"the end of its stderr:\n{proc.stderr[-STDERR_TAIL:]}"
        )
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise SystemExit(
            f"{what}: its child process printed no JSON result; the end of its stdout:\n"
            f"{proc.stdout[-STDERR_TAIL:]}\nand stderr:\n{proc.stderr[-STDERR_TAIL:]}"
        ) from None


def main(argv):
    if len(argv) != 3:
        raise SystemExit("usage: python -m bench.child MODULE FUNCTION JSON_KWARGS [JSON_TF_ENV]")
    module, name, kwargs = argv
    function = getattr(importlib.import_module(module), name)
    result = function(**json.loads(kwargs))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    # Quiet TensorFlow's C++ start-up lines before the measured module imports it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if len(sys.argv) == 5:
        os.environ.update(json.loads(sys.argv.pop()))
    from zero import log

    log.import_tensorflow_quietly()
    main(sys.argv[1:])
