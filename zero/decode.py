"""From source ids to translations: the inference graph (one model or an ensemble) and the loop
that feeds it length-sorted batches and restores input order."""

import concurrent.futures
import threading
import time
import weakref

import tensorflow as tf

from zero import candidates, search
from zero.candidates import NEG_INF
from zero.vocab import EOS, PAD

v1 = tf.compat.v1


# The decoding engine's exact techniques, each a config key (on by default): switched off
# together they give the original search, which the tests and `bench decode` compare with.
TECHNIQUES = (
    "decode_drop_finished",  # finished sentences leave the running batch
    "decode_vocab_table",  # per-model vocabulary tables: layer 0's projection, output layer
    "decode_shared_memory",  # a sentence's memory and keys read by its K hypotheses, untiled
    "decode_row_topk",  # each hypothesis's best words found blockwise, no [N, V] mask
    "decode_row_normalizer",  # with row top-k: log-probabilities of the kept words only
    "decode_projected_memory",  # context x W as the average of memory x W (once per batch)
    "decode_stop_at_n_best",  # a beam stops once its n best finished (n asked for) are final
)


class _Member:
    """One model of the translator: its step's constant inputs, states and cache."""

    def __init__(self, model, src, config, output_ids, pad_to):
        enc = model.encode(src, training=False)
        self.model = model
        self.states = enc["init"]
        cache = model.inference_cache(enc, config.decode_projected_memory)
        self.keys = sorted(cache)
        self.cache = [cache[k] for k in self.keys]
        # Built here, outside the search loop: once per run, not once per step.
        self.constants = model.inference_constants(output_ids, pad_to)
        self.table, refresh = None, []
        if config.decode_vocab_table:
            # Once per loaded model, not once per batch: layer 0's projection of every target
            # word, the embedding the steps read and, without a shortlist (whose rows change
            # with the batch), the output layer's transposed and padded embedding.
            self.table = self._cached("vocab_table", model.vocab_table(self.constants), refresh)
            kept = ["tgt_emb"] + (["out_emb_t", "out_bias"] if output_ids is None else [])
            for name in kept:
                if name in self.constants:
                    self.constants[name] = self._cached(name, self.constants[name], refresh)
        self.refresh = tf.group(*refresh) if refresh else None

    def _cached(self, name, value, refresh):
        """`value` in a variable of its own (not a model weight: not saved), assigned by the
        op appended to `refresh`; its read is what the graph uses. Named with its width:
        translators with and without padded output columns may share a graph."""
        with v1.variable_scope(f"decoding/{self.model.scope}", reuse=v1.AUTO_REUSE):
            cached = v1.get_variable(
                f"{name}_{value.shape[-1]}",
                value.shape,
                initializer=v1.zeros_initializer(),
                trainable=False,
                collections=[v1.GraphKeys.LOCAL_VARIABLES],
            )
        refresh.append(cached.assign(value).op)
        return cached.read_value()

    def step(self, ids, states, cache, beam):
        cache = dict(zip(self.keys, cache, strict=True))
        return self.model.step_logits(
            ids, states, cache, self.constants, table=self.table, beam=beam
        )


