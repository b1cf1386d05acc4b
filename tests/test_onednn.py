"""The `cpu_kernels` config key reaches TensorFlow: run.py reads it (config.peek, without loading
TensorFlow) and zero/onednn.py sets TensorFlow's switch before TensorFlow loads."""

import json
import os
import platform
import subprocess
import sys

import pytest
from helpers import ROOT

from zero import config as config_lib

# A fresh interpreter: TensorFlow reads its switch once, when it loads.
PROBE = """
import json, sys
from zero import config, onednn
setting = config.peek(sys.argv[1] or None, sys.argv[3:], "cpu_kernels")
loaded = "tensorflow" in sys.modules
chosen = onednn.select(setting, sys.argv[2])
import tensorflow
print(json.dumps([setting, loaded, chosen, onednn.enabled()]))
"""


def _probe(path, mode, *sets, variable=None):
    """[the key's value, TensorFlow loaded before select, what select set, oneDNN on] in a
    fresh interpreter; `variable`: TF_ENABLE_ONEDNN_OPTS as the user set it."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["PYTHONPATH"] = ROOT
    if variable is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = variable
    result = subprocess.run(
        [sys.executable, "-c", PROBE, path or "", mode, *sets],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "mode, sets, setting, chosen, on",
    [
        ("serve", [], "auto", "0", False),  # few sentences per step: TensorFlow's kernels
        ("serve", ["cpu_kernels=onednn"], "onednn", "1", True),
        ("train", ["cpu_kernels=tensorflow"], "tensorflow", "0", False),
    ],
)
def test_the_key_switches_tensorflow_before_it_loads(mode, sets, setting, chosen, on):
    if on and platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("TensorFlow's x86 builds carry oneDNN; this one may not")
    assert _probe(None, mode, *sets) == [setting, False, chosen, on]


def test_auto_leaves_other_modes_and_a_set_variable_to_tensorflow(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cpu_kernels: auto\n", encoding="utf-8")
    assert _probe(str(path), "train")[:3] == ["auto", False, None]
    assert _probe(str(path), "serve", variable="1") == ["auto", False, None, True]


def test_peek_takes_the_file_then_the_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cpu_kernels: onednn\nhidden_size: 8\n", encoding="utf-8")
    assert config_lib.peek(str(path), [], "cpu_kernels") == "onednn"
    assert config_lib.peek(str(path), ["cpu_kernels=tensorflow"], "cpu_kernels") == "tensorflow"
    assert config_lib.peek(None, [], "cpu_kernels") == "auto"
    # Unchecked: load rejects a wrong value with the usual one-line error.
    assert config_lib.peek(None, ["cpu_kernels=maybe"], "cpu_kernels") == "maybe"
