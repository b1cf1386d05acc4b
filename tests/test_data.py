"""Vocabulary, reading checks, training stream (budget, coverage, determinism, resume) and
evaluation batches, on small synthetic corpora written to tmp_path."""

import gzip
import json

import numpy as np
import pytest

from zero.batching import EvalBatches
from zero.data import TrainStream
from zero.errors import UserError
from zero.textio import check_parallel, count_lines, read_lines
from zero.vocab import BOS, EOS, PAD, UNK, Vocab


def write(path, lines, newline_at_end=True):
    text = "\n".join(lines) + ("\n" if newline_at_end and lines else "")
    path.write_bytes(text.encode("utf-8"))
    return path


def make_corpus(tmp_path, n=3000, seed=0, max_tokens=45):
    """Pair i: source 'S<i> w..', target 'T<i> w..', so every pair is identifiable. Some
    pairs have an empty (or blank) side; lengths go up to max_tokens."""
    rng = np.random.default_rng(seed)
    src, tgt = [], []
    for i in range(n):
        ls, lt = rng.integers(0, max_tokens, size=2)
        s = " ".join([f"S{i}"] + [f"w{k}" for k in rng.zipf(1.5, ls) % 300])
        t = " ".join([f"T{i}"] + [f"v{k}" for k in rng.zipf(1.5, lt) % 300])
        if i % 97 == 5:
            s = ""
        if i % 89 == 7:
            t = "  "
        src.append(s)
        tgt.append(t)
    sp = write(tmp_path / "train.src", src)
    tp = write(tmp_path / "train.tgt", tgt)
    sv = Vocab.build([sp])
    tv = Vocab.build([tp])
    return sp, tp, sv, tv, src, tgt


def one_epoch(stream):
    batches = []
    epoch = stream.epoch
    while stream.epoch == epoch:
        batches.append(next(stream))
    return batches


def pair_ids(batch, sv):
    return [int(sv.decode(row)[0][1:]) for row in batch["src"]]


# ---------------------------------------------------------------------------------------------
# Vocab


def test_vocab_roundtrip(tmp_path):
    p = write(tmp_path / "t.txt", ["a b a", "c a b", "", "<s> d"])
    v = Vocab.build([p])
    assert v.tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    assert v.tokens[4:] == ["a", "b", "c", "d"]  # by count, ties by token; "<s>" not doubled
    v.save(tmp_path / "v")
    w = Vocab.load(tmp_path / "v")
    assert w.tokens == v.tokens and w.fingerprint() == v.fingerprint() and len(w) == 8
    assert w.encode(["a", "zz", "d"]) == [4, UNK, 7]
    assert w.decode([BOS, 4, PAD, 5, EOS, 6]) == ["a", "b"]
    assert w.id("c") == 6 and w.token(6) == "c"
    assert Vocab.build([p], max_size=6).tokens[4:] == ["a", "b"]
    assert Vocab.build([p], min_count=2).tokens[4:] == ["a", "b"]
    assert Vocab.build([p], max_size=6).fingerprint() != v.fingerprint()
    (tmp_path / "plain").write_text("<pad>\n<unk>\n<s>\n</s>\nx\n")
    assert Vocab.load(tmp_path / "plain").tokens[4:] == ["x"]


def test_vocab_load_errors(tmp_path):
    (tmp_path / "bad").write_text("a\nb\n")
    with pytest.raises(UserError, match="first four lines"):
        Vocab.load(tmp_path / "bad")
    with pytest.raises(UserError, match="no_such"):
        Vocab.load(tmp_path / "no_such")


# ---------------------------------------------------------------------------------------------
# Reading checks


def test_misaligned_files_named_with_counts(tmp_path):
    sp = write(tmp_path / "a.en", ["x"] * 10)
    tp = write(tmp_path / "a.de", ["y"] * 9)
    v = Vocab.build([sp])
    for call in (
        lambda: check_parallel(sp, tp),
        lambda: TrainStream(sp, tp, v, v, 100, 10, 1),
        lambda: EvalBatches(sp, v, batch_tokens=100, tgt_path=tp, tgt_vocab=v),
    ):
        with pytest.raises(UserError) as e:
            call()
        msg = str(e.value)
        assert str(sp) in msg and str(tp) in msg and "10" in msg and "9" in msg


def test_line_count_without_final_newline(tmp_path):
    p = write(tmp_path / "a", ["x", "y", "z"], newline_at_end=False)
    assert count_lines(p) == 3
    assert [t for _, t in read_lines(p)] == ["x", "y", "z"]


