"""Raw text in, raw text out: the prepared corpus's normalisation, tokenisation and BPE, beam
search, then BPE removal and detokenisation, one output line per input line.

Input is read by a thread so that decoding never waits for more input than is already there:
each round translates the lines that have arrived (at least one, at most CHUNK_LINES) in
length-sorted batches, writes their outputs in input order and flushes. A line typed
interactively is answered at once; a file is decoded in large batches.
"""

import os
import queue
import sys
import threading

import numpy as np
import tensorflow as tf

from zero import data
from zero.decode import stderr_log
from zero.errors import UserError
from zero.evaluate import postprocess
from zero.prepare import Preprocessor
from zero.runner import build_translator, restore_models
from zero.session import make_session

CHUNK_LINES = 1000  # most lines decoded per round: bounds memory and the wait for output
_EOF = object()


def preprocessor(config):
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


def _read_into(stream, lines):
    """Thread body: put each line of binary `stream` (decoded, without its end) into `lines`,
    then _EOF. An exception is handed over to be raised by the reader of the queue."""
    try:
        for lineno, raw in enumerate(iter(stream.readline, b""), 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", errors="replace")
                stderr_log(f"input line {lineno}: invalid UTF-8 replaced by U+FFFD")
            lines.put(text.rstrip("\n").rstrip("\r"))
        lines.put(_EOF)
    except BaseException as e:  # re-raised in the main thread
        lines.put(e)


def _rounds(lines):
    """Lists of the lines available now: waits for the first line of a round only."""
    while True:
        chunk = [lines.get()]
        while len(chunk) < CHUNK_LINES and isinstance(chunk[-1], str):
            try:
                chunk.append(lines.get_nowait())
            except queue.Empty:
                break
        if isinstance(chunk[-1], BaseException):
            raise chunk[-1]
        if chunk[-1] is _EOF:
            if len(chunk) > 1:
                yield chunk[:-1]
            return
        yield chunk


class RawTranslator:
    """Raw source lines -> raw target lines with one model directory's best/latest weights."""

    def __init__(self, config):
        self.config = config
        self.pre = preprocessor(config)
        graph = tf.Graph()
        self.translator, members, self.src_vocab, self.tgt_vocab = build_translator(config, graph)
        if self.src_vocab is None or self.tgt_vocab is None:
            raise UserError("translate mode needs the vocabulary files (src_vocab, tgt_vocab)")
        self.sess = make_session(config, graph)
        restore_models(self.sess, members)

    def __call__(self, lines):
        tokens = [line.split() for line in self.pre(lines, self.config.src_lang)]
        rows = [i for i, t in enumerate(tokens) if t]  # an empty (or blank) line stays empty
        hyps = self._decode([tokens[i] for i in rows]) if rows else []
        out = [""] * len(lines)
        for i, text in zip(rows, postprocess(hyps, self.config.tgt_lang), strict=True):
            out[i] = text
        return out

    def _decode(self, sentences):
        """Token lists -> best hypotheses (BPE'd strings), in length-sorted batches under the
        token budget cut exactly as test mode cuts a file (the batching affects rounding)."""
        lens = np.array([len(s) for s in sentences], np.int32)
        flat = np.array([i for s in sentences for i in self.src_vocab.encode(s)], np.int32)
        offsets = np.concatenate([[0], np.cumsum(lens[:-1], dtype=np.int64)]).astype(np.int64)
        order = np.argsort(lens, kind="stable")
        hyps = [""] * len(sentences)
        for a, b in data._cut(order, lens + 1, None, self.config.decode_batch_tokens):
            batch, _ = data._pad(flat, offsets, lens, order[a:b])
            ids, _ = self.translator.run(self.sess, batch)
            for k, row in enumerate(order[a:b]):
                hyps[row] = " ".join(self.tgt_vocab.decode(ids[k, 0]))
        return hyps


def _open(path, mode, key):
    try:
        return open(path, mode)
    except OSError as e:
        raise UserError(f"config key '{key}': cannot open {path}: {e.strerror}") from None


def translate(config):
    if config.n_best > 1:
        raise UserError("translate mode writes the best translation only; n-best: use test mode")
    # Bytes in and out: UTF-8 whatever the locale says.
    stream = _open(config.input, "rb", "input") if config.input else sys.stdin.buffer
    out = None
    try:
        model = RawTranslator(config)
        out = _open(config.output, "wb", "output") if config.output else sys.stdout.buffer
        lines = queue.Queue(maxsize=4 * CHUNK_LINES)
        threading.Thread(target=_read_into, args=(stream, lines), daemon=True).start()
        count = 0
        for chunk in _rounds(lines):
            out.write("".join(line + "\n" for line in model(chunk)).encode("utf-8"))
            out.flush()
            count += len(chunk)
        stderr_log(f"translated {count} lines")
    finally:
        for f in (stream, out):
            if f is not None and f not in (sys.stdin.buffer, sys.stdout.buffer):
                f.close()
