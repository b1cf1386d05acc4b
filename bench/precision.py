r"""bfloat16 against float32: matrix products, then model training and decoding.

    python -m bench precision [--data DIR] [--cells lrn gru] [--sizes sample paper]
        [--rounds 2] [--steps 3] [--warmup 1] [--tokens 1000] [--decode-sentences 30]
        [--decode-runs 1] [--threads 1] [--set KEY=VALUE ...] [--matmul-rounds 5]
        [--no-models] [--cores 1] [--json runs/bench/precision.json]
    smoke run: python -m bench precision --cells lrn --sizes sample --rounds 1 --steps 1 \
        --decode-sentences 5 --tokens 300 --matmul-rounds 1

1. Plain tf.matmul in graph mode (one Session), float32 and bfloat16 side by side: the square
   [2048x1024]x[1024x2048] and the shapes the models multiply (a paper-size recurrent or
   projection product per step, a sample-size projection over a whole batch, the paper-size
   output layer). Best of --matmul-rounds interleaved rounds (0 skips this part; other
   processes on a shared machine only ever slow a run down).
2. The models (--no-models skips them), through `bench model`'s measurement (the real
   TrainGraph step on a fixed batch of real sample sentences; beam-4 decoding of randomly
   initialised models, which run every sentence to the maximum length, so both precisions
   decode the same number of steps): each cell at each size (configs/sample_*.yaml,
   configs/wmt14_*.yaml with 27750-word vocabularies), in float32 and bfloat16 one after the
   other, round robin; each figure is the best round's. Beside the wall-clock times, the CPU
   time of the process (all its threads) per step or sentence: on a machine shared with other
   jobs the wall clock also counts the others' time slices, the CPU clock hardly. Everything
   (part 1 too) is pinned to --cores cores (1 by default; 0 = no pinning) with --threads 1 (one
   intra-op and one inter-op thread): unpinned, TensorFlow still runs ops on the calling thread
   too, so a process got one core or two depending on what else ran, and the two precisions
   were not compared on equal terms.
The defaults are sized for a busy 2-core machine.
"""

import argparse
import os
import time

import tensorflow as tf

from bench import common, model
from bench.child import run_in_child

v1 = tf.compat.v1

PRECISIONS = ("float32", "bfloat16")
# (what it is, [m, k], [k, n])
MATMULS = [
    ("square", [2048, 1024], [1024, 2048]),
    ("paper LRN projection, one step of 64 rows", [64, 1024], [1024, 3072]),
    ("paper GRU recurrent U_h, one step of 64 rows", [64, 1024], [1024, 1024]),
    ("sample LRN projection, whole batch", [4000, 256], [256, 768]),
    ("paper output layer, 256 rows", [256, 1024], [1024, 27750]),
]
KEYS = ("train_s", "train_cpu_s", "decode_ms", "decode_cpu_ms")


def add_arguments(parser):
    common.add_model_arguments(parser, threads=1)
    common.add_cells_argument(parser, ["lrn", "gru"])
    parser.add_argument(
        "--sizes",
        nargs="+",
        choices=model.SIZES,
        default=["sample", "paper"],
        help="(default: sample paper)",
    )
    model.add_run_arguments(parser, steps=3, warmup=1, tokens=1000, decode_sentences=30)
    parser.add_argument("--rounds", type=int, default=2, help="rounds, best kept (default 2)")
    parser.add_argument(
        "--matmul-rounds", type=int, default=5, help="matrix product rounds (5; 0 skips them)"
    )
    parser.add_argument(
        "--models", action=argparse.BooleanOptionalAction, default=True,
        help="measure the models (--no-models: the matrix products only)",
    )  # fmt: skip
    parser.add_argument(
        "--cores", type=int, default=1, help="cores every process may use (1; 0 = no pinning)"
    )
    parser.add_argument("--json", default="runs/bench/precision.json", help="results file")


def pin(cores):
    """Restrict this process (and the processes it starts) to the first `cores` cores."""
    if cores > 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])


