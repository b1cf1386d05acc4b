"""The one configuration schema: every key with its default, type and help, declared once.

Defaults come from SCHEMA, a YAML file overrides them, `--set key=value` overrides both. The
effective configuration is saved in the model directory and reused by resume, decoding and
scoring, so a model directory is self-contained.
"""

import difflib
import os

import yaml

from zero.errors import UserError

# name: (default, type, help). A type of `list` takes a YAML list; None defaults mean "unset".
SCHEMA = {
    # model
    "cell": ("lrn", str, "recurrent unit: lrn, olrn, gru, lstm, atr, sru"),
    "hidden_size": (1024, int, "hidden size of every recurrent layer"),
    "embed_size": (1024, int, "word embedding size (also the readout size, tied softmax)"),
    "num_encoder_layers": (6, int, "encoder depth; layer 0 is the context-aware bidirectional one"),
    "num_decoder_layers": (6, int, "decoder depth; layer 0 attends, layers >= 1 reuse its context"),
    "cell_layer_norm": (False, bool, "layer normalisation inside the cells (DESIGN.md LN?)"),
    "layer_norm": (True, bool, "post-norm layer normalisation after each residual connection"),
    "lrn_activation": ("identity", str, "LRN/oLRN output activation g: identity or tanh"),
    "num_heads": (1, int, "attention heads of the additive attention"),
    "context_aware": (True, bool, "context-aware first encoder layer (else a plain backward RNN)"),
    "dropout": (0.1, float, "dropout on embeddings, residual branches and the readout"),
    "label_smoothing": (0.1, float, "label smoothing epsilon of the training loss"),
    "src_vocab_size": (0, int, "source vocabulary size when no src_vocab file is given"),
    "tgt_vocab_size": (0, int, "target vocabulary size when no tgt_vocab file is given"),
    # data
    "src_lang": ("en", str, "source language code (tokenisation, detokenisation)"),
    "tgt_lang": ("de", str, "target language code"),
    "src_vocab": (None, str, "source vocabulary file"),
    "tgt_vocab": (None, str, "target vocabulary file"),
    "train_src": (None, str, "BPE'd training source"),
    "train_tgt": (None, str, "BPE'd training target"),
    "dev_src": (None, str, "BPE'd dev source (validation BLEU and loss)"),
    "dev_tgt": (None, str, "BPE'd dev target (validation loss)"),
    "dev_ref": (None, str, "raw detokenized dev reference (validation sacreBLEU)"),
    "prep_dir": (None, str, "directory written by the prepare scripts (prep.json, bpe.codes)"),
    "batch_tokens": (3000, int, "token budget of a batch (padded source or target tokens)"),
    "max_len": (80, int, "training pairs longer than this (either side, subwords) are skipped"),
    "shuffle_buffer": (100000, int, "pairs read into one length-sorted, shuffled buffer"),
    "seed": (1234, int, "seed of initialisation, dropout and data order"),
    # training
    "output_dir": ("runs/model", str, "model directory: checkpoints, config, logs, summaries"),
    "lr": (1e-3, float, "peak learning rate"),
    "lr_schedule": ("gnmt+", str, "gnmt+, noam, cosine, or constant (halved on dev plateau)"),
    "warmup_steps": (4000, int, "warmup steps (gnmt+ p, noam, cosine)"),
    "decay_start": (100000, int, "gnmt+: step where exponential decay starts (s)"),
    "decay_end": (300000, int, "gnmt+: step where decay ends (e)"),
    "gnmt_replicas": (1, int, "gnmt+: n, the factor the lr warms up to (Chen et al., 2018)"),
    "min_lr": (0.0, float, "floor of the learning rate"),
    "plateau_patience": (
        1,
        int,
        "constant schedule: evaluations without improvement before halving",
    ),
    "adam_beta1": (0.9, float, "Adam beta1"),
    "adam_beta2": (0.999, float, "Adam beta2"),
    "adam_epsilon": (1e-9, float, "Adam epsilon"),
    "clip_norm": (5.0, float, "gradient clipping by global norm (0 = off)"),
    "grad_accum": (1, int, "accumulate gradients over N batches before an update"),
    "max_steps": (300000, int, "stop after this many updates"),
    "max_time": (0.0, float, "stop after this many seconds of training (0 = no limit)"),
    "time_clock": (
        "wall",
        str,
        "what max_time counts: wall (seconds) or cpu (CPU seconds of the training process, so "
        "runs sharing a machine get equal compute)",
    ),
    "lr_progress": (
        "steps",
        str,
        "steps, or time: the schedule runs at step max_steps * elapsed / max_time, so a slow "
        "model still completes warmup and decay within max_time (training then stops on time)",
    ),
    "log_every": (100, int, "steps between progress lines and training summaries"),
    "eval_every": (5000, int, "steps between validation (dev loss and BLEU) and checkpoints"),
    "save_every": (0, int, "steps between extra checkpoints (0 = at validation only)"),
    "keep_checkpoints": (5, int, "how many recent checkpoints to keep"),
    "patience": (0, int, "stop after this many validations without dev BLEU gain (0 = never)"),
    "eval_sentences": (0, int, "validate BLEU on the first N dev sentences (0 = all)"),
    "threads": (0, int, "intra-op and inter-op threads (0 = TensorFlow's choice)"),
    "devices": (
        [],
        list,
        "train on these devices of one process, e.g. [/gpu:0, /gpu:1]: each takes its own "
        "batch of batch_tokens, gradients are summed ([] = TensorFlow's default device)",
    ),
    "workers": (
        [],
        list,
        "host:port of every training process, the same list on each (synchronous data "
        "parallelism, collective all-reduce); [] = one process, or TF_CONFIG when set",
    ),
    "worker_index": (0, int, "this process's position in workers; 0 = the chief (it saves)"),
    # decoding
    "beam_size": (4, int, "beam size (1 = greedy)"),
    "length_penalty": (0.6, float, "GNMT length penalty alpha: ((5+len)/6)^alpha"),
    "max_decode_extra": (50, int, "maximum output length = source length + this"),
    "decode_batch_tokens": (2000, int, "source tokens per decoding batch"),
    "n_best": (1, int, "hypotheses written per input sentence"),
    "n_best_separator": (" ||| ", str, "field separator of n-best lines: index, text, score"),
    "input": (None, str, "input file of test, score and weights modes"),
    "output": (None, str, "output file of test and score modes (default: stdout)"),
    "reference": (None, str, "target file of score mode"),
    "checkpoint": (None, str, "checkpoint to load instead of the best/latest one"),
    "ensemble": ([], list, "further model directories or checkpoints to ensemble with"),
    "average_last": (5, int, "average mode: how many of the latest checkpoints to average"),
    # translation, export, inspection
    "export_dir": (None, str, "export mode: directory the SavedModel is written to"),
    "layer": (0, int, "weights mode: encoder layer to decompose (0 = the first)"),
    "direction": ("fw", str, "weights mode: fw or bw half of a bidirectional encoder layer"),
    "weights_dir": (None, str, "weights mode: directory for the .npz, plots and index.html"),
    # precision and devices
    "precision": (
        "float32",
        str,
        "float32, bfloat16 or float16: precision of matrix products and attention (weights, "
        "optimizer state and checkpoints stay float32)",
    ),
}

