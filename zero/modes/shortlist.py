"""shortlist: build the output shortlist of a model from its training data (zero/shortlist.py)
into output_dir/shortlist.npz; decode with it by --set shortlist=PATH."""

import os

from zero import shortlist
from zero.errors import UserError
from zero.modeldir import checked_vocabs
from zero.modes.mode import Mode


def run(config):
    src_vocab, tgt_vocab, _, _ = checked_vocabs(config)
    if src_vocab is None or tgt_vocab is None:
        raise UserError("shortlist mode needs the vocabulary files (src_vocab, tgt_vocab)")
    for key in ("train_src", "train_tgt"):
        if not config[key]:
            raise UserError(f"shortlist mode needs config key '{key}' (the training data)")
    path = os.path.join(config.output_dir, shortlist.FILE)
    shortlist.build_mode(config, src_vocab, tgt_vocab, path)


MODE = Mode(
    "shortlist",
    "build the output shortlist (frequent target words + each source word's most associated "
    "ones) from the training data into `output_dir/shortlist.npz`; decode with shortlist=PATH",
    run,
)
