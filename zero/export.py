"""A self-contained TensorFlow SavedModel for serving (TensorFlow Serving, tf.saved_model.load).

The serving signature ('serving_default', predict) maps a batch of BPE'd source strings to the
best translations, BPE'd, and their length-normalised scores. Everything between is in the
graph, so a server needs no code from this project: whitespace split, vocabulary lookup (the
vocabularies are constants of the graph; unknown words -> <unk>), EOS and padding, the
model's beam search, and ids back to a string. The tokenizer and BPE settings go along in
assets.extra/ (prep.json and the files it names), which servers ignore; a client can apply
them with zero.preprocess.Preprocessor(EXPORT_DIR/assets.extra).
"""

import json
import os
import shutil

import tensorflow as tf

from zero import inference, log, shortlist
from zero.decode import Translator
from zero.errors import UserError
from zero.vocab import EOS, PAD, UNK, load_vocabs

v1 = tf.compat.v1
SIGNATURE = "serving_default"
# Where the text processing around the model runs, whatever device the model is on: strings
# stay on the CPU by design (docs/DESIGN.md, "Running on GPUs").
HOST = "/device:CPU:0"


def _source_ids(source, vocab):
    """source [B] strings -> [B, S] int32 ids, EOS after each sentence, PAD after that; and
    the number of words of each sentence [B]. On the CPU by design (HOST): strings and the
    vocabulary table have no GPU kernels; only the ids go to the model's device."""
    with tf.device(HOST), tf.name_scope("source_ids"):
        words = tf.strings.split(source)  # ragged [B, None], any run of whitespace separates
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocab.tokens), tf.range(len(vocab), dtype=tf.int64)
            ),
            default_value=UNK,
        )
        ids = tf.cast(tf.ragged.map_flat_values(table.lookup, words), tf.int32)
        eos = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(source)[0], 1], EOS))
        ids = tf.concat([ids, eos], axis=1).to_tensor(default_value=PAD)
        # Grappler's arithmetic optimizer regroups products (e.g. in layer norm) when it can
        # infer shapes, and the different rounding can flip beam decisions. Behind a placeholder
        # of unknown shape the model graph is optimised exactly as test mode's fed one: same
        # scores.
        ids = v1.placeholder_with_default(ids, shape=None)
        ids.set_shape([None, None])
        return ids, tf.cast(words.row_lengths(), tf.int32)


def _target_text(ids, vocab, empty):
    """ids [B, T] (a hypothesis, then EOS padding) -> [B] strings of space-joined tokens, ""
    where `empty` [B]. On the CPU by design (HOST), like _source_ids."""
    with tf.device(HOST), tf.name_scope("target_text"):
        ends = tf.math.cumprod(tf.cast(tf.not_equal(ids, EOS), tf.int32), 1)
        lengths = tf.reduce_sum(ends, 1)
        tokens = tf.gather(tf.constant(vocab.tokens), ids)
        text = tf.strings.reduce_join(
            tf.RaggedTensor.from_tensor(tokens, lengths=lengths), axis=1, separator=" "
        )
        return tf.where(empty, "", text)


def serving_signature(config, models, vocabs):
    """In the current graph: the serving signature over `models` (BPE'd source strings in,
    translation and score out) and the op the loader runs after it restored the weights."""
    src_vocab, tgt_vocab = vocabs
    source = v1.placeholder(tf.string, [None], name="source")
    ids, num_words = _source_ids(source, src_vocab)
    listed = shortlist.configured(config, vocabs)
    translator = Translator(models, config, src=ids, shortlist=listed)
    empty = tf.equal(num_words, 0)  # an empty line gives an empty translation, as test mode
    text = _target_text(translator.ids[:, 0], tgt_vocab, empty)
    score = tf.where(empty, 0.0, translator.scores[:, 0])
    outputs = {"translation": tf.identity(text, "translation"), "score": score}
    signature = v1.saved_model.signature_def_utils.predict_signature_def(
        {"source": source}, outputs
    )
    # Run by the loader after it restored the weights: the vocabulary tables and the decoder's
    # lookup table. Built before the session runs anything: grouping the initialisers marks
    # their ops, which TensorFlow refuses for ops a session has seen.
    ready = [v1.tables_initializer()]
    if translator.refresh is not None:
        ready.append(translator.refresh)
    return signature, tf.group(*ready)


def serving_graph(config):
    """The restored serving graph: inference.Loaded whose outputs are serving_signature's."""
    src_vocab, tgt_vocab, _, _ = load_vocabs(config)
    if src_vocab is None or tgt_vocab is None:
        raise UserError("export mode needs the vocabulary files (src_vocab, tgt_vocab)")
    return inference.load(config, lambda models, vocabs: serving_signature(config, models, vocabs))


def _check_target(export_dir):
    if not export_dir:
        raise UserError("export mode needs the output directory: --set export_dir=DIR")
    if os.path.isfile(export_dir) or (os.path.isdir(export_dir) and os.listdir(export_dir)):
        raise UserError(
            f"config key 'export_dir': {export_dir} already exists and is not empty; remove it "
            "or export to a new directory (TensorFlow Serving reads BASE/VERSION, e.g. "
            "exports/ende/2)"
        )


def _copy_prep(config, assets):
    """prep.json and the BPE files it names into `assets`, for clients that preprocess."""
    prep_dir = config.prep_dir
    record_path = os.path.join(prep_dir, "prep.json") if prep_dir else None
    if not record_path or not os.path.isfile(record_path):
        log.info("no prep_dir with prep.json in the config: assets.extra/ left out")
        return
    with open(record_path, encoding="utf-8") as f:
        bpe = json.load(f).get("bpe", {})
    os.makedirs(assets)
    for name in ["prep.json", bpe.get("codes"), *bpe.get("vocabulary", {}).values()]:
        if name and os.path.isfile(os.path.join(prep_dir, name)):
            shutil.copy2(os.path.join(prep_dir, name), os.path.join(assets, name))


def export(config):
    """Write the SavedModel of the configured model directory to config.export_dir."""
    export_dir = config.export_dir
    _check_target(export_dir)
    loaded = serving_graph(config)
    signature, init_tables = loaded.outputs
    # Built beside the target and renamed into place: a failed export leaves no SavedModel a
    # server could pick up half-written.
    tmp = os.path.abspath(export_dir).rstrip(os.sep) + f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    with loaded.graph.as_default():
        builder = v1.saved_model.Builder(tmp)
        builder.add_meta_graph_and_variables(
            loaded.sess,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map={SIGNATURE: signature},
            main_op=init_tables,
            strip_default_attrs=True,  # loadable by older TensorFlow Serving builds
        )
        builder.save()
    loaded.sess.close()
    _copy_prep(config, os.path.join(tmp, "assets.extra"))
    if os.path.isdir(export_dir):
        os.rmdir(export_dir)  # empty (checked above)
    os.makedirs(os.path.dirname(os.path.abspath(export_dir)), exist_ok=True)
    os.replace(tmp, export_dir)
    log.info(
        f"exported {loaded.checkpoints[0]} to {export_dir} (signature '{SIGNATURE}': source "
        "strings -> translation, score)"
    )
