"""The one configuration schema: every key with its default, type, help, group and valid
values, declared once. The README's key tables (`describe`), the architecture check of a model
directory and the keys workers may set differently all derive from it.

Defaults come from SCHEMA, a YAML file overrides them, `--set key=value` overrides both. The
effective configuration is saved in the model directory and reused by resume, decoding and
scoring, so a model directory is self-contained.
"""

import copy
import difflib
import os

import yaml

from zero.errors import UserError
from zero.textio import atomic_write_text


class Key:
    """One configuration key: default, type, help, group, and for some a set of valid names.

    `choices` is a tuple, or a function returning the names (the registries of cells,
    attentions and schedules, read when a config is checked, so a registered extension is a
    valid value). A type of `list` takes a YAML list; a None default means "unset".
    `bounds` is a number's valid interval in the usual notation: "[1, )" at least 1, "(0, )"
    above 0, "[0, 1)" from 0 up to but not including 1.
    """

    def __init__(self, default, kind, help, group, choices=None, bounds=None):
        self.default, self.kind, self.help, self.group = default, kind, help, group
        self._choices = choices
        # Names from a registry are matched case-insensitively, as the registries do.
        self.registered = callable(choices)
        self.bounds = bounds
        if bounds:
            low, high = (part.strip() for part in bounds[1:-1].split(","))
            self._low = (float(low), bounds[0] == "[") if low else None
            self._high = (float(high), bounds[-1] == "]") if high else None

    def choices(self):
        return self._choices() if self.registered else self._choices

    def out_of_bounds(self, value):
        """None, or what a value outside `bounds` should have been ("at least 1", ...)."""
        if not self.bounds or value is None:
            return None
        low, high = self._low, self._high
        fits_low = low is None or value > low[0] or (low[1] and value == low[0])
        fits_high = high is None or value < high[0] or (high[1] and value == high[0])
        if fits_low and fits_high:
            return None
        if high is None:
            return f"{'at least' if low[1] else 'above'} {low[0]:g}"
        return f"in {self.bounds}"


def _cells():
    from rnns import CELLS  # imported late: rnns pulls in TensorFlow

    return CELLS.names()


def _attentions():
    from rnns import ATTENTIONS

    return ATTENTIONS.names()


def _schedules():
    from zero.schedules import SCHEDULES

    return SCHEDULES.names()


# Groups, in the order the README lists them, with what they mean.
GROUPS = {
    "architecture": "the network: a model directory built with other values cannot be loaded",
    "data": "vocabulary sizes, languages and batching of the training data",
    "files": "paths on this machine (they may differ between the workers of a cluster)",
    "training": "optimisation, budgets, validation and checkpoints",
    "schedule": "the learning rate",
    "decoding": "beam search and which weights to decode with",
    "modes": "inputs and outputs of the other modes",
    "server": "the translation server (--mode serve)",
    "machine": "this process's threads and devices (they may differ between workers)",
}

# Keys that may differ between the workers of a cluster (zero/parallel.py checks the rest).
LOCAL_GROUPS = ("files", "machine")

