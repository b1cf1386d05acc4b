"""Raw text in, raw text out: the prepared corpus's normalisation, tokenisation and BPE, beam
search, then BPE removal and detokenisation. The engine of translate mode and the server.
"""

import numpy as np

from zero import inference, preprocess
from zero.batching import cut_batches, encode_rows, pad_rows
from zero.decode import hypotheses
from zero.errors import UserError
from zero.evaluate import postprocess


class RawTranslator:
    """Raw source lines -> raw target lines with one model directory's best/latest weights.

    `loaded`: an inference.Loaded whose outputs is the Translator, when the caller built the
    graph itself (the server adds its weights probe to it); else the configured one is loaded.
    """

    def __init__(self, config, loaded=None):
        self.config = config
        self.pre = preprocess.from_config(config)
        self.loaded = loaded if loaded is not None else inference.translator(config)
        if self.loaded.src_vocab is None or self.loaded.tgt_vocab is None:
            raise UserError("translate mode needs the vocabulary files (src_vocab, tgt_vocab)")

    def __call__(self, lines):
        """The best translation of each line ("" for an empty or blank line)."""
        return [hyps[0][0] if hyps else "" for hyps in self.nbest(lines, 1)]

    def nbest(self, lines, n_best):
        """Up to n_best (raw translation, score) pairs per line, best first ([] for an empty
        or blank line)."""
        tokens = self.tokenize(lines)
        rows = [i for i, t in enumerate(tokens) if t]
        found = self.decode([tokens[i] for i in rows], n_best) if rows else []
        out = [[] for _ in lines]
        for i, hyps in zip(rows, found, strict=True):
            out[i] = self.detokenize(hyps)
        return out

    def tokenize(self, lines):
        """Raw lines -> their BPE'd token lists (empty for a line with no tokens)."""
        return [line.split() for line in self.pre(lines, self.config.src_lang)]

    def detokenize(self, hyps):
        """[(BPE'd text, score)] -> [(raw text, score)]: BPE removed, detokenized."""
        texts = postprocess([text for text, _ in hyps], self.config.tgt_lang)
        return [(text, score) for text, (_, score) in zip(texts, hyps, strict=True)]

    def decode(self, sentences, n_best=1, batch_tokens=None):
        """Token lists -> n-best [(BPE'd text, score)] each, in length-sorted batches under the
        token budget (decode_batch_tokens unless given) cut exactly as test mode cuts a file
        (the batching affects rounding)."""
        flat, offsets, lens = encode_rows(sentences, self.loaded.src_vocab)
        order = np.argsort(lens, kind="stable")
        found = [None] * len(sentences)
        translator = self.loaded.outputs
        budget = batch_tokens or self.config.decode_batch_tokens
        rows = [order[a:b] for a, b in cut_batches(order, lens + 1, None, budget)]
        batches = translator.run_batches(
            self.loaded.sess,
            rows,
            source=lambda rows: pad_rows(flat, offsets, lens, rows)[0],
            n_best=n_best,
        )
        for rows, (ids, scores) in batches:
            for k, row in enumerate(rows):
                found[row] = hypotheses(ids[k], scores[k], self.loaded.tgt_vocab, n_best)
        return found
