"""The paper-versus-ours table (Markdown) from the results earlier runs left behind.

    python -m bench table [--bench runs/bench] [--compare runs/compare]

For every cell, the paper's figures (bench/paper.py: WMT14 En-De on one GPU) beside ours on
this machine. Nothing is retrained; a missing result shows as "-" with the command that
produces it:
  - parameters of the paper-size model, its training seconds per batch and decode ms per
    sentence (beam 4, random weights, the same steps for every cell): BENCH/model.json
    (bash scripts/bench_model.sh); parameters are counted here when the file is missing
    (building the graph needs no data);
  - decode ms per sentence, beam 4, trained sample models: BENCH/decode.json
    (bash scripts/bench_decode.sh --model-root runs/compare);
  - BLEU of the sample configs trained with an equal budget: COMPARE/<cell>/ (bash
    scripts/compare_cells.sh): test.score, validation.jsonl (dev BLEU curve, steps, budget);
  - when BENCH/gpu.json exists (bash scripts/gpu_check.sh, on a machine with a GPU), the
    paper-size training step in float32, float16 and bfloat16 and float32 beam-4 decoding on
    the GPU, as four more columns.
"""

import json
import os
import re

from bench import common, paper

COLUMNS = (
    "cell",
    "params paper",
    "params ours",
    "s/batch paper (GPU)",
    "s/batch ours (CPU)",
    "decode ms/sent paper",
    "decode ms/sent ours",
    "BLEU paper (WMT14)",
    "sample test sacreBLEU",
    "sample tok. BLEU",
    "sample chrF2",
    "steps in budget",
    "sample decode ms/sent",
)
# Shown when BENCH/gpu.json exists (bash scripts/gpu_check.sh on a machine with a GPU).
GPU_COLUMNS = (
    "s/batch ours (GPU) float32",
    "s/batch ours (GPU) float16",
    "s/batch ours (GPU) bfloat16",
    "decode ms/sent ours (GPU)",
)


def add_arguments(parser):
    parser.add_argument("--bench", default="runs/bench", help="benchmark results directory")
    parser.add_argument("--compare", default="runs/compare", help="compare_cells.sh output")


