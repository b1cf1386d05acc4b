"""The one logging path: every progress and status line of the toolkit goes through here, to
stderr (stdout stays for data: translations, scores, tables).

TensorFlow's own log lines (its C++ runtime's "I0000 ..." / "E0000 ..." lines and its Python
warnings) are noise to a user watching training; they stay quiet unless `setup(verbose=True)`
(run.py --verbose). The C++ level is read once, when TensorFlow loads, so `setup` must run
before the first `import tensorflow` to affect it.
"""

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
    if "tensorflow" in sys.modules:
        quiet_python_side(verbose)


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
