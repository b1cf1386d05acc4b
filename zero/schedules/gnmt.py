"""gnmt+ (Chen et al., 2018): linear warmup to n times lr, then exponential decay."""

import tensorflow as tf


def gnmt_plus(config, t):
    """min(1 + t(n-1)/(n p), n, n (2n)^((s - n t)/(e - s))), with n = gnmt_replicas,
    p = warmup_steps, s = decay_start, e = decay_end."""
    warmup = float(max(config.warmup_steps, 1))
    n = float(config.gnmt_replicas)
    s, e = float(config.decay_start), float(max(config.decay_end, config.decay_start + 1))
    return tf.minimum(
        tf.minimum(1.0 + t * (n - 1.0) / (n * warmup), n),
        n * tf.pow(2.0 * n, (s - n * t) / (e - s)),
    )
