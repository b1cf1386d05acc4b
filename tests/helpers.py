"""Shared builders for the model, search and training tests: tiny configs, random weights and
toy corpora. Everything is small enough to build and run in a second or two."""

import os

import numpy as np
import tensorflow as tf

import rnns
from zero import config as config_lib
from zero.vocab import Vocab

v1 = tf.compat.v1

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root

CELLS = list(rnns.CELLS.names())

TINY = {
    "hidden_size": 8,
    "embed_size": 8,
    "num_encoder_layers": 2,
    "num_decoder_layers": 2,
    "src_vocab_size": 20,
    "tgt_vocab_size": 20,
    "dropout": 0.0,
    "threads": 1,
}


def tiny_config(**overrides):
    """Defaults <- TINY <- overrides, through the real loader (so values are validated)."""
    values = {**TINY, **overrides}
    sets = []
    for key, value in values.items():
        if value is None:
            sets.append(f"{key}=null")
        elif isinstance(value, bool):
            sets.append(f"{key}={'true' if value else 'false'}")
        elif isinstance(value, list):
            sets.append(f"{key}=[{', '.join(map(str, value))}]")
        else:
            sets.append(f"{key}={value}")
    return config_lib.load(None, sets)


# Training on a write_corpus corpus: its ready-made vocabularies, no BLEU validation, small
# batches, one layer each side, a progress line every step.
TRAIN = {
    "src_vocab_size": 0,
    "tgt_vocab_size": 0,
    "dev_ref": None,
    "lr": 0.01,
    "seed": 7,
    "max_len": 8,
    "shuffle_buffer": 100,
    "log_every": 1,
    "eval_every": 100,
    "num_encoder_layers": 1,
    "num_decoder_layers": 1,
}


def train_config(corpus, output_dir, **overrides):
    """tiny_config for training on `corpus` (paths from write_corpus) into output_dir."""
    return tiny_config(**{**corpus, **TRAIN, "output_dir": str(output_dir), **overrides})


def randomize(sess, scale=1.0, seed=0, variables=None):
    """Give every trainable variable N(0, scale^2) values: peaked output distributions (the
    default +-0.08 init is near uniform), so that argmax and beam decisions are clear-cut and
    hypotheses end at different lengths."""
    rng = np.random.default_rng(seed)
    variables = variables if variables is not None else v1.trainable_variables()
    assign(sess, {v: rng.normal(0.0, scale, v.shape.as_list()) for v in variables})


def assign(sess, values):
    """{variable: value} in one run (Variable.load adds ops to the graph one call at a time)."""
    feeds, ops = {}, []
    with sess.graph.as_default():
        for var, value in values.items():
            value = np.asarray(value, var.dtype.as_numpy_dtype)
            ph = v1.placeholder(var.dtype.base_dtype, value.shape)
            ops.append(var.assign(ph))
            feeds[ph] = value
    sess.run(ops, feeds)


def make_session(graph=None):
    cfg = v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    return v1.Session(graph=graph or v1.get_default_graph(), config=cfg)


def pad(seqs, value=0):
    """List of id lists -> int32 [B, max_len] right-padded with PAD (0)."""
    width = max(len(s) for s in seqs)
    out = np.full([len(seqs), width], value, np.int32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def random_sentences(rng, n, vocab_size, min_len=1, max_len=6):
    """n id lists of words (ids >= 4) each followed by EOS (3)."""
    return [
        list(rng.integers(4, vocab_size, rng.integers(min_len, max_len + 1))) + [3]
        for _ in range(n)
    ]


# -- toy corpus -----------------------------------------------------------------------------

WORDS = [f"w{i}" for i in range(24)]


def toy_pairs(n, seed=0, max_words=5):
    """A learnable task: the target is the reversed source with each word renamed."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        words = [WORDS[i] for i in rng.integers(0, len(WORDS), rng.integers(1, max_words + 1))]
        pairs.append((" ".join(words), " ".join("x" + w[1:] for w in reversed(words))))
    return pairs


def write_corpus(directory, n_train=300, n_dev=8, seed=0):
    """train/dev files and vocabularies in `directory`; returns config overrides naming them."""
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for name, n, s in (("train", n_train, seed), ("dev", n_dev, seed + 1)):
        pairs = toy_pairs(n, s)
        for side, k in (("src", 0), ("tgt", 1)):
            path = os.path.join(directory, f"{name}.{side}")
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(p[k] + "\n" for p in pairs)
            paths[f"{name}_{side}"] = path
    paths["dev_ref"] = paths["dev_tgt"]
    for side in ("src", "tgt"):
        vocab = Vocab.build([paths[f"train_{side}"]])
        path = os.path.join(directory, f"vocab.{side}")
        vocab.save(path)
        paths[f"{side}_vocab"] = path
    return paths


def trained_tiny_model(root, **overrides):
    """A tiny model trained briefly on a toy corpus under `root` (a pathlib.Path): peaked,
    input-dependent distributions and sentences that end at different lengths (a random-init
    model repeats one word until the length limit). Returns its config."""
    from zero.train import Trainer

    paths = write_corpus(str(root / "data"), n_train=300)
    paths["dev_ref"] = None  # no BLEU validation: faster, and the users do not need it
    values = {
        **paths,
        "output_dir": str(root / "model"),
        "src_vocab_size": 0,
        "tgt_vocab_size": 0,
        "hidden_size": 16,
        "embed_size": 16,
        "lr": 0.01,
        "batch_tokens": 200,
        "max_len": 10,
        "max_steps": 120,
        "eval_every": 60,
        "log_every": 1000,
        "beam_size": 4,
        "max_decode_extra": 3,
    }
    values.update(overrides)
    config = tiny_config(**values)
    Trainer(config, log=lambda m: None).train()
    return config
