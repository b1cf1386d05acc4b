"""Recurrent cells, the runners that drive them, and additive attention.

cell = rnns.get_cell("lrn", 512)
outputs, final_state = rnns.rnn(cell, inputs, mask)
"""

import difflib

from rnns.atr import ATR
from rnns.attention import AdditiveAttention
from rnns.cell import Cell
from rnns.gru import GRU
from rnns.lrn import LRN
from rnns.lstm import LSTM
from rnns.olrn import OLRN
from rnns.rnn import CondRNN, rnn
from rnns.sru import SRU

CELLS = {cls.name: cls for cls in (LRN, OLRN, GRU, LSTM, ATR, SRU)}

__all__ = ["CELLS", "AdditiveAttention", "Cell", "CondRNN", "get_cell", "rnn"]


def get_cell(name, hidden_size, layer_norm=False, scope=None, **options):
    """A new cell by (case-insensitive) name: lrn, olrn, gru, lstm, atr, sru.

    options: `activation` ('identity' or 'tanh', LRN/oLRN only), `initializer`.
    `scope` (the variable scope) defaults to the cell name.
    """
    key = str(name).lower()
    if key not in CELLS:
        valid = ", ".join(CELLS)
        close = difflib.get_close_matches(key, CELLS, n=1, cutoff=0.0)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown cell {name!r}: valid cells are {valid}{hint}")
    cls = CELLS[key]
    if "activation" in options and not issubclass(cls, LRN):
        raise ValueError(f"option 'activation' applies to lrn and olrn only, not {key}")
    unknown = set(options) - {"activation", "initializer"}
    if unknown:
        raise ValueError(f"unknown cell options {sorted(unknown)}: use activation, initializer")
    return cls(hidden_size, layer_norm=layer_norm, scope=scope, **options)