def read_json(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def count_params(cell):
    """Parameters of configs/wmt14_<cell>.yaml with the paper's vocabularies (no data needed)."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    from zero.modes.params import parameter_table

    config = common.model_config(cell, "paper", None)
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


def vs(value, base):
    """ " (base/value x)": the speedup of `value` over the GRU figure `base`, or nothing."""
    return f" ({base / value:.2f}x)" if value and base else ""


def table_row(cell, at_paper, decoded, run, gru):
    """One row's cells; `gru` holds GRU's figures that the "(x)" speedups divide."""
    theirs = paper.row(cell)
    bench = at_paper.get(cell, {})
    params = bench.get("params") or count_params(cell)
    train_s, paper_ms = bench.get("train_s"), bench.get("decode_ms")
    ms = decoded.get(cell, {}).get("ms")
    paper_train = theirs.train_s if theirs else None
    paper_decode = theirs.decode_ms if theirs else None
    run = run or {}
    cells = [
        common.shown(cell),
        f"{theirs.params_m}M" if theirs else "-",
        f"{params / 1e6:.1f}M",
        fmt(paper_train, ".2f") + vs(paper_train, paper.figure("gru", "train_s")),
        fmt(train_s, ".2f") + vs(train_s, gru["train_s"]),
        fmt(paper_decode, ".2f") + vs(paper_decode, paper.figure("gru", "decode_ms")),
        fmt(paper_ms, ".2f") + vs(paper_ms, gru["decode_ms"]),
        fmt(theirs.bleu if theirs else None, ".2f"),
        fmt(run.get("bleu"), ".2f"),
        fmt(run.get("tok_bleu"), ".2f"),
        fmt(run.get("chrf"), ".2f"),
        fmt(run.get("steps"), "d"),
        fmt(ms, ".2f") + vs(ms, gru["sample_ms"]),
    ]
    return cells


def gpu_row(cell, on_gpu):
    """The GPU columns of one row: s/step per precision, float32 decode ms (x over GRU)."""
    cells = []
    for precision, key in (*((p, "train_s") for p in ("float32", "float16", "bfloat16")),
                           ("float32", "decode_ms")):  # fmt: skip
        value = on_gpu.get(cell, {}).get(precision, {}).get(key)
        base = on_gpu.get("gru", {}).get(precision, {}).get(key)
        cells.append(fmt(value, ".2f") + vs(value, base))
    return cells


def gpu_notes(gpu):
    """How the GPU columns were measured, or the command that measures them."""
    if gpu is None:
        return ["GPU columns: run `bash scripts/gpu_check.sh` on a machine with an NVIDIA GPU."]
    where = "; ".join(gpu.get("gpus") or []) or gpu.get("device", "?")
    return [
        f"GPU columns: {where}, TensorFlow {gpu.get('tensorflow', '-')}, {gpu.get('date', '-')}"
        f": the paper-size models, median of {gpu.get('steps')} training steps of a batch of "
        f"about {gpu.get('tokens')} source tokens; beam 4 over {gpu.get('decode_sentences')} "
        "sample test sentences, float32, random weights (scripts/gpu_check.sh)."
    ]


def bench_notes(model, at_paper, decode):
    """How the speed columns were measured, or the commands that measure them."""
    notes = []
    if at_paper:
        first = next(iter(at_paper.values()), {})
        notes.append(
            f"s/batch ours: paper-size model (27750-word vocabularies), one fixed batch of "
            f"{first.get('src_tokens')} source tokens of real sample sentences, median of "
            f"{model.get('steps')} steps, best of {model.get('rounds', 1)} round(s) "
            "(scripts/bench_model.sh); (x) = speedup over GRU."
        )
        if first.get("decode_sentences"):
            notes.append(
                f"decode ms/sent ours: the same paper-size models, beam 4, "
                f"{first['decode_sentences']} sample test sentences; random weights, so every "
                "cell decodes the same number of steps (source length + 50)."
            )
        else:
            notes.append("decode ms/sent ours: not measured (bench model --decode-sentences 0).")
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
    return notes


def bleu_notes(runs):
    """How the sample BLEU columns were trained, and the dev BLEU curves."""
    done = {c: r for c, r in runs.items() if r}
    if not done:
        return ["sample BLEU: run `bash scripts/compare_cells.sh` first."]
    r = next(iter(done.values()))
    notes = [
        f"sample BLEU: configs/sample_<cell>.yaml trained by scripts/compare_cells.sh with "
        f"the same budget of {fmt(r['budget'], '.0f')} {r['clock']}-clock seconds per cell"
        + (", learning-rate schedule stretched over the budget" if r["by_time"] else "")
        + "; test set of the bundled sample (2000 sentences), best checkpoint by dev "
        "BLEU, beam 4.",
        "dev BLEU curves (step: BLEU):",
    ]
    for cell, r in done.items():
        curve = ", ".join(f"{s}: {fmt(b, '.1f')}" for s, b in r["curve"])
        per_step = r["seconds"] / r["steps"] if r["steps"] else None
        notes.append(
            f"  {common.shown(cell)}: {curve} ({fmt(per_step, '.2f')} {r['clock']} s/step)"
        )
    return notes


def main(args):
    model = read_json(os.path.join(args.bench, "model.json"))
    decode = read_json(os.path.join(args.bench, "decode.json"))
    gpu = read_json(os.path.join(args.bench, "gpu.json"))
    columns = COLUMNS + (GPU_COLUMNS if gpu else ())
    at_paper = (model or {}).get("results", {}).get("paper", {})
    decoded = (decode or {}).get("results", {})
    cells = common.table_order()
    runs = {c: read_run(os.path.join(args.compare, c)) for c in cells}
    source = model or decode or {}
    print(
        f"Measured {source.get('date', '-')} on {source.get('machine', common.machine())}, "
        f"TensorFlow {source.get('tensorflow', '-')}; the paper: WMT14 En-De on one GPU."
    )
    print()
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    gru = {
        "train_s": at_paper.get("gru", {}).get("train_s"),
        "decode_ms": at_paper.get("gru", {}).get("decode_ms"),
        "sample_ms": decoded.get("gru", {}).get("ms"),
    }
    for cell in cells:
        row = table_row(cell, at_paper, decoded, runs[cell], gru)
        row += gpu_row(cell, gpu["results"]) if gpu else []
        print("| " + " | ".join(row) + " |")
    print()
    for line in bench_notes(model, at_paper, decode) + bleu_notes(runs) + gpu_notes(gpu):
        print(line)
