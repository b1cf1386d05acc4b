r"""Which ops of the toolkit's graphs have no GPU kernel: proved from TensorFlow's kernel registry.

    python -m bench gpu-ready [--graphs train beam export] [--cells lrn gru ...]
        [--precisions float32 float16 bfloat16] [--json runs/bench/gpu_ready.json]
    (`bash scripts/gpu_ready.sh` installs the GPU wheel into .venv-gpu and runs it there)

It needs the CUDA build of TensorFlow (the `tensorflow` wheel, not `tensorflow-cpu`): it
registers its GPU kernels when it loads, even on a machine without a GPU, so the registry is
read here without one. The graphs are built under tf.device("/gpu:0") with tiny models (hidden
8, 2 + 2 layers, 20-word vocabularies; the ops do not depend on the sizes):
  - train: the training graph (TrainGraph, finalized: dropout, loss, gradients, Adam, dev loss
    and dev BLEU decoding, the Saver) of every cell in float32, float16 (with loss scaling) and
    bfloat16, each also with cell_layer_norm, the first cell also with grad_accum=2;
  - beam: beam search (beam 4) and greedy search, with the decoding techniques on (the
    defaults) and off, and beam 4 with an output shortlist (a small shortlist file);
  - export: the SavedModel's serving graph (strings in, strings out; zero/export.py) and a Saver;
  - for the first cell, train and beam again with attention luong, with 2 heads and with
    context_aware false, in every precision.
Every node of each graph and of every function it calls (loop bodies, gradients, branches) is
looked up in the registry for the dtypes it uses (bench/kernels.py). A node without a GPU
kernel is either a host op placed on the CPU by design (checkpoint ops, the string variable
train_state, export's text processing; bench/kernels.py HOST_PARTS) or an op of the training
step or the decoder loop, of which there must be none. The last line counts both: op types of
the loops, and the places host ops come from.
"""

import collections
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from bench import common, kernels

v1 = tf.compat.v1
PRECISIONS = ("float32", "float16", "bfloat16")
GRAPHS = ("train", "beam", "export")
WORDS = 20  # vocabulary size of both sides
TINY = {
    "hidden_size": 8,
    "embed_size": 8,
    "num_encoder_layers": 2,
    "num_decoder_layers": 2,
    "dropout": 0.1,  # so that the dropout ops exist
    "max_decode_extra": 3,
    "threads": 1,
}
# The config overrides of the first cell's extra graphs: other attentions and encoders.
VARIANTS = ({"attention": "luong"}, {"num_heads": 2}, {"context_aware": False})


def add_arguments(parser):
    parser.add_argument(
        "--graphs", nargs="+", choices=GRAPHS, default=list(GRAPHS), help="(default: all)"
    )
    common.add_cells_argument(parser, common.cell_names())
    parser.add_argument(
        "--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
        help="(default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--json", default="runs/bench/gpu_ready.json", help="every GPU-less node, per graph"
    )


# -- the toolkit's graphs ----------------------------------------------------------------------


class Files:
    """The vocabularies and the shortlist the graphs read, in a temporary directory."""

    def __init__(self, directory):
        from zero import shortlist
        from zero.vocab import SPECIALS, Vocab

        self.vocab = os.path.join(directory, "vocab")
        self.vocabs = (Vocab(list(SPECIALS) + [f"w{i}" for i in range(WORDS - 4)]),) * 2
        self.vocabs[0].save(self.vocab)
        rng = np.random.default_rng(0)
        candidates = rng.integers(4, WORDS, [WORDS, 3]).astype(np.int32)
        self.shortlist = os.path.join(directory, shortlist.FILE)
        frequent = np.arange(4, 8, dtype=np.int32)
        shortlist.save(self.shortlist, frequent, candidates, *self.vocabs, {})

    def config(self, overrides):
        """The tiny config with these files, dev data (so that training builds the dev loss
        and dev BLEU decoding; only the names are read) and `overrides`."""
        from zero import config as config_lib

        keys = ("src_vocab", "tgt_vocab", "dev_src", "dev_tgt", "dev_ref")
        files = dict.fromkeys(keys, self.vocab)
        values = {**TINY, **files, "src_vocab_size": 0, "tgt_vocab_size": 0, **overrides}
        if values.pop("with_shortlist", False):
            values["shortlist"] = self.shortlist
        return config_lib.load(None, [f"{k}={yaml_value(v)}" for k, v in values.items()])


