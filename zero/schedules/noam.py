"""noam (Vaswani et al., 2017): linear warmup to lr, then inverse square root decay."""

import tensorflow as tf


def noam(config, t):
    warmup = float(max(config.warmup_steps, 1))
    return tf.minimum(t / warmup, tf.sqrt(warmup / t))
