"""Raw text to BPE'd tokens as a prepared corpus was made: Moses-style normalisation and
tokenisation (sacremoses) and subword-nmt BPE. The corpus pipeline (zero/prepare.py) applies it
to whole corpora; `Preprocessor` repeats it on raw text at translation time from the settings
the pipeline recorded in prep.json.
"""

from __future__ import annotations

import importlib.metadata
import json
import os

from zero.errors import UserError


def version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


TOKENIZER = {
    "library": "sacremoses",
    "normalize_punctuation": True,
    "pre_replace_unicode_punct": False,
    "post_remove_control_chars": True,  # as remove-non-printing-char.perl
    "aggressive_dash_splits": True,  # tokenizer.perl -a
    "escape": False,
}


class Tokenizer:
    def __init__(self, lang: str, options: dict = TOKENIZER):
        from sacremoses import MosesPunctNormalizer, MosesTokenizer

        self.options = options
        self.norm = (
            MosesPunctNormalizer(
                lang,
                pre_replace_unicode_punct=options["pre_replace_unicode_punct"],
                post_remove_control_chars=options["post_remove_control_chars"],
            )
            if options["normalize_punctuation"]
            else None
        )
        self.tok = MosesTokenizer(lang)

    def __call__(self, text: str) -> str:
        if self.norm is not None:
            text = self.norm.normalize(text)
        text = self.tok.tokenize(
            text,
            aggressive_dash_splits=self.options["aggressive_dash_splits"],
            return_str=True,
            escape=self.options["escape"],
        )
        # One space between tokens, none at the ends; also removes U+2028 and the like,
        # which some line readers treat as line breaks.
        return " ".join(text.split())


def load_bpe(codes_path, vocab_path, threshold):
    from subword_nmt.apply_bpe import BPE, read_vocabulary

    vocab = None
    if vocab_path is not None:
        with open(vocab_path, encoding="utf-8") as f:
            vocab = read_vocabulary(f, threshold)
    with open(codes_path, encoding="utf-8") as f:
        return BPE(f, separator="@@", vocab=vocab)


class Preprocessor:
    """Repeats a prepared corpus's normalisation, tokenisation and BPE on raw text.

    Preprocessor(OUTDIR or OUTDIR/prep.json)(lines, lang) -> BPE'd lines."""

    def __init__(self, path):
        record_path = os.path.join(path, "prep.json") if os.path.isdir(path) else path
        try:
            with open(record_path, encoding="utf-8") as f:
                self.record = json.load(f)
        except FileNotFoundError:
            raise UserError(f"{record_path}: no such file (run a prepare script first)") from None
        except json.JSONDecodeError as e:
            raise UserError(f"{record_path}: not valid JSON: {e}") from None
        self.dir = os.path.dirname(os.path.abspath(record_path))
        self._tok: dict = {}
        self._bpe: dict = {}

    def _get(self, lang):
        r = self.record
        if lang not in (r["src_lang"], r["tgt_lang"]):
            raise UserError(
                f"language {lang!r} not prepared here ({r['src_lang']}, {r['tgt_lang']})"
            )
        if lang not in self._tok:
            options = {k: r["tokenizer"][k] for k in TOKENIZER}
            self._tok[lang] = Tokenizer(lang, options)
            bpe = r["bpe"]
            self._bpe[lang] = load_bpe(
                os.path.join(self.dir, bpe["codes"]),
                os.path.join(self.dir, bpe["vocabulary"][lang]),
                bpe["vocabulary_threshold"],
            )
        return self._tok[lang], self._bpe[lang]

    def tokenize(self, lines, lang) -> list[str]:
        tok, _ = self._get(lang)
        return [tok(line) for line in lines]

    def __call__(self, lines, lang) -> list[str]:
        tok, bpe = self._get(lang)
        return [bpe.process_line(tok(line)) for line in lines]


def from_config(config):
    """The Preprocessor of the model's prepared corpus, its files checked (UserError if the
    config has no prep_dir or a file is missing)."""
    prep_dir = config.prep_dir
    if not prep_dir:
        raise UserError(
            f"config key 'prep_dir' is not set in {config.output_dir}'s config: raw text needs "
            "the directory the prepare scripts wrote (prep.json, bpe.codes); pass "
            "--set prep_dir=DIR"
        )
    if not os.path.isdir(prep_dir):
        where = "" if os.path.isabs(prep_dir) else f" (relative to {os.getcwd()})"
        raise UserError(f"config key 'prep_dir': directory not found: {prep_dir}{where}")
    pre = Preprocessor(prep_dir)
    bpe = pre.record.get("bpe", {})
    for name in (bpe.get("codes"), bpe.get("vocabulary", {}).get(config.src_lang)):
        if name and not os.path.isfile(os.path.join(prep_dir, name)):
            raise UserError(
                f"config key 'prep_dir': {os.path.join(prep_dir, name)} not found "
                "(named by its prep.json; rerun the prepare script)"
            )
    pre([], config.src_lang)  # loads the tokenizer and codes now: a bad language fails early
    return pre