def test_empty_corpus_is_an_error(tmp_path):
    sp, tp = write(tmp_path / "e.en", []), write(tmp_path / "e.de", [])
    v = Vocab.build([sp])
    with pytest.raises(UserError, match="empty"):
        check_parallel(sp, tp)
    with pytest.raises(UserError, match="empty"):
        TrainStream(sp, tp, v, v, 100, 10, 1)
    sp, tp = write(tmp_path / "b.en", ["", "a", ""]), write(tmp_path / "b.de", ["x", "", " "])
    with pytest.raises(UserError, match="empty"):
        next(TrainStream(sp, tp, v, v, 100, 10, 1))
    # Nothing within max_len: found when the first epoch has no batch.
    sp, tp = write(tmp_path / "c.en", ["a b c"] * 5), write(tmp_path / "c.de", ["x y z"] * 5)
    with pytest.raises(UserError, match="max_len=2"):
        next(TrainStream(sp, tp, v, v, 100, 2, 1))


def test_invalid_utf8_names_file_and_line(tmp_path):
    sp = tmp_path / "u.en"
    sp.write_bytes(b"ok\nfine\nbad \xff byte\nok\n")
    tp = write(tmp_path / "u.de", ["a", "b", "c", "d"])
    v = Vocab.build([tp])
    for call in (
        lambda: list(read_lines(sp)),
        lambda: TrainStream(sp, tp, v, v, 100, 10, 1),
        lambda: EvalBatches(sp, v, batch_tokens=100),
        lambda: Vocab.build([sp]),
    ):
        with pytest.raises(UserError, match=f"{sp}:3: invalid UTF-8"):
            call()
    gz = tmp_path / "u.en.gz"
    gz.write_bytes(gzip.compress(sp.read_bytes()))
    for call in (lambda: list(read_lines(gz)), lambda: TrainStream(gz, tp, v, v, 100, 10, 1)):
        with pytest.raises(UserError, match=f"{gz}:3: invalid UTF-8"):
            call()


def test_batch_tokens_must_fit_max_len(tmp_path):
    sp = write(tmp_path / "a", ["x"])
    v = Vocab.build([sp])
    with pytest.raises(UserError, match="batch_tokens"):
        TrainStream(sp, sp, v, v, 10, 10, 1)


# ---------------------------------------------------------------------------------------------
# Training stream


def test_budget_coverage_and_skips(tmp_path):
    sp, tp, sv, tv, src, tgt = make_corpus(tmp_path)
    max_len, budget = 30, 200
    stream = TrainStream(sp, tp, sv, tv, budget, max_len, seed=3, buffer_size=500, chunk_lines=50)
    assert stream.num_buffers == 6
    batches = one_epoch(stream)
    seen = []
    for b in batches:
        assert b["src"].dtype == np.int32 and b["tgt"].dtype == np.int32
        assert b["src"].size <= budget and b["tgt"].size <= budget
        assert len(b["src"]) == len(b["tgt"])
        assert b["num_src_tokens"] == int((b["src"] != PAD).sum())
        assert b["num_tgt_tokens"] == int((b["tgt"] != PAD).sum())
        ids = pair_ids(b, sv)
        for row_s, row_t, i in zip(b["src"], b["tgt"], ids, strict=True):
            assert " ".join(sv.decode(row_s)) == src[i]  # ids, EOS, then only PAD
            assert " ".join(tv.decode(row_t)) == tgt[i]
            for row in (row_s, row_t):
                end = int(np.flatnonzero(row == EOS)[0])
                assert (row[end + 1 :] == PAD).all() and (row[:end] > EOS).all()
        seen += ids
    expect_empty = [i for i in range(len(src)) if not src[i].split() or not tgt[i].split()]
    expect_long = [
        i
        for i in range(len(src))
        if i not in expect_empty and max(len(src[i].split()), len(tgt[i].split())) > max_len
    ]
    expected = sorted(set(range(len(src))) - set(expect_empty) - set(expect_long))
    assert sorted(seen) == expected  # each pair within max_len exactly once
    assert stream.epoch_stats[0] == {
        "pairs": len(expected),
        "batches": len(batches),
        "skipped_empty": len(expect_empty),
        "skipped_too_long": len(expect_long),
    }
    assert stream.num_empty == sum(1 for s, t in zip(src, tgt, strict=True) if not s or not t)
    # Batches are length-sorted within a buffer (little padding) but shuffled in order.
    widths = [b["src"].shape[1] for b in batches]
    assert widths != sorted(widths)
    # The second epoch has the same pairs in another order.
    second = one_epoch(stream)
    assert sorted(i for b in second for i in pair_ids(b, sv)) == expected
    assert [pair_ids(b, sv) for b in second[:5]] != [pair_ids(b, sv) for b in batches[:5]]
    stream.close()


