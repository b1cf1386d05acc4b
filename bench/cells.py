"""Forward+backward speed of every rnns cell beside Keras's GRU/LSTM.

    python -m bench cells [--sizes 512 1024] [--cells lrn gru ...] [--batch 64] [--steps 50]
        [--runs 5] [--warmup 2] [--no-keras]
    smoke run: python -m bench cells --sizes 64 --steps 5 --runs 1 --warmup 1 --cells lrn

FLOPs are counted analytically from the matrix products only (element-wise work is ignored):
per token the forward pass does 2*d_in*n_in + 2*d*n_rec multiply-adds-as-2-FLOPs, where n_in and
n_rec are the widths of the input and recurrent projections (bench/flops.py WIDTHS: LRN 3d and
0, oLRN 4d/0, SRU 4d/0, ATR d/d, GRU 3d/3d, LSTM 4d/4d; Keras's GRU and LSTM as ours);
forward+backward = 3 x forward. The peak is the best GFLOP/s of a large square tf.matmul in the
same process, so "% peak" says how much of the machine's matrix throughput a cell uses.

Our cells run the way the toolkit runs them: TF1 graph mode (eager disabled), tf.compat.v1
Session. Keras runs the way a Keras user runs it: eager TF2 with a tf.function train step, in a
child process (Keras 3 does not build into TF1 graphs); both are timed in the same invocation.
"""

import argparse

import numpy as np
import tensorflow as tf

from bench import common, flops
from bench.child import run_in_child


def add_arguments(parser):
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=int,
        default=[512, 1024],
        metavar="N",
        help="input = hidden sizes (default: 512 1024)",
    )
    common.add_cells_argument(parser, common.cell_names())
    parser.add_argument("--batch", type=int, default=64, help="sentences (default 64)")
    parser.add_argument("--steps", type=int, default=50, help="time steps (default 50)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs, median (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument(
        "--keras",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time Keras's GRU and LSTM (--no-keras skips them)",
    )


def gflop(name, size, batch, steps):
    """Forward+backward GFLOP of one batch (see the module docstring)."""
    return flops.cell_train_flops(name, size, batch, steps) / 1e9


def time_ours(name, size, batch, steps, warmup, runs):
    """Median ms of a forward+backward pass of our cell `name`, in this (graph-mode) process."""
    import rnns

    with tf.Graph().as_default():
        rng = np.random.RandomState(0)
        # Inputs in a variable so that nothing is constant-folded away.
        x = tf.Variable(rng.uniform(-1, 1, (batch, steps, size)).astype(np.float32))
        mask = tf.ones([batch, steps])
        cell = rnns.get_cell(name, size)
        outputs, _ = rnns.rnn(cell, x, mask)
        loss = tf.reduce_sum(outputs * rng.uniform(-1, 1, (batch, steps, size)).astype(np.float32))
        grads = tf.gradients(loss, tf.compat.v1.trainable_variables())
        # A scalar that needs every gradient (grappler may drop the work behind a tf.group of
        # stateless ops); the same fetch as the Keras step.
        train = tf.add_n([tf.reduce_sum(g) for g in grads])
        with common.session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return common.median(common.times_ms(lambda: sess.run(train), warmup, runs))


def keras_times(sizes, batch, steps, warmup, runs):
    """Child function (eager, Keras's own way): {"keras_gru:SIZE": median ms, ...}."""
    import keras

    results = {}
    for size in sizes:
        for name, layer_cls in (("keras_gru", keras.layers.GRU), ("keras_lstm", keras.layers.LSTM)):
            rng = np.random.RandomState(0)
            x = tf.Variable(rng.uniform(-1, 1, (batch, steps, size)).astype(np.float32))
            weight = tf.constant(rng.uniform(-1, 1, (batch, steps, size)).astype(np.float32))
            layer = layer_cls(size, return_sequences=True)
            layer.build((batch, steps, size))

            @tf.function
            def step(layer=layer, x=x, weight=weight):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(layer(x) * weight)
                grads = tape.gradient(loss, layer.trainable_variables + [x])
                return tf.add_n([tf.reduce_sum(g) for g in grads])

            times = common.times_ms(lambda step=step: step().numpy(), warmup, runs)
            results[f"{name}:{size}"] = common.median(times)
    return results


def print_size(args, size, ours, keras, peak):
    """The table of one size; returns LRN's speedup over Keras's GRU (None without either)."""
    rows = list(ours)
    rows += [(k.split(":")[0], ms) for k, ms in keras.items() if k.endswith(f":{size}")]
    base = keras.get(f"keras_gru:{size}")
    print(f"\ninput = hidden = {size}")
    print(f"{'cell':<11} {'ms/batch':>9} {'GFLOP/s':>8} {'% peak':>7} {'vs Keras GRU':>13}")
    speedup = None
    for name, ms in rows:
        rate = gflop(name, size, args.batch, args.steps) / ms * 1e3
        ratio = f"{base / ms:.2f}x" if base else "-"
        print(f"{name:<11} {ms:9.1f} {rate:8.1f} {100 * rate / peak:6.1f}% {ratio:>13}")
        if name == "lrn" and base:
            speedup = base / ms
    return speedup


def main(args):
    common.check_cells(args.cells)
    tf.compat.v1.disable_eager_execution()
    print(
        f"batch {args.batch}, {args.steps} steps, median of {args.runs} runs after "
        f"{args.warmup} warm-up"
    )
    load = common.load_avg()
    peak = common.matmul_peak(args.warmup, args.runs)
    timing = {"batch": args.batch, "steps": args.steps, "warmup": args.warmup, "runs": args.runs}
    keras = run_in_child(keras_times, sizes=args.sizes, **timing) if args.keras else {}
    ours = {
        size: [(name, time_ours(name, size, **timing)) for name in args.cells]
        for size in args.sizes
    }
    # Measured again at the end: the best of both is the least disturbed by other processes.
    peak = max(peak, common.matmul_peak(args.warmup, args.runs))
    print(f"fp32 matmul peak (big tf.matmul): {peak:.1f} GFLOP/s")
    print(f"load average (1 min) at start {load:.2f}, at end {common.load_avg():.2f}")
    speedup = None
    for size in args.sizes:
        found = print_size(args, size, ours[size], keras, peak)
        speedup = (size, found) if found else speedup
    if speedup:
        print(f"LRN speedup over Keras GRU at hidden {speedup[0]}: {speedup[1]:.2f}x")
