"""bfloat16 against float32: matrix products alone, then whole-model training and decoding
(issue 12). A benchmark, not a test.

Usage: bash scripts/bench_precision.sh [--data DIR]

1. Plain tf.matmul in graph mode (one Session), float32 and bfloat16 side by side: the square
   [2048x1024]x[1024x2048] and the shapes the models multiply (a paper-size recurrent or
   projection product per step, a sample-size projection over a whole batch, the paper-size
   output layer). Best of BENCH_MATMUL_ROUNDS interleaved rounds (other processes on a shared
   machine only ever slow a run down).
2. The models, through scripts/bench_model.py's child (the real TrainGraph step on a fixed
   batch of real sample sentences; beam-4 decoding of randomly initialised models, which run
   every sentence to the maximum length, so both precisions decode the same number of steps):
   LRN and GRU at the sample size (configs/sample_*.yaml) and the paper size
   (configs/wmt14_*.yaml, 27750-word vocabularies), each in float32 and bfloat16 one after the
   other, round robin; each figure is the best round's. Beside the wall-clock times, the CPU
   time of the process (all its threads) per step or sentence: on a machine shared with other
   jobs the wall clock also counts the others' time slices, the CPU clock hardly. Everything
   (part 1 too) is pinned to BENCH_CORES cores (1 by default) with threads=1 (one intra-op and
   one inter-op thread): unpinned, TensorFlow still runs ops on the calling thread too, so a
   process got one core or two depending on what else ran, and the two precisions were not
   compared on equal terms.

Environment (defaults sized for a busy 2-core machine):
    BENCH_CELLS="lrn gru"  BENCH_SIZES="sample paper"  BENCH_ROUNDS=2
    BENCH_STEPS=3  BENCH_WARMUP=1  BENCH_TOKENS=1000 (source tokens of the training batch)
    BENCH_DECODE_SENTENCES=30  BENCH_DECODE_RUNS=1  BENCH_THREADS=1  BENCH_SET="k=v ..."
    BENCH_MATMUL_ROUNDS=5 (0 skips part 1)  BENCH_MODELS=1 (0 skips part 2)
    BENCH_CORES=1 (cores each model process may use; 0 = no pinning)
Smoke run: BENCH_CELLS=lrn BENCH_SIZES=sample BENCH_ROUNDS=1 BENCH_STEPS=1 \
    BENCH_DECODE_SENTENCES=5 BENCH_TOKENS=300 BENCH_MATMUL_ROUNDS=1 bash scripts/bench_precision.sh
"""

import argparse
import json
import os
import sys
import time

# bench_model reads its settings from the environment when imported: this benchmark's smaller
# defaults go in first.
for key, value in {
    "BENCH_CELLS": "lrn gru",
    "BENCH_SIZES": "sample paper",
    "BENCH_STEPS": "3",
    "BENCH_WARMUP": "1",
    "BENCH_TOKENS": "1000",
    "BENCH_DECODE_SENTENCES": "30",
    "BENCH_THREADS": "1",
}.items():
    os.environ.setdefault(key, value)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_model  # noqa: E402
import benchlib  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1

PRECISIONS = ("float32", "bfloat16")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
MATMUL_ROUNDS = int(os.environ.get("BENCH_MATMUL_ROUNDS", "5"))
MODELS = os.environ.get("BENCH_MODELS", "1") != "0"
CORES = int(os.environ.get("BENCH_CORES", "1"))
# (what it is, [m, k], [k, n])
MATMULS = [
    ("square", [2048, 1024], [1024, 2048]),
    ("paper LRN projection, one step of 64 rows", [64, 1024], [1024, 3072]),
    ("paper GRU recurrent U_h, one step of 64 rows", [64, 1024], [1024, 1024]),
    ("sample LRN projection, whole batch", [4000, 256], [256, 768]),
    ("paper output layer, 256 rows", [256, 1024], [1024, 27750]),
]


def matmul_times(rounds, threads):
    """{(index, precision): best ms} for MATMULS, all in one graph and session."""
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
    from zero import config as config_lib
    from zero.session import session_config

    config = session_config(config_lib.Config(threads=threads))
    best = {}
    with benchlib.session(graph, config) as sess:
        sess.run(init)
        for _ in range(rounds):
            for key, op in ops.items():  # interleaved: both precisions see the same load
                m, k = MATMULS[key[0]][1]
                n = MATMULS[key[0]][2][1]
                runs = max(1, min(50, int(4e9 / (2 * m * k * n))))  # about 4 GFLOP a round
                ms = min(benchlib.times_ms(lambda op=op: sess.run(op), 1, runs))
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


def pin():
    """Restrict this process (and the processes it starts) to the first BENCH_CORES cores."""
    if CORES > 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:CORES])


def child(cell, size, precision, data_dir):
    """bench_model's measurement of one model in `precision`, with the CPU time (all threads of
    this process) of every timed run beside the wall-clock time: on a machine shared with
    other jobs the wall clock also counts the time the others ran, the CPU clock hardly."""
    pin()
    bench_model.SETS = bench_model.SETS + [f"precision={precision}"]
    cpu_ms = []  # per call of times_ms: bench_model.child decodes first, then trains
    wall_times_ms = benchlib.times_ms

    def times_ms(run, warmup, runs):
        cpu = []

        def timed():
            start = time.process_time()
            run()
            cpu.append(1000 * (time.process_time() - start))

        wall = wall_times_ms(timed, warmup, runs)
        cpu_ms.append(cpu[warmup:])
        return wall

    benchlib.times_ms = times_ms
    out = bench_model.child(cell, size, data_dir)
    if "decode_ms" in out:
        out["decode_cpu_ms"] = benchlib.median(cpu_ms.pop(0)) / out["decode_sentences"]
    out["train_cpu_s"] = benchlib.median(cpu_ms.pop(0)) / 1000
    return out


