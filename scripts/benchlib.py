"""Helpers shared by the benchmarks (bench_cells, bench_model, bench_decode, bench_data).

Timing (median of runs after warm-up), this machine's fp32 matrix-multiply peak, peak resident
memory, child processes, result files, and the sample data the model benchmarks read.
Benchmarks, not tests: nothing here is imported by the toolkit. TensorFlow is imported only by
the functions that need it, so the data benchmark measures its memory without it.
"""

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

# The paper's figures (DESIGN.md, WMT14 En-De, one GPU): seconds per training batch and ms per
# decoded sentence. No LSTM row in the paper.
PAPER = {
    "gru": (2.67, 45.35),
    "atr": (1.33, 34.40),
    "sru": (1.34, 42.84),
    "lrn": (0.99, 36.50),
    "olrn": (1.15, 40.19),
    "lstm": (None, None),
}
CELLS = ["gru", "lstm", "atr", "sru", "lrn", "olrn"]
SHOWN = {"gru": "GRU", "lstm": "LSTM", "atr": "ATR", "sru": "SRU", "lrn": "LRN", "olrn": "oLRN"}

# (input projection width, recurrent projection width) of each cell in units of the hidden
# size d: per token, a cell multiplies its input by a [d_in, n_in * d] matrix outside the loop
# and its previous state by a [d, n_rec * d] one inside it.
WIDTHS = {
    "lrn": (3, 0),
    "olrn": (4, 0),
    "sru": (4, 0),
    "atr": (1, 1),
    "gru": (3, 3),
    "lstm": (4, 4),
}


def times_ms(run, warmup, runs):
    """Wall-clock ms of `runs` calls of run() after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - start))
    return times


def median(values):
    return statistics.median(values)


def session(graph=None, config=None):
    import tensorflow as tf

    return tf.compat.v1.Session(graph=graph or tf.compat.v1.get_default_graph(), config=config)


def matmul_peak(warmup=2, runs=5, sizes=(2048, 4096), config=None):
    """Best fp32 GFLOP/s of a big square matmul (graph mode, the models' conditions).

    The fastest run, not the median: a peak is what the machine can do, and other processes
    on a shared machine only ever slow a run down. `config` is the session ConfigProto (thread
    settings) of the code being compared with it.
    """
    import tensorflow as tf

    v1 = tf.compat.v1
    best = 0.0
    for n in sizes:
        with tf.Graph().as_default() as graph:
            a = tf.Variable(tf.random.uniform([n, n]))
            b = tf.Variable(tf.random.uniform([n, n]))
            op = tf.reduce_sum(tf.matmul(a, b))  # a scalar fetch: no copy of the result
            with session(graph, config) as sess:
                sess.run(v1.global_variables_initializer())
                ms = min(times_ms(lambda: sess.run(op), warmup, runs))  # noqa: B023
        best = max(best, 2 * n**3 / ms / 1e6)
    return best


def peak_rss_mb():
    """This process's peak resident memory in MiB: VmHWM, or ru_maxrss where /proc is missing
    (ru_maxrss survives exec, so a child started by a big parent would report the parent's)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(script, args, what):
    """Run `python script args...` (a benchmark's --child mode, so each measurement has a
    process of its own) and return the JSON object on its last stdout line."""
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{what} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine():
    """What the figures were measured on, for the result files and the README table."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def bf16_units():
    """The CPU's bfloat16 matrix instructions (from /proc/cpuinfo flags): AMX tiles do several
    times float32's work per cycle, avx512_bf16 dot products at most about twice."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line.split(":", 1)[1].split() for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown (no /proc/cpuinfo flags)"
    found = [f for f in ("amx_bf16", "amx_tile", "avx512_bf16") if f in flags]
    return " ".join(found) if found else "none (bfloat16 is converted in software)"


def write_results(path, payload):
    """Save a benchmark's results (with date and machine) for scripts/reproduce_table.py."""
    import tensorflow as tf

    record = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "tensorflow": tf.__version__,
        **payload,
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, path)
    print(f"results written to {path}")


def load_avg():
    return os.getloadavg()[0]


# -- sample data ---------------------------------------------------------------------------


def check_data(data_dir, names=("vocab.en", "vocab.de", "train.bpe.en", "test.bpe.en")):
    """Exits with a clear message when the prepared sample data is missing."""
    missing = [n for n in names if not os.path.exists(os.path.join(data_dir, n))]
    if missing:
        raise SystemExit(
            f"{data_dir}: no prepared sample data ({', '.join(missing)} missing). Run "
            f"`bash scripts/prepare_sample.sh {data_dir}` or point --data to a prepared copy."
        )


def train_batch(data_dir, src_vocab, tgt_vocab, tokens=2000, max_len=80, pool=20000):
    """One fixed training batch of real sample sentences, as token batching builds them.

    The first `pool` training pairs (both sides at most max_len subwords) are sorted by length,
    like TrainStream's length-sorted buffers, and the batch is the run of consecutive pairs from
    the token-weighted median length on whose source side, padded and EOS included, holds at
    most `tokens`.
    Returns (src [B, S], tgt [B, T]) int32 with EOS and PAD as the data pipeline pads them.
    """
    from zero.data import _pad, read_lines

    pairs = []
    src_lines = read_lines(os.path.join(data_dir, "train.bpe.en"))
    tgt_lines = read_lines(os.path.join(data_dir, "train.bpe.de"))
    for (_, s), (_, t) in zip(src_lines, tgt_lines):  # noqa: B905 (files are parallel)
        s, t = s.split(), t.split()
        if 0 < len(s) <= max_len and 0 < len(t) <= max_len:
            pairs.append((src_vocab.encode(s), tgt_vocab.encode(t)))
        if len(pairs) >= pool:
            break
    pairs.sort(key=lambda p: (len(p[0]), len(p[1])))
    # Token batches are cut from length-sorted buffers, so a batch's length is distributed as
    # the tokens are: start at the token-weighted median (half of all source tokens are in
    # shorter sentences), the most typical batch of a training run.
    cumulative = np.cumsum([len(p[0]) for p in pairs])
    start = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    end = start + 1
    while end < len(pairs) and (end + 1 - start) * (len(pairs[end][0]) + 1) <= tokens:
        end += 1
    chosen = pairs[start:end]

    def padded(side):
        seqs = [p[side] for p in chosen]
        lens = np.array([len(x) for x in seqs], np.int32)
        flat = np.array([i for x in seqs for i in x], np.int32)
        offsets = np.concatenate([[0], np.cumsum(lens[:-1])]).astype(np.int64)
        return _pad(flat, offsets, lens, np.arange(len(seqs)))[0]

    return padded(0), padded(1)
