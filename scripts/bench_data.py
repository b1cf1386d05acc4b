"""Measures the training input pipeline (zero.data.TrainStream): start-up time, batches/s,
peak memory, restore time; on the prepared sample corpus and a synthetic WMT14-size corpus.

    python scripts/bench_data.py [--sample DIR] [--workdir /tmp/zero-bench] [--pairs 4500000]

Each measurement runs in a fresh process so that its peak memory is its own (VmHWM; the
resource.getrusage ru_maxrss is printed too but carries over the parent's peak across exec).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402


def synthesize(workdir, pairs, vocab_size=32000, seed=0):
    """A WMT14-like BPE corpus: Zipfian 5-letter subwords, source lengths log-normal around
    27 tokens (some over 80), target lengths correlated. Written in blocks with numpy."""
    src, tgt = os.path.join(workdir, "syn.src"), os.path.join(workdir, "syn.tgt")
    voc = os.path.join(workdir, "syn.vocab")
    if all(os.path.exists(p) for p in (src, tgt, voc)):
        return src, tgt, voc
    os.makedirs(workdir, exist_ok=True)
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
    ids = np.arange(vocab_size)
    table = np.full((vocab_size, 6), ord(" "), np.uint8)
    for k in range(5):
        table[:, k] = letters[(ids // 26**k) % 26]
    cdf = np.cumsum(1.0 / (np.arange(vocab_size) + 10.0))
    cdf /= cdf[-1]
    with open(voc + ".tmp", "w") as f:
        f.write("<pad>\n<unk>\n<s>\n</s>\n")
        f.writelines(row[:5].tobytes().decode() + "\n" for row in table)
    t0 = time.time()
    with open(src + ".tmp", "wb") as fs, open(tgt + ".tmp", "wb") as ft:
        for start in range(0, pairs, 100_000):
            n = min(100_000, pairs - start)
            ls = np.clip(np.round(rng.lognormal(np.log(24), 0.6, n)), 1, 150).astype(np.int64)
            lt = np.clip(np.round(ls * rng.lognormal(0.05, 0.15, n)), 1, 150).astype(np.int64)
            for lens, f in ((ls, fs), (lt, ft)):
                toks = table[np.searchsorted(cdf, rng.random(int(lens.sum())))]
                toks[np.cumsum(lens) - 1, 5] = ord("\n")
                f.write(toks.tobytes())
    for p in (src, tgt, voc):
        os.replace(p + ".tmp", p)
    print(f"synthesized {pairs:,} pairs in {time.time() - t0:.0f}s: {src}, {tgt}", flush=True)
    return src, tgt, voc


def measure(src, tgt, src_vocab, tgt_vocab, batch_tokens, max_len, batches, buffer_size):
    """In this process: start-up, first batch, steady batches/s, restore time, peak RSS."""
    from zero.data import TrainStream
    from zero.vocab import Vocab

    base = benchlib.peak_rss_mb()
    sv, tv = Vocab.load(src_vocab), Vocab.load(tgt_vocab)
    t0 = time.perf_counter()
    stream = TrainStream(src, tgt, sv, tv, batch_tokens, max_len, seed=1, buffer_size=buffer_size)
    t_init = time.perf_counter() - t0
    next(stream)
    t_first = time.perf_counter() - t0
    t1 = time.perf_counter()
    n_tok = n_sent = 0
    for _ in range(batches):
        b = next(stream)
        n_tok += b["num_tgt_tokens"]
        n_sent += len(b["tgt"])
    dt = time.perf_counter() - t1
    pos = stream.position()
    stream.close()
    fresh = TrainStream(src, tgt, sv, tv, batch_tokens, max_len, seed=1, buffer_size=buffer_size)
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
        "peak_rss_mb": round(benchlib.peak_rss_mb()),
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_before_mb": round(base),
    }


def run_child(args):
    return benchlib.run_child(__file__, ["--child", json.dumps(args)], "data benchmark child")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sample", help="prepared sample dir (default: prepare one in WORKDIR)")
    p.add_argument("--workdir", default="/tmp/zero-bench")
    p.add_argument("--pairs", type=int, default=4_500_000)
    p.add_argument("--batch-tokens", type=int, default=4096)
    p.add_argument("--max-len", type=int, default=80)
    p.add_argument("--buffer-size", type=int, default=100_000)
    p.add_argument("--batches", type=int, default=3000)
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(measure(**json.loads(a.child))))
        return
    sample = a.sample or os.path.join(a.workdir, "sample")
    if not os.path.exists(os.path.join(sample, "prep.json")):
        subprocess.run(
            ["bash", os.path.join(ROOT, "scripts", "prepare_sample.sh"), sample], check=True
        )
    common = {"batch_tokens": a.batch_tokens, "max_len": a.max_len, "buffer_size": a.buffer_size}
    syn_src, syn_tgt, syn_voc = synthesize(a.workdir, a.pairs)
    corpora = {
        "sample": {
            "src": os.path.join(sample, "train.bpe.en"),
            "tgt": os.path.join(sample, "train.bpe.de"),
            "src_vocab": os.path.join(sample, "vocab.en"),
            "tgt_vocab": os.path.join(sample, "vocab.de"),
        },
        f"synthetic {a.pairs / 1e6:g}M": {
            "src": syn_src,
            "tgt": syn_tgt,
            "src_vocab": syn_voc,
            "tgt_vocab": syn_voc,
        },
    }
    print(f"batch_tokens={a.batch_tokens} max_len={a.max_len} buffer_size={a.buffer_size}")
    for name, files in corpora.items():
        size = sum(os.path.getsize(files[k]) for k in ("src", "tgt")) / 2**20
        r = run_child({**files, **common, "batches": a.batches})
        print(f"{name} ({size:,.0f} MiB of text): {json.dumps(r)}", flush=True)


if __name__ == "__main__":
    main()
