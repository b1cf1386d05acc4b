"""Batched beam search and greedy search in the graph, with the decoding engine's switchable
techniques (docs/DESIGN.md, "Decoding").

The decoder is `step(ids [N], states, cache, beam) -> (scores [N, V'], states)`, beam = K
when the rows are K hypotheses per sentence of a per-sentence cache (else None). States are per
hypothesis ([N, ...], N = sentences x beam). The cache (encoder memory, attention keys, mask)
is per sentence ([B, ...], shared by a sentence's hypotheses) or, with `shared_cache` off, tiled
per hypothesis. The first step (from BOS) runs outside the loop on one hypothesis per sentence,
which also creates every decoder variable outside the loop. A `Scorer` turns a step's scores
into candidates (zero/candidates.py).

The beam keeps K alive hypotheses and K finished ones ranked by the GNMT length-normalised
score (best first). A sentence is done when no alive hypothesis can still beat its worst
finished one even at the maximum length (an exact bound: log-probabilities only fall and, for
alpha >= 0, the penalty only grows), or when it reached its maximum length. With
`stop_at_n_best` (exact bound only) the bar is the n-th best finished one, n (1 <= n <= K, a
tensor: fed per run) the hypotheses the caller reads: those n are then final, by the same
bound, so they are the ones the whole search would give; the slots after them may differ.
`early_stop` (approximate) takes the bound at the next length instead, as if longer
hypotheses could not gain from the penalty: sentences stop near their output length rather
than near the bound's. With `drop_finished` a done sentence leaves the loop: its hypotheses
are written to the output and its rows removed from every loop tensor, so later steps compute
only for sentences still running. Without it every sentence runs until the last one is done;
the outputs are the same, since a done sentence's finished hypotheses can no longer change.

Outputs: ids [B, K, T] best first, each hypothesis ending in EOS and padded with EOS (T is the
longest maximum length of the batch), scores [B, K] (length-normalised; NEG_INF in an empty
slot), steps [B] (the decoder steps each sentence ran: what dropping finished sentences saves).
"""

import tensorflow as tf

from zero.candidates import NEG_INF, Scorer
from zero.vocab import BOS, EOS

SENTENCE_KEYS = ("alive_seq", "alive_lp", "fin_seq", "fin_scores", "rows", "max_len", "improve")


def length_penalty(length, alpha):
    """GNMT: ((5 + len) / 6) ^ alpha."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def _tile(x, k):
    """[B, ...] -> [B * k, ...], each sentence repeated k times consecutively."""
    shape = tf.shape(x)
    x = tf.expand_dims(x, 1)
    x = tf.tile(x, [1, k] + [1] * (x.shape.ndims - 2))
    return tf.reshape(x, tf.concat([[shape[0] * k], shape[1:]], 0))


def _any_batch(x):
    """x's static shape with the batch axis unknown (the loop changes the batch size)."""
    return tf.TensorShape([None]).concatenate(x.shape[1:])


def _pad_time(seq, length):
    """[b, K, t] -> [b, K, length], EOS after the end."""
    return tf.pad(seq, [[0, 0], [0, 0], [0, length - tf.shape(seq)[2]]], constant_values=EOS)


