"""Learning-rate schedules, computed in the graph from the global step so resume is exact."""

import tensorflow as tf

from zero.errors import UserError

SCHEDULES = ("gnmt+", "noam", "cosine", "constant")


def learning_rate(config, step, scale):
    """lr at `step` (int64 tensor); `scale` is the plateau-halving factor (a variable)."""
    lr = config.lr
    t = tf.cast(step, tf.float32) + 1.0  # the update being computed is number step + 1
    warmup = float(max(config.warmup_steps, 1))
    name = config.lr_schedule
    if name == "gnmt+":
        # Chen et al. (2018): lr * min(1 + t(n-1)/(n p), n, n (2n)^((s - n t)/(e - s))).
        n = float(config.gnmt_replicas)
        s, e = float(config.decay_start), float(max(config.decay_end, config.decay_start + 1))
        factor = tf.minimum(
            tf.minimum(1.0 + t * (n - 1.0) / (n * warmup), n),
            n * tf.pow(2.0 * n, (s - n * t) / (e - s)),
        )
    elif name == "noam":
        # Linear warmup to lr, then decay with the inverse square root of the step.
        factor = tf.minimum(t / warmup, tf.sqrt(warmup / t))
    elif name == "cosine":
        # Linear warmup, then half a cosine down to min_lr at max_steps: suits a fixed budget.
        total = float(max(config.max_steps - config.warmup_steps, 1))
        progress = tf.clip_by_value((t - warmup) / total, 0.0, 1.0)
        cosine = 0.5 * (1.0 + tf.cos(3.141592653589793 * progress))
        floor = config.min_lr / lr if lr > 0 else 0.0
        factor = tf.minimum(t / warmup, 1.0) * (floor + (1.0 - floor) * cosine)
    elif name == "constant":
        factor = tf.minimum(t / warmup, 1.0) if config.warmup_steps > 0 else tf.constant(1.0)
    else:
        raise UserError(
            f"config key 'lr_schedule': unknown schedule '{name}'; choose one of "
            + ", ".join(SCHEDULES)
        )
    return tf.maximum(lr * factor * scale, config.min_lr)
