"""The paper-versus-ours table (issue 6): for every cell, the paper's figures (DESIGN.md, WMT14
En-De on one GPU) beside ours on this machine. It reads results that earlier runs left behind
and retrains nothing:

  - parameters of the paper-size model, its training seconds per batch and decode ms per
    sentence (beam 4, random weights, the same steps for every cell): runs/bench/model.json
    (bash scripts/bench_model.sh); parameters are counted here when the file is missing
    (building the graph needs no data);
  - decode ms per sentence, beam 4, trained sample models: runs/bench/decode.json
    (bash scripts/bench_decode.sh --model-root runs/compare);
  - BLEU of the sample configs trained with an equal budget: runs/compare/<cell>/ (bash
    scripts/compare_cells.sh): test.score, validation.jsonl (dev BLEU curve, steps, budget).

Usage: bash scripts/reproduce_table.sh [--bench DIR] [--compare DIR]   (prints Markdown)
"""

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402

# DESIGN.md: newstest2014, case-insensitive tokenized BLEU; parameters in millions.
PAPER_BLEU = {"gru": 26.28, "atr": 25.70, "sru": 25.91, "lrn": 26.26, "olrn": 26.73}
PAPER_PARAMS = {"gru": 206, "atr": 122, "sru": 170, "lrn": 143, "olrn": 164}
PAPER_VOCAB = 27750


