"""Stratified and contiguous splits: disjoint, complete, proportional, deterministic."""

from __future__ import annotations

from collections import Counter

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


def _largest_remainder(counts: dict[str, int], fraction: float) -> dict[str, int]:
    """Hamilton's method written out: every class gets floor(fraction · n_c), and the
    round_half_up(fraction · N) − Σ floors rows left go one each to the classes with the
    largest fractional parts (ties: class order). Capacity never binds in the cases below."""
    n = sum(counts.values())
    want = int(np.floor(fraction * n + 0.5))
    quotas = {c: fraction * k for c, k in counts.items()}
    alloc = {c: int(np.floor(q)) for c, q in quotas.items()}
    by_remainder = sorted(counts, key=lambda c: (-(quotas[c] - np.floor(quotas[c])), c))
    for c in by_remainder[: want - sum(alloc.values())]:
        alloc[c] += 1
    return alloc


@pytest.mark.parametrize("counts, fraction", [
    ({"a": 3, "b": 7}, 0.2),            # remainders .6 / .4: the one extra row goes to a
    ({"a": 5, "b": 9, "c": 6}, 0.3),    # remainders .5 / .7 / .8: the two extras go to c and b
    ({"a": 5, "b": 5, "c": 10}, 0.1),   # a tie .5 / .5: class order gives it to a
])
def test_leftover_rows_go_to_the_largest_remainders(counts: dict[str, int], fraction: float) -> None:
    """Each class's part size is its largest-remainder share (the allocation the module doc
    promises), counted with Counter; catches leftover rows handed to the smallest
    remainders first, which every class still gets within one row of its share."""
    labels = np.random.default_rng(0).permutation([c for c, k in counts.items() for _ in range(k)])
    rest, part = stratified_split(labels, [fraction], seed=2)
    assert Counter(labels[part].tolist()) == Counter(_largest_remainder(counts, fraction))
    assert Counter(labels[rest].tolist()) + Counter(labels[part].tolist()) == Counter(counts)


@pytest.mark.parametrize("fractions", [[0.5, 0.45], [0.6, 0.3], [0.45, 0.5]])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_small_class_keeps_a_training_row_when_the_parts_want_nearly_all(fractions: list[float],
                                                                            seed: int) -> None:
    """A class of 3 beside a class of 20, with val + test asking for 90-95 % of the rows:
    the parts stay disjoint and complete, and each class keeps at least one row in the
    rest (Counter oracle). Catches a floor allocation capped at the class's remaining
    rows instead of those rows minus the one training row, which the later trimming of
    the largest class does not undo."""
    labels = np.array(["a"] * 3 + ["b"] * 20)
    parts = stratified_split(labels, fractions, seed=seed)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(labels)))
    rest = Counter(labels[parts[0]].tolist())
    assert rest["a"] >= 1 and rest["b"] >= 1


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


def test_label_order_and_unknown_test_label() -> None:
    """Integer labels (signed ones too) sort by value, others as text; a test label unknown
    to training is an error naming its line. Catches an integer pattern without the sign,
    which sorts -1 / -10 / 2 as text."""
    assert sort_labels(["10", "9", "1", "9"]) == ["1", "9", "10"]
    assert sort_labels(["2", "-1", "10", "-10", "+3"]) == ["-10", "-1", "2", "+3", "10"]
    assert sort_labels(["b", "B", "a"]) == ["B", "a", "b"]
    assert encode_labels(["9", "10"], ["1", "9", "10"], where="f").tolist() == [1, 2]
    with pytest.raises(DataError, match=r"t\.csv: line 7: label 'x' appears in the test data but not in the training"):
        encode_labels(["1", "x"], ["1"], where="t.csv", rows=[3, 7])


def test_unknown_label_without_row_numbers_names_its_one_based_row() -> None:
    """Without ``rows`` the error counts rows from 1: the third label is "row 3", and the
    ``row_word`` given is used only with ``rows``. Catches a zero-based count ("row 2")."""
    with pytest.raises(DataError, match=r"^u\.npz: row 3: label 'z' appears in the test data"):
        encode_labels(["a", "b", "z"], ["a", "b"], where="u.npz")
    with pytest.raises(DataError, match=r"^u\.tsv: row 12: label 'z'"):
        encode_labels(["z"], ["a"], where="u.tsv", rows=[12], row_word="row")
