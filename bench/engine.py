"""The decoding engine on one trained model (`bench decode --model DIR`): every technique
switchable, all measured side by side in one process on the same batches.

For the model directory's best checkpoint and the test set of --data (test.bpe.en, test.de):
  - the baseline path: the original search, every technique of zero.decode.TECHNIQUES off;
  - each exact technique alone, two batches decoded at once (decode_parallel_batches 2),
    then all of them (the exact path; its 1-best outputs, which the bench reads, are the
    baseline's, token for token, up to rounding: the changed column counts the sentences
    that differ);
  - bfloat16 matrix products, the output shortlist (the model directory's shortlist.npz,
    built if missing), early stop, the sample configs' maximum output length (1.5 x source +
    10, where the model's own may be source + 50), both together (the sample configs'
    decoding) and combinations (the approximate paths).
Each is decoded --runs times, interleaved with the others so they share the machine's state,
median per path; sentences/s, target tokens/s and test sacreBLEU. Then where the time goes
(a traced pass over a few batches, op time summed by what the op belongs to), the share of
decoder steps the baseline spends on sentences already finished (padding waste), and the
matrix work (FLOPs of every product the path ran: encoder, decoder steps, output layer)
against the machine's fp32 matmul peak measured in the same run: "% of matmul bound" is the
time that work takes at the peak over the time it took.
"""

import collections
import os
import re
import time

import tensorflow as tf

from bench import common, flops

v1 = tf.compat.v1

EXACT = "exact (all on)"
TWO = "2 batches at once"
PATHS = (
    "baseline",
    "drop finished",
    "vocab table",
    "shared memory",
    "row top-k",
    "row top-k+normaliser",
    "projected memory",
    "stop at n-best",
    TWO,
    EXACT,
)
# With finished sentences leaving, larger batches waste nothing: the exact path with 2x and 4x
# decode_batch_tokens (the same translations up to rounding, which batch sizes change).
BIGGER = ("exact, 2x batches", "exact, 4x batches")
SHORTER = "max length 1.5x+10"  # the sample configs' maximum output length
SAMPLE = "1.5x+10+early stop"  # the sample configs' decoding
APPROXIMATE = (
    "bfloat16",
    "shortlist",
    "early stop",
    "shortlist+early stop",
    SHORTER,
    SAMPLE,
    "shortlist+bfloat16",
)
# Op time by what the op belongs to: first match of the node name wins.
PARTS = (
    (
        "encoder",
        r"encoder|embedding|precompute|decoder/init|^model/decoder/layer_0/attention/MatMul",
    ),
    ("attention", r"attention"),
    ("output layer", r"output_layer|readout|LogSoftmax|log_softmax"),
    ("top-k and softmax", r"candidates|TopKV2|top_k|Logsumexp|ArgMax"),
    ("cells", r"decoder/layer"),
)


def variant_configs(config):
    """{path name: config overrides} of every path measured."""
    from zero.decode import TECHNIQUES

    # Early stop is approximate: off on every exact path, whatever the model's config says.
    off = {
        **dict.fromkeys(TECHNIQUES, False),
        "decode_parallel_batches": 1,
        "decode_early_stop": False,
    }
    names = dict(zip(PATHS[1 : 1 + len(TECHNIQUES)], TECHNIQUES, strict=True))
    paths = {"baseline": off}
    paths.update({name: {**off, key: True} for name, key in names.items()})
    # The normaliser works on the rows row top-k finds: measured beside row top-k alone.
    paths["row top-k+normaliser"]["decode_row_topk"] = True
    paths[TWO] = {**off, "decode_parallel_batches": 2}
    on = {
        **off,
        **dict.fromkeys(TECHNIQUES, True),
        "decode_parallel_batches": config.decode_parallel_batches,
    }
    paths[EXACT] = on
    for name, scale in zip(BIGGER, (2, 4), strict=True):
        paths[name] = {**on, "decode_batch_tokens": scale * config.decode_batch_tokens}
    paths["bfloat16"] = {**on, "precision": "bfloat16"}
    paths["early stop"] = {**on, "decode_early_stop": True}
    paths[SHORTER] = {**on, "max_decode_factor": 1.5, "max_decode_extra": 10}
    # The sample configs also leave the projected memory off (one decoder layer).
    paths[SAMPLE] = {
        **paths[SHORTER],
        "decode_early_stop": True,
        "decode_projected_memory": False,
    }
    paths["shortlist+early stop"] = {**paths["early stop"], "shortlist": config.shortlist}
    paths["shortlist"] = {**on, "shortlist": config.shortlist}
    paths["shortlist+bfloat16"] = {**on, "shortlist": config.shortlist, "precision": "bfloat16"}
    return paths


