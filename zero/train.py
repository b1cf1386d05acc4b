"""Training: the graph (loss, Adam, schedule, clipping, accumulation) and the loop around it
(progress, validation, checkpoints, early stopping, exact resume)."""

import json
import math
import os
import time

import numpy as np
import tensorflow as tf

from zero import config as config_lib
from zero import data, evaluate, loss_scale, parallel
from zero.checkpoints import CheckpointManager, listed_checkpoints
from zero.decode import Translator, translate_batches
from zero.errors import UserError
from zero.faults import pause
from zero.fileio import atomic_write_text
from zero.model import Model
from zero.schedules import learning_rate
from zero.session import load_vocabs
from zero.summaries import SummaryWriter

v1 = tf.compat.v1
VALIDATION_LOG = "validation.jsonl"


class TrainGraph:
    """Every tensor and op the loop runs, built in one graph."""

    def __init__(self, config, src_vocab_size, tgt_vocab_size):
        v1.set_random_seed(config.seed)
        self.src = v1.placeholder(tf.int32, [None, None], name="src")
        self.tgt = v1.placeholder(tf.int32, [None, None], name="tgt")
        # Dropout masks are a function of (seed, micro-batch number): a resumed run draws the
        # same masks as an uninterrupted one.
        self.dropout_seed = v1.placeholder_with_default(
            tf.constant([0, 0], tf.int64), [2], name="dropout_seed"
        )
        self.model = Model(config, src_vocab_size, tgt_vocab_size, dropout_seed=self.dropout_seed)
        # One loss per device and worker (zero/parallel.py); one device and process by default.
        self.replicas = parallel.Replicas(config, self.model, self.src, self.tgt)
        self.loss, stats = self.replicas.loss, self.replicas.stats
        self.eval_loss, self.eval_stats = self.model.loss(self.src, self.tgt, training=False)
        self.stats = stats

        self.global_step = v1.train.get_or_create_global_step()
        self.lr_scale = v1.get_variable(
            "lr_scale", [], initializer=tf.ones_initializer(), trainable=False
        )
        # Loop state (data position, best BLEU, ...) saved inside every checkpoint as JSON, so a
        # checkpoint is the whole truth about where training was.
        self.train_state = v1.get_variable(
            "train_state",
            [],
            dtype=tf.string,
            initializer=tf.constant_initializer(""),
            trainable=False,
        )
        self.train_state_in = v1.placeholder(tf.string, [])
        self.set_train_state = self.train_state.assign(self.train_state_in)
        self.halve_lr = self.lr_scale.assign(self.lr_scale * 0.5)

        # The step the schedule is evaluated at: the global step, or (lr_progress: time) the
        # fraction of the time budget used, scaled to max_steps, fed by the loop.
        self.schedule_step = v1.placeholder_with_default(
            tf.cast(self.global_step, tf.float32), [], name="schedule_step"
        )
        self.lr = learning_rate(config, self.schedule_step, self.lr_scale)
        optimizer = v1.train.AdamOptimizer(
            self.lr, config.adam_beta1, config.adam_beta2, config.adam_epsilon
        )
        params = v1.trainable_variables()
        # float16 only: dynamic loss scaling (zero/loss_scale.py); None in other precisions.
        self.loss_scale = loss_scale.for_precision(config.precision)
        scale = None if self.loss_scale is None else self.loss_scale.scale
        grads = self.replicas.gradients(params, scale)
        self.accumulate = None
        if config.grad_accum > 1:
            accums = [
                v1.get_variable(
                    p.op.name + "/accum",
                    p.shape,
                    initializer=tf.zeros_initializer(),
                    trainable=False,
                )
                for p in params
            ]
            self.accumulate = tf.group(
                *[a.assign_add(tf.convert_to_tensor(g)) for a, g in zip(accums, grads, strict=True)]
            )
            # The update runs with the last micro-batch: it must read the accumulators after
            # that batch's gradients are added (ops of one run are otherwise unordered).
            with tf.control_dependencies([self.accumulate]):
                grads = [a.read_value() / float(config.grad_accum) for a in accums]
            reset = accums
        else:
            reset = []
        grads = self.replicas.all_reduce(grads)  # summed over the workers
        if self.loss_scale is not None:
            grads, all_finite = self.loss_scale.unscale(grads)
        if config.clip_norm > 0:
            grads, self.grad_norm = tf.clip_by_global_norm(grads, config.clip_norm)
        else:
            self.grad_norm = tf.linalg.global_norm(grads)

        def apply_fn():
            return optimizer.apply_gradients(
                zip(grads, params, strict=True), global_step=self.global_step
            )

        if self.loss_scale is None:
            apply = apply_fn()
        else:  # skipped on non-finite gradients
            apply = self.loss_scale.apply(all_finite, apply_fn, self.global_step)
        if reset:
            with tf.control_dependencies([apply]):
                apply = tf.group(*[a.assign(tf.zeros_like(a)) for a in reset])
        self.train_op = apply
        self.num_params = int(sum(np.prod(p.shape.as_list()) for p in params))
        self.translator = None

    def finalize(self, config):
        """Everything built after the model: decoding for dev BLEU, the saver, the initializer."""
        if config.dev_src and config.dev_ref:
            self.translator = Translator([self.model], config)
        self.saver = v1.train.Saver(max_to_keep=None, save_relative_paths=True)
        self.init_op = v1.global_variables_initializer()
        self.replicas.build_sync()


