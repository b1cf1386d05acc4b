"""Checkpoints that survive crashes: atomic saves, keep-last-K, a best copy, fallback, averaging.

TensorFlow writes a checkpoint's files under temporary names and renames them into place; we
fsync them and only then point the `checkpoint` state file (written atomically) at them, so a
crash at any moment leaves the previous checkpoint listed and intact. best/ is filled as
best.tmp and swapped in by renames. Leftovers of a crash (temporary files, best.tmp, a
half-dropped old checkpoint) are removed by CheckpointManager.recover() when training restarts;
a listed checkpoint that turns out damaged is skipped (and unlisted) in favour of the one before.
"""

import glob
import os
import re
import shutil

import numpy as np
import tensorflow as tf

from zero.errors import UserError
from zero.faults import pause
from zero.textio import atomic_write_text

v1 = tf.compat.v1
PREFIX = "model.ckpt"
BEST_DIR = "best"
# Errors that mean "this checkpoint file is damaged or missing", not a bug of ours.
CORRUPT_ERRORS = (
    tf.errors.DataLossError,
    tf.errors.NotFoundError,
    tf.errors.InvalidArgumentError,
    tf.errors.OutOfRangeError,
    tf.errors.UnknownError,
)
_DATA = re.compile(r"\.data-(\d+)-of-(\d+)$")
# Names our atomic writes use for files of a model directory while they are being written.
_TEMP_NAMES = (
    "checkpoint.*.tmp",
    "config.yaml.*.tmp",
    "vocab.json.*.tmp",
    "validation.jsonl.*.tmp",
    "*.tempstate*",
)


class DamagedCheckpoint(Exception):
    """A checkpoint whose files are missing, truncated or garbled."""


def checkpoint_files(path):
    """The .index and .data-K-of-N files of checkpoint `path` (not TensorFlow's temp files)."""
    data = [f for f in glob.glob(glob.escape(path) + ".data-*") if _DATA.search(f)]
    index = path + ".index"
    return ([index] if os.path.exists(index) else []) + sorted(data)


def is_complete(path):
    """The index and every data shard exist."""
    if not os.path.exists(path + ".index"):
        return False
    shards = [_DATA.search(f) for f in checkpoint_files(path)[1:]]
    return bool(shards) and {int(m.group(1)) for m in shards} == set(range(int(shards[0].group(2))))


def write_state(directory, paths):
    """The `checkpoint` state file TensorFlow tools read, newest last, written atomically."""
    names = [os.path.relpath(p, directory) for p in paths]
    lines = [f'model_checkpoint_path: "{names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{n}"' for n in names]
    atomic_write_text(os.path.join(directory, "checkpoint"), "\n".join(lines) + "\n")


def listed_checkpoints(directory):
    """Checkpoints the state file lists, oldest first (absolute paths). If the state file is
    there but unreadable, the complete checkpoints on disk by step (TensorFlow would ignore
    the file and training would silently start again)."""
    try:
        state = v1.train.get_checkpoint_state(directory)  # None if missing or unparsable
    except ValueError:  # parsed, but lists nothing
        state = None
    if state is None:
        if not os.path.exists(os.path.join(directory, "checkpoint")):
            return []
        pattern = os.path.join(glob.escape(directory), PREFIX + "-*.index")
        found = [os.path.abspath(f[: -len(".index")]) for f in glob.glob(pattern)]
        return sorted((p for p in found if _step(p) is not None), key=_step)
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    # TensorFlow has already joined relative entries with `directory`.
    return [os.path.abspath(p) for p in paths]


def _reason(error):
    return str(getattr(error, "message", error)).strip().splitlines()[0][:200]


def read_checkpoint(path):
    """A reader of checkpoint `path`; DamagedCheckpoint if its files are missing or garbled."""
    if not is_complete(path):
        raise DamagedCheckpoint("its .index or .data file is missing")
    try:
        return tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as e:
        raise DamagedCheckpoint(_reason(e)) from None


