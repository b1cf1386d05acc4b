"""Corpus preparation: Moses-style normalisation and tokenisation (zero/preprocess.py),
length/ratio cleaning, joint BPE (subword-nmt), vocabularies.

    python -m zero.prepare corpus OUTDIR --train SRC TGT [--train ...] --dev SRC TGT
        --test SRC TGT [--src-lang en --tgt-lang de --merges 32000 ...]
    python -m zero.prepare encode OUTDIR --lang en < raw.txt > bpe.txt

The stages are resumable (zero/stages.py): a rerun after an interruption redoes only
unfinished work, and a change of settings redoes the stages it affects. `.sgm` dev/test files
are read as WMT SGML (one <seg id=N> per line). OUTDIR/prep.json records the settings for later use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types

from zero import log
from zero.errors import UserError
from zero.pool import grouped, parallel_map
from zero.preprocess import TOKENIZER, Preprocessor, Tokenizer, load_bpe, version
from zero.stages import Stages
from zero.textio import check_parallel, count_lines, lines_of, read_corpus_file, read_lines
from zero.vocab import Vocab

TASK_LINES = 2000  # lines per parallel task


def _log(msg: str) -> None:
    log.info(msg)


# Worker-process state: set by the pool initialisers below.
_WORKER: dict = {}


def _init_tokenizers(langs, options):
    _WORKER["tok"] = [Tokenizer(lang, options) for lang in langs]


def _tokenize_task(columns):
    return [[tok(line) for line in col] for tok, col in zip(_WORKER["tok"], columns, strict=True)]


def _init_bpe(specs):
    _WORKER["bpe"] = [load_bpe(*spec) for spec in specs]


def _bpe_task(columns):
    return [
        [bpe.process_line(line) for line in col]
        for bpe, col in zip(_WORKER["bpe"], columns, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# Stages


class Pipeline:
    def __init__(self, args):
        self.a = args
        self.out = os.path.abspath(args.outdir)
        self.s, self.t = args.src_lang, args.tgt_lang
        if self.s == self.t:
            raise UserError(f"source and target language are both {self.s!r}")
        self.jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
        for pair in args.train + [args.dev, args.test]:
            for p in pair:
                if not os.path.isfile(p):
                    raise UserError(f"{p}: no such file")
        self.stages = Stages(self.out, _log)
        self.counts: dict = {}

    def path(self, name):
        return os.path.join(self.out, name)

    def pair(self, stem):
        return [self.path(f"{stem}.{self.s}"), self.path(f"{stem}.{self.t}")]

    def stage(self, *args, **kwargs):
        return self.stages.run(*args, **kwargs)

    def _lines(self, path):
        return count_lines(path)

    # -- 1. plain dev/test references --------------------------------------------------------
    def refs(self):
        a = self.a
        for split, (src, tgt) in (("dev", a.dev), ("test", a.test)):
            outs = self.pair(split)

            def build(tmps, src=src, tgt=tgt, split=split):
                s_lines, t_lines = read_corpus_file(src), read_corpus_file(tgt)
                if len(s_lines) != len(t_lines):
                    raise UserError(
                        f"{split} set: {src} has {len(s_lines)} segments but {tgt} has "
                        f"{len(t_lines)}"
                    )
                if not s_lines:
                    raise UserError(f"{split} set: {src} has no segments")
                for lines, tmp in zip((s_lines, t_lines), tmps, strict=True):
                    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                        f.writelines(line + "\n" for line in lines)

            self.stage(
                f"{split}-ref",
                outs,
                [src, tgt],
                {"src": os.path.abspath(src), "tgt": os.path.abspath(tgt)},
                build,
                lambda outs=outs: f"{self._lines(outs[0])} segments",
            )

    # -- 2. tokenisation ----------------------------------------------------------------------
    def _train_pairs(self, stats):
        left = self.a.max_pairs
        for src, tgt in self.a.train:
            check_parallel(src, tgt)
            src_lines = read_lines(src, "replace", stats)
            tgt_lines = read_lines(tgt, "replace", stats)
            for (_, s), (_, t) in zip(src_lines, tgt_lines, strict=True):
                if left is not None:
                    if left <= 0:
                        return
                    left -= 1
                yield s, t

    def tokenize(self):
        langs = (self.s, self.t)
        jobs = self.jobs
        train_inputs = [p for pair in self.a.train for p in pair]
        outs = self.pair("train.tok")

        def build(tmps):
            stats = {"pairs": 0}
            files = [open(t, "w", encoding="utf-8", newline="\n") for t in tmps]
            try:
                tasks = grouped(self._train_pairs(stats), TASK_LINES)
                for cols in parallel_map(
                    _tokenize_task, tasks, jobs, _init_tokenizers, (langs, TOKENIZER)
                ):
                    for f, col in zip(files, cols, strict=True):
                        f.writelines(line + "\n" for line in col)
                    before = stats["pairs"]
                    stats["pairs"] += len(cols[0])
                    if stats["pairs"] // 500_000 != before // 500_000:
                        _log(f"[tokenize] {stats['pairs']:,} pairs")
            finally:
                for f in files:
                    f.close()
            if stats.get("bad_utf8"):
                _log(f"[tokenize] warning: {stats['bad_utf8']} lines had invalid UTF-8 (replaced)")

        self.stage(
            "tokenize-train",
            outs,
            train_inputs,
            {
                "train": [[os.path.abspath(p) for p in pair] for pair in self.a.train],
                "max_pairs": self.a.max_pairs,
                "tokenizer": TOKENIZER,
                "langs": list(langs),
            },
            build,
            lambda: f"{self._lines(outs[0]):,} pairs",
        )
        self.counts["train_tokenized"] = self._lines(outs[0])
        self.tokenize_eval()

    def tokenize_eval(self):
        """The dev and test sets, whole (they are small)."""
        langs, jobs = (self.s, self.t), self.jobs
        for split in ("dev", "test"):
            ins, outs_split = self.pair(split), self.pair(f"{split}.tok")

            def build_split(tmps, ins=ins):
                rows = zip(*(lines_of(p, "replace") for p in ins), strict=True)
                cols = [[], []]
                for part in parallel_map(
                    _tokenize_task,
                    grouped(rows, TASK_LINES),
                    jobs,
                    _init_tokenizers,
                    (langs, TOKENIZER),
                ):
                    cols[0] += part[0]
                    cols[1] += part[1]
                for col, tmp in zip(cols, tmps, strict=True):
                    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                        f.writelines(line + "\n" for line in col)

            self.stage(
                f"tokenize-{split}",
                outs_split,
                ins,
                {"tokenizer": TOKENIZER, "langs": list(langs)},
                build_split,
                lambda o=outs_split: f"{self._lines(o[0]):,} segments",
                deps=[f"{split}-ref"],
            )

    # -- 3. cleaning ---------------------------------------------------------------------------
    def clean(self):
        a = self.a
        ins, outs = self.pair("train.tok"), self.pair("train.clean")

        def build(tmps):
            kept = total = 0
            with (
                open(ins[0], encoding="utf-8", newline="\n") as fs,
                open(ins[1], encoding="utf-8", newline="\n") as ft,
                open(tmps[0], "w", encoding="utf-8", newline="\n") as gs,
                open(tmps[1], "w", encoding="utf-8", newline="\n") as gt,
            ):
                for s, t in zip(fs, ft, strict=True):
                    total += 1
                    ns, nt = len(s.split()), len(t.split())
                    if not (a.min_len <= ns <= a.max_len and a.min_len <= nt <= a.max_len):
                        continue
                    if ns > a.ratio * nt or nt > a.ratio * ns:
                        continue
                    gs.write(s)
                    gt.write(t)
                    kept += 1
            _log(f"[clean] kept {kept:,} of {total:,} pairs")

        self.stage(
            "clean",
            outs,
            ins,
            {"min_len": a.min_len, "max_len": a.max_len, "ratio": a.ratio},
            build,
            lambda: f"{self._lines(outs[0]):,} pairs",
            deps=["tokenize-train"],
        )
        self.counts["train_clean"] = self._lines(outs[0])
        if self.counts["train_clean"] == 0:
            raise UserError(
                f"cleaning kept no training pair (length {a.min_len}-{a.max_len}, ratio "
                f"{a.ratio}): check the inputs"
            )

    # -- 4. learn joint BPE ----------------------------------------------------------------------
    def learn_bpe(self):
        ins = self.pair("train.clean")
        outs = [self.path("bpe.codes")] + self.pair("bpe.vocab")

        def build(tmps):
            if not sys.stderr.isatty():
                # subword-nmt's tqdm bar redraws with \r: fine on a terminal, a flood in a log.
                os.environ.setdefault("TQDM_DISABLE", "1")
            from subword_nmt.learn_joint_bpe_and_vocab import learn_joint_bpe_and_vocab

            args = types.SimpleNamespace(
                input=[types.SimpleNamespace(name=p) for p in ins],
                output=types.SimpleNamespace(name=tmps[0]),
                vocab=[types.SimpleNamespace(name=p) for p in tmps[1:]],
                symbols=self.a.merges,
                separator="@@",
                min_frequency=2,
                total_symbols=False,
                num_workers=self.jobs,
                verbose=False,
            )
            learn_joint_bpe_and_vocab(args)
            for f in args.input:  # it reopens the inputs itself and leaves them open
                f.close()

        self.stage(
            "learn-bpe",
            outs,
            ins,
            {"merges": self.a.merges, "tool": f"subword-nmt {version('subword-nmt')}"},
            build,
            lambda: f"{self._lines(outs[0]) - 1:,} merges",
            deps=["clean"],
        )

    # -- 5. apply BPE -----------------------------------------------------------------------------
    def apply_bpe(self):
        codes = self.path("bpe.codes")
        vocabs = self.pair("bpe.vocab")
        specs = [(codes, v, self.a.vocab_threshold) for v in vocabs]
        jobs = self.jobs
        for split, stem in (("train", "train.clean"), ("dev", "dev.tok"), ("test", "test.tok")):
            ins, outs = self.pair(stem), self.pair(f"{split}.bpe")

            def build(tmps, ins=ins):
                files = [open(t, "w", encoding="utf-8", newline="\n") for t in tmps]
                try:
                    rows = zip(*(lines_of(p) for p in ins), strict=True)
                    for cols in parallel_map(
                        _bpe_task, grouped(rows, TASK_LINES), jobs, _init_bpe, (specs,)
                    ):
                        for f, col in zip(files, cols, strict=True):
                            f.writelines(line + "\n" for line in col)
                finally:
                    for f in files:
                        f.close()

            self.stage(
                f"apply-bpe-{split}",
                outs,
                ins + [codes] + vocabs,
                {"vocabulary_threshold": self.a.vocab_threshold},
                build,
                lambda o=outs: f"{self._lines(o[0]):,} lines",
                deps=["learn-bpe", "clean" if split == "train" else f"tokenize-{split}"],
            )

    # -- 6. toolkit vocabularies --------------------------------------------------------------
    def vocab(self):
        ins, outs = self.pair("train.bpe"), self.pair("vocab")

        def build(tmps):
            for i, tmp in zip(ins, tmps, strict=True):
                Vocab.build([i], min_count=self.a.vocab_min_count).save(tmp)

        self.stage(
            "vocab",
            outs,
            ins,
            {"min_count": self.a.vocab_min_count},
            build,
            lambda: f"{self._lines(outs[0]):,} {self.s} / {self._lines(outs[1]):,} {self.t} types",
            deps=["apply-bpe-train"],
        )

    def write_record(self):
        s, t = self.s, self.t
        record = {
            "format": 1,
            "src_lang": s,
            "tgt_lang": t,
            "merges": self.a.merges,
            "tokenizer": {**TOKENIZER, "version": version("sacremoses")},
            "bpe": {
                "codes": "bpe.codes",
                "separator": "@@",
                "vocabulary_threshold": self.a.vocab_threshold,
                "vocabulary": {s: f"bpe.vocab.{s}", t: f"bpe.vocab.{t}"},
                "tool": f"subword-nmt {version('subword-nmt')}",
            },
            "clean": {"min_len": self.a.min_len, "max_len": self.a.max_len, "ratio": self.a.ratio},
            "max_pairs": self.a.max_pairs,
            "inputs": {
                "train": [[os.path.abspath(p) for p in pair] for pair in self.a.train],
                "dev": [os.path.abspath(p) for p in self.a.dev],
                "test": [os.path.abspath(p) for p in self.a.test],
            },
            "files": {
                "train": {s: f"train.bpe.{s}", t: f"train.bpe.{t}"},
                "dev": {s: f"dev.bpe.{s}", t: f"dev.bpe.{t}"},
                "test": {s: f"test.bpe.{s}", t: f"test.bpe.{t}"},
                "dev_ref": {s: f"dev.{s}", t: f"dev.{t}"},
                "test_ref": {s: f"test.{s}", t: f"test.{t}"},
                "vocab": {s: f"vocab.{s}", t: f"vocab.{t}"},
            },
            "counts": {
                **self.counts,
                "dev": self._lines(self.path(f"dev.{s}")),
                "test": self._lines(self.path(f"test.{s}")),
            },
        }
        tmp = self.path("prep.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, self.path("prep.json"))

    def run(self):
        os.makedirs(self.out, exist_ok=True)
        _log(
            f"preparing {self.s}-{self.t} in {self.out} ({self.jobs} processes, "
            f"{self.a.merges} merges)"
        )
        self.refs()
        self.tokenize()
        self.clean()
        self.learn_bpe()
        self.apply_bpe()
        self.vocab()
        self.write_record()
        c = self.counts
        _log(
            f"done: {c['train_tokenized']:,} training pairs read, {c['train_clean']:,} kept; "
            f"settings in {self.path('prep.json')}"
        )


# ---------------------------------------------------------------------------------------------
# CLI


def _parser():
    p = argparse.ArgumentParser(prog="python -m zero.prepare", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("corpus", help="prepare a parallel corpus for training")
    c.add_argument("outdir")
    c.add_argument("--src-lang", default="en")
    c.add_argument("--tgt-lang", default="de")
    c.add_argument(
        "--train",
        nargs=2,
        action="append",
        required=True,
        metavar=("SRC", "TGT"),
        help="a training corpus (repeat for several; they are concatenated)",
    )
    c.add_argument("--dev", nargs=2, required=True, metavar=("SRC", "TGT"))
    c.add_argument("--test", nargs=2, required=True, metavar=("SRC", "TGT"))
    c.add_argument("--merges", type=int, default=32000, help="BPE merge operations")
    c.add_argument(
        "--max-pairs",
        type=int,
        default=None,
        help="use only the first N training pairs (smoke runs)",
    )
    c.add_argument("--min-len", type=int, default=1, help="cleaning: fewest tokens per side")
    c.add_argument("--max-len", type=int, default=80, help="cleaning: most tokens per side")
    c.add_argument("--ratio", type=float, default=1.5, help="cleaning: longest/shortest side")
    c.add_argument(
        "--vocab-threshold", type=int, default=50, help="apply-bpe --vocabulary-threshold"
    )
    c.add_argument(
        "--vocab-min-count",
        type=int,
        default=1,
        help="toolkit vocabulary: least count of a subword",
    )
    c.add_argument("--jobs", type=int, default=0, help="processes (default: all cores)")
    e = sub.add_parser("encode", help="raw text on stdin -> BPE'd text on stdout")
    e.add_argument("prepdir", help="a prepared OUTDIR (with prep.json)")
    e.add_argument("--lang", required=True)
    e.add_argument("--tokenize-only", action="store_true")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.command == "corpus":
            if args.merges < 1 or args.max_len < args.min_len or args.ratio < 1:
                raise UserError("need --merges >= 1, --max-len >= --min-len and --ratio >= 1")
            if args.max_pairs is not None and args.max_pairs < 1:
                raise UserError("--max-pairs must be positive")
            Pipeline(args).run()
        else:
            pre = Preprocessor(args.prepdir)
            lines = [line.rstrip("\n").rstrip("\r") for line in sys.stdin]
            out = pre.tokenize(lines, args.lang) if args.tokenize_only else pre(lines, args.lang)
            sys.stdout.writelines(line + "\n" for line in out)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
