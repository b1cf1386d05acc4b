r"""Where the real training loop's time goes at the sample size, per cell.

    python -m bench loop [--data DIR] [--cells lrn gru] [--steps 200] [--warmup 30]
        [--batch-tokens 3000] [--trace 5] [--set KEY=VALUE ...] [--threads 0]

Each cell in its own process: the sample config's training graph (zero/train_graph.py) fed by
the real batch stream (zero/data.py) for --steps steps after --warmup, exactly as the trainer
runs it (dropout seeds, learning-rate feed), timing each step's parts: taking the next batch,
the session run (graph execution, feeding and fetching), and the Python around it. Then the
same number of steps on one fixed batch repeated (the shapes never change: what the batches'
varying shapes cost), and --trace traced steps of the stream summed by op type and model part.
Target tokens/s counts the target side with EOS, as the trainer's progress line does;
GFLOP/s counts the matrix products (bench/flops.py) against the machine's matmul peak.
"""

import collections
import os
import re
import time

import numpy as np
import tensorflow as tf

from bench import common, flops
from bench.child import run_in_child

v1 = tf.compat.v1
PARTS = (
    ("optimizer", r"Adam|clip_by_global_norm|global_norm|update_|Assign"),
    ("readout/logits/loss", r"readout|xent|GatherNd|ScatterNd|TensorScatter|output"),
    ("decoder loop", r"decoder/layer_\d+/while"),
    ("encoder loop", r"encoder/layer_\d+/while"),
    ("decoder other", r"decoder"),
    ("encoder other", r"encoder"),
    ("dropout", r"stateless_random|StatelessRandom|dropout"),
)


def add_arguments(parser):
    common.add_model_arguments(parser)
    common.add_cells_argument(parser, ["lrn", "gru"])
    parser.add_argument("--steps", type=int, default=200, help="timed steps (200)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps first (30)")
    parser.add_argument("--batch-tokens", type=int, default=3000, help="batch_tokens (3000)")
    parser.add_argument("--trace", type=int, default=5, help="traced steps (5)")


def _part(name):
    grad = "grad " if "gradients" in name else ""
    return grad + next((p for p, pattern in PARTS if re.search(pattern, name)), "other")


def _trace(sess, fetches, feed):
    """Summed op time of one traced run by op type and by model part (microseconds)."""
    meta = v1.RunMetadata()
    sess.run(fetches, feed, v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE), meta)
    by_type, by_part = collections.Counter(), collections.Counter()
    for dev in meta.step_stats.dev_stats:
        for node in dev.node_stats:
            m = re.search(r"= (\w+)\(", node.timeline_label)
            op = m.group(1) if m else "?"
            if node.node_name == "_SOURCE" or op in ("While", "StatelessWhile"):
                continue
            by_type[op] += node.all_end_rel_micros
            by_part[_part(node.node_name)] += node.all_end_rel_micros
    return by_type, by_part


def _steps(run, batches, n):
    """Run n steps; per step (data seconds, run seconds, total seconds, target tokens, flops)."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        batch = next(batches)
        got = time.perf_counter()
        run(batch)
        done = time.perf_counter()
        out.append((got - start, done - got, done - start, batch))
    return out


def measure(cell, data_dir, *, steps, warmup, batch_tokens, trace, sets=(), threads=0):
    """Child function: the loop's timings for one cell (see the module docstring)."""
    from zero import config as config_lib
    from zero.data import TrainStream
    from zero.session import make_session
    from zero.train_graph import TrainGraph
    from zero.vocab import load_vocabs

    v1.disable_eager_execution()
    path = os.path.join(common.ROOT, f"configs/sample_{cell}.yaml")
    overrides = [f"{k}={os.path.join(data_dir, os.path.basename(v))}" for k, v in _paths(path)]
    overrides += [f"batch_tokens={batch_tokens}", "dev_src=null", f"threads={threads}", *sets]
    config = config_lib.load(path, overrides)
    src_vocab, tgt_vocab, src_size, tgt_size = load_vocabs(config)
    graph = tf.Graph()
    with graph.as_default():
        g = TrainGraph(config, src_size, tgt_size)
        g.finalize(config)
    sess = make_session(config, graph)
    sess.run(g.init_op)
    fetches = [g.train_op, g.loss, g.lr, g.grad_norm]
    counter = iter(range(10**9))

    def feed(batch):
        return {
            g.src: batch["src"],
            g.tgt: batch["tgt"],
            g.dropout_seed: np.array([config.seed, next(counter)], np.int64),
        }

    def run(batch):
        sess.run(fetches, feed(batch))

    stream = TrainStream(
        config.train_src, config.train_tgt, src_vocab, tgt_vocab, batch_tokens, config.max_len
    )
    _steps(run, stream, warmup)
    real = _steps(run, stream, steps)
    traced = [_trace(sess, fetches, feed(next(stream))) for _ in range(trace)]
    stream.close()
    first = real[0][3]
    fixed = _steps(run, iter(lambda: first, None), steps)
    return {
        "params": g.num_params,
        "stream": _summary(config, real, tgt_size),
        "fixed": _summary(config, fixed, tgt_size),
        "by_type": dict(sum((t for t, _ in traced), collections.Counter())),
        "by_part": dict(sum((p for _, p in traced), collections.Counter())),
    }


