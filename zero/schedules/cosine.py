"""cosine: linear warmup, then half a cosine down to min_lr at max_steps (suits a fixed
budget; with lr_progress: time the steps are the budget's fraction times max_steps)."""

import math

import tensorflow as tf


def cosine(config, t):
    warmup = float(max(config.warmup_steps, 1))
    total = float(max(config.max_steps - config.warmup_steps, 1))
    progress = tf.clip_by_value((t - warmup) / total, 0.0, 1.0)
    half_cosine = 0.5 * (1.0 + tf.cos(math.pi * progress))
    floor = config.min_lr / config.lr if config.lr > 0 else 0.0
    return tf.minimum(t / warmup, 1.0) * (floor + (1.0 - floor) * half_cosine)