# -- 1. matrix products --------------------------------------------------------------------


def _matmul_graph():
    """(graph, {(index, precision): scalar op}, initializer) of every product in MATMULS."""
    graph = tf.Graph()
    ops = {}
    with graph.as_default():
        for i, (_, a_shape, b_shape) in enumerate(MATMULS):
            for name in PRECISIONS:
                dtype = tf.as_dtype(name)
                a = tf.Variable(tf.cast(tf.random.uniform(a_shape), dtype))
                b = tf.Variable(tf.cast(tf.random.uniform(b_shape), dtype))
                # A scalar fetch: no copy of the result leaves the graph.
                ops[i, name] = tf.reduce_sum(tf.cast(tf.matmul(a, b)[:, :1], tf.float32))
        init = v1.global_variables_initializer()
    return graph, ops, init


def matmul_times(rounds, threads):
    """{(index, precision): best ms} for MATMULS, all in one graph and session."""
    graph, ops, init = _matmul_graph()
    best = {}
    with common.session(graph, common.session_config(threads)) as sess:
        sess.run(init)
        for _ in range(rounds):
            for key, op in ops.items():  # interleaved: both precisions see the same load
                m, k = MATMULS[key[0]][1]
                n = MATMULS[key[0]][2][1]
                runs = max(1, min(50, int(4e9 / (2 * m * k * n))))  # about 4 GFLOP a round
                ms = min(common.times_ms(lambda op=op: sess.run(op), 1, runs))
                best[key] = min(best.get(key, ms), ms)
    return best


def print_matmuls(best):
    print(
        f"\n{'product':<48} {'float32 ms':>10} {'bf16 ms':>9} {'speedup':>8} {'bf16 GFLOP/s':>13}"
    )
    for i, (what, (m, k), (_, n)) in enumerate(MATMULS):
        f32, bf16 = best[i, "float32"], best[i, "bfloat16"]
        shape = f"[{m}x{k}]x[{k}x{n}]"
        print(
            f"{shape + ' ' + what:<48.48} {f32:10.3f} {bf16:9.3f} {f32 / bf16:7.2f}x "
            f"{2 * m * k * n / bf16 / 1e6:13.1f}"
        )
    f32, bf16 = best[0, "float32"], best[0, "bfloat16"]
    print(f"bfloat16/float32 matmul speedup ([2048x1024]x[1024x2048]): {f32 / bf16:.2f}x")


# -- 2. the models ---------------------------------------------------------------------------


def measure(cores, precision, sets, **options):
    """Child function: `bench model`'s measurement of one model in `precision` on `cores`
    pinned cores, with the CPU time of every timed run beside the wall-clock time."""
    pin(cores)
    return model.measure(sets=[*sets, f"precision={precision}"], cpu_time=True, **options)


def _print_run(size, cell, name, r):
    fmt = common.fmt
    print(
        f"  {size} {cell} {name}: train {r['train_s']:.3f} s/step "
        f"{r['train_times']} (CPU {r['train_cpu_s']:.3f} s), decode "
        f"{fmt(r.get('decode_ms'), '.1f')} ms/sentence (CPU {fmt(r.get('decode_cpu_ms'), '.1f')}) "
        f"(load {common.load_avg():.1f})",
        flush=True,
    )


def run_models(args, data_dir):
    """{size: {cell: {precision: result}}}, each figure the best of args.rounds (round robin)."""
    options = {**model.run_options(args), "cores": args.cores, "data_dir": data_dir}
    results = {}
    for _ in range(args.rounds):
        for size in args.sizes:
            for cell in args.cells:
                for name in PRECISIONS:
                    r = run_in_child(measure, cell=cell, size=size, precision=name, **options)
                    _print_run(size, cell, name, r)
                    best = results.setdefault(size, {}).setdefault(cell, {}).setdefault(name, r)
                    # Other processes on the machine only ever slow a round down.
                    for key in KEYS:
                        if r.get(key) is not None:
                            best[key] = min(best[key], r[key])
    return results


