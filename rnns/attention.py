"""Additive (Bahdanau) attention, optionally multi-head."""

import tensorflow as tf

from rnns import precision
from rnns.cell import _root_graph
from rnns.ops import DEFAULT_INIT, matmul

v1 = tf.compat.v1

# Score of a masked memory position: large and negative rather than -inf, so that a fully
# masked row gives uniform weights instead of NaN.
MASKED_SCORE = -1e9


class AdditiveAttention:
    """score = v . tanh(W_q s + b_q + W_k m) + b_v, softmax over the unmasked memory.

    Variables (under `scope`): `W_q` [d_query, d], `b_q` [d], `W_k` [d_mem, d] (no bias, applied
    once to the whole memory by `precompute_keys`), `v` [d], scalar `b_v`.
    With num_heads = H the d units of the tanh layer and the d_mem units of the memory are split
    into H equal parts; head h scores with its slice of v and averages its slice of the memory;
    the context is the concatenation of the heads' contexts. The parameters do not depend on H.
    """

    def __init__(self, hidden_size, num_heads=1, scope="attention", initializer=None):
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by {num_heads} heads")
        self.hidden_size = int(hidden_size)
        self.num_heads = int(num_heads)
        self.scope = scope
        self.initializer = initializer or DEFAULT_INIT
        self.memory_size = None
        self._graph = None

    def build(self, memory_size, query_size=None):
        """Creates the variables (once per graph, outside any loop); query_size defaults to d."""
        memory_size = int(memory_size)
        if self._graph is _root_graph():
            if memory_size != self.memory_size:
                raise ValueError(f"attention built for memory size {self.memory_size}")
            return
        if memory_size % self.num_heads:
            raise ValueError(
                f"memory size {memory_size} is not divisible by {self.num_heads} heads"
            )
        d = self.hidden_size
        with v1.variable_scope(self.scope, reuse=v1.AUTO_REUSE) as scope:
            get = v1.get_variable
            self.W_q = get("W_q", [query_size or d, d], initializer=self.initializer)
            self.W_q_t = tf.transpose(self.W_q)  # for the gradient inside loops (ops.matmul)
            self.b_q = get("b_q", [d], initializer=v1.zeros_initializer())
            self.W_k = get("W_k", [memory_size, d], initializer=self.initializer)
            self.v = get("v", [d], initializer=self.initializer)
            self.b_v = get("b_v", [], initializer=v1.zeros_initializer())
            self.variables = v1.get_collection(v1.GraphKeys.GLOBAL_VARIABLES, scope.name + "/")
        self.memory_size = memory_size
        self._graph = _root_graph()

    def precompute_keys(self, memory):
        """memory [B, S, d_mem] -> keys W_k m [B, S, d], once per memory (outside the loop)."""
        self.build(memory.shape[-1])
        return matmul(memory, self.W_k)

    def __call__(self, query, keys, memory, memory_mask=None):
        """query [B, d_query] -> (context [B, d_mem], weights [B, S] or [B, heads, S])."""
        self.build(memory.shape[-1])
        q = matmul(query, self.W_q, self.b_q, self.W_q_t)
        hidden = tf.tanh(keys + tf.expand_dims(q, 1))  # [B, S, d]
        if self.num_heads == 1:
            # v . tanh(...) is a matrix-vector product, bound by reading `hidden`: in bfloat16
            # it is slower than in float32 even before `hidden` is cast (measured, [1920 x
            # 1024] x [1024 x 1]: 0.39 ms, plus 0.39 ms for the cast, against 0.24 ms).
            with precision.compute("float32"):
                scores = tf.squeeze(matmul(hidden, tf.expand_dims(self.v, 1)), -1)  # [B, S]
        else:
            shape = tf.shape(hidden)
            per_head = tf.reshape(hidden * self.v, [shape[0], shape[1], self.num_heads, -1])
            scores = tf.transpose(tf.reduce_sum(per_head, -1), [0, 2, 1])  # [B, H, S]
        scores += self.b_v
        if memory_mask is not None:
            valid = tf.cast(memory_mask, tf.float32) > 0
            if self.num_heads > 1:
                valid = tf.expand_dims(valid, 1)
            scores = tf.where(valid, scores, MASKED_SCORE)
        weights = tf.nn.softmax(scores)
        if self.num_heads == 1:
            context = tf.squeeze(precision.matmul(tf.expand_dims(weights, 1), memory), 1)
        else:
            shape = tf.shape(memory)
            heads = tf.reshape(memory, [shape[0], shape[1], self.num_heads, -1])
            heads = tf.transpose(heads, [0, 2, 1, 3])  # [B, H, S, d_mem / H]
            context = precision.matmul(tf.expand_dims(weights, 2), heads)  # [B, H, 1, d_mem / H]
            context = tf.reshape(context, [shape[0], memory.shape[-1]])
        return context, weights
