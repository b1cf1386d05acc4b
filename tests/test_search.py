"""zero/search.py, zero/decode.py: greedy and beam search against independent loops, batching,
ensembles, n-best lists, length limits, checkpoint averaging and `run.py --mode test`."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, assign, make_session, pad, tiny_config, trained_tiny_model

from zero import config as config_lib
from zero import inference, search
from zero.checkpoints import average_checkpoints, listed_checkpoints
from zero.decode import Translator, strip_eos, translate_batches
from zero.model import Model
from zero.modes import MODES
from zero.vocab import BOS, EOS

v1 = tf.compat.v1
ALPHA = 0.6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A briefly trained tiny model: peaked, input-dependent distributions and sentences that
    end at different lengths (a random-init model repeats one word until the length limit)."""
    return trained_tiny_model(tmp_path_factory.mktemp("search"))


@pytest.fixture(scope="module")
def decoder(model_dir):
    """decoder(**overrides) -> a Decoder of the trained model, built once per setting."""
    built = {}

    def get(**overrides):
        key = repr(sorted(overrides.items()))
        if key not in built:
            built[key] = Decoder(model_dir, **overrides)
        return built[key]

    yield get
    for dec in built.values():
        dec.sess.close()


def _sources(config, n=10, seed=3):
    """Source id lists (words + EOS) of the toy language, some as long as the training data."""
    from zero.vocab import Vocab

    vocab = Vocab.load(config.src_vocab)
    rng = np.random.default_rng(seed)
    words = [vocab.id(f"w{i}") for i in range(24)]
    return [list(rng.choice(words, rng.integers(1, 7))) + [EOS] for _ in range(n)]


class Decoder:
    """The trained model in one graph: a Translator, a session-run step function, and the
    per-sentence teacher-forced log-probability (Model.loss statistics)."""

    def __init__(self, config, **overrides):
        self.config = config_lib.Config({**config, **overrides})
        loaded = inference.load(self.config, self._build)
        self.graph, self.sess, self.translator = loaded.graph, loaded.sess, loaded.outputs
        self.src_vocab, self.tgt_vocab = loaded.src_vocab, loaded.tgt_vocab

    def _build(self, models, vocabs):
        model = models[0]
        translator = Translator(models, self.config)
        self.src = v1.placeholder(tf.int32, [None, None])
        self.tgt = v1.placeholder(tf.int32, [None, None])
        enc = model.encode(self.src, training=False)
        self.init = enc["init"]
        cache = model.inference_cache(enc)
        self.cache_keys = sorted(cache)
        self.cache = [cache[k] for k in self.cache_keys]
        self.prev = v1.placeholder(tf.int32, [None])
        self.states_in = [v1.placeholder(tf.float32, s.shape) for s in self.init]
        self.cache_in = [v1.placeholder(c.dtype, c.shape) for c in self.cache]
        self.log_probs, self.states_out = model.step(
            self.prev, self.states_in, dict(zip(self.cache_keys, self.cache_in, strict=True))
        )
        _, stats = model.loss(self.src, self.tgt, training=False)
        self.sentence_nll = stats["sentence_nll"]
        return translator

    def translate(self, sources):
        return self.translator.run(self.sess, pad(sources))

    def greedy(self, source):
        """Independent greedy loop in Python: arg-max of the step function until EOS, EOS
        forced at the maximum length. Returns (ids with EOS, summed log-probability)."""
        init, cache = self.sess.run([self.init, self.cache], {self.src: [source]})
        max_len = int(self.config.max_decode_factor * len(source)) + self.config.max_decode_extra
        states, prev, out, score = init, BOS, [], 0.0
        while True:
            feed = {self.prev: [prev], **dict(zip(self.states_in, states, strict=True))}
            feed.update(zip(self.cache_in, cache, strict=True))
            log_probs, states = self.sess.run([self.log_probs, self.states_out], feed)
            token = EOS if len(out) + 1 >= max_len else int(np.argmax(log_probs[0]))
            score += float(log_probs[0, token])
            out.append(token)
            if token == EOS:
                return out, score
            prev = token

    def model_log_prob(self, sources, hyps):
        """log P(hyp | source) by teacher forcing, hyps ending in EOS."""
        nll = self.sess.run(self.sentence_nll, {self.src: pad(sources), self.tgt: pad(hyps)})
        return -nll