class Translator:
    """Builds, in the current graph, beam search (greedy for beam_size 1) over one model or
    the average of several models' log-probabilities, with the techniques of TECHNIQUES as the
    config says and, when given, an output shortlist (zero/shortlist.py)."""

    beam_search = search.BeamSearch  # a subclass may search otherwise (bench/step.py)

    def __init__(self, models, config, src=None, shortlist=None):
        self.config = config
        # `src` [B, S] ids computed in the graph (export maps strings to ids); else fed.
        self.src = v1.placeholder(tf.int32, [None, None], name="decode_src") if src is None else src
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(self.src, PAD), tf.int32), 1)
        word_ids = None if shortlist is None else shortlist.batch_ids(self.src)
        pad = candidates.BLOCK if config.decode_row_topk else None
        self.members = [_Member(m, self.src, config, word_ids, pad) for m in models]
        refresh = [m.refresh for m in self.members if m.refresh is not None]
        self.refresh = tf.group(*refresh) if refresh else None
        self._ready = weakref.WeakSet()  # sessions whose tables are up to date
        self._refreshing = threading.Lock()  # batches run in parallel threads
        scorer = candidates.Scorer(models[0].tgt_vocab_size, word_ids, config.decode_row_topk)
        states = [x for m in self.members for x in m.states]
        cache = [c for m in self.members for c in m.cache]
        search_fn = self._search(config, scorer)
        max_lengths = max_lengths_of(lengths, config)
        # The hypotheses the caller reads, fed per run (the server's requests differ): with
        # decode_stop_at_n_best a sentence stops once its n best are final.
        self.n_best = v1.placeholder_with_default(
            min(config.n_best, config.beam_size), [], name="decode_n_best"
        )
        self.ids, self.scores, steps = search_fn(states, cache, max_lengths, self.n_best)
        # What `bench decode` reads: the decoder steps each sentence ran and how many words the
        # output layer scored (the vocabulary, or the batch's shortlist).
        size = tf.constant(models[0].tgt_vocab_size) if word_ids is None else tf.size(word_ids)
        self.details = {"steps": steps, "output_size": size}

    def _search(self, config, scorer):
        drop = config.decode_drop_finished
        if config.beam_size <= 1:
            return search.Greedy(self._step, scorer, drop)
        return self.beam_search(
            self._step,
            scorer,
            config.beam_size,
            config.length_penalty,
            drop,
            config.decode_shared_memory,
            config.decode_early_stop,
            config.decode_stop_at_n_best,
        )

    def _step(self, ids, states, cache, beam=None):
        """All members' step: (the mean of their log-probabilities, new states); one model's
        Logits with decode_row_normalizer (the Scorer normalises the words it keeps)."""
        total, new_states, s, c = None, [], 0, 0
        if not self.config.decode_shared_memory:
            beam = None  # the cache is tiled per hypothesis
        config = self.config
        lazy = config.decode_row_topk and config.decode_row_normalizer and len(self.members) == 1
        for m in self.members:
            logits, st = m.step(
                ids, states[s : s + len(m.states)], cache[c : c + len(m.cache)], beam
            )
            scores = candidates.Logits(logits) if lazy else tf.nn.log_softmax(logits)
            total = scores if total is None else total + scores
            new_states += st
            s, c = s + len(m.states), c + len(m.cache)
        if len(self.members) > 1:
            total /= len(self.members)
        return total, new_states

    def prepare(self, sess):
        """Fill the per-model tables in `sess` unless they are up to date: needed before
        running self.ids directly (run and run_with_details call it)."""
        if self.refresh is not None:
            with self._refreshing:
                if sess not in self._ready:
                    sess.run(self.refresh)
                    self._ready.add(sess)

    def invalidate(self):
        """The weights changed (training): recompute the tables before the next batch."""
        self._ready = weakref.WeakSet()

    def run(self, sess, batch, n_best=None):
        """batch [B, S] -> (ids [B, K, T], scores [B, K]). n_best: the hypotheses read (the
        config's n_best unless given); with decode_stop_at_n_best only the first n_best of
        each sentence are those of the whole search."""
        return self.run_with_details(sess, batch, n_best)[:2]

    def run_with_details(self, sess, batch, n_best=None):
        """batch [B, S] -> (ids [B, K, T], scores [B, K], {steps: decoder steps each sentence
        ran [B], output_size: words the output layer scored})."""
        self.prepare(sess)
        feed = {self.src: batch}
        if n_best is not None:
            feed[self.n_best] = n_best
        return sess.run([self.ids, self.scores, self.details], feed)

    def run_batches(self, sess, batches, details=False, source=lambda batch: batch, n_best=None):
        """Yield (batch, run's result on source(batch)) for each of `batches` in order,
        decoding decode_parallel_batches of them at once (session runs are thread-safe)."""
        with_details = self.run_with_details if details else self.run

        def run(sess, batch):
            return with_details(sess, source(batch), n_best)

        workers = max(self.config.decode_parallel_batches, 1)
        if workers == 1:
            for batch in batches:
                yield batch, run(sess, batch)
            return
        with concurrent.futures.ThreadPoolExecutor(workers, "decode") as pool:
            pending = []
            for batch in batches:
                pending.append((batch, pool.submit(run, sess, batch)))
                if len(pending) > workers:
                    done, future = pending.pop(0)
                    yield done, future.result()
            for done, future in pending:
                yield done, future.result()


def max_lengths_of(lengths, config):
    """Each sentence's longest output (EOS included): factor x source length + extra. The
    exact search's bound divides by the penalty at this length, so a tighter one also ends
    sentences sooner. In float64, as Python computes int(factor * length): in float32
    0.7 x 90 would be 63, not 62."""
    factor = tf.constant(config.max_decode_factor, tf.float64)
    scaled = tf.cast(tf.floor(factor * tf.cast(lengths, tf.float64)), tf.int32)
    return scaled + config.max_decode_extra


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
        if scores[k] <= NEG_INF / 10:
            continue  # an empty beam slot, not a hypothesis
        hyps.append((" ".join(tgt_vocab.decode(ids[k])), float(scores[k])))
    return hyps


def batch_src(batch):
    """An EvalBatches batch's source ids (run_batches' `source` for such batches)."""
    return batch["src"]


def translate_batches(sess, translator, batches, tgt_vocab, n_best=1, log=None):
    """Decode EvalBatches-style batches -> list (input order) of n-best [(text, score), ...]."""
    results = {}
    done, start, last_log = 0, time.time(), time.time()
    total = getattr(batches, "num_lines", None)
    found = translator.run_batches(sess, batches, source=batch_src, n_best=n_best)
    for batch, (ids, scores) in found:
        for row, index in enumerate(batch["index"]):
            results[int(index)] = hypotheses(ids[row], scores[row], tgt_vocab, n_best)
        done += len(batch["index"])
        if log and (time.time() - last_log > 10 or done == total):
            last_log = time.time()
            rate = done / max(time.time() - start, 1e-9)
            log(f"decoded {done} sentences, {rate:.1f} sentences/s")
    return [results[i] for i in sorted(results)]
