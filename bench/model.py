r"""Whole-model speed of every cell: training step, beam-search decoding, memory, FLOPs.

    python -m bench model [--data DIR] [--cells gru lrn ...] [--sizes paper sample]
        [--steps 5] [--warmup 2] [--tokens 2000] [--decode-sentences 200] [--decode-runs 1]
        [--rounds 1] [--set KEY=VALUE ...] [--threads 0] [--json runs/bench/model.json]
    smoke run: python -m bench model --cells gru lrn --sizes sample --steps 1 --warmup 1 \
        --decode-sentences 10 --tokens 300

For each cell at the paper size (configs/wmt14_*.yaml, 27750-word vocabularies on each side,
built from sizes: no WMT data needed) and at the sample size (configs/sample_*.yaml with the
sample vocabularies), each cell in its own child process (bench/child.py):
  - train: the real training step (TrainGraph: dropout, label-smoothed loss, gradient clipping,
    Adam) on one fixed batch of real sample-corpus sentences, about --tokens source tokens
    (a run of length-sorted pairs, as token batching builds them; the sample BPE ids are valid
    ids of the paper-size vocabulary too). Median seconds per step after warm-up.
  - decode: beam 4 (the configs' beam) over the first --decode-sentences test sentences,
    ms per sentence, median of --decode-runs runs after a warm-up batch (--decode-sentences 0
    builds and runs no decoding). The models are randomly initialised, so their output
    distributions are near uniform and no hypothesis ends early: every cell decodes until the
    maximum length (source length + 50, bench/common.FIXED_STEPS), the same number of decoder steps
    for every cell (the "steps" column shows it). Decoding runs before training, on the
    initial weights.
  - peak resident memory of the child process (VmHWM), graph building, decoding and training.
  - FLOPs per training step, counted analytically from every matrix product of the model
    (bench/flops.py; the padded positions of the recurrent layers count, since the machine
    computes them), and the achieved GFLOP/s as a percentage of this machine's fp32 matmul
    peak (measured here in the same thread setting, best of a measurement before and after
    the cells).
--rounds N runs every cell N times, round robin; each figure is the best round's (on a shared
machine other processes only ever slow a round down). --set overrides a config key of every
model (e.g. hidden_size=64); --threads is the config key `threads` (0 = TensorFlow's choice).
The results go to --json for `python -m bench table`.
"""

import os
import time

import tensorflow as tf

from bench import common, flops, paper
from bench.child import run_in_child

v1 = tf.compat.v1
SIZES = ("paper", "sample")


def add_arguments(parser):
    common.add_model_arguments(parser)
    common.add_cells_argument(parser, common.table_order())
    parser.add_argument(
        "--sizes", nargs="+", choices=SIZES, default=list(SIZES), help="(default: paper sample)"
    )
    add_run_arguments(parser, steps=5, warmup=2, tokens=2000, decode_sentences=200)
    parser.add_argument("--rounds", type=int, default=1, help="rounds, best kept (default 1)")
    parser.add_argument(
        "--json", default="runs/bench/model.json", help="results file (read by bench table)"
    )


def add_run_arguments(parser, steps, warmup, tokens, decode_sentences):
    """The options of one model measurement (measure()'s besides --set and --threads);
    `bench precision` has them too, with its own defaults."""
    parser.add_argument("--steps", type=int, default=steps, help=f"timed steps ({steps})")
    parser.add_argument("--warmup", type=int, default=warmup, help=f"untimed steps ({warmup})")
    parser.add_argument(
        "--tokens", type=int, default=tokens, help=f"source tokens of the batch ({tokens})"
    )
    parser.add_argument(
        "--decode-sentences",
        type=int,
        default=decode_sentences,
        metavar="N",
        help=f"test sentences decoded ({decode_sentences}; 0 skips decoding)",
    )
    parser.add_argument("--decode-runs", type=int, default=1, help="decoding runs, median (1)")


def run_options(args):
    """measure()'s keyword arguments from the parsed options."""
    keys = ("steps", "warmup", "tokens", "decode_sentences", "decode_runs", "sets", "threads")
    return {k: getattr(args, k) for k in keys}


# -- one cell, in a child process ------------------------------------------------------------


