"""translate: raw text in, raw text out, streaming stdin (or `input`) line by line.

Input is read by a thread so that decoding never waits for more input than is already there:
each round translates the lines that have arrived (at least one, at most CHUNK_LINES) in
length-sorted batches, writes their outputs in input order and flushes. A line typed
interactively is answered at once; a file is decoded in large batches.
"""

import queue
import sys
import threading

from zero import log
from zero.errors import UserError
from zero.modes.mode import Mode
from zero.textio import decode_line
from zero.translate import RawTranslator

CHUNK_LINES = 1000  # most lines decoded per round: bounds memory and the wait for output
_EOF = object()


def _read_into(stream, lines):
    """Thread body: put each line of binary `stream` (decoded, without its end) into `lines`,
    then _EOF. An exception is handed over to be raised by the reader of the queue."""
    try:
        for lineno, raw in enumerate(iter(stream.readline, b""), 1):
            stats = {}
            lines.put(decode_line(raw, f"input line {lineno}", "replace", stats))
            if stats:
                log.warning(f"input line {lineno}: invalid UTF-8 replaced by U+FFFD")
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


def _open(path, mode, key):
    try:
        return open(path, mode)
    except OSError as e:
        raise UserError(f"config key '{key}': cannot open {path}: {e.strerror}") from None


def run(config):
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
        log.info(f"translated {count} lines")
    finally:
        for f in (stream, out):
            if f is not None and f not in (sys.stdin.buffer, sys.stdout.buffer):
                f.close()


MODE = Mode(
    "translate",
    "raw text in, raw text out: the model's own normalisation, tokenisation and BPE "
    "(`prep_dir`), beam search, detokenisation; streams stdin line by line",
    run,
)
