"""Translate mode: raw text in, detokenized text out, equal to the manual chain (the prepare
pipeline's tokenisation and BPE, test mode, BPE removal, detokenisation); streaming; errors."""

import os
import selectors
import subprocess
import sys

import pytest
from served_model import ROOT, prepare_slice, random_model

from zero import config as config_lib
from zero.errors import UserError
from zero.evaluate import postprocess
from zero.modes import MODES

# Short outputs: random weights rarely choose EOS, so hypotheses run to the length limit.
DECODE = {"max_decode_extra": 3, "beam_size": 3}


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepare_slice(str(tmp_path_factory.mktemp("translate")), n_test=20)


@pytest.fixture(scope="module")
def models(prep, tmp_path_factory):
    """cell -> a model directory with random weights, built on first use."""
    built = {}

    def get(cell):
        if cell not in built:
            built[cell] = str(tmp_path_factory.mktemp(cell) / "model")
            random_model(built[cell], prep, cell, **DECODE)
        return built[cell]

    return get


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    return str(path)


def run_mode(mode, model_dir, **sets):
    config = config_lib.load(
        os.path.join(model_dir, "config.yaml"), [f"{k}={v}" for k, v in sets.items()]
    )
    MODES[mode](config)


@pytest.mark.parametrize("cell", ["lrn", "gru"])
def test_translate_equals_manual_chain(prep, models, tmp_path, cell):
    model = models(cell)
    raw = lines_of(os.path.join(prep, "test.en"))
    # The pipeline's own tokenized+BPE'd test set, decoded by test mode, then postprocessed.
    bpe = lines_of(os.path.join(prep, "test.bpe.en"))
    run_mode("test", model, input=os.path.join(prep, "test.bpe.en"), output=tmp_path / "t.out")
    expected = postprocess(lines_of(tmp_path / "t.out"), "de")
    assert len(expected) == len(raw) == len(bpe) == 20 and len(set(expected)) > 5

    # Raw input with an empty and a blank line among the sentences: they stay empty.
    source = raw[:7] + ["", "   "] + raw[7:]
    run_mode("translate", model, input=write_lines(tmp_path / "raw.en", source),
             output=tmp_path / "raw.de")  # fmt: skip
    assert lines_of(tmp_path / "raw.de") == expected[:7] + ["", ""] + expected[7:]
    assert all("@@" not in line for line in expected)


def test_translate_streams_line_by_line(prep, models, tmp_path):
    model = models("lrn")
    raw = lines_of(os.path.join(prep, "test.en"))[:3]
    run_mode("translate", model, input=write_lines(tmp_path / "in", raw), output=tmp_path / "out")
    expected = lines_of(tmp_path / "out")

    proc = subprocess.Popen(
        ["bash", os.path.join(ROOT, "scripts", "translate.sh"), model],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "ZERO_PYTHON": sys.executable},
    )
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)

    def answer(line):
        proc.stdin.write(line.encode("utf-8") + b"\n")
        proc.stdin.flush()
        # stdin stays open: the answer must come without end of file (generous timeout: a
        # busy machine takes a while to start TensorFlow and build the graph).
        if not selector.select(timeout=300):
            proc.kill()
            pytest.fail("no output line while stdin is open: " + proc.stderr.read().decode())
        return proc.stdout.readline().decode("utf-8").rstrip("\n")

    try:
        assert answer(raw[0]) == expected[0]
        assert answer("") == ""
        assert answer(raw[2]) == expected[2]
        proc.stdin.close()
        assert proc.stdout.read() == b""
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_translate_needs_prep_dir(prep, models, tmp_path):
    model = models("lrn")
    source = write_lines(tmp_path / "in", ["Hello."])
    with pytest.raises(UserError, match="'prep_dir' is not set"):
        run_mode("translate", model, input=source, prep_dir="null")
    with pytest.raises(UserError, match="'prep_dir': directory not found: .*nowhere"):
        run_mode("translate", model, input=source, prep_dir=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="prep.json: no such file"):
        run_mode("translate", model, input=source, prep_dir=tmp_path / "empty")
    # A prep.json whose BPE codes are gone: named, not a traceback.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "prep.json").write_text(open(os.path.join(prep, "prep.json")).read())
    with pytest.raises(UserError, match="bpe.codes not found"):
        run_mode("translate", model, input=source, prep_dir=broken)


def test_translate_missing_input(models, tmp_path):
    model = models("lrn")
    with pytest.raises(UserError, match="'input': cannot open"):
        run_mode("translate", model, input=tmp_path / "missing.en")
