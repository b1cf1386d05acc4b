"""Validation during training: dev loss (no dropout, no smoothing) and dev BLEU by beam
search, with the training graph's own model and the shared decoding path."""

import math

from zero import evaluate
from zero.batching import EvalBatches
from zero.decode import translate_batches
from zero.textio import lines_of


def dev_loss(sess, graph, config, src_vocab, tgt_vocab):
    """Per-token NLL of the dev set and its perplexity."""
    nll = tokens = 0.0
    batches = EvalBatches(
        config.dev_src,
        src_vocab,
        batch_tokens=config.decode_batch_tokens,
        tgt_path=config.dev_tgt,
        tgt_vocab=tgt_vocab,
    )
    fetch = [graph.eval_stats["nll"], graph.eval_stats["tokens"]]
    for batch in batches:
        n, t = sess.run(fetch, {graph.src: batch["src"], graph.tgt: batch["tgt"]})
        nll, tokens = nll + float(n), tokens + float(t)
    loss = nll / max(tokens, 1.0)
    return {"dev_loss": loss, "dev_ppl": math.exp(min(loss, 50))}


def dev_bleu(sess, translator, config, src_vocab, tgt_vocab):
    """sacreBLEU of the beam-search translations of the first eval_sentences dev lines."""
    translator.invalidate()  # the weights changed since the last validation
    limit = config.eval_sentences or None
    batches = EvalBatches(
        config.dev_src, src_vocab, batch_tokens=config.decode_batch_tokens, limit=limit
    )
    hyps = [h[0][0] if h else "" for h in translate_batches(sess, translator, batches, tgt_vocab)]
    refs = lines_of(config.dev_ref)[: len(hyps)]
    detok = evaluate.postprocess(hyps, config.tgt_lang)
    return float(evaluate.sacrebleu_score(detok, refs)[0])


def validate(sess, graph, config, src_vocab, tgt_vocab):
    """{dev_loss, dev_ppl} when dev_src and dev_tgt are set, dev_bleu when a translator was
    built (dev_src and dev_ref set)."""
    out = {}
    if config.dev_src and config.dev_tgt:
        out.update(dev_loss(sess, graph, config, src_vocab, tgt_vocab))
    if graph.translator is not None:
        out["dev_bleu"] = dev_bleu(sess, graph.translator, config, src_vocab, tgt_vocab)
    return out
