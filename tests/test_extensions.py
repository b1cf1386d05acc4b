"""Every kind of extension is one definition plus one registry line: a toy cell, attention,
learning-rate schedule and mode registered at run time are named by a config and work."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import train_config, write_corpus

import rnns
import run
from rnns.attention import Attention
from rnns.cell import Cell
from zero.errors import UserError
from zero.modes import MODES, Mode
from zero.schedules import SCHEDULES
from zero.train import Trainer

v1 = tf.compat.v1


class ToyCell(Cell):
    """A seventh cell: f = sigma(a), h_t = f*h_{t-1} + (1-f)*tanh(b) with [a|b] = x W."""

    name = "toy"
    proj_blocks = 2

    def step(self, proj_t, state):
        a, b = tf.split(proj_t, 2, axis=-1)
        f = tf.sigmoid(a)
        return f * state + (1.0 - f) * tf.tanh(b)


class ToyAttention(Attention):
    """Scores q . w_k m with one learned scale on the keys: a second, tiny attention."""

    name = "toyatt"

    def _build(self, memory_size, query_size):
        self.scale = self._weight("scale", [])
        self.W = self._weight("W", [memory_size, query_size])

    def _keys(self, memory):
        return tf.einsum("bsm,mq->bsq", memory, self.W) * self.scale

    def scores(self, query, keys):
        return tf.reduce_sum(keys * query[:, None, :], -1)


def halved(config, t):
    """A toy schedule: half the learning rate, always."""
    return tf.constant(0.5) + 0.0 * t


@pytest.fixture
def toys():
    said = []
    mode = Mode("hello", "say which cell the config names", lambda c: said.append(c.cell))
    rnns.CELLS.register(ToyCell)
    rnns.ATTENTIONS.register(ToyAttention)
    SCHEDULES.register(halved, "halved")
    MODES.register(mode)
    try:
        yield said
    finally:
        rnns.CELLS.unregister("toy")
        rnns.ATTENTIONS.unregister("toyatt")
        SCHEDULES.unregister("halved")
        MODES.unregister("hello")


def test_toy_extensions_train_and_run(toys, tmp_path):
    corpus = write_corpus(str(tmp_path / "data"), n_train=60)
    config = train_config(
        corpus,
        tmp_path / "model",
        cell="toy",
        attention="toyatt",
        lr_schedule="halved",
        max_steps=2,
        lr=0.01,
        min_lr=0.0,
    )
    lines = []
    trainer = Trainer(config, log=lines.append)
    names = {v.op.name for v in trainer.graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)}
    assert "model/decoder/layer_0/attention/scale" in names
    assert "model/encoder/layer_0/fw/W" in names
    assert trainer.train()["step"] == 2
    lr = trainer.sess.run(trainer.g.lr)
    assert lr == pytest.approx(0.005)  # the toy schedule's half of lr
    trained = {v.op.name: trainer.sess.run(v) for v in _trainable(trainer)}
    trainer.sess.run(trainer.g.init_op)  # the seeded initial values again
    changed = [n for n, v in trained.items() if not np.array_equal(v, _value(trainer, n))]
    assert {"model/encoder/layer_0/fw/W", "model/decoder/layer_0/attention/W"} <= set(changed)
    assert run.main(["--mode", "hello", "--set", "cell=toy"]) == 0
    assert toys == ["toy"]


def _trainable(trainer):
    return trainer.graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)


def _value(trainer, name):
    return trainer.sess.run(next(v for v in _trainable(trainer) if v.op.name == name))


def test_unregistered_names_are_config_errors_with_the_closest():
    from zero import config as config_lib

    with pytest.raises(UserError, match="unknown value 'lunog'.*did you mean 'luong'"):
        config_lib.load(None, ["attention=lunog"])
    with pytest.raises(UserError, match="did you mean 'cosine'"):
        config_lib.load(None, ["lr_schedule=cosin"])
    with pytest.raises(ValueError, match="already registered"):
        rnns.CELLS.register(ToyCell, "lrn")
