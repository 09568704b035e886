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
