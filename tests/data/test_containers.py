"""Split and TaskData summaries (lstmlite.data.containers)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from lstmlite.data import Split


@pytest.mark.parametrize("y", [
    np.array([0, 2, 0, 1, 0]),                                    # classify: a label per row
    np.array([[0, 0, 1, -1], [2, 0, -1, -1], [1, 1, 1, 0]]),      # tag / ctc: a label per step, -1 padding
], ids=["per-row", "per-step"])
def test_class_counts_count_every_label_and_no_padding(y: np.ndarray) -> None:
    """``summary(class_names)["class_counts"]`` equals a Counter of the non-padding labels,
    class 0 included. Catches a per-step count that drops label 0 along with the -1 padding."""
    split = Split(np.zeros((len(y), 4, 1), np.float32), y, np.full(len(y), 4))
    expected = Counter(v for v in y.ravel().tolist() if v >= 0)
    counts = split.summary(["a", "b", "c"])["class_counts"]
    assert counts == {name: expected[k] for k, name in enumerate(["a", "b", "c"])}


def test_subset_takes_the_same_rows_of_every_array_naive_included() -> None:
    """``subset`` picks rows 2 and 0 (index) or rows 0 and 2 (mask) of x, y, lengths and the
    forecast's naive baseline alike (each array's row k holds k, checked by hand). Catches
    naive left whole, which then belongs to other rows than y."""
    import numpy as np

    from lstmlite.data import Split

    k = np.arange(3)
    split = Split(np.repeat(k, 4).reshape(3, 2, 2).astype(np.float32), k[:, None] * np.ones((1, 2)),
                  k + 1, naive=k[:, None] * np.ones((1, 2)) + 10)
    for index, rows in ((np.array([2, 0]), [2, 0]), (np.array([True, False, True]), [0, 2])):
        part = split.subset(index)
        assert part.x[:, 0, 0].tolist() == rows and part.y[:, 0].tolist() == rows
        assert part.lengths.tolist() == [r + 1 for r in rows] and part.naive[:, 0].tolist() == [r + 10 for r in rows]
