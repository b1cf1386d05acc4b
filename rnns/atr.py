"""ATR, the addition-subtraction twin-gated recurrent network (Zhang et al., 2018)."""

import tensorflow as tf

from rnns.cell import Cell


class ATR(Cell):
    """ATR: one input and one recurrent product; gates from their sum and difference.

    Variables: `W` [d_in, d], `U` [d, d], `b` [d]; with layer_norm also `ln_W/{gain,offset}` [d]
    and `ln_U/{gain,offset}` [d].
        outside: p = LN?(x W)
        inside:  q = LN?(h_{t-1} U) + b,  i = sigma(p + q),  f = sigma(p - q),
                 h_t = i*p + f*h_{t-1}
    """

    name = "atr"
    proj_blocks = 1

    def _build(self):
        d = self.hidden_size
        self.U = self._weight("U", [d, d])
        self.U_t = tf.transpose(self.U)
        self.b = self._bias("b", d)
        self.ln_U = self._norm_params("ln_U", d)

    def step(self, proj_t, state):
        q = self._recurrent(state, self.U, self.U_t, self.ln_U, self.b)
        i = tf.sigmoid(proj_t + q)
        f = tf.sigmoid(proj_t - q)
        return i * proj_t + f * state
