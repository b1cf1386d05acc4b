"""The one logging path: every progress and status line of the toolkit goes through here, to
stderr (stdout stays for data: translations, scores, tables).

TensorFlow's own log lines (its C++ runtime's "I0000 ..." / "E0000 ..." lines and its Python
warnings) are noise to a user watching training; they stay quiet unless `setup(verbose=True)`
(run.py --verbose). The C++ level is read once, when TensorFlow loads, so `setup` must run
before the first `import tensorflow` to affect it. Some lines ignore that level: on CPUs where
TensorFlow turns oneDNN on by itself (AVX-512 VNNI or bfloat16, AMX) it announces so while
loading, before its logger is set up ("I0000 ... port.cc ... oneDNN custom operations are
on"). `setup` therefore loads TensorFlow itself with the process's stderr pointed at /dev/null.
"""

import contextlib
import logging
import os
import sys

_logger = logging.getLogger("zero")


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the moment (pytest swaps it per test)."""

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


_handler = _Stderr()
_handler.setFormatter(logging.Formatter("%(message)s"))
_logger.addHandler(_handler)
_logger.setLevel(logging.INFO)
_logger.propagate = False


def setup(verbose=False):
    """Quiet TensorFlow (or, verbose, show all of its lines and our debug lines)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"
    _logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    import_tensorflow_quietly()
    if "tensorflow" in sys.modules:
        quiet_python_side(verbose)


def import_tensorflow_quietly():
    """Load TensorFlow (if not loaded yet) without its start-up lines on stderr, unless
    TF_CPP_MIN_LOG_LEVEL is 0 (asked for every line: verbose); then it stays unloaded here."""
    if "tensorflow" not in sys.modules and os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0":
        with _stderr_to_devnull():
            import tensorflow  # noqa: F401


@contextlib.contextmanager
def _stderr_to_devnull():
    """File descriptor 2 (what C++ writes to) points at /dev/null inside the block. An error
    raised inside still reaches the user: the descriptor is restored before it propagates."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_python_side(verbose=False):
    """TensorFlow's Python logger (deprecation warnings and the like)."""
    import tensorflow as tf

    tf.get_logger().setLevel("DEBUG" if verbose else "ERROR")


def info(message):
    _logger.info(message)


def warning(message):
    _logger.warning(message)


def debug(message):
    _logger.debug(message)