KEYS = ("train_s", "train_cpu_s", "decode_ms", "decode_cpu_ms")


def run_models(data_dir):
    """{size: {cell: {precision: result}}}, each figure the best of ROUNDS (round robin)."""
    results = {}
    for _ in range(ROUNDS):
        for size in bench_model.SIZES:
            for cell in bench_model.CELLS:
                for name in PRECISIONS:
                    args = ["--child", cell, size, name, "--data", data_dir]
                    r = benchlib.run_child(os.path.abspath(__file__), args, f"{cell} {size} {name}")
                    decode = bench_model.fmt(r.get("decode_ms"), ".1f")
                    decode_cpu = bench_model.fmt(r.get("decode_cpu_ms"), ".1f")
                    print(
                        f"  {size} {cell} {name}: train {r['train_s']:.3f} s/step "
                        f"{r['train_times']} (CPU {r['train_cpu_s']:.3f} s), decode {decode} "
                        f"ms/sentence (CPU {decode_cpu}) (load {benchlib.load_avg():.1f})",
                        flush=True,
                    )
                    best = results.setdefault(size, {}).setdefault(cell, {}).setdefault(name, r)
                    # Other processes on the machine only ever slow a round down.
                    for key in KEYS:
                        if r.get(key) is not None:
                            best[key] = min(best[key], r[key])
    return results


def _ratio(r, key):
    f, h = r["float32"].get(key), r["bfloat16"].get(key)
    return f / h if f and h else None


def print_models(results):
    fmt = bench_model.fmt
    for size, cells in results.items():
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
            line = f"{benchlib.SHOWN[cell]:<5} {f['params'] / 1e6:6.1f}M "
            for wall, cpu, spec in (
                ("train_s", "train_cpu_s", ".2f"),
                ("decode_ms", "decode_cpu_ms", ".0f"),
            ):
                for x in (f, h):
                    line += f" {fmt(x.get(wall), '5' + spec)} ({fmt(x.get(cpu), '4' + spec)})"
                line += f" {fmt(_ratio(r, wall), '4.2f')}x ({fmt(_ratio(r, cpu), '4.2f')}x) "
            print(line + f"{fmt(h.get('decode_steps'), '6.1f')}")
    print("\nspeedups on the wall clock (on the CPU clock):")
    for size, cells in results.items():
        for cell, r in cells.items():
            shown = benchlib.SHOWN[cell]
            for what, wall, cpu in (
                ("train", "train_s", "train_cpu_s"),
                ("decode", "decode_ms", "decode_cpu_ms"),
            ):
                if _ratio(r, wall):
                    print(
                        f"bfloat16/float32 {what} speedup ({size} size, {shown}): "
                        f"{_ratio(r, wall):.2f}x ({fmt(_ratio(r, cpu), '.2f')}x)"
                    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA", "prepared/sample"))
    parser.add_argument("--json", default="runs/bench/precision.json", help="results file")
    parser.add_argument("--child", nargs=3, metavar=("CELL", "SIZE", "PRECISION"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.data)))
        return
    if MODELS:
        benchlib.check_data(args.data)
    data_dir = os.path.abspath(args.data)
    tf.compat.v1.disable_eager_execution()
    pin()  # the matrix products too
    start, start_load = time.time(), benchlib.load_avg()
    pinned = f"pinned to {CORES} core(s)" if CORES else "not pinned"
    print(
        f"threads {bench_model.THREADS or 'TensorFlow default'}, model processes {pinned}; "
        f"load average (1 min) at start "
        f"{start_load:.1f} on {os.cpu_count()} CPUs: absolute times are pessimistic on a shared "
        "machine, the float32/bfloat16 ratios (measured side by side) are what count"
    )
    units = benchlib.bf16_units()
    print(f"CPU bfloat16 instructions: {units}")
    payload = {"rounds": ROUNDS, "steps": bench_model.STEPS, "tokens": bench_model.TOKENS}
    payload["bf16_units"] = units
    if MATMUL_ROUNDS > 0:
        best = matmul_times(MATMUL_ROUNDS, bench_model.THREADS)
        print_matmuls(best)
        payload["matmul_ms"] = [
            {"what": what, "a": a, "b": b, **{p: best[i, p] for p in PRECISIONS}}
            for i, (what, a, b) in enumerate(MATMULS)
        ]
    if MODELS:
        print(
            f"\nmodels: median of {bench_model.STEPS} training steps after {bench_model.WARMUP} "
            f"warm-up ({bench_model.TOKENS} source tokens); beam 4 over "
            f"{bench_model.DECODE_SENTENCES} test sentences (random weights: every sentence to "
            f"the maximum length); best of {ROUNDS} round(s)"
        )
        payload["results"] = run_models(data_dir)
        print_models(payload["results"])
    print(f"\nload average (1 min) at end {benchlib.load_avg():.1f}; {time.time() - start:.0f} s")
    benchlib.write_results(args.json, payload)


if __name__ == "__main__":
    main()
