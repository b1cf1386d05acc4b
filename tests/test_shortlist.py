"""Output shortlists (zero/shortlist.py): the counts and the Dice ranking against a plain Python
computation, a batch's list, the file's checks, and decoding over a list that holds the whole
vocabulary giving the translations of decoding without one."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from helpers import make_session, pad, random_sentences, randomize, tiny_config

from zero import shortlist
from zero.candidates import NEG_INF
from zero.decode import Translator, strip_eos
from zero.errors import UserError
from zero.model import Model
from zero.vocab import SPECIALS, Vocab

v1 = tf.compat.v1

SRC = ["a b c", "a b", "a d", "c d d", "b"]
TGT = ["x y", "x y z", "x w", "z w", "y y"]


def _vocab(words):
    return Vocab(list(SPECIALS) + words)


@pytest.fixture()
def corpus(tmp_path):
    src, tgt = tmp_path / "train.src", tmp_path / "train.tgt"
    src.write_text("".join(s + "\n" for s in SRC), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for t in TGT), encoding="utf-8")
    return str(src), str(tgt), _vocab(list("abcd")), _vocab(list("xyzw"))


def test_counts_and_dice_ranking_match_a_plain_computation(corpus):
    src_path, tgt_path, src_vocab, tgt_vocab = corpus
    counts, src_df, tgt_df = shortlist.cooccurrence(src_path, tgt_path, src_vocab, tgt_vocab)
    pairs = [(set(s.split()), set(t.split())) for s, t in zip(SRC, TGT, strict=True)]
    for s, t in itertools.product("abcd", "xyzw"):
        both = sum(s in ss and t in ts for ss, ts in pairs)
        assert counts[src_vocab.id(s), tgt_vocab.id(t)] == both, (s, t)
    for s in "abcd":
        assert src_df[src_vocab.id(s)] == sum(s in ss for ss, _ in pairs)
    for t in "xyzw":
        assert tgt_df[tgt_vocab.id(t)] == sum(t in ts for _, ts in pairs)

    frequent, best = shortlist.build(counts, src_df, tgt_df, frequent=2, per_word=2)
    # Sentences per target word: x 3, y 3, z 2, w 2; ties keep id order.
    assert [tgt_vocab.token(i) for i in frequent] == ["x", "y"]
    for s in "abcd":

        def dice(t, s=s):
            both = sum(s in ss and t in ts for ss, ts in pairs)
            return 2 * both / (sum(s in ss for ss, _ in pairs) + sum(t in ts for _, ts in pairs))

        got = [tgt_vocab.token(i) for i in best[src_vocab.id(s)]]
        assert [dice(t) for t in got] == sorted((dice(t) for t in "xyzw"), reverse=True)[:2], s
    # d: 2 sentences, with z once and w twice: Dice 2*2/(2+2) = 1 for w, 2*1/(2+2) for z.
    assert [tgt_vocab.token(i) for i in best[src_vocab.id("d")]] == ["w", "z"]
    assert (best[: len(SPECIALS)] == SPECIALS.index("</s>")).all()  # specials: no candidates


def _saved(tmp_path, src_vocab, tgt_vocab, frequent, candidates):
    path = str(tmp_path / shortlist.FILE)
    settings = {"frequent": len(frequent), "per_word": candidates.shape[1]}
    shortlist.save(path, np.asarray(frequent, np.int32), candidates, src_vocab, tgt_vocab, settings)
    return path


def test_a_batch_list_is_specials_frequent_then_candidates_once_each(corpus, tmp_path):
    _, _, src_vocab, tgt_vocab = corpus
    candidates = np.full([len(src_vocab), 2], 3, np.int32)
    candidates[src_vocab.id("a")] = [tgt_vocab.id("z"), tgt_vocab.id("x")]
    candidates[src_vocab.id("c")] = [tgt_vocab.id("w"), tgt_vocab.id("z")]
    path = _saved(tmp_path, src_vocab, tgt_vocab, [tgt_vocab.id("x")], candidates)
    listed = shortlist.Shortlist(path, src_vocab, tgt_vocab)
    src = np.array([[src_vocab.id("a"), src_vocab.id("c")], [src_vocab.id("a"), 0]], np.int32)
    with tf.Graph().as_default(), make_session() as sess:
        ids = sess.run(listed.batch_ids(tf.constant(src)))
    assert [tgt_vocab.token(i) for i in ids] == list(SPECIALS) + ["x", "z", "w"]


def test_a_missing_foreign_or_broken_file_is_a_one_line_error(corpus, tmp_path):
    _, _, src_vocab, tgt_vocab = corpus
    missing = str(tmp_path / "none.npz")
    with pytest.raises(UserError, match="none.npz not found"):
        shortlist.Shortlist(missing, src_vocab, tgt_vocab)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="broken.npz: not a shortlist file"):
        shortlist.Shortlist(str(broken), src_vocab, tgt_vocab)
    candidates = np.full([len(src_vocab), 1], 3, np.int32)
    path = _saved(tmp_path, src_vocab, tgt_vocab, [4], candidates)
    other = _vocab(list("xyzv"))  # another target vocabulary of the same size
    for vocabs in ((src_vocab, other), (other, tgt_vocab)):
        with pytest.raises(UserError, match="built for other vocabularies") as e:
            shortlist.Shortlist(path, *vocabs)
        assert path in str(e.value) and "\n" not in str(e.value)


def test_a_list_of_the_whole_vocabulary_decodes_as_without_one(tmp_path):
    """Every target word listed (the frequent ones in reverse id order, so columns and ids
    differ): the same hypotheses and scores as decoding over the vocabulary."""
    words = [f"w{i}" for i in range(16)]
    src_vocab, tgt_vocab = _vocab(words), _vocab(words)
    frequent = list(range(len(tgt_vocab) - 1, len(SPECIALS) - 1, -1))
    candidates = np.full([len(src_vocab), 2], 3, np.int32)
    path = _saved(tmp_path, src_vocab, tgt_vocab, frequent, candidates)
    listed = shortlist.Shortlist(path, src_vocab, tgt_vocab)
    for beam in (1, 4):
        config = tiny_config(beam_size=beam, max_decode_extra=6, num_encoder_layers=1)
        with tf.Graph().as_default():
            model = Model(config, len(src_vocab), len(tgt_vocab))
            plain, over_list = (
                Translator([model], config),
                Translator([model], config, None, listed),
            )
            init = v1.global_variables_initializer()
            with make_session() as sess:
                sess.run(init)
                randomize(sess, scale=1.0, seed=4)
                src = pad(random_sentences(np.random.default_rng(1), 7, len(src_vocab), max_len=6))
                ids, scores = plain.run(sess, src)
                ids_l, scores_l = over_list.run(sess, src)
        for b, k in itertools.product(range(ids.shape[0]), range(ids.shape[1])):
            if scores[b, k] <= NEG_INF / 10:
                assert scores_l[b, k] <= NEG_INF / 10
                continue
            assert strip_eos(ids_l[b, k]) == strip_eos(ids[b, k]), (beam, b, k)
            np.testing.assert_allclose(scores_l[b, k], scores[b, k], rtol=1e-5)
