"""Additive attention (Bahdanau et al., 2015), the paper's model's attention."""

import tensorflow as tf

from rnns import precision
from rnns.attention import Attention
from rnns.ops import matmul


class AdditiveAttention(Attention):
    """score = v . tanh(W_q s + b_q + W_k m) + b_v, softmax over the unmasked memory.

    Variables (under `scope`): `W_q` [d_query, d], `b_q` [d], `W_k` [d_mem, d] (no bias, applied
    once to the whole memory by `precompute_keys`), `v` [d], scalar `b_v`. With H heads the d
    units of the tanh layer are split too: head h scores with its slice of v. The parameters do
    not depend on H.
    """

    name = "additive"

    def _build(self, memory_size, query_size):
        d = self.hidden_size
        self.W_q = self._weight("W_q", [query_size, d])
        self.W_q_t = tf.transpose(self.W_q)  # for the gradient inside loops (ops.matmul)
        self.b_q = self._bias("b_q", [d])
        self.W_k = self._weight("W_k", [memory_size, d])
        self.v = self._weight("v", [d])
        self.b_v = self._bias("b_v", [])

    def _keys(self, memory):
        return matmul(memory, self.W_k)

    def scores(self, query, keys):
        q = matmul(query, self.W_q, self.b_q, self.W_q_t)
        hidden = tf.tanh(self.align(keys, q) + tf.expand_dims(q, -2))  # [B, (K,) S, d]
        if self.num_heads == 1:
            # v . tanh(...) is a matrix-vector product, bound by reading `hidden`: in bfloat16
            # it is slower than in float32 even before `hidden` is cast (measured, [1920 x
            # 1024] x [1024 x 1]: 0.39 ms, plus 0.39 ms for the cast, against 0.24 ms).
            with precision.compute("float32"):
                scores = tf.squeeze(matmul(hidden, tf.expand_dims(self.v, 1)), -1)
        else:
            per_head = hidden * self.v
            shape = tf.concat([tf.shape(per_head)[:-1], [self.num_heads, -1]], 0)
            per_head = tf.reduce_sum(tf.reshape(per_head, shape), -1)  # [B, (K,) S, H]
            scores = tf.linalg.matrix_transpose(per_head)  # [B, (K,) H, S]
        return scores + self.b_v
