r"""This project's sample GRU and LRN beside OpenNMT-tf 2.32's small GRU, on the same data.

    python -m bench peers [--data DIR] [--steps 300] [--budget SECONDS] [--threads 2]

OpenNMT-tf 2.32 (with its TensorFlow 2.13) is installed into its own virtual environment,
runs/peers/opennmt-venv: a benchmark's tool, never a dependency of the project. Its model is
the small GRU people train on CPUs: 256-d embeddings, a 1-layer bidirectional GRU encoder of
2 x 128 (outputs concatenated), a 1-layer GRU decoder of 256 with Luong attention (input
feeding), a linear bridge from the encoder's final state, the target softmax tied to the target
embedding without a bias: 3.6M parameters with the sample vocabularies, which are converted to
OpenNMT-tf's format (the same subwords, the same order).

Speed: each system trains --steps steps on the prepared sample (the same BPE'd files) with
3000-token batches (OpenNMT-tf: batch_type tokens, batch_size 3000; ours: batch_tokens 3000),
2 threads, no validation; the median target tokens/s of the progress reports after the first
fifth (warm-up), counting target tokens with EOS as both do. GFLOP per step from the matrix
products of a mean batch (bench/flops.py for ours; the formula below for OpenNMT-tf's).

--budget SECONDS: then each trains for that wall-clock budget (ours: max_time with the schedule
over the budget, lr_progress time; OpenNMT-tf: a wrapper that ends its training loop after the
budget, its cosine schedule sized to the steps that fit), decodes the sample test set with beam
4, and is scored with sacreBLEU: one system at a time, on an otherwise idle machine. The last
lines give our cells' ratios over the peer: target tokens/s and (with --budget) test BLEU.
"""

import os
import re
import statistics
import subprocess
import sys
import time

import yaml

from bench import common, flops

VENV = "runs/peers/opennmt-venv"
WORK = "runs/peers"
PACKAGES = ["OpenNMT-tf==2.32.0", "tensorflow-cpu==2.13.*", "tensorflow-addons==0.21.0"]
ONMT_LINE = re.compile(
    r"Step = (\d+) ; steps/s = ([\d.]+), tokens/s = \d+ \((\d+) source, (\d+) target\)"
)
OURS_LINE = re.compile(r"^step (\d+)\S* .* ([\d,]+) tok/s")

# The peer's model, for onmt-main --model (its API, configured as described above), with the
# dropout of configs/sample_gru.yaml (run_peer fills it in).
PEER_MODEL = """import tensorflow as tf
import tensorflow_addons as tfa
import opennmt


def model():
    return opennmt.models.SequenceToSequence(
        source_inputter=opennmt.inputters.WordEmbedder(embedding_size=256, dropout={dropout}),
        target_inputter=opennmt.inputters.WordEmbedder(embedding_size=256, dropout={dropout}),
        encoder=opennmt.encoders.RNNEncoder(
            num_layers=1, num_units=128, bidirectional=True,
            reducer=opennmt.layers.ConcatReducer(),
            cell_class=tf.keras.layers.GRUCell, dropout={dropout}),
        decoder=opennmt.decoders.AttentionalRNNDecoder(
            num_layers=1, num_units=256, bridge_class=opennmt.layers.DenseBridge,
            attention_mechanism_class=tfa.seq2seq.LuongAttention,
            cell_class=tf.keras.layers.GRUCell, dropout={dropout}, output_layer_bias=False),
        share_embeddings=opennmt.models.EmbeddingsSharingLevel.TARGET)
"""

# onmt-main with a wall-clock budget: its trainer's step generator ends after MAX_TIME
# seconds, so OpenNMT-tf finishes as after max_step (final checkpoint included).
PEER_TIMED = """import sys, time
import opennmt.training as training
from opennmt.bin.main import main

MAX_TIME = float(sys.argv.pop(1))
steps = training.Trainer._steps


def timed(self, *args, **kwargs):
    start = time.time()
    for loss in steps(self, *args, **kwargs):
        yield loss
        if time.time() - start >= MAX_TIME:
            return


training.Trainer._steps = timed
sys.exit(main())
"""


