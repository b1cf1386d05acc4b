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

    def step(self, proj_t, state):
        p, q, r, s = tf.split(proj_t, 4, axis=-1)
        i = tf.sigmoid(p + state)
        f = tf.sigmoid(q - state)
        c = i * r + f * state
        if self.activation == "tanh":
            c = tf.tanh(c)
        return tf.sigmoid(s - c) * c
