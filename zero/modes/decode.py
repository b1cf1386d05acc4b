"""test: beam-search decode a BPE'd input file, one output line (or n-best lines) per line."""

from zero import inference, log
from zero.batching import EvalBatches
from zero.decode import translate_batches
from zero.errors import UserError
from zero.modes.mode import Mode
from zero.textio import lines_of, write_lines


def run(config):
    if not config.input:
        raise UserError("test mode needs the input file: --set input=FILE (BPE'd source)")
    loaded = inference.translator(config)
    sources = lines_of(config.input)
    batches = EvalBatches(config.input, loaded.src_vocab, batch_tokens=config.decode_batch_tokens)
    results = translate_batches(
        loaded.sess, loaded.outputs, batches, loaded.tgt_vocab, n_best=config.n_best, log=log.info
    )
    write_lines(config.output, format_results(config, sources, results))


def format_results(config, sources, results):
    """1-best lines, or `index ||| text ||| score` n-best lines; an empty input line gives an
    empty output line, so the files stay aligned."""
    out, sep = [], config.n_best_separator
    for index, (source, hyps) in enumerate(zip(sources, results, strict=True)):
        if not source.strip():
            hyps = [("", 0.0)]
        if config.n_best > 1:
            out += [f"{index}{sep}{text}{sep}{score:.4f}" for text, score in hyps]
        else:
            out.append(hyps[0][0] if hyps else "")
    return out


MODE = Mode(
    "test",
    "beam-search decode `input` (BPE'd) to `output`; n_best=K writes `index ||| text ||| score`"
    " lines; ensemble=[dirA, dirB] averages log-probabilities",
    run,
)