def add_arguments(parser):
    parser.add_argument("--data", default=common.DATA, help=f"prepared sample ({common.DATA})")
    parser.add_argument("--steps", type=int, default=300, help="steps of the speed runs (300)")
    parser.add_argument("--budget", type=float, help="also train each for this many seconds")
    parser.add_argument("--threads", type=int, default=2, help="intra/inter-op threads (2)")
    parser.add_argument("--cells", nargs="+", default=["gru", "lrn"], help="ours (gru lrn)")


# -- OpenNMT-tf ------------------------------------------------------------------------------


def peer_python():
    """The peer's environment (created and installed on first use)."""
    python = os.path.join(common.ROOT, VENV, "bin", "python")
    stamp = os.path.join(common.ROOT, VENV, ".installed-" + "-".join(PACKAGES).replace("*", "x"))
    if not os.path.exists(stamp):
        print(f"installing {' '.join(PACKAGES)} into {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", os.path.join(common.ROOT, VENV)], check=True)
        pip = [python, "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *PACKAGES], check=True)
        open(stamp, "w").close()
    return python


def peer_vocab(src, dst):
    """Ours (<pad> <unk> <s> </s>, then token[\\tcount]) -> OpenNMT-tf's: <blank> <s> </s>
    (its fixed ids 0-2), the same tokens in the same order; its out-of-vocabulary id (the
    last) plays <unk>, so both vocabularies have the same size."""
    with open(src, encoding="utf-8") as f:
        tokens = [line.rstrip("\n").split("\t")[0] for line in f][4:]
    common.write_text(dst, "".join(t + "\n" for t in ["<blank>", "<s>", "</s>", *tokens]))


def peer_config(data, name, max_step, decay_steps, lr):
    """The peer's YAML config: data, Adam with peak learning rate `lr` (our sample GRU's) and
    a cosine decay over decay_steps, 3000-token batches."""
    work = os.path.join(common.ROOT, WORK)
    return {
        "model_dir": os.path.join(work, name),
        "data": {
            "train_features_file": os.path.join(data, "train.bpe.en"),
            "train_labels_file": os.path.join(data, "train.bpe.de"),
            "source_vocabulary": os.path.join(work, "vocab.en"),
            "target_vocabulary": os.path.join(work, "vocab.de"),
            "source_sequence_controls": {"end": True},  # a source EOS, as ours
        },
        "params": {
            "optimizer": "Adam",
            "optimizer_params": {
                "beta_1": 0.9,
                "beta_2": 0.999,
                "epsilon": 1e-9,
                "global_clipnorm": 5.0,
            },
            "learning_rate": lr,
            "decay_type": "CosineAnnealing",
            "decay_params": {"eta_min": 1e-4, "warmup_steps": 500, "max_step": decay_steps},
            "label_smoothing": 0.1,
            "average_loss_in_time": True,
            "beam_width": 4,
            "maximum_decoding_length": 250,
        },
        "train": {
            "batch_type": "tokens",
            "batch_size": 3000,
            "sample_buffer_size": 500000,
            "maximum_features_length": 80,
            "maximum_labels_length": 80,
            "max_step": max_step,
            "save_checkpoints_steps": 10**7,
            "keep_checkpoint_max": 1,
            "save_summary_steps": 10,
        },
        "infer": {"batch_type": "examples", "batch_size": 32, "length_bucket_width": 5},
    }


def run_peer(data, name, threads, max_step, decay_steps, budget=None):
    """Train the peer; returns its log text."""
    work = os.path.join(common.ROOT, WORK)
    for side in ("en", "de"):
        peer_vocab(os.path.join(data, f"vocab.{side}"), os.path.join(work, f"vocab.{side}"))
    gru = _sample_config("gru")  # the peer is matched to our sample GRU
    common.write_text(os.path.join(work, "model.py"), PEER_MODEL.format(dropout=gru.dropout))
    config = os.path.join(work, f"{name}.yml")
    # yaml, not json: YAML 1.1 reads json's 1e-09 as a string
    common.write_text(
        config, yaml.safe_dump(peer_config(data, name, max_step, decay_steps, gru.lr))
    )
    subprocess.run(["rm", "-rf", os.path.join(work, name)], check=True)
    if budget:
        common.write_text(os.path.join(work, "timed.py"), PEER_TIMED)
        command = [peer_python(), os.path.join(work, "timed.py"), str(budget)]
    else:
        command = [os.path.join(common.ROOT, VENV, "bin", "onmt-main")]
    command += ["--model", os.path.join(work, "model.py"), "--config", config]
    command += [f"--{k}_op_parallelism_threads={threads}" for k in ("intra", "inter")]
    command += ["--seed", "1234", "train"]
    return _run(command, os.path.join(work, f"{name}.log"), _peer_env())


def _peer_env():
    """The peer as its users run it, with TensorFlow's default CPU allocator: zero/__init__.py
    switches ours to BFC and the peer's processes would inherit that."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}


def _run(command, log_path, env=None):
    proc = subprocess.run(command, capture_output=True, text=True, cwd=common.ROOT, env=env)
    common.write_text(log_path, proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])}... failed; see {log_path}")
    return proc.stdout + proc.stderr


def peer_throughput(log):
    """(median target tokens/s after the first fifth of the reports, steps reached)."""
    rows = [(int(m[0]), float(m[1]), int(m[3])) for m in ONMT_LINE.findall(log)]
    if not rows:
        raise SystemExit("no OpenNMT-tf progress lines in its log")
    used = rows[len(rows) // 5 :]
    return statistics.median(r[2] for r in used), rows[-1][0]


def peer_steps(log, name):
    """Steps the peer trained: its last progress line's, else its checkpoint's (a short budget
    may end before the first report)."""
    found = ONMT_LINE.findall(log)
    state = os.path.join(common.ROOT, WORK, name, "checkpoint")
    with open(state, encoding="utf-8") as f:
        saved = re.search(r'model_checkpoint_path: "ckpt-(\d+)"', f.read())
    return max(int(found[-1][0]) if found else 0, int(saved[1]) if saved else 0)


def peer_flops(src_tokens, tgt_tokens, batches_tgt_len, vocab):
    """Forward+backward FLOPs of one peer step from its real tokens per step (it computes its
    softmax on the padded target too: B*T ~ tokens on length-bucketed batches). Forward per
    source token: the bi-GRU (2 x 3H(E+H) MACs, H=128, E=256) and the Luong memory layer
    (256 x 256); per target token: the decoder GRU fed [embedding; attention output] (3D(E+D+D)),
    attention scores and context over the source (2 x 256 x S), the attention layer
    (512 -> 256) and the tied softmax (256 x V)."""
    per_src = 2 * (2 * 3 * 128 * (256 + 128) + 256 * 256)
    per_tgt = 2 * (3 * 256 * (256 + 512) + 2 * 256 * batches_tgt_len + 512 * 256 + 256 * vocab)
    return 3 * (src_tokens * per_src + tgt_tokens * per_tgt)


# -- this project ----------------------------------------------------------------------------


def run_ours(data, cell, name, threads, steps, budget=None):
    """Train configs/sample_<cell>.yaml with 3000-token batches; returns the log."""
    out = os.path.join(common.ROOT, WORK, name)
    subprocess.run(["rm", "-rf", out], check=True)
    sets = [f"output_dir={out}", "batch_tokens=3000", f"threads={threads}", "log_every=10"]
    sets += [f"{k}={os.path.join(data, os.path.basename(v))}" for k, v in _data_keys(cell)]
    sets += ["dev_src=null", "dev_tgt=null", "dev_ref=null", f"eval_every={10**7}"]
    if budget:
        sets += [f"max_time={budget}", "lr_progress=time", "time_clock=wall"]
    else:
        sets += [f"max_steps={steps}", "max_time=0", "lr_progress=steps"]
    command = [sys.executable, "run.py", "--mode", "train", "--config"]
    command += [f"configs/sample_{cell}.yaml", *[a for s in sets for a in ("--set", s)]]
    return _run(command, out + ".log")


def _sample_config(cell, sets=()):
    from zero import config as config_lib

    return config_lib.load(os.path.join(common.ROOT, f"configs/sample_{cell}.yaml"), list(sets))


def _data_keys(cell):
    config = _sample_config(cell)
    return [(k, config[k]) for k in ("src_vocab", "tgt_vocab", "train_src", "train_tgt")]


def ours_throughput(log):
    """(median target tokens/s after the first fifth of the progress lines, steps reached,
    parameters)."""
    rows = [
        (int(m[1]), float(m[2].replace(",", "")))
        for m in map(OURS_LINE.match, log.splitlines())
        if m
    ]
    used = rows[len(rows) // 5 :]
    params = int(re.search(r"\(([\d,]+) parameters\)", log)[1].replace(",", ""))
    return statistics.median(r[1] for r in used), rows[-1][0], params


def ours_flops(data, cell, steps=50):
    """Mean forward+backward FLOPs of a step over the first batches of the stream."""
    from zero.data import TrainStream
    from zero.vocab import load_vocabs

    sets = [f"{k}={os.path.join(data, os.path.basename(v))}" for k, v in _data_keys(cell)]
    config = _sample_config(cell, sets)
    src_vocab, tgt_vocab, _, tgt_size = load_vocabs(config)
    stream = TrainStream(config.train_src, config.train_tgt, src_vocab, tgt_vocab, 3000, 80)
    total = 0.0
    for _ in range(steps):
        b = next(stream)
        (n, s), t = b["src"].shape, b["tgt"].shape[1]
        total += flops.train_step_flops(config, n, s, t, tgt_size, int((b["tgt"] > 0).sum()))
    stream.close()
    return total / steps


# -- decoding and scoring (--budget) ---------------------------------------------------------


def decode_peer(data, name, threads):
    """(seconds, BPE'd output lines) of the peer's beam-4 decoding of the test set."""
    work = os.path.join(common.ROOT, WORK)
    out = os.path.join(work, f"{name}.test.bpe")
    command = [os.path.join(common.ROOT, VENV, "bin", "onmt-main"), "--model"]
    command += [os.path.join(work, "model.py"), "--config", os.path.join(work, f"{name}.yml")]
    command += [f"--{k}_op_parallelism_threads={threads}" for k in ("intra", "inter")]
    command += ["infer", "--features_file", os.path.join(data, "test.bpe.en")]
    start = time.time()
    _run([*command, "--predictions_file", out], out + ".log", _peer_env())
    return time.time() - start, _lines(out)


def decode_ours(data, name, threads):
    """(seconds, BPE'd output lines) of our beam-4 decoding of the test set."""
    model = os.path.join(common.ROOT, WORK, name)
    out = model + ".test.bpe"
    command = [sys.executable, "run.py", "--mode", "test", "--config", f"{model}/config.yaml"]
    sets = [f"output_dir={model}", f"input={data}/test.bpe.en", f"output={out}", "beam_size=4"]
    start = time.time()
    _run(
        [*command, *[a for s in [*sets, f"threads={threads}"] for a in ("--set", s)]], out + ".log"
    )
    return time.time() - start, _lines(out)


def _lines(path):
    from zero.textio import lines_of

    return lines_of(path)


def bleu(hyps, data):
    from zero import evaluate
    from zero.textio import lines_of

    return evaluate.sacrebleu_score(evaluate.postprocess(hyps), lines_of(f"{data}/test.de"))[0]


def budget_runs(data, cells, threads, budget, peer_steps_per_s):
    """{system: (steps, test BLEU, sentences/s)} after `budget` seconds of training each."""
    out = {}
    steps = max(int(budget * peer_steps_per_s), 1000)  # the peer's schedule over the budget
    log = run_peer(data, "onmt_budget", threads, 10**7, steps, budget=budget)
    seconds, hyps = decode_peer(data, "onmt_budget", threads)
    out["OpenNMT-tf GRU"] = (peer_steps(log, "onmt_budget"), bleu(hyps, data), len(hyps) / seconds)
    for cell in cells:
        log = run_ours(data, cell, f"ours_budget_{cell}", threads, 0, budget=budget)
        seconds, hyps = decode_ours(data, f"ours_budget_{cell}", threads)
        out[f"ours {common.shown(cell)}"] = (
            ours_throughput(log)[1],
            bleu(hyps, data),
            len(hyps) / seconds,
        )
    return out


# -- main --------------------------------------------------------------------------------------


def main(args):
    common.check_data(args.data, ("vocab.en", "vocab.de", "train.bpe.en", "test.bpe.en"))
    data = os.path.abspath(args.data)
    peer_python()
    print(
        f"{args.steps} steps each, 3000-token batches, {args.threads} threads; load "
        f"{common.load_avg():.2f}; {common.machine()}",
        flush=True,
    )
    log = run_peer(data, "onmt_speed", args.threads, args.steps, max(args.steps, 1000))
    peer_tps, _ = peer_throughput(log)
    reports = ONMT_LINE.findall(log)
    steps_per_s = statistics.median(float(m[1]) for m in reports)
    src_t = statistics.median(int(m[2]) for m in reports) / steps_per_s
    tgt_t = peer_tps / steps_per_s
    rows = {"OpenNMT-tf GRU": (peer_tps, 3621632, peer_flops(src_t, tgt_t, 26, 5199))}
    for cell in args.cells:
        tps, _, params = ours_throughput(
            run_ours(data, cell, f"ours_speed_{cell}", args.threads, args.steps)
        )
        rows[f"ours {common.shown(cell)}"] = (tps, params, ours_flops(data, cell))
    _report_speed(rows)
    budget = None
    if args.budget:
        budget = budget_runs(data, args.cells, args.threads, args.budget, steps_per_s)
        _report_budget(budget, args.budget)
    _summary(rows, args.cells, budget)


def _report_speed(rows):
    print(f"\n{'system':<16} {'target tok/s':>12} {'parameters':>11} {'GFLOP/step':>11}")
    for name, (tps, params, work) in rows.items():
        print(f"{name:<16} {tps:12.0f} {params / 1e6:10.2f}M {work / 1e9:11.1f}")


def _report_budget(results, budget):
    print(f"\n{budget:.0f} s of training each, then the test set with beam 4:")
    print(f"{'system':<16} {'steps':>7} {'test BLEU':>10} {'sent/s':>8}")
    for name, (steps, score, rate) in results.items():
        print(f"{name:<16} {steps:7d} {score:10.2f} {rate:8.1f}")


def _ratios(rows, cells, column):
    """Each of our cells' `column` over the peer's, as in "GRU 1.62x, LRN 1.85x"."""
    peer = rows["OpenNMT-tf GRU"][column]
    ours = (rows[f"ours {common.shown(c)}"][column] for c in cells)
    return ", ".join(f"{common.shown(c)} {v / peer:.2f}x" for c, v in zip(cells, ours, strict=True))


def _summary(rows, cells, budget=None):
    print(f"\nTarget tokens/s over OpenNMT-tf (same batches): {_ratios(rows, cells, 0)}")
    if budget:  # the test BLEU (column 1) after the same wall-clock budget
        print(
            f"Test sacreBLEU over OpenNMT-tf (same wall-clock budget): {_ratios(budget, cells, 1)}"
        )
    if "lrn" in cells and "gru" in cells:
        ratio = rows["ours LRN"][0] / rows["ours GRU"][0]
        print(f"LRN/GRU target tokens/s in the training loop: {ratio:.2f}x")
