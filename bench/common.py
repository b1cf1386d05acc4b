"""Helpers shared by the benchmarks: timing (median of runs after warm-up), this machine's fp32
matrix-multiply peak, peak resident memory, the machine's description and bfloat16 units,
result files, load average, the sample data checks, the fixed training batch, the model
configs of the paper and the sample size, cell names and their display names.

TensorFlow (and rnns, which imports it) is imported only by the functions that need it, so
`bench data` measures the input pipeline's memory without it.
"""

import datetime
import json
import os
import platform
import resource
import statistics
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "prepared/sample"

# How the tables name and order the cells; a cell missing here is shown by its registry name,
# after these.
SHOWN = {"gru": "GRU", "lstm": "LSTM", "atr": "ATR", "sru": "SRU", "lrn": "LRN", "olrn": "oLRN"}
TABLE_ORDER = ("gru", "lstm", "atr", "sru", "lrn", "olrn")


def cell_names():
    """The registered cells in registry order (lrn, olrn, gru, lstm, atr, sru, ...)."""
    from rnns import CELLS

    return list(CELLS.names())


def table_order():
    """The registered cells in table order: the paper's (TABLE_ORDER), then any others."""
    names = cell_names()
    return [c for c in TABLE_ORDER if c in names] + [c for c in names if c not in TABLE_ORDER]


def shown(cell):
    return SHOWN.get(cell, cell)


# -- options several benchmarks share --------------------------------------------------------


def add_cells_argument(parser, default):
    parser.add_argument(
        "--cells",
        nargs="+",
        metavar="CELL",
        default=default,
        help=f"cells to measure (default: {' '.join(default)})",
    )


def add_data_arguments(parser, sets_help):
    """--data (the prepared sample) and --set (config overrides, `sets_help` says of what)."""
    parser.add_argument("--data", default=DATA, help=f"prepared sample data (default {DATA})")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="sets",
        help=f"config override for {sets_help} (repeatable)",
    )


def add_model_arguments(parser, threads=0):
    """--data, --set and --threads: the sample data and the config of every model."""
    add_data_arguments(parser, "every model, e.g. hidden_size=64")
    parser.add_argument(
        "--threads",
        type=int,
        default=threads,
        help=f"the config key `threads` (0 = TensorFlow's choice; default {threads})",
    )


def check_cells(cells):
    """Exits naming the unknown cells (before any child process is started)."""
    known = cell_names()
    unknown = [c for c in cells if c not in known]
    if unknown:
        raise SystemExit(f"unknown cell(s) {' '.join(unknown)}: valid are {' '.join(known)}")


# -- measuring -------------------------------------------------------------------------------


def times_ms(run, warmup, runs, cpu=None):
    """Wall-clock ms of `runs` calls of run() after `warmup` untimed ones. With a list `cpu`,
    the process's CPU ms (all its threads) of every timed call are appended to it: on a shared
    machine the wall clock also counts other jobs' time slices, the CPU clock hardly."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        times.append(1000 * (time.perf_counter() - start))
        if cpu is not None:
            cpu.append(1000 * (time.process_time() - start_cpu))
    return times


def median(values):
    return statistics.median(values)


def session(graph=None, config=None):
    import tensorflow as tf

    return tf.compat.v1.Session(graph=graph or tf.compat.v1.get_default_graph(), config=config)


def session_config(threads):
    """The toolkit's session ConfigProto for `threads` (what the models run with)."""
    from zero import config as config_lib
    from zero.session import session_config as proto

    return proto(config_lib.Config(threads=threads))


def matmul_peak(warmup=2, runs=5, sizes=(2048, 4096), config=None):
    """Best fp32 GFLOP/s of a big square matmul (graph mode, the models' conditions).

    The fastest run, not the median: a peak is what the machine can do, and other processes
    on a shared machine only ever slow a run down. `config` is the session ConfigProto (thread
    settings) of the code being compared with it.
    """
    import tensorflow as tf

    best = 0.0
    for n in sizes:
        with tf.Graph().as_default() as graph:
            a = tf.Variable(tf.random.uniform([n, n]))
            b = tf.Variable(tf.random.uniform([n, n]))
            op = tf.reduce_sum(tf.matmul(a, b))  # a scalar fetch: no copy of the result
            with session(graph, config) as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
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


def load_avg():
    return os.getloadavg()[0]


# -- the machine and the results ---------------------------------------------------------------


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
    """Save a benchmark's results (with date and machine) for `python -m bench table`."""
    import tensorflow as tf

    from zero.textio import atomic_write_text

    record = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "tensorflow": tf.__version__,
        **payload,
    }
    atomic_write_text(path, json.dumps(record, indent=1))
    print(f"results written to {path}")


