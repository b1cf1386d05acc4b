"""Recurrent cells, the runners that drive them, and attentions.

cell = rnns.get_cell("lrn", 512)
outputs, final_state = rnns.rnn(cell, inputs, mask)

Cells and attentions are looked up by name in their registries: a new one is one file plus
one `register` line below (docs/DESIGN.md, "Seams").
"""

from rnns.additive import AdditiveAttention
from rnns.atr import ATR
from rnns.attention import Attention
from rnns.cell import Cell
from rnns.gru import GRU
from rnns.lrn import LRN
from rnns.lstm import LSTM
from rnns.luong import LuongAttention
from rnns.olrn import OLRN
from rnns.registry import Registry
from rnns.rnn import CondRNN, rnn
from rnns.sru import SRU

CELLS = Registry("cell")
CELLS.register(LRN)
CELLS.register(OLRN)
CELLS.register(GRU)
CELLS.register(LSTM)
CELLS.register(ATR)
CELLS.register(SRU)

ATTENTIONS = Registry("attention")
ATTENTIONS.register(AdditiveAttention)
ATTENTIONS.register(LuongAttention)

__all__ = [
    "ATTENTIONS",
    "CELLS",
    "AdditiveAttention",
    "Attention",
    "Cell",
    "CondRNN",
    "LuongAttention",
    "get_attention",
    "get_cell",
    "rnn",
]


def get_cell(name, hidden_size, layer_norm=False, scope=None, **options):
    """A new cell by (case-insensitive) name: lrn, olrn, gru, lstm, atr, sru, or any registered.

    options: those the cell's constructor takes beyond the base Cell's (LRN/oLRN:
    `activation`, 'identity' or 'tanh'), and `initializer`. `scope` (the variable scope)
    defaults to the cell name.
    """
    cls = CELLS[name]
    own = set(cls.options)
    unknown = set(options) - own - {"initializer"}
    if unknown:
        takers = [n for n, c in CELLS.items() if unknown <= set(c.options)]
        if takers:
            shown = ", ".join(sorted(unknown))
            raise ValueError(
                f"option {shown!r} applies to {' and '.join(takers)} only, not {cls.name}"
            )
        valid = ", ".join(sorted(own | {"initializer"}))
        raise ValueError(f"unknown cell options {sorted(unknown)}: use {valid}")
    return cls(hidden_size, layer_norm=layer_norm, scope=scope, **options)


def get_attention(name, hidden_size, num_heads=1, scope="attention", initializer=None):
    """A new attention by name: additive (the paper's), luong, or any registered."""
    return ATTENTIONS[name](hidden_size, num_heads=num_heads, scope=scope, initializer=initializer)
