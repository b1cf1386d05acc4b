"""Reliability: SIGKILL at random moments of `run.py --mode train` (inside checkpoint writing
too) loses nothing and changes nothing; damaged checkpoints are skipped; a full disk is
reported with the previous checkpoint intact; same seed, same losses and translations.

The kill test injects pauses with ZERO_FAULT_INJECT (zero/faults.py) to kill exactly between
writing a checkpoint and listing it, inside the best/ swap, and between a validation record and
its checkpoint."""

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf
import yaml
from helpers import ROOT, write_corpus

from zero import checkpoints, faults
from zero import config as config_lib
from zero.checkpoints import BEST_DIR, is_complete, listed_checkpoints
from zero.errors import UserError
from zero.modes import MODES
from zero.train import Trainer

STEP_LINE = re.compile(r"^step (\d+)/\d+  loss (\S+)")
MAX_STEPS = 60

SETTINGS = {
    "hidden_size": 8,
    "embed_size": 8,
    "num_encoder_layers": 1,
    "num_decoder_layers": 1,
    "threads": 1,
    "batch_tokens": 40,
    "max_len": 8,
    "shuffle_buffer": 100,
    "log_every": 1,
    "eval_every": 10,
    "save_every": 3,
    "keep_checkpoints": 3,
    "beam_size": 2,
    "max_decode_extra": 2,
    "eval_sentences": 4,
    "lr": 0.01,
    "dropout": 0.2,
    "seed": 7,
    "max_steps": MAX_STEPS,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    paths = write_corpus(str(tmp_path_factory.mktemp("corpus")), n_train=50, n_dev=6)
    return {**paths, "dev_ref": paths["dev_tgt"]}


def _write_config(path, corpus, output_dir, **overrides):
    values = {**SETTINGS, **corpus, "output_dir": str(output_dir), **overrides}
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(values, f)
    return str(path)


def _losses(lines):
    """{step: [loss text, ...]} of the per-step progress lines (log_every=1)."""
    out = {}
    for line in lines:
        m = STEP_LINE.match(line)
        if m:
            out.setdefault(int(m.group(1)), []).append(m.group(2))
    return out


def _train_in_process(config):
    lines = []
    Trainer(config, log=lines.append).train()
    return lines


def _variables(path):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


# -- kill -9 ------------------------------------------------------------------------------


def _run(command, env, trigger, timeout=180):
    """Run `command` until it exits, SIGKILLing it when `trigger` fires, always on something
    the process reported (never after a guessed delay): None (never), ("started", None): at the
    resumed/starting line, ("step", k): at the k-th step line, ("marker", (point, k)): at the
    k-th fault-inject pause at `point`. Returns (output lines, killed?, exit status).
    `timeout` only guards against a hung run."""
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1,
    )  # fmt: skip
    killed = threading.Event()

    def kill():
        if proc.poll() is None:
            killed.set()
            proc.send_signal(signal.SIGKILL)

    timed_out = threading.Event()
    deadline = threading.Timer(timeout, lambda: (timed_out.set(), proc.kill()))
    deadline.daemon = True
    deadline.start()
    kind, arg = trigger or (None, None)
    lines, steps, markers = [], 0, 0
    for line in proc.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        if killed.is_set():
            continue
        if kind == "started" and line.startswith(("resumed from", "starting a new model")):
            kill()
        elif kind == "step" and STEP_LINE.match(line):
            steps += 1
            if steps == arg:
                kill()
        elif kind == "marker" and line.startswith(f"fault-inject: {arg[0]} "):
            markers += 1
            if markers == arg[1]:
                kill()
    status = proc.wait()
    deadline.cancel()
    assert not timed_out.is_set(), "\n".join([f"timed out: {command}"] + lines[-20:])
    assert (status == -signal.SIGKILL) == killed.is_set(), "\n".join(lines[-20:])
    return lines, killed.is_set(), status


