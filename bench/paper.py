"""The paper's table (docs/DESIGN.md): WMT14 En-De, one GPU, newstest2014 case-insensitive
tokenized BLEU. The one copy every benchmark, `bench table` and the tests read."""

from typing import NamedTuple


class Row(NamedTuple):
    params_m: int  # parameters, millions
    bleu: float
    train_s: float  # seconds per training batch
    decode_ms: float  # milliseconds per decoded sentence


# The paper has no LSTM row: cells missing here show "-" in the paper columns.
PAPER = {
    "gru": Row(206, 26.28, 2.67, 45.35),
    "atr": Row(122, 25.70, 1.33, 34.40),
    "sru": Row(170, 25.91, 1.34, 42.84),
    "lrn": Row(143, 26.26, 0.99, 36.50),
    "olrn": Row(164, 26.73, 1.15, 40.19),
}

# Source and target vocabulary size of the paper's models (the paper-size configs use it).
VOCAB = 27750


def row(cell):
    """The paper's Row of `cell`, or None when the paper has none."""
    return PAPER.get(cell)


def figure(cell, field):
    """One figure of the paper's row of `cell` (a Row field name), or None."""
    found = PAPER.get(cell)
    return getattr(found, field) if found else None
