"""Every combination of cell x context_aware x grad_accum x cell_layer_norm x precision builds
and trains a step on a tiny model, and every parameter gets a gradient (no dead weights)."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from helpers import random_sentences, tiny_config

from rnns import CELLS
from zero.train_graph import TrainGraph
from zero.vocab import EOS

v1 = tf.compat.v1

COMBINATIONS = list(
    itertools.product(CELLS.names(), (True, False), (1, 2), (False, True), ("float32", "bfloat16"))
)


def _batch(rng, n=3):
    src = random_sentences(rng, n, 20, max_len=5)
    tgt = random_sentences(rng, n, 20, max_len=4)
    width = max(map(len, src)), max(map(len, tgt))
    out = [np.zeros([n, w], np.int32) for w in width]
    for i, (s, t) in enumerate(zip(src, tgt, strict=True)):
        out[0][i, : len(s)], out[1][i, : len(t)] = s, t
    assert (out[0] == EOS).sum() == n
    return out


@pytest.mark.parametrize(
    "cell,context_aware,grad_accum,cell_layer_norm,precision",
    COMBINATIONS,
    ids=["-".join(map(str, c)) for c in COMBINATIONS],
)
def test_every_combination_trains_a_step(
    cell, context_aware, grad_accum, cell_layer_norm, precision
):
    config = tiny_config(
        cell=cell,
        context_aware=context_aware,
        grad_accum=grad_accum,
        cell_layer_norm=cell_layer_norm,
        precision=precision,
        dropout=0.1,
        num_encoder_layers=1,  # layer 0 holds what context_aware changes
        num_decoder_layers=1,
    )
    with tf.Graph().as_default():
        g = TrainGraph(config, 20, 20)
        params = v1.trainable_variables()
        grads = tf.gradients(g.loss, params)
        dead = [p.op.name for p, grad in zip(params, grads, strict=True) if grad is None]
        assert not dead, f"parameters without a gradient: {dead}"
        init = v1.global_variables_initializer()
        # Grappler's rewrites take longer than the step on a graph this small.
        session = v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        session.graph_options.rewrite_options.disable_meta_optimizer = True
        with v1.Session(config=session) as sess:
            sess.run(init)
            rng = np.random.default_rng(0)
            for _ in range(grad_accum - 1):
                src, tgt = _batch(rng)
                sess.run(g.accumulate, {g.src: src, g.tgt: tgt})
            src, tgt = _batch(rng)
            _, loss = sess.run([g.train_op, g.loss], {g.src: src, g.tgt: tgt})
            step = sess.run(g.global_step)
    assert np.isfinite(loss) and step == 1
