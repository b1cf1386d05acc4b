"""Beam-search decoding speed of every cell at the sample size, beside the paper's.

    python -m bench decode [--data DIR] [--model-root DIR] [--cells gru lrn ...]
        [--sentences 500] [--runs 3] [--warmup 1] [--threads 0] [--set KEY=VALUE ...]
        [--json runs/bench/decode.json]
    smoke run: python -m bench decode --cells gru lrn --sentences 20 --runs 1

For each cell (configs/sample_<cell>.yaml: hidden 256), in its own child process: ms per
sentence with beam 4 over the first --sentences sentences of the sample test set (batched as
`run.py --mode test` batches, decode_batch_tokens source tokens), median of --runs passes after
--warmup untimed passes, and the speedup over GRU, beside the paper's decode column (bench/
paper.py: WMT14, one GPU, trained models).

Decoding time is proportional to the number of decoder steps, which depends on the output
lengths, so every cell must produce comparable outputs. Two modes, printed in the header:
  - trained (--model-root DIR: DIR/<cell>/ or DIR/sample_<cell>/ for every cell):
    the real models. Trained models of similar quality produce similar lengths; the "steps"
    and "out len" columns show how comparable they are.
  - fixed steps (the default): randomly initialised models. Their output distributions are
    near uniform, so no hypothesis ends early and every cell runs exactly to the maximum output
    length (source length + 50, whatever the configs decode with): the same decoder steps, the
    same beam bookkeeping, for every cell, and nothing to train first. A few hundred training steps
    per cell were the other option, but such models are still degenerate and their output
    lengths depend on how far each cell got, which would measure convergence, not speed.
Absolute ms/sentence in the fixed mode is higher than with trained models (the outputs are
longer than real translations); the ratios are what compares with the paper.
--set overrides a config key of every model (e.g. max_decode_extra=20); --threads is the
config key `threads` (0 = TensorFlow's choice). The results go to --json for `bench table`.
"""

import os
import time

import tensorflow as tf

from bench import common, paper
from bench.child import run_in_child

v1 = tf.compat.v1


def positive(text):
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def add_arguments(parser):
    common.add_model_arguments(parser)
    parser.add_argument(
        "--model-root",
        help="directory holding a trained model per cell: <cell>/ or sample_<cell>/",
    )
    common.add_cells_argument(parser, common.table_order())
    parser.add_argument(
        "--model",
        help="one trained model directory: the decoding engine's techniques side by side "
        "(bench/engine.py)",
    )
    parser.add_argument(
        "--sentences",
        type=positive,
        help="test sentences decoded (default: 500 per cell; all with --model)",
    )
    parser.add_argument(
        "--runs", type=positive, help="timed passes, median (default: 3 per cell; 2 with --model)"
    )
    parser.add_argument(
        "--trace-batches",
        type=int,
        default=3,
        help="--model: batches traced for the time breakdown (3)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes first (1)")
    parser.add_argument(
        "--json", default="runs/bench/decode.json", help="results file (read by bench table)"
    )


def trained_dir(root, cell):
    """root/<cell> (scripts/compare_cells.sh) or root/sample_<cell> (the sample configs)."""
    for name in (cell, f"sample_{cell}"):
        if os.path.exists(os.path.join(root, name, "config.yaml")):
            return os.path.join(root, name)
    return None


# -- one cell, in a child process ------------------------------------------------------------


def _translator(cell, data_dir, model_root, sets):
    """(config, session, Translator, source vocabulary): trained or randomly initialised."""
    from zero import config as config_lib
    from zero import inference
    from zero.decode import Translator
    from zero.model import Model
    from zero.session import make_session
    from zero.vocab import load_vocabs

    if model_root:
        model_dir = trained_dir(model_root, cell)
        config = config_lib.load(
            config_lib.saved_path(model_dir), [*sets, f"output_dir={model_dir}"]
        )
        loaded = inference.load(config, lambda models, vocabs: Translator(models, config))
        return config, loaded.sess, loaded.outputs, loaded.src_vocab
    path = os.path.join(common.ROOT, f"configs/sample_{cell}.yaml")
    config = config_lib.load(path, [*common.FIXED_STEPS, *sets])
    src_vocab, _, src_size, tgt_size = load_vocabs(config)
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(config.seed)
        translator = Translator([Model(config, src_size, tgt_size)], config)
        init = v1.global_variables_initializer()
    sess = make_session(config, graph)
    sess.run(init)
    return config, sess, translator, src_vocab


