"""The training graph: loss (replicated over devices and workers), learning-rate schedule,
gradient accumulation, loss scaling, clipping and Adam, and the loop state kept in the
checkpoint. The loop that runs it is zero/train.py."""

import numpy as np
import tensorflow as tf

from zero import loss_scale, parallel
from zero.decode import Translator
from zero.model import Model
from zero.schedules import learning_rate

v1 = tf.compat.v1


class TrainGraph:
    """Every tensor and op the loop runs, built in one graph."""

    def __init__(self, config, src_vocab_size, tgt_vocab_size):
        v1.set_random_seed(config.seed)
        self._inputs()
        self.model = Model(config, src_vocab_size, tgt_vocab_size, dropout_seed=self.dropout_seed)
        # One loss per device and worker (zero/parallel.py); one device and process by default.
        self.replicas = parallel.Replicas(config, self.model, self.src, self.tgt)
        self.loss, self.stats = self.replicas.loss, self.replicas.stats
        self._loop_state()
        self.lr = learning_rate(config, self.schedule_step, self.lr_scale)
        params = v1.trainable_variables()
        # float16 only: dynamic loss scaling (zero/loss_scale.py); None in other precisions.
        self.loss_scale = loss_scale.for_precision(config.precision)
        self.train_op = self._update(config, params)
        self.num_params = int(sum(np.prod(p.shape.as_list()) for p in params))
        self.translator = None

    def _inputs(self):
        self.src = v1.placeholder(tf.int32, [None, None], name="src")
        self.tgt = v1.placeholder(tf.int32, [None, None], name="tgt")
        # Dropout masks are a function of (seed, micro-batch number): a resumed run draws the
        # same masks as an uninterrupted one.
        self.dropout_seed = v1.placeholder_with_default(
            tf.constant([0, 0], tf.int64), [2], name="dropout_seed"
        )

    def _loop_state(self):
        self.global_step = v1.train.get_or_create_global_step()
        self.lr_scale = v1.get_variable(
            "lr_scale", [], initializer=tf.ones_initializer(), trainable=False
        )
        self.halve_lr = self.lr_scale.assign(self.lr_scale * 0.5)
        # Loop state (data position, best BLEU, ...) saved inside every checkpoint as JSON, so
        # a checkpoint is the whole truth about where training was. On the CPU by design: a
        # string variable has no GPU kernel, and the loop touches it only around checkpoints.
        with tf.device(self.replicas.cluster.cpu()):
            self.train_state = v1.get_variable(
                "train_state", [], tf.string, tf.constant_initializer(""), trainable=False
            )
            with tf.name_scope("train_state_feed"):
                self.train_state_in = v1.placeholder(tf.string, [])
                self.set_train_state = self.train_state.assign(self.train_state_in)
        # The step the schedule is evaluated at: the global step, or (lr_progress: time) the
        # fraction of the time budget used, scaled to max_steps, fed by the loop.
        self.schedule_step = v1.placeholder_with_default(
            tf.cast(self.global_step, tf.float32), [], name="schedule_step"
        )

    def _accumulated(self, config, params, grads):
        """With grad_accum > 1: `accumulate` adds a micro-batch's gradients to accumulators;
        returns (their mean, read after this run's addition; the accumulators to reset)."""
        if config.grad_accum <= 1:
            self.accumulate = None
            return grads, []
        accums = [
            v1.get_variable(
                p.op.name + "/accum", p.shape, initializer=tf.zeros_initializer(), trainable=False
            )
            for p in params
        ]
        adds = [a.assign_add(tf.convert_to_tensor(g)) for a, g in zip(accums, grads, strict=True)]
        self.accumulate = tf.group(*adds)
        # The update runs with the last micro-batch: it must read the accumulators after that
        # batch's gradients are added (ops of one run are otherwise unordered).
        with tf.control_dependencies([self.accumulate]):
            return [a.read_value() / float(config.grad_accum) for a in accums], accums

    def _update(self, config, params):
        """The op of one update: gradients (accumulated, summed over workers, unscaled,
        clipped), Adam, then the accumulators reset."""
        scale = None if self.loss_scale is None else self.loss_scale.scale
        grads, reset = self._accumulated(config, params, self.replicas.gradients(params, scale))
        grads = self.replicas.all_reduce(grads)  # summed over the workers
        if self.loss_scale is not None:
            grads, all_finite = self.loss_scale.unscale(grads)
        if config.clip_norm > 0:
            grads, self.grad_norm = tf.clip_by_global_norm(grads, config.clip_norm)
        else:
            self.grad_norm = tf.linalg.global_norm(grads)
        optimizer = v1.train.AdamOptimizer(
            self.lr, config.adam_beta1, config.adam_beta2, config.adam_epsilon
        )

        def apply_fn():
            pairs = zip(grads, params, strict=True)
            return optimizer.apply_gradients(pairs, global_step=self.global_step)

        if self.loss_scale is None:
            apply = apply_fn()
        else:  # skipped on non-finite gradients
            apply = self.loss_scale.apply(all_finite, apply_fn, self.global_step)
        if reset:
            with tf.control_dependencies([apply]):
                apply = tf.group(*[a.assign(tf.zeros_like(a)) for a in reset])
        return apply

    def finalize(self, config):
        """Everything built after the model: the dev loss (no dropout, no smoothing) and
        decoding for dev BLEU when there is dev data, the saver, the initializer."""
        self.eval_stats = None
        if config.dev_src and config.dev_tgt:
            _, self.eval_stats = self.model.loss(self.src, self.tgt, training=False)
        if config.dev_src and config.dev_ref:
            self.translator = Translator([self.model], config)
        self.saver = v1.train.Saver(max_to_keep=None, save_relative_paths=True)
        self.init_op = v1.global_variables_initializer()
        self.replicas.build_sync()