def yaml_value(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def build_train(config, files):
    from zero.train_graph import TrainGraph

    TrainGraph(config, WORDS, WORDS).finalize(config)


def build_beam(config, files):
    from zero import shortlist
    from zero.decode import Translator
    from zero.model import Model

    listed = shortlist.configured(config, files.vocabs)
    Translator([Model(config, WORDS, WORDS)], config, shortlist=listed)


def build_export(config, files):
    from zero import export
    from zero.model import Model

    export.serving_signature(config, [Model(config, WORDS, WORDS)], files.vocabs)
    v1.train.Saver()  # what restoring the model and writing the SavedModel add


BUILDERS = {"train": build_train, "beam": build_beam, "export": build_export}


def jobs(args):
    """(label, graph kind, config overrides) of every graph to check."""
    from zero.decode import TECHNIQUES

    off = dict.fromkeys(TECHNIQUES, False)
    first = args.cells[0]
    for cell in args.cells:
        for p in args.precisions:
            base, label = {"cell": cell, "precision": p}, f"{cell} {p}"
            if "train" in args.graphs:
                yield f"train {label}", "train", base
                yield f"train {label} cell_layer_norm", "train", {**base, "cell_layer_norm": True}
                if cell == first:  # the same ops in every cell
                    yield f"train {label} grad_accum=2", "train", {**base, "grad_accum": 2}
            if "beam" in args.graphs:
                for beam, name in ((4, "beam4"), (1, "greedy")):
                    search = {**base, "beam_size": beam}
                    yield f"{name} {label}", "beam", search
                    yield f"{name} {label} techniques off", "beam", {**search, **off}
                yield f"beam4 {label} shortlist", "beam", {**base, "with_shortlist": True}
            if "export" in args.graphs:
                yield f"export {label}", "export", base
    for extra in VARIANTS:
        text = " ".join(f"{k}={yaml_value(v)}" for k, v in extra.items())
        for p in args.precisions:
            base = {"cell": first, "precision": p, **extra}
            for kind, name in (("train", "train"), ("beam", "beam4")):
                if kind in args.graphs:
                    yield f"{name} {first} {p} {text}", kind, base


def graph_def(kind, overrides, files):
    """The GraphDef of one graph, built on /gpu:0; training also through the `devices` key."""
    if kind == "train":
        overrides = {**overrides, "devices": ["/gpu:0"]}
    config = files.config(overrides)
    graph = tf.Graph()
    with graph.as_default(), tf.device("/gpu:0"):
        BUILDERS[kind](config, files)
    return graph.as_graph_def()


# -- the report ----------------------------------------------------------------------------------


def context(path):
    """Where in the step a node is: forward or gradient, inside a while loop or not."""
    text = "/".join(path).lower()
    where = "gradient" if "gradients" in text or "_grad" in text else "forward"
    return where + (", while loop" if "while" in text else "")


def rows(found):
    """{(op, dtypes, where it comes from): {graphs, nodes, devices}} over every graph."""
    table = collections.defaultdict(lambda: {"graphs": set(), "nodes": set(), "devices": set()})
    for label, missing in found.items():
        for m in missing:
            part = kernels.host_part(m)
            where = part or f"IN THE LOOPS: {context(m.path)}"
            op = m.op + (f" (lowered {m.lowered_from})" if m.lowered_from else "")
            row = table[(op, m.dtypes, where)]
            row["graphs"].add(label.split()[0])
            row["nodes"].add(m.name)
            row["devices"].add(m.device or "none (soft placement)")
    return table


def print_table(table, registry):
    """One line per (op, dtypes, where from); for ops of the loops, what the registry has."""
    print(f"\nnodes without a GPU kernel: {len(table)} kinds (op, dtypes, where they come from)")
    print("| op | dtypes | where it comes from | graphs | placed on | nodes, e.g. |")
    print("|---|---|---|---|---|---|")
    for (op, dtypes, where), row in sorted(table.items(), key=lambda kv: (kv[0][2], kv[0][0])):
        nodes = sorted(row["nodes"], key=len)
        print(
            f"| {op} | {dtypes} | {where} | {', '.join(sorted(row['graphs']))} | "
            f"{', '.join(sorted(row['devices']))} | {len(nodes)}: {nodes[0]} |"
        )
        if where.startswith("IN THE LOOPS"):
            print(f"    registered for {op.split()[0]}: {registry.allowed(op.split()[0])}")
    if any(where == kernels.SAVER_PART for _, _, where in table):
        print(
            "(tf.train.Saver's ops have CPU kernels only: soft placement, zero/session.py, runs "
            "them on the CPU whatever device the graph asks for)"
        )


def summary(table):
    """(op types in the loops, {host part: op types})."""
    loops, parts = set(), collections.defaultdict(set)
    for op, _, where in table:
        if where.startswith("IN THE LOOPS"):
            loops.add(op.split()[0])
        else:
            parts[where].add(op.split()[0])
    return loops, parts


def check_build(registry):
    if registry.gpu_kernels() == 0 or not tf.test.is_built_with_cuda():
        raise SystemExit(
            f"bench gpu-ready reads the GPU kernels the CUDA build of TensorFlow registers; "
            f"this TensorFlow {tf.__version__} is a CPU-only build (tensorflow-cpu) with no GPU "
            "kernels. Run `bash scripts/gpu_ready.sh`: it installs the GPU wheel (tensorflow) "
            "into .venv-gpu and runs this there."
        )


def check_all(args, registry):
    """{label: [Missing]} of every graph, with a progress line per graph."""
    found = {}
    with tempfile.TemporaryDirectory(prefix="gpu_ready_") as directory:
        files = Files(directory)
        for label, kind, overrides in jobs(args):
            start = time.time()
            missing, checked = kernels.missing_kernels(graph_def(kind, overrides, files), registry)
            found[label] = missing
            print(
                f"{label:<48} {checked:6d} nodes {len(missing):4d} without a GPU kernel "
                f"({time.time() - start:.1f} s)",
                flush=True,
            )
    return found


def main(args):
    common.check_cells(args.cells)
    v1.disable_eager_execution()
    registry = kernels.from_tensorflow()
    check_build(registry)
    print(f"TensorFlow {tf.__version__} (CUDA build): {registry.gpu_kernels()} GPU kernels")
    start = time.time()
    found = check_all(args, registry)
    table = rows(found)
    print_table(table, registry)
    loops, parts = summary(table)
    print(f"\n{len(found)} graphs checked in {time.time() - start:.0f} s")
    print(f"C++ matcher disagreements: {len(registry.disagreements)} {registry.disagreements[:5]}")
    print(f"ops of the training step or the decoder loop without a GPU kernel: {sorted(loops)}")
    for part, ops in sorted(parts.items()):
        print(f"host ops, {part}: {', '.join(sorted(ops))}")
    records = {label: [m._asdict() for m in missing] for label, missing in found.items()}
    common.write_results(args.json, {"graphs": records, "loop_ops": sorted(loops)})
    print(
        f"GPU kernels: {len(loops)} ops without a GPU kernel in the training and decoding "
        f"loops ({len(parts)} host ops, placed on the CPU by design)"
    )
    return 1 if loops or registry.disagreements else 0
