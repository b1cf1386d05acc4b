"""weights: the exact token-weight decomposition of an LRN/oLRN encoder layer (zero/weights.py)
for every line of `input`: .npz files, heatmaps and index.html."""

import os

from zero import inference, log, plots
from zero.batching import EvalBatches
from zero.errors import UserError
from zero.modes.mode import Mode
from zero.textio import lines_of
from zero.weights import Probe, check_config, sentence_record, write_sentence


def run(config):
    """Decompose `layer`/`direction` for every line of `input`, write the .npz files, plots
    and index.html to weights_dir (default output_dir/weights)."""
    if not config.input:
        raise UserError("weights mode needs the input file: --set input=FILE (BPE'd source)")
    check_config(config)
    out_dir = config.weights_dir or os.path.join(config.output_dir, "weights")
    loaded = inference.load(config, lambda models, vocabs: Probe(models[0], config), ensemble=False)
    if loaded.src_vocab is None:
        raise UserError("weights mode needs config key 'src_vocab' (the input is text)")
    probe = loaded.outputs
    lines = lines_of(config.input)
    batches = EvalBatches(config.input, loaded.src_vocab, batch_tokens=config.decode_batch_tokens)
    os.makedirs(out_dir, exist_ok=True)
    entries, worst = {}, 0.0
    for batch in batches:
        for row, (result, gap) in enumerate(probe.run(loaded.sess, batch["src"])):
            index = int(batch["index"][row])
            worst = max(worst, gap)
            record = sentence_record(result, lines[index], batch["src"][row], probe.names, config)
            entries[index] = write_sentence(out_dir, index + 1, lines[index], record)
    plots.write_index(
        os.path.join(out_dir, "index.html"),
        [entries[i] for i in sorted(entries)],
        title=f"LRN token weights: {config.cell} encoder layer {config.layer} "
        f"({config.direction}), {config.output_dir}",
    )
    index_path = os.path.join(out_dir, "index.html")
    log.info(f"{len(entries)} sentences: {index_path} (max |h - sum_k w r| = {worst:.2e})")


MODE = Mode(
    "weights",
    "LRN/oLRN token-weight decomposition of an encoder layer: .npz, heatmaps, `index.html`",
    run,
)
