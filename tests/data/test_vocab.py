"""Vocabulary and tokenisers, against hand-counted expectations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstmlite.data import PAD_ID, UNK_ID, Vocabulary, char_tokens, word_tokens
from lstmlite.data.classify import encode_texts


def test_specials_come_first():
    v = Vocabulary.build([["x"]])
    assert v.tokens[:2] == ["<pad>", "<unk>"] and (PAD_ID, UNK_ID) == (0, 1)


def test_order_is_frequency_then_token():
    # counts: c=3, a=2, b=2, d=1, e=1 → c, then the tie a < b, then the tie d < e
    v = Vocabulary.build([["b", "c", "a"], ["c", "d"], ["e", "a", "c", "b"]])
    assert v.tokens == ["<pad>", "<unk>", "c", "a", "b", "d", "e"]
    # the same tokens in another order give the same table
    w = Vocabulary.build([["e", "a", "c", "b"], ["c", "d"], ["b", "c", "a"]])
    assert w == v


def test_max_size_counts_specials_and_cuts_ties_by_token():
    v = Vocabulary.build([["b", "c", "a"], ["c", "d"], ["e", "a", "c", "b"]], max_size=4)
    assert v.tokens == ["<pad>", "<unk>", "c", "a"]  # b ties with a but sorts after it
    assert len(v) == 4


def test_min_freq_drops_rare_tokens() -> None:
    """Tokens seen fewer than min_freq times get no id, and every lookup (``encode``,
    ``encode_array`` and the single-token ``id`` the taggers use) maps them and unseen
    tokens to ``<unk>``, never to ``<pad>``; catches ``id`` falling back to PAD_ID."""
    v = Vocabulary.build([["b", "c", "a"], ["c", "d"], ["e", "a", "c", "b"]], min_freq=2)
    assert v.tokens == ["<pad>", "<unk>", "c", "a", "b"]
    assert v.encode(["d", "c", "zzz"]) == [UNK_ID, 2, UNK_ID]
    assert v.encode_array(["d", "c", "zzz"]).tolist() == [UNK_ID, 2, UNK_ID]
    assert [v.id(t) for t in ("d", "c", "zzz")] == [UNK_ID, 2, UNK_ID]


def test_literal_specials_in_text_are_not_duplicated():
    v = Vocabulary.build([["<unk>", "<pad>", "x", "<unk>"]])
    assert v.tokens == ["<pad>", "<unk>", "x"]


def test_encode_decode_and_json_round_trip():
    v = Vocabulary.build([list("hello world")])
    ids = v.encode(list("low"))
    assert "".join(v.decode(ids)) == "low"
    again = Vocabulary.from_dict(json.loads(json.dumps(v.to_dict())))
    assert again == v and again.tokens == v.tokens
    with pytest.raises(IndexError):
        v.decode([len(v)])
    with pytest.raises(ValueError):
        Vocabulary.from_dict({"tokens": ["a"]})
    with pytest.raises(ValueError):
        Vocabulary(["a", "<pad>", "<unk>"])


def test_word_tokens_lowercase_and_split_punctuation():
    assert word_tokens("What's the U.S. capital?") == ["what's", "the", "u", ".", "s", ".", "capital", "?"]
    assert word_tokens("a\nb", keep_newlines=True) == ["a", "\n", "b"]
    assert word_tokens("a\nb") == ["a", "b"]
    assert char_tokens("Ab \n") == ["A", "b", " ", "\n"]


def test_encode_texts_pads_with_zero() -> None:
    """Rows end-padded with 0 to the longest row (or ``length``), ``max_len`` cutting each
    row to its first max_len tokens (hand-counted ids); catches a cut one token short."""
    v = Vocabulary.build([["hi", "there", "hi"]])
    x, lengths = encode_texts(["Hi there, hi!", "there"], v)
    assert x.dtype == np.int64 and lengths.tolist() == [5, 1]
    hi, there = v.id("hi"), v.id("there")
    assert x.tolist() == [[hi, there, UNK_ID, hi, UNK_ID], [there, 0, 0, 0, 0]]
    x, lengths = encode_texts(["hi there hi"], v, length=2)
    assert x.tolist() == [[hi, there]] and lengths.tolist() == [2]
    x, lengths = encode_texts(["hi there hi", "there"], v, max_len=2)
    assert x.tolist() == [[hi, there], [there, 0]] and lengths.tolist() == [2, 1]


def test_decode_refuses_an_id_below_zero_as_past_the_end():
    """-1 (the tag / CTC padding label) is no token: Python's negative index would turn it
    into the last word, silently. Catches the lower bound dropped from decode's check."""
    vocab = Vocabulary(["<pad>", "<unk>", "a", "b"])
    assert vocab.decode([2, 3]) == ["a", "b"]
    for bad in ([-1], [4]):
        with pytest.raises(IndexError, match="outside a vocabulary of 4"):
            vocab.decode(bad)


def test_word_tokens_keep_every_inner_apostrophe():
    """The documented rule: inner apostrophes stay in the word, however many. Catches a
    pattern that keeps only the first ("rock'n", "'", "roll")."""
    assert word_tokens("rock'n'roll o'neil's") == ["rock'n'roll", "o'neil's"]
