r"""Training input pipeline: start-up, batches/s, peak memory, restore time.

    python -m bench data [--sample DIR] [--workdir /tmp/zero-bench] [--pairs 4500000]
        [--batch-tokens 4096] [--max-len 80] [--buffer-size 100000] [--batches 3000]
    smoke run: python -m bench data --sample prepared/sample --workdir /tmp/zero-bench-smoke \
        --pairs 20000 --batches 20

Measures zero.data.TrainStream on the prepared sample corpus (--sample; prepared into
WORKDIR/sample when not given) and on a synthetic WMT14-like corpus of --pairs pairs (generated
once in WORKDIR, about 1.5 GB at the default 4.5M pairs, and reused while its size and seed
match). Each measurement runs in a fresh child process (bench/child.py) so that its peak memory
is its own (VmHWM; the resource.getrusage ru_maxrss is printed too but carries over the
parent's peak across exec).
TensorFlow is never imported here: the figures are the pipeline's alone.
"""

import json
import os
import resource
import subprocess
import time

import numpy as np

from bench import common
from bench.child import run_in_child


def add_arguments(parser):
    parser.add_argument("--sample", help="prepared sample dir (default: prepare one in WORKDIR)")
    parser.add_argument("--workdir", default="/tmp/zero-bench", help="synthetic corpus dir")
    parser.add_argument("--pairs", type=int, default=4_500_000, help="synthetic pairs")
    parser.add_argument("--batch-tokens", type=int, default=4096)
    parser.add_argument("--max-len", type=int, default=80)
    parser.add_argument("--buffer-size", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=3000, help="batches timed")


