"""The GPU checks without a GPU: scripts/gpu_check.sh and bench gpu-speed stop at once when no
GPU is visible; bench/kernels.py's lookup and classification on a hand-made graph and registry
(no GPU wheel needed); the host ops of the toolkit's graphs are placed on the CPU; bench model's
measurement on an explicit device."""

import argparse
import os
import shutil
import subprocess

import pytest
import tensorflow as tf
from helpers import ROOT, tiny_config, write_corpus
from tensorflow.core.framework import attr_value_pb2, graph_pb2, kernel_def_pb2, types_pb2

from bench import __main__ as bench_main
from bench import gpu_ready, gpu_speed, kernels, model

NO_GPU = "no GPU visible: nothing measured"


def _bin(tmp_path, nvidia_smi=None):
    """A PATH of grep only, plus a fake nvidia-smi script if given."""
    path = tmp_path / "bin"
    path.mkdir()
    os.symlink(shutil.which("grep"), path / "grep")
    if nvidia_smi is not None:
        (path / "nvidia-smi").write_text(f"#!{shutil.which('bash')}\n{nvidia_smi}\n")
        (path / "nvidia-smi").chmod(0o755)
    return str(path)


@pytest.mark.parametrize(
    "nvidia_smi", [None, "echo 'No devices were found'; exit 6"], ids=["missing", "no GPU"]
)
def test_gpu_check_without_a_gpu_measures_nothing(tmp_path, nvidia_smi):
    env = {"PATH": _bin(tmp_path, nvidia_smi), "HOME": str(tmp_path)}
    result = subprocess.run(
        [shutil.which("bash"), os.path.join(ROOT, "scripts", "gpu_check.sh")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == NO_GPU + "\n"
    assert not (tmp_path / ".venv-gpu").exists()


def test_gpu_speed_without_a_gpu_measures_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", _bin(tmp_path))
    assert bench_main.main(["gpu-speed", "--json", str(tmp_path / "gpu.json")]) == 0
    assert capsys.readouterr().out == NO_GPU + "\n"
    assert not (tmp_path / "gpu.json").exists()


# -- the kernel lookup on a hand-made registry and graph -------------------------------------


def _kernel(op, device, **allowed):
    k = kernel_def_pb2.KernelDef(op=op, device_type=device)
    for name, types in allowed.items():
        c = k.constraint.add(name=name)
        c.allowed_values.list.type.extend(types)
    return k


def _node(graph, name, op, device="", colocate=None, **types):
    node = graph.add(name=name, op=op, device=device)
    for attr, t in types.items():
        if isinstance(t, list):
            node.attr[attr].list.type.extend(t)
        else:
            node.attr[attr].type = t
    if colocate:
        node.attr["_class"].list.s.append(f"loc:@{colocate}".encode())
    return node


F, H, S = types_pb2.DT_FLOAT, types_pb2.DT_HALF, types_pb2.DT_STRING
REGISTRY = [
    _kernel("MatMul", "GPU", T=[F, H]),
    _kernel("Tanh", "GPU", T=[F]),
    _kernel("Const", "DEFAULT", dtype=[F]),
    *(_kernel(op, "DEFAULT") for op in ("Enter", "Exit", "Merge", "NextIteration", "LoopCond")),
    _kernel("StatelessWhile", "DEFAULT"),
    _kernel("Switch", "GPU", T=[F, types_pb2.DT_BOOL]),
]


def _graph():
    """The loops: a MatMul in float16 (has a kernel) and in bfloat16 (has none), a while loop
    whose body holds a float16 Tanh (none). Host ops: the string variable and its initial
    value (colocated), a checkpoint op, export's text; and a string variable off the CPU."""
    g = graph_pb2.GraphDef()
    _node(g.node, "dense/MatMul", "MatMul", "/device:GPU:0", T=H)
    _node(g.node, "dense_1/MatMul", "MatMul", "/device:GPU:0", T=types_pb2.DT_BFLOAT16)
    loop = _node(g.node, "rnn/while", "StatelessWhile", "/device:GPU:0", T=[F, F])
    loop.attr["body"].func.name = "body_fn"
    body = g.library.function.add()
    body.signature.name = "body_fn"
    _node(body.node_def, "Tanh", "Tanh", T=H)
    _node(g.node, "train_state", "VarHandleOp", "/device:CPU:0", dtype=S)
    _node(g.node, "train_state/Initializer/Const", "Const", colocate="train_state", dtype=S)
    _node(g.node, "save/SaveV2", "SaveV2", "/device:GPU:0", dtypes=[F, S])
    _node(g.node, "source_ids/StringSplit/StringSplitV2", "StringSplitV2", "/device:CPU:0")
    _node(g.node, "train_state_copy", "VarHandleOp", dtype=S)  # not placed on the CPU
    return g


def test_missing_kernels_and_where_they_come_from():
    registry = kernels.Registry(REGISTRY)
    missing, checked = kernels.missing_kernels(_graph(), registry)
    assert checked == 9  # the function's node too
    found = {m.name: m for m in missing}
    assert sorted(found) == [
        "dense_1/MatMul", "rnn/while/body_fn/Tanh", "save/SaveV2",
        "source_ids/StringSplit/StringSplitV2", "train_state", "train_state/Initializer/Const",
        "train_state_copy",
    ]  # fmt: skip
    assert found["rnn/while/body_fn/Tanh"].device == "/device:GPU:0"  # the caller's
    assert found["train_state/Initializer/Const"].device == "/device:CPU:0"  # colocated
    assert found["dense_1/MatMul"].dtypes == "T=bfloat16"
    parts = {name: kernels.host_part(m) for name, m in found.items()}
    assert parts["save/SaveV2"] == kernels.SAVER_PART
    assert parts["train_state"] == parts["train_state/Initializer/Const"]
    assert parts["train_state"].startswith("loop state")
    assert parts["source_ids/StringSplit/StringSplitV2"].startswith("export text")
    assert parts["train_state_copy"] is None  # a host op must be placed on the CPU
    loops, host = gpu_ready.summary(gpu_ready.rows({"train lrn float32": missing}))
    assert loops == {"MatMul", "Tanh", "VarHandleOp"}
    assert len(host) == 3


def test_lowered_loops_need_their_control_flow_kernels():
    registry = kernels.Registry([k for k in REGISTRY if k.op != "Merge"])
    missing, _ = kernels.missing_kernels(_graph(), registry)
    merges = [m for m in missing if m.op == "Merge"]
    assert [(m.lowered_from, m.dtypes) for m in merges] == [("StatelessWhile", "T=float32")] * 2


def test_kernel_labels_and_list_attrs():
    labelled = _kernel("MatMul", "GPU", T=[F])
    labelled.label = "special"
    attrs = {"T": attr_value_pb2.AttrValue(type=F)}
    assert not kernels.matches(labelled, attrs)
    assert kernels.matches(labelled, {**attrs, "_kernel": attr_value_pb2.AttrValue(s=b"special")})
    listed = _kernel("IdentityN", "GPU", T=[F, H])
    both = attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(type=[F, H]))
    with_string = attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(type=[F, S]))
    assert kernels.matches(listed, {"T": both})
    assert not kernels.matches(listed, {"T": with_string})


