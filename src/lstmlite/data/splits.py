"""Deterministic splits and label encoding.

:func:`stratified_split` carves validation/test parts out of a labelled set so each
class keeps its share (largest-remainder allocation, so the part sizes are exactly
``round(fraction · N)``), every class keeps at least one training example, and the same
seed gives the same indices. :func:`contiguous_parts` and :func:`chronological_regions`
split streams and series in time order, without shuffling.

Example:
    >>> import numpy as np
    >>> labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    >>> train, val = stratified_split(labels, [0.2], seed=0)
    >>> len(train), len(val), sorted(labels[val].tolist())
    (8, 2, [0, 1])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .errors import DataError

__all__ = ["stratified_split", "contiguous_parts", "sort_labels", "encode_labels", "round_half_up",
           "check_known_labels"]

_INT_LABEL = re.compile(r"^[+-]?\d+$")


def round_half_up(value: float) -> int:
    """``floor(value + 0.5)``: Python's ``round`` rounds halves to even, which surprises."""
    return int(np.floor(value + 0.5))


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split row indices into ``[rest, part_1, …]`` with ``fractions`` of every class.

    Args:
        labels: (N,) class labels (any comparable dtype).
        fractions: the share of all N rows each extra part gets (e.g. ``[val, test]``).
        seed: seeds ``np.random.default_rng``; same seed → same indices.

    Returns:
        ``len(fractions) + 1`` sorted int64 index arrays, disjoint, covering ``range(N)``;
        part ``i`` has ``round_half_up(fractions[i] · N)`` rows unless classes are too
        small (each class keeps one row in ``rest``).
    """
    labels = np.asarray(labels)
    n = len(labels)
    classes, inverse = np.unique(labels, return_inverse=True)
    rng = np.random.default_rng(seed)
    # one permutation per class, drawn in sorted class order → reproducible
    members = [rng.permutation(np.flatnonzero(inverse == c)) for c in range(len(classes))]
    sizes = np.array([len(m) for m in members])
    taken = np.zeros(len(classes), dtype=np.int64)
    parts: list[np.ndarray] = []
    for fraction in fractions:
        want = min(round_half_up(fraction * n), int((sizes - 1 - taken).clip(min=0).sum()))
        quota = fraction * sizes
        alloc = np.minimum(np.floor(quota).astype(np.int64), (sizes - 1 - taken).clip(min=0))
        # hand out what is left by largest remainder (ties: class order), within capacity
        order = np.lexsort((np.arange(len(classes)), -(quota - np.floor(quota))))
        while alloc.sum() < want:
            progressed = False
            for c in order:
                if alloc.sum() >= want:
                    break
                if taken[c] + alloc[c] < sizes[c] - 1:
                    alloc[c] += 1
                    progressed = True
            if not progressed:
                break
        while alloc.sum() > want:  # floors can exceed a rounded-down total only by rounding
            c = int(np.argmax(alloc))
            alloc[c] -= 1
        part = [members[c][taken[c] : taken[c] + alloc[c]] for c in range(len(classes))]
        taken += alloc
        parts.append(np.sort(np.concatenate(part)).astype(np.int64) if part else np.zeros(0, np.int64))
    rest = [members[c][taken[c] :] for c in range(len(classes))]
    rest_idx = np.sort(np.concatenate(rest)).astype(np.int64) if rest else np.zeros(0, np.int64)
    return [rest_idx, *parts]


def contiguous_parts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Boundaries ``(train_end, val_end)`` splitting ``range(n)`` into train | val | test in order."""
    n_test = round_half_up(test_fraction * n)
    n_val = round_half_up(val_fraction * n)
    return n - n_val - n_test, n - n_test


def sort_labels(labels: Sequence[str]) -> list[str]:
    """Distinct labels in class-index order: numeric order when all are integers, else text order.

    Example:
        >>> sort_labels(["10", "2", "1", "2"]), sort_labels(["b", "a"])
        (['1', '2', '10'], ['a', 'b'])
    """
    distinct = set(labels)
    if distinct and all(_INT_LABEL.match(s) for s in distinct):
        return sorted(distinct, key=lambda s: (int(s), s))
    return sorted(distinct)


def encode_labels(
    labels: Sequence[str],
    class_names: Sequence[str],
    *,
    where: str,
    rows: Sequence[int] | None = None,
    row_word: str = "line",
) -> np.ndarray:
    """Labels → (N,) int64 class indices; a label outside ``class_names`` is a :class:`DataError`.

    Args:
        labels: the labels to encode (strings).
        class_names: the training classes, in index order.
        where: the file (or data set) named in the error message.
        rows: the line/row number of each label, for the error message.
        row_word: ``"line"`` or ``"row"`` in that message.
    """
    index = {name: i for i, name in enumerate(class_names)}
    out = np.empty(len(labels), dtype=np.int64)
    for k, label in enumerate(labels):
        i = index.get(label)
        if i is None:
            at = f"{row_word} {rows[k]}" if rows is not None else f"row {k + 1}"
            raise DataError(
                f"{where}: {at}: label {label!r} appears in the test data but not in the training data"
            )
        out[k] = i
    return out


def check_known_labels(where: str, labels: Sequence[str], class_names: Sequence[str]) -> None:
    """Refuse labels outside a trained run's ``class_names`` (data read in a run's terms).

    Example:
        >>> check_known_labels("u.csv", ["neg", "neutral"], ["neg", "pos"])
        Traceback (most recent call last):
        ...
        lstmlite.data.errors.DataError: u.csv: labels ['neutral'] were not seen when the run was trained; \
evaluate on data labelled with the run's classes (neg, pos)
    """
    unseen = sorted(set(labels) - set(class_names))
    if unseen:
        shown = ", ".join(map(str, class_names[:5])) + (", ..." if len(class_names) > 5 else "")
        raise DataError(f"{where}: labels {unseen[:5]} were not seen when the run was trained; evaluate on "
                        f"data labelled with the run's classes ({shown})")
