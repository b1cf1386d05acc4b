"""Scoring of translations: BPE removal, detokenization, sacreBLEU, chrF and tokenized BLEU.

Two BLEU figures are reported because WMT14 numbers are notoriously incomparable:
- sacreBLEU on detokenized text (13a, mixed case), with its signature: the comparable number.
  It is computed with sacrebleu's Python API and equals `sacrebleu REF < HYP`.
- the paper's metric: case-insensitive BLEU on Moses-tokenized text (multi-bleu.perl -lc style),
  optionally with hyphenated compounds split the way Google-style papers (GNMT, tensor2tensor's
  get_ende_bleu.sh) do.

Command line (HYP detokenized unless --raw-hyp):
    python -m zero.evaluate HYP REF [--lang de] [--raw-hyp] [--split-hyphens]
"""

import argparse
import functools
import gzip
import re
import sys

from sacrebleu.metrics import BLEU, CHRF
from sacremoses import MosesDetokenizer, MosesTokenizer

from zero.errors import UserError

_BPE = re.compile(r"(@@ )|(@@ ?$)")
# Aggressive dash splitting writes "a @-@ b"; rejoin before the detokenizer sees the tokens so a
# marker at the start or end of a line (or next to other markers) is rejoined too.
_DASH = re.compile(r"\s*@-@\s*")
# Exactly tensor2tensor's `perl -ple 's{(\S)-(\S)}{$1 ##AT##-##AT## $2}g'`, kept verbatim (including
# its non-overlapping matches: "a-b-c" -> "a ##AT##-##AT## b-c") so figures stay comparable.
_HYPHEN = re.compile(r"(\S)-(\S)")


def remove_bpe(line):
    """Undo subword-nmt segmentation: "Ent@@ wick@@ lung" -> "Entwicklung"."""
    return _BPE.sub("", line.rstrip("\r\n"))


@functools.cache
def _detokenizer(lang):
    return MosesDetokenizer(lang=lang)


@functools.cache
def _tokenizer(lang):
    return MosesTokenizer(lang=lang)


def detokenize(lines, lang="de"):
    """Moses-detokenize tokenized lines (also unescapes &quot; etc. and rejoins @-@)."""
    detok = _detokenizer(lang)
    return [detok.detokenize(_DASH.sub("-", line).split()) for line in lines]


def postprocess(lines, lang="de"):
    """Raw decoder output (BPE, tokenized) -> detokenized text ready for scoring."""
    return detokenize([remove_bpe(line) for line in lines], lang)


def _read_lines(path):
    # Same reading as the sacrebleu command line: UTF-8, split on "\n" only, trailing whitespace
    # stripped; .gz is read transparently.
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="\n") as f:
            return [line.rstrip() for line in f]
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: invalid UTF-8 ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None


def read_aligned(hyp_path, ref_path):
    """Read a hypothesis and a reference file that must have one line per segment each."""
    hyps, refs = _read_lines(hyp_path), _read_lines(ref_path)
    if len(hyps) != len(refs):
        raise UserError(
            f"hypothesis {hyp_path} has {len(hyps)} lines but reference {ref_path} has "
            f"{len(refs)} lines; they must be aligned line by line"
        )
    if not refs:
        raise UserError(f"{hyp_path} and {ref_path} are empty: nothing to score")
    return hyps, refs


def _check(hyps, refs):
    if len(hyps) != len(refs):
        raise UserError(
            f"{len(hyps)} hypotheses but {len(refs)} references; they must be aligned one to one"
        )
    if not refs:
        raise UserError("nothing to score: no hypotheses and no references")


def _with_signature(metric, hyps, refs, width=2):
    _check(hyps, refs)
    result = metric.corpus_score(list(hyps), [list(refs)])
    signature = metric.get_signature().format()
    return result.score, signature, result.format(width=width, signature=signature)


def sacrebleu_score(hyps, refs):
    """sacreBLEU with its defaults (13a, mixed case) on detokenized text.

    Returns (score, signature, line); the line is the sacrebleu command line's text output.
    """
    return _with_signature(BLEU(), hyps, refs)