def test_same_seed_same_batches(tmp_path):
    sp, tp, sv, tv, *_ = make_corpus(tmp_path, n=1500)

    def take(seed, n=200, **kw):
        s = TrainStream(sp, tp, sv, tv, 300, 40, seed=seed, buffer_size=400, chunk_lines=40, **kw)
        out = [next(s) for _ in range(n)]  # crosses epoch boundaries
        s.close()
        return out

    a, b, c = take(7), take(7, prefetch=1), take(8)
    assert all(
        (x["src"] == y["src"]).all() and (x["tgt"] == y["tgt"]).all()
        for x, y in zip(a, b, strict=True)
    )
    assert any(
        x["src"].shape != y["src"].shape or (x["src"] != y["src"]).any()
        for x, y in zip(a, c, strict=True)
    )


@pytest.mark.parametrize("gz", [False, True])
def test_restore_resumes_exactly(tmp_path, gz):
    sp, tp, sv, tv, *_ = make_corpus(tmp_path, n=1200)
    if gz:
        for p in (sp, tp):
            p.with_suffix(p.suffix + ".gz").write_bytes(gzip.compress(p.read_bytes()))
        sp, tp = sp.with_suffix(sp.suffix + ".gz"), tp.with_suffix(tp.suffix + ".gz")

    def new():
        return TrainStream(sp, tp, sv, tv, 300, 40, seed=11, buffer_size=300, chunk_lines=30)

    ref = new()
    full = [next(ref) for _ in range(150)]
    per_epoch = ref.epoch_stats[0]["batches"]
    ref.close()
    # Mid-buffer, buffer ends, epoch end and later epochs.
    for k in sorted({0, 1, 5, 17, per_epoch - 1, per_epoch, per_epoch + 3, 100}):
        run = new()
        for _ in range(k):
            next(run)
        pos = json.loads(json.dumps(run.position()))
        assert pos["epoch"] == (1 if k >= per_epoch else 0)
        assert pos["batches_in_epoch"] == (k - per_epoch if k >= per_epoch else k)
        run.close()
        resumed = new()
        resumed.restore(pos)
        for want in full[k : k + 12]:
            got = next(resumed)
            assert (got["src"] == want["src"]).all() and (got["tgt"] == want["tgt"]).all()
        resumed.close()


def test_restore_on_running_stream_and_changed_settings(tmp_path):
    sp, tp, sv, tv, *_ = make_corpus(tmp_path, n=800)
    s = TrainStream(sp, tp, sv, tv, 300, 40, seed=1, buffer_size=200, chunk_lines=20)
    first = [next(s) for _ in range(10)]
    pos = s.position()
    later = [next(s) for _ in range(5)]
    s.restore(pos)  # rewinds a stream whose prefetch thread ran ahead
    assert all((next(s)["src"] == b["src"]).all() for b in later)
    s.restore({**pos, "epoch": 0, "buffer": 0, "batch_in_buffer": 0, "batches_in_epoch": 0})
    assert (next(s)["src"] == first[0]["src"]).all()
    s.close()
    other = TrainStream(sp, tp, sv, tv, 400, 40, seed=1, buffer_size=200, chunk_lines=20)
    other.restore(pos)  # different batch_tokens: resumes at the start of the buffer, no error
    assert other.position()["batch_in_buffer"] == 0
    next(other)
    other.close()
    with pytest.raises(UserError, match="not a data position"):
        other.restore({"epoch": 1})


# ---------------------------------------------------------------------------------------------
# Evaluation batches


def test_eval_batches_restore_order(tmp_path):
    rng = np.random.default_rng(5)
    src = [" ".join(f"w{k}" for k in rng.integers(0, 50, rng.integers(0, 30))) for _ in range(300)]
    src[10] = ""
    src[11] = " ".join(["w1"] * 120)  # longer than the whole budget: a batch of its own
    tgt = [f"t{i} x" for i in range(300)]
    sp, tp = write(tmp_path / "dev.en", src), write(tmp_path / "dev.de", tgt)
    sv, tv = Vocab.build([sp]), Vocab.build([tp])
    ev = EvalBatches(sp, sv, 100, tp, tv)  # positional order of the spec
    assert ev.num_lines == 300 and len(ev) == len(list(ev))
    indices, outputs = [], []
    for b in ev:
        assert b["src"].shape[0] == len(b["index"]) == b["tgt"].shape[0]
        assert b["src"].size <= 100 or len(b["index"]) == 1
        for i, row, t in zip(b["index"], b["src"], b["tgt"], strict=True):
            assert tv.decode(t) == tgt[i].split()  # rows match their index entries
            outputs.append(" ".join(sv.decode(row)))
        indices.append(b["index"])
    assert ev.restore_order(indices, outputs) == src  # empty line kept, order restored
    with pytest.raises(ValueError):
        ev.restore_order(indices[:-1], outputs[: -len(indices[-1])])
    sizes = EvalBatches(sp, sv, batch_size=16)
    assert all(len(b["index"]) <= 16 for b in sizes) and "tgt" not in next(iter(sizes))
