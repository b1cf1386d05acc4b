"""Whole-model speed of every cell: training step, beam-search decoding, memory, FLOPs (issue 8).

Usage: bash scripts/bench_model.sh [--data DIR]     (a benchmark, not a test)

For each cell at the paper size (configs/wmt14_*.yaml, 27750-word vocabularies on each side,
built from sizes: no WMT data needed) and at the sample size (configs/sample_*.yaml with the
sample vocabularies), each cell in its own subprocess:
  - train: the real training step (TrainGraph: dropout, label-smoothed loss, gradient clipping,
    Adam) on one fixed batch of real sample-corpus sentences, about BENCH_TOKENS source tokens
    (a run of length-sorted pairs, as token batching builds them; the sample BPE ids are valid
    ids of the paper-size vocabulary too). Median seconds per step after warm-up.
  - decode: beam 4 (the configs' beam) over the first BENCH_DECODE_SENTENCES test sentences,
    ms per sentence. The models are randomly initialised, so their output distributions are
    near uniform and no hypothesis ends early: every cell decodes until the maximum length
    (source length + max_decode_extra = 50), the same number of decoder steps for every cell
    (the "steps" column shows it). Decoding runs before training, on the initial weights.
  - peak resident memory of the subprocess (VmHWM), graph building, decoding and training.
  - FLOPs per training step, counted analytically from every matrix product of the model
    (model_flops below; the padded positions of the recurrent layers count, since the machine
    computes them), and the achieved GFLOP/s as a percentage of this machine's fp32 matmul
    peak (benchlib.matmul_peak, measured by this script in the same thread setting, best of a
    measurement before and after the cells).

Environment (shrink everything for a smoke run):
    BENCH_CELLS="gru lstm atr sru lrn olrn"   BENCH_SIZES="paper sample"
    BENCH_STEPS=5  timed training steps        BENCH_WARMUP=2  untimed steps first
    BENCH_TOKENS=2000  source tokens of the batch
    BENCH_DECODE_SENTENCES=200  BENCH_DECODE_RUNS=1  (median of runs; 0 skips decoding)
    BENCH_ROUNDS=1  runs of every cell, round robin; each figure is the best round's (on a
        shared machine other processes only ever slow a round down)
    BENCH_SET="key=value ..."   config overrides for every model (e.g. hidden_size=64)
    BENCH_THREADS=0  the config key `threads` (0 = TensorFlow's choice)
    BENCH_DATA=prepared/sample  prepared sample data (also --data DIR)
Smoke run: BENCH_CELLS="gru lrn" BENCH_SIZES=sample BENCH_STEPS=1 BENCH_WARMUP=1 \
    BENCH_DECODE_SENTENCES=10 BENCH_TOKENS=300 bash scripts/bench_model.sh
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
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1

CELLS = os.environ.get("BENCH_CELLS", " ".join(benchlib.CELLS)).split()
SIZES = os.environ.get("BENCH_SIZES", "paper sample").split()
STEPS = int(os.environ.get("BENCH_STEPS", "5"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
TOKENS = int(os.environ.get("BENCH_TOKENS", "2000"))
DECODE_SENTENCES = int(os.environ.get("BENCH_DECODE_SENTENCES", "200"))
DECODE_RUNS = int(os.environ.get("BENCH_DECODE_RUNS", "1"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
SETS = os.environ.get("BENCH_SET", "").split()
THREADS = int(os.environ.get("BENCH_THREADS", "0"))
PAPER_VOCAB = 27750

WIDTHS = benchlib.WIDTHS


def model_config(cell, size, data_dir):
    from zero import config as config_lib

    common = ["dev_src=null", "dev_tgt=null", "dev_ref=null", f"threads={THREADS}"]
    if size == "paper":
        sets = [f"src_vocab_size={PAPER_VOCAB}", f"tgt_vocab_size={PAPER_VOCAB}"]
        sets += ["src_vocab=null", "tgt_vocab=null"]
        path = f"configs/wmt14_{cell}.yaml"
    else:
        sets = [f"src_vocab={data_dir}/vocab.en", f"tgt_vocab={data_dir}/vocab.de"]
        path = f"configs/sample_{cell}.yaml"
    return config_lib.load(os.path.join(ROOT, path), sets + common + SETS)


def model_flops(config, batch, src_len, tgt_len, tgt_vocab, tgt_tokens=None):
    """Forward FLOPs of the model on a [batch, src_len] -> [batch, tgt_len] batch, from every
    matrix product (2 FLOPs per multiply-add; embedding lookups and element-wise work are free).
    The recurrent layers run over the padded batch; the readout and logits only over the
    `tgt_tokens` real target tokens (Model.loss skips padding there), all when not given.

    Per source token: the encoder's input projections and recurrent products (layer 0: the
    forward cell, and the context-aware backward pass's lower cell on the words and higher cell
    on the forward outputs), the residual linear maps, the attention keys. Per target token:
    each decoder layer's two cells (input projection + recurrent product each; layer 0's
    higher cell projects the attention context inside the loop), the attention query, scores
    (v . tanh(...), over src_len) and context (over src_len), the residual maps, the readout
    [h; c] -> E and the tied logits E -> V. Per sentence: the decoder initial states.
    """
    d, e = config.hidden_size, config.embed_size
    n_in, n_rec = WIDTHS[config.cell.lower()]
    state = d * (2 if config.cell.lower() in ("lstm", "sru") else 1)

    def cell(d_in):  # one cell, per token
        return 2 * (d_in * n_in * d + d * n_rec * d)

    residual = 2 * d * d
    src = cell(e) + (cell(e) + cell(d) if config.context_aware else cell(e)) + residual
    src += (config.num_encoder_layers - 1) * (cell(d) + residual)
    src += 2 * d * d  # attention keys W_k m
    tgt = 0
    for i in range(config.num_decoder_layers):
        tgt += cell(e if i == 0 else d) + cell(d) + residual
    tgt += 2 * d * d + 2 * src_len * d + 2 * src_len * d  # query, scores, context
    output = 2 * (2 * d) * e + 2 * e * tgt_vocab  # readout, logits
    per_sentence = config.num_decoder_layers * 2 * d * state
    if tgt_tokens is None:
        tgt_tokens = batch * tgt_len
    return batch * (src_len * src + tgt_len * tgt + per_sentence) + tgt_tokens * output


def train_step_flops(config, batch, src_len, tgt_len, tgt_vocab, tgt_tokens=None):
    """Forward + backward: the backward pass does two products per forward product."""
    return 3 * model_flops(config, batch, src_len, tgt_len, tgt_vocab, tgt_tokens)


# -- one cell, in a child process ----------------------------------------------------------


def child(cell, size, data_dir):
    from zero import data
    from zero.decode import Translator
    from zero.session import load_vocabs, make_session
    from zero.train import TrainGraph
    from zero.vocab import Vocab

    tf.compat.v1.disable_eager_execution()
    config = model_config(cell, size, data_dir)
    _, _, src_size, tgt_size = load_vocabs(config)
    src_vocab = Vocab.load(os.path.join(data_dir, "vocab.en"))
    tgt_vocab = Vocab.load(os.path.join(data_dir, "vocab.de"))
    src, tgt = benchlib.train_batch(data_dir, src_vocab, tgt_vocab, TOKENS, config.max_len)
    graph = tf.Graph()
    with graph.as_default():
        g = TrainGraph(config, src_size, tgt_size)
        translator = Translator([g.model], config) if DECODE_RUNS > 0 else None
        init = v1.global_variables_initializer()
    sess = make_session(config, graph)
    sess.run(init)
    out = {"params": g.num_params, "batch": list(src.shape) + [tgt.shape[1]]}
    out["src_tokens"] = int((src > 0).sum())
    out["tgt_tokens"] = int((tgt > 0).sum())

    if translator is not None:
        batches = list(
            data.EvalBatches(
                os.path.join(data_dir, "test.bpe.en"),
                src_vocab,
                batch_tokens=config.decode_batch_tokens,
                limit=DECODE_SENTENCES,
            )
        )
        sentences = sum(len(b["index"]) for b in batches)
        translator.run(sess, batches[0]["src"])  # warm-up: graph optimisation, allocations
        steps = []

        def decode_all():
            steps.clear()
            for b in batches:
                ids, _ = translator.run(sess, b["src"])
                steps.append(ids.shape[-1] * len(b["index"]))

        times = benchlib.times_ms(decode_all, 0, DECODE_RUNS)
        out["decode_ms"] = benchlib.median(times) / sentences
        out["decode_steps"] = sum(steps) / sentences
        out["decode_sentences"] = sentences

    feed = {g.src: src, g.tgt: tgt}
    fetches = [g.train_op, g.loss, g.lr, g.grad_norm]
    times = benchlib.times_ms(lambda: sess.run(fetches, feed), WARMUP, STEPS)
    out["train_s"] = benchlib.median(times) / 1000
    out["train_times"] = [round(t / 1000, 3) for t in times]
    b, s = src.shape
    out["flops"] = train_step_flops(config, b, s, tgt.shape[1], tgt_size, out["tgt_tokens"])
    out["peak_mb"] = benchlib.peak_rss_mb()
    return out


def run_child(cell, size, data_dir):
    args = ["--child", cell, size, "--data", data_dir]
    return benchlib.run_child(os.path.abspath(__file__), args, f"{cell} at {size} size")


# -- the table -----------------------------------------------------------------------------


def fmt(value, spec, none="-"):
    """format(value, spec), or `none` right-aligned to the spec's width."""
    if value is None:
        width = spec.split(".")[0]
        return format(none, f">{width}") if width else none
    return format(value, spec)