# Keys that define the network: a model directory built with other values cannot be loaded.
ARCHITECTURE_KEYS = (
    "cell",
    "hidden_size",
    "embed_size",
    "num_encoder_layers",
    "num_decoder_layers",
    "cell_layer_norm",
    "layer_norm",
    "lrn_activation",
    "num_heads",
    "context_aware",
)

CONFIG_NAME = "config.yaml"


class Config(dict):
    """A validated configuration; keys read as attributes (`config.hidden_size`)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def save(self, path):
        from zero.fileio import atomic_write_text

        atomic_write_text(path, yaml.safe_dump(dict(self), sort_keys=False))


def _unknown_key(key, where):
    close = difflib.get_close_matches(key, SCHEMA, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return UserError(f"{where}: unknown config key '{key}'{hint}")


def _coerce(key, value, where):
    default, kind, _ = SCHEMA[key]
    a_kind = {"int": "an int", "float": "a float", "bool": "a bool", "str": "a string"}.get(
        kind.__name__, f"a {kind.__name__}"
    )
    if value is None:
        if default is None:
            return None
        raise UserError(f"{where}: key '{key}' must be {a_kind}, got null")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):
        # YAML 1.1 reads 1e-3 (no dot in the mantissa) as a string: the usual way to write a
        # learning rate must not be a type error.
        try:
            return float(value)
        except ValueError:
            pass
    if kind is list and not isinstance(value, list):
        return [value]
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(
            f"{where}: key '{key}' must be {a_kind}, got {value!r} ({type(value).__name__})"
        )
    return value


def _apply(values, overrides, where):
    for key, value in overrides.items():
        if key not in SCHEMA:
            raise _unknown_key(key, where)
        values[key] = _coerce(key, value, where)


def read_yaml(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(
            f"{path}: not valid YAML{where}: {problem or ' '.join(str(e).split())}"
        ) from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except IsADirectoryError:
        raise UserError(f"config file {path} is a directory; give its config.yaml") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config file must be a mapping of key: value")
    return data


def parse_sets(sets):
    """['key=value', ...] -> dict, values parsed as YAML scalars (so 3 is int, true is bool)."""
    out = {}
    for item in sets or []:
        if "=" not in item:
            raise UserError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if key in SCHEMA and SCHEMA[key][1] is str and value is not None:
            value = raw  # strings stay verbatim: '1e-3' or 'yes' must not change type
        out[key] = value
    return out


def _choices():
    """Keys whose value is one of a few names, with those names (imported late: rnns pulls in
    TensorFlow, which reading a config does not otherwise need)."""
    from rnns import CELLS
    from zero.schedules import SCHEDULES

    return {
        "cell": tuple(CELLS),
        "lrn_activation": ("identity", "tanh"),
        "lr_schedule": SCHEDULES,
        "time_clock": ("wall", "cpu"),
        "lr_progress": ("steps", "time"),
        "direction": ("fw", "bw"),
        "precision": ("float32", "bfloat16", "float16"),
    }


def _check_choices(values):
    for key, names in _choices().items():
        value = values[key]
        # Cell names are case-insensitive (rnns.get_cell), so 'LRN' and 'oLRN' are fine.
        if (value.lower() if key == "cell" else value) in names:
            continue
        close = difflib.get_close_matches(value.lower(), names, n=1, cutoff=0.0)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(
            f"config key '{key}': unknown value '{value}', choose one of {', '.join(names)}{hint}"
        )


def load(path=None, sets=None):
    """Defaults <- YAML file <- --set overrides, validated."""
    values = {key: spec[0] for key, spec in SCHEMA.items()}
    values["ensemble"] = []
    if path:
        _apply(values, read_yaml(path), path)
    _apply(values, parse_sets(sets), "--set")
    _check_choices(values)
    if values["lr_progress"] == "time" and values["max_time"] <= 0:
        raise UserError("config key 'lr_progress': 'time' needs a positive max_time")
    return Config(values)


def saved_path(output_dir):
    return os.path.join(output_dir, CONFIG_NAME)


def check_same_architecture(config, saved, where):
    """Raise a UserError naming every architecture key on which `config` and `saved` differ."""
    diffs = [
        f"{key}: {saved.get(key)!r} in the model, {config.get(key)!r} in the config"
        for key in ARCHITECTURE_KEYS
        if saved.get(key) != config.get(key)
    ]
    if diffs:
        raise UserError(
            f"the model in {where} does not match the config: "
            + "; ".join(diffs)
            + ". Use the model directory's own config.yaml or fix the config."
        )


def describe():
    """Markdown table of every key, for the README."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key, (default, _, text) in SCHEMA.items():
        rows.append(f"| `{key}` | `{default}` | {text} |")
    return "\n".join(rows)
