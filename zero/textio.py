"""Text files in and out: UTF-8 line reading with errors that name the file and line, line
counts, SGML segments, and atomic writes (a crash leaves the old file or the new one, never
half of one). Every module that reads or writes text goes through here (docs/DESIGN.md,
"Module map").

Lines are split on \\n only: a stray \\r or U+2028 inside a line must not shift the alignment
of a parallel corpus. `.gz` files are read transparently.
"""

import gzip
import json
import os
import re
import sys
import tempfile

from zero.errors import UserError

BLOCK = 1 << 22  # bytes per read in line counts and scans
_SEG = re.compile(r"<seg[^>]*>(.*)</seg>", re.IGNORECASE)


def open_binary(path):
    """`path` opened for binary reading (.gz inflated); UserError naming it if it cannot be."""
    try:
        if str(path).endswith(".gz"):
            return gzip.open(path, "rb")
        return open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from None


def decode_line(raw, where, errors="strict", stats=None):
    """One line's bytes -> text without its line end. `where` ("file:line") names it in the
    UserError for invalid UTF-8; errors="replace" puts U+FFFD there instead and counts the
    line in stats["bad_utf8"]."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if errors == "replace":
            text = raw.decode("utf-8", errors="replace")
            if stats is not None:
                stats["bad_utf8"] = stats.get("bad_utf8", 0) + 1
        else:
            bad = raw[e.start : e.start + 1]
            raise UserError(
                f"{where}: invalid UTF-8 (byte {bad!r} at column {e.start + 1})"
            ) from None
    return text.rstrip("\n").rstrip("\r")


def read_lines(path, errors="strict", stats=None):
    """Yields (lineno, text) from 1, without the line end.

    errors="strict": invalid UTF-8 is a UserError naming the file and line. errors="replace":
    it becomes U+FFFD and `stats["bad_utf8"]` counts such lines (a downloaded corpus the user
    cannot fix).
    """
    lineno = 0
    with open_binary(path) as f:
        try:
            for lineno, raw in enumerate(f, 1):
                yield lineno, decode_line(raw, f"{path}:{lineno}", errors, stats)
        except (OSError, EOFError) as e:  # corrupt or truncated gzip
            raise UserError(f"{path}: cannot read after line {lineno}: {e}") from None


def lines_of(path, errors="strict"):
    """Every line of `path` as a list of strings (for files that fit in memory)."""
    return [text for _, text in read_lines(path, errors)]


def count_lines(path):
    """Number of lines (a last line without a newline counts)."""
    n, last = 0, b"\n"
    with open_binary(path) as f:
        try:
            while block := f.read(BLOCK):
                n += block.count(b"\n")
                last = block[-1:]
        except (OSError, EOFError) as e:
            raise UserError(f"{path}: cannot read: {e}") from None
    return n + (last != b"\n")


def check_parallel(src_path, tgt_path):
    """Both files' line counts; different counts or no lines -> UserError. Returns the count."""
    n_src, n_tgt = count_lines(src_path), count_lines(tgt_path)
    check_counts(src_path, tgt_path, n_src, n_tgt)
    return n_src


def check_counts(src_path, tgt_path, n_src, n_tgt):
    if n_src != n_tgt:
        raise UserError(
            f"{src_path} has {n_src} lines but {tgt_path} has {n_tgt}: source and target "
            "files must be aligned line by line"
        )
    if n_src == 0:
        raise UserError(f"{src_path} and {tgt_path} are empty: no sentence pairs to read")


def read_sgm(path):
    """Segments of a WMT SGML file (one <seg id=N> per line) in file order, as sacreBLEU
    extracts them."""
    for _, line in read_lines(path):
        m = _SEG.search(line)
        if m:
            yield re.sub(r"\s+", " ", m.group(1).strip())


def read_corpus_file(path, stats=None):
    """A raw corpus file's lines: SGML segments for .sgm, else lines, invalid UTF-8 replaced."""
    if str(path).endswith((".sgm", ".sgm.gz")):
        return list(read_sgm(path))
    return [text for _, text in read_lines(path, "replace", stats)]


# -- writing ----------------------------------------------------------------------------------


def atomic_write_text(path, text):
    """Write `text` to `path` through a temporary file, fsync'ed, renamed into place."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); the result keeps the old file's mode, or
        # gets an ordinary file's (0644), as if written in place.
        os.chmod(tmp, os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_lines(path, lines):
    """Lines (without ends) to `path` atomically, or to stdout when path is empty."""
    text = "".join(line + "\n" for line in lines)
    if path:
        atomic_write_text(path, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def append_jsonl(path, record):
    """One JSON record as a line at the end of `path` (a log that grows)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
