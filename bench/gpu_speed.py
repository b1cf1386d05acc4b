r"""GPU speed of every cell at the paper size, beside the paper's table (which is from one GPU).

    python -m bench gpu-speed [--data DIR] [--cells gru lrn ...]
        [--precisions float32 float16 bfloat16] [--steps 20] [--warmup 3] [--tokens 3000]
        [--decode-sentences 200] [--device /gpu:0] [--set KEY=VALUE ...] [--threads 0]
        [--json runs/bench/gpu.json]
    (`bash scripts/gpu_check.sh` installs tensorflow[and-cuda] into .venv-gpu, runs the GPU
    tests, then this)

Without a GPU (no nvidia-smi, or it lists none) it prints "no GPU visible: nothing measured"
and exits 0. For each cell (configs/wmt14_<cell>.yaml with 27750-word vocabularies) and
precision, in a child process of its own, `bench model`'s measurement with every op built on
--device: the real training step (dropout, label-smoothed loss, clipping, Adam; float16 with
loss scaling) on one fixed batch of about --tokens source tokens of real sample sentences,
median seconds per step of --steps steps after --warmup; then beam-4 decoding of the first
--decode-sentences sample test sentences, ms per sentence (random weights: every sentence runs
to the maximum length, the same steps for every cell). TensorFlow runs float32 products as
TF32 on Ampere and newer GPUs (its default; NVIDIA_TF32_OVERRIDE=0 turns that off).
--device /cpu:0 runs the same on the CPU (a tiny trial: --set hidden_size=16 ...). The results
go to --json, which `bench table` (scripts/reproduce_table.sh) shows as GPU columns.
"""

import os
import subprocess

from bench import common, paper

PRECISIONS = ("float32", "float16", "bfloat16")
NO_GPU = "no GPU visible: nothing measured"


def add_arguments(parser):
    common.add_model_arguments(parser)
    common.add_cells_argument(parser, common.table_order())
    parser.add_argument(
        "--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
        help="(default: all three)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=20, help="timed training steps (20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (3)")
    parser.add_argument("--tokens", type=int, default=3000, help="source tokens (3000)")
    parser.add_argument(
        "--decode-sentences", type=int, default=200, metavar="N",
        help="test sentences decoded, beam 4 (200; 0 skips decoding)",
    )  # fmt: skip
    parser.add_argument("--device", default="/gpu:0", help="where the graphs run (/gpu:0)")
    parser.add_argument("--json", default="runs/bench/gpu.json", help="results file")


def nvidia_gpus():
    """The GPUs `nvidia-smi -L` lists: [] without nvidia-smi or a GPU."""
    try:
        proc = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in proc.stdout.splitlines() if line.startswith("GPU ")]


def measure_all(args, data_dir):
    """{cell: {precision: bench model's result, or {"error": ...}}}, each in a child process."""
    from bench import model
    from bench.child import run_in_child

    results = {}
    for cell in args.cells:
        for p in args.precisions:
            try:
                r = run_in_child(
                    model.measure, cell=cell, size="paper", data_dir=data_dir,
                    steps=args.steps, warmup=args.warmup, tokens=args.tokens,
                    decode_sentences=args.decode_sentences, decode_runs=1,
                    sets=[*args.sets, f"precision={p}"], threads=args.threads,
                    device=args.device,
                )  # fmt: skip
            except SystemExit as e:  # e.g. out of GPU memory: measure the others
                r = {"error": str(e)[-2000:]}
                print(f"  {cell} {p}: failed: {r['error']}", flush=True)
            else:
                print(
                    f"  {cell} {p}: {r['train_s']:.3f} s/step, decode "
                    f"{common.fmt(r.get('decode_ms'), '.2f')} ms/sentence",
                    flush=True,
                )
            results.setdefault(cell, {})[p] = r
    return results


def figure(results, cell, precision, key):
    return results.get(cell, {}).get(precision, {}).get(key)


def print_table(results, precisions):
    """Seconds per training step and decode ms per sentence in each precision, beside the
    paper's figures."""
    for key, title in (
        ("train_s", "seconds per training step"),
        ("decode_ms", "decode ms per sentence"),
    ):
        print(f"\n{title} (x: speedup over GRU in the same column)")
        print(f"{'cell':<5} {'paper':>14} " + " ".join(f"{p:>14}" for p in precisions))
        for cell in results:
            cells = [cell_text(paper.figure(cell, key), paper.figure("gru", key))]
            for p in precisions:
                gru = figure(results, "gru", p, key)
                cells.append(cell_text(figure(results, cell, p, key), gru))
            print(f"{common.shown(cell):<5} " + " ".join(f"{c:>14}" for c in cells))


def cell_text(value, gru):
    """'1.23 (2.01x)': a figure and its speedup over GRU's, '-' when missing."""
    if value is None:
        return "-"
    return f"{value:.2f}" + (f" ({gru / value:.2f}x)" if gru else "")


def main(args):
    gpus = nvidia_gpus() if "GPU" in args.device.upper() else []
    if "GPU" in args.device.upper() and not gpus:
        print(NO_GPU)
        return 0
    common.check_cells(args.cells)
    common.check_data(args.data)
    data_dir = os.path.abspath(args.data)
    print(
        f"{args.device} ({'; '.join(gpus) or common.machine()}): median of {args.steps} "
        f"training steps after {args.warmup}, a batch of about {args.tokens} source tokens; "
        f"beam 4 over {args.decode_sentences} test sentences; paper size (27750-word "
        "vocabularies), random weights",
        flush=True,
    )
    results = measure_all(args, data_dir)
    print_table(results, args.precisions)
    settings = {k: getattr(args, k) for k in ("device", "steps", "warmup", "tokens", "sets")}
    settings["decode_sentences"] = args.decode_sentences
    common.write_results(args.json, {"gpus": gpus, **settings, "results": results})
    return 1 if any("error" in r for c in results.values() for r in c.values()) else 0