def measure(cell, data_dir, model_root, *, sentences, warmup, runs, threads=0, sets=()):
    """Child function: ms per sentence, decoder steps and output length of one cell."""
    from zero.batching import EvalBatches
    from zero.decode import batch_src
    from zero.vocab import EOS

    v1.disable_eager_execution()
    overrides = [f"src_vocab={data_dir}/vocab.en", f"tgt_vocab={data_dir}/vocab.de"]
    overrides += ["beam_size=4", f"threads={threads}", *sets]
    config, sess, translator, src_vocab = _translator(cell, data_dir, model_root, overrides)
    path = os.path.join(data_dir, "test.bpe.en")
    batches = list(EvalBatches(path, src_vocab, config.decode_batch_tokens, limit=sentences))
    count = sum(len(b["index"]) for b in batches)
    steps, lengths = [], []

    def decode_all():
        steps.clear()
        lengths.clear()
        for b, (ids, _) in translator.run_batches(sess, batches, source=batch_src):
            steps.append(ids.shape[-1] * len(b["index"]))
            best = ids[:, 0, :]
            lengths.extend(int(row.tolist().index(EOS)) if EOS in row else len(row) for row in best)

    times = common.times_ms(decode_all, warmup, runs)
    return {
        "ms": common.median(times) / count,
        "runs_ms": [round(t / count, 2) for t in times],
        "steps": sum(steps) / count,
        "out_len": sum(lengths) / len(lengths),
        "sentences": count,
        "hidden": config.hidden_size,
        "peak_mb": common.peak_rss_mb(),
    }


# -- the parent ------------------------------------------------------------------------------


def _mode(args):
    """The header's description of the mode; exits when a trained model is missing."""
    if not args.model_root:
        return (
            "fixed steps: randomly initialised models, every sentence decoded to the maximum "
            "length (source length + max_decode_extra) by every cell"
        )
    missing = [c for c in args.cells if not trained_dir(args.model_root, c)]
    if missing:
        raise SystemExit(
            f"--model-root {args.model_root}: no trained model for {', '.join(missing)} "
            "(<cell>/ or sample_<cell>/ with config.yaml and checkpoints); all cells need "
            "one, or leave --model-root out for the fixed-steps mode"
        )
    return f"trained models from {args.model_root}"


def print_table(results):
    first = next(iter(results.values()))
    print(f"\nhidden {first['hidden']}, {first['sentences']} sentences")
    print(
        f"{'cell':<5} {'ms/sent':>8} {'GRU/cell':>8} {'steps':>6} {'out len':>7} "
        f"{'paper ms/sent':>13} {'paper GRU/cell':>14}"
    )
    gru = results.get("gru")
    paper_gru = paper.figure("gru", "decode_ms")
    for cell, r in results.items():
        ratio = f"{gru['ms'] / r['ms']:.2f}x" if gru else "-"
        theirs = paper.figure(cell, "decode_ms")
        paper_ms = f"{theirs:.2f}" if theirs else "-"
        paper_ratio = f"{paper_gru / theirs:.2f}x" if theirs else "-"
        print(
            f"{common.shown(cell):<5} {r['ms']:8.2f} {ratio:>8} {r['steps']:6.1f} "
            f"{r['out_len']:7.1f} {paper_ms:>13} {paper_ratio:>14}"
        )


def main_engine(args):
    """--model: every technique of the decoding engine on one trained model."""
    from bench import engine

    model = os.path.abspath(args.model)
    if not os.path.isfile(os.path.join(model, "config.yaml")):
        raise SystemExit(f"--model {args.model}: not a model directory (no config.yaml)")
    common.check_data(args.data, ("test.bpe.en", "test.de"))
    runs = args.runs or 2
    print(
        f"decoding engine on {model}: test set of {os.path.abspath(args.data)}, "
        f"{args.sentences or 'all'} sentences, median of {runs} passes per path, the paths "
        f"interleaved, one process; load average (1 min) {common.load_avg():.2f}"
    )
    start = time.time()
    out = run_in_child(
        engine.measure,
        model_dir=model,
        data_dir=os.path.abspath(args.data),
        sentences=args.sentences,
        runs=runs,
        trace_batches=args.trace_batches,
        threads=args.threads,
        sets=args.sets,
    )
    print(f"{out['sentences']} sentences in {out['batches']} batches; {time.time() - start:.0f} s")
    common.write_results(args.json.replace("decode.json", "engine.json"), out)
    engine.report(out)


def main(args):
    if args.model:
        return main_engine(args)
    args.sentences, args.runs = args.sentences or 500, args.runs or 3
    common.check_cells(args.cells)
    common.check_data(args.data, ("vocab.en", "vocab.de", "test.bpe.en"))
    data_dir = os.path.abspath(args.data)
    if args.model_root:
        args.model_root = os.path.abspath(args.model_root)
    print(f"mode: {_mode(args)}")
    print(
        f"beam 4, first {args.sentences} sentences of {data_dir}/test.bpe.en, median of "
        f"{args.runs} passes after {args.warmup} warm-up pass(es), each cell in its own process"
    )
    if args.sets:
        print(f"config overrides: {' '.join(args.sets)}")
    start_load, start = common.load_avg(), time.time()
    options = {"sentences": args.sentences, "warmup": args.warmup, "runs": args.runs}
    options.update(threads=args.threads, sets=args.sets)
    results = {}
    for cell in args.cells:
        results[cell] = run_in_child(
            measure, cell=cell, data_dir=data_dir, model_root=args.model_root, **options
        )
        print(f"  {cell}: {results[cell]['runs_ms']} ms/sentence per pass", flush=True)
    print(
        f"load average (1 min) at start {start_load:.2f}, at end {common.load_avg():.2f}; "
        f"{time.time() - start:.0f} s"
    )
    mode = "trained" if args.model_root else "fixed"
    common.write_results(args.json, {"mode": mode, "runs": args.runs, "results": results})
    print_table(results)
