"""Export mode: the SavedModel, loaded by plain TensorFlow in a fresh process that cannot import
this project, translates BPE'd strings exactly as test mode does, for every cell."""

import json
import os
import subprocess
import sys

import pytest
from helpers import CELLS
from served_model import ROOT, prepare_slice, random_model

from zero import config as config_lib
from zero.errors import UserError
from zero.modes import MODES
from zero.preprocess import Preprocessor

DECODE = {"max_decode_extra": 3, "beam_size": 3}  # short outputs from random weights
# ZERO_FAST_TESTS=1: LRN and one gated cell only.
FAST = os.environ.get("ZERO_FAST_TESTS") == "1"
SERVED = ["lrn", "gru"] if FAST else CELLS

# Only TensorFlow: loads each SavedModel, runs its serving signature on the lines of stdin.
LOAD = """
import json, sys
import tensorflow as tf
jobs, out = json.load(sys.stdin), {}
for name, path in jobs["models"].items():
    serve = tf.saved_model.load(path).signatures["serving_default"]
    result = serve(source=tf.constant(jobs["lines"], tf.string))
    out[name] = {
        "translation": [t.decode("utf-8") for t in result["translation"].numpy().tolist()],
        "score": result["score"].numpy().tolist(),
    }
assert not any(m == "zero" or m.startswith(("zero.", "rnns")) for m in sys.modules)
print(json.dumps(out))
"""


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def load_config(model_dir, **sets):
    return config_lib.load(
        os.path.join(model_dir, "config.yaml"), [f"{k}={v}" for k, v in sets.items()]
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Per cell: test mode's n-best output and the SavedModel's answer on the same lines."""
    work = tmp_path_factory.mktemp("export")
    prep = prepare_slice(str(work), n_test=50)
    # 50 sample sentences, an empty line and words no vocabulary has.
    lines = lines_of(os.path.join(prep, "test.bpe.en")) + ["", "qqzx@@ vbn unknownword"]
    source = work / "source.bpe"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    expected, models, model_dirs = {}, {}, {}
    for seed, cell in enumerate(SERVED):
        model = model_dirs[cell] = str(work / cell)
        random_model(model, prep, cell, seed=seed, **DECODE)
        out = work / f"{cell}.nbest"
        # One batch, as the SavedModel gets them: another batching rounds differently.
        run = load_config(model, input=source, output=out, n_best=2, decode_batch_tokens=10**6)
        MODES["test"](run)
        best = {}
        for row in lines_of(out):
            index, text, score = row.split(" ||| ")
            best.setdefault(int(index), (text, float(score)))
        expected[cell] = [best.get(i, ("", 0.0)) for i in range(len(lines))]
        models[cell] = str(work / "serving" / cell / "1")
        if cell == "lrn":  # the script, end to end; the others in-process (faster)
            subprocess.run(
                ["bash", os.path.join(ROOT, "scripts", "export.sh"), model, models[cell]],
                check=True,
                env={**os.environ, "ZERO_PYTHON": sys.executable},
            )
        else:
            MODES["export"](load_config(model, export_dir=models[cell]))
    # A fresh interpreter in isolated mode (no PYTHONPATH, no script directory on sys.path),
    # started elsewhere: it cannot import this project.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The batch in test mode's order (sorted by length): a row's rounding, and so the near
    # ties of these random models, depends on where in the batch it is.
    order = sorted(range(len(lines)), key=lambda i: len(lines[i].split()))
    proc = subprocess.run(
        [sys.executable, "-I", "-c", LOAD],
        input=json.dumps({"models": models, "lines": [lines[i] for i in order]}),
        capture_output=True,
        text=True,
        cwd=str(work),
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    for result in served.values():  # back to input order
        for key, values in result.items():
            result[key] = [v for _, v in sorted(zip(order, values, strict=True))]
    return {
        "lines": lines,
        "expected": expected,
        "served": served,
        "models": models,
        "prep": prep,
        "model_dirs": model_dirs,
    }


@pytest.mark.parametrize(
    "cell", [c if c in ("lrn", "gru") else pytest.param(c, marks=pytest.mark.slow) for c in CELLS]
)
def test_saved_model_equals_test_mode(exported, cell):
    expected, served = exported["expected"][cell], exported["served"][cell]
    assert served["translation"] == [text for text, _ in expected]
    # test mode prints scores to 4 decimals
    assert served["score"] == pytest.approx([score for _, score in expected], abs=6e-5)
    assert served["translation"][-2] == "" and served["score"][-2] == 0.0  # the empty line
    assert len(set(served["translation"])) > 10  # real, varied outputs


def test_export_carries_preprocessing(exported):
    extra = os.path.join(exported["models"]["gru"], "assets.extra")
    raw = lines_of(os.path.join(exported["prep"], "test.en"))[:10]
    assert (
        Preprocessor(extra)(raw, "en")
        == lines_of(os.path.join(exported["prep"], "test.bpe.en"))[:10]
    )


def test_export_refuses_bad_target(exported):
    model = exported["model_dirs"]["lrn"]
    with pytest.raises(UserError, match="needs the output directory"):
        MODES["export"](load_config(model))
    with pytest.raises(UserError, match="already exists and is not empty"):
        MODES["export"](load_config(model, export_dir=exported["models"]["lrn"]))
