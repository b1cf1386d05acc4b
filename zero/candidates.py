"""From a decoder step's log-probabilities to the candidates beam search and greedy search keep.

Two ways, the same candidates (docs/DESIGN.md, "Decoding"):
- whole rows (`per_row` off, the original search): a sentence's K rows plus its hypotheses'
  scores are searched together for the 2K best of K*V, after a [V] mask adds NEG_INF to the
  ids never to output (PAD, BOS) in every row.
- per row (`per_row` on): each row's best first (a sentence's 2K best are among its rows'
  2K best), found blockwise: the row's maximum in each block of BLOCK columns, the best
  blocks, then the best values inside them, instead of a top-k pass over the whole row. A
  row holds 2 more than needed, then PAD and BOS are dropped: no mask over [N, V]. The rows
  must come padded to a multiple of BLOCK columns with -inf (Model.inference_constants).

A step gives log-probabilities, or (with `decode_row_normalizer`, per row only) its `Logits`:
then only the words a row keeps are normalised. log p = logit - log sum exp(logits), and the
softmax's value at the row's best word is exp(0) / sum exp(logit - best), so log sum exp =
best - log softmax[best]: one fused softmax over [N, V] and logs of [N, 1], where a log-softmax
writes every log-probability in several passes (bench decode: 1.11x on top of row top-k at the
sample size). softmax[best] is at least 1/V: no underflow. The same log-probabilities up to
float rounding.

`word_ids` [V] maps columns to vocabulary ids (a shortlist, whose first four columns are the
specials in their own places), or None (column = id). A row at the maximum length (`forced`)
may only end: EOS keeps its log-probability, every other candidate is NEG_INF.
"""

import tensorflow as tf

from zero.vocab import BOS, EOS, PAD

NEG_INF = -1e9
BLOCK = 64


def row_top(scores, k):
    """Each row's k best (values [N, k], columns [N, k]), blockwise; width % BLOCK == 0."""
    n = tf.shape(scores)[0]
    blocks = tf.reshape(scores, [n, -1, BLOCK])
    _, which = tf.nn.top_k(tf.reduce_max(blocks, -1), tf.minimum(k, tf.shape(blocks)[1]))
    values = tf.reshape(tf.gather(blocks, which, batch_dims=1), [n, -1])
    top, at = tf.nn.top_k(values, k)
    return top, tf.gather(which, at // BLOCK, batch_dims=1) * BLOCK + at % BLOCK


class Logits:
    """A step's unnormalised scores [N, V'] (see the module docstring)."""

    def __init__(self, logits):
        self.logits = logits


def never_mask(vocab_size_or_ids):
    """[V] 0, or NEG_INF at PAD and BOS (never outputs: a beam that picked them would only lose
    words). Given a shortlist's ids, at the columns holding them."""
    ids = vocab_size_or_ids
    if isinstance(ids, int):
        never = [0.0] * ids
        never[PAD] = never[BOS] = NEG_INF
        return tf.constant(never)
    return tf.where((ids == PAD) | (ids == BOS), NEG_INF, 0.0)


class Scorer:
    def __init__(self, vocab_size, word_ids=None, per_row=True):
        """vocab_size None: no id is masked (a bare step of log-probabilities)."""
        self.word_ids = word_ids
        self.per_row = per_row
        self.never = 0.0
        if vocab_size is not None and not per_row:
            self.never = never_mask(vocab_size if word_ids is None else word_ids)

    def _ids(self, columns):
        return columns if self.word_ids is None else tf.gather(self.word_ids, columns)

    def _forced_only_eos(self, scores, forced):
        """The original way, on whole rows: every column but EOS set to NEG_INF where forced."""
        is_eos = tf.equal(tf.range(tf.shape(scores)[1]), EOS)[None, :]
        return tf.where(forced[:, None] & tf.logical_not(is_eos), NEG_INF, scores)

    def _row_best(self, scores, k, normalise):
        """Each row's k best columns that are not PAD or BOS, and what turns a row's scores
        into log-probabilities ([N, 1]: subtracted; 0 when they are log-probabilities, i.e.
        unless `normalise`)."""
        values, columns = row_top(scores, k + 2)
        shift = 0.0
        if normalise:
            p_best = tf.gather(tf.nn.softmax(scores), columns[:, :1], batch_dims=1)
            shift = values[:, :1] - tf.math.log(p_best)
        never = tf.equal(columns, PAD) | tf.equal(columns, BOS)
        values, pick = tf.nn.top_k(tf.where(never, NEG_INF, values), k)
        return values - shift, tf.gather(columns, pick, batch_dims=1), shift

    def top(self, scores, k, forced):
        """Each row's k best (log-probability [N, k], vocabulary id [N, k])."""
        if not self.per_row:
            scores = _log_probabilities(scores)
            values, columns = tf.nn.top_k(self._forced_only_eos(scores + self.never, forced), k)
            return values, self._ids(columns)
        raw = scores.logits if isinstance(scores, Logits) else scores
        values, columns, shift = self._row_best(raw, k, normalise=raw is not scores)
        # What top_k of a forced row gives: EOS, then NEG_INF ties in column order.
        filler = tf.constant([EOS] + [c for c in range(k) if c != EOS][: k - 1], tf.int32)
        n = tf.shape(raw)[0]
        eos = raw[:, EOS : EOS + 1] - shift
        forced_values = tf.concat([eos, tf.fill([n, k - 1], NEG_INF)], 1)
        values = tf.where(forced[:, None], forced_values, values)
        columns = tf.where(forced[:, None], tf.tile(filler[None], [n, 1]), columns)
        return values, self._ids(columns)

    def best(self, scores, forced):
        """Each row's best (log-probability [N], vocabulary id [N]): greedy search."""
        if self.per_row:
            values, columns = self.top(scores, 1, forced)
            return values[:, 0], columns[:, 0]
        scores = self._forced_only_eos(_log_probabilities(scores) + self.never, forced)
        column = tf.argmax(scores, -1, output_type=tf.int32)
        return tf.reduce_max(scores, -1), self._ids(column)

    def candidates(self, scores, alive_lp, forced, k, batch):
        """The 2K best continuations of each sentence's K hypotheses: (log-probability [b, 2K],
        parent hypothesis [b, 2K], vocabulary id [b, 2K])."""
        if not self.per_row:
            scores = _log_probabilities(scores)
            vocab = tf.shape(scores)[1]
            step_lp = self._forced_only_eos(scores + self.never, forced)
            total = tf.reshape(step_lp, [batch, k, vocab]) + alive_lp[:, :, None]
            cand_lp, index = tf.nn.top_k(tf.reshape(total, [batch, k * vocab]), 2 * k)
            return cand_lp, index // vocab, self._ids(index % vocab)
        values, ids = self.top(scores, 2 * k, forced)  # [b*K, 2K]
        total = tf.reshape(values, [batch, k, 2 * k]) + alive_lp[:, :, None]
        cand_lp, index = tf.nn.top_k(tf.reshape(total, [batch, 2 * k * k]), 2 * k)
        word = tf.gather(tf.reshape(ids, [batch, 2 * k * k]), index, batch_dims=1)
        return cand_lp, index // (2 * k), word


def _log_probabilities(scores):
    """Whole rows of log-probabilities, from Logits too."""
    return tf.nn.log_softmax(scores.logits) if isinstance(scores, Logits) else scores
