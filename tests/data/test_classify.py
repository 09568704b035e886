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


def test_encode_texts_cuts_each_row_to_max_len_before_padding() -> None:
    """New text for a trained classifier: ``max_len=2`` keeps the first two tokens of each
    row, ``length=3`` pads to three columns, lengths count the kept tokens (ids by hand:
    a 2, b 3, c 4, d 5). Catches ``max_len`` ignored, which keeps "c" (and makes rows wider)."""
    from lstmlite.data.classify import encode_texts
    from lstmlite.data.vocab import Vocabulary

    vocab = Vocabulary.build([["a", "b", "c", "d"]])
    x, lengths = encode_texts(["A b c d", "b"], vocab, max_len=2)
    assert x.tolist() == [[2, 3], [3, 0]] and lengths.tolist() == [2, 1]
    x, lengths = encode_texts(["a b c d", "d z"], vocab, max_len=2, length=3)
    assert x.tolist() == [[2, 3, 0], [5, 1, 0]] and lengths.tolist() == [2, 2]


def test_features_are_normalised_with_the_training_rows_valid_steps_only() -> None:
    """Real-valued rows of uneven length: every split is (x - mean) / std with NumPy's
    population mean and std (ddof 0) of the TRAIN rows' valid steps, end-padded with exact
    zeros; a constant feature is centred to 0, not blown up. Each row is found again by
    undoing the transform the builder reports, so a wrong mean/std still finds the rows
    and is then caught by the NumPy oracle. Catches statistics over all rows (val/test
    leaking in), ddof=1, or a tiny std floor for the constant feature."""
    from lstmlite.data.classify import build_feature_classification

    rng = np.random.default_rng(1)
    series = [np.column_stack([rng.normal(3.0, 2.0, 3 + k % 4), np.full(3 + k % 4, 7.0)]) for k in range(40)]
    series[5][:, 0] += 100.0  # one far-off row: stats with or without it differ clearly
    data = build_feature_classification("toy", DataSpec("toy.npz", seed=2), series,
                                        [str(k % 2) for k in range(40)])
    used_mean, used_std = np.asarray(data.stats["mean"]), np.asarray(data.stats["std"])

    def source_rows(split) -> list[np.ndarray]:
        found = []
        for x, n in zip(split.x, split.lengths):
            assert not x[n:].any()  # padding stays exactly 0
            undone = x[:n, 0] * used_std[0] + used_mean[0]
            found.append(next(s for s in series if len(s) == n and np.allclose(s[:, 0], undone, atol=1e-3)))
        return found

    train = source_rows(data.train)
    steps = np.concatenate(train)  # (sum T_i, 2) valid steps of the training rows
    mean, std = steps.mean(axis=0), steps.std(axis=0)
    assert len(train) == 32
    np.testing.assert_allclose(used_mean, mean, rtol=1e-9)
    np.testing.assert_allclose(used_std, [std[0], 1.0], rtol=1e-9)  # constant feature: std 1
    for split in data.splits.values():
        for x, raw in zip(split.x, source_rows(split)):
            n = len(raw)
            np.testing.assert_allclose(x[:n], (raw - mean) / [std[0], 1.0], rtol=1e-5, atol=1e-5)


def test_an_official_test_file_with_longer_texts_is_padded_not_cut() -> None:
    """Rows are padded to the longest row of ALL splits: a test file whose texts are longer
    than every training text keeps every token (widths and lengths hand-counted: training
    texts of 2 words, test texts of 5). Catches a width taken from the training file
    only, which cuts the test rows to 2 tokens without a word."""
    train = TextRecords("train.csv", ["good film", "bad film"] * 10, ["pos", "neg"] * 10, list(range(2, 22)))
    test = TextRecords("test.csv", ["good good film film good", "bad bad bad film film"], ["pos", "neg"], [2, 3])
    data = build_text_classification("toy", DataSpec("train.csv", level="word"), train, test)
    assert data.test.x.shape == (2, 5) and data.test.lengths.tolist() == [5, 5]
    assert [data.vocab.decode(row) for row in data.test.x] == [t.split() for t in test.texts]
    assert data.train.x.shape[1] == 5 and set(data.train.lengths.tolist()) == {2}


def test_unequal_val_and_test_fractions_go_to_their_own_splits():
    """100 texts of 2 balanced classes with val 0.2 and test 0.1 (no official test split):
    70 / 20 / 10 by hand. Every other test used equal fractions, which hid the two splits
    swapped (70 / 10 / 20)."""
    records = TextRecords(path="toy.csv", texts=[f"w{k} x" for k in range(100)],
                          labels=["ab"[k % 2] for k in range(100)], lines=list(range(2, 102)))
    data = build_text_classification("toy", DataSpec("toy.csv", val_fraction=0.2, test_fraction=0.1), records)
    assert (len(data.train.y), len(data.val.y), len(data.test.y)) == (70, 20, 10)
