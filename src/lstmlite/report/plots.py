"""The report's figures, drawn with matplotlib (Agg backend) and returned as PNG bytes.

Every function takes plain numbers and returns ``bytes`` (a PNG image), so the HTML
writer can inline it and ``lstmlite explain`` can write it to a file.

Example:
    >>> png = pareto_plot([("base", 10000, 0.95), ("int8", 3000, 0.94)], "accuracy")
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: files only (must precede pyplot)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from .metrics import HIGHER_IS_BETTER, latency_unit, pareto_front  # noqa: E402

__all__ = ["to_png", "pareto_plot", "curves_plot", "confusion_plot", "class_delta_plot", "latency_plot",
           "heatmap_plot", "gates_plot", "saliency_plot", "tokens_plot"]

DPI = 96


def to_png(fig: Any) -> bytes:
    """Render a figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def pareto_plot(points: Sequence[tuple[str, float, float]], metric_name: str) -> bytes:
    """Metric against exported bytes (log scale), the Pareto front joined by a line.

    ``points``: (run name, size in bytes, metric) per run.
    """
    return to_png(_pareto_figure(points, metric_name))


def _pareto_figure(points: Sequence[tuple[str, float, float]], metric_name: str) -> Any:
    """The figure of :func:`pareto_plot`, apart so tests can read its axes and lines."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    sizes = [p[1] for p in points]
    values = [p[2] for p in points]
    front = pareto_front(list(zip(sizes, values)), metric_name in HIGHER_IS_BETTER)
    on_front = set(front)
    for i, (name, size, value) in enumerate(points):
        ax.scatter([size], [value], s=50, color="C1" if i in on_front else "C0", zorder=3)
        ax.annotate(name, (size, value), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if len(front) > 1:
        ax.plot([sizes[i] for i in front], [values[i] for i in front], color="C1", lw=1, zorder=2,
                label="Pareto front")
        ax.legend(loc="best", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("exported bytes (log scale)")
    ax.set_ylabel(f"test {metric_name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{metric_name} vs size" + (" (higher is better)" if metric_name in HIGHER_IS_BETTER
                                             else " (lower is better)"))
    return fig


def curves_plot(histories: Sequence[tuple[str, list[dict[str, Any]]]], metric_name: str) -> bytes:
    """Training loss and validation metric per epoch, one line per run (and phase)."""
    return to_png(_curves_figure(histories, metric_name))


def _curves_figure(histories: Sequence[tuple[str, list[dict[str, Any]]]], metric_name: str) -> Any:
    """The figure of :func:`curves_plot`, apart so tests can read its lines."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    for index, (name, history) in enumerate(histories):
        if not history:
            continue
        xs = np.arange(1, len(history) + 1)
        colour = f"C{index % 10}"
        loss = [h.get("train_loss", np.nan) for h in history]
        val = [h.get(f"val_{metric_name}", np.nan) for h in history]
        left.plot(xs, loss, color=colour, label=name)
        right.plot(xs, val, color=colour, label=name)
        if any("step" in h for h in history):  # a recipe: mark where each step starts
            starts = [i + 1 for i, h in enumerate(history) if i == 0 or h.get("step") != history[i - 1].get("step")]
            for start in starts[1:]:
                for ax in (left, right):
                    ax.axvline(start - 0.5, color=colour, ls=":", lw=0.8)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel("epoch (recipe epochs counted in order)")
    left.set_ylabel("training loss")
    right.set_xlabel("epoch (recipe epochs counted in order)")
    right.set_ylabel(f"validation {metric_name}")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    return fig


def confusion_plot(cm: np.ndarray, class_names: Sequence[str], title: str) -> bytes:
    """A confusion matrix as an annotated heatmap (rows: true class)."""
    return to_png(_confusion_figure(cm, class_names, title))


def _confusion_figure(cm: np.ndarray, class_names: Sequence[str], title: str) -> Any:
    """The figure of :func:`confusion_plot`, apart so tests can read its cells and labels."""
    n = cm.shape[0]
    side = max(3.2, min(9.0, 0.45 * n + 1.8))
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    labels = [str(c)[:12] for c in class_names] if len(class_names) == n else [str(i) for i in range(n)]
    ax.set_xticks(range(n), labels, rotation=90 if n > 6 else 0, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        threshold = cm.max() / 2 if cm.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > threshold else "black")
    ax.set_title(title, fontsize=10)
    return fig