SCHEMA = {
    # the network
    "cell": Key(
        "lrn", str, "recurrent unit: lrn, olrn, gru, lstm, atr, sru", "architecture", _cells
    ),
    "hidden_size": Key(
        1024, int, "hidden size of every recurrent layer", "architecture", bounds="[1, )"
    ),
    "embed_size": Key(
        1024,
        int,
        "word embedding size (also the readout size, tied softmax)",
        "architecture",
        bounds="[1, )",
    ),
    "num_encoder_layers": Key(
        6,
        int,
        "encoder depth; layer 0 is the bidirectional one",
        "architecture",
        bounds="[1, )",
    ),
    "num_decoder_layers": Key(
        6,
        int,
        "decoder depth; layer 0 attends, layers >= 1 reuse its context",
        "architecture",
        bounds="[1, )",
    ),
    "cell_layer_norm": Key(
        False, bool, "layer normalisation inside the cells (docs/DESIGN.md, LN?)", "architecture"
    ),
    "layer_norm": Key(
        True, bool, "post-norm layer normalisation after each residual connection", "architecture"
    ),
    "lrn_activation": Key(
        "identity",
        str,
        "LRN/oLRN output activation g: identity or tanh",
        "architecture",
        ("identity", "tanh"),
    ),
    "olrn_output_bias": Key(
        0.0,
        float,
        "oLRN: initial output-gate bias b_o (0: no b_o, the paper's cell; > 0 opens the gate)",
        "architecture",
    ),
    "attention": Key(
        "additive",
        str,
        "attention of decoder layer 0: additive (the paper's) or luong (multiplicative)",
        "architecture",
        _attentions,
    ),
    "num_heads": Key(1, int, "attention heads", "architecture", bounds="[1, )"),
    "context_aware": Key(
        True,
        bool,
        "encoder layer 0: context-aware backward pass over the forward outputs (else forward "
        "and backward outputs concatenated)",
        "architecture",
    ),
    # data
    "src_vocab_size": Key(
        0, int, "source vocabulary size when no src_vocab file is given", "data", bounds="[0, )"
    ),
    "tgt_vocab_size": Key(
        0, int, "target vocabulary size when no tgt_vocab file is given", "data", bounds="[0, )"
    ),
    "src_lang": Key("en", str, "source language code (tokenisation, detokenisation)", "data"),
    "tgt_lang": Key("de", str, "target language code", "data"),
    "batch_tokens": Key(
        3000,
        int,
        "token budget of a batch (padded source or target tokens)",
        "data",
        bounds="[1, )",
    ),
    "max_len": Key(
        80,
        int,
        "training pairs longer than this (either side, subwords) are skipped",
        "data",
        bounds="[1, )",
    ),
    "shuffle_buffer": Key(
        100000,
        int,
        "pairs read into one length-sorted, shuffled buffer",
        "data",
        bounds="[1, )",
    ),
    "seed": Key(1234, int, "seed of initialisation, dropout and data order", "data"),
    # files
    "src_vocab": Key(None, str, "source vocabulary file", "files"),
    "tgt_vocab": Key(None, str, "target vocabulary file", "files"),
    "train_src": Key(None, str, "BPE'd training source", "files"),
    "train_tgt": Key(None, str, "BPE'd training target", "files"),
    "dev_src": Key(None, str, "BPE'd dev source (validation BLEU and loss)", "files"),
    "dev_tgt": Key(None, str, "BPE'd dev target (validation loss)", "files"),
    "dev_ref": Key(None, str, "raw detokenized dev reference (validation sacreBLEU)", "files"),
    "prep_dir": Key(
        None, str, "directory written by the prepare scripts (prep.json, bpe.codes)", "files"
    ),
    "output_dir": Key(
        "runs/model", str, "model directory: checkpoints, config, logs, summaries", "files"
    ),
    # training
    "dropout": Key(
        0.1,
        float,
        "dropout on embeddings, residual branches and the readout",
        "training",
        bounds="[0, 1)",
    ),
    "label_smoothing": Key(
        0.1, float, "label smoothing epsilon of the training loss", "training", bounds="[0, 1)"
    ),
    "adam_beta1": Key(0.9, float, "Adam beta1", "training", bounds="[0, 1)"),
    "adam_beta2": Key(0.999, float, "Adam beta2", "training", bounds="[0, 1)"),
    "adam_epsilon": Key(1e-9, float, "Adam epsilon", "training", bounds="(0, )"),
    "clip_norm": Key(
        5.0, float, "gradient clipping by global norm (0 = off)", "training", bounds="[0, )"
    ),
    "grad_accum": Key(
        1, int, "accumulate gradients over N batches before an update", "training", bounds="[1, )"
    ),
    "max_steps": Key(300000, int, "stop after this many updates", "training", bounds="[1, )"),
    "max_time": Key(
        0.0,
        float,
        "stop after this many seconds of training (0 = no limit)",
        "training",
        bounds="[0, )",
    ),
    "time_clock": Key(
        "wall",
        str,
        "what max_time counts: wall (seconds) or cpu (CPU seconds of the training process, so "
        "runs sharing a machine get equal compute)",
        "training",
        ("wall", "cpu"),
    ),
    "lr_progress": Key(
        "steps",
        str,
        "steps, or time: the schedule runs at step max_steps * elapsed / max_time, so a slow "
        "model still completes warmup and decay within max_time (training then stops on time)",
        "training",
        ("steps", "time"),
    ),
    "log_every": Key(
        100, int, "steps between progress lines and training summaries", "training", bounds="[1, )"
    ),
    "eval_every": Key(
        5000,
        int,
        "steps between validation (dev loss and BLEU) and checkpoints",
        "training",
        bounds="[1, )",
    ),
    "save_every": Key(
        0,
        int,
        "steps between extra checkpoints (0 = at validation only)",
        "training",
        bounds="[0, )",
    ),
    "keep_checkpoints": Key(
        5, int, "how many recent checkpoints to keep", "training", bounds="[1, )"
    ),
    "patience": Key(
        0,
        int,
        "stop after this many validations without dev BLEU gain (0 = never)",
        "training",
        bounds="[0, )",
    ),
    "eval_sentences": Key(
        0,
        int,
        "validate BLEU on the first N dev sentences (0 = all)",
        "training",
        bounds="[0, )",
    ),
    "workers": Key(
        [],
        list,
        "host:port of every training process, the same list on each (synchronous data "
        "parallelism, collective all-reduce); [] = one process, or TF_CONFIG when set",
        "training",
    ),
    "precision": Key(
        "float32",
        str,
        "float32, bfloat16 or float16: precision of matrix products and attention (weights, "
        "optimizer state and checkpoints stay float32)",
        "training",
        ("float32", "bfloat16", "float16"),
    ),
    # the learning rate
    "lr": Key(1e-3, float, "peak learning rate", "schedule", bounds="(0, )"),
    "lr_schedule": Key(
        "gnmt+",
        str,
        "gnmt+, noam, cosine, or constant (halved on dev plateau)",
        "schedule",
        _schedules,
    ),
    "warmup_steps": Key(
        4000, int, "warmup steps (gnmt+ p, noam, cosine)", "schedule", bounds="[0, )"
    ),
    "decay_start": Key(
        100000, int, "gnmt+: step where exponential decay starts (s)", "schedule", bounds="[0, )"
    ),
    "decay_end": Key(300000, int, "gnmt+: step where decay ends (e)", "schedule", bounds="[0, )"),
    "gnmt_replicas": Key(
        1,
        int,
        "gnmt+: n, the factor the lr warms up to (Chen et al., 2018)",
        "schedule",
        bounds="[1, )",
    ),
    "min_lr": Key(0.0, float, "floor of the learning rate", "schedule", bounds="[0, )"),
    "plateau_patience": Key(
        1,
        int,
        "constant schedule: evaluations without improvement before halving",
        "schedule",
        bounds="[1, )",
    ),
    # decoding
    "beam_size": Key(4, int, "beam size (1 = greedy)", "decoding", bounds="[1, )"),
    "length_penalty": Key(
        0.6, float, "GNMT length penalty alpha: ((5+len)/6)^alpha", "decoding", bounds="[0, )"
    ),
    "max_decode_extra": Key(
        50,
        int,
        "maximum output length = max_decode_factor x source length + this",
        "decoding",
        bounds="[0, )",
    ),
    "max_decode_factor": Key(
        1.0,
        float,
        "maximum output length = this x source length + max_decode_extra",
        "decoding",
        bounds="[0, )",
    ),
    "decode_batch_tokens": Key(
        2000, int, "source tokens per decoding batch", "decoding", bounds="[1, )"
    ),
    "decode_parallel_batches": Key(
        2,
        int,
        "batches decoded at once, each in its own session run (a decoder step's small products "
        "keep about one core busy; exact: every batch decodes as alone)",
        "decoding",
        bounds="[1, )",
    ),
    "decode_drop_finished": Key(
        True, bool, "a sentence whose beam is done leaves the running batch (exact)", "decoding"
    ),
    "decode_vocab_table": Key(
        True,
        bool,
        "target-vocabulary tables computed once per loaded model, not per batch: decoder "
        "layer 0's first input projection of every word (looked up at each step) and, without "
        "a shortlist, the output layer's transposed embedding (exact; memory: target "
        "vocabulary x (projection + 2 x embedding))",
        "decoding",
    ),
    "decode_shared_memory": Key(
        True,
        bool,
        "a sentence's encoder memory and attention keys are read by its K hypotheses, not "
        "copied K times (exact)",
        "decoding",
    ),
    "decode_row_topk": Key(
        True,
        bool,
        "candidates from each hypothesis's best words, found blockwise, without masking "
        "every row (exact)",
        "decoding",
    ),
    "decode_row_normalizer": Key(
        True,
        bool,
        "with decode_row_topk and one model: log-probabilities of the words each hypothesis "
        "keeps only, normalised by one fused softmax instead of a log-softmax over every row "
        "(exact)",
        "decoding",
    ),
    "decode_projected_memory": Key(
        True,
        bool,
        "the decoder's higher cells read the attention context times their W as the average "
        "of the encoder memory times W, computed once per batch, not a product per step "
        "(exact; memory: batch x source length x the decoder's higher projections; a gain "
        "with several decoder layers, off in the sample configs, which have one)",
        "decoding",
    ),
    "decode_stop_at_n_best": Key(
        True,
        bool,
        "a sentence's beam stops when no alive hypothesis can beat the n-th best finished one, "
        "n the hypotheses asked for (n_best, the server's request), not the beam's last "
        "(exact for those n: the same hypotheses and scores; the others may differ; not "
        "with decode_early_stop)",
        "decoding",
    ),
    "decode_early_stop": Key(
        False,
        bool,
        "stop a sentence's beam when no alive hypothesis beats its finished ones at the next "
        "length, not at the maximum one (approximate: most sentences stop steps earlier)",
        "decoding",
    ),
    "shortlist": Key(
        None,
        str,
        "decode over a per-batch shortlist of target words (a file --mode shortlist built; "
        "approximate: scores are normalised over the list)",
        "decoding",
    ),
    "n_best": Key(1, int, "hypotheses written per input sentence", "decoding", bounds="[1, )"),
    "n_best_separator": Key(
        " ||| ", str, "field separator of n-best lines: index, text, score", "decoding"
    ),
    "checkpoint": Key(None, str, "checkpoint to load instead of the best/latest one", "decoding"),
    "ensemble": Key(
        [], list, "further model directories or checkpoints to ensemble with", "decoding"
    ),
    # the other modes
    "input": Key(None, str, "input file of test, translate, score and weights modes", "modes"),
    "output": Key(
        None, str, "output file of test, translate and score modes (default: stdout)", "modes"
    ),
    "reference": Key(None, str, "target file of score mode", "modes"),
    "average_last": Key(
        5,
        int,
        "average mode: how many of the latest checkpoints to average",
        "modes",
        bounds="[1, )",
    ),
    "export_dir": Key(None, str, "export mode: directory the SavedModel is written to", "modes"),
    "shortlist_frequent": Key(
        100,
        int,
        "shortlist mode: most frequent target words always in the list",
        "modes",
        bounds="[0, )",
    ),
    "shortlist_per_word": Key(
        20,
        int,
        "shortlist mode: most associated target words per source word",
        "modes",
        bounds="[0, )",
    ),
    "layer": Key(
        0, int, "weights mode: encoder layer to decompose (0 = the first)", "modes", bounds="[0, )"
    ),
    "direction": Key(
        "fw",
        str,
        "weights mode: fw or bw half of a bidirectional encoder layer",
        "modes",
        ("fw", "bw"),
    ),
    "weights_dir": Key(
        None, str, "weights mode: directory for the .npz, plots and index.html", "modes"
    ),
    # the server
    "host": Key("127.0.0.1", str, "address the server listens on (0.0.0.0: every one)", "server"),
    "port": Key(
        5000,
        int,
        "port the server listens on (0: any free port; it prints which)",
        "server",
        bounds="[0, 65535]",
    ),
    "serve_threads": Key(
        16,
        int,
        "HTTP worker threads: requests handled at once (more wait their turn)",
        "server",
        bounds="[1, )",
    ),
    "serve_batch_tokens": Key(
        4000,
        int,
        "source token budget of one decoding batch (sentences x longest, EOS included): the "
        "decoding thread takes every waiting sentence up to it",
        "server",
        bounds="[1, )",
    ),
    "serve_wait_ms": Key(
        20.0,
        float,
        "when fewer sentences wait than were in flight at once recently, wait this long at most "
        "for the rest before decoding (a lone client never waits)",
        "server",
        bounds="[0, )",
    ),
    "serve_max_items": Key(
        64, int, "most sentences in one request (more: 413)", "server", bounds="[1, )"
    ),
    "serve_max_chars": Key(
        2000, int, "most characters in one sentence (more: 413)", "server", bounds="[1, )"
    ),
    # this process
    "threads": Key(
        0, int, "intra-op and inter-op threads (0 = TensorFlow's choice)", "machine", bounds="[0, )"
    ),
    "cpu_kernels": Key(
        "auto",
        str,
        "TensorFlow's CPU kernels: onednn, tensorflow (its own), or auto (TensorFlow's choice, "
        "but its own in serve mode, whose few-sentence decoder steps run faster on them)",
        "machine",
        ("auto", "onednn", "tensorflow"),
    ),
    "devices": Key(
        [],
        list,
        "train on these devices of one process, e.g. [/gpu:0, /gpu:1]: each takes its own "
        "batch of batch_tokens, gradients are summed ([] = TensorFlow's default device)",
        "machine",
    ),
    "worker_index": Key(
        0,
        int,
        "this process's position in workers; 0 = the chief (it saves)",
        "machine",
        bounds="[0, )",
    ),
}

