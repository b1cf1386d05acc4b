"""score: the log-probability the model gives each (input, reference) pair."""

import math

import numpy as np
import tensorflow as tf

from zero import inference, log
from zero.batching import EvalBatches
from zero.errors import UserError
from zero.modes.mode import Mode
from zero.textio import check_parallel, write_lines

v1 = tf.compat.v1


def _build(models, vocabs):
    src = v1.placeholder(tf.int32, [None, None])
    tgt = v1.placeholder(tf.int32, [None, None])
    _, stats = models[0].loss(src, tgt, training=False)
    return src, tgt, stats


def run(config):
    """Per-sentence log-probability of (input, reference) pairs; corpus perplexity on stderr."""
    if not config.input or not config.reference:
        raise UserError("score mode needs --set input=SRC --set reference=TGT (BPE'd)")
    check_parallel(config.input, config.reference)
    loaded = inference.load(config, _build, ensemble=False)
    src, tgt, stats = loaded.outputs
    batches = EvalBatches(
        config.input,
        loaded.src_vocab,
        batch_tokens=config.decode_batch_tokens,
        tgt_path=config.reference,
        tgt_vocab=loaded.tgt_vocab,
    )
    scores, total_nll, total_tokens = {}, 0.0, 0.0
    for batch in batches:
        nll, tokens = loaded.sess.run(
            [stats["sentence_nll"], stats["tokens"]], {src: batch["src"], tgt: batch["tgt"]}
        )
        for index, value in zip(batch["index"], nll, strict=True):
            scores[int(index)] = -float(value)
        total_nll += float(np.sum(nll))
        total_tokens += float(tokens)
    write_lines(config.output, [f"{scores[i]:.4f}" for i in sorted(scores)])
    ppl = math.exp(min(total_nll / max(total_tokens, 1.0), 50.0))
    log.info(f"sentences {len(scores)}  tokens {int(total_tokens)}  perplexity {ppl:.3f}")


MODE = Mode(
    "score",
    "per-sentence log-probability of `input`/`reference` pairs; corpus perplexity on stderr",
    run,
)
