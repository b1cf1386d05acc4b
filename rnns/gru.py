"""GRU, the gated recurrent unit (Cho et al., 2014), reset gate applied before U_h."""

import tensorflow as tf

from rnns.cell import Cell


class GRU(Cell):
    """GRU with two recurrent products per step.

    Variables: `W` [d_in, 3d] (fused input projection, columns [W_g: z|r | W_h]), `U_g` [d, 2d]
    (columns [z|r]), `U_h` [d, d], `b_g` [2d], `b_h` [d]; with layer_norm also
    `ln_U_g/{gain,offset}` [2d] and `ln_U_h/{gain,offset}` [d] (the input projection is not
    normalised).
        outside: [x_g|x_h] = x W
        inside:  [z|r] = sigma(x_g + LN?(h_{t-1} U_g) + b_g)
                 h~ = tanh(x_h + LN?((r*h_{t-1}) U_h) + b_h),  h_t = z*h_{t-1} + (1-z)*h~
    """

    name = "gru"
    proj_blocks = 3
    ln_projection = False

    def _build(self):
        d = self.hidden_size
        self.U_g = self._weight("U_g", [d, 2 * d])
        self.U_h = self._weight("U_h", [d, d])
        self.U_g_t, self.U_h_t = tf.transpose(self.U_g), tf.transpose(self.U_h)
        self.b_g = self._bias("b_g", 2 * d)
        self.b_h = self._bias("b_h", d)
        self.ln_U_g = self._norm_params("ln_U_g", 2 * d)
        self.ln_U_h = self._norm_params("ln_U_h", d)

    def step(self, proj_t, state):
        d = self.hidden_size
        # tf.split rather than slicing: its gradient is one concat, a slice's a padded copy.
        x_g, x_h = tf.split(proj_t, [2 * d, d], axis=-1)
        g = tf.sigmoid(x_g + self._recurrent(state, self.U_g, self.U_g_t, self.ln_U_g, self.b_g))
        z, r = tf.split(g, 2, axis=-1)
        h = tf.tanh(x_h + self._recurrent(r * state, self.U_h, self.U_h_t, self.ln_U_h, self.b_h))
        # z*h_{t-1} + (1-z)*h~ written with one product fewer.
        return h + z * (state - h)
