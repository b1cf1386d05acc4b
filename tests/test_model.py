"""zero/model.py: paper parameter counts, teacher forcing == stepping, the loss, learning."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import CELLS, make_session, pad, random_sentences, randomize, tiny_config

from bench.paper import PAPER, VOCAB
from zero import config as config_lib
from zero.errors import UserError
from zero.model import Model, smoothed_cross_entropy
from zero.modes.params import parameter_table
from zero.vocab import BOS

v1 = tf.compat.v1

# docs/DESIGN.md / the paper (Zhang & Sennrich 2019, WMT14 En-De, vocabulary 27,750 per side).
# The paper's counts; it has no LSTM row: an LSTM in the same setting has about 254M.
PAPER_PARAMS = {cell: row.params_m * 1e6 for cell, row in PAPER.items()} | {"lstm": 254e6}


@pytest.mark.parametrize("cell", sorted(PAPER_PARAMS))
def test_paper_parameter_counts(cell):
    config = config_lib.load(
        f"configs/wmt14_{cell}.yaml",
        [f"src_vocab_size={VOCAB}", f"tgt_vocab_size={VOCAB}", "src_vocab=null", "tgt_vocab=null"],
    )
    total = sum(count for _, count in parameter_table(config))
    assert abs(total - PAPER_PARAMS[cell]) / PAPER_PARAMS[cell] < 0.01, total


def _tiny_batch(seed=0, vocab=20):
    rng = np.random.default_rng(seed)
    src = pad(random_sentences(rng, 3, vocab, 1, 6))
    tgt = pad(random_sentences(rng, 3, vocab, 1, 6))
    return src, tgt


@pytest.mark.parametrize("cell", CELLS)
def test_teacher_forcing_equals_stepping(graph, cell):
    """decode() at position t == step() fed the gold prefix: what makes beam search exact."""
    config = tiny_config(
        cell=cell,
        cell_layer_norm=cell in ("gru", "lrn"),
        num_heads=2 if cell == "atr" else 1,
        num_encoder_layers=1,
    )
    model = Model(config, 20, 20)
    src_ids, tgt_ids = _tiny_batch()
    src, tgt = tf.constant(src_ids), tf.constant(tgt_ids)
    enc = model.encode(src, training=False)
    teacher = tf.nn.log_softmax(model.decode(enc, tgt, training=False))
    cache = model.inference_cache(enc)
    states, stepped = enc["init"], []
    for t in range(tgt_ids.shape[1]):
        prev = tf.fill([tgt_ids.shape[0]], BOS) if t == 0 else tgt[:, t - 1]
        log_probs, states = model.step(prev, states, cache)
        stepped.append(log_probs)
    with make_session() as sess:
        sess.run(v1.global_variables_initializer())
        randomize(sess, 0.5)
        teacher, stepped = sess.run([teacher, tf.stack(stepped, 1)])
    mask = tgt_ids != 0
    np.testing.assert_allclose(stepped[mask], teacher[mask], rtol=1e-4, atol=1e-5)


def test_padding_does_not_change_logits(graph):
    """A sentence decoded alone or in a padded batch gets the same logits."""
    config = tiny_config(cell="lstm")
    model = Model(config, 20, 20)
    src_ids, tgt_ids = _tiny_batch(1)
    src = v1.placeholder(tf.int32, [None, None])
    tgt = v1.placeholder(tf.int32, [None, None])
    logits = model.decode(model.encode(src, False), tgt, False)
    with make_session() as sess:
        sess.run(v1.global_variables_initializer())
        randomize(sess, 0.5)
        batched = sess.run(logits, {src: src_ids, tgt: tgt_ids})
        for i in range(len(src_ids)):
            s, t = src_ids[i][src_ids[i] > 0], tgt_ids[i][tgt_ids[i] > 0]
            alone = sess.run(logits, {src: s[None], tgt: t[None]})[0]
            np.testing.assert_allclose(batched[i, : len(t)], alone, rtol=1e-4, atol=1e-5)


def _np_log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_label_smoothed_loss_matches_numpy(graph):
    eps = 0.1
    config = tiny_config(label_smoothing=eps)
    model = Model(config, 20, 20)
    src_ids, tgt_ids = _tiny_batch(2)
    src, tgt = tf.constant(src_ids), tf.constant(tgt_ids)
    logits = model.decode(model.encode(src, True), tgt, True)
    loss, stats = model.loss(src, tgt, training=True)
    eval_loss, eval_stats = model.loss(src, tgt, training=False)
    with make_session() as sess:
        sess.run(v1.global_variables_initializer())
        randomize(sess, 0.3)
        logits, loss, stats, eval_loss = sess.run([logits, loss, stats, eval_loss])
    vocab = logits.shape[-1]
    log_p = _np_log_softmax(logits.astype(np.float64))
    # Cross entropy against the smoothed target q = (1 - eps) one_hot + eps / V.
    q = (1 - eps) * np.eye(vocab)[tgt_ids] + eps / vocab
    token_loss = -(q * log_p).sum(-1)
    nll = -np.take_along_axis(log_p, tgt_ids[..., None], -1)[..., 0]
    mask = (tgt_ids != 0).astype(np.float64)
    expected = np.mean((token_loss * mask).sum(1) / mask.sum(1))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(stats["nll"], (nll * mask).sum(), rtol=1e-5)
    np.testing.assert_allclose(stats["sentence_nll"], (nll * mask).sum(1), rtol=1e-5)
    assert stats["tokens"] == mask.sum()
    # Evaluation: no smoothing.
    np.testing.assert_allclose(eval_loss, np.mean((nll * mask).sum(1) / mask.sum(1)), rtol=1e-5)


def test_dropout_is_a_function_of_the_seed(graph):
    config = tiny_config(dropout=0.3)
    seed = v1.placeholder(tf.int64, [2])
    model = Model(config, 20, 20, dropout_seed=seed)
    src_ids, tgt_ids = _tiny_batch(3)
    loss, _ = model.loss(tf.constant(src_ids), tf.constant(tgt_ids), training=True)
    eval_loss, _ = model.loss(tf.constant(src_ids), tf.constant(tgt_ids), training=False)
    with make_session() as sess:
        sess.run(v1.global_variables_initializer())
        a, b, c = (sess.run(loss, {seed: s}) for s in ([1, 5], [1, 5], [1, 6]))
        e1, e2 = (sess.run(eval_loss, {seed: s}) for s in ([1, 5], [1, 6]))
    assert a == b
    assert a != c
    assert e1 == e2


@pytest.mark.parametrize("cell", CELLS)
def test_loss_decreases_on_tiny_set(graph, cell):
    """A few dozen Adam steps fit 4 sentence pairs: gradients reach the whole model."""
    v1.set_random_seed(1)
    config = tiny_config(
        cell=cell, hidden_size=16, embed_size=16, num_encoder_layers=1, num_decoder_layers=1
    )
    model = Model(config, 20, 20)
    rng = np.random.default_rng(4)
    src = tf.constant(pad(random_sentences(rng, 4, 20, 2, 5)))
    tgt = tf.constant(pad(random_sentences(rng, 4, 20, 2, 5)))
    loss, _ = model.loss(src, tgt, training=True)
    train = v1.train.AdamOptimizer(0.03).minimize(loss)
    with make_session() as sess:
        sess.run(v1.global_variables_initializer())
        first = sess.run(loss)
        for _ in range(30):
            sess.run(train)
        last = sess.run(loss)
    assert last < 0.5 * first, (first, last)


def test_unknown_cell_is_a_user_error(graph):
    config = config_lib.Config({**tiny_config(), "cell": "lnr"})
    with pytest.raises(UserError, match="lrn"):
        Model(config, 20, 20)


def test_smoothed_cross_entropy_and_gradient_match_numpy(graph):
    """Loss, nll and d loss / d logits = softmax - q of the custom-gradient cross entropy,
    including rows whose label's probability underflows to 0 in float32."""
    eps, rng = 0.1, np.random.default_rng(7)
    x = rng.normal(0, 3, (5, 11))
    x[0, 4] = -200.0  # the label's probability is 0 in float32
    labels = np.array([4, 0, 10, 3, 3])
    weights = rng.uniform(0.5, 2.0, 5)
    logits = tf.constant(x, tf.float32)
    loss, nll = smoothed_cross_entropy(logits, tf.constant(labels), eps)
    grad = tf.gradients(tf.reduce_sum(loss * weights), logits)[0]
    with make_session() as sess:
        loss, nll, grad = sess.run([loss, nll, grad])
    log_p = _np_log_softmax(x)
    q = (1 - eps) * np.eye(11)[labels] + eps / 11
    np.testing.assert_allclose(loss, -(q * log_p).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(nll, -log_p[np.arange(5), labels], rtol=1e-5)
    np.testing.assert_allclose(grad, (np.exp(log_p) - q) * weights[:, None], atol=1e-6)
