"""Checkpoints that survive crashes: atomic saves, keep-last-K, a best copy, fallback, averaging.

TensorFlow writes a checkpoint's data to a temporary name and merges it into place, and writes
the `checkpoint` state file atomically; we only point the state file at a checkpoint once it is
complete, so a crash at any moment leaves the previous checkpoint listed and intact.
"""

import glob
import os
import shutil

import numpy as np
import tensorflow as tf

from zero.errors import UserError
from zero.fileio import atomic_write_text

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


def checkpoint_files(path):
    return glob.glob(path + ".index") + glob.glob(path + ".data-*")


def is_complete(path):
    return os.path.exists(path + ".index") and bool(glob.glob(path + ".data-*"))


def write_state(directory, paths):
    """The `checkpoint` state file TensorFlow tools read, newest last, written atomically."""
    names = [os.path.relpath(p, directory) for p in paths]
    lines = [f'model_checkpoint_path: "{names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{n}"' for n in names]
    atomic_write_text(os.path.join(directory, "checkpoint"), "\n".join(lines) + "\n")


def listed_checkpoints(directory):
    """Checkpoints the state file lists, oldest first (absolute paths)."""
    state = v1.train.get_checkpoint_state(directory)
    if state is None:
        return []
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    return [p if os.path.isabs(p) else os.path.join(directory, p) for p in paths]


class CheckpointManager:
    def __init__(self, directory, saver, keep=5, log=print):
        self.directory = directory
        self.saver = saver
        self.keep = max(1, keep)
        self.log = log

    def save(self, sess, step):
        """Write checkpoint `step`; list it only once complete; drop checkpoints past `keep`."""
        prefix = os.path.join(self.directory, PREFIX)
        path = f"{prefix}-{step}"
        try:
            path = self.saver.save(
                sess, prefix, global_step=step, write_meta_graph=False, write_state=False
            )
        except (tf.errors.OpError, OSError) as e:
            for f in checkpoint_files(path):
                os.unlink(f)
            previous = listed_checkpoints(self.directory)
            kept = f"; the previous checkpoint {previous[-1]} is intact" if previous else ""
            raise UserError(
                f"could not write checkpoint {path} (disk full or not writable?): "
                f"{getattr(e, 'message', e)}{kept}"
            ) from None
        paths = [p for p in listed_checkpoints(self.directory) if p != path] + [path]
        dropped, paths = paths[: -self.keep], paths[-self.keep :]
        write_state(self.directory, paths)
        for old in dropped:
            for f in checkpoint_files(old):
                os.unlink(f)
        return path

    def restore(self, sess):
        """Restore the newest loadable checkpoint, falling back past damaged ones. None if none."""
        candidates = listed_checkpoints(self.directory)
        for i, path in enumerate(reversed(candidates)):
            try:
                self.saver.restore(sess, path)
            except CORRUPT_ERRORS as e:
                older = candidates[-i - 2] if i + 1 < len(candidates) else None
                reason = str(getattr(e, "message", e)).splitlines()[0][:200]
                self.log(
                    f"checkpoint {path} is damaged or incomplete ({reason}); "
                    + (f"falling back to {older}" if older else "no older checkpoint left")
                )
                continue
            return path
        if candidates:
            raise UserError(
                f"{self.directory}: every listed checkpoint is damaged; remove the directory "
                "to start again"
            )
        return None

    def copy_best(self, path):
        """Copy checkpoint `path` to best/ so that best/ is always one complete checkpoint."""
        best = os.path.join(self.directory, BEST_DIR)
        tmp, old = best + ".tmp", best + ".old"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        name = os.path.basename(path)
        for f in checkpoint_files(path):
            shutil.copy2(f, tmp)
        write_state(tmp, [os.path.join(tmp, name)])
        if os.path.exists(best):
            os.replace(best, old)
        os.replace(tmp, best)
        shutil.rmtree(old, ignore_errors=True)


def recover_best(directory):
    """Finish a best/ swap that a crash interrupted between its two renames."""
    best = os.path.join(directory, BEST_DIR)
    if not os.path.exists(best) and os.path.exists(best + ".old"):
        os.replace(best + ".old", best)


def find_checkpoint(path):
    """A model directory (best/ first, else latest) or a checkpoint prefix -> checkpoint prefix."""
    if os.path.isdir(path):
        recover_best(path)
        for directory in (os.path.join(path, BEST_DIR), path):
            found = listed_checkpoints(directory) if os.path.isdir(directory) else []
            if found:
                return found[-1]
        raise UserError(f"no checkpoint found in {path} (train a model there first)")
    if is_complete(path):
        return path
    raise UserError(f"checkpoint not found: {path} (expected {path}.index and its data file)")


def average_checkpoints(paths, output_prefix):
    """Average every floating-point variable of `paths`; other variables come from the last."""
    readers = [tf.train.load_checkpoint(p) for p in paths]
    shapes = readers[-1].get_variable_to_shape_map()
    dtypes = readers[-1].get_variable_to_dtype_map()
    for p, r in zip(paths, readers, strict=True):
        if r.get_variable_to_shape_map() != shapes:
            raise UserError(f"checkpoint {p} holds other variables than {paths[-1]}")
    values = {}
    for name in shapes:
        if dtypes[name].is_floating:
            values[name] = np.mean([r.get_tensor(name) for r in readers], axis=0).astype(
                dtypes[name].as_numpy_dtype
            )
        else:
            values[name] = readers[-1].get_tensor(name)
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