def fmt(value, spec, none="-"):
    """format(value, spec), or `none` right-aligned to the spec's width."""
    if value is None:
        width = spec.split(".")[0]
        return format(none, f">{width}") if width else none
    return format(value, spec)


# -- sample data and models --------------------------------------------------------------------


def check_data(data_dir, names=("vocab.en", "vocab.de", "train.bpe.en", "test.bpe.en")):
    """Exits with a clear message when the prepared sample data is missing."""
    missing = [n for n in names if not os.path.exists(os.path.join(data_dir, n))]
    if missing:
        raise SystemExit(
            f"{data_dir}: no prepared sample data ({', '.join(missing)} missing). Run "
            f"`bash scripts/prepare_sample.sh {data_dir}` or point --data to a prepared copy."
        )


# Random weights decode every sentence to its maximum length: the benchmarks that time them keep
# the maximum the tables were measured with (source + 50), whatever the configs decode with, and
# the exact search (early stop ends sentences where the weights' scores say, so the steps would
# no longer be the tables').
FIXED_STEPS = ["max_decode_factor=1.0", "max_decode_extra=50", "decode_early_stop=false"]


def model_config(cell, size, data_dir, sets=(), threads=0):
    """configs/wmt14_<cell>.yaml with the paper's vocabulary sizes (size "paper": built from
    sizes, no WMT data needed) or configs/sample_<cell>.yaml with the sample vocabularies of
    data_dir (size "sample"); no dev set; `sets` (key=value) last."""
    from bench.paper import VOCAB
    from zero import config as config_lib

    common = ["dev_src=null", "dev_tgt=null", "dev_ref=null", f"threads={threads}"]
    if size == "paper":
        own = [f"src_vocab_size={VOCAB}", f"tgt_vocab_size={VOCAB}"]
        own += ["src_vocab=null", "tgt_vocab=null"]
        path = f"configs/wmt14_{cell}.yaml"
    elif size == "sample":
        own = [f"src_vocab={data_dir}/vocab.en", f"tgt_vocab={data_dir}/vocab.de"]
        path = f"configs/sample_{cell}.yaml"
    else:
        raise SystemExit(f"unknown size {size!r}: paper or sample")
    return config_lib.load(os.path.join(ROOT, path), own + common + FIXED_STEPS + list(sets))


def _read_pairs(data_dir, max_len, pool):
    """The first `pool` training pairs with both sides of 1..max_len subwords, as token lists."""
    from zero.textio import read_lines

    pairs = []
    src_lines = read_lines(os.path.join(data_dir, "train.bpe.en"))
    tgt_lines = read_lines(os.path.join(data_dir, "train.bpe.de"))
    for (_, s), (_, t) in zip(src_lines, tgt_lines):  # noqa: B905 (files are parallel)
        s, t = s.split(), t.split()
        if 0 < len(s) <= max_len and 0 < len(t) <= max_len:
            pairs.append((s, t))
        if len(pairs) >= pool:
            break
    return pairs


def test_sources(data_dir, src_vocab, sentences):
    """The first `sentences` sentences of the sample test set (test.bpe.en) as one padded
    batch of source ids [B, S], as test mode batches them."""
    from zero.batching import EvalBatches

    path = os.path.join(data_dir, "test.bpe.en")
    return next(iter(EvalBatches(path, src_vocab, batch_size=sentences, limit=sentences)))["src"]


def train_batch(data_dir, src_vocab, tgt_vocab, tokens=2000, max_len=80, pool=20000):
    """One fixed training batch of real sample sentences, as token batching builds them.

    The first `pool` training pairs (both sides at most max_len subwords) are sorted by length,
    like TrainStream's length-sorted buffers, and the batch is the run of consecutive pairs from
    the token-weighted median length on whose source side, padded and EOS included, holds at
    most `tokens`.
    Returns (src [B, S], tgt [B, T]) int32 with EOS and PAD as the data pipeline pads them.
    """
    from zero.batching import encode_rows, pad_rows

    pairs = _read_pairs(data_dir, max_len, pool)
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
    rows = np.arange(len(chosen))
    src = pad_rows(*encode_rows([p[0] for p in chosen], src_vocab), rows)[0]
    tgt = pad_rows(*encode_rows([p[1] for p in chosen], tgt_vocab), rows)[0]
    return src, tgt


def write_text(path, text):
    """A file the benchmarks write (through zero.textio: atomic, directories made)."""
    from zero.textio import atomic_write_text

    atomic_write_text(path, text)
