"""One place that decides what each mode does; the model only builds graphs."""

import json
import math
import os
import sys
from collections import OrderedDict

import numpy as np
import tensorflow as tf

from zero import config as config_lib
from zero import data
from zero.checkpoints import (
    DamagedCheckpoint,
    average_checkpoints,
    find_checkpoint,
    listed_checkpoints,
    restore_checkpoint,
)
from zero.decode import Translator, stderr_log, translate_batches
from zero.errors import UserError
from zero.fileio import atomic_write_text
from zero.model import Model
from zero.session import load_vocabs, make_session

v1 = tf.compat.v1
VOCAB_RECORD = "vocab.json"


# -- model directories ---------------------------------------------------------------------


def record_vocabs(config, src_vocab, tgt_vocab):
    """Remember which vocabularies a model was trained with (checked by every later mode)."""
    record = {
        side: {"path": config[f"{side}_vocab"], "size": len(v), "fingerprint": v.fingerprint()}
        for side, v in (("src", src_vocab), ("tgt", tgt_vocab))
        if v is not None
    }
    atomic_write_text(os.path.join(config.output_dir, VOCAB_RECORD), json.dumps(record, indent=1))


def check_vocabs(model_dir, src_vocab, tgt_vocab, config):
    path = os.path.join(model_dir, VOCAB_RECORD)
    if not os.path.exists(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except ValueError:
        raise UserError(f"{path}: not a vocabulary record (invalid JSON); delete it") from None
    for side, vocab in (("src", src_vocab), ("tgt", tgt_vocab)):
        saved = record.get(side)
        if saved and vocab is not None and saved["fingerprint"] != vocab.fingerprint():
            raise UserError(
                f"vocabulary mismatch: the model in {model_dir} was trained with "
                f"{saved['path']} ({saved['size']} entries) but config key '{side}_vocab' gives "
                f"{config[f'{side}_vocab']} ({len(vocab)} entries, different tokens)"
            )


def model_config(config, model_dir):
    """The model directory's saved config, checked against `config` for architecture keys."""
    saved = config_lib.saved_path(model_dir)
    if not os.path.exists(saved):
        return config
    stored = config_lib.read_yaml(saved)
    config_lib.check_same_architecture(config, stored, model_dir)
    return config


def checked_vocabs(config):
    """load_vocabs(config) for a mode that reads a trained model: the model directory's saved
    config must have the same architecture and its vocabulary record the same vocabularies."""
    vocabs = load_vocabs(config)
    model_config(config, config.output_dir)
    check_vocabs(config.output_dir, vocabs[0], vocabs[1], config)
    return vocabs


def _member_dir(path):
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def restore_models(sess, members):
    """members: [(Model, checkpoint path)]; each model's variables come from its checkpoint."""
    for model, path in members:
        names = {}
        for var in sess.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES):
            if var.op.name.startswith(model.scope + "/"):
                names["model/" + var.op.name[len(model.scope) + 1 :]] = var
        try:
            with sess.graph.as_default():
                restore_checkpoint(sess, v1.train.Saver(names), names, path)
        except DamagedCheckpoint as e:
            raise UserError(
                f"checkpoint {path} is damaged or incomplete ({e}); pass an older one with "
                "--set checkpoint=PREFIX"
            ) from None


def build_translator(config, graph, src=None):
    """The configured model (and ensemble members) with a Translator, in `graph` (`src`: see
    Translator)."""
    src_vocab, tgt_vocab, src_size, tgt_size = checked_vocabs(config)
    paths = [config.checkpoint or config.output_dir] + list(config.ensemble)
    members = []
    with graph.as_default():
        for i, path in enumerate(paths):
            member_config = config
            if i > 0:
                saved = config_lib.saved_path(_member_dir(path))
                member_config = config_lib.load(saved if os.path.exists(saved) else None)
                # The run's precision, not the one the member was trained in.
                keys = ("src_vocab", "tgt_vocab", "precision")
                member_config.update({k: config[k] for k in keys})
                check_vocabs(_member_dir(path), src_vocab, tgt_vocab, config)
            scope = "model" if i == 0 else f"ensemble_{i}"
            members.append(
                (Model(member_config, src_size, tgt_size, scope=scope), find_checkpoint(path))
            )
        translator = Translator([m for m, _ in members], config, src=src)
    return translator, members, src_vocab, tgt_vocab


# -- modes -------------------------------------------------------------------------------


def run_train(config):
    from zero.train import Trainer

    if os.path.isdir(config.output_dir):  # resuming: the vocabularies must be the same
        src_vocab, tgt_vocab, _, _ = load_vocabs(config)
        check_vocabs(config.output_dir, src_vocab, tgt_vocab, config)
    trainer = Trainer(config)
    if trainer.chief:  # the other workers of a cluster write nothing
        record_vocabs(config, trainer.src_vocab, trainer.tgt_vocab)
    trainer.train()