def check_fits(path, reader, variables):
    """UserError unless checkpoint `path` holds every variable of {name: Variable} in its shape
    (TensorFlow would silently restore a tensor of another shape)."""
    shapes = reader.get_variable_to_shape_map()
    missing = sorted(name for name in variables if name not in shapes)
    wrong = sorted(
        f"{name} is {list(shapes[name])} in the checkpoint but {var.shape.as_list()} here"
        for name, var in variables.items()
        if name in shapes and list(shapes[name]) != var.shape.as_list()
    )
    if missing or wrong:
        problems = []
        if missing:
            shown = ", ".join(missing[:3]) + (
                f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            )
            problems.append(f"it lacks {shown}")
        problems += wrong[:3]
        raise UserError(
            f"checkpoint {path} does not fit the configured model ({'; '.join(problems)}): it "
            "was written with other settings (cell, sizes, vocabularies or grad_accum); use the "
            "model directory's config.yaml or another output_dir"
        )


def restore_checkpoint(sess, saver, variables, path):
    """Check that `path` fits {checkpoint name: Variable}, then restore it with `saver`.
    DamagedCheckpoint if it cannot be read, UserError if it belongs to another model."""
    check_fits(path, read_checkpoint(path), variables)
    try:
        saver.restore(sess, path)
    except CORRUPT_ERRORS as e:
        raise DamagedCheckpoint(_reason(e)) from None