def chrf(hyps, refs):
    """chrF2 (sacrebleu defaults) on detokenized text -> (score, signature, line)."""
    return _with_signature(CHRF(), hyps, refs)


def moses_tokenize(lines, lang="de", split_hyphens=False):
    """Moses-tokenize detokenized lines as tokenizer.perl -l LANG does (no aggressive dashes)."""
    tok = _tokenizer(lang)
    out = [tok.tokenize(line, escape=False, return_str=True) for line in lines]
    if split_hyphens:
        out = [_HYPHEN.sub(r"\1 ##AT##-##AT## \2", line) for line in out]
    return out


def _tokenized_bleu(hyps, refs, lowercase, split_hyphens, lang):
    _check(hyps, refs)
    # smooth none: multi-bleu.perl gives 0 when an n-gram order has no match, so do we.
    metric = BLEU(tokenize="none", lowercase=lowercase, smooth_method="none", force=True)
    return metric.corpus_score(
        moses_tokenize(hyps, lang, split_hyphens), [moses_tokenize(refs, lang, split_hyphens)]
    )


def tokenized_bleu(hyps, refs, lowercase=True, split_hyphens=False, lang="de"):
    """The paper's metric: BLEU on Moses-tokenized text (case-insensitive by default).

    hyps and refs are detokenized text; both are tokenized here the same way.
    """
    return _tokenized_bleu(hyps, refs, lowercase, split_hyphens, lang).score


def _tokenized_label(lowercase, split_hyphens):
    details = ["case-insensitive" if lowercase else "case-sensitive"]
    if split_hyphens:
        details.append("hyphens split")
    return f"tokenized BLEU ({', '.join(details)})"


def evaluate(hyps, refs, lang="de", split_hyphens=False):
    """All metrics on detokenized hypotheses and references.

    Returns a dict: bleu, bleu_signature, bleu_line, chrf, chrf_signature, chrf_line, tok_bleu,
    tok_bleu_line, and lines (the three printable lines in order).
    """
    bleu, bleu_sig, bleu_line = sacrebleu_score(hyps, refs)
    chrf_score, chrf_sig, chrf_line = chrf(hyps, refs)
    tok = _tokenized_bleu(hyps, refs, True, split_hyphens, lang)
    # BLEUScore.format() without a signature reads "BLEU = ..."; swap in the descriptive label.
    tok_line = _tokenized_label(True, split_hyphens) + tok.format(width=2)[len("BLEU") :]
    return {
        "bleu": bleu,
        "bleu_signature": bleu_sig,
        "bleu_line": bleu_line,
        "chrf": chrf_score,
        "chrf_signature": chrf_sig,
        "chrf_line": chrf_line,
        "tok_bleu": tok.score,
        "tok_bleu_line": tok_line,
        "lines": [bleu_line, chrf_line, tok_line],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m zero.evaluate",
        description="Score translations: sacreBLEU with signature, chrF2 and the paper's "
        "case-insensitive tokenized BLEU.",
    )
    parser.add_argument("hyp", help="hypothesis file (detokenized unless --raw-hyp)")
    parser.add_argument("ref", help="reference file, raw detokenized text")
    parser.add_argument("--lang", default="de", help="target language for Moses (default: de)")
    parser.add_argument(
        "--raw-hyp",
        action="store_true",
        help="HYP is raw decoder output (BPE, tokenized): remove BPE and detokenize it first",
    )
    parser.add_argument(
        "--split-hyphens",
        action="store_true",
        help='tokenized BLEU with compounds split at hyphens ("a-b" -> "a ##AT##-##AT## b")',
    )
    args = parser.parse_args(argv)
    try:
        hyps, refs = read_aligned(args.hyp, args.ref)
        if args.raw_hyp:
            hyps = postprocess(hyps, args.lang)
        result = evaluate(hyps, refs, args.lang, args.split_hyphens)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("\n".join(result["lines"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
