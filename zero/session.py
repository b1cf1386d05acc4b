"""What every mode needs before it builds a graph: vocabularies and a configured Session."""

import os

import tensorflow as tf

from zero.errors import UserError
from zero.vocab import Vocab

v1 = tf.compat.v1


def load_vocabs(config):
    """-> (src_vocab or None, tgt_vocab or None, src_size, tgt_size).

    Without vocabulary files the sizes come from src_vocab_size / tgt_vocab_size, so a model
    can be built (and its parameters counted) without data.
    """
    vocabs, sizes = [], []
    for side in ("src", "tgt"):
        path, size = config[f"{side}_vocab"], config[f"{side}_vocab_size"]
        if path:
            if not os.path.exists(path):
                raise UserError(f"config key '{side}_vocab': vocabulary file not found: {path}")
            vocab = Vocab.load(path)
            vocabs.append(vocab)
            sizes.append(len(vocab))
        elif size > 0:
            vocabs.append(None)
            sizes.append(size)
        else:
            raise UserError(
                f"config key '{side}_vocab' is not set: give a vocabulary file "
                f"or '{side}_vocab_size'"
            )
    return vocabs[0], vocabs[1], sizes[0], sizes[1]


def session_config(config):
    """The ConfigProto of every session: thread counts from the config (0 = TensorFlow's
    choice), soft placement, and GPU memory taken as needed rather than all at once."""
    proto = v1.ConfigProto(
        intra_op_parallelism_threads=config.threads,
        inter_op_parallelism_threads=config.threads,
        allow_soft_placement=True,
    )
    proto.gpu_options.allow_growth = True
    return proto


def make_session(config, graph):
    return v1.Session(graph=graph, config=session_config(config))
