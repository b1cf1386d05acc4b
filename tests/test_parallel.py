"""zero/parallel.py: several devices in one process and several worker processes give the
updates of one device on the global batch; the sharded stream and resume stay exact."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    ROOT,
    assign,
    pad,
    random_sentences,
    randomize,
    tiny_config,
    train_config,
    write_corpus,
)

from zero import config as config_lib
from zero import data, parallel
from zero.checkpoints import find_checkpoint, listed_checkpoints
from zero.errors import UserError
from zero.model import Model
from zero.train import Trainer
from zero.vocab import Vocab

v1 = tf.compat.v1
TWO_CPUS = ["/cpu:0", "/cpu:1"]


# -- several devices in one process ----------------------------------------------------------


def _loss_and_grads(config, batches, values=None):
    """Loss and gradients of Replicas on `batches` (one per device), in a fresh graph."""
    graph = tf.Graph()
    with graph.as_default():
        src, tgt = v1.placeholder(tf.int32, [None, None]), v1.placeholder(tf.int32, [None, None])
        model = Model(config, 20, 20, dropout_seed=tf.constant([1, 2], tf.int64))
        replicas = parallel.Replicas(config, model, src, tgt)
        params = v1.trainable_variables()
        grads = [tf.convert_to_tensor(g) for g in replicas.gradients(params)]
        sess = replicas.session(config, graph)
        sess.run(v1.global_variables_initializer())
        if values is None:
            randomize(sess, scale=0.5, seed=3)
        else:
            assign(sess, {p: values[p.op.name] for p in params})
        feed = replicas.feed({"parts": [{"src": s, "tgt": t} for s, t in batches]})
        loss, grad_values = sess.run([replicas.loss, grads], feed)
        values = dict(zip([p.op.name for p in params], sess.run(params), strict=True))
    return loss, dict(zip(values, grad_values, strict=True)), values, graph


def test_two_devices_equal_one_device_on_the_global_batch(smoothing=0.1):
    """Towers on /cpu:0 and /cpu:1 with 3 and 5 sentences of different lengths: the same loss
    and gradients as one device on the 8 sentences (the per-device losses are weighted by
    their sentence counts, so the unweighted mean would differ)."""
    rng = np.random.default_rng(0)
    sizes = [(3, 2, 4), (5, 5, 9)]  # sentences, min and max length: different shapes
    batches = []
    for n, lo, hi in sizes:
        src = random_sentences(rng, n, 20, lo, hi)
        tgt = random_sentences(rng, n, 20, lo, hi)
        batches.append((src, tgt))
    padded = [(pad(s), pad(t)) for s, t in batches]
    config = tiny_config(devices=TWO_CPUS, label_smoothing=smoothing)
    loss2, grads2, values, graph = _loss_and_grads(config, padded)
    whole = [(pad(batches[0][0] + batches[1][0]), pad(batches[0][1] + batches[1][1]))]
    loss1, grads1, _, _ = _loss_and_grads(tiny_config(label_smoothing=smoothing), whole, values)
    assert loss2 == pytest.approx(loss1, rel=1e-5)
    assert sorted(grads2) == sorted(grads1)
    for name in grads1:
        np.testing.assert_allclose(grads2[name], grads1[name], rtol=1e-4, atol=1e-6)
    # The towers really are placed apart: variables on the first device, tower 1 on the other.
    ops = graph.get_operations()
    assert {op.device.upper()[-5:] for op in ops if op.type == "VarHandleOp"} == {"CPU:0"}
    assert any(op.device.upper().endswith("CPU:1") for op in ops if op.type == "MatMul")


def test_device_errors():
    cluster = parallel.Cluster()
    for bad in (["gpu0"], ["/job:worker/task:1/gpu:0"], ["/cpu:0", "/cpu:0"]):
        with pytest.raises(UserError, match="devices"):
            parallel.parse_devices(tiny_config(devices=bad), cluster)
    assert parallel.parse_devices(tiny_config(), cluster) == [None]
    two = parallel.Cluster(["a:1", "b:2"], 1)
    assert parallel.parse_devices(tiny_config(devices=["/gpu:1"]), two) == [
        "/job:worker/replica:0/task:1/device:GPU:1"
    ]


# -- the cluster -----------------------------------------------------------------------------


def test_cluster_from_config_and_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert not parallel.Cluster.from_config(tiny_config()).distributed
    c = parallel.Cluster.from_config(tiny_config(workers=["h1:2222", "h2:2222"], worker_index=1))
    assert (c.workers, c.index, c.size, c.is_chief) == (["h1:2222", "h2:2222"], 1, 2, False)
    for workers, index, match in (
        (["h1:2222", "h2"], 0, "not host:port"),
        (["h1:2222", "h1:2222"], 0, "twice"),
        (["h1:2222", "h2:2222"], 2, "worker_index"),
    ):
        with pytest.raises(UserError, match=match):
            parallel.Cluster.from_config(tiny_config(workers=workers, worker_index=index))
    cluster = {"chief": ["c:1"], "worker": ["w:1", "w:2"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )
    c = parallel.Cluster.from_config(tiny_config())
    assert (c.workers, c.index) == (["c:1", "w:1", "w:2"], 2)
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"ps": ["p:1"], **cluster}, "task": {"type": "ps", "index": 0}}),
    )
    with pytest.raises(UserError, match="parameter servers"):
        parallel.Cluster.from_config(tiny_config())
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG"):
        parallel.Cluster.from_config(tiny_config())


# -- the sharded stream ----------------------------------------------------------------------


def _stream(corpus, **kw):
    vocab_src, vocab_tgt = Vocab.load(corpus["src_vocab"]), Vocab.load(corpus["tgt_vocab"])
    return data.TrainStream(
        corpus["train_src"],
        corpus["train_tgt"],
        vocab_src,
        vocab_tgt,
        30,
        8,
        seed=5,
        buffer_size=40,
        chunk_lines=10,
        **kw,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(str(tmp_path_factory.mktemp("corpus")), n_train=60, n_dev=4)


def test_shards_interleave_to_the_whole_stream_and_share_positions(corpus):
    """Shards 0 and 1 of 2 take batches 0, 2, 4, ... and 1, 3, 5, ... of the unsharded
    stream (over several epochs); after k steps both are at the position of the unsharded
    stream after 2k batches, and a shard restored there continues exactly."""
    whole = _stream(corpus)
    shards = [_stream(corpus, shard=i, num_shards=2) for i in range(2)]
    with whole, shards[0], shards[1]:
        for _ in range(25):  # a few epochs of ~8 batches
            for shard in shards:
                a, b = next(shard), next(whole)
                np.testing.assert_array_equal(a["src"], b["src"])
                np.testing.assert_array_equal(a["tgt"], b["tgt"])
            assert shards[0].position() == shards[1].position() == whole.position()
        position = shards[1].position()
        expected = [next(shards[1])["src"] for _ in range(5)]
    again = _stream(corpus, shard=1, num_shards=2)
    with again:
        again.restore(position)
        for want in expected:
            np.testing.assert_array_equal(next(again)["src"], want)


# -- the trainer on two devices --------------------------------------------------------------


def _config(corpus, output_dir, **overrides):
    return train_config(corpus, output_dir, **{"dropout": 0.0, "batch_tokens": 30, **overrides})


def _variables(directory):
    reader = tf.train.load_checkpoint(find_checkpoint(directory))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name != "train_state"
    }


def _assert_same_variables(a, b, rtol=0.0, skip=()):
    """Equal, or within rtol of each variable's largest magnitude; names containing an item of
    `skip` are left out."""
    assert sorted(a) == sorted(b)
    for name in a:
        if not any(part in name for part in skip):
            atol = rtol * float(np.abs(b[name]).max())
            np.testing.assert_allclose(a[name], b[name], rtol=rtol, atol=atol, err_msg=name)


def test_two_device_training_resumes_exactly(corpus, tmp_path):
    """Trainer on /cpu:0 + /cpu:1 with gradient accumulation on top and dropout: stopping
    after 2 updates and resuming to 4 gives the weights of an uninterrupted run."""
    settings = {"devices": TWO_CPUS, "grad_accum": 2, "dropout": 0.2}
    Trainer(_config(corpus, tmp_path / "full", max_steps=4, **settings), log=print).train()
    Trainer(_config(corpus, tmp_path / "part", max_steps=2, **settings), log=print).train()
    Trainer(_config(corpus, tmp_path / "part", max_steps=4, **settings), log=print).train()
    _assert_same_variables(_variables(tmp_path / "full"), _variables(tmp_path / "part"))


# -- several worker processes ----------------------------------------------------------------


def _free_ports(n):
    """n ports free now. TensorFlow's gRPC server can neither take an open socket nor share a
    port held with SO_REUSEPORT, so the ports are released before the workers bind them; a
    port taken in between is detected by _run_workers, which then starts again on others."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _workers(n=2):
    return [f"127.0.0.1:{p}" for p in _free_ports(n)]


