"""From source ids to translations: the inference graph (one model or an ensemble) and the loop
that feeds it length-sorted batches and restores input order."""

import time

import tensorflow as tf

from zero import search
from zero.vocab import BOS, EOS, PAD

v1 = tf.compat.v1


class Translator:
    """Builds, in the current graph, beam search over the average of the models' log-probs."""

    def __init__(self, models, config, src=None):
        self.config = config
        # `src` [B, S] ids computed in the graph (export maps strings to ids); else fed.
        self.src = v1.placeholder(tf.int32, [None, None], name="decode_src") if src is None else src
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(self.src, 0), tf.int32), 1)
        max_lengths = lengths + config.max_decode_extra
        states, cache, layout = [], [], []
        never = [0.0] * models[0].tgt_vocab_size
        never[PAD] = never[BOS] = search.NEG_INF
        self._never = tf.constant(never)
        for model in models:
            enc = model.encode(self.src, training=False)
            model_cache = model.inference_cache(enc)
            keys = sorted(model_cache)
            # Built here, outside the search loop: once per run, not once per step.
            layout.append((model, len(enc["init"]), keys, model.inference_constants()))
            states += enc["init"]
            cache += [model_cache[k] for k in keys]

        def step_fn(ids, flat_states, flat_cache):
            total, new_states, s, c = None, [], 0, 0
            for model, n_states, keys, constants in layout:
                model_cache = dict(zip(keys, flat_cache[c : c + len(keys)], strict=True))
                log_probs, st = model.step(
                    ids, flat_states[s : s + n_states], model_cache, constants
                )
                total = log_probs if total is None else total + log_probs
                new_states += st
                s, c = s + n_states, c + len(keys)
            if len(layout) > 1:
                total /= len(layout)
            # PAD and BOS are never outputs: a beam that picked them would just lose words.
            return total + self._never, new_states

        if config.beam_size <= 1:
            seq, scores = search.greedy_search(step_fn, states, cache, max_lengths)
            self.ids, self.scores = seq[:, None, :], scores[:, None]
        else:
            self.ids, self.scores = search.beam_search(
                step_fn, states, cache, max_lengths, config.beam_size, config.length_penalty
            )

    def run(self, sess, batch):
        """batch [B, S] -> (ids [B, K, T], scores [B, K])."""
        return sess.run([self.ids, self.scores], {self.src: batch})


def strip_eos(ids):
    """The ids before the first EOS."""
    out = []
    for i in ids:
        if i == EOS:
            break
        out.append(int(i))
    return out


def hypotheses(ids, scores, tgt_vocab, n_best):
    """One sentence's beam (ids [K, T], scores [K]) -> up to n_best (BPE'd text, score)."""
    hyps = []
    for k in range(min(n_best, ids.shape[0])):
        if scores[k] <= search.NEG_INF / 10:
            continue  # an empty beam slot, not a hypothesis
        hyps.append((" ".join(tgt_vocab.decode(ids[k])), float(scores[k])))
    return hyps


def translate_batches(sess, translator, batches, tgt_vocab, n_best=1, log=None):
    """Decode EvalBatches-style batches -> list (input order) of n-best [(text, score), ...]."""
    results = {}
    done, start, last_log = 0, time.time(), time.time()
    total = getattr(batches, "num_lines", None)
    for batch in batches:
        ids, scores = translator.run(sess, batch["src"])
        for row, index in enumerate(batch["index"]):
            results[int(index)] = hypotheses(ids[row], scores[row], tgt_vocab, n_best)
        done += len(batch["index"])
        if log and (time.time() - last_log > 10 or done == total):
            last_log = time.time()
            rate = done / max(time.time() - start, 1e-9)
            log(f"decoded {done} sentences, {rate:.1f} sentences/s")
    return [results[i] for i in sorted(results)]
