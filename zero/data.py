"""Input pipeline: UTF-8-checked reading, token-budget batches, streaming with exact resume.

Training data is never loaded whole. A start-up pass over both files (numpy newline scan,
about a second per GB) counts lines, checks UTF-8 and records the byte offset of every
`chunk_lines`-th line. An epoch is a seeded permutation of these chunks; consecutive groups of
chunks form a buffer of ~`buffer_size` pairs, which is read by seeking, sorted by length (random
tie-break), cut into batches under the token budget, and the batches are shuffled. Everything
depends only on (seed, epoch, buffer index), so a position is (epoch, buffer, batch) and restoring
it re-reads one buffer instead of replaying the epoch.
"""

from __future__ import annotations

import codecs
import math
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator

import numpy as np

from zero import log
from zero.batching import cut_batches, encode_lines, offsets_of, pad_rows
from zero.errors import UserError
from zero.textio import BLOCK, check_counts, open_binary, read_lines
from zero.vocab import Vocab


def _raise_utf8_error(path):
    for _ in read_lines(path):  # slow path, only to name the line
        pass
    raise UserError(f"{path}: invalid UTF-8")  # a sequence cut by the end of the file


def _scan(path, chunk_lines: int, validate: bool, name=None):
    """One streaming pass: (number of lines, int64 byte offsets of lines 0, C, 2C, ... followed
    by the file size, int64 indices of zero-length lines). Memory stays at a few blocks.
    `name`: the file to name in errors (the .gz that `path` was inflated from)."""
    name = path if name is None else name
    offsets, empties = [], []
    n = pos = start = 0  # lines ended so far, bytes read, byte offset of the current line
    last = b"\n"
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    with open_binary(path) as f:
        while block := f.read(BLOCK):
            if validate:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    _raise_utf8_error(name)
            ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10) + pos
            if len(ends):
                starts = np.concatenate([[start], ends[:-1] + 1])
                empties.append(np.flatnonzero(ends == starts) + n)
                offsets.append(starts[(-n) % chunk_lines :: chunk_lines])
                n += len(ends)
                start = int(ends[-1]) + 1
            pos += len(block)
            last = block[-1:]
    if validate:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            _raise_utf8_error(name)
    if last != b"\n":  # a last line without newline (never empty)
        if n % chunk_lines == 0:
            offsets.append(np.array([start]))
        n += 1
    offsets.append(np.array([pos]))
    empty = np.concatenate(empties) if empties else np.zeros(0, np.int64)
    return n, np.concatenate(offsets).astype(np.int64), empty.astype(np.int64)


class _Buffer:
    """Encoded pairs of one buffer and its batches in yield order."""

    def __init__(self, src, tgt, spans, order):
        self.src, self.tgt = src, tgt  # (flat, offsets, lens)
        self.spans, self.order = spans, order

    def batch(self, k):
        a, b = self.spans[k]
        rows = self.order[a:b]
        src, n_src = pad_rows(*self.src, rows)
        tgt, n_tgt = pad_rows(*self.tgt, rows)
        return {"src": src, "tgt": tgt, "num_src_tokens": n_src, "num_tgt_tokens": n_tgt}


# ---------------------------------------------------------------------------------------------
# Training stream


