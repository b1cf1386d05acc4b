"""Data parallelism through TensorFlow's own runtime, in graph mode.

Several devices in one process (config `devices`): in-graph replication. The model's loss is
built once per device under `tf.device`, on variables shared through the model's variable
scope; the variables themselves live on the first device, where the towers' gradients are
summed. Each device takes its own batch of `batch_tokens` from the stream.

Several processes or machines (config `workers`, or the TF_CONFIG environment variable):
between-graph replication with collective all-reduce. Every worker runs a gRPC server
(`tf.compat.v1.train.Server`), builds the same graph on its own task, holds a full copy of the
variables and reads its own shard of the batch stream; after each (accumulated) gradient
computation one `CollectiveReduceV2` sums the gradients over the workers, so every worker
applies the same update and the copies stay identical. Worker 0, the chief, restores and
writes checkpoints, summaries and validation records; at start it broadcasts every variable
and its loop state to the others (no shared file system is needed), during training its
validation metrics and its clock (time budgets, lr_progress: time), so that every decision of
the loop is the same on every worker. The collectives run on each worker's CPU (a gRPC ring):
between machines the network, not the copy from the GPU, is the bottleneck. A worker that
stops makes the others stop with an error (lost connection, or no answer for TIMEOUT).

Why not parameter servers with SyncReplicasOptimizer: it averages the first N gradients that
reach the accumulators for a step, not one per worker (a fast worker's second gradient can
take a slow worker's place, whose gradient is then dropped as stale), so neither the batch of
an update nor the data position of a worker is determined; exact resume is lost. It also needs
parameter-server tasks that send the whole model to every worker each step, and a
MonitoredTrainingSession with its queue-runner hooks instead of this project's session and
checkpoint manager. Collective all-reduce is what TensorFlow's multi-worker strategy uses
underneath; in graph mode the ops run in a plain Session on the worker's server.

Loss normalisation: the loss is a mean over sentences (of per-sentence token means), so the
per-device losses are combined with weights n_d / N (n_d sentences on device d, N on all
devices of all workers). The update is then exactly the one of a single device given the
concatenated batch. Gradient accumulation (grad_accum) keeps its meaning: the mean of the
accumulated updates, each over the batches of all devices and workers.
"""

import json
import os

import numpy as np
import tensorflow as tf

from zero.config import LOCAL_KEYS
from zero.errors import UserError
from zero.session import session_config

v1 = tf.compat.v1

JOB = "worker"
_GROUP = 1  # collective group of the workers' CPUs (every collective here runs on the CPU)
_VARIABLE_OPS = {"VarHandleOp", "VariableV2", "Variable"}
_CHUNK = 1024  # bytes per message of JSON between the workers
# Seconds a worker waits for the others in a training step or a validation before it gives
# up (a worker has died); at start it waits for all of them however long it takes.
TIMEOUT = float(os.environ.get("ZERO_WORKER_TIMEOUT", 1800))
_SERVERS = {}  # (workers, index) -> the process's server: a port can be bound only once


# ---------------------------------------------------------------------------------------------
# The cluster


class Cluster:
    """The training processes: `workers` (host:port each) and this process's `index`."""

    def __init__(self, workers=(), index=0):
        self.workers = list(workers)
        self.index = int(index)

    @classmethod
    def from_config(cls, config):
        """From the config keys workers / worker_index, else from TF_CONFIG, else one process."""
        if config.workers:
            where = "config key 'workers'"
            workers, index = [str(w) for w in config.workers], config.worker_index
        elif os.environ.get("TF_CONFIG"):
            where = "TF_CONFIG"
            workers, index = _read_tf_config(os.environ["TF_CONFIG"])
        else:
            return cls()
        for w in workers:
            host, _, port = w.rpartition(":")
            if not host or not port.isdigit():
                raise UserError(f"{where}: '{w}' is not host:port")
        if len(set(workers)) != len(workers):
            raise UserError(f"{where}: a worker address appears twice: {workers}")
        if not 0 <= index < len(workers):
            raise UserError(
                f"config key 'worker_index': {index} is not a position in the {len(workers)} "
                f"workers {workers}"
            )
        return cls(workers, index)

    @property
    def distributed(self):
        return len(self.workers) > 1

    @property
    def size(self):
        return max(len(self.workers), 1)

    @property
    def is_chief(self):
        return self.index == 0

    @property
    def task(self):
        return f"/job:{JOB}/replica:0/task:{self.index}"

    def cpu(self):
        return f"{self.task}/device:CPU:0" if self.distributed else "/device:CPU:0"

    def session(self, config, graph, num_cpus=1):
        """A Session on this worker's server (started on first use), or a local one."""
        proto = session_config(config)
        if num_cpus > 1:
            proto.device_count["CPU"] = num_cpus
        if not self.distributed:
            return v1.Session(graph=graph, config=proto)
        # The group leader resolves the collective groups; the device filter keeps each
        # session to its own task (the workers exchange data through collectives only).
        proto.experimental.collective_group_leader = f"/job:{JOB}/replica:0/task:0"
        proto.device_filters.append(f"/job:{JOB}/task:{self.index}")
        key = (tuple(self.workers), self.index)
        if key not in _SERVERS:
            spec = tf.train.ClusterSpec({JOB: self.workers})
            try:
                _SERVERS[key] = v1.train.Server(
                    spec, job_name=JOB, task_index=self.index, config=proto, start=True
                )
            except (tf.errors.UnknownError, tf.errors.InvalidArgumentError) as e:
                raise UserError(
                    f"cannot start the server of worker {self.index} at "
                    f"{self.workers[self.index]}: {e.message.splitlines()[0]}"
                ) from None
        sess = _WorkerSession(_SERVERS[key].target, graph=graph, config=proto)
        sess.worker = self.index
        return sess