def _fsync(paths):
    """Flush files to disk before a state file points at them (a reboot must not list a
    checkpoint whose data is still in the page cache)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _step(path):
    m = re.search(r"-(\d+)$", path)
    return int(m.group(1)) if m else None


class CheckpointManager:
    def __init__(self, directory, saver, keep=5, log=print):
        self.directory = directory
        self.saver = saver
        self.keep = max(1, keep)
        self.log = log

    def save(self, sess, step, best=False):
        """Write checkpoint `step` (and copy it to best/ if `best`); list it only once complete;
        drop checkpoints past `keep`. A failure leaves the previous checkpoints as they were."""
        prefix = os.path.join(self.directory, PREFIX)
        path = f"{prefix}-{step}"
        previous = listed_checkpoints(self.directory)
        try:
            path = self.saver.save(
                sess, prefix, global_step=step, write_meta_graph=False, write_state=False
            )
            _fsync(checkpoint_files(path))
            pause("sleep_in_save", path)
            if best:
                self.copy_best(path)
            paths = [p for p in previous if p != path] + [path]
            dropped, paths = paths[: -self.keep], paths[-self.keep :]
            write_state(self.directory, paths)
        except (tf.errors.OpError, OSError) as e:
            if path not in previous:
                for f in checkpoint_files(path) + glob.glob(glob.escape(path) + "*.tempstate*"):
                    os.unlink(f)
            kept = (
                f"; the previous checkpoint {previous[-1]} is intact"
                if previous
                else "; no earlier checkpoint exists"
            )
            raise UserError(
                f"could not write checkpoint {path}: disk full or not writable "
                f"({_reason(e)}){kept}. Free space in {self.directory} and rerun the same "
                "command to resume"
            ) from None
        for old in dropped:
            for f in checkpoint_files(old):
                os.unlink(f)
        return path

    def restore(self, sess):
        """Restore the newest loadable checkpoint, falling back past damaged ones (which are
        then unlisted). None if there is none. UserError if it belongs to another model."""
        candidates = listed_checkpoints(self.directory)
        variables = {v.op.name: v for v in sess.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)}
        for i in range(len(candidates) - 1, -1, -1):
            path = candidates[i]
            try:
                restore_checkpoint(sess, self.saver, variables, path)
            except DamagedCheckpoint as e:
                self.log(
                    f"checkpoint {path} is damaged or incomplete ({e}); "
                    + (f"falling back to {candidates[i - 1]}" if i else "no older checkpoint left")
                )
                continue
            if i + 1 < len(candidates):
                write_state(self.directory, candidates[: i + 1])
            return path
        if candidates:
            raise UserError(
                f"{self.directory}: every listed checkpoint is damaged "
                f"({', '.join(map(os.path.basename, candidates))}); remove them (or the "
                "directory) to start again"
            )
        return None

    def copy_best(self, path):
        """Copy checkpoint `path` to best/ so that best/ is always one complete checkpoint."""
        best = os.path.join(self.directory, BEST_DIR)
        tmp, old = best + ".tmp", best + ".old"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            name = os.path.basename(path)
            for f in checkpoint_files(path):
                shutil.copy2(f, tmp)
            _fsync(checkpoint_files(os.path.join(tmp, name)))
            write_state(tmp, [os.path.join(tmp, name)])
            if os.path.exists(best):
                os.replace(best, old)
            pause("sleep_in_best", path)
            os.replace(tmp, best)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            recover_best(self.directory)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def recover(self):
        """Undo what a crash left half-done: finish a best/ swap, delete temporary files and
        checkpoints that were being dropped. Returns the names removed."""
        recover_best(self.directory)
        removed = []
        for pattern in _TEMP_NAMES:
            for f in glob.glob(os.path.join(glob.escape(self.directory), pattern)):
                os.unlink(f)
                removed.append(os.path.basename(f))
        for d in (BEST_DIR + ".tmp", BEST_DIR + ".old"):
            if os.path.isdir(os.path.join(self.directory, d)):
                shutil.rmtree(os.path.join(self.directory, d))
                removed.append(d)
        listed = listed_checkpoints(self.directory)
        newest = max((_step(p) or 0 for p in listed), default=None)
        if newest is not None:
            names = {os.path.basename(p) for p in listed}
            for f in glob.glob(os.path.join(glob.escape(self.directory), PREFIX + "-*")):
                stem = re.sub(r"\.(index|data-\d+-of-\d+)$", "", f)
                step = _step(stem)
                if step is not None and step < newest and os.path.basename(stem) not in names:
                    os.unlink(f)
                    removed.append(os.path.basename(f))
        return removed


def recover_best(directory):
    """Finish a best/ swap that a crash interrupted between its two renames."""
    best = os.path.join(directory, BEST_DIR)
    if not os.path.exists(best) and os.path.exists(best + ".old"):
        os.replace(best + ".old", best)


def find_checkpoint(path):
    """A model directory (best/ first, else latest) or a checkpoint prefix -> checkpoint prefix.

    Read-only: a model directory may be in use by a running trainer, so a best/ swap in
    progress (best/ renamed to best.old, best.tmp not yet in place) is read from best.old
    rather than finished here; only the trainer renames.
    """
    if os.path.isdir(path):
        best = os.path.join(path, BEST_DIR)
        for directory in (best, best + ".old", path):
            found = listed_checkpoints(directory) if os.path.isdir(directory) else []
            if found:
                return found[-1]
        raise UserError(f"no checkpoint found in {path} (train a model there first)")
    if is_complete(path):
        return path
    raise UserError(f"checkpoint not found: {path} (expected {path}.index and its data file)")


def average_checkpoints(paths, output_prefix):
    """Average every floating-point variable of `paths`; other variables come from the last."""
    readers = []
    for p in paths:
        try:
            readers.append(read_checkpoint(p))
        except DamagedCheckpoint as e:
            raise UserError(
                f"cannot average: checkpoint {p} is damaged or incomplete ({e})"
            ) from None
    shapes = readers[-1].get_variable_to_shape_map()
    dtypes = readers[-1].get_variable_to_dtype_map()
    for p, r in zip(paths, readers, strict=True):
        if r.get_variable_to_shape_map() != shapes:
            raise UserError(f"checkpoint {p} holds other variables than {paths[-1]}")
    values = {}
    try:
        for name in shapes:
            if dtypes[name].is_floating:
                values[name] = np.mean([r.get_tensor(name) for r in readers], axis=0).astype(
                    dtypes[name].as_numpy_dtype
                )
            else:
                values[name] = readers[-1].get_tensor(name)
    except (tf.errors.OpError, IndexError, ValueError) as e:  # IndexError: a truncated file
        raise UserError(
            f"cannot average {', '.join(paths)}: a file is damaged ({_reason(e)})"
        ) from None
    with tf.Graph().as_default():
        variables = {
            name: v1.Variable(value, name=name.replace(":", "_"), dtype=dtypes[name])
            for name, value in values.items()
        }
        saver = v1.train.Saver(variables)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            os.makedirs(os.path.dirname(os.path.abspath(output_prefix)), exist_ok=True)
            path = saver.save(sess, output_prefix, write_meta_graph=False, write_state=False)
    write_state(os.path.dirname(os.path.abspath(path)), [path])
    return path
