"""Where the time of one training step goes, by op type and model part.

    python -m bench profile CELL [paper|sample] [--data DIR] [--tokens 2000]
        [--set KEY=VALUE ...] [--threads 0] [--runs 2] [--decode N] [--timeline FILE.json]
        [--top 25]
    smoke run: python -m bench profile lrn sample --runs 1

A tool for optimising, not a test. The batch and the configs are `bench model`'s (one fixed
batch of about --tokens source tokens of real sample sentences; configs/wmt14_<cell>.yaml with
the paper's vocabulary sizes or configs/sample_<cell>.yaml). --runs untraced steps come first,
then one step is traced (RunMetadata step_stats). --decode N profiles beam search on N test
sentences instead of a training step. Op times are summed over ops (ops that run in parallel
overlap, so the sum can exceed the wall time); the shares say what to optimise. Beside them,
the training step's analytic FLOPs (bench/flops.py). The Chrome trace (--timeline) opens in
chrome://tracing or ui.perfetto.dev.
"""

import collections
import os
import re
import time

import tensorflow as tf

from bench import common, flops

v1 = tf.compat.v1

# Model parts by node name (first match wins); gradients are told apart by "gradients".
PARTS = [
    ("optimizer", r"Adam|clip_by_global_norm|global_norm|update_|Assign"),
    (
        "readout/logits/loss",
        r"readout|^(gradients/)?model(_\d+)?/MatMul|SparseSoftmax|TensorScatterAdd|ScatterNd|"
        r"GatherNd|Tensordot|LogSoftmax",
    ),
    ("decoder loop", r"decoder/layer_\d+/while"),
    ("encoder loop", r"encoder/layer_\d+/while"),
    ("decoder other", r"decoder"),
    ("encoder other", r"encoder"),
]
CONTAINERS = ("While", "StatelessWhile", "PartitionedCall", "StatefulPartitionedCall")


def add_arguments(parser):
    parser.add_argument("cell", help="the cell to profile")
    parser.add_argument("size", nargs="?", default="paper", choices=("paper", "sample"))
    common.add_model_arguments(parser)
    parser.add_argument(
        "--tokens", type=int, default=2000, help="source tokens of the batch (2000)"
    )
    parser.add_argument("--timeline", help="write the step's Chrome trace here")
    parser.add_argument("--top", type=int, default=25, help="rows of every table (25)")
    parser.add_argument("--runs", type=int, default=2, help="untimed steps before the trace")
    parser.add_argument(
        "--decode", type=int, metavar="N", help="profile beam search on N test sentences instead"
    )


def part(name):
    for label, pattern in PARTS:
        if re.search(pattern, name, re.IGNORECASE):
            return label
    return "other (embeddings, dropout, loss sums)"


def build(args, data_dir):
    """(session, feed, fetches, what is run, analytic FLOPs or None) of the profiled step."""
    from zero.decode import Translator
    from zero.session import make_session
    from zero.train_graph import TrainGraph
    from zero.vocab import Vocab, load_vocabs

    config = common.model_config(args.cell, args.size, data_dir, args.sets, args.threads)
    _, _, src_size, tgt_size = load_vocabs(config)
    src_vocab = Vocab.load(os.path.join(data_dir, "vocab.en"))
    tgt_vocab = Vocab.load(os.path.join(data_dir, "vocab.de"))
    src, tgt = common.train_batch(data_dir, src_vocab, tgt_vocab, args.tokens, config.max_len)
    graph = tf.Graph()
    with graph.as_default():
        g = TrainGraph(config, src_size, tgt_size)
        translator = Translator([g.model], config) if args.decode else None
        init = v1.global_variables_initializer()
    sess = make_session(config, graph)
    sess.run(init)
    if args.decode:
        translator.prepare(sess)  # the steps read its per-model tables
        src = common.test_sources(data_dir, src_vocab, args.decode)
        fetches = [translator.ids, translator.scores]
        return sess, {translator.src: src}, fetches, f"{src.shape} decoded", None
    b, s = src.shape
    step_flops = flops.train_step_flops(config, b, s, tgt.shape[1], tgt_size, int((tgt > 0).sum()))
    fetches = [g.train_op, g.loss, g.lr, g.grad_norm]
    return sess, {g.src: src, g.tgt: tgt}, fetches, f"{src.shape} -> {tgt.shape}", step_flops


def trace(sess, fetches, feed, runs):
    """(RunMetadata of a traced run, its wall seconds, the fastest untraced run's or None)."""
    fastest = None
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(fetches, feed)
        took = time.perf_counter() - start
        fastest = took if fastest is None else min(fastest, took)
        print(f"untraced step {took:.3f} s")
    options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
    meta = v1.RunMetadata()
    start = time.perf_counter()
    sess.run(fetches, feed, options=options, run_metadata=meta)
    return meta, time.perf_counter() - start, fastest


def group(meta):
    """({op type: us}, {model part: us}, {op and node: us}, total us) of a traced run."""
    by_type, by_part, by_node = (collections.Counter() for _ in range(3))
    total = 0.0
    for dev in meta.step_stats.dev_stats:
        for node in dev.node_stats:
            name = node.node_name
            if name == "_SOURCE":
                continue
            us = node.all_end_rel_micros
            op = node.timeline_label.split("(")[0].split("=")[-1].strip() or "?"
            m = re.search(r"= (\w+)\(", node.timeline_label)
            op = m.group(1) if m else op
            if op in CONTAINERS:
                continue  # their body ops are listed on their own
            grad = "grad " if "gradients" in name else ""
            by_type[op] += us
            by_part[grad + part(name)] += us
            by_node[f"{op} {name}"] += us
            total += us
    return by_type, by_part, by_node, total


def main(args):
    common.check_cells([args.cell])
    common.check_data(args.data)
    data_dir = os.path.abspath(args.data)
    v1.disable_eager_execution()
    sess, feed, fetches, shapes, step_flops = build(args, data_dir)
    meta, wall, fastest = trace(sess, fetches, feed, args.runs)
    print(f"traced step {wall:.3f} s, batch {shapes}")
    if step_flops:
        seconds = min(wall, fastest or wall)  # the first untraced step also warms up
        print(
            f"analytic train step FLOPs (bench/flops.py): {step_flops / 1e9:.1f} GFLOP, "
            f"{step_flops / seconds / 1e9:.1f} GFLOP/s at the fastest step ({seconds:.3f} s)"
        )
    by_type, by_part, by_node, total = group(meta)
    print(f"summed op time {total / 1e6:.3f} s (wall {wall:.3f} s)")
    for title, table in (("op type", by_type), ("model part", by_part), ("node", by_node)):
        print(f"\nby {title}:")
        for key, us in table.most_common(args.top):
            print(f"  {100 * us / total:5.1f}%  {us / 1e6:8.3f} s  {key}")
    if args.timeline:
        from tensorflow.python.client import timeline

        from zero.textio import atomic_write_text

        chrome = timeline.Timeline(meta.step_stats).generate_chrome_trace_format()
        atomic_write_text(args.timeline, chrome)
        print(f"timeline: {args.timeline}")
