"""Text and feature classification builders (lstmlite.data.classify), on small hand-made inputs."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np

from lstmlite.data import DataSpec
from lstmlite.data.classify import build_text_classification
from lstmlite.data.readers import TextRecords


def test_max_len_keeps_the_first_tokens_of_every_row() -> None:
    """With ``max_len=3`` each row holds the first three words of its text and the arrays are
    3 wide. Every text is a permutation of a, b, c followed by "d e", so the oracle is
    ``text.split()[:3]`` (Counter over all splits); catches a cut that keeps the LAST
    max_len tokens, which would put d and e into the rows."""
    texts = [" ".join(p) + " d e" for p in itertools.permutations("abc")] * 5  # 30 rows
    records = TextRecords("toy.csv", texts, [str(k % 2) for k in range(len(texts))], list(range(2, 32)))
    data = build_text_classification("toy", DataSpec("toy.csv", max_len=3, level="word"), records)
    rows = []
    for split in data.splits.values():
        assert split.x.shape[1] == 3 and split.lengths.tolist() == [3] * len(split)
        rows += [tuple(data.vocab.decode(row)) for row in split.x]
    assert Counter(rows) == Counter(tuple(t.split()[:3]) for t in texts)


def test_one_very_long_row_is_refused_before_the_padded_arrays_are_made(monkeypatch) -> None:
    """Every row is padded to the longest: 30 short rows and one of 1,000 words would be
    31 x 1,000 ids. Past the bound (lowered here) that is refused before allocating, naming
    the size and the max_len that fits 99 % of the rows; with that max_len it loads."""
    import pytest

    from lstmlite.data import classify
    from lstmlite.data.errors import DataError

    monkeypatch.setattr(classify, "MAX_PADDED_IDS", 10_000)
    texts = ["a b c"] * 30 + [" ".join(["w"] * 1000)]
    records = TextRecords("toy.csv", texts, [str(k % 2) for k in range(len(texts))], list(range(2, 33)))
    with pytest.raises(DataError, match=r"^toy.csv: padding 31 rows to the longest \(1,000 tokens\) needs 0.0 GiB; "
                                        r"cut the rows with --data.max_len \(99 % of them have at most \d+ tokens\)"):
        build_text_classification("toy", DataSpec("toy.csv", level="word"), records)
    data = build_text_classification("toy", DataSpec("toy.csv", level="word", max_len=100), records)
    assert data.train.x.shape[1] == 100