def _penalty(length):
    return ((5.0 + length) / 6.0) ** ALPHA


def _hyp(ids):
    """A decoded row (EOS then EOS padding) -> ids up to and including the first EOS."""
    return strip_eos(ids) + [EOS]


def test_greedy_equals_python_loop(model_dir, decoder):
    dec = decoder(beam_size=1)
    sources = _sources(model_dir)
    ids, scores = dec.translate(sources)
    lengths = set()
    for i, source in enumerate(sources):
        expected, score = dec.greedy(source)
        assert _hyp(ids[i, 0]) == expected
        np.testing.assert_allclose(scores[i, 0], score, rtol=1e-5)
        lengths.add(len(expected))
    assert len(lengths) > 2, "the test model should stop at various lengths"


def test_beam_beats_greedy_and_scores_are_model_scores(model_dir, decoder):
    greedy = decoder(beam_size=1)
    beam = decoder(beam_size=4)
    sources = _sources(model_dir)
    g_ids, _ = greedy.translate(sources)
    b_ids, b_scores = beam.translate(sources)
    g_hyps = [_hyp(row[0]) for row in g_ids]
    g_norm = beam.model_log_prob(sources, g_hyps) / _penalty(np.array([len(h) for h in g_hyps]))
    assert np.all(b_scores[:, 0] >= g_norm - 1e-5), (b_scores[:, 0], g_norm)
    # Every n-best entry's score is its model log-probability over the GNMT penalty.
    for k in range(4):
        hyps = [_hyp(row[k]) for row in b_ids]
        lengths = np.array([len(h) for h in hyps])
        expected = beam.model_log_prob(sources, hyps) / _penalty(lengths)
        np.testing.assert_allclose(b_scores[:, k], expected, rtol=1e-4, atol=1e-5)
    assert any(_hyp(b) != g for b, g in zip(b_ids[:, 0], g_hyps, strict=True)), "beam never differs"


def test_nbest_sorted_and_distinct(model_dir, decoder):
    dec = decoder(beam_size=4)
    sources = _sources(model_dir)
    ids, scores = dec.translate(sources)
    assert np.all(np.diff(scores, axis=1) <= 0)
    for row in ids:
        hyps = [tuple(_hyp(r)) for r in row]
        assert len(set(hyps)) == len(hyps)


def test_translate_batches_nbest_in_input_order(model_dir, decoder):
    from zero.batching import EvalBatches

    dec = decoder(beam_size=4)
    batches = EvalBatches(model_dir.dev_src, dec.src_vocab, batch_tokens=20)
    results = translate_batches(dec.sess, dec.translator, batches, dec.tgt_vocab, n_best=3)
    lines = open(model_dir.dev_src, encoding="utf-8").read().splitlines()
    assert len(results) == len(lines)
    for i, hyps in enumerate(results):
        assert len(hyps) == 3
        assert [s for _, s in hyps] == sorted((s for _, s in hyps), reverse=True)
        alone = dec.translate([dec.src_vocab.encode(lines[i].split()) + [EOS]])
        assert hyps[0][0] == " ".join(dec.tgt_vocab.decode(alone[0][0, 0]))


@pytest.mark.parametrize("beam_size", [1, 4])
def test_batched_equals_one_by_one(model_dir, decoder, beam_size):
    dec = decoder(beam_size=beam_size)
    sources = _sources(model_dir)
    ids, scores = dec.translate(sources)
    for i, source in enumerate(sources):
        one_ids, one_scores = dec.translate([source])
        for k in range(ids.shape[1]):
            assert _hyp(ids[i, k]) == _hyp(one_ids[0, k])
        np.testing.assert_allclose(scores[i], one_scores[0], rtol=1e-5, atol=1e-6)