def measure(
    cell,
    size,
    data_dir,
    *,
    steps,
    warmup,
    tokens,
    decode_sentences,
    decode_runs,
    sets=(),
    threads=0,
    cpu_time=False,
    device=None,
):
    """Child function: train step and decoding speed, memory and FLOPs of one model. With
    cpu_time, also the process's CPU time per step (train_cpu_s) and sentence (decode_cpu_ms).
    With a device (e.g. /gpu:0), the graphs are built on it (None: TensorFlow's placement)."""
    from zero.session import make_session
    from zero.vocab import Vocab, load_vocabs

    v1.disable_eager_execution()
    check_device(device)
    config = common.model_config(cell, size, data_dir, sets, threads)
    _, _, src_size, tgt_size = load_vocabs(config)
    src_vocab = Vocab.load(os.path.join(data_dir, "vocab.en"))
    tgt_vocab = Vocab.load(os.path.join(data_dir, "vocab.de"))
    src, tgt = common.train_batch(data_dir, src_vocab, tgt_vocab, tokens, config.max_len)
    decoding = decode_sentences > 0 and decode_runs > 0
    graph, g, translator, init = _build(config, src_size, tgt_size, decoding, device)
    sess = make_session(config, graph)
    sess.run(init)
    out = {"params": g.num_params, "batch": list(src.shape) + [tgt.shape[1]]}
    out["src_tokens"] = int((src > 0).sum())
    out["tgt_tokens"] = int((tgt > 0).sum())
    if decoding:
        batches = _test_batches(data_dir, src_vocab, config, decode_sentences)
        out.update(_decode_speed(sess, translator, batches, decode_runs, cpu_time))
    cpu = [] if cpu_time else None
    feed = {g.src: src, g.tgt: tgt}
    fetches = [g.train_op, g.loss, g.lr, g.grad_norm]
    times = common.times_ms(lambda: sess.run(fetches, feed), warmup, steps, cpu)
    out["train_s"] = common.median(times) / 1000
    out["train_times"] = [round(t / 1000, 3) for t in times]
    if cpu_time:
        out["train_cpu_s"] = common.median(cpu) / 1000
    b, s = src.shape
    out["flops"] = flops.train_step_flops(config, b, s, tgt.shape[1], tgt_size, out["tgt_tokens"])
    out["peak_mb"] = common.peak_rss_mb()
    return out


def check_device(device):
    """Exits when `device` is a GPU TensorFlow does not see: with soft placement the graphs
    would quietly run on the CPU."""
    if device and "GPU" in device.upper() and not tf.config.list_physical_devices("GPU"):
        raise SystemExit(
            f"device {device}: TensorFlow {tf.__version__} sees no GPU (a CPU-only build, or "
            "no CUDA driver); nothing measured"
        )


def _build(config, src_size, tgt_size, decoding, device=None):
    """(graph, TrainGraph, Translator or None, initializer), built on `device` if given."""
    from zero.decode import Translator
    from zero.train_graph import TrainGraph

    graph = tf.Graph()
    with graph.as_default(), v1.device(device):
        g = TrainGraph(config, src_size, tgt_size)
        translator = Translator([g.model], config) if decoding else None
        init = v1.global_variables_initializer()
    return graph, g, translator, init


def _test_batches(data_dir, src_vocab, config, sentences):
    from zero.batching import EvalBatches

    path = os.path.join(data_dir, "test.bpe.en")
    return list(EvalBatches(path, src_vocab, config.decode_batch_tokens, limit=sentences))


def _decode_speed(sess, translator, batches, runs, cpu_time):
    from zero.decode import batch_src

    sentences = sum(len(b["index"]) for b in batches)
    translator.run(sess, batches[0]["src"])  # warm-up: graph optimisation, allocations
    steps, cpu = [], [] if cpu_time else None

    def decode_all():
        steps.clear()
        for b, (ids, _) in translator.run_batches(sess, batches, source=batch_src):
            steps.append(ids.shape[-1] * len(b["index"]))

    times = common.times_ms(decode_all, 0, runs, cpu)
    out = {"decode_ms": common.median(times) / sentences}
    out["decode_steps"] = sum(steps) / sentences
    out["decode_sentences"] = sentences
    if cpu_time:
        out["decode_cpu_ms"] = common.median(cpu) / sentences
    return out


# -- the tables ------------------------------------------------------------------------------


def print_table(size, results, peak):
    first = next(iter(results.values()))
    b, s, t = first["batch"]
    print(
        f"\n{size} size: batch {b} sentences, {first['src_tokens']} source / "
        f"{first['tgt_tokens']} target tokens (padded {b}x{s} / {b}x{t})"
    )
    print(
        f"{'cell':<5} {'params':>7} {'s/step':>7} {'xGRU':>5} {'GFLOP':>7} {'GFLOP/s':>8} "
        f"{'%peak':>6} {'ms/sent':>8} {'xGRU':>5} {'steps':>6} {'peakMB':>7} "
        f"{'paper s/batch':>13} {'paper ms/sent':>13}"
    )
    fmt = common.fmt
    gru = results.get("gru")
    for cell, r in results.items():
        rate = r["flops"] / r["train_s"] / 1e9
        train_x = gru["train_s"] / r["train_s"] if gru else None
        dec = r.get("decode_ms")
        dec_x = gru["decode_ms"] / dec if gru and dec and gru.get("decode_ms") else None
        print(
            f"{common.shown(cell):<5} {r['params'] / 1e6:6.1f}M {r['train_s']:7.3f} "
            f"{fmt(train_x, '5.2f')} {r['flops'] / 1e9:7.1f} {rate:8.1f} "
            f"{100 * rate / peak:5.1f}% {fmt(dec, '8.2f')} {fmt(dec_x, '5.2f')} "
            f"{fmt(r.get('decode_steps'), '6.1f')} {fmt(r['peak_mb'], '7.0f')} "
            f"{fmt(paper.figure(cell, 'train_s'), '13.2f')} "
            f"{fmt(paper.figure(cell, 'decode_ms'), '13.2f')}"
        )


