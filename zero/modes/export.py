"""export: a TensorFlow SavedModel of the model, strings in and strings out (zero/export.py)."""

from zero.export import export
from zero.modes.mode import Mode

MODE = Mode(
    "export",
    "a TensorFlow SavedModel in `export_dir` (strings in, strings out; no project code needed "
    "to serve it)",
    export,
)
