"""The preparation scripts end to end: prepare_wmt14.sh on a tiny stand-in of the official
archives (same member names and formats, SGML test sets included, built here from data/) and
prepare_sample.sh on a slice of the bundled corpus."""

import gzip
import io
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest
from helpers import ROOT

from zero.data import TrainStream
from zero.preprocess import Preprocessor
from zero.textio import count_lines
from zero.vocab import Vocab

DATA = os.path.join(ROOT, "data")
STAGES = [
    "dev-ref",
    "test-ref",
    "tokenize-train",
    "tokenize-dev",
    "tokenize-test",
    "clean",
    "learn-bpe",
    "apply-bpe-train",
    "apply-bpe-dev",
    "apply-bpe-test",
    "vocab",
]


def sample(name, start, n):
    with gzip.open(os.path.join(DATA, name), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    return lines[start : start + n]


def tgz(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def sgm(lines, lang, kind):
    """WMT SGML: documents of <seg id=N> lines, ids restarting per document."""
    tag = "srcset" if kind == "src" else "refset"
    out = [f'<{tag} setid="newstest2014" srclang="any" trglang="{lang}">']
    for d in range(0, len(lines), 7):
        out.append(f'<doc sysid="{kind}" docid="doc{d}" genre="news" origlang="en">')
        out.append("<p>")
        out += [f'<seg id="{i + 1}">{s}</seg>' for i, s in enumerate(lines[d : d + 7])]
        out += ["</p>", "</doc>"]
    return "\n".join(out + [f"</{tag}>"]) + "\n"


def text(lines):
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    d = tmp_path_factory.mktemp("archives")
    en, de = sample("train.en.gz", 0, 450), sample("train.de.gz", 0, 450)
    dev_en, dev_de = sample("dev.en.gz", 0, 40), sample("dev.de.gz", 0, 40)
    test_en, test_de = sample("test.en.gz", 0, 30), sample("test.de.gz", 0, 30)
    test_en[3] = "  spaced   out & co.  "  # sacreBLEU-style extraction collapses spaces
    noise = text(["not this language pair"] * 5)
    tgz(
        d / "training-parallel-europarl-v7.tgz",
        {
            "training/europarl-v7.de-en.en": text(en[:200]),
            "training/europarl-v7.de-en.de": text(de[:200]),
            "training/europarl-v7.fr-en.en": noise,
        },
    )
    tgz(
        d / "training-parallel-commoncrawl.tgz",
        {
            "commoncrawl.de-en.en": text(en[200:350]),
            "commoncrawl.de-en.de": text(de[200:350]),
            "commoncrawl.fr-en.fr": noise,
        },
    )
    tgz(
        d / "training-parallel-nc-v9.tgz",
        {
            "training/news-commentary-v9.de-en.en": text(en[350:]),
            "training/news-commentary-v9.de-en.de": text(de[350:]),
            "training/news-commentary-v9.cs-en.en": noise,
        },
    )
    tgz(
        d / "dev.tgz",
        {
            "dev/newstest2013.en": text(dev_en),
            "dev/newstest2013.de": text(dev_de),
            "dev/newstest2013-src.en.sgm": sgm(dev_en, "en", "src"),
            "dev/newstest2013-ref.de.sgm": sgm(dev_de, "de", "ref"),
            "dev/newstest2012.en": noise,
        },
    )
    for archive, folder, n in (
        ("test-full.tgz", "test-full", 30),
        ("test-filtered.tgz", "test", 25),
    ):
        tgz(
            d / archive,
            {
                f"{folder}/newstest2014-deen-src.en.sgm": sgm(test_en[:n], "en", "src"),
                f"{folder}/newstest2014-deen-src.de.sgm": sgm(test_de[:n], "de", "src"),
                f"{folder}/newstest2014-deen-ref.en.sgm": sgm(test_en[:n], "en", "ref"),
                f"{folder}/newstest2014-deen-ref.de.sgm": sgm(test_de[:n], "de", "ref"),
            },
        )
    return d, en, de, dev_en, test_en, test_de


def run(script, *args):
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", script), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr  # the scripts' messages and the toolkit's log


def ran(log):
    return [s for s in STAGES if f"[{s}] running" in log]


def unbpe(path):
    with open(path, encoding="utf-8") as f:
        return [re.sub(r"(@@ )|(@@ ?$)", "", line.rstrip("\n")) for line in f]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def test_prepare_wmt14_from_archives(archives, tmp_path):
    src_dir, en, de, dev_en, test_en, test_de = archives
    out = tmp_path / "wmt14"
    log = run("prepare_wmt14.sh", out, "--from", src_dir, "--merges", 300)
    assert ran(log) == STAGES
    assert "[clean] kept" in log and "of 450 pairs" in log
    for split, n in (("dev", 40), ("test", 30)):
        for lang in ("en", "de"):
            for stem in (f"{split}", f"{split}.tok", f"{split}.bpe"):
                assert count_lines(out / f"{stem}.{lang}") == n, (stem, lang)
    assert read(out / "dev.en") == dev_en
    assert read(out / "test.de") == test_de  # plain references, not tokenized
    assert read(out / "test.en")[3] == "spaced out & co."
    assert read(out / "test.en")[:3] == test_en[:3]
    assert count_lines(out / "train.tok.en") == 450  # three corpora, in order
    assert read(out / "train.tok.en")[0] == Preprocessor(out).tokenize([en[0]], "en")[0]
    n_clean = count_lines(out / "train.clean.en")
    assert 0 < n_clean <= 450 and count_lines(out / "train.bpe.de") == n_clean
    # BPE then removing "@@ " gives the tokenized text back.
    assert unbpe(out / "train.bpe.en") == read(out / "train.clean.en")
    assert unbpe(out / "train.bpe.de") == read(out / "train.clean.de")
    assert unbpe(out / "test.bpe.de") == read(out / "test.tok.de")
    assert "@@" in (out / "train.bpe.de").read_text()
    record = json.loads((out / "prep.json").read_text())
    assert record["merges"] == 300 and record["bpe"]["vocabulary_threshold"] == 50
    assert record["tokenizer"]["aggressive_dash_splits"] and not record["tokenizer"]["escape"]
    assert record["counts"]["test"] == 30 and record["counts"]["train_clean"] == n_clean
    assert Preprocessor(out)(dev_en[:5], "en") == read(out / "dev.bpe.en")[:5]
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}

    # A rerun finds every stage complete and rewrites nothing but prep.json.
    log = run("prepare_wmt14.sh", out, "--from", src_dir, "--merges", 300)
    assert ran(log) == [] and log.count("already complete") >= len(STAGES) + 5
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != "prep.json"} == {
        k: v for k, v in mtimes.items() if k != "prep.json"
    }

    # An interruption during BPE application (output missing, a temp file left) redoes that
    # stage and what depends on it only.
    (out / "train.bpe.de").unlink()
    (out / "train.bpe.de.tmp").write_text("partial")
    log = run("prepare_wmt14.sh", out, "--from", src_dir, "--merges", 300)
    assert ran(log) == ["apply-bpe-train", "vocab"]
    assert not (out / "train.bpe.de.tmp").exists()

    # The filtered test set: only the test stages run again.
    log = run("prepare_wmt14.sh", out, "--from", src_dir, "--merges", 300, "--test", "filtered")
    assert ran(log) == ["test-ref", "tokenize-test", "apply-bpe-test"]
    assert count_lines(out / "test.en") == count_lines(out / "test.bpe.de") == 25


def test_prepare_wmt14_missing_archive(tmp_path):
    proc = subprocess.run(
        [
            "bash",
            os.path.join(ROOT, "scripts", "prepare_wmt14.sh"),
            tmp_path / "o",
            "--from",
            tmp_path,
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "training-parallel-europarl-v7.tgz not found" in proc.stderr


def test_prepare_sample_slice(tmp_path):
    out = tmp_path / "sample"
    log = run("prepare_sample.sh", out, "--max-pairs", 1500, "--merges", 400)
    assert ran(log) == STAGES and "of 1,500 pairs" in log
    record = json.loads((out / "prep.json").read_text())
    assert record["max_pairs"] == 1500 and record["counts"]["dev"] == 2000
    sv, tv = Vocab.load(out / "vocab.en"), Vocab.load(out / "vocab.de")
    assert len(sv) > 100 and len(tv) > 100
    stream = TrainStream(out / "train.bpe.en", out / "train.bpe.de", sv, tv, 1000, 80, seed=1)
    batch = next(stream)
    stream.close()
    assert batch["src"].size <= 1000 and (batch["src"] != 1).any()
    assert unbpe(out / "dev.bpe.en") == read(out / "dev.tok.en")