class BeamSearch:
    """Beam search over `step` with beam size k (see the module docstring)."""

    def __init__(
        self,
        step,
        scorer,
        k,
        alpha,
        drop_finished=True,
        shared_cache=True,
        early_stop=False,
        stop_at_n_best=False,
    ):
        self.step, self.scorer = step, scorer
        self.k, self.alpha = int(k), float(alpha)
        self.drop_finished, self.shared_cache = drop_finished, shared_cache
        self.early_stop, self.stop_at_n_best = early_stop, stop_at_n_best
        self._nth = None  # the index of the finished hypothesis to beat; None: the last

    def __call__(self, states, cache, max_lengths, n_best=None):
        """n_best: [] int32, the hypotheses the caller reads (with stop_at_n_best)."""
        # Only with the exact bound: with early stop's, the n-th best as the bar changed 203
        # of 2000 test translations, the worst finished 77 (README, "The decoding engine").
        # Set on every call: a graph may build this search more than once.
        self._nth = None
        if self.stop_at_n_best and not self.early_stop and n_best is not None:
            self._nth = tf.clip_by_value(n_best, 1, self.k) - 1
        s = self._start(states, cache, max_lengths)
        invariants = {key: self._invariant(key, value) for key, value in s.items()}
        s = tf.compat.v1.while_loop(
            self._more, self._body, [s], shape_invariants=[invariants], back_prop=False
        )[0]
        s = self._write(s, tf.ones_like(s["rows"], tf.bool))  # whatever is still in the loop
        return s["out_seq"], s["out_scores"], s["out_steps"]

    # -- state ------------------------------------------------------------------------------

    def _start(self, states, cache, max_lengths):
        """The loop state after the first expansion: the K best words of BOS. EOS among them
        finishes at length 1; it stays alive with NEG_INF so it is never extended."""
        k, batch = self.k, tf.shape(max_lengths)[0]
        scores, states = self.step(tf.fill([batch], BOS), states, cache, None)
        top_lp, top_ids = self.scorer.top(scores, k, max_lengths <= 1)
        is_eos = tf.equal(top_ids, EOS)
        longest = tf.reduce_max(max_lengths)
        # Finished best first, as every step's top-k leaves them (the n-th best is a column).
        fin_scores, order = tf.nn.top_k(
            tf.where(is_eos, top_lp / length_penalty(1, self.alpha), NEG_INF), k
        )
        s = {
            "t": tf.constant(1),
            "alive_seq": top_ids[:, :, None],
            "alive_lp": tf.where(is_eos, NEG_INF, top_lp),
            "fin_seq": tf.gather(top_ids, order, batch_dims=1)[:, :, None],
            "fin_scores": fin_scores,
            "rows": tf.range(batch),
            "max_len": max_lengths,
            "states": [_tile(x, k) for x in states],
            "cache": cache if self.shared_cache else [_tile(c, k) for c in cache],
            "out_seq": tf.fill([batch, k, longest], EOS),
            "out_scores": tf.fill([batch, k], NEG_INF),
            "out_steps": tf.zeros([batch], tf.int32),
        }
        # Whether each sentence can still change (computed once per step, read by the loop's
        # condition and by the next step's dropping).
        s["improve"] = self._can_improve(s)
        return s

    def _invariant(self, key, value):
        if key == "t":
            return tf.TensorShape([])
        if key in ("states", "cache"):
            return [_any_batch(x) for x in value]
        if key in ("alive_seq", "fin_seq", "out_seq"):
            return tf.TensorShape([None, self.k, None])
        return _any_batch(value)

    def _can_improve(self, s):
        """[b]: whether sentence i can still change its finished hypotheses."""
        # The best alive hypothesis (after the first expansion an EOS in slot 0 leaves
        # NEG_INF there: slot 0 is not always the best one).
        # early_stop (approximate): as if a hypothesis could not gain from growing longer,
        # the bound at the next length instead of the maximum one.
        length = s["t"] + 1 if self.early_stop else s["max_len"]
        best = tf.reduce_max(s["alive_lp"], 1) / length_penalty(length, self.alpha)
        if self._nth is None:
            bar = tf.reduce_min(s["fin_scores"], 1)  # the worst finished
        else:
            bar = tf.gather(s["fin_scores"], self._nth, axis=1)  # the n-th best finished
        return (best > bar) & (s["t"] < s["max_len"])

    def _more(self, s):
        return tf.reduce_any(s["improve"])

    # -- one step ----------------------------------------------------------------------------

    def _body(self, s):
        if self.drop_finished:
            done = tf.logical_not(s["improve"])
            s = tf.cond(  # gathering every loop tensor costs: only when a sentence is done
                tf.reduce_any(done),
                lambda: self._keep(self._write(s, done), tf.logical_not(done)),
                lambda: s,
            )
        k, t = self.k, s["t"]
        batch = tf.shape(s["rows"])[0]
        flat_ids = tf.reshape(s["alive_seq"][:, :, -1], [-1])
        scores, states = self.step(flat_ids, s["states"], s["cache"], k)
        with tf.name_scope("candidates"):
            forced = tf.reshape(tf.tile((t + 1 >= s["max_len"])[:, None], [1, k]), [-1])
            cand_lp, parent, word = self.scorer.candidates(scores, s["alive_lp"], forced, k, batch)
        cand_seq = tf.concat(
            [tf.gather(s["alive_seq"], parent, batch_dims=1), word[:, :, None]], axis=2
        )
        cand_eos = tf.equal(word, EOS)
        # Alive: the K best candidates that do not end in EOS (2K candidates hold K of them).
        alive_lp, pick = tf.nn.top_k(tf.where(cand_eos, NEG_INF, cand_lp), k)
        rows = tf.gather(parent, pick, batch_dims=1) + (tf.range(batch) * k)[:, None]
        # Finished: the K best of the old finished and the candidates that end in EOS.
        cand_scores = tf.where(cand_eos, cand_lp / length_penalty(t + 1, self.alpha), NEG_INF)
        old_fin = tf.pad(s["fin_seq"], [[0, 0], [0, 0], [0, 1]], constant_values=EOS)
        fin_scores, fin_pick = tf.nn.top_k(tf.concat([s["fin_scores"], cand_scores], 1), k)
        s = {
            **s,
            "t": t + 1,
            "alive_seq": tf.gather(cand_seq, pick, batch_dims=1),
            "alive_lp": alive_lp,
            "fin_seq": tf.gather(tf.concat([old_fin, cand_seq], 1), fin_pick, batch_dims=1),
            "fin_scores": fin_scores,
            "states": [tf.gather(x, tf.reshape(rows, [-1])) for x in states],
        }
        s["improve"] = self._can_improve(s)
        return [s]

    # -- sentences leaving the loop ----------------------------------------------------------

    def _write(self, s, which):
        """Write the sentences where `which` [b] into the outputs (their rows of the batch).
        A sentence without a finished hypothesis (impossible with EOS forced at the maximum
        length, but safe) gives its alive ones."""
        pick = tf.where(which)[:, 0]
        fin_seq, alive_seq = (tf.gather(s[key], pick) for key in ("fin_seq", "alive_seq"))
        fin_scores, alive_lp = (tf.gather(s[key], pick) for key in ("fin_scores", "alive_lp"))
        none_finished = tf.reduce_all(fin_scores <= NEG_INF / 2, axis=1)
        alive_scores = alive_lp / length_penalty(s["t"], self.alpha)
        seq = tf.where(none_finished[:, None, None], alive_seq, fin_seq)
        scores = tf.where(none_finished[:, None], alive_scores, fin_scores)
        longest = tf.shape(s["out_seq"])[2]
        index = tf.gather(s["rows"], pick)[:, None]
        steps = tf.fill(tf.shape(index)[:1], s["t"])
        return {
            **s,
            "out_seq": tf.tensor_scatter_nd_update(s["out_seq"], index, _pad_time(seq, longest)),
            "out_scores": tf.tensor_scatter_nd_update(s["out_scores"], index, scores),
            "out_steps": tf.tensor_scatter_nd_update(s["out_steps"], index, steps),
        }

    def _keep(self, s, which):
        """The loop state of the sentences where `which` [b] only."""
        keep = tf.where(which)[:, 0]
        hyps = tf.reshape(keep[:, None] * self.k + tf.range(self.k, dtype=keep.dtype), [-1])
        out = {**s, **{key: tf.gather(s[key], keep) for key in SENTENCE_KEYS}}
        out["states"] = [tf.gather(x, hyps) for x in s["states"]]
        out["cache"] = [tf.gather(c, keep if self.shared_cache else hyps) for c in s["cache"]]
        return out