def _lane(config_path, lane, seed, results):
    """Kill one training run 5 times at seeded random moments, then let it finish."""
    rng = random.Random(seed * 100 + lane)
    command = [sys.executable, "run.py", "--mode", "train", "--config", config_path]
    directory = config_lib.load(config_path).output_dir
    middle = [
        ("step", rng.randint(1, 8)),
        ("marker", ("sleep_in_save", rng.randint(1, 3))),
        ("marker", ("sleep_in_validate", 1)),
    ]
    rng.shuffle(middle)
    first = ("started", None) if lane == 0 else ("step", rng.randint(1, 3))
    # The first validation of a new model always improves: the best/ swap happens there.
    schedule = [first, ("marker", ("sleep_in_best", 1))] + middle + [None]
    runs = []
    for trigger in schedule:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", ZERO_FAULT_SLEEP="1")
        env.pop("ZERO_FAULT_INJECT", None)
        if trigger and trigger[0] == "marker":
            env["ZERO_FAULT_INJECT"] = trigger[1][0]
        lines, killed, status = _run(command, env, trigger)
        runs.append({"trigger": trigger, "lines": lines, "killed": killed, "status": status})
        if killed and trigger[0] == "marker":
            _check_killed_inside(directory, trigger[1][0], lines)
    results[lane] = runs


def _check_killed_inside(directory, point, lines):
    """The kill landed in the window the pause opened: nothing after it happened."""
    detail = [line for line in lines if line.startswith(f"fault-inject: {point} ")][-1]
    listed = listed_checkpoints(directory)
    if point == "sleep_in_validate":
        step = int(detail.split()[-1])
        with open(os.path.join(directory, "validation.jsonl"), encoding="utf-8") as f:
            assert json.loads(f.readlines()[-1])["step"] == step
        assert not any(p.endswith(f"-{step}") for p in listed)
    else:
        path = detail.split()[-1]
        assert is_complete(path) and path not in listed
        if point == "sleep_in_best":
            tmp = os.path.join(directory, BEST_DIR + ".tmp")
            assert listed_checkpoints(tmp) == [os.path.join(tmp, os.path.basename(path))]


def _check_model_dir(directory, reference):
    """Every file is complete and where it belongs, and equals the uninterrupted run's."""
    listed = listed_checkpoints(directory)
    assert [os.path.basename(p) for p in listed] == [
        os.path.basename(p) for p in listed_checkpoints(reference)
    ]
    expected = {
        "checkpoint",
        "config.yaml",
        "vocab.json",
        "validation.jsonl",
        "summaries",
        BEST_DIR,
    }
    for path in listed:
        assert is_complete(path)
        expected.update(os.path.basename(f) for f in checkpoints.checkpoint_files(path))
    assert set(os.listdir(directory)) == expected, "leftover or missing files"
    best = listed_checkpoints(os.path.join(directory, BEST_DIR))
    ref_best = listed_checkpoints(os.path.join(reference, BEST_DIR))
    assert [os.path.basename(p) for p in best] == [os.path.basename(p) for p in ref_best]
    best_files = {"checkpoint"} | {
        os.path.basename(f) for f in checkpoints.checkpoint_files(best[0])
    }
    assert set(os.listdir(os.path.join(directory, BEST_DIR))) == best_files
    for a, b in ((listed[-1], listed_checkpoints(reference)[-1]), (best[0], ref_best[0])):
        mine, theirs = _variables(a), _variables(b)
        assert sorted(mine) == sorted(theirs)
        for name in mine:
            if name != "train_state":  # holds the elapsed time
                np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)
    saved = config_lib.load(config_lib.saved_path(directory))
    assert saved.max_steps == MAX_STEPS and saved.output_dir == directory
    json.loads(open(os.path.join(directory, "vocab.json")).read())

    def records(d):
        with open(os.path.join(d, "validation.jsonl"), encoding="utf-8") as f:
            return [{k: v for k, v in json.loads(line).items() if k != "elapsed"} for line in f]

    assert records(directory) == records(reference)