# -- the toolkit's graphs ---------------------------------------------------------------------


def test_every_gpu_ready_graph_has_a_valid_config(tmp_path):
    args = argparse.Namespace(
        graphs=list(gpu_ready.GRAPHS), cells=["lrn", "gru"], precisions=["float32", "float16"]
    )
    files = gpu_ready.Files(str(tmp_path))
    jobs = list(gpu_ready.jobs(args))
    assert len(jobs) == 2 * 2 * (2 + 5 + 1) + 2 + len(gpu_ready.VARIANTS) * 2 * 2
    assert len({label for label, _, _ in jobs}) == len(jobs)
    for _, _, overrides in jobs:
        files.config(overrides)


def test_host_ops_are_placed_on_the_cpu(tmp_path):
    """The string variable of the training loop and export's text processing."""
    from zero.train_graph import TrainGraph

    with tf.Graph().as_default() as graph, tf.device("/gpu:0"):
        TrainGraph(tiny_config(), 20, 20)
    state = [op for op in graph.get_operations() if op.name.startswith("train_state")]
    assert {op.type for op in state} >= {"VarHandleOp", "Placeholder", "AssignVariableOp"}
    for op in state:  # the initial value is colocated with the variable
        assert "CPU" in op.device or op.colocation_groups() == [b"loc:@train_state"], op.name
    files = gpu_ready.Files(str(tmp_path))
    graph_def = gpu_ready.graph_def("export", {"cell": "lrn"}, files)
    text = [n for n in graph_def.node if n.name.startswith(("source_ids/", "target_text/"))]
    assert len(text) > 20 and all("CPU" in n.device for n in text)
    assert any(n.op == "StringSplitV2" for n in text)


# -- measuring on a device ---------------------------------------------------------------------


def test_measure_on_an_explicit_device(tmp_path):
    paths = write_corpus(str(tmp_path / "corpus"), n_train=60, n_dev=4)
    data = tmp_path / "data"
    data.mkdir()
    names = {"src_vocab": "vocab.en", "tgt_vocab": "vocab.de", "train_src": "train.bpe.en",
             "train_tgt": "train.bpe.de", "dev_src": "test.bpe.en"}  # fmt: skip
    for key, name in names.items():
        shutil.copy(paths[key], data / name)
    sets = ["hidden_size=8", "embed_size=8", "num_encoder_layers=1", "num_decoder_layers=1",
            "max_decode_extra=2", "precision=bfloat16"]  # fmt: skip
    r = model.measure(
        "lrn", "sample", str(data), steps=1, warmup=0, tokens=30, decode_sentences=3,
        decode_runs=1, sets=sets, threads=1, device="/cpu:0",
    )  # fmt: skip
    assert r["train_s"] > 0 and r["decode_ms"] > 0 and r["decode_sentences"] == 3
    if not tf.config.list_physical_devices("GPU"):
        with pytest.raises(SystemExit, match="sees no GPU"):
            model.check_device("/gpu:0")


def test_gpu_speed_table(capsys):
    results = {
        "gru": {"float32": {"train_s": 2.0, "decode_ms": 40.0}, "bfloat16": {"error": "OOM"}},
        "lrn": {"float32": {"train_s": 1.0, "decode_ms": 32.0}, "bfloat16": {"train_s": 0.5}},
    }
    gpu_speed.print_table(results, ["float32", "bfloat16"])
    lines = capsys.readouterr().out.splitlines()
    train = lines[lines.index("seconds per training step (x: speedup over GRU in the same "
                              "column)") + 2 :][:2]  # fmt: skip
    assert train[0].split() == ["GRU", "2.67", "(1.00x)", "2.00", "(1.00x)", "-"]
    assert train[1].split() == ["LRN", "0.99", "(2.70x)", "1.00", "(2.00x)", "0.50"]
    assert lines[-1].split() == ["LRN", "36.50", "(1.24x)", "32.00", "(1.25x)", "-"]
