"""The decoding engine's exact techniques change no output: the same inputs decoded with every
technique off (the original search) and on give the same hypotheses, token for token, and the
same scores (to float rounding), for every cell, beam 1 and 4, one model and an ensemble."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import CELLS, make_session, pad, random_sentences, randomize, tiny_config

from zero import config as config_lib
from zero.candidates import BLOCK, NEG_INF, Logits, Scorer
from zero.decode import TECHNIQUES, Translator, strip_eos
from zero.model import Model
from zero.vocab import BOS, EOS, PAD

v1 = tf.compat.v1


def _variants(singles):
    variants = {"off": dict.fromkeys(TECHNIQUES, False), "on": dict.fromkeys(TECHNIQUES, True)}
    if singles:
        variants.update({t: {u: u == t for u in TECHNIQUES} for t in TECHNIQUES})
    return variants


def _decode(cell, beam, singles=False, members=1, variants=None, fewer=(), **model):
    """{variant: (ids, scores, steps)} of one batch of random sentences, every hypothesis of
    the beam read (n_best = beam), and {"on@n": ...} for each n of `fewer`: the techniques on,
    n hypotheses read."""
    model = {"num_encoder_layers": 1, "num_decoder_layers": 2, **model}
    base = tiny_config(cell=cell, beam_size=beam, max_decode_extra=6, **model)
    with tf.Graph().as_default():
        models = [Model(base, 20, 20, scope=f"m{i}") for i in range(members)]
        translators = {
            name: Translator(models, config_lib.Config({**base, **techniques}))
            for name, techniques in (variants or _variants(singles)).items()
        }
        init = v1.global_variables_initializer()
        with make_session() as sess:
            sess.run(init)
            # Peaked distributions: clear-cut decisions, sentences ending at different steps.
            randomize(sess, scale=1.0, seed=3)
            src = pad(random_sentences(np.random.default_rng(0), 9, 20, max_len=6))
            out = {name: t.run_with_details(sess, src, beam) for name, t in translators.items()}
            for n in fewer:
                out[f"on@{n}"] = translators["on"].run_with_details(sess, src, n)
            return {name: (ids, scores, more["steps"]) for name, (ids, scores, more) in out.items()}


def _assert_same(expected, got, n=None):
    """The first n hypotheses of every sentence (all without n) are the same."""
    ids, scores, _ = got
    for b in range(expected[0].shape[0]):
        for k in range(n or expected[0].shape[1]):
            if expected[1][b, k] <= NEG_INF / 10:  # an empty slot
                assert scores[b, k] <= NEG_INF / 10
                continue
            assert strip_eos(ids[b, k]) == strip_eos(expected[0][b, k]), (b, k)
            np.testing.assert_allclose(scores[b, k], expected[1][b, k], rtol=1e-5)


@pytest.mark.parametrize("beam", [1, 4])
@pytest.mark.parametrize("cell", CELLS)
def test_techniques_change_no_output(cell, beam):
    fewer = (1, 2) if beam > 1 else ()
    out = _decode(cell, beam, singles=cell in ("lrn", "gru"), fewer=fewer)
    for name, got in out.items():
        _assert_same(out["off"], got, int(name[3:]) if name.startswith("on@") else None)
    steps_off, steps_on = out["off"][2], out["on"][2]
    assert (steps_off == steps_off.max()).all(), "without dropping, every sentence runs to the end"
    assert (steps_on <= steps_off).all() and steps_on.min() < steps_off.max()
    for n in fewer:  # fewer hypotheses to make final: never more steps
        assert (out[f"on@{n}"][2] <= steps_on).all()


def test_stopping_at_the_n_best_runs_fewer_steps():
    """With decode_stop_at_n_best a sentence whose best finished hypothesis is final stops
    before its last beam slot is: fewer steps for the 1-best than for the whole beam."""
    out = _decode("lrn", 4, fewer=(1,))
    _assert_same(out["off"], out["on@1"], 1)
    assert out["on@1"][2].sum() < out["on"][2].sum()


@pytest.mark.parametrize("shared", [False, True])
def test_projected_memory_with_heads_and_layers_above(shared):
    """Two attention heads and two aligned layers above the attending one: the projected
    memory's per-head sums and its split among the layers change no output, with the cache
    per sentence or tiled per hypothesis."""
    on = {**dict.fromkeys(TECHNIQUES, True), "decode_shared_memory": shared}
    variants = {"off": {**on, "decode_projected_memory": False}, "on": on}
    out = _decode("lrn", 4, variants=variants, num_decoder_layers=3, num_heads=2)
    _assert_same(out["off"], out["on"])


@pytest.mark.parametrize("beam", [1, 4])
def test_techniques_change_no_output_of_an_ensemble(beam):
    out = _decode("lrn", beam, members=2)
    _assert_same(out["off"], out["on"])


def test_row_normaliser_gives_the_log_softmax_of_the_kept_words():
    """Scorer on Logits: each row's best words and their log-probabilities as numpy's
    log-softmax gives them, forced rows (only EOS) included, -inf padding columns ignored."""
    rng = np.random.default_rng(5)
    n, v, k = 6, 150, 3
    logits = np.full([n, 3 * BLOCK], -np.inf, np.float32)  # v words, -inf padding
    logits[:, :v] = rng.normal(0, 4, [n, v])
    logits[1, :v] = -30.0  # a flat row, one word far ahead: its softmax is near 1
    logits[1, 7] = 40.0
    shifted = logits[:, :v] - logits[:, :v].max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    log_p[:, [PAD, BOS]] = -np.inf  # never candidates
    forced = np.array([False, False, True, False, True, False])
    with tf.Graph().as_default():
        scorer = Scorer(v)
        values, ids = scorer.top(Logits(tf.constant(logits)), k, tf.constant(forced))
        with make_session() as sess:
            values, ids = sess.run([values, ids])
    for row in range(n):
        if forced[row]:
            assert ids[row, 0] == EOS and values[row, 1] <= NEG_INF / 10
            np.testing.assert_allclose(values[row, 0], log_p[row, EOS], atol=2e-5)
            continue
        best = np.argsort(-log_p[row], kind="stable")[:k]
        assert list(ids[row]) == list(best), row
        np.testing.assert_allclose(values[row], log_p[row, best], atol=2e-5)


def test_early_stop_runs_fewer_steps():
    """decode_early_stop (approximate) stops sentences sooner, never later, and still gives a
    finished hypothesis ending in EOS with a finite score for every sentence."""
    base = tiny_config(beam_size=4, max_decode_extra=6, num_encoder_layers=1)
    with tf.Graph().as_default():
        model = Model(base, 20, 20)
        exact = Translator([model], base)
        early = Translator([model], config_lib.Config({**base, "decode_early_stop": True}))
        init = v1.global_variables_initializer()
        with make_session() as sess:
            sess.run(init)
            randomize(sess, scale=1.0, seed=3)
            src = pad(random_sentences(np.random.default_rng(0), 9, 20, max_len=6))
            # Both against the whole beam's bar (early stop does not take the n-th best's).
            (_, _, a), (ids, scores, b) = (t.run_with_details(sess, src, 4) for t in (exact, early))
    assert (b["steps"] <= a["steps"]).all() and b["steps"].sum() < a["steps"].sum()
    assert np.isfinite(scores[:, 0]).all() and (scores[:, 0] > NEG_INF / 10).all()
    assert all(3 in row for row in ids[:, 0].tolist())  # EOS


def test_parallel_batches_give_the_sequential_results_in_order():
    """decode_parallel_batches decodes several batches at once in threads: every batch's
    hypotheses and scores equal decoding it alone, and results come back in batch order."""
    base = tiny_config(beam_size=4, max_decode_extra=6, num_encoder_layers=1)
    rng = np.random.default_rng(1)
    batches = [pad(random_sentences(rng, n, 20, max_len=3 + n % 4)) for n in range(1, 12)]
    with tf.Graph().as_default():
        model = Model(base, 20, 20)
        alone = Translator([model], config_lib.Config({**base, "decode_parallel_batches": 1}))
        three = Translator([model], config_lib.Config({**base, "decode_parallel_batches": 3}))
        init = v1.global_variables_initializer()
        with make_session() as sess:
            sess.run(init)
            randomize(sess, scale=1.0, seed=3)
            expected = [alone.run(sess, b) for b in batches]
            got = list(three.run_batches(sess, batches))
    assert [b is g for b, (g, _) in zip(batches, got, strict=True)] == [True] * len(batches)
    for want, (_, found) in zip(expected, got, strict=True):
        _assert_same((*want, None), (*found, None))
