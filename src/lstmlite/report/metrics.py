"""Numbers the report shows, computed from predictions and run files (no plotting).

* :func:`confusion_matrix` and :func:`per_class_accuracy` (recall per class);
* :func:`pareto_front`: which runs no other run beats on both size and metric;
* :func:`layer_rows`: per stored tensor, sparsity, bits, rank and bytes;
* :func:`bench_cases_for`: the cases of a ``lstmlite bench --json`` file that time a
  run's architecture.

Example:
    >>> import numpy as np
    >>> cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3)
    >>> cm.tolist()
    [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    >>> per_class_accuracy(cm).tolist()
    [0.5, 1.0, 1.0]
    >>> pareto_front([(100, 0.9), (50, 0.8), (120, 0.85)], higher_is_better=True)
    [1, 0]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..train.metrics import HIGHER_IS_BETTER as _TRAIN_HIGHER_IS_BETTER

__all__ = ["confusion_matrix", "per_class_accuracy", "pareto_front", "layer_rows", "bench_cases_for",
           "latency_unit", "HIGHER_IS_BETTER"]

#: Metrics where larger is better; the others (perplexity, bits, errors) are losses. The
#: trainer's own set, so a run's plot agrees with how its epochs were chosen (a seq2seq
#: run's exact_match is a score, not a loss).
HIGHER_IS_BETTER = _TRAIN_HIGHER_IS_BETTER


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class, column = predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Fraction of each true class predicted correctly (NaN for a class with no rows)."""
    totals = cm.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


def pareto_front(points: Sequence[tuple[float, float]], higher_is_better: bool = True) -> list[int]:
    """Indices of the (size, metric) points no other point dominates, by size.

    A point is dominated when another is no larger and no worse, and strictly better
    in one of the two.
    """
    sign = 1.0 if higher_is_better else -1.0
    front = []
    for i, (size_i, metric_i) in enumerate(points):
        dominated = False
        for j, (size_j, metric_j) in enumerate(points):
            if j == i:
                continue
            no_worse = size_j <= size_i and sign * metric_j >= sign * metric_i
            better = size_j < size_i or sign * metric_j > sign * metric_i
            if no_worse and better:
                dominated = True
                break
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda k: points[k][0])


def layer_rows(model: Any) -> list[dict[str, Any]]:
    """Per stored tensor: name, shape, sparsity, bits, rank, bytes (the compression
    summary's storage view) -- what each compression step did to each tensor."""
    from ..compress import summary

    return [{k: row[k] for k in ("name", "shape", "sparsity", "bits", "rank", "bytes", "transforms")}
            for row in summary(model)]


def _rnn_sizes(model_config: dict[str, Any]) -> tuple[int, int] | None:
    hidden = model_config.get("hidden_size")
    if isinstance(hidden, list):
        if len(set(hidden)) != 1:
            return None
        hidden = hidden[0]
    width = model_config.get("embed_dim") or model_config.get("input_size")
    if not isinstance(hidden, int) or not width:
        return None
    return int(width), int(hidden)


def latency_unit(case: dict[str, Any]) -> str:
    """What a bench case's ``median_us`` counts: ``"µs per step"`` for a step-mode case
    (bench divides its time by T) or ``"µs per sequence (T=100)"`` for a sequence-mode one
    (one call of T steps; ``"µs per sequence"`` where T is not recorded). Cases of
    different units are not comparable, so the report never ranks them together.

    Example:
        >>> latency_unit({"mode": "step", "seq_len": 100}), latency_unit({"seq_len": 100})
        ('µs per step', 'µs per sequence (T=100)')
    """
    if case.get("mode", "sequence") == "step":
        return "µs per step"
    t = case.get("seq_len")
    return "µs per sequence" + (f" (T={t})" if t is not None else "")


def bench_cases_for(bench: dict[str, Any], model_config: dict[str, Any]) -> list[dict[str, Any]]:
    """The cases of a bench JSON that time this architecture: same input and hidden size,
    and the same cell and layer count where the case records them.

    ``lstmlite bench RUN`` times the run's recurrent layers on every engine; its cases
    carry ``input_size``, ``hidden_size``, ``cell`` and ``num_layers``, which is what ties
    them to a run here. bench times one direction, so a bidirectional run has no cases.
    """
    sizes = _rnn_sizes(model_config)
    if sizes is None or model_config.get("bidirectional"):
        return []
    cell, layers = str(model_config.get("cell", "lstm")), int(model_config.get("num_layers", 1))
    return [case for case in bench.get("cases", [])
            if (case.get("input_size"), case.get("hidden_size")) == sizes and "median_us" in case
            and str(case.get("cell", cell)) == cell and int(case.get("num_layers", layers)) == layers]
