"""The modes of run.py: what `--mode NAME` does. A mode is one file holding a `Mode` (its name,
one line of help and the function that runs it on a config) plus one `register` line below.
The modes are glue: they check the config, load what they need and call the toolkit's modules;
the model only builds graphs (docs/DESIGN.md, "Seams").
"""

from rnns.registry import Registry
from zero.modes import (
    average,
    decode,
    export,
    params,
    score,
    serve,
    shortlist,
    train,
    translate,
    weights,
)
from zero.modes.mode import Mode

MODES = Registry("mode")
MODES.register(train.MODE)
MODES.register(decode.MODE)
MODES.register(score.MODE)
MODES.register(params.MODE)
MODES.register(average.MODE)
MODES.register(translate.MODE)
MODES.register(export.MODE)
MODES.register(weights.MODE)
MODES.register(shortlist.MODE)
MODES.register(serve.MODE)

__all__ = ["MODES", "Mode"]


def describe():
    """Markdown table of every mode, for the README (a test keeps them equal)."""
    rows = ["| mode | what it does |", "|---|---|"]
    rows += [f"| `{name}` | {mode.help} |" for name, mode in MODES.items()]
    return "\n".join(rows)
