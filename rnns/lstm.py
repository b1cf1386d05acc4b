"""LSTM (Hochreiter & Schmidhuber, 1997), without peepholes. State [h; c]."""

import tensorflow as tf

from rnns.cell import Cell


class LSTM(Cell):
    """LSTM with its two recurrent products fused into one per step.

    Variables: `W` [d_in, 4d] (fused input projection, columns [x_g: i|f|o | x_c]), `U_g` [d, 3d]
    (columns [i|f|o]), `U_c` [d, d], `b` [3d], `b_c` [d]; with layer_norm also
    `ln_U_g/{gain,offset}` [3d] and `ln_U_c/{gain,offset}` [d] (the input projection is not
    normalised).
        outside: [x_g|x_c] = x W
        inside:  [i|f|o] = sigma(x_g + LN?(h_{t-1} U_g) + b)
                 c~ = tanh(x_c + LN?(h_{t-1} U_c) + b_c)
                 c_t = i*c~ + f*c_{t-1},  h_t = o*tanh(c_t)
    h U_g and h U_c run as one product h [U_g|U_c] (LN stays per d-wide block, so normalising
    the fused product is the same).
    """

    name = "lstm"
    proj_blocks = 4
    state_blocks = 2
    ln_projection = False

    def _build(self):
        d = self.hidden_size
        self.U_g = self._weight("U_g", [d, 3 * d])
        self.U_c = self._weight("U_c", [d, d])
        self.b = self._bias("b", 3 * d)
        self.b_c = self._bias("b_c", d)
        self.ln_U_g = self._norm_params("ln_U_g", 3 * d)
        self.ln_U_c = self._norm_params("ln_U_c", d)
        # Concatenated (and transposed) once per run, outside the loop.
        self.U = tf.concat([self.U_g, self.U_c], 1)
        self.U_t = tf.transpose(self.U)
        self.b_all = tf.concat([self.b, self.b_c], 0)
        self.ln_U = None
        if self.layer_norm:
            self.ln_U = tuple(tf.concat(p, 0) for p in zip(self.ln_U_g, self.ln_U_c, strict=True))

    def step(self, proj_t, state):
        d = self.hidden_size
        # tf.split rather than slicing: its gradient is one concat, a slice's a padded copy.
        h, c = tf.split(state, 2, axis=-1)
        z_g, z_c = tf.split(
            proj_t + self._recurrent(h, self.U, self.U_t, self.ln_U, self.b_all), [3 * d, d], -1
        )
        i, f, o = tf.split(tf.sigmoid(z_g), 3, axis=-1)
        c_t = i * tf.tanh(z_c) + f * c
        return tf.concat([o * tf.tanh(c_t), c_t], axis=-1)
