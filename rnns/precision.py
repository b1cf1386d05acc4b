"""The compute precision of matrix products: float32 (the default), bfloat16 or float16.

Only matrix products run in the low precision: their inputs are cast down, the product runs
(oneDNN and cuBLAS accumulate in float32 inside the kernel) and the result is cast back up.
Everything else stays float32: variables, optimizer state and checkpoints (so any precision
loads any checkpoint), layer norm, the softmax and the loss, and the element-wise gates and
the recurrent state carried across time steps. For those, float32 is both more accurate and
faster (measured: an LRN state rounded to bfloat16 at every step drifts about twice as far
from float64 as a float32 state fed the same bfloat16 projections, 0.56% against 0.31% after
50 steps with long memory; element-wise sigmoid/add/mul chains run 2.7x slower in bfloat16 on
this AVX-512 CPU). Gradients come back float32 too, so a weight read at every step of a loop
sums its per-step gradients in float32 (measured on 50 bfloat16 terms: 0.14% relative error
summed in float32, 0.8% summed in bfloat16).

The setting is read while a graph is built, not when it runs:

    with precision.compute("bfloat16"):
        logits = model.decode(...)     # ops.matmul / linear / precision.matmul inside
"""

import contextlib
import weakref

import tensorflow as tf

DTYPES = {"float32": tf.float32, "bfloat16": tf.bfloat16, "float16": tf.float16}

_stack = ["float32"]
_copies = weakref.WeakKeyDictionary()  # graph -> {(name of x, dtype): name of its copy}


@contextlib.contextmanager
def compute(name):
    """Build the products made inside the block in precision `name` (see DTYPES)."""
    if name not in DTYPES:
        raise ValueError(f"unknown precision {name!r}: use {', '.join(DTYPES)}")
    _stack.append(name)
    try:
        yield
    finally:
        _stack.pop()


def dtype():
    """The compute dtype of products built now."""
    return DTYPES[_stack[-1]]


def cast_once(x, to):
    """x (a variable or tensor) cast to `to`, made once per graph in the graph x belongs to.

    A weight read inside a loop body is then cast once per run, outside the loop, instead of
    once per step. No gradient flows through the copy: the products' custom gradients return
    the float32 weight's gradient directly (and tf.custom_gradient rejects a closure that reads
    a variable unless the read is cut off from the gradient).
    """
    if x.dtype.base_dtype == to:
        return x
    graph = x.graph
    # Names, not tensors: a tensor would keep its graph (the weak key) alive for ever.
    copies = _copies.setdefault(graph, {})
    key = (x.name, to.name)
    if key not in copies:
        # In x's graph, outside whatever loop body or control context is being built now.
        with graph.as_default(), graph.control_dependencies(None):
            copies[key] = tf.stop_gradient(tf.cast(x, to)).name
    return graph.get_tensor_by_name(copies[key])


def matmul(a, b, transpose_b=False):
    """a @ b (b transposed with transpose_b) in the compute precision, float32 result.

    For the products outside ops.linear: the tied output layer and the attention context
    (batched products work too). b is cast once per graph (cast_once); the gradients are
    computed in the compute precision and returned as float32.
    """
    low = dtype()
    if low == tf.float32:
        return tf.matmul(a, b, transpose_b=transpose_b)
    b_low = cast_once(b, low)

    @tf.custom_gradient
    def forward(a, b):
        a_low = tf.cast(a, low)
        y = tf.matmul(a_low, b_low, transpose_b=transpose_b)

        def grad(dy):
            dy = tf.cast(dy, low)
            if transpose_b:
                da = tf.matmul(dy, b_low)
                db = tf.matmul(dy, a_low, transpose_a=True)
            else:
                da = tf.matmul(dy, b_low, transpose_b=True)
                db = tf.matmul(a_low, dy, transpose_a=True)
            return tf.cast(da, a.dtype), tf.cast(db, b.dtype)

        return tf.cast(y, a.dtype), grad

    return forward(a, b)
