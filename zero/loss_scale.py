"""Dynamic loss scaling for float16 training (precision: float16).

float16 keeps 5 exponent bits: gradients below about 6e-8 underflow to zero. The loss is
multiplied by a large scale before the backward pass and the gradients divided by it after.
When a scaled gradient overflows (inf or NaN anywhere), the update is skipped and the scale
halved (not below 1); after `growth_interval` finite steps in a row it doubles again.
bfloat16 has float32's exponent range and needs none of this.

The scale and the count of finite steps are variables, saved in checkpoints with the model, so
a resumed run scales exactly as an uninterrupted one.
"""

import tensorflow as tf

v1 = tf.compat.v1

INITIAL_SCALE = 2.0**15
GROWTH_INTERVAL = 2000


class DynamicLossScale:
    def __init__(self, initial=INITIAL_SCALE, growth_interval=GROWTH_INTERVAL):
        self.growth_interval = int(growth_interval)
        self.scale = v1.get_variable(
            "loss_scale", [], initializer=tf.constant_initializer(initial), trainable=False
        )
        self.good_steps = v1.get_variable(
            "loss_scale_good_steps",
            [],
            tf.int64,
            initializer=tf.zeros_initializer(),
            trainable=False,
        )

    def unscale(self, grads):
        """grads of the scaled loss -> (grads of the loss, whether all of them are finite)."""
        inverse = 1.0 / self.scale
        out, finite = [], []
        for g in grads:
            if g is None:
                out.append(None)
                continue
            if isinstance(g, tf.IndexedSlices):  # embedding rows: only the touched ones
                values = g.values * inverse
                out.append(tf.IndexedSlices(values, g.indices, g.dense_shape))
            else:
                values = g * inverse
                out.append(values)
            finite.append(tf.reduce_all(tf.math.is_finite(values)))
        return out, tf.reduce_all(tf.stack(finite))

    def apply(self, all_finite, apply_fn, global_step):
        """apply_fn() (the optimizer update) if all_finite, else only count the step; then
        adjust the scale. Returns the op doing both."""

        def skip():
            # The step still counts: the loop, the schedule and the data position move on.
            return global_step.assign_add(1).op

        def update():
            with tf.control_dependencies([apply_fn()]):
                return tf.no_op()

        applied = tf.cond(all_finite, update, skip)
        with tf.control_dependencies([applied]):
            good = tf.where(all_finite, self.good_steps + 1, tf.zeros_like(self.good_steps))
            grow = good >= self.growth_interval
            factor = tf.where(all_finite, tf.where(grow, 2.0, 1.0), 0.5)
            return tf.group(
                # Never below 1: a scale that small means the gradients overflow unscaled.
                self.scale.assign(tf.maximum(self.scale * factor, 1.0)),
                self.good_steps.assign(tf.where(grow, tf.zeros_like(good), good)),
            )


def for_precision(precision):
    """A DynamicLossScale for float16 (built in the current graph), None otherwise."""
    return DynamicLossScale() if precision == "float16" else None
