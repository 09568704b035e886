"""Tokenisers: characters, or lowercased words and punctuation.

The word tokeniser lowercases and splits with one regular expression: runs of word
characters (keeping inner apostrophes, ``don't``) and single punctuation marks. For
language modelling a newline is kept as a token of its own so generated text keeps
its lines.

Example:
    >>> word_tokens("What's the U.S. capital?")
    ["what's", 'the', 'u', '.', 's', '.', 'capital', '?']
    >>> char_tokens("ab\\n")
    ['a', 'b', '\\n']
"""

from __future__ import annotations

import re

__all__ = ["word_tokens", "char_tokens", "tokenize"]

_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_WORD_LM = re.compile(r"\w+(?:'\w+)*|[^\w\s]|\n")


def word_tokens(text: str, *, keep_newlines: bool = False) -> list[str]:
    """Lowercased words and punctuation marks; newlines as tokens when ``keep_newlines``."""
    return (_WORD_LM if keep_newlines else _WORD).findall(text.lower())


def char_tokens(text: str) -> list[str]:
    """One token per character, case and whitespace kept."""
    return list(text)


def tokenize(text: str, level: str, *, keep_newlines: bool = False) -> list[str]:
    """Tokens of ``text`` at ``level`` ``"char"`` or ``"word"``."""
    if level == "char":
        return char_tokens(text)
    if level == "word":
        return word_tokens(text, keep_newlines=keep_newlines)
    raise ValueError(f"unknown text level {level!r}; choose 'char' or 'word'")
