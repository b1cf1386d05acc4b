"""Bad input, table-driven: each case exits non-zero with one `error: ...` paragraph that names
the file, line or key at fault, and never a traceback. Most cases call run.main() in-process;
a few run the real command line (`python run.py`, `scripts/score.sh`) to prove the exit status
and the absence of a traceback end to end."""

import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import yaml
from helpers import ROOT, TINY, write_corpus

import run
from zero import config as config_lib
from zero.checkpoints import BEST_DIR, checkpoint_files, listed_checkpoints
from zero.modes import MODES
from zero.vocab import Vocab

SETTINGS = {
    **TINY,
    "src_vocab_size": 0,
    "tgt_vocab_size": 0,
    "num_encoder_layers": 1,
    "num_decoder_layers": 1,
    "batch_tokens": 40,
    "max_len": 8,
    "shuffle_buffer": 100,
    "log_every": 1,
    "eval_every": 3,
    "beam_size": 2,
    "max_decode_extra": 2,
    "lr": 0.01,
    "seed": 3,
    "max_steps": 3,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Corpus paths and a model directory trained 3 steps (checkpoint 3, best/)."""
    base = tmp_path_factory.mktemp("trained")
    corpus = write_corpus(str(base / "corpus"), n_train=50, n_dev=6)
    corpus["dev_ref"] = corpus["dev_tgt"]
    config = config_lib.load(None, [f"{k}={v}" for k, v in SETTINGS.items()])
    config.update(corpus, output_dir=str(base / "model"))
    MODES["train"](config)  # as run.py does: it also records the vocabularies (vocab.json)
    return corpus, str(base / "model")


class Ctx:
    """What a case builds its command from: the corpus, the model, a scratch directory."""

    def __init__(self, trained, tmp_path):
        self.corpus, self.model = trained
        self.tmp = str(tmp_path)
        self.model_config = config_lib.saved_path(self.model)

    def file(self, name, content):
        path = os.path.join(self.tmp, name)
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def lines(self, name, lines):
        return self.file(name, "".join(line + "\n" for line in lines))

    def train_config(self, **overrides):
        """A training config file for a fresh output directory."""
        values = {**SETTINGS, **self.corpus, "output_dir": os.path.join(self.tmp, "out")}
        values.update(overrides)
        return self.file("train.yaml", yaml.safe_dump(values))

    def model_copy(self):
        directory = os.path.join(self.tmp, "model")
        shutil.copytree(self.model, directory)
        return directory

    def dev_src(self):
        return self.corpus["dev_src"]


def _argv(mode, config=None, **sets):
    argv = ["--mode", mode] + (["--config", config] if config else [])
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    return argv


# Each case: ctx -> (argv or ["score.sh", hyp, ref], [substrings the message must contain]).


def misaligned(ctx):
    src = ctx.lines("m.src", ["w1 w2"] * 5)
    tgt = ctx.lines("m.tgt", ["x1 x2"] * 4)
    return _argv("train", ctx.train_config(train_src=src, train_tgt=tgt)), [
        f"{src} has 5 lines but {tgt} has 4",
        "aligned line by line",
    ]


def empty_files(ctx):
    src, tgt = ctx.file("e.src", ""), ctx.file("e.tgt", "")
    return _argv("train", ctx.train_config(train_src=src, train_tgt=tgt)), [src, tgt, "empty"]


def invalid_utf8(ctx):
    src = ctx.file("u.src", b"w1 w2\nw3\nw4 \xff w5\nw6\n")
    tgt = ctx.lines("u.tgt", ["x1", "x2", "x3", "x4"])
    return _argv("train", ctx.train_config(train_src=src, train_tgt=tgt)), [
        f"{src}:3: invalid UTF-8"
    ]


def all_lines_too_long(ctx):
    src = ctx.lines("l.src", [" ".join(["w1"] * 500)] * 6)
    tgt = ctx.lines("l.tgt", [" ".join(["x1"] * 500)] * 6)
    return _argv("train", ctx.train_config(train_src=src, train_tgt=tgt)), [
        src,
        tgt,
        "within max_len=8 tokens",
        "6 pairs are longer",
    ]


def unknown_key_in_yaml(ctx):
    path = ctx.file("k.yaml", "hiden_size: 8\n")
    return _argv("params", path), [path, "unknown config key 'hiden_size'", "'hidden_size'"]


def unknown_key_in_set(ctx):
    return _argv("train", ctx.train_config(), max_step=3), [
        "--set",
        "unknown config key 'max_step'",
        "did you mean 'max_steps'",
    ]


def wrong_type_in_yaml(ctx):
    path = ctx.file("t.yaml", "hidden_size: big\n")
    return _argv("params", path), [path, "key 'hidden_size' must be an int", "'big'"]


def wrong_type_in_set(ctx):
    return _argv("train", ctx.train_config(), dropout="high"), ["key 'dropout' must be a float"]


def unknown_cell(ctx):
    return _argv("train", ctx.train_config(cell="lstn")), [
        "config key 'cell'",
        "unknown value 'lstn'",
        "did you mean 'lstm'",
    ]


def unknown_mode(ctx):
    return _argv("tset", ctx.train_config()), ["unknown mode 'tset'", "did you mean 'test'"]


def time_progress_without_budget(ctx):
    return _argv("train", ctx.train_config(), lr_progress="time"), [
        "config key 'lr_progress'",
        "positive max_time",
    ]


def missing_vocabulary(ctx):
    missing = os.path.join(ctx.tmp, "no-such-vocab.txt")
    return _argv("train", ctx.train_config(src_vocab=missing)), [
        "config key 'src_vocab'",
        f"vocabulary file not found: {missing}",
    ]


def not_a_vocabulary(ctx):
    path = ctx.lines("v.txt", ["hello", "world"])
    return _argv("train", ctx.train_config(tgt_vocab=path)), [path, "not a vocabulary"]


def decode_other_vocabulary(ctx):
    other = Vocab(
        list(Vocab.load(ctx.corpus["tgt_vocab"]).tokens[:4]) + [f"y{i}" for i in range(30)]
    )
    path = os.path.join(ctx.tmp, "other.vocab")
    other.save(path)
    return _argv("test", ctx.model_config, input=ctx.dev_src(), tgt_vocab=path), [
        "vocabulary mismatch",
        f"the model in {ctx.model}",
        ctx.corpus["tgt_vocab"],
        f"config key 'tgt_vocab' gives {path}",
    ]


def decode_other_cell(ctx):
    return _argv("test", ctx.model_config, input=ctx.dev_src(), cell="gru"), [
        f"the model in {ctx.model} does not match the config",
        "cell: 'lrn' in the model, 'gru' in the config",
    ]


def decode_checkpoint_of_other_size(ctx):
    checkpoint = listed_checkpoints(ctx.model)[-1]
    config = ctx.train_config(output_dir=os.path.join(ctx.tmp, "empty"), hidden_size=16)
    return _argv("test", config, input=ctx.dev_src(), checkpoint=checkpoint), [
        f"checkpoint {checkpoint} does not fit the configured model",
        "[8",
        "[16",
    ]


def resume_with_other_settings(ctx):
    model = ctx.model_copy()
    return _argv("train", config_lib.saved_path(model), output_dir=model, grad_accum=2), [
        "does not fit the configured model",
        "accum",
        "grad_accum",
    ]


def resume_with_other_vocabulary(ctx):
    model = ctx.model_copy()
    return _argv(
        "train", config_lib.saved_path(model), output_dir=model, src_vocab=ctx.corpus["tgt_vocab"]
    ), ["vocabulary mismatch", f"the model in {model}", "config key 'src_vocab'"]


def score_length_mismatch(ctx):
    hyp = ctx.lines("hyp.de", ["a b", "c d", "e f"])
    ref = ctx.lines("ref.de", ["a b", "c d"])
    return ["score.sh", hyp, ref], [f"hypothesis {hyp} has 3 lines", f"reference {ref} has 2"]


def score_mode_misaligned(ctx):
    ref = ctx.lines("r.tgt", ["x1"] * 2)
    return _argv("score", ctx.model_config, input=ctx.dev_src(), reference=ref), [
        f"{ctx.dev_src()} has 6 lines but {ref} has 2"
    ]


def decode_on_empty_directory(ctx):
    empty = os.path.join(ctx.tmp, "empty")
    os.makedirs(empty)
    config = ctx.train_config(output_dir=empty)
    return _argv("test", config, input=ctx.dev_src()), [f"no checkpoint found in {empty}"]


def decode_missing_checkpoint(ctx):
    prefix = os.path.join(ctx.model, "model.ckpt-999")
    return _argv("test", ctx.model_config, input=ctx.dev_src(), checkpoint=prefix), [
        f"checkpoint not found: {prefix}"
    ]


def decode_damaged_checkpoint(ctx):
    model = ctx.model_copy()
    best = listed_checkpoints(os.path.join(model, BEST_DIR))[-1]
    os.truncate(checkpoint_files(best)[1], 100)
    return _argv("test", config_lib.saved_path(model), output_dir=model, input=ctx.dev_src()), [
        f"checkpoint {best} is damaged or incomplete",
        "--set checkpoint=",
    ]


def average_damaged_checkpoint(ctx):
    model = ctx.model_copy()
    latest = listed_checkpoints(model)[-1]
    os.truncate(checkpoint_files(latest)[1], 100)
    return _argv("average", config_lib.saved_path(model), output_dir=model), [
        latest,
        "damaged",
    ]


def decode_empty_input(ctx):
    path = ctx.file("empty.src", "")
    return _argv("test", ctx.model_config, input=path), [f"{path} is empty"]


def decode_input_invalid_utf8(ctx):
    path = ctx.file("bad.src", b"w1 w2\n\xc3\x28 w3\n")
    return _argv("test", ctx.model_config, input=path), [f"{path}:2: invalid UTF-8"]


def decode_without_input(ctx):
    return _argv("test", ctx.model_config), ["test mode needs the input file", "input="]


def nan_loss(ctx):
    model = ctx.model_copy()
    return _argv("train", config_lib.saved_path(model), output_dir=model, lr=1e30, max_steps=30), [
        "the training loss became",
        f"the last good checkpoint {os.path.join(model, 'model.ckpt-3')} is kept",
        "Lower the learning rate (lr=1e+30)",
    ]


def missing_config_file(ctx):
    path = os.path.join(ctx.tmp, "nope.yaml")
    return _argv("train", path), [f"config file not found: {path}"]


def invalid_yaml(ctx):
    path = ctx.file("bad.yaml", "hidden_size: 8\ncell: [lrn\nlr: 1\n")
    return _argv("train", path), [path, "not valid YAML at line"]


def training_files_not_set(ctx):
    path = ctx.file("no-train.yaml", yaml.safe_dump({**SETTINGS, "output_dir": ctx.tmp + "/o"}))
    return _argv("train", path), ["config key 'train_src' is required"]


def training_file_missing(ctx):
    missing = os.path.join(ctx.tmp, "nowhere.src")
    return _argv("train", ctx.train_config(train_src=missing)), [f"{missing}: no such file"]


CASES = [
    # (case, how to run it)
    (misaligned, "run.py"),
    (empty_files, "main"),
    (invalid_utf8, "main"),
    (all_lines_too_long, "main"),
    (unknown_key_in_yaml, "main"),
    (unknown_key_in_set, "main"),
    (wrong_type_in_yaml, "main"),
    (wrong_type_in_set, "main"),
    (unknown_cell, "main"),
    (unknown_mode, "run.py"),
    (time_progress_without_budget, "main"),
    (missing_vocabulary, "main"),
    (not_a_vocabulary, "main"),
    (decode_other_vocabulary, "run.py"),
    (decode_other_cell, "main"),
    (decode_checkpoint_of_other_size, "main"),
    (resume_with_other_settings, "main"),
    (resume_with_other_vocabulary, "main"),
    (score_length_mismatch, "score.sh"),
    (score_mode_misaligned, "main"),
    (decode_on_empty_directory, "main"),
    (decode_missing_checkpoint, "main"),
    (decode_damaged_checkpoint, "main"),
    (average_damaged_checkpoint, "main"),
    (decode_empty_input, "main"),
    (decode_input_invalid_utf8, "main"),
    (decode_without_input, "main"),
    (nan_loss, "main"),
    (missing_config_file, "main"),
    (invalid_yaml, "run.py"),
    (training_files_not_set, "main"),
    (training_file_missing, "main"),
]


def _run_case(argv, how, capsys):
    """-> (exit status, stderr)."""
    if how == "main":
        capsys.readouterr()
        code = run.main(argv)
        return code, capsys.readouterr().err
    if how == "score.sh":
        command = ["bash", os.path.join(ROOT, "scripts", "score.sh"), *argv[1:]]
    else:
        command = [sys.executable, "run.py", *argv]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stderr


@pytest.mark.parametrize("case, how", CASES, ids=[c.__name__ for c, _ in CASES])
def test_bad_input(trained, tmp_path, capsys, case, how):
    argv, expected = case(Ctx(trained, tmp_path))
    code, err = _run_case(argv, how, capsys)
    assert code == 1, err
    assert "Traceback" not in err, err
    # One paragraph: the last thing on stderr, one line starting with "error: ".
    assert "error: " in err, err
    message = err[err.index("error: ") :]
    assert message.endswith("\n") and message.count("\n") == 1, err
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"


def test_nan_loss_keeps_the_last_good_checkpoint(trained, tmp_path, capsys):
    ctx = Ctx(trained, tmp_path)
    argv, _ = nan_loss(ctx)
    model = os.path.join(ctx.tmp, "model")
    before = {f: os.path.getsize(os.path.join(model, f)) for f in os.listdir(model)}
    assert run.main(argv) == 1
    assert "Lower the learning rate" in capsys.readouterr().err
    listed = listed_checkpoints(model)
    assert [os.path.basename(p) for p in listed] == ["model.ckpt-3"]
    for name, size in before.items():
        if name.startswith("model.ckpt"):
            assert os.path.getsize(os.path.join(model, name)) == size
    reader = tf.train.load_checkpoint(listed[-1])
    for name, dtype in reader.get_variable_to_dtype_map().items():
        if dtype.is_floating:
            assert np.all(np.isfinite(reader.get_tensor(name))), name


def test_long_lines_are_skipped_and_counted(trained, tmp_path, capsys):
    """Lines far beyond max_len are skipped, and training says how many."""
    ctx = Ctx(trained, tmp_path)
    src = [line.rstrip("\n") for line in open(ctx.corpus["train_src"], encoding="utf-8")]
    tgt = [line.rstrip("\n") for line in open(ctx.corpus["train_tgt"], encoding="utf-8")]
    for i in (3, 17, 30):
        src[i] = " ".join(["w1"] * 5000)
    tgt[40] = " ".join(["x2"] * 2000)
    config = ctx.train_config(
        train_src=ctx.lines("long.src", src), train_tgt=ctx.lines("long.tgt", tgt), max_steps=9
    )
    capsys.readouterr()
    assert run.main(_argv("train", config)) == 0
    out = capsys.readouterr().err  # the training log
    assert "data epoch 0 done: 46 pairs" in out
    assert "skipped 4 pairs longer than max_len=8 tokens" in out
    assert not math.isnan(float(out.split("loss ")[-1].split()[0]))