@pytest.mark.slow
def test_kill_at_random_moments_loses_nothing(corpus, tmp_path):
    seed = int(os.environ.get("ZERO_FAULT_SEED", "20240607"))
    reference = str(tmp_path / "reference")
    ref_config = _write_config(tmp_path / "reference.yaml", corpus, reference)
    ref_losses = _losses(_train_in_process(config_lib.load(ref_config)))
    assert sorted(ref_losses) == list(range(1, MAX_STEPS + 1))

    # Two independent model directories side by side (2 cores): 2 x 5 kills.
    lanes, results = 2, {}
    with ThreadPoolExecutor(lanes) as pool:
        futures = [
            pool.submit(
                _lane,
                _write_config(tmp_path / f"lane{lane}.yaml", corpus, tmp_path / f"lane{lane}"),
                lane,
                seed,
                results,
            )
            for lane in range(lanes)
        ]
        for future in futures:
            future.result()

    kills = 0
    markers = set()
    for lane in range(lanes):
        runs = results[lane]
        log = "\n".join(f"[{r['trigger']}] " + "\n".join(r["lines"][-8:]) for r in runs)
        final = runs[-1]
        assert final["status"] == 0 and not final["killed"], log
        assert final["lines"][-1] == f"training stopped at step {MAX_STEPS}: max_steps reached"
        kills += sum(r["killed"] for r in runs)
        markers |= {r["trigger"][1][0] for r in runs if r["killed"] and r["trigger"][0] == "marker"}
        losses = _losses(line for r in runs for line in r["lines"])
        assert sorted(losses) == list(range(1, MAX_STEPS + 1)), log
        for step, values in losses.items():
            assert set(values) == {ref_losses[step][0]}, f"lane {lane} step {step}: {values}"
        assert any(len(v) > 1 for v in losses.values()), "some steps should have been redone"
        _check_model_dir(str(tmp_path / f"lane{lane}"), reference)
    assert kills >= 10
    assert markers == {"sleep_in_save", "sleep_in_best", "sleep_in_validate"}


def test_interrupted_best_swap_is_finished(corpus, tmp_path, monkeypatch):
    """A crash between `best -> best.old` and `best.tmp -> best` (here an exception at the
    fault point): decoding reads best.old meanwhile; the next start puts best/ back."""
    config = config_lib.load(
        _write_config(tmp_path / "c.yaml", corpus, tmp_path / "m", max_steps=3, save_every=0)
    )
    trainer = Trainer(config, log=lambda _: None)
    trainer.train()
    first = checkpoints.find_checkpoint(config.output_dir)
    assert os.path.basename(os.path.dirname(first)) == BEST_DIR

    def crash(point, detail=""):
        if point == "sleep_in_best":
            raise KeyboardInterrupt  # not an OSError: nothing is cleaned up, like a kill

    monkeypatch.setattr(checkpoints, "pause", crash)
    with pytest.raises(KeyboardInterrupt):
        trainer.manager.save(trainer.sess, 4, best=True)
    names = set(os.listdir(config.output_dir))
    assert {"best.old", "best.tmp"} <= names and BEST_DIR not in names
    assert [os.path.basename(p) for p in listed_checkpoints(config.output_dir)] == ["model.ckpt-3"]
    # Decoding meanwhile reads best.old and renames nothing (a trainer may own the directory).
    in_old = checkpoints.find_checkpoint(config.output_dir)
    assert in_old == os.path.join(config.output_dir, "best.old", os.path.basename(first))
    assert {"best.old", "best.tmp"} <= set(os.listdir(config.output_dir))
    removed = trainer.manager.recover()  # the trainer's restart finishes the swap
    assert "best.tmp" in removed and "model.ckpt-4.index" not in removed
    assert checkpoints.find_checkpoint(config.output_dir) == first


