"""constant: lr after an optional linear warmup (the trainer halves it on a dev plateau)."""

import tensorflow as tf


def constant(config, t):
    if config.warmup_steps <= 0:
        return tf.constant(1.0)
    return tf.minimum(t / float(config.warmup_steps), 1.0)
