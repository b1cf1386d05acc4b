"""oLRN: LRN with an output gate."""

import tensorflow as tf

from rnns.lrn import LRN


class OLRN(LRN):
    """oLRN: LRN plus an output gate, still element-wise inside the loop.

    Variables: `W` [d_in, 4d], columns [p|q|r|s]; with layer_norm also `ln_W/{gain,offset}` [4d].
        outside: [p|q|r|s] = LN?(x W)
        inside:  i = sigma(p + h_{t-1}),  f = sigma(q - h_{t-1}),  c = g(i*r + f*h_{t-1}),
                 o = sigma(s - c),  h_t = o*c        (the state carried is h)
    g is the identity (the MT default) or tanh (`activation="tanh"`).
    """

    name = "olrn"
    proj_blocks = 4

    def gates(self, proj_t, state):
        """As LRN.gates, plus the internal state c and the output gate o (h = o*c)."""
        p, q, r, s = tf.split(proj_t, 4, axis=-1)
        i, f, c = self._mix(p, q, r, state)
        o = tf.sigmoid(s - c)
        return {"i": i, "f": f, "r": r, "c": c, "o": o, "h": o * c}