# -- damaged checkpoints --------------------------------------------------------------------


@pytest.fixture(scope="module")
def nine_steps(corpus, tmp_path_factory):
    """A model trained 9 steps, checkpoints 3, 6, 9 (no validation); its losses."""
    base = tmp_path_factory.mktemp("nine")
    path = _write_config(base / "c.yaml", corpus, base / "model", max_steps=9, eval_every=100)
    lines = _train_in_process(config_lib.load(path))
    return str(base / "model"), _losses(lines)


def _copy(nine_steps, tmp_path, **overrides):
    directory = str(tmp_path / "model")
    shutil.copytree(nine_steps[0], directory)
    path = config_lib.saved_path(directory)
    sets = [f"output_dir={directory}"] + [f"{k}={v}" for k, v in overrides.items()]
    return config_lib.load(path, sets)


def _truncate_data(path):
    data = checkpoints.checkpoint_files(path)[1]
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)


def _garble_index(path):
    with open(path + ".index", "r+b") as f:
        raw = bytearray(f.read())
        raw[::7] = bytes(b ^ 0x5A for b in raw[::7])
        f.seek(0)
        f.write(raw)


def _delete_data(path):
    os.unlink(checkpoints.checkpoint_files(path)[1])


@pytest.mark.parametrize("damage", [_truncate_data, _garble_index, _delete_data])
def test_damaged_latest_checkpoint_falls_back(nine_steps, tmp_path, damage):
    config = _copy(nine_steps, tmp_path)
    latest = listed_checkpoints(config.output_dir)[-1]
    assert latest.endswith("model.ckpt-9")
    damage(latest)
    lines = _train_in_process(config)
    previous = os.path.join(config.output_dir, "model.ckpt-6")
    warning = next(line for line in lines if "damaged" in line)
    assert latest in warning and f"falling back to {previous}" in warning
    assert f"resumed from {previous} at step 6" in lines
    losses = _losses(lines)
    assert sorted(losses) == [7, 8, 9]
    assert all(losses[s] == nine_steps[1][s] for s in losses)
    listed = listed_checkpoints(config.output_dir)
    assert [os.path.basename(p) for p in listed] == ["model.ckpt-3", "model.ckpt-6", "model.ckpt-9"]
    assert all(is_complete(p) and _variables(p) for p in listed)


def test_every_checkpoint_damaged(nine_steps, tmp_path):
    config = _copy(nine_steps, tmp_path)
    for path in listed_checkpoints(config.output_dir):
        _truncate_data(path)
    with pytest.raises(UserError, match="every listed checkpoint is damaged"):
        _train_in_process(config)


def test_unreadable_state_file(nine_steps, tmp_path):
    """A garbled `checkpoint` file: the complete checkpoints on disk are used (TensorFlow
    alone would ignore the file and start a new model)."""
    config = _copy(nine_steps, tmp_path, max_steps=12)
    with open(os.path.join(config.output_dir, "checkpoint"), "w") as f:
        f.write("model_checkpoint_path: \x00\x01 garbage {{{\n")
    lines = _train_in_process(config)
    assert f"resumed from {os.path.join(config.output_dir, 'model.ckpt-9')} at step 9" in lines
    assert [os.path.basename(p) for p in listed_checkpoints(config.output_dir)] == [
        "model.ckpt-6", "model.ckpt-9", "model.ckpt-12"
    ]  # fmt: skip


# -- disk full ------------------------------------------------------------------------------


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "somefile")


def _exhausted(*args, **kwargs):
    raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")


def _checkpoint_sizes(directory):
    return {
        name: os.path.getsize(os.path.join(directory, name))
        for name in os.listdir(directory)
        if name.startswith("model.ckpt")
    }


