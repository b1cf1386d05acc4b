"""oLRN: LRN with an output gate."""

import tensorflow as tf

from rnns.lrn import LRN

v1 = tf.compat.v1


class OLRN(LRN):
    """oLRN: LRN plus an output gate, still element-wise inside the loop.

    Variables: `W` [d_in, 4d], columns [p|q|r|s]; with layer_norm also `ln_W/{gain,offset}` [4d].
        outside: [p|q|r|s] = LN?(x W)
        inside:  i = sigma(p + h_{t-1}),  f = sigma(q - h_{t-1}),  c = g(i*r + f*h_{t-1}),
                 o = sigma(s - c + b_o),  h_t = o*c        (the state carried is h)
    g is the identity (the MT default) or tanh (`activation="tanh"`). b_o [d] exists only with
    `output_bias` != 0, its initial value: at 0 the gate starts near 1/2 and halves the state
    carried at every step (README, "Why oLRN trails LRN"); a positive one opens it.
    """

    name = "olrn"
    proj_blocks = 4
    options = ("activation", "output_bias")

    def __init__(
        self,
        hidden_size,
        layer_norm=False,
        scope=None,
        initializer=None,
        activation="identity",
        output_bias=0.0,
    ):
        super().__init__(hidden_size, layer_norm, scope, initializer, activation)
        self.output_bias = float(output_bias)

    def _build(self):
        super()._build()
        self.b_o = None
        if self.output_bias:
            init = v1.constant_initializer(self.output_bias)
            self.b_o = v1.get_variable("b_o", [self.hidden_size], initializer=init)

    def gates(self, proj_t, state):
        """As LRN.gates, plus the internal state c and the output gate o (h = o*c)."""
        p, q, r, s = tf.split(proj_t, 4, axis=-1)
        i, f, c = self._mix(p, q, r, state)
        o = tf.sigmoid(s - c if self.b_o is None else s - c + self.b_o)
        return {"i": i, "f": f, "r": r, "c": c, "o": o, "h": o * c}
