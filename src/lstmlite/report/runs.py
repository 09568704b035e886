"""Everything the report needs about one run dir, gathered once.

:func:`gather` reads a run dir (config, metrics, history, recipe, the model), measures
the exported ``.lsl`` size and MACs/step with :mod:`lstmlite.export.size`, and for a
classifier predicts the test split (for the confusion matrix and per-class accuracy).

Example:
    >>> info = gather("runs/jv")                   # doctest: +SKIP
    >>> info.name, info.metric_name, info.size_bytes  # doctest: +SKIP
    ('jv', 'accuracy', 12345)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ReportRun", "gather", "link_parents", "run_data", "check_outside_runs"]

log = logging.getLogger(__name__)


@dataclass
class ReportRun:
    """One run as the report shows it (see :func:`gather`)."""

    path: Path
    name: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    recipe: dict[str, Any] | None
    model: Any
    size_bytes: int
    size_basis: str
    macs_per_step: int
    tensors: list[dict[str, Any]] = field(default_factory=list)  # exported .lsl rows
    class_names: list[str] = field(default_factory=list)
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    parent: "ReportRun | None" = None
    bench: list[dict[str, Any]] = field(default_factory=list)  # bench cases of this architecture
    bench_source: str = ""  # the file(s) they came from; each case's own is its "source"

    @property
    def metric_name(self) -> str:
        return str(self.metrics.get("metric_name") or "metric")  # an imported run records None

    @property
    def metric(self) -> float | None:
        value = self.metrics.get("metric")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def source_run(self) -> str | None:
        """The run this one was compressed from, as recorded (config ``source_run``)."""
        value = self.config.get("source_run") or self.metrics.get("source_run")
        return str(value) if value else None


def run_data(run: Any, cache: dict[str, Any] | None = None) -> Any:
    """The run's data (:func:`lstmlite.train.load_run_data`), loaded once per data spec
    when a ``cache`` dict is passed (a report on a run and its compressions)."""
    import json

    from ..train import load_run_data

    if cache is None:
        return load_run_data(run)
    key = json.dumps(run.config.get("data"), sort_keys=True, default=str)
    if key not in cache:
        cache[key] = load_run_data(run)
    return cache[key]


def _predict(run: Any, cache: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(y_true, y_pred) on the test split for a classifier, else None."""
    from ..train import predict

    if run.config.get("task") != "classify" or "data" not in run.config:
        return None
    try:
        data = run_data(run, cache)
    except Exception as err:  # noqa: BLE001 - the report still shows what it can
        log.warning("%s: cannot load its data (%s); no confusion matrix", run.path, err)
        return None
    if len(data.test.y) == 0:  # trained with test_fraction=0: its metric is null too
        log.info("%s: its data has no test split; no confusion matrix or per-class change", run.path)
        return None
    logits = predict(run.model, data, data.test)
    return np.asarray(data.test.y), logits.argmax(-1)


def gather(path: str | Path, name: str | None = None, predictions: bool = True,
           data_cache: dict[str, Any] | None = None) -> ReportRun:
    """Read one run dir for the report (the model is rebuilt and measured here).

    ``data_cache``: see :func:`run_data`.
    """
    from ..export.size import account
    from ..io import load_run, read_json

    path = Path(path)
    run = load_run(path)
    recipe = read_json(path / "recipe.json") if (path / "recipe.json").exists() else None
    deployed = account(run.model)
    pairs = _predict(run, data_cache) if predictions else None
    class_names = [str(c) for c in run.config.get("class_names") or []]
    return ReportRun(
        path=path, name=name or path.resolve().name, config=run.config, metrics=run.metrics,
        history=list(run.history or []), recipe=recipe, model=run.model, size_bytes=deployed.size_bytes,
        size_basis=deployed.basis, macs_per_step=deployed.macs_per_step, tensors=deployed.tensors,
        class_names=class_names, y_true=None if pairs is None else pairs[0],
        y_pred=None if pairs is None else pairs[1])


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def link_parents(runs: list[ReportRun], load_missing: bool = True, data_cache: dict[str, Any] | None = None
                 ) -> None:
    """Set each compressed run's ``parent``: the run it names as ``source_run``.

    A parent among ``runs`` is used as is; otherwise, when ``load_missing`` and the
    recorded path still holds a run dir (relative paths are tried from the current
    folder and from the child's folder), it is gathered too.
    """
    for run in runs:
        source = run.source_run
        if not source:
            continue
        candidates = [Path(source), run.path.parent / Path(source).name]
        match = next((other for other in runs for c in candidates
                      if other is not run and _same_dir(other.path, c)), None)
        if match is None and load_missing:
            found = next((c for c in candidates if (c / "config.json").exists()), None)
            if found is not None:
                try:
                    match = gather(found, data_cache=data_cache)
                except Exception as err:  # noqa: BLE001
                    log.warning("%s: its source run %s cannot be read (%s)", run.path, found, err)
        run.parent = match


def check_outside_runs(out: Path, runs: list[Path]) -> None:
    """Refuse to write ``out`` into a run dir: a run dir holds only what lstmlite's
    stages write (see :mod:`lstmlite.io`), and is never edited in place."""
    target = out.resolve()
    for run in runs:
        root = Path(run).resolve()
        if target == root or root in target.parents:
            raise ValueError(f"{out}: inside the run dir {run}; write the report or explanation elsewhere "
                             "(run dirs are never edited in place)")
