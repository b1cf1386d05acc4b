"""Learning-rate schedules, computed in the graph from the step so resume is exact.

A schedule is a function factor(config, t) -> the multiplier of config.lr at update number t
(a float tensor, 1 for the first update). A new schedule is one file with that function plus
one `register` line below; config key `lr_schedule` names it.
"""

import tensorflow as tf

from rnns.registry import Registry
from zero.schedules.constant import constant
from zero.schedules.cosine import cosine
from zero.schedules.gnmt import gnmt_plus
from zero.schedules.noam import noam

SCHEDULES = Registry("lr_schedule", "schedules")
SCHEDULES.register(gnmt_plus, "gnmt+")
SCHEDULES.register(noam, "noam")
SCHEDULES.register(cosine, "cosine")
SCHEDULES.register(constant, "constant")


def learning_rate(config, step, scale):
    """lr at `step` (a tensor: the updates done so far); `scale` is the plateau-halving factor
    (a variable). Never below config.min_lr."""
    t = tf.cast(step, tf.float32) + 1.0  # the update being computed is number step + 1
    factor = SCHEDULES[config.lr_schedule](config, t)
    return tf.maximum(config.lr * factor * scale, config.min_lr)