def _progress_line(step, total, loss, lr, tokens_per_s, elapsed, eta):
    return (
        f"step {step}{total}  loss {loss:.4f}  lr {lr:.3g}  {tokens_per_s:,.0f} tok/s  "
        f"elapsed {_hms(elapsed)}  eta {_hms(eta)}"
    )


def _hms(seconds):
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _print(message):
    print(message, flush=True)  # a killed run must not lose the lines it already logged


class Trainer:
    def __init__(self, config, log=_print):
        self.config = config
        self.log = log
        self.dir = config.output_dir
        self.chief = parallel.Cluster.from_config(config).is_chief  # only the chief writes
        if self.chief:
            os.makedirs(self.dir, exist_ok=True)
        saved = config_lib.saved_path(self.dir)
        if os.path.exists(saved):
            config_lib.check_same_architecture(config, config_lib.read_yaml(saved), self.dir)
        for key in ("train_src", "train_tgt"):
            if not config.get(key):
                raise UserError(f"config key '{key}' is required for training")
        data.check_parallel(config.train_src, config.train_tgt)
        self.src_vocab, self.tgt_vocab, src_size, tgt_size = load_vocabs(config)
        if self.chief:
            config.save(saved)

        self.graph = tf.Graph()
        with self.graph.as_default():
            self.g = TrainGraph(config, src_size, tgt_size)
            self.g.finalize(config)
            self.manager = CheckpointManager(self.dir, self.g.saver, config.keep_checkpoints, log)
            self.sess = self.g.replicas.session(config, self.graph)
        removed = self.manager.recover() if self.chief else []
        if removed:
            log(f"removed leftovers of an interrupted run: {', '.join(sorted(removed))}")
        self.summaries = (
            SummaryWriter(os.path.join(self.dir, "summaries"))
            if self.chief
            else parallel.SilentSummaries()
        )

    # -- state kept in the checkpoint ------------------------------------------------------

    def _restore(self):
        self.sess.run(self.g.init_op)
        path = self.manager.restore(self.sess) if self.chief else None
        raw = self.sess.run(self.g.train_state)
        state = json.loads(raw.decode()) if raw else {}
        state = self.g.replicas.start(self.sess, state)  # every worker as the chief
        if not self.chief:
            self.log(f"worker started at step {self.sess.run(self.g.global_step)}")
        elif path:
            step = self.sess.run(self.g.global_step)
            self.log(f"resumed from {path} at step {step}")
        else:
            self.log(f"starting a new model in {self.dir} ({self.g.num_params:,} parameters)")
        if self.chief:
            self._trim_validation_log(int(self.sess.run(self.g.global_step)))
        return state

    def _trim_validation_log(self, step):
        """Drop validation records after the restored step (written by a run that was killed
        before its checkpoint was listed) and a half-written last line."""
        path = os.path.join(self.dir, VALIDATION_LOG)
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        keep = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step and line.endswith("\n"):
                keep.append(line)
        if keep != lines:
            atomic_write_text(path, "".join(keep))

    def _save(self, state, best=False):
        if not self.chief:
            return "by the chief"
        self.sess.run(self.g.set_train_state, {self.g.train_state_in: json.dumps(state)})
        step = int(self.sess.run(self.g.global_step))
        return self.manager.save(self.sess, step, best=best)

    # -- validation ------------------------------------------------------------------------

    def validate(self):
        """Dev loss (no dropout, no smoothing) and dev BLEU by beam search."""
        c, out = self.config, {}
        if c.dev_src and c.dev_tgt:
            nll = tokens = 0.0
            for batch in data.EvalBatches(
                c.dev_src,
                self.src_vocab,
                batch_tokens=c.decode_batch_tokens,
                tgt_path=c.dev_tgt,
                tgt_vocab=self.tgt_vocab,
            ):
                n, t = self.sess.run(
                    [self.g.eval_stats["nll"], self.g.eval_stats["tokens"]],
                    {self.g.src: batch["src"], self.g.tgt: batch["tgt"]},
                )
                nll, tokens = nll + float(n), tokens + float(t)
            out["dev_loss"] = nll / max(tokens, 1.0)
            out["dev_ppl"] = math.exp(min(out["dev_loss"], 50))
        if self.g.translator is not None:
            batches = data.EvalBatches(
                c.dev_src,
                self.src_vocab,
                batch_tokens=c.decode_batch_tokens,
                limit=c.eval_sentences or None,
            )
            hyps = translate_batches(self.sess, self.g.translator, batches, self.tgt_vocab)
            hyps = [h[0][0] if h else "" for h in hyps]
            refs = [line for _, line in data.read_lines(c.dev_ref)][: len(hyps)]
            detok = evaluate.postprocess(hyps, c.tgt_lang)
            out["dev_bleu"] = float(evaluate.sacrebleu_score(detok, refs)[0])
        return out

    # -- the loop --------------------------------------------------------------------------

    def train(self):
        c, g = self.config, self.g
        state = self._restore()
        stream = data.TrainStream(
            c.train_src,
            c.train_tgt,
            self.src_vocab,
            self.tgt_vocab,
            c.batch_tokens,
            c.max_len,
            c.seed,
            buffer_size=c.shuffle_buffer,
            shard=g.replicas.cluster.index,
            num_shards=g.replicas.cluster.size,
        )
        stream = g.replicas.group(stream)  # one batch per device
        if state.get("data"):
            stream.restore(state["data"])
        self._epochs_logged = set()
        best = state.get("best_bleu", -1.0)
        bad_evals = state.get("bad_evals", 0)
        step = int(self.sess.run(g.global_step))
        self._start_step = step
        elapsed_before = state.get("elapsed", 0.0)
        # Elapsed training time on the configured clock, including earlier runs of this model.
        clock = time.process_time if c.time_clock == "cpu" else time.time
        start = clock()
        self._elapsed = g.replicas.chief_clock(self.sess, lambda: elapsed_before + clock() - start)
        self._elapsed_before = elapsed_before
        by_time = c.lr_progress == "time"
        step_limit = math.inf if by_time else c.max_steps
        window_tokens, window_start, window_loss, window_steps = 0, time.time(), 0.0, 0
        last_saved, stop_reason = step, None
        if step >= step_limit or (c.max_time > 0 and elapsed_before >= c.max_time):
            stream.close()
            self.log(
                f"nothing to do: step {step}, {elapsed_before:.0f}s of training already done "
                f"(max_steps {c.max_steps}, max_time {c.max_time:.0f}s)"
            )
            return {"step": step, "best_bleu": best}
        try:
            while step < step_limit:
                micro = 0
                for micro in range(c.grad_accum - 1):
                    batch = next(stream)
                    self._run_step(g.accumulate, batch, step, micro)
                    window_tokens += int(batch["num_tgt_tokens"])
                batch = next(stream)
                if g.accumulate is not None:
                    micro += 1  # the last micro-batch: train_op accumulates it first
                fetches = [g.train_op, g.loss, g.lr, g.grad_norm]
                _, loss, lr, gnorm = self._run_step(fetches, batch, step, micro)
                # With loss scaling a non-finite gradient only skips that update.
                if not np.isfinite(loss) or (not np.isfinite(gnorm) and g.loss_scale is None):
                    listed = listed_checkpoints(self.dir)
                    kept = (
                        f"the last good checkpoint {listed[-1]} is kept"
                        if listed
                        else f"no checkpoint was written in {self.dir}"
                    )
                    raise UserError(
                        f"the training loss became {loss} at step {step + 1} (gradient norm "
                        f"{gnorm}); stopped without saving, {kept}. Lower the learning rate "
                        f"(lr={c.lr}), or clip_norm, and rerun."
                    )
                step += 1
                window_tokens += int(batch["num_tgt_tokens"])
                window_loss += float(loss)
                window_steps += 1
                self._log_epoch_stats(stream)
                elapsed = self._elapsed()
                if step % c.log_every == 0:
                    rate = window_tokens / max(time.time() - window_start, 1e-9)
                    eta = self._eta(step, elapsed)
                    mean_loss = window_loss / window_steps
                    total = (
                        f" ({elapsed / c.max_time:.0%} of max_time)"
                        if by_time
                        else (f"/{c.max_steps}")
                    )
                    self.log(_progress_line(step, total, mean_loss, lr, rate, elapsed, eta))
                    self.summaries.scalars(
                        step,
                        {
                            "train/loss": mean_loss,
                            "train/lr": lr,
                            "train/grad_norm": gnorm,
                            "train/tokens_per_second": rate,
                        },
                    )
                    window_tokens, window_start, window_loss, window_steps = 0, time.time(), 0, 0
                out_of_time = c.max_time > 0 and elapsed >= c.max_time
                if step % c.eval_every == 0 or out_of_time or step >= step_limit:
                    best, bad_evals, stop_reason = self._evaluate_and_save(
                        step, stream, best, bad_evals, elapsed
                    )
                    last_saved = step
                    # Validation takes time too: never start another step past the budget.
                    elapsed = self._elapsed()
                    out_of_time = c.max_time > 0 and elapsed >= c.max_time
                    if out_of_time:
                        stop_reason = stop_reason or f"time budget of {c.max_time:.0f}s reached"
                    if stop_reason:
                        break
                elif c.save_every and step % c.save_every == 0:
                    self._save(self._state(stream, best, bad_evals, elapsed))
                    last_saved = step
        finally:
            stream.close()
        if last_saved != step:
            self._save(self._state(stream, best, bad_evals, self._elapsed()))
        self.log(f"training stopped at step {step}: {stop_reason or 'max_steps reached'}")
        self.summaries.close()
        return {"step": step, "best_bleu": best}

    def _log_epoch_stats(self, stream):
        """Say, once per finished epoch, how many pairs were trained on and how many skipped."""
        for epoch in sorted(stream.epoch_stats):
            if epoch < stream.epoch and epoch not in self._epochs_logged:
                self._epochs_logged.add(epoch)
                s = stream.epoch_stats[epoch]
                self.log(
                    f"data epoch {epoch} done: {s['pairs']} pairs in {s['batches']} batches; "
                    f"skipped {s['skipped_too_long']} pairs longer than "
                    f"max_len={self.config.max_len} tokens and {s['skipped_empty']} "
                    "with an empty side"
                )

    def _run_step(self, fetches, batch, step, micro):
        try:
            return self.sess.run(fetches, self._feed(batch, step, micro))
        except tf.errors.ResourceExhaustedError:
            raise UserError(
                f"out of memory at step {step + 1} on a batch of {batch['src'].shape[0]} "
                f"sentences: lower batch_tokens (now {self.config.batch_tokens}) or max_len "
                f"(now {self.config.max_len}) and rerun to resume from the last checkpoint"
            ) from None

    def _feed(self, batch, step, micro):
        c = self.config
        seed = (step * max(c.grad_accum, 1) + micro) & 0x7FFFFFFF
        feed = {
            **self.g.replicas.feed(batch),
            self.g.dropout_seed: np.array([c.seed, seed], np.int64),
        }
        if c.lr_progress == "time":
            feed[self.g.schedule_step] = c.max_steps * min(self._elapsed() / c.max_time, 1.0)
        return feed

    def _eta(self, step, elapsed):
        c = self.config
        if c.lr_progress == "time":
            return c.max_time - elapsed
        # Time since this process started over the steps it ran: a resumed run must not
        # divide by the steps of earlier runs.
        per_step = (elapsed - self._elapsed_before) / max(step - self._start_step, 1)
        eta = (c.max_steps - step) * per_step
        if c.max_time > 0:
            eta = min(eta, c.max_time - elapsed)
        return eta

    def _state(self, stream, best, bad_evals, elapsed):
        return {
            "data": stream.position(),
            "best_bleu": best,
            "bad_evals": bad_evals,
            "elapsed": elapsed,
        }

    def _evaluate_and_save(self, step, stream, best, bad_evals, elapsed):
        c = self.config
        t = time.time()
        metrics = self.g.replicas.chief_value(self.sess, self.validate)
        stop = None
        bleu = metrics.get("dev_bleu")
        improved = bleu is not None and bleu > best
        if bleu is not None:
            if improved:
                best, bad_evals = bleu, 0
            else:
                bad_evals += 1
                if c.lr_schedule == "constant" and bad_evals % max(c.plateau_patience, 1) == 0:
                    self.sess.run(self.g.halve_lr)
                    self.log("dev BLEU did not improve: learning rate halved")
                if c.patience and bad_evals >= c.patience:
                    stop = f"early stopping after {bad_evals} validations without improvement"
        # The record goes first: a run killed before the checkpoint is listed redoes this
        # validation, and the resumed run drops the record again (_trim_validation_log).
        if self.chief:
            _append_jsonl(
                os.path.join(self.dir, VALIDATION_LOG),
                {"step": step, "elapsed": round(elapsed, 1), **metrics},
            )
        pause("sleep_in_validate", f"step {step}")
        path = self._save(self._state(stream, best, bad_evals, elapsed), best=improved)
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        self.log(
            f"validation at step {step}: {shown}  best BLEU {best:.2f}  "
            f"({time.time() - t:.1f}s)  saved {path}"
        )
        self.summaries.scalars(step, {f"dev/{k}": v for k, v in metrics.items()})
        return best, bad_evals, stop


def _append_jsonl(path, record):
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def train(config, log=_print):
    return Trainer(config, log).train()
