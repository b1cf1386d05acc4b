"""Beam-search decoding speed of every cell at the sample size (issue 5), beside the paper.

Usage: bash scripts/bench_decode.sh [--data DIR] [--model-root DIR]   (a benchmark, not a test)

For each cell (configs/sample_<cell>.yaml: hidden 256), in its own subprocess: ms per sentence
with beam 4 over the first BENCH_SENTENCES sentences of the sample test set (batched as
`run.py --mode test` batches, decode_batch_tokens source tokens), median of BENCH_RUNS passes
after BENCH_WARMUP untimed passes, and the speedup over GRU, beside the paper's decode column
(DESIGN.md: WMT14, one GPU, trained models).

Decoding time is proportional to the number of decoder steps, which depends on the output
lengths, so every cell must produce comparable outputs. Two modes, printed in the header:
  - trained (--model-root DIR: DIR/<cell>/ or DIR/sample_<cell>/ for every cell):
    the real models. Trained models of similar quality produce similar lengths; the "steps"
    and "out len" columns show how comparable they are.
  - fixed steps (the default): randomly initialised models. Their output distributions are
    near uniform, so no hypothesis ends early and every cell runs exactly to the maximum output
    length (source length + max_decode_extra, 50 by default): the same decoder steps, the same
    beam bookkeeping, for every cell, and nothing to train first. A few hundred training steps
    per cell were the other option, but such models are still degenerate and their output
    lengths depend on how far each cell got, which would measure convergence, not speed.
Absolute ms/sentence in the fixed mode is higher than with trained models (the outputs are
longer than real translations); the ratios are what compares with the paper.

Environment: BENCH_CELLS="gru lstm atr sru lrn olrn"  BENCH_SENTENCES=500  BENCH_RUNS=3
    BENCH_WARMUP=1  BENCH_THREADS=0 (config key `threads`)  BENCH_SET="key=value ..." (config
    overrides, e.g. max_decode_extra=20)  BENCH_DATA=prepared/sample (also --data DIR)
Smoke run: BENCH_CELLS="gru lrn" BENCH_SENTENCES=20 BENCH_RUNS=1 bash scripts/bench_decode.sh
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1

CELLS = os.environ.get("BENCH_CELLS", " ".join(benchlib.CELLS)).split()
SENTENCES = int(os.environ.get("BENCH_SENTENCES", "500"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "1"))
THREADS = int(os.environ.get("BENCH_THREADS", "0"))
SETS = os.environ.get("BENCH_SET", "").split()


def child(cell, data_dir, model_root):
    from zero import config as config_lib
    from zero import data
    from zero.decode import Translator
    from zero.model import Model
    from zero.runner import build_translator, restore_models
    from zero.session import load_vocabs, make_session
    from zero.vocab import EOS

    tf.compat.v1.disable_eager_execution()
    sets = [f"src_vocab={data_dir}/vocab.en", f"tgt_vocab={data_dir}/vocab.de", "beam_size=4"]
    sets += [f"threads={THREADS}"] + SETS
    graph = tf.Graph()
    if model_root:
        model_dir = trained_dir(model_root, cell)
        sets.append(f"output_dir={model_dir}")
        config = config_lib.load(config_lib.saved_path(model_dir), sets)
        translator, members, src_vocab, _ = build_translator(config, graph)
        sess = make_session(config, graph)
        restore_models(sess, members)
    else:
        config = config_lib.load(os.path.join(ROOT, f"configs/sample_{cell}.yaml"), sets)
        src_vocab, _, src_size, tgt_size = load_vocabs(config)
        with graph.as_default():
            v1.set_random_seed(config.seed)
            translator = Translator([Model(config, src_size, tgt_size)], config)
            init = v1.global_variables_initializer()
        sess = make_session(config, graph)
        sess.run(init)
    batches = list(
        data.EvalBatches(
            os.path.join(data_dir, "test.bpe.en"),
            src_vocab,
            batch_tokens=config.decode_batch_tokens,
            limit=SENTENCES,
        )
    )
    sentences = sum(len(b["index"]) for b in batches)
    steps, lengths = [], []

    def decode_all():
        steps.clear()
        lengths.clear()
        for b in batches:
            ids, _ = translator.run(sess, b["src"])
            steps.append(ids.shape[-1] * len(b["index"]))
            best = ids[:, 0, :]
            lengths.extend(int(row.tolist().index(EOS)) if EOS in row else len(row) for row in best)

    times = benchlib.times_ms(decode_all, WARMUP, RUNS)
    return {
        "ms": benchlib.median(times) / sentences,
        "runs_ms": [round(t / sentences, 2) for t in times],
        "steps": sum(steps) / sentences,
        "out_len": sum(lengths) / len(lengths),
        "sentences": sentences,
        "hidden": config.hidden_size,
        "peak_mb": benchlib.peak_rss_mb(),
    }


def trained_dir(root, cell):
    """root/<cell> (scripts/compare_cells.sh) or root/sample_<cell> (the sample configs)."""
    for name in (cell, f"sample_{cell}"):
        if os.path.exists(os.path.join(root, name, "config.yaml")):
            return os.path.join(root, name)
    return None


def run_child(cell, data_dir, model_root):
    args = ["--child", cell, "--data", data_dir]
    if model_root:
        args += ["--model-root", model_root]
    return benchlib.run_child(os.path.abspath(__file__), args, cell)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA", "prepared/sample"))
    parser.add_argument(
        "--model-root",
        help="directory holding a trained model per cell: <cell>/ or sample_<cell>/",
    )
    parser.add_argument(
        "--json",
        default="runs/bench/decode.json",
        help="where to save the results (read by scripts/reproduce_table.sh)",
    )
    parser.add_argument("--child", metavar="CELL")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data, args.model_root)))
        return
    benchlib.check_data(args.data, ("vocab.en", "vocab.de", "test.bpe.en"))
    args.data = os.path.abspath(args.data)
    if args.model_root:
        args.model_root = os.path.abspath(args.model_root)
        missing = [c for c in CELLS if not trained_dir(args.model_root, c)]
        if missing:
            raise SystemExit(
                f"--model-root {args.model_root}: no trained model for {', '.join(missing)} "
                "(<cell>/ or sample_<cell>/ with config.yaml and checkpoints); all cells need "
                "one, or leave --model-root out for the fixed-steps mode"
            )
        mode = f"trained models from {args.model_root}"
    else:
        mode = (
            "fixed steps: randomly initialised models, every sentence decoded to the maximum "
            "length (source length + max_decode_extra) by every cell"
        )
    print(f"mode: {mode}")
    print(
        f"beam 4, first {SENTENCES} sentences of {args.data}/test.bpe.en, median of {RUNS} "
        f"passes after {WARMUP} warm-up pass(es), each cell in its own process"
    )
    if SETS:
        print(f"config overrides: {' '.join(SETS)}")
    start_load, start = benchlib.load_avg(), time.time()
    results = {}
    for cell in CELLS:
        results[cell] = run_child(cell, args.data, args.model_root)
        print(f"  {cell}: {results[cell]['runs_ms']} ms/sentence per pass", flush=True)
    first = next(iter(results.values()))
    print(
        f"load average (1 min) at start {start_load:.2f}, at end {benchlib.load_avg():.2f}; "
        f"{time.time() - start:.0f} s"
    )
    benchlib.write_results(
        args.json,
        {"mode": "trained" if args.model_root else "fixed", "runs": RUNS, "results": results},
    )
    print(f"\nhidden {first['hidden']}, {first['sentences']} sentences")
    print(
        f"{'cell':<5} {'ms/sent':>8} {'GRU/cell':>8} {'steps':>6} {'out len':>7} "
        f"{'paper ms/sent':>13} {'paper GRU/cell':>14}"
    )
    gru = results.get("gru")
    paper_gru = benchlib.PAPER["gru"][1]
    for cell, r in results.items():
        ratio = f"{gru['ms'] / r['ms']:.2f}x" if gru else "-"
        paper = benchlib.PAPER[cell][1]
        paper_ms = f"{paper:.2f}" if paper else "-"
        paper_ratio = f"{paper_gru / paper:.2f}x" if paper else "-"
        print(
            f"{benchlib.SHOWN[cell]:<5} {r['ms']:8.2f} {ratio:>8} {r['steps']:6.1f} "
            f"{r['out_len']:7.1f} {paper_ms:>13} {paper_ratio:>14}"
        )


if __name__ == "__main__":
    main()
