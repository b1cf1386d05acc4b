"""Output shortlists: decode over a per-batch candidate list of target words instead of the
whole target vocabulary (an approximation, opt-in; the approach of Marian's and Sockeye's
lexical shortlists).

The list of a batch is the K most frequent target subwords plus, for each source subword of
the batch, its N most associated target subwords, from a table built once from the training
data (`--mode shortlist`, stored with the model as shortlist.npz). Association is the Dice
coefficient of sentence-level co-occurrence, 2 c(s, t) / (c(s) + c(t)): frequent words that
co-occur with everything are covered by the frequent list, and Dice ranks the words that
appear where s appears, and rarely elsewhere. The decoder's output layer, softmax and top-k
then run over the list: the scores are normalised over the list, not the vocabulary.
"""

import json
import os

import numpy as np
import tensorflow as tf

from zero import log
from zero.errors import UserError
from zero.textio import read_lines
from zero.vocab import EOS, SPECIALS

FILE = "shortlist.npz"
CHUNK = 5000  # sentence pairs counted at a time: bounds the memory of the pair lists


def cooccurrence(src_path, tgt_path, src_vocab, tgt_vocab):
    """Sentence-level co-occurrence counts [V_src, V_tgt] (each word once per sentence) and
    the number of sentences each source and target word appears in."""
    vs, vt = len(src_vocab), len(tgt_vocab)
    counts = np.zeros(vs * vt, np.int32)  # WMT14's 27750 x 27750: 3 GB
    src_df, tgt_df = np.zeros(vs, np.int64), np.zeros(vt, np.int64)
    pairs = zip(read_lines(src_path), read_lines(tgt_path), strict=True)
    chunk = []
    for (_, s), (_, t) in pairs:
        chunk.append(
            (np.unique(src_vocab.encode(s.split())), np.unique(tgt_vocab.encode(t.split())))
        )
        if len(chunk) == CHUNK:
            _count(chunk, counts, src_df, tgt_df, vt)
            chunk = []
    _count(chunk, counts, src_df, tgt_df, vt)
    return counts.reshape(vs, vt), src_df, tgt_df


def _count(chunk, counts, src_df, tgt_df, vt):
    if not chunk:
        return
    flat = np.concatenate([(s[:, None] * vt + t[None, :]).ravel() for s, t in chunk])
    keys, n = np.unique(flat, return_counts=True)
    counts[keys] += n.astype(np.int32)
    src_df += np.bincount(np.concatenate([s for s, _ in chunk]), minlength=len(src_df))
    tgt_df += np.bincount(np.concatenate([t for _, t in chunk]), minlength=len(tgt_df))


def build(counts, src_df, tgt_df, frequent, per_word):
    """-> (the `frequent` most frequent target ids, [V_src, per_word] best target ids per
    source id by Dice; specials are never candidates, their rows hold EOS)."""
    n_special = len(SPECIALS)
    by_frequency = np.argsort(-tgt_df[n_special:], kind="stable") + n_special
    per_word = min(per_word, counts.shape[1] - n_special)
    best = np.full([counts.shape[0], per_word], EOS, np.int32)
    for a in range(n_special, counts.shape[0], 1024):  # row blocks bound the float copies
        rows = slice(a, a + 1024)
        dice = 2.0 * counts[rows] / np.maximum(src_df[rows, None] + tgt_df[None, :], 1)
        dice[:, :n_special] = -1.0
        pick = np.argpartition(-dice, per_word - 1, axis=1)[:, :per_word]
        order = np.argsort(-np.take_along_axis(dice, pick, 1), axis=1, kind="stable")
        best[rows] = np.take_along_axis(pick, order, 1)
    return by_frequency[:frequent].astype(np.int32), best


def save(path, frequent, candidates, src_vocab, tgt_vocab, settings):
    tmp = path + ".tmp.npz"
    np.savez_compressed(
        tmp,
        frequent=frequent,
        candidates=candidates,
        vocabularies=json.dumps(
            {"src": src_vocab.fingerprint(), "tgt": tgt_vocab.fingerprint(), **settings}
        ),
    )
    os.replace(tmp, path)


class Shortlist:
    """A built shortlist, checked against the model's vocabularies."""

    def __init__(self, path, src_vocab, tgt_vocab):
        if not os.path.isfile(path):
            raise UserError(
                f"config key 'shortlist': {path} not found (build it with --mode shortlist)"
            )
        try:
            with np.load(path) as f:
                self.frequent, self.candidates = f["frequent"], f["candidates"]
                record = json.loads(str(f["vocabularies"]))
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{path}: not a shortlist file ({e})") from None
        mine = {"src": src_vocab.fingerprint(), "tgt": tgt_vocab.fingerprint()}
        if {k: record.get(k) for k in mine} != mine or len(self.candidates) != len(src_vocab):
            raise UserError(
                f"{path}: shortlist built for other vocabularies than the model's "
                f"({src_vocab!r}, {tgt_vocab!r}); rebuild it with --mode shortlist"
            )
        self.settings = record

    def batch_ids(self, src):
        """src [B, S] ids -> [n] int32 target ids of the batch's list: the four specials first
        (at their own ids), then the frequent words, then each source word's candidates."""
        specials = tf.range(len(SPECIALS), dtype=tf.int32)
        words = tf.reshape(tf.gather(tf.constant(self.candidates), src), [-1])
        everything = tf.concat([specials, tf.constant(self.frequent), words], 0)
        return tf.unique(everything)[0]  # first occurrences, in order


def configured(config, vocabs):
    """The Shortlist config key `shortlist` names (checked against vocabs), or None."""
    return Shortlist(config.shortlist, *vocabs) if config.shortlist else None


def build_mode(config, src_vocab, tgt_vocab, path):
    """Count, rank and save the shortlist of config's training data to `path`."""
    log.info(f"counting co-occurrences in {config.train_src} and {config.train_tgt}")
    counts, src_df, tgt_df = cooccurrence(config.train_src, config.train_tgt, src_vocab, tgt_vocab)
    frequent, candidates = build(
        counts, src_df, tgt_df, config.shortlist_frequent, config.shortlist_per_word
    )
    settings = {"frequent": len(frequent), "per_word": candidates.shape[1]}
    save(path, frequent, candidates, src_vocab, tgt_vocab, settings)
    log.info(
        f"shortlist: {len(frequent)} frequent target words + {candidates.shape[1]} per source "
        f"word ({int(src_df.sum())} source word-sentences counted) -> {path}"
    )
