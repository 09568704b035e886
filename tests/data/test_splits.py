"""Stratified and contiguous splits: disjoint, complete, proportional, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from lstmlite.data.splits import contiguous_parts, encode_labels, sort_labels, stratified_split
from lstmlite.data import DataError


def _labels(seed: int = 0) -> np.ndarray:
    # unbalanced classes, including one with a single member and one with two
    counts = {"a": 50, "b": 23, "c": 7, "d": 2, "e": 1}
    labels = np.array([k for k, n in counts.items() for _ in range(n)])
    return np.random.default_rng(seed).permutation(labels)


def test_parts_are_disjoint_and_cover_everything():
    labels = _labels()
    train, val, test = stratified_split(labels, [0.1, 0.2], seed=3)
    joined = np.concatenate([train, val, test])
    assert len(joined) == len(labels) and set(joined.tolist()) == set(range(len(labels)))
    # sizes are exactly round(fraction * N) here (83 rows → 8 and 17)
    assert (len(val), len(test)) == (8, 17)


def test_each_class_keeps_its_share_and_a_training_row():
    labels = _labels()
    train, val, test = stratified_split(labels, [0.1, 0.2], seed=1)
    for cls in np.unique(labels):
        n = int((labels == cls).sum())
        n_val, n_test = int((labels[val] == cls).sum()), int((labels[test] == cls).sum())
        assert abs(n_val - 0.1 * n) < 1.0 + 1e-9 and abs(n_test - 0.2 * n) < 1.0 + 1e-9
        assert (labels[train] == cls).sum() >= 1


def test_same_seed_same_indices_other_seed_other_indices():
    labels = _labels()
    a = stratified_split(labels, [0.2], seed=5)
    b = stratified_split(labels, [0.2], seed=5)
    c = stratified_split(labels, [0.2], seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_zero_fraction_gives_an_empty_part():
    train, val = stratified_split(_labels(), [0.0], seed=0)
    assert len(val) == 0 and len(train) == len(_labels())


def test_contiguous_parts():
    assert contiguous_parts(1000, 0.1, 0.1) == (800, 900)
    assert contiguous_parts(10, 0.25, 0.0) == (7, 10)  # 2.5 rounds half up to 3


def test_label_order_and_unknown_test_label():
    assert sort_labels(["10", "9", "1", "9"]) == ["1", "9", "10"]
    assert sort_labels(["b", "B", "a"]) == ["B", "a", "b"]
    assert encode_labels(["9", "10"], ["1", "9", "10"], where="f").tolist() == [1, 2]
    with pytest.raises(DataError, match=r"t\.csv: line 7: label 'x' appears in the test data but not in the training"):
        encode_labels(["1", "x"], ["1"], where="t.csv", rows=[3, 7])
