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
from zero import onednn

# A fresh interpreter: TensorFlow reads its switch once, when it loads.
PROBE = """
import json, sys
from zero import config, onednn
setting = config.peek(sys.argv[1] or None, sys.argv[3:], "cpu_kernels")
loaded = "tensorflow" in sys.modules
chosen = onednn.select(setting, sys.argv[2])
import tensorflow as tf
v1 = tf.compat.v1
v1.disable_eager_execution()
x = v1.placeholder(tf.float32, [4, 8])
y = tf.matmul(x, tf.ones([8, 8]))
meta = v1.RunMetadata()
with v1.Session() as sess:
    sess.run(y, {x: [[1.0] * 8] * 4}, v1.RunOptions(trace_level=3), meta)
kernels = [n.timeline_label for d in meta.step_stats.dev_stats for n in d.node_stats]
mkl = any("_Mkl" in k for k in kernels if "MatMul" in k)
print(json.dumps([setting, loaded, chosen, onednn.chosen(), mkl]))
"""


def _probe(path, mode, *sets, variable=None):
    """[the key's value, TensorFlow loaded before select, what select set, chosen(), whether
    TensorFlow ran a matrix product on oneDNN] in a fresh interpreter; `variable`:
    TF_ENABLE_ONEDNN_OPTS as the user set it."""
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
    "mode, sets, setting, chosen, kernels, on",
    [
        ("serve", [], "auto", "0", "tensorflow", False),  # few sentences per step
        ("serve", ["cpu_kernels=onednn"], "onednn", "1", "onednn", True),
        ("train", ["cpu_kernels=tensorflow"], "tensorflow", "0", "tensorflow", False),
    ],
)
def test_the_key_switches_tensorflow_before_it_loads(mode, sets, setting, chosen, kernels, on):
    if on and platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("TensorFlow's x86 builds carry oneDNN; this one may not")
    assert _probe(None, mode, *sets) == [setting, False, chosen, kernels, on]


def test_auto_leaves_other_modes_and_a_set_variable_to_tensorflow(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cpu_kernels: auto\n", encoding="utf-8")
    assert _probe(str(path), "train")[:4] == ["auto", False, None, "default"]
    assert _probe(str(path), "serve", variable="1") == ["auto", False, None, "onednn", True]


def test_peek_takes_the_file_then_the_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cpu_kernels: onednn\nhidden_size: 8\n", encoding="utf-8")
    assert config_lib.peek(str(path), [], "cpu_kernels") == "onednn"
    assert config_lib.peek(str(path), ["cpu_kernels=tensorflow"], "cpu_kernels") == "tensorflow"
    assert config_lib.peek(None, [], "cpu_kernels") == "auto"
    # Unchecked: load rejects a wrong value with the usual one-line error.
    assert config_lib.peek(None, ["cpu_kernels=maybe"], "cpu_kernels") == "maybe"


@pytest.mark.parametrize(
    "setting, mode, value",
    [("auto", "serve", "0"), ("auto", "translate", None), ("onednn", "serve", "1"),
     ("tensorflow", "train", "0"), ("onednn", "test", "1")],
)  # fmt: skip
def test_switch_names_the_value_each_mode_gets(setting, mode, value, monkeypatch):
    monkeypatch.delenv(onednn.VARIABLE, raising=False)
    assert onednn.switch(setting, mode) == value
    # A switch the user set stays under auto, and only there.
    monkeypatch.setenv(onednn.VARIABLE, "1")
    assert onednn.switch(setting, mode) == (None if setting == "auto" else value)


def test_a_benchmark_child_gets_the_switch_before_tensorflow_loads():
    """bench serve measures the server's engine in a child with the server's kernels."""
    from bench.child import run_in_child

    for value, name in (("0", "tensorflow"), ("1", "onednn")):
        assert run_in_child(onednn.chosen, tf_env={onednn.VARIABLE: value}) == name
