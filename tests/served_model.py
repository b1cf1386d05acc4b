"""A tiny model directory over a tiny prepared slice of the bundled sample, for the translate
and export tests: prepare (tokenize, clean, BPE) a few hundred pairs in-process, then save
random weights as the model's checkpoint (peaked distributions: beam decisions are clear-cut
and outputs vary in length, unlike a model trained for two steps)."""

import gzip
import os

import tensorflow as tf
from helpers import ROOT, randomize, tiny_config

from zero import config as config_lib
from zero import prepare
from zero.checkpoints import PREFIX
from zero.model import Model
from zero.modeldir import record_vocabs
from zero.vocab import load_vocabs

v1 = tf.compat.v1


def _slice(name, n, out):
    with gzip.open(os.path.join(ROOT, "data", name), "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(n)]
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return str(out)


def prepare_slice(directory, n_train=300, n_dev=10, n_test=60, merges=200):
    """Runs the prepare pipeline on the first lines of data/ -> the prepared directory."""
    raw = os.path.join(directory, "raw")
    os.makedirs(raw)
    files = {
        (split, lang): _slice(f"{split}.{lang}.gz", n, os.path.join(raw, f"{split}.{lang}"))
        for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test))
        for lang in ("en", "de")
    }
    out = os.path.join(directory, "prep")
    args = ["corpus", out, "--merges", str(merges), "--jobs", "1"]
    for split in ("train", "dev", "test"):
        args += [f"--{split}", files[split, "en"], files[split, "de"]]
    assert prepare.main(args) == 0
    return out


def random_model(model_dir, prep_dir, cell, seed=0, scale=1.0, **overrides):
    """A model directory (config.yaml, vocab.json, one checkpoint) with random weights."""
    config = tiny_config(
        cell=cell,
        prep_dir=prep_dir,
        src_vocab=os.path.join(prep_dir, "vocab.en"),
        tgt_vocab=os.path.join(prep_dir, "vocab.de"),
        output_dir=model_dir,
        seed=seed,
        **overrides,
    )
    src_vocab, tgt_vocab, src_size, tgt_size = load_vocabs(config)
    os.makedirs(model_dir, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        model = Model(config, src_size, tgt_size)
        model.loss(v1.placeholder(tf.int32, [None, None]), v1.placeholder(tf.int32, [None, None]))
        saver = v1.train.Saver()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            randomize(sess, scale=scale, seed=seed)
            saver.save(sess, os.path.join(model_dir, PREFIX), global_step=1)
    config.save(config_lib.saved_path(model_dir))
    record_vocabs(config, src_vocab, tgt_vocab)
    return config
