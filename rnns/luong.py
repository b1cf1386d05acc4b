"""Multiplicative attention, Luong et al. (2015)'s "general" score."""

import tensorflow as tf

from rnns.attention import Attention
from rnns.ops import matmul


class LuongAttention(Attention):
    """score = s . (W_k m): one product of the memory outside the loop, then per step a dot
    product of the query with each key (no tanh layer over [B, S, d] as in additive attention).

    Variables (under `scope`): `W_k` [d_mem, d_query]. With H heads the query and the keys are
    split into H parts, head h scoring with its parts.
    """

    name = "luong"

    def _build(self, memory_size, query_size):
        if query_size % self.num_heads:
            raise ValueError(f"query size {query_size} is not divisible by {self.num_heads} heads")
        self.W_k = self._weight("W_k", [memory_size, query_size])

    def _keys(self, memory):
        return matmul(memory, self.W_k)  # [B, S, d_query]

    def scores(self, query, keys):
        keys = self.align(keys, query)  # [B, (1,) S, d]
        if self.num_heads == 1:
            return tf.reduce_sum(keys * tf.expand_dims(query, -2), -1)  # [B, (K,) S]
        heads = tf.concat([tf.shape(keys)[:-1], [self.num_heads, -1]], 0)
        k = tf.reshape(keys, heads)  # [B, (1,) S, H, d / H]
        q = tf.reshape(query, tf.concat([tf.shape(query)[:-1], [1, self.num_heads, -1]], 0))
        return tf.linalg.matrix_transpose(tf.reduce_sum(k * q, -1))  # [B, (K,) H, S]