def _build(config, paths):
    """inference.load build function: one Translator per path, on one set of weights (a
    path in another precision gets a Model object of its own on the same variables)."""
    from zero import config as config_lib
    from zero import shortlist
    from zero.decode import Translator
    from zero.model import Model

    def build(models, vocabs):
        out = {}
        for name, overrides in paths.items():
            cfg = config_lib.Config({**config, **overrides})
            model = models[0]
            if cfg.precision != config.precision:
                model = Model(cfg, model.src_vocab_size, model.tgt_vocab_size, scope=model.scope)
            out[name] = Translator([model], cfg, shortlist=shortlist.configured(cfg, vocabs))
        return out

    return build


def _decode_pass(sess, translator, batches, vocab):
    """One pass over the batches: (seconds, [(index, best text, steps, output length)])."""
    from zero.decode import batch_src, strip_eos

    rows, sizes, start = [], [], time.perf_counter()
    found = translator.run_batches(sess, batches, details=True, source=batch_src)
    for batch, (ids, _, more) in found:
        sizes.append(int(more["output_size"]))
        for r, index in enumerate(batch["index"]):
            best = strip_eos(ids[r, 0])
            steps = int(more["steps"][r])
            rows.append((int(index), " ".join(vocab.decode(best)), steps, len(best) + 1))
    return time.perf_counter() - start, rows, sizes


def time_paths(loaded, batches, runs):
    """{path: {seconds: [...], rows: ...}}, the paths interleaved in each of `runs` rounds;
    batches: {path: its batches}."""
    out = {name: {"seconds": []} for name in loaded.outputs}
    for name, translator in loaded.outputs.items():  # warm-up: graph optimisation, tables
        translator.run(loaded.sess, batches[name][0]["src"])
    for _ in range(runs):
        for name, translator in loaded.outputs.items():
            seconds, rows, sizes = _decode_pass(
                loaded.sess, translator, batches[name], loaded.tgt_vocab
            )
            out[name]["seconds"].append(seconds)
            out[name]["rows"], out[name]["output_sizes"] = sorted(rows), sizes
    return out


def breakdown(loaded, name, batches):
    """Summed op time of a traced pass over `batches` by part (PARTS; the rest is the search's
    bookkeeping), in shares."""
    translator, parts = loaded.outputs[name], collections.Counter()
    options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
    for batch in batches:
        meta = v1.RunMetadata()
        fetches = [translator.ids, translator.scores]
        loaded.sess.run(fetches, {translator.src: batch["src"]}, options, meta)
        for dev in meta.step_stats.dev_stats:
            for node in dev.node_stats:
                label = node.timeline_label
                if node.node_name == "_SOURCE" or re.search(r"= (While|StatelessWhile)\(", label):
                    continue  # a loop's time is its body ops'
                part = next(
                    (p for p, pattern in PARTS if re.search(pattern, node.node_name)),
                    "beam bookkeeping",
                )
                parts[part] += node.all_end_rel_micros
    total = sum(parts.values())
    return {p: parts[p] / total for p in [p for p, _ in PARTS] + ["beam bookkeeping"]}


def work(config, batches, result):
    """FLOPs of the products a path ran: per batch the encoder, then one decoder step per
    sentence for the first word and beam_size hypotheses per step after it, each step's
    products over the batch's padded source length and the words its output layer scored."""
    steps = {index: s for index, _, s, _ in result["rows"]}
    total, beam = 0.0, config.beam_size
    projected = config.decode_projected_memory
    for batch, size in zip(batches, result["output_sizes"], strict=True):
        src_len = batch["src"].shape[1]
        total += flops.encoder_flops(config, src_len, projected) * len(batch["index"])
        per_step = flops.decode_step_flops(
            config, src_len, size, config.decode_vocab_table, projected
        )
        for index in batch["index"]:
            total += per_step * (1 + beam * (steps[int(index)] - 1))
    return total


def waste(result):
    """Share of the decoder steps of `result` (a path without dropping finished sentences)
    run for sentences that were done: each sentence needed `done` steps (the exact path's)."""
    return result["wasted_steps"] / result["all_steps"]


def bleu(rows, refs, lang):
    from zero import evaluate

    hyps = evaluate.postprocess([text for _, text, _, _ in rows], lang)
    return float(evaluate.sacrebleu_score(hyps, refs[: len(hyps)])[0])


def _shortlist(config, model_dir):
    """The model directory's shortlist.npz, built now if missing."""
    from zero import shortlist
    from zero.vocab import load_vocabs

    path = os.path.join(model_dir, shortlist.FILE)
    if not os.path.exists(path):
        src_vocab, tgt_vocab, _, _ = load_vocabs(config)
        shortlist.build_mode(config, src_vocab, tgt_vocab, path)
    return path