class _WorkerSession(v1.Session):
    """A worker's Session: a collective that times out or loses its connection means another
    worker has stopped; say so in one line."""

    def run(self, *args, **kwargs):
        try:
            return super().run(*args, **kwargs)
        except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError) as e:
            timed_out = isinstance(e, tf.errors.DeadlineExceededError)
            reason = f"no answer for {TIMEOUT:.0f}s" if timed_out else "connection lost"
            raise UserError(
                f"worker {self.worker} lost the other workers ({reason}): one of them has "
                "stopped (see its log); start every worker again to resume from the last "
                "checkpoint"
            ) from None


def _read_tf_config(text):
    """TF_CONFIG {"cluster": {"chief": [...], "worker": [...]}, "task": {"type", "index"}} ->
    (addresses, index); a chief task comes first, as worker 0."""
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise UserError(
            'TF_CONFIG is not {"cluster": {"worker": [host:port, ...]}, '
            '"task": {"type": "worker", "index": N}}'
        ) from None
    extra = sorted(set(cluster) - {"chief", "worker"})
    if extra or kind not in ("chief", "worker"):
        raise UserError(
            f"TF_CONFIG: only chief and worker tasks take part (collective all-reduce needs no "
            f"parameter servers or evaluators); got {', '.join(extra) or kind}"
        )
    chief, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
    return chief + workers, index if kind == "chief" else len(chief) + index


# ---------------------------------------------------------------------------------------------
# The replicated graph


def parse_devices(config, cluster):
    """Config `devices` -> full device names ([None] = TensorFlow's default placement)."""
    devices = []
    for name in config.devices:
        try:
            spec = tf.DeviceSpec.from_string(str(name))
        except ValueError as e:
            raise UserError(f"config key 'devices': '{name}' is not a device name: {e}") from None
        if not spec.device_type or spec.job or spec.task is not None:
            raise UserError(
                f"config key 'devices': give local devices such as /gpu:0 or /cpu:1, got "
                f"'{name}' (the worker's task is added for distributed training)"
            )
        if cluster.distributed:
            spec = tf.DeviceSpec.from_string(cluster.task).make_merged_spec(spec)
        devices.append(spec.to_string())
    if len(set(devices)) != len(devices):
        raise UserError(f"config key 'devices': a device appears twice: {config.devices}")
    return devices or [None]


def _on(device, variable_device):
    """Device function of a tower: its ops on `device`, variables on `variable_device`."""

    def place(op):
        return variable_device if op.type in _VARIABLE_OPS else device

    return place


