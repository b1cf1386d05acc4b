"""zero/train.py end to end on a toy corpus: exact resume, checkpoint keeping, best/, params;
the CPU allocator importing zero selects."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, tiny_config, train_config, write_corpus

from zero.checkpoints import BEST_DIR, find_checkpoint, listed_checkpoints
from zero.modes import MODES
from zero.train import Trainer

STEP_LINE = re.compile(r"^step (\d+)/\d+  loss (\S+)")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(str(tmp_path_factory.mktemp("corpus")), n_train=50, n_dev=6)


def _config(corpus, output_dir, **overrides):
    values = {"dropout": 0.2, "batch_tokens": 40, "keep_checkpoints": 3, "beam_size": 2}
    return train_config(corpus, output_dir, **{**values, "max_decode_extra": 2, **overrides})


def _train(config):
    lines = []
    result = Trainer(config, log=lines.append).train()
    losses = {}
    for line in lines:
        m = STEP_LINE.match(line)
        if m:
            losses[int(m.group(1))] = m.group(2)
    return result, losses, lines


def _variables(directory):
    reader = tf.train.load_checkpoint(find_checkpoint(directory))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@pytest.mark.parametrize("grad_accum, stop, total", [(1, 5, 14), (2, 3, 8)])
def test_resume_equals_uninterrupted_run(corpus, tmp_path, grad_accum, stop, total):
    """Stop after `stop` updates, resume to `total`: same losses step by step and same final
    weights as one uninterrupted run (dropout on, several data epochs, gradient accumulation).
    The first losses also show that two fresh runs with one seed are identical."""
    settings = {"grad_accum": grad_accum}
    _, full, _ = _train(_config(corpus, tmp_path / "full", max_steps=total, **settings))
    _, first, _ = _train(_config(corpus, tmp_path / "resumed", max_steps=stop, **settings))
    _, second, lines = _train(_config(corpus, tmp_path / "resumed", max_steps=total, **settings))
    assert any(line.endswith(f"at step {stop}") for line in lines if "resumed from" in line)
    assert sorted(full) == list(range(1, total + 1))
    assert {**first, **second} == full
    a, b = _variables(tmp_path / "full"), _variables(tmp_path / "resumed")
    assert sorted(a) == sorted(b)
    for name in a:
        if name != "train_state":  # holds the elapsed time
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    state = [json.loads(v[name].decode()) for v in (a, b) for name in ["train_state"]]
    assert state[0]["data"] == state[1]["data"]
    assert state[0]["data"]["epoch"] >= 1, "the run should cross an epoch boundary"


def test_checkpoints_best_and_params(corpus, tmp_path, capsys):
    directory = tmp_path / "model"
    config = _config(
        corpus, directory, max_steps=40, eval_every=8, keep_checkpoints=2, log_every=10,
        dropout=0.0, dev_ref=corpus["dev_tgt"], lr=0.02, num_encoder_layers=2,
        num_decoder_layers=2, eval_sentences=4,
    )  # fmt: skip
    result, losses, lines = _train(config)
    assert result["step"] == 40
    assert float(losses[40]) < float(losses[10])
    listed = listed_checkpoints(str(directory))
    assert [os.path.basename(p) for p in listed] == ["model.ckpt-32", "model.ckpt-40"]
    on_disk = {f.split(".index")[0] for f in os.listdir(directory) if f.endswith(".index")}
    assert on_disk == {"model.ckpt-32", "model.ckpt-40"}
    records = [json.loads(line) for line in open(directory / "validation.jsonl")]
    assert [r["step"] for r in records] == [8, 16, 24, 32, 40]
    assert all("dev_bleu" in r and "dev_loss" in r for r in records)
    best = directory / BEST_DIR
    assert listed_checkpoints(str(best)), "an improving validation copies its checkpoint"
    best_step = int(listed_checkpoints(str(best))[0].rsplit("-", 1)[1])
    best_bleu = max(r["dev_bleu"] for r in records)
    assert next(r for r in records if r["dev_bleu"] == best_bleu)["step"] == best_step
    assert find_checkpoint(str(directory)).startswith(str(best))
    assert any("validation at step 40" in line for line in lines)

    # params mode: the count the trainer reported.
    capsys.readouterr()
    MODES["params"](config)
    out = capsys.readouterr().out.strip().splitlines()
    total = int(out[-1].removeprefix("total parameters: "))
    started = next(line for line in lines if line.startswith("starting a new model"))
    assert f"({total:,} parameters)" in started


def test_eval_sentences_keeps_the_first_lines(corpus):
    """Validation BLEU on the first N dev lines: exactly their rows, padding trimmed."""
    from zero.batching import EvalBatches
    from zero.vocab import Vocab

    vocab = Vocab.load(corpus["src_vocab"])
    full = {}
    for batch in EvalBatches(corpus["dev_src"], vocab, batch_tokens=12):
        for index, row in zip(batch["index"], batch["src"], strict=True):
            full[int(index)] = row[row != 0].tolist()
    rows = {}
    for batch in EvalBatches(corpus["dev_src"], vocab, batch_tokens=12, limit=3):
        assert batch["src"].shape[1] == max((batch["src"] != 0).sum(1))
        for index, row in zip(batch["index"], batch["src"], strict=True):
            rows[int(index)] = row[row != 0].tolist()
    assert rows == {i: full[i] for i in range(3)}


def test_time_progress_schedule_runs_the_whole_decay_within_max_time(corpus, tmp_path):
    """lr_progress: time stretches the cosine over max_time (CPU clock here, so a loaded machine
    changes the step count, not the outcome): max_steps does not stop training, the lr falls
    from its peak to near min_lr, and training stops on the time budget."""
    config = _config(
        corpus,
        tmp_path / "m",
        lr_schedule="cosine",
        warmup_steps=1,
        max_steps=10,
        min_lr=0.0001,
        max_time=3.0,
        time_clock="cpu",
        lr_progress="time",
        dropout=0.0,
    )
    result, _, lines = _train(config)
    lrs = [float(m.group(1)) for m in map(re.compile(r"^step \d+ .* lr (\S+)").match, lines) if m]
    assert result["step"] > 10 and len(lrs) == result["step"]
    assert max(lrs) > 0.008 and lrs[-1] < 0.002 and lrs[-1] >= 0.0001
    peak = lrs.index(max(lrs))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :], strict=False))
    assert any("time budget of 3s reached" in line for line in lines)
    # The budget is in the checkpoint: rerunning has nothing left to do.
    _, _, again = _train(config)
    assert any(line.startswith("nothing to do") for line in again)


def test_time_progress_needs_a_time_budget():
    from zero.errors import UserError

    with pytest.raises(UserError, match="'lr_progress'.*max_time"):
        tiny_config(lr_progress="time")


_ALLOCATOR_PROBE = """
import zero
import tensorflow as tf
v1 = tf.compat.v1
v1.disable_eager_execution()
with tf.device("/cpu:0"):  # the CPU's allocator on GPU builds too
    x = tf.random.uniform([64, 64])
    y = tf.matmul(x, x)
with v1.Session() as sess:
    meta = v1.RunMetadata()
    options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
    sess.run(y, options=options, run_metadata=meta)
print(sorted({m.allocator_name for d in meta.step_stats.dev_stats
              for n in d.node_stats for m in n.memory}))
"""


@pytest.mark.parametrize(
    "setting, allocators",
    [(None, ["bfc_cpu_allocator_for_gpu"]), ("false", ["cpu", "mklcpu"])],
)
def test_importing_zero_selects_the_bfc_cpu_allocator_unless_set(setting, allocators):
    """zero/__init__.py: tensors come from BFC (no fresh pages per step), and a value the user
    set wins: TensorFlow's own default then, `cpu`, or `mklcpu` where TensorFlow turns oneDNN
    on by itself (AVX-512 CPUs). A fresh process: the allocator is chosen once, when TensorFlow
    creates its CPU device."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    if setting is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = setting
    env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", _ALLOCATOR_PROBE], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] in [repr([a]) for a in allocators]