def test_ensemble_of_a_model_with_itself(model_dir, decoder):
    alone = decoder(beam_size=4)
    twice = decoder(beam_size=4, ensemble=[model_dir.output_dir])
    assert len(twice.translator.members) == 2
    sources = _sources(model_dir)
    a_ids, a_scores = alone.translate(sources)
    t_ids, t_scores = twice.translate(sources)
    np.testing.assert_array_equal(a_ids, t_ids)
    np.testing.assert_allclose(a_scores, t_scores, rtol=1e-6)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_max_output_length_with_a_factor(model_dir, decoder, beam_size):
    """With max_decode_factor f: output tokens (EOS included) <= floor(f x source tokens) +
    max_decode_extra; at f = 0.5 the model (outputs as long as inputs) runs into it, at the
    bound exactly, and the Python greedy loop (its own bound) agrees."""
    dec = decoder(beam_size=beam_size, max_decode_factor=0.5, max_decode_extra=1)
    sources = _sources(model_dir)
    ids, _ = dec.translate(sources)
    lengths = [[len(_hyp(hyp)) for hyp in row] for row in ids]
    limits = [int(0.5 * len(source)) + 1 for source in sources]
    assert all(max(row) <= limit for row, limit in zip(lengths, limits, strict=True))
    assert any(row[0] == limit for row, limit in zip(lengths, limits, strict=True))
    if beam_size == 1:
        for source, row in zip(sources, ids, strict=True):
            assert _hyp(row[0]) == dec.greedy(source)[0]


@pytest.mark.parametrize("beam_size", [1, 4])
def test_max_output_length(model_dir, decoder, beam_size):
    """Output tokens (EOS included) <= source tokens (EOS included) + max_decode_extra; with
    extra 0 the trained model (outputs as long as inputs) runs into the limit."""
    dec = decoder(beam_size=beam_size, max_decode_extra=0)
    sources = _sources(model_dir)
    ids, _ = dec.translate(sources)
    for source, row in zip(sources, ids, strict=True):
        for hyp in row:
            assert len(_hyp(hyp)) <= len(source)


def _bigram_step(table):
    """step_fn of a bigram model: log-probs depend on the previous token only."""
    table = tf.constant(table, tf.float32)

    def step_fn(ids, states, cache):
        return tf.gather(table, ids), [s + 1.0 for s in states]

    return step_fn


def test_length_limit_reached_when_eos_unlikely(graph):
    """A model that (almost) never says EOS stops exactly at the limit, EOS log-prob counted."""
    vocab = 6
    logits = np.zeros([vocab, vocab])
    logits[:, EOS] = -8.0
    logits[:, 5] = 2.0
    table = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    max_lengths = tf.constant([1, 2, 5])
    states = [tf.zeros([3, 2])]
    greedy = search.greedy_search(_bigram_step(table), states, [], max_lengths)
    beam = search.beam_search(_bigram_step(table), states, [], max_lengths, 3, ALPHA)
    with make_session() as sess:
        (g_ids, g_scores), (b_ids, b_scores) = sess.run([greedy, beam])
    for i, n in enumerate([1, 2, 5]):
        expected = [5] * (n - 1) + [EOS]
        assert _hyp(g_ids[i]) == expected
        assert _hyp(b_ids[i, 0]) == expected
        log_prob = (n - 1) * table[BOS, 5] + table[BOS, EOS]  # all rows are equal
        np.testing.assert_allclose(g_scores[i], log_prob, rtol=1e-5)
        np.testing.assert_allclose(b_scores[i, 0], log_prob / _penalty(n), rtol=1e-5)


def test_beam_finds_the_optimum_greedy_misses(graph):
    """Bigram model: greedy takes word 4 (p .5) then a flat distribution; word 5 (p .4) leads
    to a certain EOS. Exhaustive search over all sequences agrees with beam search."""
    vocab = 6
    probs = np.full([vocab, vocab], 1e-6)
    probs[BOS, 4], probs[BOS, 5], probs[BOS, EOS] = 0.5, 0.4, 0.1
    probs[4, :] = [1e-6, 1e-6, 1e-6, 0.34, 0.33, 0.33]
    probs[5, EOS] = 1.0
    table = np.log(probs / probs.sum(1, keepdims=True))
    max_lengths = tf.constant([4])
    states = [tf.zeros([1, 1])]
    greedy = search.greedy_search(_bigram_step(table), states, [], max_lengths)
    beam = search.beam_search(_bigram_step(table), states, [], max_lengths, 2, ALPHA)
    with make_session() as sess:
        (g_ids, _), (b_ids, b_scores) = sess.run([greedy, beam])

    def score(seq):
        prev, total = BOS, 0.0
        for t in seq:
            total, prev = total + table[prev, t], t
        return total / _penalty(len(seq))

    import itertools

    best = max(
        (list(words) + [EOS] for n in range(4) for words in itertools.product([4, 5], repeat=n)),
        key=score,
    )
    assert _hyp(g_ids[0])[0] == 4
    assert _hyp(b_ids[0, 0]) == best == [5, EOS]
    np.testing.assert_allclose(b_scores[0, 0], score(best), rtol=1e-5)