def _subword_table(vocab_size):
    """[vocab_size, 6] bytes: a 5-letter subword and a space per id."""
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
    ids = np.arange(vocab_size)
    table = np.full((vocab_size, 6), ord(" "), np.uint8)
    for k in range(5):
        table[:, k] = letters[(ids // 26**k) % 26]
    return table


def _write_corpus(src, tgt, pairs, table, rng):
    """Zipfian subwords; source lengths log-normal around 27 tokens (some over 80), target
    lengths correlated. Written in blocks of 100k pairs with numpy."""
    vocab_size = len(table)
    cdf = np.cumsum(1.0 / (np.arange(vocab_size) + 10.0))
    cdf /= cdf[-1]
    with open(src, "wb") as fs, open(tgt, "wb") as ft:
        for start in range(0, pairs, 100_000):
            n = min(100_000, pairs - start)
            ls = np.clip(np.round(rng.lognormal(np.log(24), 0.6, n)), 1, 150).astype(np.int64)
            lt = np.clip(np.round(ls * rng.lognormal(0.05, 0.15, n)), 1, 150).astype(np.int64)
            for lens, f in ((ls, fs), (lt, ft)):
                toks = table[np.searchsorted(cdf, rng.random(int(lens.sum())))]
                toks[np.cumsum(lens) - 1, 5] = ord("\n")
                f.write(toks.tobytes())


def synthesize(workdir, pairs, vocab_size=32000, seed=0):
    """A WMT14-like BPE corpus in workdir: (source, target, vocabulary) paths. syn.json, written
    last, says which corpus is complete there, so an interrupted run is redone, not reused."""
    from zero.textio import atomic_write_text

    src, tgt = os.path.join(workdir, "syn.src"), os.path.join(workdir, "syn.tgt")
    voc, marker = os.path.join(workdir, "syn.vocab"), os.path.join(workdir, "syn.json")
    want = {"pairs": pairs, "vocab_size": vocab_size, "seed": seed}
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            if json.load(f) == want:
                return src, tgt, voc
        os.unlink(marker)
    os.makedirs(workdir, exist_ok=True)
    table = _subword_table(vocab_size)
    start = time.time()
    _write_corpus(src, tgt, pairs, table, np.random.default_rng(seed))
    words = "".join(row[:5].tobytes().decode() + "\n" for row in table)
    atomic_write_text(voc, "<pad>\n<unk>\n<s>\n</s>\n" + words)
    atomic_write_text(marker, json.dumps(want))
    print(f"synthesized {pairs:,} pairs in {time.time() - start:.0f}s: {src}, {tgt}", flush=True)
    return src, tgt, voc


def _time_batches(stream, batches):
    """(seconds, target tokens, sentences) of the next `batches` batches."""
    start = time.perf_counter()
    tokens = sentences = 0
    for _ in range(batches):
        b = next(stream)
        tokens += b["num_tgt_tokens"]
        sentences += len(b["tgt"])
    return time.perf_counter() - start, tokens, sentences


def measure(src, tgt, src_vocab, tgt_vocab, batch_tokens, max_len, batches, buffer_size):
    """Child function: start-up, first batch, steady batches/s, restore time, peak RSS."""
    from zero.data import TrainStream
    from zero.vocab import Vocab

    base = common.peak_rss_mb()
    sv, tv = Vocab.load(src_vocab), Vocab.load(tgt_vocab)
    settings = {"seed": 1, "buffer_size": buffer_size}
    t0 = time.perf_counter()
    stream = TrainStream(src, tgt, sv, tv, batch_tokens, max_len, **settings)
    t_init = time.perf_counter() - t0
    next(stream)
    t_first = time.perf_counter() - t0
    dt, n_tok, n_sent = _time_batches(stream, batches)
    pos = stream.position()
    stream.close()
    fresh = TrainStream(src, tgt, sv, tv, batch_tokens, max_len, **settings)
    t2 = time.perf_counter()
    fresh.restore(pos)
    next(fresh)
    t_restore = time.perf_counter() - t2
    fresh.close()
    return {
        "lines": stream.num_lines,
        "buffers_per_epoch": stream.num_buffers,
        "startup_scan_s": round(t_init, 2),
        "startup_to_first_batch_s": round(t_first, 2),
        "batches": batches,
        "batches_per_s": round(batches / dt, 1),
        "sentences_per_batch": round(n_sent / batches, 1),
        "tgt_tokens_per_s": round(n_tok / dt),
        "restore_to_first_batch_s": round(t_restore, 2),
        "peak_rss_mb": round(common.peak_rss_mb()),
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_before_mb": round(base),
    }


def _corpora(args):
    """{name: files} of the sample and the synthetic corpus (preparing them when missing)."""
    sample = args.sample or os.path.join(args.workdir, "sample")
    if not os.path.exists(os.path.join(sample, "prep.json")):
        script = os.path.join(common.ROOT, "scripts", "prepare_sample.sh")
        subprocess.run(["bash", script, sample], check=True)
    syn_src, syn_tgt, syn_voc = synthesize(args.workdir, args.pairs)
    return {
        "sample": {
            "src": os.path.join(sample, "train.bpe.en"),
            "tgt": os.path.join(sample, "train.bpe.de"),
            "src_vocab": os.path.join(sample, "vocab.en"),
            "tgt_vocab": os.path.join(sample, "vocab.de"),
        },
        f"synthetic {args.pairs / 1e6:g}M": {
            "src": syn_src,
            "tgt": syn_tgt,
            "src_vocab": syn_voc,
            "tgt_vocab": syn_voc,
        },
    }


def main(args):
    options = {"batch_tokens": args.batch_tokens, "max_len": args.max_len}
    options.update(buffer_size=args.buffer_size, batches=args.batches)
    corpora = _corpora(args)
    print(f"batch_tokens={args.batch_tokens} max_len={args.max_len} buffer_size={args.buffer_size}")
    for name, files in corpora.items():
        size = sum(os.path.getsize(files[k]) for k in ("src", "tgt")) / 2**20
        r = run_in_child(measure, **files, **options)
        print(f"{name} ({size:,.0f} MiB of text): {json.dumps(r)}", flush=True)
