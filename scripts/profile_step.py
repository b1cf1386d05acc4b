"""Where the time of one training step goes: a traced step (RunMetadata step_stats) grouped by
op type and by model part, for any cell and size (a tool for optimising, not a test).

Usage: .venv/bin/python scripts/profile_step.py CELL [paper|sample] [--data DIR]
           [--timeline FILE.json] [--top N]
The batch, configs and environment variables (BENCH_TOKENS, BENCH_SET, BENCH_THREADS) are
bench_model.py's. Op times are summed over ops (ops that run in parallel overlap, so the sum
can exceed the wall time); the shares say what to optimise. The Chrome trace (--timeline) opens
in chrome://tracing or ui.perfetto.dev.
"""

import argparse
import collections
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_model  # noqa: E402
import benchlib  # noqa: E402
import tensorflow as tf  # noqa: E402

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


def part(name):
    for label, pattern in PARTS:
        if re.search(pattern, name, re.IGNORECASE):
            return label
    return "other (embeddings, dropout, loss sums)"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cell")
    parser.add_argument("size", nargs="?", default="paper")
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA", "prepared/sample"))
    parser.add_argument("--timeline")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--runs", type=int, default=2, help="untimed steps before the trace")
    parser.add_argument(
        "--decode", type=int, metavar="N", help="profile beam search on N test sentences instead"
    )
    args = parser.parse_args()
    benchlib.check_data(args.data)
    v1.disable_eager_execution()
    from zero.session import load_vocabs, make_session
    from zero.train import TrainGraph
    from zero.vocab import Vocab

    config = bench_model.model_config(args.cell, args.size, os.path.abspath(args.data))
    _, _, src_size, tgt_size = load_vocabs(config)
    src_vocab = Vocab.load(os.path.join(args.data, "vocab.en"))
    tgt_vocab = Vocab.load(os.path.join(args.data, "vocab.de"))
    src, tgt = benchlib.train_batch(
        args.data, src_vocab, tgt_vocab, bench_model.TOKENS, config.max_len
    )
    graph = tf.Graph()
    with graph.as_default():
        g = TrainGraph(config, src_size, tgt_size)
        if args.decode:
            from zero import data
            from zero.decode import Translator

            translator = Translator([g.model], config)
            src = next(
                iter(
                    data.EvalBatches(
                        os.path.join(args.data, "test.bpe.en"),
                        src_vocab,
                        batch_size=args.decode,
                        limit=args.decode,
                    )
                )
            )["src"]
        init = v1.global_variables_initializer()
    sess = make_session(config, graph)
    sess.run(init)
    if args.decode:
        feed, fetches = {translator.src: src}, [translator.ids, translator.scores]
    else:
        feed, fetches = {g.src: src, g.tgt: tgt}, [g.train_op, g.loss, g.lr, g.grad_norm]
    for _ in range(args.runs):
        start = time.perf_counter()
        sess.run(fetches, feed)
        print(f"untraced step {time.perf_counter() - start:.3f} s")
    options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
    meta = v1.RunMetadata()
    start = time.perf_counter()
    sess.run(fetches, feed, options=options, run_metadata=meta)
    wall = time.perf_counter() - start
    shapes = f"{src.shape} -> {tgt.shape}" if not args.decode else f"{src.shape} decoded"
    print(f"traced step {wall:.3f} s, batch {shapes}")

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
            if op in ("While", "StatelessWhile", "PartitionedCall", "StatefulPartitionedCall"):
                continue  # containers: their body ops are listed on their own
            grad = "grad " if "gradients" in name else ""
            by_type[op] += us
            by_part[grad + part(name)] += us
            by_node[f"{op} {name}"] += us
            total += us
    print(f"summed op time {total / 1e6:.3f} s (wall {wall:.3f} s)")
    for title, table in (("op type", by_type), ("model part", by_part), ("node", by_node)):
        print(f"\nby {title}:")
        for key, us in table.most_common(args.top):
            print(f"  {100 * us / total:5.1f}%  {us / 1e6:8.3f} s  {key}")
    if args.timeline:
        from tensorflow.python.client import timeline

        with open(args.timeline, "w") as f:
            f.write(timeline.Timeline(meta.step_stats).generate_chrome_trace_format())
        print(f"timeline: {args.timeline}")


if __name__ == "__main__":
    main()