def test_average_checkpoints(model_dir, tmp_path):
    paths = listed_checkpoints(model_dir.output_dir)
    assert len(paths) == 2  # steps 60 and 120
    copies = []
    for name in ("a", "b"):
        os.makedirs(tmp_path / name)
        for f in os.listdir(model_dir.output_dir):
            if f.startswith(os.path.basename(paths[-1]) + "."):
                shutil.copy(os.path.join(model_dir.output_dir, f), tmp_path / name)
        copies.append(str(tmp_path / name / os.path.basename(paths[-1])))
    same = average_checkpoints(copies, str(tmp_path / "same" / "avg"))
    mean = average_checkpoints(paths, str(tmp_path / "mean" / "avg"))
    original, first = tf.train.load_checkpoint(paths[-1]), tf.train.load_checkpoint(paths[0])
    for path, expect in ((same, "same"), (mean, "mean")):
        reader = tf.train.load_checkpoint(path)
        names = reader.get_variable_to_shape_map()
        assert names == original.get_variable_to_shape_map()
        for name in names:
            value, last = reader.get_tensor(name), original.get_tensor(name)
            if expect == "same" or not np.issubdtype(np.asarray(last).dtype, np.floating):
                np.testing.assert_array_equal(value, last)
            else:
                np.testing.assert_allclose(value, (last + first.get_tensor(name)) / 2, rtol=1e-6)
    assert listed_checkpoints(str(tmp_path / "same")) == [same]


def test_run_py_test_mode_keeps_empty_lines(model_dir, tmp_path):
    lines = ["w1 w2 w3", "", "w4", "   ", "w5 w6"]
    src = tmp_path / "input.txt"
    src.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    out = tmp_path / "output.txt"
    config = os.path.join(model_dir.output_dir, "config.yaml")
    result = subprocess.run(
        [sys.executable, "run.py", "--mode", "test", "--config", config,
         "--set", f"input={src}", "--set", f"output={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outputs = out.read_text(encoding="utf-8").split("\n")
    assert outputs[-1] == "" and len(outputs) == len(lines) + 1
    for line, output in zip(lines, outputs[:-1], strict=True):
        assert (output == "") == (line.strip() == "")

    # The n-best format: index ||| text ||| score, best first, the 1-best as above.
    nbest = tmp_path / "nbest.txt"
    MODES["test"](config_lib.load(config, [f"input={src}", f"output={nbest}", "n_best=2"]))
    rows = [r.split(" ||| ") for r in nbest.read_text(encoding="utf-8").splitlines()]
    assert sorted({int(r[0]) for r in rows}) == list(range(len(lines)))
    for i in range(len(lines)):
        mine = [r for r in rows if int(r[0]) == i]
        scores = [float(r[2]) for r in mine]
        assert scores == sorted(scores, reverse=True)
        assert mine[0][1] == outputs[i]


def test_translator_accepts_two_models_with_equal_weights(graph):
    """Translator([m, m']) with m' a copy of m == Translator([m])."""
    config = tiny_config(beam_size=2, max_decode_extra=2, num_encoder_layers=1)
    m1, m2 = Model(config, 20, 20), Model(config, 20, 20, scope="copy")
    one, two = Translator([m1], config), Translator([m1, m2], config)
    with make_session() as sess:
        sess.run(v1.global_variables_initializer())
        pairs = zip(v1.global_variables("model/"), v1.global_variables("copy/"), strict=True)
        assign(sess, {b: sess.run(a) for a, b in pairs})
        src = pad([[5, 6, 7, EOS], [8, EOS]])
        (a_ids, a_scores), (b_ids, b_scores) = one.run(sess, src), two.run(sess, src)
    np.testing.assert_array_equal(a_ids, b_ids)
    np.testing.assert_allclose(a_scores, b_scores, rtol=1e-6)
