"""zero/weights.py, zero/plots.py: the token-weight decomposition of LRN/oLRN encoder layers
reconstructs the forward pass; the weights mode writes valid plots and an index of them."""

import os
import re
import struct

import numpy as np
import pytest
import tensorflow as tf
from helpers import make_session, pad, random_sentences, randomize, tiny_config, write_corpus

import run
from zero import plots
from zero.checkpoints import PREFIX
from zero.errors import UserError
from zero.model import Model
from zero.vocab import load_vocabs
from zero.weights import check_config, decompose, layer_gates

v1 = tf.compat.v1


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_decompose_by_hand():
    """Three steps, one unit: the weights are the products the module docstring states."""
    rng = np.random.default_rng(0)
    i, f, o, r = (rng.uniform(0.1, 0.9, (3, 1)) for _ in range(4))
    lrn = decompose([("x", {"i": i, "f": f, "r": r})], np.ones(3))
    w = lrn["w"][:, :, 0, 0]
    assert w[2, 0] == pytest.approx(i[0, 0] * f[1, 0] * f[2, 0])
    assert w[2, 1] == pytest.approx(i[1, 0] * f[2, 0])
    assert w[1, 1] == pytest.approx(i[1, 0])
    assert np.all(np.triu(w, 1) == 0)
    olrn = decompose([("x", {"i": i, "f": f, "r": r, "o": o})], np.ones(3))
    w = olrn["w"][:, :, 0, 0]
    assert w[2, 0] == pytest.approx(i[0, 0] * o[0, 0] * f[1, 0] * o[1, 0] * f[2, 0])
    assert w[2, 2] == pytest.approx(i[2, 0])
    # Right to left: the last token comes first; padding (mask 0) is skipped.
    bw = decompose([("x", {"i": i, "f": f, "r": r})], np.array([1, 1, 0]), reverse=True)
    w = bw["w"][:, :, 0, 0]
    assert w.shape == (2, 2)
    assert w[0, 1] == pytest.approx(i[1, 0] * f[0, 0])
    assert w[1, 0] == 0
    # A padded position inside the sequence carries the state: its gates play no part.
    hole = decompose([("x", {"i": i, "f": f, "r": r})], np.array([1, 0, 1]))
    w = hole["w"][:, :, 0, 0]
    assert w[1, 0] == pytest.approx(i[0, 0] * f[2, 0])
    assert w[1, 1] == pytest.approx(i[2, 0])


def _forward(cell, direction, context_aware, layer, layer_norm, precision, seed=0):
    """A random tiny model's encoder layer run on a padded batch and on each sentence alone
    -> (part names, [batch fetch, *one fetch per sentence]) of gates, outputs and mask."""
    config = tiny_config(
        cell=cell,
        cell_layer_norm=layer_norm,
        context_aware=context_aware,
        precision=precision,
        seed=seed,
    )
    model = Model(config, 20, 20)
    sentences = random_sentences(np.random.default_rng(seed), 4, 20, 1, 7)
    src = v1.placeholder(tf.int32, [None, None])
    enc = model.encode(src, training=False)
    parts, out = layer_gates(model, enc, layer, direction)
    fetch = {"parts": [g for _, g in parts], "out": out, "mask": enc["mask"]}
    with make_session() as sess:
        sess.run(v1.global_variables_initializer())
        randomize(sess, 0.7, seed)
        runs = [sess.run(fetch, {src: pad(sentences)})]
        runs += [sess.run(fetch, {src: pad([s])}) for s in sentences]
    return [n for n, _ in parts], runs


def _sentence(names, got, b):
    return [(n, {k: v[b] for k, v in g.items()}) for n, g in zip(names, got["parts"], strict=True)]


CASES = [
    # cell, direction, context_aware, layer, cell_layer_norm, precision
    ("lrn", "fw", True, 0, False, "float32"),
    ("lrn", "bw", True, 0, True, "float32"),
    ("lrn", "bw", False, 0, False, "float32"),
    ("lrn", "fw", True, 1, True, "float32"),
    ("lrn", "bw", True, 0, False, "bfloat16"),
    ("olrn", "fw", True, 0, True, "float32"),
    ("olrn", "bw", True, 0, False, "float32"),
    ("olrn", "bw", False, 0, True, "float32"),
    ("olrn", "fw", True, 1, False, "bfloat16"),
]


