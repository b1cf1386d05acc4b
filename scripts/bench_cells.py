"""Times forward+backward of every rnns cell beside Keras's GRU/LSTM (reference only).

Usage: bash scripts/bench_cells.sh   (environment variables below shrink it for a smoke test)
    BENCH_SIZES="512 1024"  input = hidden sizes      BENCH_RUNS=5   timed runs (median)
    BENCH_BATCH=64  BENCH_STEPS=50                   BENCH_WARMUP=2 untimed runs first
    BENCH_CELLS="lrn olrn gru lstm atr sru"          BENCH_KERAS=1  (0 skips Keras)

FLOPs are counted analytically from the matrix products only (element-wise work is ignored):
per token the forward pass does 2*d_in*n_in + 2*d*n_rec multiply-adds-as-2-FLOPs, where n_in and
n_rec are the widths of the input and recurrent projections (LRN 3d and 0, oLRN 4d/0, SRU 4d/0,
ATR d/d, GRU 3d/3d, LSTM 4d/4d; Keras's GRU and LSTM as ours). The backward pass computes two
products of the same size per forward product (the gradient of the input and of the weight), so
forward+backward = 3 x forward. The peak is the best GFLOP/s of a large square tf.matmul in
the same process, so "% peak" says how much of the machine's matrix throughput a cell uses.

Our cells run the way the toolkit runs them: TF1 graph mode (eager disabled), tf.compat.v1
Session. Keras runs the way a Keras user runs it: eager TF2 with a tf.function train step, in a
child process (Keras 3 does not build into TF1 graphs); both are timed in the same invocation.
"""

import json
import os
import statistics
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "512 1024").split()]
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
BATCH = int(os.environ.get("BENCH_BATCH", "64"))
STEPS = int(os.environ.get("BENCH_STEPS", "50"))
CELLS = os.environ.get("BENCH_CELLS", "lrn olrn gru lstm atr sru").split()
KERAS = os.environ.get("BENCH_KERAS", "1") != "0"

# benchlib.WIDTHS, and the Keras cells (the same products as ours).
WIDTHS = {**benchlib.WIDTHS, "keras_gru": (3, 3), "keras_lstm": (4, 4)}


def gflop(name, size):
    """Forward+backward GFLOP of one batch (see the module docstring)."""
    n_in, n_rec = WIDTHS[name]
    forward = 2 * size * size * (n_in + n_rec) * BATCH * STEPS
    return 3 * forward / 1e9


def times_ms(run):
    return benchlib.times_ms(run, WARMUP, RUNS)


def median_ms(run):
    return statistics.median(times_ms(run))


def session():
    return benchlib.session()


def matmul_peak():
    """Best fp32 GFLOP/s of a big square matmul (benchlib.matmul_peak, shared with
    bench_model.py so that both compare with the same peak)."""
    return benchlib.matmul_peak(WARMUP, RUNS)


def time_ours(name, size):
    import rnns

    with tf.Graph().as_default():
        rng = np.random.RandomState(0)
        # Inputs in a variable so that nothing is constant-folded away.
        x = tf.Variable(rng.uniform(-1, 1, (BATCH, STEPS, size)).astype(np.float32))
        mask = tf.ones([BATCH, STEPS])
        cell = rnns.get_cell(name, size)
        outputs, _ = rnns.rnn(cell, x, mask)
        loss = tf.reduce_sum(outputs * rng.uniform(-1, 1, (BATCH, STEPS, size)).astype(np.float32))
        grads = tf.gradients(loss, tf.compat.v1.trainable_variables())
        # A scalar that needs every gradient (grappler may drop the work behind a tf.group of
        # stateless ops); the same fetch as the Keras step.
        train = tf.add_n([tf.reduce_sum(g) for g in grads])
        with session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return median_ms(lambda: sess.run(train))


def keras_child(sizes):
    """Runs in a child process with eager execution: Keras's own way."""
    import keras

    results = {}
    for size in sizes:
        for name, layer_cls in (("keras_gru", keras.layers.GRU), ("keras_lstm", keras.layers.LSTM)):
            rng = np.random.RandomState(0)
            x = tf.Variable(rng.uniform(-1, 1, (BATCH, STEPS, size)).astype(np.float32))
            weight = tf.constant(rng.uniform(-1, 1, (BATCH, STEPS, size)).astype(np.float32))
            layer = layer_cls(size, return_sequences=True)
            layer.build((BATCH, STEPS, size))

            @tf.function
            def step(layer=layer, x=x, weight=weight):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(layer(x) * weight)
                grads = tape.gradient(loss, layer.trainable_variables + [x])
                return tf.add_n([tf.reduce_sum(g) for g in grads])

            results[f"{name}:{size}"] = median_ms(lambda step=step: step().numpy())
    return results


def time_keras(sizes):
    cmd = [sys.executable, os.path.abspath(__file__), "--keras-child", json.dumps(sizes)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    tf.compat.v1.disable_eager_execution()
    print(f"batch {BATCH}, {STEPS} steps, median of {RUNS} runs after {WARMUP} warm-up")
    load = os.getloadavg()[0]
    peak = matmul_peak()
    keras = time_keras(SIZES) if KERAS else {}
    ours = {size: [(name, time_ours(name, size)) for name in CELLS] for size in SIZES}
    # Measured again at the end: the best of both is the least disturbed by other processes.
    peak = max(peak, matmul_peak())
    print(f"fp32 matmul peak (big tf.matmul): {peak:.1f} GFLOP/s")
    print(f"load average (1 min) at start {load:.2f}, at end {os.getloadavg()[0]:.2f}")
    speedup = None
    for size in SIZES:
        rows = list(ours[size])
        rows += [(k.split(":")[0], ms) for k, ms in keras.items() if k.endswith(f":{size}")]
        base = keras.get(f"keras_gru:{size}")
        print(f"\ninput = hidden = {size}")
        print(f"{'cell':<11} {'ms/batch':>9} {'GFLOP/s':>8} {'% peak':>7} {'vs Keras GRU':>13}")
        for name, ms in rows:
            rate = gflop(name, size) / ms * 1e3
            ratio = f"{base / ms:.2f}x" if base else "-"
            print(f"{name:<11} {ms:9.1f} {rate:8.1f} {100 * rate / peak:6.1f}% {ratio:>13}")
            if name == "lrn" and base:
                speedup = (size, base / ms)
    if speedup:
        print(f"LRN speedup over Keras GRU at hidden {speedup[0]}: {speedup[1]:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--keras-child":
        print(json.dumps(keras_child(json.loads(sys.argv[2]))))
    else:
        main()
