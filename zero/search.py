"""Batched beam search and greedy search in the graph.

The decoder is a function `step_fn(ids [N], states, cache) -> (log_probs [N, V], states)` where
states and cache are lists of tensors whose first axis is the batch. The encoder runs once; the
first step (from BOS) runs outside the loop, on one hypothesis per sentence, which also creates
every decoder variable outside the loop. Finished and alive hypotheses are kept apart: the beam
keeps K alive hypotheses, and K finished ones ranked by the GNMT length-normalised score.
"""

import tensorflow as tf

from zero.vocab import BOS, EOS

NEG_INF = -1e9


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
    """x's static shape with the batch axis unknown: the loop body computes the batch size
    dynamically, so a statically known batch (a constant input) must not be promised."""
    return tf.TensorShape([None]).concatenate(x.shape[1:])


def _gather_beams(x, flat_index):
    return tf.gather(x, flat_index)


def _force_eos(log_probs, done):
    """Where `done` [N] is true, allow only EOS (the sentence reached its maximum length).

    EOS keeps its log-probability: a hypothesis cut at the maximum length is scored as the model
    scores it, not handed a free EOS that would favour running into the limit.
    """
    is_eos = tf.equal(tf.range(tf.shape(log_probs)[1]), EOS)[None, :]
    return tf.where(done[:, None] & tf.logical_not(is_eos), NEG_INF, log_probs)


def greedy_search(step_fn, states, cache, max_lengths):
    """Arg-max decoding. Returns (ids [B, T] ending in EOS or padded with EOS, scores [B])."""
    batch = tf.shape(max_lengths)[0]
    ids = tf.fill([batch], BOS)
    log_probs, states = step_fn(ids, states, cache)
    log_probs = _force_eos(log_probs, max_lengths <= 1)
    best = tf.argmax(log_probs, -1, output_type=tf.int32)
    scores = tf.reduce_max(log_probs, -1)
    finished = tf.equal(best, EOS)
    seq = best[:, None]

    def cond(t, seq, states, scores, finished):
        return tf.logical_not(tf.reduce_all(finished))

    def body(t, seq, states, scores, finished):
        log_probs, new_states = step_fn(seq[:, -1], states, cache)
        log_probs = _force_eos(log_probs, t + 1 >= max_lengths)
        best = tf.argmax(log_probs, -1, output_type=tf.int32)
        best = tf.where(finished, tf.fill([batch], EOS), best)
        gained = tf.where(finished, tf.zeros([batch]), tf.reduce_max(log_probs, -1))
        new_states = [
            tf.where(finished[:, None], s, n) for s, n in zip(states, new_states, strict=True)
        ]
        return (
            t + 1,
            tf.concat([seq, best[:, None]], 1),
            new_states,
            scores + gained,
            finished | tf.equal(best, EOS),
        )

    invariants = [
        tf.TensorShape([]),
        tf.TensorShape([None, None]),
        [_any_batch(s) for s in states],
        tf.TensorShape([None]),
        tf.TensorShape([None]),
    ]
    _, seq, _, scores, _ = tf.compat.v1.while_loop(
        cond,
        body,
        [tf.constant(1), seq, states, scores, finished],
        shape_invariants=invariants,
        back_prop=False,
    )
    return seq, scores


