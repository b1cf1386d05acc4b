"""The training loop: batches in, updates, progress lines and summaries, validation,
checkpoints, early stopping and time budgets, resumed exactly after any interruption.

The state that must survive a restart is one object, `TrainState` (data position, best dev
BLEU, validations without improvement, training time so far), saved inside every checkpoint.
The graph it runs is zero/train_graph.py; validation is zero/validation.py.
"""

import dataclasses
import json
import math
import os
import time

import numpy as np
import tensorflow as tf

from zero import config as config_lib
from zero import log as logging
from zero import parallel
from zero.checkpoints import CheckpointManager, listed_checkpoints
from zero.data import TrainStream
from zero.errors import UserError
from zero.faults import pause
from zero.modeldir import VALIDATION_LOG
from zero.summaries import SummaryWriter
from zero.textio import append_jsonl, atomic_write_text, check_parallel
from zero.train_graph import TrainGraph
from zero.validation import validate
from zero.vocab import load_vocabs


@dataclasses.dataclass
class TrainState:
    """What a checkpoint holds about the loop (besides the step and the weights)."""

    data: dict | None = None  # the batch stream's position
    best_bleu: float = -1.0
    bad_evals: int = 0  # validations since dev BLEU last improved
    elapsed: float = 0.0  # training time so far on the configured clock, all runs together

    @classmethod
    def from_json(cls, raw):
        values = json.loads(raw) if raw else {}
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})


class _Window:
    """Progress between two progress lines: tokens, losses, steps, wall time."""

    def __init__(self):
        self.tokens, self.loss, self.steps, self.start = 0, 0.0, 0, time.time()

    def rate(self):
        return self.tokens / max(time.time() - self.start, 1e-9)