def print_summary(results, peak):
    """The summary lines: LRN against GRU at the paper size, the lowest utilisation of the
    peak per size."""
    at_paper = results.get("paper", {})
    if "lrn" in at_paper and "gru" in at_paper:
        lrn, gru = at_paper["lrn"], at_paper["gru"]
        speed = gru["train_s"] / lrn["train_s"]
        ratio = gru["flops"] / lrn["flops"]
        print(f"\nLRN/GRU train speedup (paper size): {speed:.2f}x (FLOP ratio {ratio:.2f}x)")
        if lrn.get("decode_ms") and gru.get("decode_ms"):
            speed = gru["decode_ms"] / lrn["decode_ms"]
            print(f"LRN/GRU decode speedup (paper size): {speed:.2f}x")
    for size in ("paper", "sample"):
        if not results.get(size):
            continue
        util = {c: 100 * r["flops"] / r["train_s"] / 1e9 / peak for c, r in results[size].items()}
        low = min(util, key=util.get)
        print(
            f"Lowest train step utilisation of matmul peak ({size} size): {util[low]:.0f}% "
            f"({common.shown(low)})"
        )


# -- the parent --------------------------------------------------------------------------------


def _keep_best(best, r):
    """Over rounds, the fastest: other processes on the machine only slow a run down."""
    if r["train_s"] < best["train_s"]:
        best.update({k: r[k] for k in ("train_s", "train_times")})
    if r.get("decode_ms", 1e30) < best.get("decode_ms", 1e30):
        best["decode_ms"] = r["decode_ms"]
    best["peak_mb"] = max(best["peak_mb"], r["peak_mb"])


def run_rounds(args, data_dir):
    """{size: {cell: best result}} over args.rounds rounds, each cell in a child process."""
    results = {size: {} for size in args.sizes}
    for _ in range(args.rounds):
        for size in args.sizes:
            for cell in args.cells:
                r = run_in_child(
                    measure, cell=cell, size=size, data_dir=data_dir, **run_options(args)
                )
                print(
                    f"  {size} {cell}: {r['train_s']:.3f} s/step {r['train_times']}, decode "
                    f"{common.fmt(r.get('decode_ms'), '.2f')} ms/sentence "
                    f"(load {common.load_avg():.1f})",
                    flush=True,
                )
                best = results[size].setdefault(cell, r)
                _keep_best(best, r)
    return results


def _print_header(args, data_dir, threads):
    decodes = args.decode_sentences > 0 and args.decode_runs > 0
    if decodes:
        decoding = (
            f"decoding: beam 4, {args.decode_sentences} test sentences, median of "
            f"{args.decode_runs} run(s) after a warm-up batch;"
        )
    else:
        decoding = "decoding: skipped (--decode-sentences or --decode-runs 0);"
    print(
        f"median of {args.steps} training steps after {args.warmup} warm-up, best of "
        f"{args.rounds} round(s); {decoding} threads {threads or 'TensorFlow default'}; "
        f"data {data_dir}"
    )
    if decodes:
        print(
            "decoding uses randomly initialised models: no hypothesis ends early, every cell "
            "decodes to the maximum length (source length + 50), the same steps for every cell"
        )
    if args.sets:
        print(f"config overrides: {' '.join(args.sets)}")


def main(args):
    common.check_cells(args.cells)
    common.check_data(args.data)
    data_dir = os.path.abspath(args.data)
    v1.disable_eager_execution()
    from zero import config as config_lib

    threads = int(config_lib.load(None, [f"threads={args.threads}"]).threads)
    peak_config = common.session_config(threads)
    _print_header(args, data_dir, threads)
    start_load, start = common.load_avg(), time.time()
    peak = common.matmul_peak(config=peak_config)
    results = run_rounds(args, data_dir)
    peak = max(peak, common.matmul_peak(config=peak_config))
    print(f"\nfp32 matmul peak (big tf.matmul, best of runs): {peak:.1f} GFLOP/s")
    print(
        f"load average (1 min) at start {start_load:.2f}, at end {common.load_avg():.2f}; "
        f"{time.time() - start:.0f} s"
    )
    for size in args.sizes:
        print_table(size, results[size], peak)
    payload = {"steps": args.steps, "rounds": args.rounds, "peak_gflops": peak}
    common.write_results(args.json, {**payload, "results": results})
    print_summary(results, peak)
