import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # noqa: E402

from zero import log  # noqa: E402

log.import_tensorflow_quietly()  # its oneDNN start-up lines would end every test run's output
import tensorflow as tf  # noqa: E402

tf.compat.v1.disable_eager_execution()


@pytest.fixture
def graph():
    """A fresh default graph per test, so variable names never collide between tests."""
    g = tf.Graph()
    with g.as_default():
        yield g


def pytest_collection_modifyitems(config, items):
    """ZERO_FAST_TESTS=1 skips the tests marked slow (CI runs everything)."""
    if os.environ.get("ZERO_FAST_TESTS") == "1":
        skip = pytest.mark.skip(reason="slow; ZERO_FAST_TESTS=1")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)