class Replicas:
    """The training loss replicated over the devices of this process and over the workers.

    `loss` is the loss of the global batch (all devices, all workers), `gradients()` this
    process's share of its gradients and `all_reduce()` their sum over the workers. Built in
    TrainGraph right after the model; device 0 reads the placeholders `src` and `tgt`.
    """

    def __init__(self, config, model, src, tgt):
        self.cluster = Cluster.from_config(config)
        self.devices = parse_devices(config, self.cluster)
        # What every worker must agree on (checked in start()): the rest of the config and the
        # number of devices (each takes a batch of every worker's stream per step).
        self._settings = {k: v for k, v in config.items() if k not in LOCAL_KEYS}
        self._settings["number of devices"] = len(self.devices)
        self._keys = 0  # instance keys of the collectives, in the (same) order of building
        self.inputs = [(src, tgt)] + [
            (
                v1.placeholder(tf.int32, [None, None], name=f"src_{d}"),
                v1.placeholder(tf.int32, [None, None], name=f"tgt_{d}"),
            )
            for d in range(1, len(self.devices))
        ]
        # Logical CPU devices beyond /cpu:0 exist only if the session asks for them.
        cpus = [tf.DeviceSpec.from_string(d) for d in self.devices if d]
        self._num_cpus = 1 + max(
            [c.device_index or 0 for c in cpus if c.device_type == "CPU"] or [0]
        )
        seed = model.dropout_seed
        if self.cluster.distributed and seed is not None:
            # Each worker draws its own dropout masks (same-shaped batches would share them).
            model.dropout_seed = seed + tf.constant([0, self.cluster.index << 32], tf.int64)
        losses, sentences, stats = [], [], []
        for (s, t), device in zip(self.inputs, self.devices, strict=True):
            scope = _on(device, self.devices[0]) if device else None
            with v1.device(scope):
                loss, st = model.loss(s, t, training=True)
            losses.append(loss)
            sentences.append(tf.cast(tf.shape(s)[0], loss.dtype))
            stats.append(st)
        model.dropout_seed = seed
        self.stats = {k: tf.add_n([st[k] for st in stats]) for k in ("nll", "tokens")}
        if len(losses) == 1 and not self.cluster.distributed:
            self.loss = self.objective = losses[0]  # the plain single-device graph
            return
        local = tf.add_n(sentences)
        weighted = tf.add_n([loss * n for loss, n in zip(losses, sentences, strict=True)])
        if self.cluster.distributed:
            with tf.device(self.cluster.cpu()):
                total, weighted_sum = tf.unstack(self._sum(tf.stack([local, weighted])))
        else:
            total, weighted_sum = local, weighted
        total = tf.stop_gradient(total)
        self.objective = weighted / total  # summed over the workers: the global loss
        self.loss = weighted_sum / total

    # -- collectives ---------------------------------------------------------------------------

    def _key(self):
        self._keys += 1
        return self._keys

    def _sum(self, x, timeout=None):
        return tf.raw_ops.CollectiveReduceV2(
            input=x,
            group_size=self.cluster.size,
            group_key=_GROUP,
            instance_key=self._key(),
            ordering_token=[],
            merge_op="Add",
            final_op="Id",
            timeout_seconds=TIMEOUT if timeout is None else timeout,
        )

    def _broadcast(self, x, shape, dtype, timeout=None):
        """The chief's `x` on every worker (the others give its shape and dtype)."""
        common = {
            "group_size": self.cluster.size,
            "group_key": _GROUP,
            "instance_key": self._key(),
            "timeout_seconds": TIMEOUT if timeout is None else timeout,
        }
        if self.cluster.is_chief:
            return tf.raw_ops.CollectiveBcastSendV2(input=x, **common)
        return tf.raw_ops.CollectiveBcastRecvV2(shape=shape, T=dtype, **common)

    # -- gradients -----------------------------------------------------------------------------

    def gradients(self, params, scale=None):
        """This process's gradients of its share of the global loss (times `scale`, for loss
        scaling). Each tower's backward pass runs on its device (colocated with the forward
        ops); the per-tower gradients of a variable are summed where the variable lives."""
        objective = self.objective if scale is None else self.objective * scale
        return tf.gradients(objective, params)  # (TF2's tf.gradients colocates them)

    def all_reduce(self, grads):
        """Sum of `grads` over the workers, as one packed CollectiveReduceV2 (one round trip
        per update instead of one per variable). Identity in a single process."""
        if not self.cluster.distributed:
            return grads
        with tf.device(self.cluster.cpu()):
            dense = [tf.convert_to_tensor(g) for g in grads]
            flat = tf.concat([tf.reshape(g, [-1]) for g in dense], 0)
            summed = self._sum(flat)
            parts = tf.split(summed, [int(np.prod(g.shape.as_list())) for g in dense])
            return [tf.reshape(p, g.shape) for p, g in zip(parts, dense, strict=True)]

    # -- the loop's side -----------------------------------------------------------------------

    def session(self, config, graph):
        return self.cluster.session(config, graph, self._num_cpus)

    def feed(self, batch):
        """Placeholders -> arrays for a batch of `group()` (one part per device)."""
        parts = batch.get("parts", [batch])
        feed = {}
        for (s, t), part in zip(self.inputs, parts, strict=True):
            feed[s], feed[t] = part["src"], part["tgt"]
        return feed

    def group(self, stream):
        """The batch stream as the loop sees it: one batch per device per step."""
        return stream if len(self.devices) == 1 else _Groups(stream, len(self.devices))

    def build_sync(self):
        """The broadcast ops of the loop (after every variable exists: TrainGraph.finalize)."""
        if not self.cluster.distributed:
            return
        with tf.device(self.cluster.cpu()):
            # At start every worker waits for all the others, however late they come.
            assigns = []
            for var in v1.global_variables():
                if var.dtype.base_dtype == tf.string:
                    continue  # the loop state travels as JSON
                mine = var.read_value() if self.cluster.is_chief else None
                value = self._broadcast(mine, tf.shape(var), var.dtype.base_dtype, timeout=0)
                assigns.append(var.assign(value, read_value=False))
            self._sync_variables = tf.group(*assigns)
            self._at_start = _Messages(self, timeout=0)
            self._in_loop = _Messages(self)

    def start(self, sess, state):
        """Make every worker start where the chief does: its variables (restored or freshly
        initialised) and its loop state. Returns the state."""
        if not self.cluster.distributed:
            return state
        self._check_settings(sess)
        sess.run(self._sync_variables)
        return self._at_start.json(sess, state)

    def _check_settings(self, sess):
        """Every worker stops with an error if any worker's config differs from the chief's
        (a different budget or schedule would desynchronise the workers' loops)."""
        mine = json.loads(json.dumps(self._settings))
        chief = self._at_start.json(sess, mine)
        differ = sorted(k for k in mine if chief.get(k) != mine[k])
        anyone = self._at_start.any(sess, bool(differ))  # every worker learns of a mismatch
        if differ:
            shown = "; ".join(
                f"{k}: {mine[k]!r} here, {chief.get(k)!r} on the chief" for k in differ
            )
            raise UserError(
                f"worker {self.cluster.index}'s config differs from the chief's: {shown}. "
                "Start every worker with the same config (only paths, threads, devices and "
                "worker_index may differ)"
            )
        if anyone:
            raise UserError(
                "another worker's config differs from this one (its error names the keys); "
                "start every worker with the same config"
            )

    def chief_clock(self, sess, clock):
        """`clock` (a function of no arguments) as read on the chief, on every worker: time
        budgets stop every worker at the same step. Every worker must call it equally often."""
        if not self.cluster.distributed:
            return clock
        return lambda: self._in_loop.float(sess, clock())

    def chief_value(self, sess, compute):
        """compute() run on the chief only, its JSON-able result returned on every worker."""
        if not self.cluster.distributed:
            return compute()
        return self._in_loop.json(sess, compute() if self.cluster.is_chief else None)


