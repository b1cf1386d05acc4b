"""SRU, the simple recurrent unit (Lei et al., 2018)."""

import tensorflow as tf

from rnns.cell import Cell


class SRU(Cell):
    """SRU: all matrix products in the input projection; vector-only recurrence. State [h; c].

    Variables: `W` [d_in, 4d], columns [x_r|x_f|x_c|x_h], `v_f` [d], `v_r` [d]; with layer_norm
    also `ln_W/{gain,offset}` [4d].
        outside: [x_r|x_f|x_c|x_h] = LN?(x W)
        inside:  f = sigma(x_f + v_f*c_{t-1}),  c_t = f*c_{t-1} + (1-f)*x_c,
                 r = sigma(x_r + v_r*c_{t-1}),  h_t = r*c_t + (1-r)*x_h
    """

    name = "sru"
    proj_blocks = 4
    state_blocks = 2

    def _build(self):
        d = self.hidden_size
        self.v_f = self._weight("v_f", [d])
        self.v_r = self._weight("v_r", [d])

    def step(self, proj_t, state):
        x_r, x_f, x_c, x_h = tf.split(proj_t, 4, axis=-1)
        c = tf.split(state, 2, axis=-1)[1]
        f = tf.sigmoid(x_f + self.v_f * c)
        r = tf.sigmoid(x_r + self.v_r * c)
        # f*c + (1-f)*x_c written with one product fewer.
        c_t = x_c + f * (c - x_c)
        h_t = x_h + r * (c_t - x_h)
        return tf.concat([h_t, c_t], axis=-1)
