"""The attention interface: what the conditional RNN asks of any attention (rnns/rnn.py).

An attention has variables made once per graph (`build`), keys computed once per memory outside
the decoder loop (`precompute_keys`), and per step scores of a query against those keys
(`scores`). Masking, the softmax and the weighted sum of the memory are the same for every
attention and live here. A new attention is one file with a subclass holding its `_build`,
`_keys` and `scores`, plus one `register` line in rnns/__init__.py (docs/DESIGN.md, "Seams").
"""

import tensorflow as tf

from rnns import precision
from rnns.cell import root_graph
from rnns.ops import DEFAULT_INIT, matmul

v1 = tf.compat.v1

# Score of a masked memory position: large and negative rather than -inf, so that a fully
# masked row gives uniform weights instead of NaN.
MASKED_SCORE = -1e9


def mask_bias(memory_mask):
    """memory_mask [B, S] (1 = a position to attend to) -> [B, S] added to the scores: 0 or
    MASKED_SCORE. Made once per memory: a step then adds it instead of rebuilding a boolean
    mask and selecting. A masked score lands about 1e9 below every unmasked one, so its weight
    is exactly 0 as when set to MASKED_SCORE (a fully masked row, which a source with its EOS
    never gives, is uniform while its scores stay under 32, half the float32 spacing there)."""
    return (1.0 - tf.cast(memory_mask, tf.float32)) * MASKED_SCORE


class Attention:
    """Base class. With num_heads = H the memory's d_mem units are split into H equal parts;
    head h scores with its own part of the keys and averages its part of the memory; the
    context is the concatenation of the heads' contexts."""

    name = "attention"

    def __init__(self, hidden_size, num_heads=1, scope="attention", initializer=None):
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by {num_heads} heads")
        self.hidden_size = int(hidden_size)
        self.num_heads = int(num_heads)
        self.scope = scope
        self.initializer = initializer or DEFAULT_INIT
        self.memory_size = None
        self.variables = []
        self._graph = None

    def build(self, memory_size, query_size=None):
        """Creates the variables (once per graph, outside any loop); query_size defaults to d."""
        memory_size = int(memory_size)
        if self._graph is root_graph():
            if memory_size != self.memory_size:
                raise ValueError(f"attention built for memory size {self.memory_size}")
            return
        if memory_size % self.num_heads:
            raise ValueError(
                f"memory size {memory_size} is not divisible by {self.num_heads} heads"
            )
        with v1.variable_scope(self.scope, reuse=v1.AUTO_REUSE) as scope:
            self._build(memory_size, int(query_size or self.hidden_size))
            self.variables = v1.get_collection(v1.GraphKeys.GLOBAL_VARIABLES, scope.name + "/")
        self.memory_size = memory_size
        self._graph = root_graph()

    def _weight(self, name, shape):
        return v1.get_variable(name, shape, initializer=self.initializer)

    def _bias(self, name, shape):
        return v1.get_variable(name, shape, initializer=v1.zeros_initializer())

    def precompute_keys(self, memory):
        """memory [B, S, d_mem] -> keys [B, S, ...], once per memory (outside the loop)."""
        self.build(memory.shape[-1])
        return self._keys(memory)

    def __call__(self, query, keys, memory, memory_mask=None, bias=None):
        """query [B, d_query], or [B, K, d_query] for K queries per memory (the hypotheses of
        a beam: the memory and keys are not copied K times) -> (context [B, (K,) d_mem],
        weights [B, (K,) S] or [B, (K,) heads, S]). The mask as memory_mask [B, S] or as
        bias = mask_bias(memory_mask), made once outside a loop."""
        self.build(memory.shape[-1])
        if bias is None and memory_mask is not None:
            bias = mask_bias(memory_mask)
        with tf.name_scope(self.scope):  # its ops by name in traces
            return self._attend(query, keys, memory, bias)

    def _attend(self, query, keys, memory, bias):
        scores = self.scores(query, keys)
        if bias is not None:
            for _ in range(scores.shape.rank - 2):  # the beam and head axes
                bias = tf.expand_dims(bias, 1)
            scores += bias
        weights = tf.nn.softmax(scores)
        return self.context(weights, memory), weights

    def context(self, weights, memory):
        """The memory averaged by the weights: [B, (K,) d_mem]."""
        beam = weights.shape.rank == (3 if self.num_heads == 1 else 4)
        if self.num_heads == 1:
            if beam:
                return precision.matmul(weights, memory)  # [B, K, S] x [B, S, d_mem]
            return tf.squeeze(precision.matmul(tf.expand_dims(weights, 1), memory), 1)
        shape = tf.shape(memory)
        heads = tf.reshape(memory, [shape[0], shape[1], self.num_heads, -1])
        heads = tf.transpose(heads, [0, 2, 1, 3])  # [B, H, S, d_mem / H]
        if beam:  # weights [B, K, H, S] -> [B, H, K, S]
            context = precision.matmul(tf.transpose(weights, [0, 2, 1, 3]), heads)
            context = tf.transpose(context, [0, 2, 1, 3])  # [B, K, H, d_mem / H]
            return tf.reshape(context, [shape[0], -1, memory.shape[-1]])
        context = precision.matmul(tf.expand_dims(weights, 2), heads)  # [B, H, 1, d_mem / H]
        return tf.reshape(context, [shape[0], memory.shape[-1]])

    def project_values(self, memory, w):
        """memory [B, S, d_mem], w [d_mem, P] -> values [B, S, H * P] from which
        projected_context gets context x w: head h's P columns are its part of the memory
        times its rows of w (each head averages its own, the heads' averages add up). Made
        once per memory, outside the loop."""
        if self.num_heads == 1:
            return matmul(memory, w)
        heads, part = self.num_heads, memory.shape[-1] // self.num_heads
        shape = tf.shape(memory)
        m = tf.transpose(tf.reshape(memory, [-1, heads, part]), [1, 0, 2])  # [H, B * S, part]
        v = precision.matmul(m, tf.reshape(w, [heads, part, -1]))  # [H, B * S, P]
        v = tf.transpose(v, [1, 0, 2])
        return tf.reshape(v, [shape[0], shape[1], heads * w.shape[-1]])

    def projected_context(self, weights, values):
        """context(weights, memory) W from values = project_values(memory, W), without the
        [., d_mem] x [d_mem, P] product: the average of projected rows is the projected
        average, and with heads W's rows split as the context's units do."""
        context = self.context(weights, values)  # [B, (K,) H * P]
        if self.num_heads == 1:
            return context
        width = values.shape[-1] // self.num_heads
        shape = tf.concat([tf.shape(context)[:-1], [self.num_heads, width]], 0)
        return tf.reduce_sum(tf.reshape(context, shape), -2)

    @staticmethod
    def align(keys, query):
        """keys [B, S, ...] with an axis for the K queries when query is [B, K, d]."""
        return keys if query.shape.rank == 2 else tf.expand_dims(keys, 1)

    # -- what a subclass defines -------------------------------------------------------------

    def _build(self, memory_size, query_size):
        """Create the variables (inside the attention's variable scope)."""
        raise NotImplementedError

    def _keys(self, memory):
        raise NotImplementedError

    def scores(self, query, keys):
        """query [B, (K,) d_query], keys -> scores [B, (K,) S] (one head) or [B, (K,) H, S]."""
        raise NotImplementedError