def _hms(seconds):
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Trainer:
    def __init__(self, config, log=logging.info):
        self.config = config
        self.log = log
        self.dir = config.output_dir
        self.chief = parallel.Cluster.from_config(config).is_chief  # only the chief writes
        self._check(config)
        self.src_vocab, self.tgt_vocab, src_size, tgt_size = load_vocabs(config)
        if self.chief:
            os.makedirs(self.dir, exist_ok=True)
            config.save(config_lib.saved_path(self.dir))
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
        clock = time.process_time if config.time_clock == "cpu" else time.time
        self._clock = clock
        self._epochs_logged = set()

    def _check(self, config):
        saved = config_lib.saved_path(self.dir)
        if os.path.exists(saved):
            config_lib.check_same_architecture(config, config_lib.read_yaml(saved), self.dir)
        for key in ("train_src", "train_tgt"):
            if not config.get(key):
                raise UserError(f"config key '{key}' is required for training")
        check_parallel(config.train_src, config.train_tgt)

    # -- state kept in the checkpoint ------------------------------------------------------

    def _restore(self):
        """Initialise, restore the newest checkpoint (the chief; the others get its values)
        and return the loop state it holds."""
        self.sess.run(self.g.init_op)
        path = self.manager.restore(self.sess) if self.chief else None
        raw = self.sess.run(self.g.train_state)
        state = json.loads(raw.decode()) if raw else {}
        state = self.g.replicas.start(self.sess, state)  # every worker as the chief
        step = int(self.sess.run(self.g.global_step))
        if not self.chief:
            self.log(f"worker started at step {step}")
        elif path:
            self.log(f"resumed from {path} at step {step}")
        else:
            self.log(f"starting a new model in {self.dir} ({self.g.num_params:,} parameters)")
        if self.chief:
            self._trim_validation_log(step)
        return TrainState.from_json(json.dumps(state))

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

    def _save(self, best=False):
        """A checkpoint of the weights and the loop state (the stream's position now)."""
        if not self.chief:
            return "by the chief"
        self.state.data = self.stream.position()
        state = json.dumps(dataclasses.asdict(self.state))
        self.sess.run(self.g.set_train_state, {self.g.train_state_in: state})
        return self.manager.save(self.sess, self.step, best=best)

    # -- the loop --------------------------------------------------------------------------

    def _start(self):
        """Restore, open the batch stream at the saved position and start the clock."""
        c, g = self.config, self.g
        self.state = self._restore()
        stream = TrainStream(
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
        self.stream = g.replicas.group(stream)  # one batch per device
        if self.state.data:
            self.stream.restore(self.state.data)
        self.step = self._start_step = int(self.sess.run(g.global_step))
        self._elapsed_before = self.state.elapsed
        start = self._clock()
        # Training time on the configured clock, including earlier runs of this model.
        self.elapsed = g.replicas.chief_clock(
            self.sess, lambda: self._elapsed_before + self._clock() - start
        )

    def train(self):
        """Train until max_steps, the time budget or early stopping; returns the final step
        and the best dev BLEU."""
        c = self.config
        self._start()
        step_limit = math.inf if c.lr_progress == "time" else c.max_steps
        if self.step >= step_limit or (c.max_time > 0 and self._elapsed_before >= c.max_time):
            self.stream.close()
            self.log(
                f"nothing to do: step {self.step}, {self._elapsed_before:.0f}s of training "
                f"already done (max_steps {c.max_steps}, max_time {c.max_time:.0f}s)"
            )
            return {"step": self.step, "best_bleu": self.state.best_bleu}
        last_saved, stop_reason, window = self.step, None, _Window()
        try:
            while self.step < step_limit:
                self._update(window)
                elapsed = self.elapsed()
                if self.step % c.log_every == 0:
                    self._progress(window, elapsed)
                    window = _Window()
                out_of_time = c.max_time > 0 and elapsed >= c.max_time
                if self.step % c.eval_every == 0 or out_of_time or self.step >= step_limit:
                    stop_reason = self._evaluate_and_save(elapsed)
                    last_saved = self.step
                    if stop_reason:
                        break
                elif c.save_every and self.step % c.save_every == 0:
                    self.state.elapsed = elapsed
                    self._save()
                    last_saved = self.step
        finally:
            self.stream.close()
        if last_saved != self.step:
            self.state.elapsed = self.elapsed()
            self._save()
        self.log(f"training stopped at step {self.step}: {stop_reason or 'max_steps reached'}")
        self.summaries.close()
        return {"step": self.step, "best_bleu": self.state.best_bleu}

    def _update(self, window):
        """One update: grad_accum micro-batches, the last one with the optimizer step."""
        g, accum = self.g, self.config.grad_accum
        for micro in range(accum - 1):
            batch = next(self.stream)
            self._run(g.accumulate, batch, micro)
            window.tokens += int(batch["num_tgt_tokens"])
        batch = next(self.stream)
        # The last micro-batch: train_op accumulates it first.
        micro = accum - 1 if g.accumulate is not None else 0
        _, loss, lr, gnorm = self._run([g.train_op, g.loss, g.lr, g.grad_norm], batch, micro)
        self._check_finite(loss, gnorm)
        self.step += 1
        window.tokens += int(batch["num_tgt_tokens"])
        window.loss += float(loss)
        window.steps += 1
        window.lr, window.grad_norm = lr, gnorm
        self._log_epoch_stats()

    def _check_finite(self, loss, gnorm):
        # With loss scaling a non-finite gradient only skips that update.
        if np.isfinite(loss) and (np.isfinite(gnorm) or self.g.loss_scale is not None):
            return
        listed = listed_checkpoints(self.dir)
        kept = (
            f"the last good checkpoint {listed[-1]} is kept"
            if listed
            else f"no checkpoint was written in {self.dir}"
        )
        raise UserError(
            f"the training loss became {loss} at step {self.step + 1} (gradient norm {gnorm}); "
            f"stopped without saving, {kept}. Lower the learning rate (lr={self.config.lr}), "
            "or clip_norm, and rerun."
        )

    def _progress(self, window, elapsed):
        """The progress line and the training summaries of the last window of steps."""
        c, rate = self.config, window.rate()
        mean_loss = window.loss / window.steps
        if c.lr_progress == "time":
            total = f" ({elapsed / c.max_time:.0%} of max_time)"
        else:
            total = f"/{c.max_steps}"
        self.log(
            f"step {self.step}{total}  loss {mean_loss:.4f}  lr {window.lr:.3g}  "
            f"{rate:,.0f} tok/s  elapsed {_hms(elapsed)}  eta {_hms(self._eta(elapsed))}"
        )
        self.summaries.scalars(
            self.step,
            {
                "train/loss": mean_loss,
                "train/lr": window.lr,
                "train/grad_norm": window.grad_norm,
                "train/tokens_per_second": rate,
            },
        )

    def _log_epoch_stats(self):
        """Say, once per finished epoch, how many pairs were trained on and how many skipped."""
        stream = self.stream
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

    def _run(self, fetches, batch, micro):
        try:
            return self.sess.run(fetches, self._feed(batch, micro))
        except tf.errors.ResourceExhaustedError:
            raise UserError(
                f"out of memory at step {self.step + 1} on a batch of {batch['src'].shape[0]} "
                f"sentences: lower batch_tokens (now {self.config.batch_tokens}) or max_len "
                f"(now {self.config.max_len}) and rerun to resume from the last checkpoint"
            ) from None

    def _feed(self, batch, micro):
        c = self.config
        seed = (self.step * max(c.grad_accum, 1) + micro) & 0x7FFFFFFF
        feed = {
            **self.g.replicas.feed(batch),
            self.g.dropout_seed: np.array([c.seed, seed], np.int64),
        }
        if c.lr_progress == "time":
            feed[self.g.schedule_step] = c.max_steps * min(self.elapsed() / c.max_time, 1.0)
        return feed

    def _eta(self, elapsed):
        c = self.config
        if c.lr_progress == "time":
            return c.max_time - elapsed
        # Time since this process started over the steps it ran: a resumed run must not
        # divide by the steps of earlier runs.
        per_step = (elapsed - self._elapsed_before) / max(self.step - self._start_step, 1)
        eta = (c.max_steps - self.step) * per_step
        if c.max_time > 0:
            eta = min(eta, c.max_time - elapsed)
        return eta

    # -- validation ------------------------------------------------------------------------

    def validate(self):
        """Dev loss and BLEU of the current weights (zero/validation.py)."""
        return validate(self.sess, self.g, self.config, self.src_vocab, self.tgt_vocab)

    def _evaluate_and_save(self, elapsed):
        """Validate, record, checkpoint (best/ when dev BLEU improved). Returns why training
        should stop now, or None."""
        c, t = self.config, time.time()
        metrics = self.g.replicas.chief_value(self.sess, self.validate)
        improved, stop = self._judge(metrics.get("dev_bleu"))
        # The record goes first: a run killed before the checkpoint is listed redoes this
        # validation, and the resumed run drops the record again (_trim_validation_log).
        if self.chief:
            record = {"step": self.step, "elapsed": round(elapsed, 1), **metrics}
            append_jsonl(os.path.join(self.dir, VALIDATION_LOG), record)
        pause("sleep_in_validate", f"step {self.step}")
        # Validation takes time too: the budget counts it, and the checkpoint records it (a
        # run stopped by the budget here has nothing left to do when restarted).
        self.state.elapsed = self.elapsed()
        if not stop and c.max_time > 0 and self.state.elapsed >= c.max_time:
            stop = f"time budget of {c.max_time:.0f}s reached"
        path = self._save(best=improved)
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        self.log(
            f"validation at step {self.step}: {shown}  best BLEU {self.state.best_bleu:.2f}  "
            f"({time.time() - t:.1f}s)  saved {path}"
        )
        self.summaries.scalars(self.step, {f"dev/{k}": v for k, v in metrics.items()})
        return stop

    def _judge(self, bleu):
        """Update best BLEU and the count of validations without gain; halve the learning
        rate on a plateau (constant schedule). Returns (improved, early-stopping reason)."""
        c, state = self.config, self.state
        if bleu is None:
            return False, None
        if bleu > state.best_bleu:
            state.best_bleu, state.bad_evals = bleu, 0
            return True, None
        state.bad_evals += 1
        if c.lr_schedule == "constant" and state.bad_evals % max(c.plateau_patience, 1) == 0:
            self.sess.run(self.g.halve_lr)
            self.log("dev BLEU did not improve: learning rate halved")
        if c.patience and state.bad_evals >= c.patience:
            return False, f"early stopping after {state.bad_evals} validations without improvement"
        return False, None


def train(config, log=logging.info):
    return Trainer(config, log).train()
