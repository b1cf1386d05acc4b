"""What one beam-search decoder step costs per batch size: its fixed part and its part per sentence.

    python -m bench step [CELL] [--sentences 1 8 32 100] [--iterations 60] [--runs 5]
        [--data DIR] [--set KEY=VALUE ...] [--threads 0] [--kernels default]
    smoke run: python -m bench step lrn --sentences 1 2 --iterations 4 --runs 1

The search of translate mode and the server (zero.decode.Translator, every exact technique as
configs/sample_<cell>.yaml sets it, random weights) on the first N sentences of the sample test
set, except that no sentence is ever done: the loop runs a fixed number of decoder steps, so
every batch size runs the same steps and random weights do as well as trained ones. The time
of a step is the difference between runs of --iterations and of half as many steps (median of
--runs each, interleaved), which leaves out the encoder and the session call.

A least-squares line through ms per step against sentences splits a step into a fixed part
(ops that cost the same for one sentence as for many: op dispatch, reading the weights of
small products) and a part per sentence. The last line compares the cost of one sentence's
step in a batch of 8 (the server with 8 clients, each waiting for its answer) with that in the
largest batch: about the share of translate mode's throughput that the server's engine can
reach, before length sorting, parallel batches and HTTP. --kernels sets TensorFlow's oneDNN
switch for this run (`tensorflow`: its own kernels, as serve mode runs by default; `onednn`;
`default`: left as is).
"""

import os
import time

import numpy as np

from bench import common
from bench.child import run_in_child

SERVER_BATCH = 8


def add_arguments(parser):
    parser.add_argument("cell", nargs="?", default="lrn", help="the cell (default lrn)")
    common.add_model_arguments(parser)
    parser.add_argument(
        "--sentences",
        type=int,
        nargs="+",
        default=[1, 8, 32, 100],
        help="batch sizes in sentences (1 8 32 100)",
    )
    parser.add_argument(
        "--iterations", type=int, default=60, help="decoder steps of the longer runs (60)"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per batch size (5)")
    parser.add_argument(
        "--kernels",
        choices=("default", "tensorflow", "onednn"),
        default="default",
        help="CPU kernels: TensorFlow's own, oneDNN, or its default choice (default)",
    )


def fixed_steps_translator(iterations):
    """A Translator class whose beam search runs `iterations` steps for every sentence."""
    import tensorflow as tf

    from zero import search
    from zero.decode import Translator

    class FixedSteps(search.BeamSearch):
        def _can_improve(self, s):
            return tf.fill(tf.shape(s["rows"]), True)  # nobody is done, nobody leaves

        def _more(self, s):
            return s["t"] < iterations

    class FixedStepsTranslator(Translator):
        beam_search = FixedSteps

    return FixedStepsTranslator


def fit_line(xs, ys):
    """Least squares ys ~ a + b xs -> (a, b)."""
    b, a = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(a), float(b)


def measure(cell, data, sets, threads, sentences, iterations, runs):
    """{"beam": K, "per_step": {sentences: ms per decoder step}} (in a child process: the
    CPU kernels are chosen before TensorFlow loads)."""
    import tensorflow as tf

    from zero.session import make_session
    from zero.train_graph import TrainGraph
    from zero.vocab import Vocab, load_vocabs

    v1 = tf.compat.v1
    v1.disable_eager_execution()
    longest = iterations + 10  # the output buffer holds every step
    sets = [*sets, "max_decode_factor=0.0", f"max_decode_extra={longest}"]
    config = common.model_config(cell, "sample", data, sets, threads)
    _, _, src_size, tgt_size = load_vocabs(config)
    graph = tf.Graph()
    with graph.as_default():
        model = TrainGraph(config, src_size, tgt_size).model
        steps = v1.placeholder_with_default(iterations, [], name="iterations")
        translator = fixed_steps_translator(steps)([model], config)
        init = v1.global_variables_initializer()
    sess = make_session(config, graph)
    sess.run(init)
    translator.prepare(sess)
    most = max(sentences)
    src = common.test_sources(data, Vocab.load(os.path.join(data, "vocab.en")), most)
    if len(src) < most:
        path = os.path.join(data, "test.bpe.en")
        raise SystemExit(f"{path} has {len(src)} sentences: --sentences asks for {most}")
    half = iterations // 2
    per_step = {}
    for n in sentences:
        feed = {translator.src: src[:n]}
        times = {iterations: [], half: []}
        for k in times:  # warm-up: every shape once
            sess.run(translator.ids, {**feed, steps: k})
        for _ in range(runs):
            for k, taken in times.items():
                start = time.perf_counter()
                sess.run(translator.ids, {**feed, steps: k})
                taken.append(time.perf_counter() - start)
        full, part = (common.median(times[k]) for k in (iterations, half))
        per_step[str(n)] = 1000 * (full - part) / (iterations - half)
    return {"beam": config.beam_size, "per_step": per_step}


def main(args):
    common.check_cells([args.cell])
    common.check_data(args.data)
    if args.iterations < 4 or min(args.sentences) < 1 or args.runs < 1:
        raise SystemExit("--iterations must be at least 4, --sentences and --runs at least 1")
    from zero import onednn

    tf_env = {}
    if args.kernels != "default":
        tf_env[onednn.VARIABLE] = "1" if args.kernels == "onednn" else "0"
    sentences = sorted(set(args.sentences))
    result = run_in_child(
        measure,
        tf_env=tf_env,
        cell=args.cell,
        data=os.path.abspath(args.data),
        sets=args.sets,
        threads=args.threads,
        sentences=sentences,
        iterations=args.iterations,
        runs=args.runs,
    )
    per_step = {int(n): ms for n, ms in result["per_step"].items()}
    print(
        f"{common.shown(args.cell)}, sample size, random weights, beam {result['beam']}, "
        f"{args.kernels} CPU kernels: {args.iterations} against {args.iterations // 2} "
        f"decoder steps, median of {args.runs} runs each"
    )
    print(f"{'sentences':>9} {'ms/step':>8} {'ms per sentence-step':>21}")
    for n, ms in per_step.items():
        print(f"{n:>9} {ms:>8.3f} {ms / n:>21.4f}")
    if len(per_step) > 1:
        fixed, each = fit_line(list(per_step), list(per_step.values()))
        print(f"least squares: {fixed:.3f} ms per step + {each:.4f} ms per sentence")
    most = max(per_step)
    if SERVER_BATCH in per_step and most > SERVER_BATCH:
        share = (per_step[most] / most) / (per_step[SERVER_BATCH] / SERVER_BATCH)
        print(
            f"Step cost per sentence at {most} sentences over at {SERVER_BATCH}: "
            f"{100 * share:.0f}% (the server engine's best share with {SERVER_BATCH} clients)"
        )