def _ratio(r, key):
    f, h = r["float32"].get(key), r["bfloat16"].get(key)
    return f / h if f and h else None


def _print_size(size, cells):
    fmt = common.fmt
    first = next(iter(next(iter(cells.values())).values()))
    b, s, t = first["batch"]
    print(f"\n{size} size: training batch {b} sentences ({b}x{s} source, {b}x{t} target)")
    print(
        f"{'':14} {'train s/step (CPU s/step)':^38} {'decode ms/sentence (CPU)':^38}\n"
        f"{'cell':<5} {'params':>7}  {'float32':>11} {'bfloat16':>11} {'speedup':>12}  "
        f"{'float32':>11} {'bfloat16':>11} {'speedup':>12} {'steps':>6}"
    )
    for cell, r in cells.items():
        f, h = r["float32"], r["bfloat16"]
        line = f"{common.shown(cell):<5} {f['params'] / 1e6:6.1f}M "
        for wall, cpu, spec in (
            ("train_s", "train_cpu_s", ".2f"),
            ("decode_ms", "decode_cpu_ms", ".0f"),
        ):
            for x in (f, h):
                line += f" {fmt(x.get(wall), '5' + spec)} ({fmt(x.get(cpu), '4' + spec)})"
            line += f" {fmt(_ratio(r, wall), '4.2f')}x ({fmt(_ratio(r, cpu), '4.2f')}x) "
        print(line + f"{fmt(h.get('decode_steps'), '6.1f')}")


def print_models(results):
    for size, cells in results.items():
        _print_size(size, cells)
    print("\nspeedups on the wall clock (on the CPU clock):")
    for size, cells in results.items():
        for cell, r in cells.items():
            for what, wall, cpu in (
                ("train", "train_s", "train_cpu_s"),
                ("decode", "decode_ms", "decode_cpu_ms"),
            ):
                if _ratio(r, wall):
                    print(
                        f"bfloat16/float32 {what} speedup ({size} size, {common.shown(cell)}): "
                        f"{_ratio(r, wall):.2f}x ({common.fmt(_ratio(r, cpu), '.2f')}x)"
                    )


def _print_header(args, start_load):
    pinned = f"pinned to {args.cores} core(s)" if args.cores else "not pinned"
    print(
        f"threads {args.threads or 'TensorFlow default'}, model processes {pinned}; "
        f"load average (1 min) at start "
        f"{start_load:.1f} on {os.cpu_count()} CPUs: absolute times are pessimistic on a shared "
        "machine, the float32/bfloat16 ratios (measured side by side) are what count"
    )


def main(args):
    common.check_cells(args.cells)
    if args.models:
        common.check_data(args.data)
    data_dir = os.path.abspath(args.data)
    v1.disable_eager_execution()
    pin(args.cores)  # the matrix products too
    start, start_load = time.time(), common.load_avg()
    _print_header(args, start_load)
    units = common.bf16_units()
    print(f"CPU bfloat16 instructions: {units}")
    payload = {"rounds": args.rounds, "steps": args.steps, "tokens": args.tokens}
    payload["bf16_units"] = units
    if args.matmul_rounds > 0:
        best = matmul_times(args.matmul_rounds, args.threads)
        print_matmuls(best)
        payload["matmul_ms"] = [
            {"what": what, "a": a, "b": b, **{p: best[i, p] for p in PRECISIONS}}
            for i, (what, a, b) in enumerate(MATMULS)
        ]
    if args.models:
        print(
            f"\nmodels: median of {args.steps} training steps after {args.warmup} "
            f"warm-up ({args.tokens} source tokens); beam 4 over "
            f"{args.decode_sentences} test sentences (random weights: every sentence to "
            f"the maximum length); best of {args.rounds} round(s)"
        )
        payload["results"] = run_models(args, data_dir)
        print_models(payload["results"])
    print(f"\nload average (1 min) at end {common.load_avg():.1f}; {time.time() - start:.0f} s")
    common.write_results(args.json, payload)