def _paths(config_path):
    """The sample config's data files (to point them at --data)."""
    from zero import config as config_lib

    config = config_lib.load(config_path)
    keys = ("src_vocab", "tgt_vocab", "train_src", "train_tgt")
    return [(k, config[k]) for k in keys]


def _summary(config, steps, tgt_vocab):
    data = sum(s[0] for s in steps)
    run = sum(s[1] for s in steps)
    total = sum(s[2] for s in steps)
    tokens = sum(int(s[3]["num_tgt_tokens"]) for s in steps)
    work = 0.0
    for _, _, _, batch in steps:
        b, s_len = batch["src"].shape
        t_len = batch["tgt"].shape[1]
        tgt_tokens = int((batch["tgt"] > 0).sum())
        work += flops.train_step_flops(config, b, s_len, t_len, tgt_vocab, tgt_tokens)
    shapes = len({(s[3]["src"].shape, s[3]["tgt"].shape) for s in steps})
    return {
        "steps": len(steps),
        "tokens_per_s": tokens / total,
        "ms_per_step": 1000 * total / len(steps),
        "data_ms": 1000 * data / len(steps),
        "run_ms": 1000 * run / len(steps),
        "gflops": work / total / 1e9,
        "shapes": shapes,
    }


def main(args):
    common.check_cells(args.cells)
    common.check_data(args.data, ("vocab.en", "vocab.de", "train.bpe.en", "train.bpe.de"))
    data_dir = os.path.abspath(args.data)
    peak = common.matmul_peak(config=common.session_config(args.threads))
    print(
        f"sample-size training loop, batch_tokens {args.batch_tokens}, {args.steps} steps after "
        f"{args.warmup}; matmul peak {peak:.1f} GFLOP/s; load {common.load_avg():.2f}"
    )
    options = dict(steps=args.steps, warmup=args.warmup, batch_tokens=args.batch_tokens)
    options.update(trace=args.trace, sets=args.sets, threads=args.threads)
    results = {c: run_in_child(measure, cell=c, data_dir=data_dir, **options) for c in args.cells}
    _report(results, peak)


def _report(results, peak):
    print(
        f"\n{'cell':<5} {'batches':<7} {'tok/s':>8} {'ms/step':>8} {'data ms':>8} "
        f"{'run ms':>8} {'GFLOP/s':>8} {'%peak':>6} {'shapes':>6}"
    )
    for cell, r in results.items():
        for kind in ("stream", "fixed"):
            s = r[kind]
            print(
                f"{common.shown(cell):<5} {kind:<7} {s['tokens_per_s']:8.0f} "
                f"{s['ms_per_step']:8.1f} {s['data_ms']:8.2f} {s['run_ms']:8.1f} "
                f"{s['gflops']:8.1f} {100 * s['gflops'] / peak:5.1f}% {s['shapes']:6d}"
            )
    for cell, r in results.items():
        for title, table in (("op type", r["by_type"]), ("model part", r["by_part"])):
            total = sum(table.values())
            top = sorted(table.items(), key=lambda kv: -kv[1])[:12]
            shares = ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in top)
            print(f"\n{common.shown(cell)} by {title}: {shares}")
    if "lrn" in results and "gru" in results:
        ratio = results["lrn"]["stream"]["tokens_per_s"] / results["gru"]["stream"]["tokens_per_s"]
        print(f"\nLRN/GRU target tokens/s in the training loop (bench loop): {ratio:.2f}x")
