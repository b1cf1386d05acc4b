"""Loading trained models for inference, written once: a new graph, the configured model (and
its ensemble members), what the caller builds on them, a session, their checkpoints restored.

    loaded = inference.load(config, lambda models, vocabs: Probe(models[0], config))
    loaded.sess.run(loaded.outputs.fetch, ...)

`translator(config)` loads the configured Translator (with the configured shortlist);
`translator(config, extra=...)` builds more on the same models in the same graph and session
(the server's weights probe).
"""

import tensorflow as tf

from zero import shortlist
from zero.checkpoints import DamagedCheckpoint, find_checkpoint, restore_checkpoint
from zero.decode import Translator
from zero.errors import UserError
from zero.model import Model
from zero.modeldir import check_vocabs, checked_vocabs, member_config, member_dir
from zero.session import make_session

v1 = tf.compat.v1


class Loaded:
    """A restored inference graph: graph, sess, models, outputs (what `build` returned),
    src_vocab, tgt_vocab (None where the config gives only a size), checkpoints, and extra
    (what translator()'s `extra` built, else None)."""

    def __init__(self, graph, sess, models, outputs, vocabs, checkpoints):
        self.graph, self.sess, self.models, self.outputs = graph, sess, models, outputs
        self.src_vocab, self.tgt_vocab = vocabs
        self.checkpoints = checkpoints
        self.extra = None


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


def _members(config, vocabs, ensemble):
    """[(config, checkpoint path, variable scope)] of the model and its ensemble members."""
    paths = [config.checkpoint or config.output_dir]
    if ensemble:
        paths += list(config.ensemble)
    members = []
    for i, path in enumerate(paths):
        if i == 0:
            members.append((config, find_checkpoint(path), "model"))
        else:
            check_vocabs(member_dir(path), vocabs[0], vocabs[1], config)
            members.append((member_config(config, path), find_checkpoint(path), f"ensemble_{i}"))
    return members


def load(config, build, ensemble=True):
    """Build `build(models, (src_vocab, tgt_vocab))` on the configured model (and, with
    ensemble, its members) in a new graph, open a session and restore every model's
    checkpoint. Returns a Loaded."""
    src_vocab, tgt_vocab, src_size, tgt_size = checked_vocabs(config)
    members = _members(config, (src_vocab, tgt_vocab), ensemble)
    graph = tf.Graph()
    with graph.as_default():
        models = [Model(c, src_size, tgt_size, scope=scope) for c, _, scope in members]
        outputs = build(models, (src_vocab, tgt_vocab))
    sess = make_session(config, graph)
    checkpoints = [path for _, path, _ in members]
    restore_models(sess, list(zip(models, checkpoints, strict=True)))
    return Loaded(graph, sess, models, outputs, (src_vocab, tgt_vocab), checkpoints)


def translator(config, src=None, extra=None):
    """Loaded whose outputs is the configured Translator: beam search over the model and its
    ensemble members, with config.shortlist when set. `src`: a function building the source
    ids in the graph (export), else they are fed. `extra(models)`: more outputs on the same
    models, restored with them, in loaded.extra."""

    def build(models, vocabs):
        listed = shortlist.configured(config, vocabs)
        found = Translator(models, config, src=src() if src else None, shortlist=listed)
        return found, extra(models) if extra else None

    loaded = load(config, build)
    loaded.outputs, loaded.extra = loaded.outputs
    return loaded