def class_delta_plot(before: np.ndarray, after: np.ndarray, class_names: Sequence[str], title: str) -> bytes:
    """Per-class accuracy change (after − before) as bars: red where compression hurt."""
    return to_png(_class_delta_figure(before, after, class_names, title))


def _class_delta_figure(before: np.ndarray, after: np.ndarray, class_names: Sequence[str], title: str) -> Any:
    """The figure of :func:`class_delta_plot`, apart so tests can read its bars."""
    delta = np.nan_to_num(np.asarray(after) - np.asarray(before))
    n = len(delta)
    fig, ax = plt.subplots(figsize=(max(4.0, min(12.0, 0.5 * n + 2)), 3.2))
    colours = ["#c0392b" if d < 0 else "#27ae60" for d in delta]
    ax.bar(range(n), delta * 100, color=colours)
    labels = [str(c)[:12] for c in class_names] if len(class_names) == n else [str(i) for i in range(n)]
    ax.set_xticks(range(n), labels, rotation=90 if n > 8 else 0, fontsize=8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("accuracy change (points)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def latency_plot(cases: Sequence[dict[str, Any]], title: str) -> bytes:
    """Median latency per engine (p90 as a whisker), one panel per unit: step-mode cases
    (µs per step) apart from sequence-mode ones (µs per call of T steps, one panel per T),
    each panel ranked fastest first."""
    return to_png(_latency_figure(cases, title))


def _latency_figure(cases: Sequence[dict[str, Any]], title: str) -> Any:
    """The figure of :func:`latency_plot`, apart so tests can read its bars and labels.

    A per-step and a per-sequence median on one axis would rank a step (a T-th of a call)
    ahead of every call, so each unit gets its own panel, in the order first given.
    """
    panels: dict[str, list[dict[str, Any]]] = {}
    for c in cases:
        panels.setdefault(latency_unit(c), []).append(c)
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(7.0, max(2.0, 0.35 * len(cases) + 1.0 + 0.8 * (len(panels) - 1))))
    for ax, (unit, group) in zip(axes[:, 0], panels.items()):
        labels = [str(c["engine"]) for c in group]
        medians = np.array([float(c["median_us"]) for c in group])
        p90 = np.array([float(c.get("p90_us", c["median_us"])) for c in group])
        order = np.argsort(medians, kind="stable")
        ys = np.arange(len(group))
        ax.barh(ys, medians[order], color=["C2" if labels[i].startswith("lstmlite") else "C7" for i in order])
        # the p90 whisker drawn apart: barh's own xerr warns for a single bar (matplotlib/numpy)
        ax.errorbar(medians[order], ys, xerr=np.vstack([np.zeros(len(group)), np.maximum(p90 - medians, 0)[order]]),
                    fmt="none", ecolor="black", capsize=3)
        ax.set_yticks(ys, [labels[i] for i in order], fontsize=8)
        ax.set_xlabel(f"median {unit} (whisker: p90)")
        ax.set_title(f"{title}: {unit.removeprefix('µs ')}" if len(panels) > 1 else title, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def heatmap_plot(values: np.ndarray, title: str, xlabel: str, ylabel: str, cmap: str = "viridis",
                 vmin: float | None = None, vmax: float | None = None, xticklabels: Sequence[str] | None = None,
                 colorbar_label: str = "") -> bytes:
    """A (rows, time) heatmap: gates over time or saliency per step and feature."""
    return to_png(_heatmap_figure(values, title, xlabel, ylabel, cmap, vmin, vmax, xticklabels, colorbar_label))


def _heatmap_figure(values: np.ndarray, title: str, xlabel: str, ylabel: str, cmap: str = "viridis",
                    vmin: float | None = None, vmax: float | None = None, xticklabels: Sequence[str] | None = None,
                    colorbar_label: str = "") -> Any:
    """The figure of :func:`heatmap_plot`, apart so tests can read its cells and labels."""
    rows, cols = values.shape
    fig, ax = plt.subplots(figsize=(max(4.0, min(14.0, 0.3 * cols + 2.5)), max(2.2, min(8.0, 0.12 * rows + 1.6))))
    image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if colorbar_label:
        bar.set_label(colorbar_label, fontsize=8)
    if xticklabels is not None:
        ax.set_xticks(range(cols), [str(t)[:10] for t in xticklabels], rotation=90, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return fig


def gates_plot(gates: dict[str, np.ndarray], title: str, xticklabels: Sequence[str] | None = None) -> bytes:
    """One heatmap per gate, (units × time), on a fixed colour scale (σ: 0..1, tanh: −1..1)."""
    return to_png(_gates_figure(gates, title, xticklabels))


def _gates_figure(gates: dict[str, np.ndarray], title: str, xticklabels: Sequence[str] | None = None) -> Any:
    """The figure of :func:`gates_plot`, apart so tests can read its panels and cells."""
    n = len(gates)
    first = next(iter(gates.values()))
    steps, units = first.shape
    width = max(5.0, min(14.0, 0.28 * steps + 3.0))
    height = max(1.6, min(4.0, 0.05 * units + 1.2))
    fig, axes = plt.subplots(n, 1, figsize=(width, height * n), squeeze=False, sharex=True, layout="constrained")
    for ax, (name, values) in zip(axes[:, 0], gates.items()):
        tanh_like = "candidate" in name
        image = ax.imshow(values.T, aspect="auto", interpolation="nearest",
                          cmap="RdBu_r" if tanh_like else "viridis", vmin=-1 if tanh_like else 0, vmax=1)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
        ax.set_ylabel("unit", fontsize=8)
        ax.set_title(name, fontsize=9)
    bottom = axes[-1, 0]
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    if xticklabels is not None:
        bottom.set_xticks(range(steps), [str(t)[:10] for t in xticklabels], rotation=90, fontsize=7)
    bottom.set_xlabel("time step")
    fig.suptitle(title, fontsize=10)
    return fig


def saliency_plot(values: np.ndarray, title: str, xticklabels: Sequence[str] | None = None,
                  feature_label: str = "input feature") -> bytes:
    """Attributions per step (bars, summed over features) above a (feature × time) heatmap."""
    return to_png(_saliency_figure(values, title, xticklabels, feature_label))


def _saliency_figure(values: np.ndarray, title: str, xticklabels: Sequence[str] | None = None,
                     feature_label: str = "input feature") -> Any:
    """The figure of :func:`saliency_plot`, apart so tests can read its bars and cells."""
    steps, features = values.shape
    width = max(5.0, min(14.0, 0.28 * steps + 3.0))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(width, 5.0), sharex=True, layout="constrained",
                                      gridspec_kw={"height_ratios": [1, 2]})
    per_step = values.sum(axis=1)
    top.bar(range(steps), per_step, color=["#d62728" if v >= 0 else "#1f77b4" for v in per_step])
    top.axhline(0, color="black", lw=0.6)
    top.set_ylabel("per step", fontsize=8)
    top.grid(True, axis="y", alpha=0.3)
    top.set_title(title, fontsize=10)
    scale = float(np.max(np.abs(values))) or 1.0
    image = bottom.imshow(values.T, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-scale, vmax=scale)
    fig.colorbar(image, ax=[top, bottom], fraction=0.03, pad=0.02, label="attribution")
    bottom.set_ylabel(feature_label, fontsize=8)
    bottom.set_xlabel("time step")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    if xticklabels is not None:
        bottom.set_xticks(range(steps), [str(t)[:10] for t in xticklabels], rotation=90, fontsize=7)
    return fig


def tokens_plot(tokens: Sequence[str], scores: np.ndarray, title: str) -> bytes:
    """Tokens written in reading order on backgrounds coloured by score (red +, blue −)."""
    return to_png(_tokens_figure(tokens, scores, title))


def _tokens_figure(tokens: Sequence[str], scores: np.ndarray, title: str) -> Any:
    """The figure of :func:`tokens_plot`, apart so tests can read its texts and colours."""
    scale = float(np.max(np.abs(scores))) or 1.0
    per_line = 12
    lines = max(1, (len(tokens) + per_line - 1) // per_line)
    fig, ax = plt.subplots(figsize=(10.0, 0.5 * lines + 0.8))
    ax.set_axis_off()
    ax.set_xlim(0, per_line)
    ax.set_ylim(lines, -0.5)
    cmap = plt.get_cmap("RdBu_r")
    for k, (token, score) in enumerate(zip(tokens, scores)):
        colour = cmap(0.5 + 0.5 * float(score) / scale)
        ax.text(k % per_line + 0.05, k // per_line + 0.3, str(token)[:14], fontsize=9,
                bbox={"facecolor": colour, "edgecolor": "none", "pad": 2})
    ax.set_title(title, fontsize=10)
    return fig