class _Messages:
    """Small messages between the workers: the chief's float or JSON value to all, and
    whether any worker raises a flag. A collective keeps the shape of its first run, so
    JSON goes in fixed-size chunks."""

    def __init__(self, replicas, timeout=None):
        self.chief = replicas.cluster.is_chief
        self._float_in = v1.placeholder(tf.float64, [1])
        self._float_out = replicas._broadcast(self._float_in, [1], tf.float64, timeout)
        self._chunk_in = v1.placeholder(tf.int32, [_CHUNK])
        self._chunk_out = replicas._broadcast(self._chunk_in, [_CHUNK], tf.int32, timeout)
        self._flag_in = v1.placeholder(tf.float32, [1])
        self._flags = replicas._sum(self._flag_in, timeout)

    def float(self, sess, value):
        feed = {self._float_in: [value]} if self.chief else {}
        return float(sess.run(self._float_out, feed)[0])

    def json(self, sess, obj):
        """The chief's JSON-able `obj` (the others pass anything)."""
        data = json.dumps(obj).encode() if self.chief else b""
        n = int(self.float(sess, len(data)))
        data = np.frombuffer(data.ljust(-(-n // _CHUNK) * _CHUNK, b" "), np.uint8)
        chunks = []
        for i in range(0, n, _CHUNK):
            feed = {self._chunk_in: data[i : i + _CHUNK]} if self.chief else {}
            chunks.append(sess.run(self._chunk_out, feed))
        return json.loads(np.concatenate(chunks).astype(np.uint8).tobytes()[:n].decode())

    def any(self, sess, flag):
        return sess.run(self._flags, {self._flag_in: [float(flag)]})[0] > 0


class _Groups:
    """One step's batches: `n` consecutive batches of the stream, one per device. position()
    and restore() are the stream's (a group is always taken whole)."""

    def __init__(self, stream, n):
        self.stream, self.n = stream, n

    def __getattr__(self, name):  # position, restore, close, epoch, epoch_stats
        return getattr(self.stream, name)

    def __iter__(self):
        return self

    def __next__(self):
        parts = [next(self.stream) for _ in range(self.n)]
        largest = max(parts, key=lambda p: p["src"].shape[0])
        return {
            "parts": parts,
            "src": largest["src"],  # what messages name: the budget is per device
            "num_src_tokens": sum(int(p["num_src_tokens"]) for p in parts),
            "num_tgt_tokens": sum(int(p["num_tgt_tokens"]) for p in parts),
        }


class SilentSummaries:
    """The summary writer of a worker that is not the chief: writes nothing."""

    def scalars(self, step, values):
        pass

    def close(self):
        pass