class TrainStream:
    """Infinite iterator over epochs of token-budget batches of a parallel corpus on disk.

    Each batch: `src` int32 [B, S] and `tgt` int32 [B, T] (ids + EOS, PAD=0 after),
    `num_src_tokens`, `num_tgt_tokens` (ints, EOS included). B * S <= batch_tokens and
    B * T <= batch_tokens. Pairs with an empty side or more than max_len tokens on a side
    (before EOS) are skipped; `epoch_stats` counts them per epoch.

    Sharded (`num_shards` workers, this one `shard`): each step takes the next `num_shards`
    batches of the one global sequence and returns the `shard`-th, so worker w reads batches
    w, w + N, ... Positions stay global (every worker is at the same one after each step):
    any number of workers, or one process, resumes from them exactly.
    """

    def __init__(
        self,
        src_path,
        tgt_path,
        src_vocab: Vocab,
        tgt_vocab: Vocab,
        batch_tokens: int,
        max_len: int,
        seed: int = 1234,
        buffer_size: int = 100_000,
        prefetch: int = 64,
        chunk_lines: int = 1000,
        validate_utf8: bool = True,
        shard: int = 0,
        num_shards: int = 1,
    ):
        if not 0 <= shard < num_shards:
            raise ValueError(f"shard {shard} of {num_shards}")
        self.shard, self.num_shards = int(shard), int(num_shards)
        if max_len < 1:
            raise UserError(f"max_len must be at least 1, got {max_len}")
        if batch_tokens < max_len + 1:
            raise UserError(
                f"batch_tokens ({batch_tokens}) must be at least max_len + 1 ({max_len + 1}): "
                "a batch holds at least one sentence and its end-of-sentence token"
            )
        self.src_path, self.tgt_path = str(src_path), str(tgt_path)
        self.batch_tokens, self.max_len, self.seed = int(batch_tokens), int(max_len), int(seed)
        self.chunk_lines = max(1, int(chunk_lines))
        self.chunks_per_buffer = max(1, int(buffer_size) // self.chunk_lines)
        self.prefetch = max(1, int(prefetch))
        self._vocabs = (src_vocab, tgt_vocab)
        self._tmpdir = None
        files = [self._plain(p) for p in (self.src_path, self.tgt_path)]
        self._files = files
        n_src, off_src, empty_src = _scan(files[0], self.chunk_lines, validate_utf8, src_path)
        n_tgt, off_tgt, empty_tgt = _scan(files[1], self.chunk_lines, validate_utf8, tgt_path)
        check_counts(self.src_path, self.tgt_path, n_src, n_tgt)
        self.num_lines = n_src
        # Lines of zero bytes; whitespace-only lines are found (and skipped) while reading.
        self.num_empty = len(np.union1d(empty_src, empty_tgt))
        if self.num_empty == self.num_lines:
            raise UserError(
                f"{self.src_path} and {self.tgt_path}: every line pair has an empty side"
            )
        del empty_src, empty_tgt
        self._offsets = (off_src, off_tgt)
        self.num_chunks = len(off_src) - 1
        self.num_buffers = math.ceil(self.num_chunks / self.chunks_per_buffer)
        self.epoch_stats: dict[int, dict] = {}
        self._next = (0, 0, 0)  # (epoch, buffer, batch) of the next batch to hand out
        self._in_epoch = 0  # batches handed out in the current epoch
        self._thread = self._queue = self._stop = None
        self._order_cache = (None, None)

    # -- setup ------------------------------------------------------------------------------
    def _plain(self, path):
        """Random access needs an uncompressed file: a .gz is inflated once to a temp dir."""
        if not path.endswith(".gz"):
            if not os.path.isfile(path):
                raise UserError(f"{path}: no such file")
            return path
        if self._tmpdir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="zero-data-")
        out = os.path.join(self._tmpdir.name, f"{len(os.listdir(self._tmpdir.name))}.txt")
        log.info(f"decompressing {path} to {out} for random access")
        with open_binary(path) as f, open(out, "wb") as g:
            try:
                shutil.copyfileobj(f, g, BLOCK)
            except (OSError, EOFError) as e:
                raise UserError(f"{path}: cannot decompress: {e}") from None
        return out

    def _settings(self):
        return {
            "seed": self.seed,
            "batch_tokens": self.batch_tokens,
            "max_len": self.max_len,
            "chunk_lines": self.chunk_lines,
            "chunks_per_buffer": self.chunks_per_buffer,
            "num_lines": self.num_lines,
        }

    # -- deterministic plan ------------------------------------------------------------------
    def _chunk_order(self, epoch):
        if self._order_cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order_cache = (epoch, rng.permutation(self.num_chunks))
        return self._order_cache[1]

    def _read_chunk(self, f, path, side, c):
        off = self._offsets[side]
        f.seek(int(off[c]))
        data = f.read(int(off[c + 1] - off[c]))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # the file changed after the start-up check
            _raise_utf8_error(path)
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        return lines

    def _build_buffer(self, epoch, b, handles, stop=None) -> tuple[_Buffer | None, dict]:
        chunks = self._chunk_order(epoch)[
            b * self.chunks_per_buffer : (b + 1) * self.chunks_per_buffer
        ]
        parts = []  # per chunk: (src ids, src lens, tgt ids, tgt lens); encoded at once so
        n_empty = n_long = 0  # that only one chunk's token strings exist at a time
        max_len = self.max_len
        for c in chunks:
            if stop is not None and stop.is_set():  # close() need not wait for a whole buffer
                break
            src_lines = self._read_chunk(handles[0], self.src_path, 0, c)
            tgt_lines = self._read_chunk(handles[1], self.tgt_path, 1, c)
            if len(src_lines) != len(tgt_lines):
                raise UserError(f"{self.src_path} or {self.tgt_path} changed while training")
            src_toks, tgt_toks = [], []
            for s, t in zip(src_lines, tgt_lines, strict=True):
                s, t = s.split(), t.split()
                if not s or not t:
                    n_empty += 1
                elif len(s) > max_len or len(t) > max_len:
                    n_long += 1
                else:
                    src_toks.append(s)
                    tgt_toks.append(t)
            if src_toks:
                parts.append(
                    encode_lines(src_toks, self._vocabs[0])
                    + encode_lines(tgt_toks, self._vocabs[1])
                )
        n = sum(len(p[1]) for p in parts)
        stats = {"pairs": n, "skipped_empty": n_empty, "skipped_too_long": n_long, "batches": 0}
        if n == 0:
            return None, stats
        src_flat, src_len, tgt_flat, tgt_len = (
            np.concatenate([p[i] for p in parts]) for i in range(4)
        )
        del parts
        rng = np.random.default_rng([self.seed, epoch, b])
        perm = rng.permutation(n)
        order = perm[np.lexsort((tgt_len[perm], src_len[perm]))]  # random order among equals
        spans = cut_batches(order, src_len + 1, tgt_len + 1, self.batch_tokens)
        spans = [spans[i] for i in rng.permutation(len(spans))]
        src, tgt = (
            (src_flat, offsets_of(src_len), src_len),
            (tgt_flat, offsets_of(tgt_len), tgt_len),
        )
        buf = _Buffer(src, tgt, spans, order)
        stats["batches"] = len(spans)
        return buf, stats

    def _produce(self, start, stop) -> Iterator[tuple]:
        """Yields (batch, (epoch, buffer, batch) of the batch after it) from `start` on."""
        epoch, b, k = start
        phase = 0  # position in the group of num_shards batches (a position starts a group)
        handles = [open(p, "rb") for p in self._files]
        try:
            while True:
                totals = {"pairs": 0, "batches": 0, "skipped_empty": 0, "skipped_too_long": 0}
                full_epoch = b == 0 and k == 0
                while b < self.num_buffers:
                    buf, stats = self._build_buffer(epoch, b, handles, stop)
                    if stop.is_set():
                        return
                    for key, v in stats.items():
                        totals[key] += v
                    n = len(buf.spans) if buf is not None else 0
                    for j in range(k, n):
                        if stop.is_set():
                            return
                        nxt = (epoch, b, j + 1) if j + 1 < n else (epoch, b + 1, 0)
                        if nxt[1] == self.num_buffers:
                            nxt = (epoch + 1, 0, 0)
                        # Other shards' batches are not padded, only counted.
                        yield (buf.batch(j) if phase == self.shard else None), nxt
                        phase = (phase + 1) % self.num_shards
                    b, k = b + 1, 0
                if full_epoch:
                    if totals["batches"] == 0:
                        raise UserError(
                            f"{self.src_path}, {self.tgt_path}: no sentence pair is non-empty "
                            f"and within max_len={self.max_len} tokens "
                            f"({totals['skipped_too_long']} pairs are longer, "
                            f"{totals['skipped_empty']} have an empty side); raise max_len or "
                            "check that these are the BPE'd files"
                        )
                    # Reported by whoever consumes the stream (the trainer, once per epoch).
                    self.epoch_stats[epoch] = totals
                epoch, b, k = epoch + 1, 0, 0
        finally:
            for h in handles:
                h.close()

    # -- prefetch thread -------------------------------------------------------------------
    def _worker(self, start, q, stop):
        try:
            for item in self._produce(start, stop):
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    def _start(self):
        self._queue = queue.Queue(maxsize=self.prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._worker,
            args=(self._next, self._queue, self._stop),
            name="zero-data-prefetch",
            daemon=True,
        )
        self._thread.start()

    def close(self):
        """Stops the prefetch thread (iteration can go on: it restarts from position())."""
        if self._thread is not None:
            self._stop.set()
            while self._thread.is_alive():
                try:  # unblock a pending put
                    self._queue.get_nowait()
                except queue.Empty:
                    self._thread.join(0.05)
            self._thread = self._queue = self._stop = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- iteration and position -------------------------------------------------------------
    def __iter__(self):
        return self

    def __next__(self) -> dict:
        if self._thread is None:
            self._start()
        batch = None
        for _ in range(self.num_shards):
            item = self._queue.get()
            if isinstance(item, BaseException):
                self.close()
                raise item
            got, nxt = item
            batch = batch if got is None else got
            self._in_epoch = 0 if nxt[0] != self._next[0] else self._in_epoch + 1
            self._next = nxt
        return batch

    @property
    def epoch(self) -> int:
        """Epoch of the next batch (0-based)."""
        return self._next[0]

    def position(self) -> dict:
        """JSON-able position: restore() of it yields exactly the batches that would come next."""
        epoch, buffer, batch = self._next
        return {
            "epoch": epoch,
            "batches_in_epoch": self._in_epoch,
            "buffer": buffer,
            "batch_in_buffer": batch,
            "settings": self._settings(),
        }

    def restore(self, position: dict) -> None:
        try:
            epoch, buffer, batch = (
                int(position["epoch"]),
                int(position["buffer"]),
                int(position["batch_in_buffer"]),
            )
            in_epoch = int(position.get("batches_in_epoch", 0))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"not a data position: {position!r}") from None
        self.close()
        saved = position.get("settings", {})
        changed = sorted(k for k, v in self._settings().items() if saved.get(k) != v)
        if changed:
            # The batch plan differs: resume at the start of the same buffer (not exact).
            log.warning(
                f"data settings changed since the position was saved ({', '.join(changed)}): "
                f"resuming at the start of buffer {buffer} of epoch {epoch}, not exactly"
            )
            batch, in_epoch = 0, 0
            if buffer >= self.num_buffers:
                epoch, buffer = epoch + 1, 0
        self._next = (epoch, buffer, batch)
        self._in_epoch = in_epoch
