"""Batches of sentences: ids from whitespace tokens, padding with EOS, cutting length-sorted
sentences into batches under a token budget, and `EvalBatches`, the sorted batches of a file
in memory (dev/test sets, decoding). The training stream (zero/data.py) cuts its buffers with
the same functions.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from zero.errors import UserError
from zero.textio import check_parallel, read_lines
from zero.vocab import EOS, PAD, UNK, Vocab


def encode_lines(lines, vocab):
    """Token lists -> (flat int32 ids, int32 lengths); unknown tokens map to UNK."""
    ids_get = vocab.lookup
    lens = np.fromiter((len(x) for x in lines), np.int32, count=len(lines))
    flat = np.fromiter(
        map(ids_get, itertools.chain.from_iterable(lines), itertools.repeat(UNK)),
        np.int32,
        count=int(lens.sum()),
    )
    return flat, lens


def pad_rows(flat, offsets, lens, rows):
    """Rows of a flat id array -> int32 [B, max_len + 1] with EOS after each row, PAD after."""
    lens = lens[rows]
    width = int(lens.max()) + 1
    cols = np.arange(width)
    gather = offsets[rows][:, None] + cols[None, :]
    inside = cols[None, :] < lens[:, None]
    out = np.where(inside, flat[np.minimum(gather, max(len(flat) - 1, 0))] if len(flat) else 0, PAD)
    out = out.astype(np.int32)
    out[np.arange(len(rows)), lens] = EOS
    return out, int(lens.sum()) + len(rows)


def cut_batches(order, src_width, tgt_width, batch_tokens, batch_size=None):
    """Greedy batches over `order`: a batch closes when B * max width (EOS included) of the
    source or the target would exceed batch_tokens, or B would exceed batch_size.
    Returns (start, end) pairs into `order`. A single over-long item gets a batch of its own."""
    sw = src_width[order].tolist()
    tw = tgt_width[order].tolist() if tgt_width is not None else None
    spans, start, ms, mt = [], 0, 0, 0
    for i in range(len(sw)):
        ns = max(ms, sw[i])
        nt = max(mt, tw[i]) if tw is not None else 0
        size = i - start + 1
        if size > 1 and (
            size * ns > batch_tokens
            or size * nt > batch_tokens
            or (batch_size is not None and size > batch_size)
        ):
            spans.append((start, i))
            start, ns, nt = i, sw[i], (tw[i] if tw is not None else 0)
        ms, mt = ns, nt
    if len(sw):
        spans.append((start, len(sw)))
    return spans


def offsets_of(lens):
    """int64 start of each row in the flat id array of rows with lengths `lens`."""
    return np.concatenate([[0], np.cumsum(lens[:-1], dtype=np.int64)]).astype(np.int64)


def encode_rows(sentences, vocab):
    """Token lists -> (flat ids, offsets, lengths), the arrays pad_rows reads."""
    flat, lens = encode_lines(sentences, vocab)
    return flat, offsets_of(lens), lens


class EvalBatches:
    """Batches of a dev/test set sorted by source length; each batch carries `index`, the
    0-based input line numbers of its rows, so outputs can be put back in input order.
    A batch closes when B * max padded length (EOS included) of the source, or of the target
    when given, would exceed batch_tokens, or B would exceed batch_size (either or both).
    Empty source lines are kept (source = just EOS). A sentence longer than the budget gets a
    batch of its own. `limit` keeps only the first lines (validation on a dev subset).
    Iterable any number of times."""

    def __init__(
        self,
        src_path,
        src_vocab: Vocab,
        batch_tokens: int | None = None,
        tgt_path=None,
        tgt_vocab: Vocab | None = None,
        *,
        batch_size: int | None = None,
        limit: int | None = None,
    ):
        if batch_tokens is None and batch_size is None:
            raise ValueError("EvalBatches needs batch_tokens or batch_size")
        if (tgt_path is None) != (tgt_vocab is None):
            raise ValueError("tgt_path and tgt_vocab go together")
        if tgt_path is not None:
            check_parallel(src_path, tgt_path)
        self.src = self._load(src_path, src_vocab, limit)
        self.tgt = self._load(tgt_path, tgt_vocab, limit) if tgt_path is not None else None
        self.num_lines = len(self.src[2])
        if self.num_lines == 0:
            raise UserError(f"{src_path} is empty")
        self.order = np.argsort(self.src[2], kind="stable")
        budget = batch_tokens if batch_tokens is not None else np.iinfo(np.int64).max
        self.spans = cut_batches(
            self.order,
            self.src[2] + 1,
            self.tgt[2] + 1 if self.tgt is not None else None,
            budget,
            batch_size,
        )

    @staticmethod
    def _load(path, vocab, limit=None):
        lines = [line.split() for _, line in itertools.islice(read_lines(path), limit)]
        return encode_rows(lines, vocab)

    def __len__(self):
        return len(self.spans)

    def __iter__(self) -> Iterator[dict]:
        for a, b in self.spans:
            rows = self.order[a:b]
            batch = {"src": pad_rows(*self.src, rows)[0], "index": rows.astype(np.int64)}
            if self.tgt is not None:
                batch["tgt"] = pad_rows(*self.tgt, rows)[0]
            yield batch

    def restore_order(self, indices, items) -> list:
        """items[i] belongs to input line indices[i] (indices = the batches' `index` arrays
        concatenated). Returns the items in input order; every line must appear once."""
        indices = np.concatenate([np.ravel(i) for i in indices]) if len(indices) else []
        items = list(items)
        if len(indices) != len(items):
            raise ValueError(f"{len(indices)} indices but {len(items)} items")
        out = [None] * self.num_lines
        seen = np.zeros(self.num_lines, bool)
        for i, item in zip(np.asarray(indices).tolist(), items, strict=True):
            if seen[i]:
                raise ValueError(f"line {i} appears twice")
            seen[i] = True
            out[i] = item
        if not seen.all():
            raise ValueError(f"{int((~seen).sum())} of {self.num_lines} lines have no output")
        return out
