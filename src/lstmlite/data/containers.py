"""The arrays a task consumes: :class:`Split` and :class:`TaskData`.

Shapes (N rows, T steps, F features, H horizon):

=============================  ==========================  ====================
task / input                   ``x``                       ``y``
=============================  ==========================  ====================
classify, real features        (N, T, F) float32, 0-pad    (N,) int64 class
classify, text                 (N, T) int64 ids, 0-pad     (N,) int64 class
lm                             (N, T) int64 tokens         (N, T) int64 next
forecast                       (N, T, F) float32 (normed)  (N, H) float32
tag                            (N, T) int64 ids, 0-pad     (N, T) int64, -1 pad
ctc (speech)                   (N, T, F) float32 frames    (N, S) int64 chars, -1 pad
=============================  ==========================  ====================

``lengths`` (N,) int64 counts the valid steps of each row (T everywhere when rows have
a fixed length). Forecast splits also carry ``naive`` (N, H), the seasonal-naive
forecast in the units of ``y``.

Example:
    >>> import numpy as np
    >>> s = Split(np.zeros((2, 3, 1), np.float32), np.array([0, 1]), np.array([3, 2]))
    >>> len(s), s.summary()["length"]
    (2, {'min': 2, 'mean': 2.5, 'max': 3})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .spec import DataSpec
    from .vocab import Vocabulary

__all__ = ["Split", "TaskData"]


@dataclass
class Split:
    """One split (train, val or test) of a task; see the module doc for shapes."""

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray
    naive: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.x)
        if len(self.y) != n or len(self.lengths) != n or (self.naive is not None and len(self.naive) != n):
            raise ValueError(
                f"split arrays disagree on the row count: x {self.x.shape}, y {self.y.shape}, "
                f"lengths {self.lengths.shape}" + ("" if self.naive is None else f", naive {self.naive.shape}")
            )

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> Split:
        """The rows ``index`` (an int array or boolean mask) as a new split."""
        return Split(
            self.x[index], self.y[index], self.lengths[index], None if self.naive is None else self.naive[index]
        )

    def summary(self, class_names: list[str] | None = None) -> dict[str, Any]:
        """Row count, shapes, length stats and (given class names) class counts."""
        out: dict[str, Any] = {"n": len(self), "x_shape": list(self.x.shape), "y_shape": list(self.y.shape)}
        if len(self):
            out["length"] = {
                "min": int(self.lengths.min()),
                "mean": round(float(self.lengths.mean()), 3),
                "max": int(self.lengths.max()),
            }
        if class_names:
            # tag / ctc: y holds a label per step (padded with -1): count the labels used
            labels = self.y[self.y >= 0] if self.y.ndim > 1 else self.y
            counts = np.bincount(labels, minlength=len(class_names)) if len(self) else np.zeros(len(class_names), int)
            out["class_counts"] = {name: int(c) for name, c in zip(class_names, counts)}
        return out


@dataclass
class TaskData:
    """A task's three splits plus what the model and the run dir need to know.

    Attributes:
        name: the built-in name, or the path the user gave.
        task: ``"classify"`` | ``"lm"`` | ``"forecast"`` | ``"tag"`` | ``"ctc"``.
        train, val, test: the splits.
        input_size: features per step; 0 when the input is token ids.
        n_classes: classes (classify), labels (tag), blank + characters (ctc), else 0.
        class_names: class index → label (classify, tag; ctc: ``"<blank>"`` then the
            characters), else ``[]``.
        vocab: the vocabulary for token input (text classify, lm), else ``None``.
        spec: the resolved spec that rebuilds exactly this data.
        stats: JSON-serialisable normalisation facts computed on TRAIN only:
            ``mean``/``std`` per feature; forecast adds ``season``, ``horizon``,
            ``target_mean``/``target_std`` (to report errors in original units).
    """

    name: str
    task: str
    train: Split
    val: Split
    test: Split
    input_size: int
    n_classes: int
    class_names: list[str]
    vocab: Vocabulary | None
    spec: DataSpec
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        """``len(vocab)``, or 0 without a vocabulary."""
        return 0 if self.vocab is None else len(self.vocab)

    @property
    def splits(self) -> dict[str, Split]:
        """``{"train": …, "val": …, "test": …}``."""
        return {"train": self.train, "val": self.val, "test": self.test}

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        """Forecast targets/predictions back to the series' original units."""
        if self.task != "forecast":
            raise ValueError("denormalize applies to forecast data only")
        return np.asarray(y, np.float64) * self.stats["target_std"] + self.stats["target_mean"]

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable description (what ``lstmlite data show`` prints)."""
        out: dict[str, Any] = {
            "name": self.name,
            "task": self.task,
            "input": "tokens" if self.vocab is not None else "features",
            "input_size": self.input_size,
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "vocab_size": self.vocab_size,
            "splits": {k: s.summary(self.class_names) for k, s in self.splits.items()},
            "spec": self.spec.to_dict(),
        }
        if self.task == "forecast":
            out["stats"] = dict(self.stats)
        return out
