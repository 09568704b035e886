"""Token vocabulary with fixed specials: ``<pad>`` = 0, ``<unk>`` = 1.

:meth:`Vocabulary.build` counts tokens (the TRAIN split only, by the callers), keeps
those seen at least ``min_freq`` times, and orders them by frequency, most frequent
first, ties broken by the token's string order, so the same text always gives the same
ids. ``max_size`` counts the two specials.

Example:
    >>> v = Vocabulary.build([["b", "a", "b"], ["c", "a"]], max_size=4)
    >>> v.tokens
    ['<pad>', '<unk>', 'a', 'b']
    >>> v.encode(["b", "z"]), v.decode([3, 1])
    ([3, 1], ['b', '<unk>'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["Vocabulary", "PAD", "UNK", "PAD_ID", "UNK_ID"]

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
_FORMAT = "lstmlite.Vocabulary"
_VERSION = 1


class Vocabulary:
    """An id ↔ token table whose first two entries are ``<pad>`` and ``<unk>``.

    Args:
        tokens: every token in id order, specials included (``tokens[0] == "<pad>"``,
            ``tokens[1] == "<unk>"``), no duplicates.
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r}; got {tokens[:2]!r}")
        if not all(isinstance(t, str) for t in tokens):
            raise ValueError("vocabulary tokens must be strings")
        self._itos = tokens
        self._stoi = {t: i for i, t in enumerate(tokens)}
        if len(self._stoi) != len(tokens):
            raise ValueError("a vocabulary cannot hold the same token twice")

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], max_size: int = 10000, min_freq: int = 1) -> Vocabulary:
        """Count tokens and keep the ``max_size - 2`` most frequent with ``count >= min_freq``.

        Args:
            token_lists: token sequences, e.g. one list per sentence (or one long list).
            max_size: size including the two specials (at least 2).
            min_freq: minimum count to get an id of its own.
        """
        if max_size < 2:
            raise ValueError(f"max_size={max_size} cannot hold the two specials")
        if min_freq < 1:
            raise ValueError(f"min_freq={min_freq} must be at least 1")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        for special in (PAD, UNK):  # a literal "<unk>" in the text maps to the special
            counts.pop(special, None)
        kept = sorted((item for item in counts.items() if item[1] >= min_freq), key=lambda tc: (-tc[1], tc[0]))
        return cls([PAD, UNK] + [t for t, _ in kept[: max_size - 2]])

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order (a copy)."""
        return list(self._itos)

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._itos == other._itos

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)})"

    def id(self, token: str) -> int:
        """The id of ``token``; ``UNK_ID`` for an unknown token."""
        return self._stoi.get(token, UNK_ID)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Tokens → ids (unknown tokens → 1)."""
        get = self._stoi.get
        return [get(t, UNK_ID) for t in tokens]

    def encode_array(self, tokens: Iterable[str]) -> np.ndarray:
        """Tokens → (len,) int64 ids."""
        return np.asarray(self.encode(tokens), dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids → tokens; raises ``IndexError`` on an id outside the vocabulary."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self._itos):
                raise IndexError(f"token id {i} outside a vocabulary of {len(self._itos)}")
            out.append(self._itos[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (what a run dir's ``vocab.json`` holds)."""
        return {"format": _FORMAT, "version": _VERSION, "tokens": list(self._itos)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT or "tokens" not in data:
            raise ValueError("not a serialised lstmlite Vocabulary")
        if data.get("version") != _VERSION:
            version = data.get("version")
            raise ValueError(f"vocabulary format version {version!r} is not supported (expected {_VERSION})")
        return cls(data["tokens"])