def print_table(size, results, peak):
    first = next(iter(results.values()))
    b, s, t = first["batch"]
    print(
        f"\n{size} size: batch {b} sentences, {first['src_tokens']} source / "
        f"{first['tgt_tokens']} target tokens (padded {b}x{s} / {b}x{t})"
    )
    head = (
        f"{'cell':<5} {'params':>7} {'s/step':>7} {'xGRU':>5} {'GFLOP':>7} {'GFLOP/s':>8} "
        f"{'%peak':>6} {'ms/sent':>8} {'xGRU':>5} {'steps':>6} {'peakMB':>7} "
        f"{'paper s/batch':>13} {'paper ms/sent':>13}"
    )
    print(head)
    gru = results.get("gru")
    for cell, r in results.items():
        rate = r["flops"] / r["train_s"] / 1e9
        train_x = gru["train_s"] / r["train_s"] if gru else None
        dec = r.get("decode_ms")
        dec_x = gru["decode_ms"] / dec if gru and dec else None
        paper_train, paper_dec = benchlib.PAPER[cell]
        print(
            f"{benchlib.SHOWN[cell]:<5} {r['params'] / 1e6:6.1f}M {r['train_s']:7.3f} "
            f"{fmt(train_x, '5.2f')} {r['flops'] / 1e9:7.1f} {rate:8.1f} "
            f"{100 * rate / peak:5.1f}% {fmt(dec, '8.2f')} {fmt(dec_x, '5.2f')} "
            f"{fmt(r.get('decode_steps'), '6.1f')} {fmt(r['peak_mb'], '7.0f')} "
            f"{fmt(paper_train, '13.2f')} {fmt(paper_dec, '13.2f')}"
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA", "prepared/sample"))
    parser.add_argument("--child", nargs=2, metavar=("CELL", "SIZE"))
    parser.add_argument(
        "--json",
        default="runs/bench/model.json",
        help="where to save the results (read by scripts/reproduce_table.sh)",
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.data)))
        return
    benchlib.check_data(args.data)
    args.data = os.path.abspath(args.data)
    tf.compat.v1.disable_eager_execution()
    from zero import config as config_lib
    from zero.session import session_config

    threads = int(config_lib.load(None, [f"threads={THREADS}"]).threads)
    peak_config = session_config(config_lib.Config(threads=threads))
    print(
        f"median of {STEPS} training steps after {WARMUP} warm-up, best of {ROUNDS} round(s); "
        f"decoding: beam 4, "
        f"{DECODE_SENTENCES} test sentences, median of {DECODE_RUNS} run(s) after a warm-up batch;"
        f" threads {threads or 'TensorFlow default'}; data {args.data}"
    )
    print(
        "decoding uses randomly initialised models: no hypothesis ends early, every cell "
        "decodes to the maximum length (source length + 50), the same steps for every cell"
    )
    if SETS:
        print(f"config overrides: {' '.join(SETS)}")
    start_load, start = benchlib.load_avg(), time.time()
    peak = benchlib.matmul_peak(config=peak_config)
    results = {size: {} for size in SIZES}
    for _ in range(ROUNDS):
        for size in SIZES:
            for cell in CELLS:
                r = run_child(cell, size, args.data)
                decode = fmt(r.get("decode_ms"), ".2f")
                print(
                    f"  {size} {cell}: {r['train_s']:.3f} s/step {r['train_times']}, decode "
                    f"{decode} ms/sentence (load {benchlib.load_avg():.1f})",
                    flush=True,
                )
                best = results[size].setdefault(cell, r)
                # Over rounds, the fastest: other processes on the machine only slow a run down.
                if r["train_s"] < best["train_s"]:
                    best.update({k: r[k] for k in ("train_s", "train_times")})
                if r.get("decode_ms", 1e30) < best.get("decode_ms", 1e30):
                    best["decode_ms"] = r["decode_ms"]
                best["peak_mb"] = max(best["peak_mb"], r["peak_mb"])
    peak = max(peak, benchlib.matmul_peak(config=peak_config))
    print(f"\nfp32 matmul peak (big tf.matmul, best of runs): {peak:.1f} GFLOP/s")
    print(
        f"load average (1 min) at start {start_load:.2f}, at end {benchlib.load_avg():.2f}; "
        f"{time.time() - start:.0f} s"
    )
    for size in SIZES:
        print_table(size, results[size], peak)
    benchlib.write_results(
        args.json,
        {"steps": STEPS, "rounds": ROUNDS, "peak_gflops": peak, "results": results},
    )
    paper = results.get("paper", {})
    if "lrn" in paper and "gru" in paper:
        lrn, gru = paper["lrn"], paper["gru"]
        speed = gru["train_s"] / lrn["train_s"]
        ratio = gru["flops"] / lrn["flops"]
        print(f"\nLRN/GRU train speedup (paper size): {speed:.2f}x (FLOP ratio {ratio:.2f}x)")
        if lrn.get("decode_ms") and gru.get("decode_ms"):
            speed = gru["decode_ms"] / lrn["decode_ms"]
            print(f"LRN/GRU decode speedup (paper size): {speed:.2f}x")
    if paper:
        util = {c: 100 * r["flops"] / r["train_s"] / 1e9 / peak for c, r in paper.items()}
        low = min(util, key=util.get)
        print(
            f"Lowest train step utilisation of matmul peak (paper size): {util[low]:.0f}% "
            f"({benchlib.SHOWN[low]})"
        )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