def run_test(config):
    if not config.input:
        raise UserError("test mode needs the input file: --set input=FILE (BPE'd source)")
    graph = tf.Graph()
    translator, members, src_vocab, tgt_vocab = build_translator(config, graph)
    sess = make_session(config, graph)
    restore_models(sess, members)
    lines = [line for _, line in data.read_lines(config.input)]
    batches = data.EvalBatches(config.input, src_vocab, batch_tokens=config.decode_batch_tokens)
    results = translate_batches(
        sess, translator, batches, tgt_vocab, n_best=config.n_best, log=stderr_log
    )
    out = []
    sep = config.n_best_separator
    for index, (source, hyps) in enumerate(zip(lines, results, strict=True)):
        if not source.strip():
            hyps = [("", 0.0)]  # empty input, empty output: the files stay aligned
        if config.n_best > 1:
            out += [f"{index}{sep}{text}{sep}{score:.4f}" for text, score in hyps]
        else:
            out.append(hyps[0][0] if hyps else "")
    _write_lines(config.output, out)


def run_score(config):
    """Per-sentence log-probability of (input, reference) pairs; corpus perplexity on stderr."""
    if not config.input or not config.reference:
        raise UserError("score mode needs --set input=SRC --set reference=TGT (BPE'd)")
    data.check_parallel(config.input, config.reference)
    src_vocab, tgt_vocab, src_size, tgt_size = checked_vocabs(config)
    graph = tf.Graph()
    with graph.as_default():
        model = Model(config, src_size, tgt_size)
        src = v1.placeholder(tf.int32, [None, None])
        tgt = v1.placeholder(tf.int32, [None, None])
        _, stats = model.loss(src, tgt, training=False)
    sess = make_session(config, graph)
    restore_models(sess, [(model, find_checkpoint(config.checkpoint or config.output_dir))])
    scores, total_nll, total_tokens = {}, 0.0, 0.0
    batches = data.EvalBatches(
        config.input,
        src_vocab,
        batch_tokens=config.decode_batch_tokens,
        tgt_path=config.reference,
        tgt_vocab=tgt_vocab,
    )
    for batch in batches:
        nll, tokens = sess.run(
            [stats["sentence_nll"], stats["tokens"]], {src: batch["src"], tgt: batch["tgt"]}
        )
        for index, value in zip(batch["index"], nll, strict=True):
            scores[int(index)] = -float(value)
        total_nll += float(np.sum(nll))
        total_tokens += float(tokens)
    _write_lines(config.output, [f"{scores[i]:.4f}" for i in sorted(scores)])
    ppl = math.exp(min(total_nll / max(total_tokens, 1.0), 50.0))
    stderr_log(f"sentences {len(scores)}  tokens {int(total_tokens)}  perplexity {ppl:.3f}")


def parameter_table(config):
    """[(component, count)] of the configured model, built without data."""
    _, _, src_size, tgt_size = load_vocabs(config)
    graph = tf.Graph()
    with graph.as_default():
        model = Model(config, src_size, tgt_size)
        model.loss(v1.placeholder(tf.int32, [None, None]), v1.placeholder(tf.int32, [None, None]))
        counts = OrderedDict()
        for var in v1.trainable_variables():
            parts = var.op.name.split("/")
            key = "/".join(parts[1:3]) if parts[1] in ("encoder", "decoder") else parts[1]
            if parts[1] == "decoder" and parts[2].startswith("init"):
                key = "decoder/init"
            counts[key] = counts.get(key, 0) + int(np.prod(var.shape.as_list()))
    return list(counts.items())


def run_params(config):
    rows = parameter_table(config)
    width = max(len(k) for k, _ in rows)
    print(f"{'component':<{width}}  {'parameters':>12}")
    for key, count in rows:
        print(f"{key:<{width}}  {count:>12,}")
    print(f"total parameters: {sum(c for _, c in rows)}")


def run_average(config):
    """Average the last `average_last` checkpoints of output_dir into output_dir/averaged/."""
    paths = listed_checkpoints(config.output_dir)[-config.average_last :]
    if not paths:
        raise UserError(f"no checkpoints to average in {config.output_dir}")
    target = os.path.join(config.output_dir, "averaged", os.path.basename(paths[-1]))
    path = average_checkpoints(paths, target)
    stderr_log(
        f"averaged {len(paths)} checkpoints ({', '.join(map(os.path.basename, paths))}) into {path}"
    )
    print(path)


def _write_lines(path, lines):
    text = "".join(line + "\n" for line in lines)
    if path:
        atomic_write_text(path, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def run_translate(config):
    from zero.translate import translate  # late: it imports this module

    translate(config)


def run_export(config):
    from zero.export import export  # late: it imports this module

    export(config)


def run_weights(config):
    from zero.weights import run_weights as weights  # late: it imports this module

    weights(config)


MODES = {
    "train": run_train,
    "test": run_test,
    "score": run_score,
    "params": run_params,
    "average": run_average,
    "translate": run_translate,
    "export": run_export,
    "weights": run_weights,
}
