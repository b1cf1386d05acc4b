"""Token vocabularies: one token per line (optional `\\t count`), the four specials first."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable

from zero.errors import UserError
from zero.textio import read_lines

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")


class Vocab:
    """Maps tokens to ids and back. Ids 0-3 are always <pad>, <unk>, <s>, </s>."""

    def __init__(self, tokens: Iterable[str], counts: Iterable[int | None] | None = None):
        tokens = list(tokens)
        if tuple(tokens[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {tuple(tokens[:4])}")
        self._tokens = tokens
        self._ids = {t: i for i, t in enumerate(tokens)}
        if len(self._ids) != len(tokens):
            dup = next(t for t, n in Counter(tokens).items() if n > 1)
            raise ValueError(f"duplicate token {dup!r} in vocabulary")
        self._counts = list(counts) if counts is not None else [None] * len(tokens)

    # -- files -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path) -> Vocab:
        tokens, counts = [], []
        try:
            f = open(path, encoding="utf-8", newline="\n")
        except OSError as e:
            raise UserError(f"{path}: cannot read vocabulary: {e.strerror}") from None
        with f:
            try:
                for lineno, line in enumerate(f, 1):
                    line = line.rstrip("\n").rstrip("\r")
                    if not line:
                        raise UserError(f"{path}:{lineno}: empty line in vocabulary")
                    tok, _, count = line.partition("\t")
                    tokens.append(tok)
                    counts.append(int(count) if count.strip() else None)
            except UnicodeDecodeError:
                raise UserError(f"{path}:{lineno + 1}: invalid UTF-8 in vocabulary") from None
            except ValueError:
                raise UserError(f"{path}:{lineno}: count after the tab is not an integer") from None
        if tuple(tokens[:4]) != SPECIALS:
            raise UserError(
                f"{path}: not a vocabulary of this toolkit: the first four lines must be "
                f"{' '.join(SPECIALS)} (build one with `python -m zero.prepare` or Vocab.build)"
            )
        try:
            return cls(tokens, counts)
        except ValueError as e:
            raise UserError(f"{path}: {e}") from None

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for tok, count in zip(self._tokens, self._counts, strict=True):
                f.write(tok if count is None else f"{tok}\t{count}")
                f.write("\n")

    @classmethod
    def build(cls, paths, max_size: int | None = None, min_count: int = 1) -> Vocab:
        """Counts whitespace-separated tokens of text files (most frequent first, ties by
        token so the result does not depend on file order). max_size counts the specials."""
        if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__"):
            paths = [paths]
        counter: Counter[str] = Counter()
        for path in paths:
            for _, line in read_lines(path):
                counter.update(line.split())
        for special in SPECIALS:
            counter.pop(special, None)  # a literal "<s>" in text must not shadow the special
        items = sorted(
            ((t, c) for t, c in counter.items() if c >= min_count), key=lambda x: (-x[1], x[0])
        )
        if max_size is not None:
            items = items[: max(0, max_size - len(SPECIALS))]
        return cls(
            list(SPECIALS) + [t for t, _ in items], [None] * len(SPECIALS) + [c for _, c in items]
        )

    # -- mapping -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    @property
    def lookup(self):
        """token -> id or the default given (dict.get): the fast path of batch encoding."""
        return self._ids.get

    def id(self, token: str) -> int:
        return self._ids.get(token, UNK)

    def token(self, id_: int) -> str:
        return self._tokens[int(id_)]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Unknown tokens map to UNK; no EOS is added."""
        get = self._ids.get
        return [get(t, UNK) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Stops at the first EOS; PAD and BOS are dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(self._tokens[i])
        return out

    def fingerprint(self) -> str:
        """Short hash of the token list: equal lists <=> equal fingerprints (in practice)."""
        return hashlib.sha256("\n".join(self._tokens).encode("utf-8")).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, fingerprint={self.fingerprint()})"


def load_vocabs(config):
    """-> (src_vocab or None, tgt_vocab or None, src_size, tgt_size).

    Without vocabulary files the sizes come from src_vocab_size / tgt_vocab_size, so a model
    can be built (and its parameters counted) without data.
    """
    vocabs, sizes = [], []
    for side in ("src", "tgt"):
        path, size = config[f"{side}_vocab"], config[f"{side}_vocab_size"]
        if path:
            if not os.path.exists(path):
                raise UserError(f"config key '{side}_vocab': vocabulary file not found: {path}")
            vocab = Vocab.load(path)
            vocabs.append(vocab)
            sizes.append(len(vocab))
        elif size > 0:
            vocabs.append(None)
            sizes.append(size)
        else:
            raise UserError(
                f"config key '{side}_vocab' is not set: give a vocabulary file "
                f"or '{side}_vocab_size'"
            )
    return vocabs[0], vocabs[1], sizes[0], sizes[1]