class Greedy:
    """Arg-max decoding (beam size 1), the same outputs as BeamSearch's (K = 1 slot)."""

    def __init__(self, step, scorer, drop_finished=True):
        self.step, self.scorer, self.drop_finished = step, scorer, drop_finished

    def __call__(self, states, cache, max_lengths, n_best=None):
        """n_best: ignored (one hypothesis)."""
        batch = tf.shape(max_lengths)[0]
        scores, states = self.step(tf.fill([batch], BOS), states, cache, None)
        best_lp, best = self.scorer.best(scores, max_lengths <= 1)
        longest = tf.reduce_max(max_lengths)
        s = {
            "t": tf.constant(1),
            "seq": best[:, None],
            "lp": best_lp,
            "finished": tf.equal(best, EOS),
            "rows": tf.range(batch),
            "max_len": max_lengths,
            "states": states,
            "cache": cache,
            "out_seq": tf.fill([batch, longest], EOS),
            "out_scores": tf.zeros([batch]),
            "out_steps": tf.zeros([batch], tf.int32),
        }
        invariants = {
            key: (
                tf.TensorShape([])
                if key == "t"
                else [_any_batch(x) for x in value]
                if key in ("states", "cache")
                else tf.TensorShape([None, None])
                if key in ("seq", "out_seq")
                else _any_batch(value)
            )
            for key, value in s.items()
        }
        s = tf.compat.v1.while_loop(
            lambda s: tf.logical_not(tf.reduce_all(s["finished"])),
            self._body,
            [s],
            shape_invariants=[invariants],
            back_prop=False,
        )[0]
        s = self._write(s, tf.ones_like(s["finished"]))
        return s["out_seq"][:, None, :], s["out_scores"][:, None], s["out_steps"]

    def _body(self, s):
        if self.drop_finished:
            s = tf.cond(
                tf.reduce_any(s["finished"]),
                lambda: self._keep(self._write(s, s["finished"]), tf.logical_not(s["finished"])),
                lambda: s,
            )
        scores, states = self.step(s["seq"][:, -1], s["states"], s["cache"], None)
        best_lp, best = self.scorer.best(scores, s["t"] + 1 >= s["max_len"])
        finished = s["finished"]
        best = tf.where(finished, EOS, best)
        return [
            {
                **s,
                "t": s["t"] + 1,
                "seq": tf.concat([s["seq"], best[:, None]], 1),
                "lp": s["lp"] + tf.where(finished, 0.0, best_lp),
                "finished": finished | tf.equal(best, EOS),
                "states": [
                    tf.where(finished[:, None], old, new)
                    for old, new in zip(s["states"], states, strict=True)
                ],
            }
        ]

    def _write(self, s, which):
        pick = tf.where(which)[:, 0]
        index = tf.gather(s["rows"], pick)[:, None]
        seq = tf.gather(s["seq"], pick)
        longest = tf.shape(s["out_seq"])[1]
        seq = tf.pad(seq, [[0, 0], [0, longest - tf.shape(seq)[1]]], constant_values=EOS)
        steps = tf.fill(tf.shape(index)[:1], s["t"])
        return {
            **s,
            "out_seq": tf.tensor_scatter_nd_update(s["out_seq"], index, seq),
            "out_scores": tf.tensor_scatter_nd_update(
                s["out_scores"], index, tf.gather(s["lp"], pick)
            ),
            "out_steps": tf.tensor_scatter_nd_update(s["out_steps"], index, steps),
        }

    def _keep(self, s, which):
        keep = tf.where(which)[:, 0]
        out = {**s}
        for key in ("seq", "lp", "finished", "rows", "max_len"):
            out[key] = tf.gather(s[key], keep)
        out["states"] = [tf.gather(x, keep) for x in s["states"]]
        out["cache"] = [tf.gather(c, keep) for c in s["cache"]]
        return out


def _plain(step):
    """A step(ids, states, cache) of log-probabilities as the searches call it."""
    return lambda ids, states, cache, beam: step(ids, states, cache)


def greedy_search(step, states, cache, max_lengths):
    """Greedy search over a step of log-probabilities -> (ids [B, T], scores [B])."""
    ids, scores, _ = Greedy(_plain(step), Scorer(None, per_row=False))(states, cache, max_lengths)
    return ids[:, 0], scores[:, 0]


def beam_search(step, states, cache, max_lengths, beam_size, alpha):
    """Beam search over a step of log-probabilities (the cache tiled per hypothesis) ->
    (ids [B, K, T], scores [B, K])."""
    scorer = Scorer(None, per_row=False)
    search = BeamSearch(_plain(step), scorer, beam_size, alpha, shared_cache=False)
    ids, scores, _ = search(states, cache, max_lengths)
    return ids, scores
