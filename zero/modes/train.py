"""train: train a model, or resume it (the same command continues from the last checkpoint)."""

import os

from zero.modeldir import check_vocabs, record_vocabs
from zero.modes.mode import Mode
from zero.train import Trainer
from zero.vocab import load_vocabs


def run(config):
    if os.path.isdir(config.output_dir):  # resuming: the vocabularies must be the same
        src_vocab, tgt_vocab, _, _ = load_vocabs(config)
        check_vocabs(config.output_dir, src_vocab, tgt_vocab, config)
    trainer = Trainer(config)
    if trainer.chief:  # the other workers of a cluster write nothing
        record_vocabs(config, trainer.src_vocab, trainer.tgt_vocab)
    trainer.train()


MODE = Mode("train", "train or resume (the same command continues from the last checkpoint)", run)
