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