def measure(model_dir, data_dir, *, sentences, runs, trace_batches, threads, sets=()):
    """Child function: every path on the model in model_dir (see the module docstring)."""
    from zero import config as config_lib
    from zero import inference
    from zero.batching import EvalBatches
    from zero.textio import lines_of

    v1.disable_eager_execution()
    overrides = [f"output_dir={model_dir}", f"threads={threads}", *sets]
    config = config_lib.load(config_lib.saved_path(model_dir), overrides)
    config["shortlist"] = _shortlist(config, model_dir)
    loaded = inference.load(config, _build(config, variant_configs(config)), ensemble=False)
    src = os.path.join(data_dir, "test.bpe.en")
    paths = variant_configs(config)
    budgets = {
        n: p.get("decode_batch_tokens", config.decode_batch_tokens) for n, p in paths.items()
    }
    cut = {
        b: list(EvalBatches(src, loaded.src_vocab, b, limit=sentences))
        for b in set(budgets.values())
    }
    batches = {name: cut[b] for name, b in budgets.items()}
    peak_config = common.session_config(threads)
    peak = common.matmul_peak(config=peak_config)
    results = time_paths(loaded, batches, runs)
    peak = max(peak, common.matmul_peak(config=peak_config))
    refs = lines_of(os.path.join(data_dir, "test.de"))
    exact_steps = {i: s for i, _, s, _ in results[EXACT]["rows"]}
    baseline_texts = [text for _, text, _, _ in results["baseline"]["rows"]]
    for name, r in results.items():
        cfg = config_lib.Config({**config, **variant_configs(config)[name]})
        r["flops"] = work(cfg, batches[name], r)
        r["bleu"] = bleu(r["rows"], refs, config.tgt_lang)
        r["all_steps"] = sum(s for _, _, s, _ in r["rows"])
        r["wasted_steps"] = sum(s - exact_steps[i] for i, _, s, _ in r["rows"])
        r["tokens"] = sum(n for _, _, _, n in r["rows"])
        texts = [text for _, text, _, _ in r["rows"]]
        r["changed"] = sum(a != b for a, b in zip(baseline_texts, texts, strict=True))
    traced = batches["baseline"][:trace_batches]
    parts = {name: breakdown(loaded, name, traced) for name in ("baseline", EXACT)}
    return {
        "peak_gflops": peak,
        "sentences": sum(len(b["index"]) for b in batches["baseline"]),
        "batches": len(batches["baseline"]),
        "config": {
            k: config[k] for k in ("cell", "hidden_size", "beam_size", "decode_batch_tokens")
        },
        "paths": {n: {k: v for k, v in r.items() if k != "rows"} for n, r in results.items()},
        "breakdown": parts,
    }


# -- the report ------------------------------------------------------------------------------


def _line(name, r, base, peak, sentences):
    seconds = common.median(r["seconds"])
    gflops = r["flops"] / seconds / 1e9
    bound = r["flops"] / (peak * 1e9) / seconds
    return (
        f"{name:<20} {1000 * seconds / sentences:8.2f} {sentences / seconds:8.1f} "
        f"{r['tokens'] / seconds:9.0f} {base / seconds:6.2f}x {r['all_steps'] / sentences:6.1f} "
        f"{gflops:8.1f} {100 * bound:6.1f}% {r['bleu']:6.2f} {r['changed']:7d}"
    )


def report(out):
    """Print the tables and the summary lines of measure()'s result."""
    paths, peak, n = out["paths"], out["peak_gflops"], out["sentences"]
    base = common.median(paths["baseline"]["seconds"])
    print(f"\nfp32 matmul peak (measured in this run): {peak:.1f} GFLOP/s")
    print(
        f"{'path':<20} {'ms/sent':>8} {'sent/s':>8} {'tok/s':>9} {'xbase':>7} {'steps':>6} "
        f"{'GFLOP/s':>8} {'%bound':>7} {'BLEU':>6} {'changed':>7}"
    )
    for name in PATHS + BIGGER + APPROXIMATE:
        print(_line(name, paths[name], base, peak, n))
    sizes = paths["shortlist"]["output_sizes"]
    print(f"\nshortlist: {sum(sizes) / len(sizes):.0f} output words per batch on average")
    print(
        f"padding waste: the baseline runs {paths['baseline']['all_steps'] / n:.1f} decoder "
        f"steps per sentence, the sentences needed {paths[EXACT]['all_steps'] / n:.1f}: "
        f"{100 * waste(paths['baseline']):.1f}% of its steps are for finished sentences"
    )
    print("\nwhere the time goes (traced op time, shares):")
    for name, shares in out["breakdown"].items():
        print(f"  {name}: " + ", ".join(f"{p} {100 * v:.1f}%" for p, v in shares.items()))
    exact = paths[EXACT]
    bound = exact["flops"] / (peak * 1e9) / common.median(exact["seconds"])
    best = paths["shortlist+bfloat16"]
    print(
        f"\nExact decoding speedup over the baseline path: "
        f"{base / common.median(exact['seconds']):.2f}x ({100 * bound:.0f}% of matmul bound)"
    )
    print(
        f"Shortlist+bfloat16 decoding speedup over the baseline path: "
        f"{base / common.median(best['seconds']):.2f}x (BLEU {best['bleu'] - exact['bleu']:+.2f})"
    )