@pytest.mark.parametrize("cell,direction,context_aware,layer,layer_norm,precision", CASES)
def test_weights_reconstruct_forward_pass(
    graph, cell, direction, context_aware, layer, layer_norm, precision
):
    """sum_k w_tk * r_k is the layer's state of the forward pass (LRN: h_t; oLRN: c_t, and
    o_t * c_t = h_t) for every sentence of a padded batch, and a sentence's weights are the
    same in the padded batch as alone."""
    names, (batch, *alone) = _forward(cell, direction, context_aware, layer, layer_norm, precision)
    assert names == (["x", "fw"] if direction == "bw" and context_aware else ["x"])
    mask = batch["mask"]
    assert mask.min() == 0  # the batch is padded
    reverse = direction == "bw"
    for b in range(len(mask)):
        result = decompose(_sentence(names, batch, b), mask[b], reverse)
        tokens = mask[b] > 0
        h = batch["out"][b][tokens]
        c = np.einsum("tkpd,kpd->td", result["w"], result["r"])
        if cell == "olrn":
            np.testing.assert_allclose(c, batch["parts"][-1]["c"][b][tokens], atol=1e-5)
            np.testing.assert_allclose(result["o"][:, -1] * c, h, atol=1e-5)
        else:
            np.testing.assert_allclose(c, h, atol=1e-5)
        np.testing.assert_allclose(result["h"], h, atol=1e-5)
        assert np.all(result["w"] >= 0) and np.all(result["w"] <= 1)
        single = decompose(_sentence(names, alone[b], 0), alone[b]["mask"][0], reverse)
        np.testing.assert_allclose(single["w"], result["w"], atol=1e-6)


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def _model_dir(tmp_path, cell="lrn", **overrides):
    """A model directory with random weights over the toy corpus's vocabularies."""
    files = write_corpus(str(tmp_path / "data"), n_train=40)
    model_dir = str(tmp_path / "model")
    config = tiny_config(cell=cell, output_dir=model_dir, **files, **overrides)
    _, _, src_size, tgt_size = load_vocabs(config)
    graph = tf.Graph()
    with graph.as_default():
        Model(config, src_size, tgt_size).encode(v1.placeholder(tf.int32, [None, None]), False)
        with make_session(graph) as sess:
            sess.run(v1.global_variables_initializer())
            randomize(sess, 0.7)
            v1.train.Saver().save(sess, os.path.join(model_dir, PREFIX), global_step=1)
    config_path = os.path.join(model_dir, "config.yaml")
    config.save(config_path)
    return config_path, files["dev_src"]


@pytest.mark.parametrize("cell,direction", [("lrn", "fw"), ("olrn", "bw")])
def test_weights_mode_writes_plots_and_index(tmp_path, cell, direction):
    config_path, dev = _model_dir(tmp_path, cell)
    with open(dev, encoding="utf-8") as f:
        lines = f.read().splitlines()[:3] + ["w1 zzz w2", ""]  # an unknown word, an empty line
    source = tmp_path / "input.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "weights"
    args = ["--mode", "weights", "--config", config_path, "--set", f"input={source}"]
    args += ["--set", f"weights_dir={out}", "--set", f"direction={direction}"]
    assert run.main(args) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    referenced = set(re.findall(r'(?:src|href)="([^"]+)"', page))
    n_parts = 2 if direction == "bw" else 1
    for number, line in enumerate(lines, 1):
        stem = f"sentence_{number:04d}"
        n_tokens = len(line.split()) + 1  # EOS
        assert {stem + "_heatmap.png", stem + "_final.png", stem + ".npz"} <= referenced
        assert _png_size(out / f"{stem}_heatmap.png") == plots.heatmap_pixels(n_tokens, n_parts)
        assert _png_size(out / f"{stem}_final.png") == plots.bars_pixels(n_tokens)
        saved = np.load(out / f"{stem}.npz")
        assert list(saved["tokens"]) == line.split() + ["</s>"]
        assert list(saved["unk"]) == [t == "zzz" for t in line.split()] + [False]
        assert saved["w"].shape[:3] == (n_tokens, n_tokens, n_parts)
        np.testing.assert_allclose(saved["mean_w"], saved["w"].mean(-1), atol=1e-7)
        np.testing.assert_allclose(
            np.einsum("tkpd,kpd->td", saved["w"], saved["r"]), saved["c"], atol=1e-5
        )
        assert int(saved["final"]) == (0 if direction == "bw" else n_tokens - 1)
        assert line in page
    # Every referenced file exists beside the page (relative paths, no server needed).
    assert all((out / name).is_file() for name in referenced)


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"cell": "gru"}, "LRN and oLRN layers only"),
        ({"cell": "lstm"}, "'cell' is 'lstm'"),
        ({"lrn_activation": "tanh"}, "exact only for the identity"),
        ({"cell": "olrn", "lrn_activation": "tanh"}, "exact only for the identity"),
        ({"layer": 2}, "'layer': 2 is not an encoder layer"),
        ({"layer": 1, "direction": "bw"}, "only layer 0 has a backward half"),
    ],
)
def test_check_config_errors(overrides, message):
    with pytest.raises(UserError, match=re.escape(message)):
        check_config(tiny_config(**overrides))


def test_weights_mode_refuses_gru_and_tanh(tmp_path, capsys):
    for sets in (["cell=gru"], ["lrn_activation=tanh"]):
        args = ["--mode", "weights", "--set", "input=in.txt", "--set", "src_vocab_size=20"]
        args += ["--set", "tgt_vocab_size=20"]
        for kv in sets:
            args += ["--set", kv]
        assert run.main(args) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: weights mode") and "Traceback" not in err