def read_json(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def count_params(cell):
    """Parameters of configs/wmt14_<cell>.yaml with 27750-word vocabularies (no data needed)."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    from zero import config as config_lib
    from zero.runner import parameter_table

    sets = ["src_vocab=null", "tgt_vocab=null"]
    sets += [f"src_vocab_size={PAPER_VOCAB}", f"tgt_vocab_size={PAPER_VOCAB}"]
    config = config_lib.load(os.path.join(ROOT, f"configs/wmt14_{cell}.yaml"), sets)
    return sum(n for _, n in parameter_table(config))


def read_scores(path):
    """(sacreBLEU, chrF2, tokenized case-insensitive BLEU) from a scripts/score.sh output."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found = {}
    for key, pattern in (
        ("bleu", r"^BLEU\|.*? = ([\d.]+)"),
        ("chrf", r"^chrF2\|.*? = ([\d.]+)"),
        ("tok_bleu", r"^tokenized BLEU.*? = ([\d.]+)"),
    ):
        m = re.search(pattern, text, re.M)
        found[key] = float(m.group(1)) if m else None
    return found


def read_run(directory):
    """What a compare_cells.sh run left: scores, dev BLEU curve, steps, budget and clock."""
    scores = read_scores(os.path.join(directory, "test.score"))
    path = os.path.join(directory, "validation.jsonl")
    if scores is None or not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        curve = [json.loads(line) for line in f if line.strip()]
    config = {}
    config_path = os.path.join(directory, "config.yaml")
    if os.path.exists(config_path):
        import yaml

        with open(config_path, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
    last = curve[-1] if curve else {}
    return {
        **scores,
        "curve": [(r["step"], r.get("dev_bleu")) for r in curve],
        "steps": last.get("step"),
        "seconds": last.get("elapsed"),
        "budget": config.get("max_time"),
        "clock": config.get("time_clock", "wall"),
        "by_time": config.get("lr_progress") == "time",
    }


def fmt(value, spec, none="-"):
    return none if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", default="runs/bench", help="benchmark results directory")
    parser.add_argument("--compare", default="runs/compare", help="compare_cells.sh output")
    args = parser.parse_args()
    model = read_json(os.path.join(args.bench, "model.json"))
    decode = read_json(os.path.join(args.bench, "decode.json"))
    paper_size = (model or {}).get("results", {}).get("paper", {})
    decoded = (decode or {}).get("results", {})
    runs = {c: read_run(os.path.join(args.compare, c)) for c in benchlib.CELLS}

    source = model or decode or {}
    print(
        f"Measured {source.get('date', '-')} on {source.get('machine', benchlib.machine())}, "
        f"TensorFlow {source.get('tensorflow', '-')}; the paper: WMT14 En-De on one GPU."
    )
    print()
    print(
        "| cell | params paper | params ours | s/batch paper (GPU) | s/batch ours (CPU) | "
        "decode ms/sent paper | decode ms/sent ours | BLEU paper (WMT14) | "
        "sample test sacreBLEU | sample tok. BLEU | sample chrF2 | steps in budget | "
        "sample decode ms/sent |"
    )
    print("|---" * 13 + "|")
    gru_train = paper_size.get("gru", {}).get("train_s")
    gru_paper_decode = paper_size.get("gru", {}).get("decode_ms")
    gru_decode = decoded.get("gru", {}).get("ms")
    for cell in benchlib.CELLS:
        paper_train, paper_decode = benchlib.PAPER[cell]
        bench = paper_size.get(cell, {})
        params = bench.get("params") or count_params(cell)
        train_s, paper_ms = bench.get("train_s"), bench.get("decode_ms")
        ms = decoded.get(cell, {}).get("ms")
        run = runs[cell] or {}

        def vs_gru(value, gru):
            return f" ({gru / value:.2f}x)" if value and gru else ""

        paper_vs = f" ({benchlib.PAPER['gru'][0] / paper_train:.2f}x)" if paper_train else ""
        paper_dec_vs = f" ({benchlib.PAPER['gru'][1] / paper_decode:.2f}x)" if paper_decode else ""
        paper_params = f"{PAPER_PARAMS[cell]}M" if cell in PAPER_PARAMS else "-"
        print(
            f"| {benchlib.SHOWN[cell]} | {paper_params} "
            f"| {params / 1e6:.1f}M "
            f"| {fmt(paper_train, '.2f')}{paper_vs} "
            f"| {fmt(train_s, '.2f')}{vs_gru(train_s, gru_train)} "
            f"| {fmt(paper_decode, '.2f')}{paper_dec_vs} "
            f"| {fmt(paper_ms, '.2f')}{vs_gru(paper_ms, gru_paper_decode)} "
            f"| {fmt(PAPER_BLEU.get(cell), '.2f')} "
            f"| {fmt(run.get('bleu'), '.2f')} | {fmt(run.get('tok_bleu'), '.2f')} "
            f"| {fmt(run.get('chrf'), '.2f')} | {fmt(run.get('steps'), 'd')} "
            f"| {fmt(ms, '.2f')}{vs_gru(ms, gru_decode)} |"
        )
    print()
    notes = []
    if paper_size:
        tokens = next(iter(paper_size.values()), {}).get("src_tokens")
        notes.append(
            f"s/batch ours: paper-size model (27750-word vocabularies), one fixed batch of "
            f"{tokens} source tokens of real sample sentences, median of {model.get('steps')} "
            f"steps, best of {model.get('rounds', 1)} round(s) (scripts/bench_model.sh); "
            "(x) = speedup over GRU."
        )
        sentences = next(iter(paper_size.values()), {}).get("decode_sentences")
        notes.append(
            f"decode ms/sent ours: the same paper-size models, beam 4, {sentences} sample test "
            "sentences; random weights, so every cell decodes the same number of steps "
            "(source length + 50)."
        )
    else:
        notes.append("s/batch ours: run `bash scripts/bench_model.sh` first.")
    if decode:
        kind = "trained sample models" if decode.get("mode") == "trained" else "random models"
        notes.append(
            f"sample decode: beam 4, {kind}, sample size (hidden 256), sample test set "
            "(scripts/bench_decode.sh)."
        )
    else:
        notes.append(
            "sample decode: run `bash scripts/bench_decode.sh --model-root runs/compare` first."
        )
    done = {c: r for c, r in runs.items() if r}
    if done:
        r = next(iter(done.values()))
        notes.append(
            f"sample BLEU: configs/sample_<cell>.yaml trained by scripts/compare_cells.sh with "
            f"the same budget of {fmt(r['budget'], '.0f')} {r['clock']}-clock seconds per cell"
            + (", learning-rate schedule stretched over the budget" if r["by_time"] else "")
            + "; test set of the bundled sample (2000 sentences), best checkpoint by dev "
            "BLEU, beam 4."
        )
        notes.append("dev BLEU curves (step: BLEU):")
        for cell, r in done.items():
            curve = ", ".join(f"{s}: {fmt(b, '.1f')}" for s, b in r["curve"])
            per_step = r["seconds"] / r["steps"] if r["steps"] else None
            notes.append(
                f"  {benchlib.SHOWN[cell]}: {curve} ({fmt(per_step, '.2f')} {r['clock']} s/step)"
            )
    else:
        notes.append("sample BLEU: run `bash scripts/compare_cells.sh` first.")
    for line in notes:
        print(line)


if __name__ == "__main__":
    main()
