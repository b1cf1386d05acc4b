"""The server's model, loaded once: one graph and one session holding translate mode's
Translator (raw text through zero/translate.RawTranslator) and, for an LRN or oLRN model with
the identity activation, the weights probe of encoder layer `layer`, half `direction`
(zero/weights.py), so the page can show how the encoder weighs each source token.
"""

import os
import re
import threading

import numpy as np
import tensorflow as tf

from zero import inference, onednn
from zero.batching import encode_rows, pad_rows
from zero.errors import UserError
from zero.server.checks import BadRequest
from zero.translate import RawTranslator
from zero.weights import PART_LABELS, Probe, check_config, sentence_record

v1 = tf.compat.v1

# decompose() holds [L, L, parts, hidden] float64 weights of a sentence of L tokens: the view
# is for sentences a reader can take in, and this bounds its memory.
WEIGHTS_MAX_TOKENS = 100


def weights_unavailable(config):
    """Why the model has no token-weight view (None when it has one)."""
    try:
        check_config(config)
    except UserError as e:
        return str(e)
    return None


class Engine:
    """tokenize, decode and detokenize as translate mode does them; weights of a sentence;
    `info`, what /translator/models describes."""

    def __init__(self, config):
        self.config = config
        self.no_weights = weights_unavailable(config)
        extra = None if self.no_weights else (lambda models: Probe(models[0], config))
        loaded = inference.translator(config, extra=extra)
        self.raw = RawTranslator(config, loaded)
        self.probe = loaded.extra
        self._probe_lock = threading.Lock()  # one decomposition at a time: it is large
        self.info = describe(config, loaded, self.no_weights)

    def tokenize(self, lines):
        return self.raw.tokenize(lines)

    def decode(self, sentences, n_best, batch_tokens):
        """A server batch holds the sentences in flight, few and of mixed lengths: cut into
        decode_parallel_batches length-sorted parts decoded at once, every core works on it."""
        parts = self.config.decode_parallel_batches
        return self.raw.decode(sentences, n_best, split_budget(sentences, batch_tokens, parts))

    def detokenize(self, hyps):
        return self.raw.detokenize(hyps)

    def weights(self, src):
        """The token-weight view of one raw sentence (weights_view's dict)."""
        if self.probe is None:
            raise BadRequest(f"no token-weight view for this model: {self.no_weights}")
        tokens = self.tokenize([src])[0]
        if not tokens:
            raise BadRequest("the request: 'src' has no tokens after tokenisation")
        if len(tokens) + 1 > WEIGHTS_MAX_TOKENS:
            raise BadRequest(
                f"the request: 'src' has {len(tokens) + 1} tokens with EOS; the token-weight "
                f"view takes at most {WEIGHTS_MAX_TOKENS}",
                413,
            )
        flat, offsets, lens = encode_rows([tokens], self.raw.loaded.src_vocab)
        batch, _ = pad_rows(flat, offsets, lens, np.arange(1))
        with self._probe_lock:
            [(result, _)] = self.probe.run(self.raw.loaded.sess, batch)
        line = " ".join(tokens)
        return weights_view(sentence_record(result, line, batch[0], self.probe.names, self.config))


def _rounded(values):
    """Floats for JSON with 4 significant digits: the page draws them, a reader compares them."""
    return [float(f"{v:.4g}") for v in np.asarray(values, np.float64).ravel()]


def weights_view(record):
    """A sentence_record -> JSON: tokens, and per part the mean weight (over hidden units) of
    every token in the final state and the whole matrix (row t: the state after token t)."""
    final = int(record["final"])
    mean_w = record["mean_w"]
    n = mean_w.shape[0]
    parts = []
    for p, name in enumerate(record["parts"]):
        matrix = _rounded(mean_w[:, :, p])
        parts.append(
            {
                "name": str(name),
                "label": PART_LABELS[str(name)],
                "final": _rounded(mean_w[final, :, p]),
                "matrix": [matrix[t * n : (t + 1) * n] for t in range(n)],
            }
        )
    return {
        "cell": record["cell"],
        "layer": int(record["layer"]),
        "direction": record["direction"],
        "state": "c_t" if record["cell"] == "olrn" else "h_t",
        "tokens": [str(t) for t in record["tokens"]],
        "unk": [bool(u) for u in record["unk"]],
        "final": final,
        "parts": parts,
    }


def _step(path):
    found = re.search(r"-(\d+)$", path)
    return int(found.group(1)) if found else None


def describe(config, loaded, no_weights):
    """What /translator/models says about the loaded model."""
    trainable = loaded.graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)
    scope = loaded.models[0].scope + "/"
    parameters = sum(
        int(np.prod(v.shape.as_list())) for v in trainable if v.op.name.startswith(scope)
    )
    checkpoint = loaded.checkpoints[0]
    return {
        "model_dir": os.path.abspath(config.output_dir),
        "cell": config.cell,
        "hidden_size": config.hidden_size,
        "encoder_layers": config.num_encoder_layers,
        "decoder_layers": config.num_decoder_layers,
        "parameters": parameters,
        "checkpoint": os.path.abspath(checkpoint),
        "checkpoint_step": _step(checkpoint),
        "precision": config.precision,
        "cpu_kernels": onednn.chosen(),
        "src_lang": config.src_lang,
        "tgt_lang": config.tgt_lang,
        "beam_size": config.beam_size,
        "ensemble": len(loaded.checkpoints),
        "weights": no_weights is None,
        "weights_layer": config.layer,
        "weights_direction": config.direction,
        "weights_unavailable": no_weights,
    }


def split_budget(sentences, budget, parts):
    """A token budget (at most `budget`) that cuts `sentences` into about `parts` batches."""
    if parts <= 1 or len(sentences) < 2:
        return budget
    longest = max(len(tokens) for tokens in sentences) + 1  # EOS
    return max(longest, min(budget, -(-len(sentences) * longest // parts)))