ARCHITECTURE_KEYS = tuple(k for k, key in SCHEMA.items() if key.group == "architecture")
LOCAL_KEYS = frozenset(k for k, key in SCHEMA.items() if key.group in LOCAL_GROUPS)

CONFIG_NAME = "config.yaml"


class Config(dict):
    """A validated configuration; keys read as attributes (`config.hidden_size`)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def save(self, path):
        atomic_write_text(path, yaml.safe_dump(dict(self), sort_keys=False))


def _unknown_key(key, where):
    close = difflib.get_close_matches(key, SCHEMA, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return UserError(f"{where}: unknown config key '{key}'{hint}")


def _coerce(key, value, where):
    default, kind = SCHEMA[key].default, SCHEMA[key].kind
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
        if key in SCHEMA and SCHEMA[key].kind is str and value is not None:
            value = raw  # strings stay verbatim: '1e-3' or 'yes' must not change type
        out[key] = value
    return out


def _check_bounds(values):
    for key, spec in SCHEMA.items():
        if (wanted := spec.out_of_bounds(values[key])) is not None:
            raise UserError(f"config key '{key}': must be {wanted}, got {values[key]!r}")


def _check_choices(values):
    for key, spec in SCHEMA.items():
        names = spec.choices()
        value = values[key]
        # Registered names (cells, attentions, schedules) are case-insensitive: 'oLRN' is fine.
        if names is None or value in names or (spec.registered and value.lower() in names):
            continue
        close = difflib.get_close_matches(value.lower(), names, n=1, cutoff=0.0)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(
            f"config key '{key}': unknown value '{value}', choose one of {', '.join(names)}{hint}"
        )


def peek(path, sets, key):
    """One key's value from the file and the --set overrides, unchecked: for what must be set
    before TensorFlow loads (load checks the registered names, which imports it). Load checks
    it later."""
    value = SCHEMA[key].default
    if path:
        value = read_yaml(path).get(key, value)
    return parse_sets(sets).get(key, value)


def load(path=None, sets=None):
    """Defaults <- YAML file <- --set overrides, validated."""
    values = {key: copy.deepcopy(spec.default) for key, spec in SCHEMA.items()}
    if path:
        _apply(values, read_yaml(path), path)
    _apply(values, parse_sets(sets), "--set")
    _check_choices(values)
    _check_bounds(values)
    if values["lr_progress"] == "time" and values["max_time"] <= 0:
        raise UserError("config key 'lr_progress': 'time' needs a positive max_time")
    factor, extra = values["max_decode_factor"], values["max_decode_extra"]
    if int(factor) + extra < 1:
        raise UserError(
            "config keys 'max_decode_factor', 'max_decode_extra': the maximum output length "
            f"factor x source length + extra must be at least 1 token (got {factor} and {extra})"
        )
    return Config(values)


def saved_path(output_dir):
    return os.path.join(output_dir, CONFIG_NAME)


def check_same_architecture(config, saved, where):
    """Raise a UserError naming every architecture key on which `config` and `saved` differ."""
    diffs = [
        f"{key}: {stored!r} in the model, {config.get(key)!r} in the config"
        for key in ARCHITECTURE_KEYS
        # A key added since the model was saved holds its default there.
        if (stored := saved.get(key, SCHEMA[key].default)) != config.get(key)
    ]
    if diffs:
        raise UserError(
            f"the model in {where} does not match the config: "
            + "; ".join(diffs)
            + ". Use the model directory's own config.yaml or fix the config."
        )


def describe():
    """Markdown tables of every key by group, for the README."""
    rows = []
    for group, meaning in GROUPS.items():
        rows += [
            f"**{group}**: {meaning}",
            "",
            "| key | default | valid | meaning |",
            "|---|---|---|---|",
        ]
        for key, spec in SCHEMA.items():
            if spec.group == group:
                valid = f"`{spec.bounds}`" if spec.bounds else ""
                rows.append(f"| `{key}` | `{spec.default}` | {valid} | {spec.help} |")
        rows.append("")
    return "\n".join(rows).rstrip("\n")
