"""Layer machinery shared by the cells, the runners and the model: dense maps and layer norm."""

import tensorflow as tf

from rnns import precision

v1 = tf.compat.v1

# The original toolkit's initialiser for every weight matrix; biases start at zero.
DEFAULT_INIT = v1.random_uniform_initializer(-0.08, 0.08)


def _dense(x, w, b=None, w_t=None):
    """x [N, d_in] @ w (+ b) with a gradient that never multiplies by a transposed operand.

    TF's own MatMul gradient computes dy w^T with transpose_b=True, which oneDNN runs up to 9x
    slower than a plain product for the small per-step products of a loop (measured: 64 x 1024
    by 1024 x 1024, 3.0 vs 0.34 ms). Here dx = dy w_t with w_t = w^T materialised once:
    passed in by callers inside a loop (so it is not redone every step), else built with the
    gradient. cuBLAS transposes for free, so on a GPU this gains nothing and holds a copy of
    the weights through the step; kept for one code path (docs/DESIGN.md, Running on GPUs).

    In a reduced precision (rnns.precision) the product and both gradient products run in
    that dtype: x and dy are cast per call, w and w_t once per graph (outside any loop); the
    result, the bias and the gradients stay float32. In float32 no cast is built at all.
    """
    low = precision.dtype()
    w_low = w_t_low = None
    if low != tf.float32:
        w_low = precision.cast_once(w, low)
        w_t_low = None if w_t is None else precision.cast_once(w_t, low)

    @tf.custom_gradient
    def forward(x, w, *b):
        x_low = tf.cast(x, low)  # no op in float32
        w_c = w if w_low is None else w_low
        y = tf.cast(tf.matmul(x_low, w_c), x.dtype)
        if b:
            y = tf.nn.bias_add(y, b[0])

        def grad(dy):
            dy_low = tf.cast(dy, low)
            if w_low is None:
                w_t_c = tf.transpose(w) if w_t is None else w_t
            else:
                w_t_c = tf.transpose(w_low) if w_t_low is None else w_t_low
            dx = tf.cast(tf.matmul(dy_low, w_t_c), x.dtype)
            dw = tf.cast(tf.matmul(x_low, dy_low, transpose_a=True), w.dtype)
            return (dx, dw, tf.reduce_sum(dy, 0)) if b else (dx, dw)

        return y, grad

    return forward(x, w) if b is None else forward(x, w, b)


def matmul(x, w, b=None, w_t=None):
    """x [..., d_in] @ w [d_in, d_out] (+ b) -> [..., d_out] for rank-2 and rank-3 inputs.

    Rank 3 is flattened to one big matrix product, the shape oneDNN runs fastest. `w_t`, the
    transpose of w computed outside any loop, makes the gradient cheaper inside loops.
    """
    if x.shape.rank == 2:
        return _dense(x, w, b, w_t)
    shape = tf.shape(x)
    y = _dense(tf.reshape(x, [-1, shape[-1]]), w, b, w_t)
    y = tf.reshape(y, tf.concat([shape[:-1], tf.shape(w)[-1:]], 0))
    # Keep the static shape the reshape loses (batch/time may be unknown, widths are not).
    y.set_shape(x.shape[:-1].concatenate(w.shape[-1:]))
    return y


def linear(x, out_size, scope, bias=True, initializer=None):
    """x[..., d_in] @ W[d_in, out_size] (+ b), variables `W` and `b` under `scope`."""
    with v1.variable_scope(scope, reuse=v1.AUTO_REUSE):
        w = v1.get_variable("W", [x.shape[-1], out_size], initializer=initializer or DEFAULT_INIT)
        b = v1.get_variable("b", [out_size], initializer=v1.zeros_initializer()) if bias else None
    return matmul(x, w, b)


def layer_norm_params(size, scope):
    """The `gain` (ones) and `offset` (zeros) variables of a layer norm of width `size`."""
    with v1.variable_scope(scope, reuse=v1.AUTO_REUSE):
        gain = v1.get_variable("gain", [size], initializer=v1.ones_initializer())
        offset = v1.get_variable("offset", [size], initializer=v1.zeros_initializer())
    return gain, offset


def normalize(x, gain, offset, blocks=1, epsilon=1e-6):
    """Layer norm of x over the last axis with given parameters.

    With blocks > 1 the last axis is cut into `blocks` equal parts (e.g. the [p|q|r] of a fused
    projection), each normalised on its own; gain/offset still span the whole axis, so every
    block has its own parameters.
    """
    if blocks > 1:
        static, width = x.shape, x.shape[-1]
        shape = tf.shape(x)
        x = tf.reshape(x, tf.concat([shape[:-1], [blocks, width // blocks]], 0))
    x = _standardize(x, epsilon)
    if blocks > 1:
        x = tf.reshape(x, shape)
        x.set_shape(static)
    return x * gain + offset


def _standardize(x, epsilon):
    """(x - mean) / sqrt(var + epsilon) over the last axis, with its gradient in closed form:
    dx = r (dy - mean(dy) - x_hat mean(dy x_hat)), r = 1 / sqrt(var + epsilon). Autodiff of the
    moments builds about twice the ops and passes over x (measured on the cells' [3000, 3 x 256]
    projections, forward and backward: 1.6x faster)."""

    @tf.custom_gradient
    def forward(x):
        centred = x - tf.reduce_mean(x, -1, keepdims=True)
        r = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), -1, keepdims=True) + epsilon)
        x_hat = centred * r

        def grad(dy):
            mean_dy = tf.reduce_mean(dy, -1, keepdims=True)
            mean_dy_x = tf.reduce_mean(dy * x_hat, -1, keepdims=True)
            return r * (dy - mean_dy - x_hat * mean_dy_x)

        return x_hat, grad

    return forward(x)


def layer_norm(x, scope, epsilon=1e-6):
    """Layer norm over the last axis, variables `gain` and `offset` under `scope`."""
    gain, offset = layer_norm_params(x.shape[-1], scope)
    return normalize(x, gain, offset, epsilon=epsilon)