def _run_workers(config, tmp_path, per_worker, timeout=600, env=None, kill=None):
    """_start_workers, again on fresh ports (at most three times) when a worker could not
    bind its port (another process took it after _free_ports released it)."""
    for _ in range(3):
        results = _start_workers(config, tmp_path, per_worker, timeout, env, kill)
        if not any("cannot start the server of worker" in out for _, out in results):
            return results
        config = config_lib.Config({**config, "workers": _workers(len(config.workers))})
    return results


def _start_workers(config, tmp_path, per_worker, timeout=600, env=None, kill=None):
    """Start one run.py training process per dict of --set overrides of `config` and wait
    until all have ended, at most `timeout` seconds: the rest are then killed. kill=(i, text):
    SIGKILL worker i once its output shows `text`. Returns [(exit code or None, output)]."""
    path = tmp_path / "workers.yaml"
    config.save(str(path))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT, **(env or {})}
    env.pop("TF_CONFIG", None)
    procs, logs = [], []
    try:
        for i, overrides in enumerate(per_worker):
            args = [sys.executable, os.path.join(ROOT, "run.py"), "--mode", "train"]
            args += ["--config", str(path), "--set", f"worker_index={i}"]
            args += [arg for k, v in overrides.items() for arg in ("--set", f"{k}={v}")]
            logs.append(tmp_path / f"worker{i}.log")
            with open(logs[-1], "w") as out:  # the child has its own copy of the descriptor
                procs.append(
                    subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            if kill and procs[kill[0]].poll() is None and kill[1] in logs[kill[0]].read_text():
                procs[kill[0]].kill()
            time.sleep(0.5)
        codes = [p.poll() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [(code, log.read_text()) for code, log in zip(codes, logs, strict=True)]


@pytest.mark.slow
def test_two_workers_equal_one_process_with_two_devices_and_resume(corpus, tmp_path):
    """Two run.py workers on loopback, stopped after 2 updates and restarted to 4, end with
    the weights of one process training 4 updates on two devices (the same global batches:
    worker w's batch is device w's). The second worker writes nothing (its output_dir is
    never created); the chief wrote the checkpoints and validation records."""
    workers = _workers()
    chief_dir, other_dir = tmp_path / "chief", tmp_path / "other"
    base = _config(corpus, chief_dir, eval_every=2, threads=1, grad_accum=2, workers=workers)
    for max_steps in (2, 4):
        per_worker = [{"max_steps": max_steps}, {"max_steps": max_steps, "output_dir": other_dir}]
        results = _run_workers(base, tmp_path, per_worker)
        for code, out in results:
            assert code == 0, out
    outputs = [out for _, out in results]
    assert "resumed from" in outputs[0] and "worker started at step 2" in outputs[1]
    assert not other_dir.exists()
    records = [json.loads(line) for line in open(chief_dir / "validation.jsonl")]
    assert [r["step"] for r in records] == [2, 4]
    local = _config(
        corpus, tmp_path / "local", threads=1, grad_accum=2, max_steps=4, devices=TWO_CPUS
    )
    Trainer(local, log=print).train()
    # Parameters and Adam slots agree to ~1e-5 except the attention's score bias b_v: it shifts
    # every score alike, so its gradient is zero up to rounding, and Adam's normalised steps
    # of that noise (m ~ 1e-11) differ with the order of float sums.
    _assert_same_variables(
        _variables(chief_dir), _variables(tmp_path / "local"), rtol=1e-4, skip=["attention/b_v"]
    )


@pytest.mark.slow
def test_workers_with_different_configs_all_stop_with_an_error(corpus, tmp_path):
    """A worker started with another learning rate: every worker exits with a one-line error
    (none waits forever for the others), before training and without writing a checkpoint."""
    workers = _workers()
    base = _config(corpus, tmp_path / "model", threads=1, max_steps=2, workers=workers)
    results = _run_workers(base, tmp_path, [{}, {"lr": 0.5}], timeout=400)
    (code0, out0), (code1, out1) = results
    assert code1 == 1 and "worker 1's config differs from the chief's: lr: 0.5 here" in out1
    assert code0 == 1 and "another worker's config differs" in out0
    assert "Traceback" not in out0 + out1
    assert listed_checkpoints(str(tmp_path / "model")) == []


@pytest.mark.slow
def test_the_others_stop_with_an_error_when_a_worker_dies(corpus, tmp_path):
    """Worker 1 is SIGKILLed during training: the chief does not wait forever, it stops with
    a one-line error (a lost connection, or at the latest the collective timeout, here 60 s)."""
    workers = _workers()
    base = _config(corpus, tmp_path / "model", threads=1, max_steps=100000, workers=workers)
    env = {"ZERO_WORKER_TIMEOUT": "60"}
    results = _run_workers(base, tmp_path, [{}, {}], 500, env, kill=(1, "step 3/"))
    (code0, out0), (code1, _) = results
    assert code1 == -9
    assert code0 == 1 and "worker 0 lost the other workers" in out0
    assert "Traceback" not in out0