def test_disk_full_while_saving(nine_steps, tmp_path, monkeypatch):
    """The data write, the state file write and the best/ copy each fail in turn: a UserError
    that says so and names the previous checkpoint, which stays listed and loadable. Then
    memory runs out in a step. Then training resumes from the intact checkpoint."""
    config = _copy(nine_steps, tmp_path, max_steps=12)
    lines = []
    trainer = Trainer(config, log=lines.append)
    previous = os.path.join(config.output_dir, "model.ckpt-9")
    before = _checkpoint_sizes(config.output_dir)
    with monkeypatch.context() as m:
        m.setattr(tf.compat.v1.train.Saver, "save", _exhausted)
        with pytest.raises(UserError) as e:
            trainer.train()
    with monkeypatch.context() as m:
        m.setattr(checkpoints, "write_state", _enospc)
        with pytest.raises(UserError) as e2:
            trainer.train()
    with monkeypatch.context() as m:
        m.setattr(shutil, "copy2", _enospc)
        trainer._restore()
        with pytest.raises(UserError) as e3:
            trainer.manager.save(trainer.sess, 12, best=True)
    for error in (e, e2, e3):
        message = str(error.value)
        assert "disk full or not writable" in message and "model.ckpt-12" in message
        assert f"the previous checkpoint {previous} is intact" in message
        assert "\n" not in message
    assert [os.path.basename(p) for p in listed_checkpoints(config.output_dir)] == [
        "model.ckpt-3", "model.ckpt-6", "model.ckpt-9"
    ]  # fmt: skip
    assert _checkpoint_sizes(config.output_dir) == before
    assert not os.path.exists(os.path.join(config.output_dir, "best.tmp"))

    # Out of memory in a training step: a UserError that suggests smaller batches.
    session_run = trainer.sess.run

    def oom(fetches, *args, **kwargs):
        if isinstance(fetches, list) and trainer.g.train_op in fetches:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return session_run(fetches, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(trainer.sess, "run", oom)
        with pytest.raises(UserError, match=r"out of memory at step 10 .*batch_tokens \(now 40\)"):
            trainer.train()

    # Space again: training resumes from the intact checkpoint.
    lines.clear()
    trainer.train()
    assert f"resumed from {previous} at step 9" in lines
    assert listed_checkpoints(config.output_dir)[-1].endswith("model.ckpt-12")


# -- repeatability --------------------------------------------------------------------------


def test_same_seed_same_losses_and_translations(corpus, tmp_path):
    outputs = []
    for name in ("a", "b"):
        path = _write_config(tmp_path / f"{name}.yaml", corpus, tmp_path / name, max_steps=12)
        losses = _losses(_train_in_process(config_lib.load(path)))
        out = tmp_path / f"{name}.out"
        MODES["test"](config_lib.load(path, [f"input={corpus['dev_src']}", f"output={out}"]))
        outputs.append((losses, out.read_text(encoding="utf-8")))
    assert sorted(outputs[0][0]) == list(range(1, 13))
    assert outputs[0] == outputs[1]
    assert len(outputs[0][1].splitlines()) == 6
    weights = [_variables(listed_checkpoints(str(tmp_path / n))[-1]) for n in ("a", "b")]
    for name in weights[0]:
        if name != "train_state":
            np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)


def test_fault_injection_is_off_by_default(monkeypatch, capsys):
    slept = []
    monkeypatch.setattr(faults.time, "sleep", slept.append)
    monkeypatch.delenv("ZERO_FAULT_INJECT", raising=False)
    checkpoints.pause("sleep_in_save", "x")
    assert slept == [] and capsys.readouterr().err == ""
    monkeypatch.setenv("ZERO_FAULT_INJECT", "sleep_in_best")
    monkeypatch.setenv("ZERO_FAULT_SLEEP", "0")
    checkpoints.pause("sleep_in_save", "x")
    checkpoints.pause("sleep_in_best", "y")
    assert capsys.readouterr().err == "fault-inject: sleep_in_best y\n" and slept == [0.0]