def beam_search(step_fn, states, cache, max_lengths, beam_size, alpha):
    """Batched beam search.

    Returns (ids [B, K, T] best first, each ending in EOS then padded with EOS,
    scores [B, K] length-normalised log-probabilities).
    """
    k = beam_size
    batch = tf.shape(max_lengths)[0]
    log_probs, states = step_fn(tf.fill([batch], BOS), states, cache)
    log_probs = _force_eos(log_probs, max_lengths <= 1)
    vocab = tf.shape(log_probs)[1]

    # First expansion: the K best words of the single initial hypothesis. EOS among them
    # finishes at length 1; it stays alive with -inf so it is never extended.
    top_lp, top_ids = tf.nn.top_k(log_probs, k)
    is_eos = tf.equal(top_ids, EOS)
    fin_scores = tf.where(is_eos, top_lp / length_penalty(1, alpha), NEG_INF)
    alive_lp = tf.where(is_eos, NEG_INF, top_lp)
    alive_seq = top_ids[:, :, None]
    fin_seq = alive_seq
    states = [_tile(s, k) for s in states]
    cache = [_tile(c, k) for c in cache]
    max_tiled = _tile(max_lengths, k)
    batch_offsets = (tf.range(batch) * k)[:, None]

    def cond(t, alive_seq, alive_lp, states, fin_seq, fin_scores):
        # Stop when no alive hypothesis can still beat the worst finished one, or all hit max.
        best_possible = alive_lp[:, 0] / length_penalty(tf.cast(max_lengths, tf.float32), alpha)
        worst_finished = tf.reduce_min(fin_scores, 1)
        can_improve = (best_possible > worst_finished) & (t < max_lengths)
        return tf.reduce_any(can_improve)

    def body(t, alive_seq, alive_lp, states, fin_seq, fin_scores):
        flat_ids = tf.reshape(alive_seq[:, :, -1], [-1])
        step_lp, new_states = step_fn(flat_ids, states, cache)
        step_lp = _force_eos(step_lp, t + 1 >= max_tiled)
        total = tf.reshape(step_lp, [batch, k, vocab]) + alive_lp[:, :, None]
        flat = tf.reshape(total, [batch, k * vocab])
        # 2K candidates guarantee K that do not end in EOS.
        cand_lp, cand_index = tf.nn.top_k(flat, 2 * k)
        parent = cand_index // vocab
        word = cand_index % vocab
        cand_seq = tf.concat([tf.gather(alive_seq, parent, batch_dims=1), word[:, :, None]], axis=2)
        cand_eos = tf.equal(word, EOS)

        # Alive: the K best candidates that do not end in EOS.
        alive_rank = tf.where(cand_eos, NEG_INF, cand_lp)
        new_alive_lp, alive_pick = tf.nn.top_k(alive_rank, k)
        new_alive_seq = tf.gather(cand_seq, alive_pick, batch_dims=1)
        parent_flat = tf.reshape(tf.gather(parent, alive_pick, batch_dims=1) + batch_offsets, [-1])
        new_states = [_gather_beams(s, parent_flat) for s in new_states]

        # Finished: the K best of the old finished and the candidates that end in EOS.
        cand_scores = tf.where(cand_eos, cand_lp / length_penalty(t + 1, alpha), NEG_INF)
        old_fin = tf.pad(fin_seq, [[0, 0], [0, 0], [0, 1]], constant_values=EOS)
        all_seq = tf.concat([old_fin, cand_seq], 1)
        all_scores = tf.concat([fin_scores, cand_scores], 1)
        new_fin_scores, fin_pick = tf.nn.top_k(all_scores, k)
        new_fin_seq = tf.gather(all_seq, fin_pick, batch_dims=1)
        return t + 1, new_alive_seq, new_alive_lp, new_states, new_fin_seq, new_fin_scores

    invariants = [
        tf.TensorShape([]),
        tf.TensorShape([None, k, None]),
        tf.TensorShape([None, k]),
        [_any_batch(s) for s in states],
        tf.TensorShape([None, k, None]),
        tf.TensorShape([None, k]),
    ]
    _, alive_seq, alive_lp, _, fin_seq, fin_scores = tf.compat.v1.while_loop(
        cond,
        body,
        [tf.constant(1), alive_seq, alive_lp, states, fin_seq, fin_scores],
        shape_invariants=invariants,
        back_prop=False,
    )
    # A sentence with no finished hypothesis (cannot happen with forced EOS, but be safe)
    # falls back to its alive ones.
    none_finished = tf.reduce_all(fin_scores <= NEG_INF / 2, axis=1)
    alive_scores = alive_lp / length_penalty(tf.shape(alive_seq)[2], alpha)
    seq = tf.where(none_finished[:, None, None], alive_seq, fin_seq)
    scores = tf.where(none_finished[:, None], alive_scores, fin_scores)
    return seq, scores
