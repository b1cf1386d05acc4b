"""LRN, the lightweight recurrent network (Zhang & Sennrich, 2019)."""

import tensorflow as tf

from rnns.cell import Cell


class LRN(Cell):
    """LRN: every matrix product is in the input projection; the step is element-wise.

    Variables: `W` [d_in, 3d], columns [p|q|r]; with layer_norm also `ln_W/{gain,offset}` [3d].
        outside: [p|q|r] = LN?(x W)
        inside:  i = sigma(p + h_{t-1}),  f = sigma(q - h_{t-1}),  h_t = g(i*r + f*h_{t-1})
    g is the identity (the MT default) or tanh (`activation="tanh"`).
    """

    name = "lrn"
    proj_blocks = 3
    options = ("activation",)

    def __init__(
        self, hidden_size, layer_norm=False, scope=None, initializer=None, activation="identity"
    ):
        super().__init__(hidden_size, layer_norm, scope, initializer)
        if activation not in ("identity", "tanh"):
            raise ValueError(f"activation must be 'identity' or 'tanh', got {activation!r}")
        self.activation = activation

    def _mix(self, p, q, r, state):
        """The LRN recurrence, shared with oLRN: (i, f, g(i*r + f*state))."""
        i = tf.sigmoid(p + state)
        f = tf.sigmoid(q - state)
        c = i * r + f * state
        return i, f, tf.tanh(c) if self.activation == "tanh" else c

    def gates(self, proj_t, state):
        """The step's tensors by name: gates i, f, value r and the new state h (element-wise,
        so any leading shape works: the weights mode calls it on whole sequences)."""
        p, q, r = tf.split(proj_t, 3, axis=-1)
        i, f, h = self._mix(p, q, r, state)
        return {"i": i, "f": f, "r": r, "h": h}

    def step(self, proj_t, state):
        return self.gates(proj_t, state)["h"]
