"""Stopping hopeless trials early, for a multi-objective study.

Optuna's pruners compare one value per trial, so they do not apply to a study with four
objectives. A trial here is judged on what is known about it before and during training:

* **Before training** its deployable bytes, RAM and step latency are measured on the
  untrained, compressed model (see :func:`lstmlite.search.trial.profile_model`). RAM
  (the Cortex-M4 RAM of the model's C export, :func:`lstmlite.search.objectives.ram_bytes`)
  depends on the architecture and the weights' form only; the file's bytes almost only (trained weights can
  round to more or fewer zero codes, which the file may store as a bitmask: a few bytes
  either way). A point more than :data:`SIZE_SLACK` over the size budget, or over the
  RAM budget, or clearly over the latency budget, cannot become feasible: it is not
  trained (:func:`over_budget`), and is recorded as an infeasible trial so the sampler
  learns where the budget lies.
* **During training** (multi-fidelity by epochs) its validation metric after epoch e is
  compared with the completed trials' metric after the same epoch: the trial is stopped
  when some completed trial was at least as small, as lean and as fast, better by
  ``margin`` at that epoch, and ended better by ``margin`` than this trial is now
  (:func:`dominated_at_epoch`). Such a trial is dominated at equal fidelity in every
  objective; its remaining epochs are the budget saved. Judging starts at half the
  epochs (:func:`first_check_epoch`): learning curves of large and small models cross
  early, and a validation split of a few dozen samples moves in steps of several points.

Example:
    >>> done = [{"trial": 3, "size_bytes": 900, "ram_bytes": 300, "latency_us": 1.0,
    ...          "val_epochs": {"5": 0.95}, "val_metric": 0.97, "feasible": True}]
    >>> me = {"size_bytes": 1400, "ram_bytes": 400, "latency_us": 1.2}
    >>> dominated_at_epoch(0.80, 5, me, done, higher=True)
    3
    >>> dominated_at_epoch(0.93, 5, me, done, higher=True) is None   # within the margin
    True
"""

from __future__ import annotations

from typing import Any, Iterable

from .objectives import BUDGET_KEYS

__all__ = ["over_budget", "dominated_at_epoch", "first_check_epoch", "MARGIN", "LATENCY_SLACK", "SIZE_SLACK"]

#: How much better (in the metric's own units) a completed trial must have been at the
#: same epoch, and at its end, before a running one is stopped: guards against noise.
MARGIN = 0.03
#: Latency is measured, so noisy: a completed trial counts as "as fast" up to 10 % slower.
LATENCY_SLACK = 1.10
#: The untrained model's file predicts the trained one's to a few bytes, not exactly: a
#: point is skipped only when its file is more than 5 % over the size budget.
SIZE_SLACK = 1.05


def over_budget(profile: dict[str, Any], budget: dict[str, float]) -> list[str]:
    """The budget items ``profile`` (bytes, µs, RAM of the untrained model) exceeds.

    Latency is left out when it is a MAC-count estimate (``latency_kind: "mac-model"``)
    or within :data:`LATENCY_SLACK` of the limit (a measured latency is noisy), the size
    when it is an estimate or within :data:`SIZE_SLACK` of the limit. RAM counts in
    either kind: the untrained model's figure is exactly the trained one's (weights do
    not change it), and an ``"estimated"`` one is what the trial's record and its budget
    constraint hold too.
    """
    over = []
    for name, limit in budget.items():
        key = BUDGET_KEYS[name]
        value = profile.get(key)
        if value is None:
            continue
        if name == "latency":
            if profile.get("latency_kind") != "measured" or value <= limit * LATENCY_SLACK:
                continue
        elif name == "size" and (profile.get("size_kind") != "lsl" or value <= limit * SIZE_SLACK):
            continue  # an estimate is not what the file will hold; near the limit, training decides
        if value > limit:
            over.append(f"{name} {value:g} > {limit:g}")
    return over


def first_check_epoch(epochs: int) -> int:
    """The first epoch at which a trial may be stopped: half of its epochs (≥ 2), so
    that every trial's early learning curve is seen before it is judged."""
    return max(2, epochs // 2)


def dominated_at_epoch(value: float, epoch: int, profile: dict[str, Any], completed: Iterable[dict[str, Any]],
                       higher: bool = True, margin: float = MARGIN) -> int | None:
    """The number of a completed trial that dominates this one at ``epoch``, or None.

    Args:
        value: this trial's validation metric after ``epoch``.
        profile: this trial's ``size_bytes``, ``ram_bytes``, ``latency_us`` (before training).
        completed: records of completed trials: ``trial``, ``size_bytes``, ``ram_bytes``,
            ``latency_us``, ``feasible``, ``val_metric`` (final) and ``val_epochs`` (epoch ->
            validation metric during training).
        higher: whether a higher metric is better.
    """
    for rec in completed:
        if not rec.get("feasible", True):
            continue
        theirs = rec.get("val_epochs", {}).get(str(epoch))
        if theirs is None:
            continue
        final = rec.get("val_metric", theirs)
        if higher:
            better = theirs >= value + margin and final >= value + margin
        else:
            better = theirs <= value - margin and final <= value - margin
        lean = (rec["size_bytes"] <= profile["size_bytes"] and rec["ram_bytes"] <= profile["ram_bytes"]
                and rec["latency_us"] <= profile["latency_us"] * LATENCY_SLACK)
        if better and lean:
            return int(rec["trial"])
    return None
