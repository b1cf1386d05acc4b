"""A model directory's bookkeeping: the saved config and the vocabulary record, and the checks
every mode that reads a trained model makes against them (docs/DESIGN.md, "Model directory").
"""

import json
import os

from zero import config as config_lib
from zero.errors import UserError
from zero.textio import atomic_write_text
from zero.vocab import load_vocabs

VOCAB_RECORD = "vocab.json"
VALIDATION_LOG = "validation.jsonl"


def record_vocabs(config, src_vocab, tgt_vocab):
    """Remember which vocabularies a model was trained with (checked by every later mode)."""
    record = {
        side: {"path": config[f"{side}_vocab"], "size": len(v), "fingerprint": v.fingerprint()}
        for side, v in (("src", src_vocab), ("tgt", tgt_vocab))
        if v is not None
    }
    atomic_write_text(os.path.join(config.output_dir, VOCAB_RECORD), json.dumps(record, indent=1))


def check_vocabs(model_dir, src_vocab, tgt_vocab, config):
    """UserError if the model in model_dir was trained with other vocabularies."""
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


def check_saved_config(config, model_dir):
    """UserError if the model directory's saved config has another architecture."""
    saved = config_lib.saved_path(model_dir)
    if os.path.exists(saved):
        config_lib.check_same_architecture(config, config_lib.read_yaml(saved), model_dir)


def checked_vocabs(config):
    """load_vocabs(config) for a mode that reads a trained model: the model directory's saved
    config must have the same architecture and its vocabulary record the same vocabularies."""
    vocabs = load_vocabs(config)
    check_saved_config(config, config.output_dir)
    check_vocabs(config.output_dir, vocabs[0], vocabs[1], config)
    return vocabs


def member_dir(path):
    """The model directory of a path that is one, or a checkpoint prefix inside one."""
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def member_config(config, path):
    """The config of ensemble member `path` (its own saved config, with the run's vocabularies
    and precision), checked against the run's vocabularies."""
    saved = config_lib.saved_path(member_dir(path))
    member = config_lib.load(saved if os.path.exists(saved) else None)
    member.update({k: config[k] for k in ("src_vocab", "tgt_vocab", "precision")})
    return member
