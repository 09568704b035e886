"""What a deployed model expects of its raw inputs: the standardisation training applied.

Training standardises every real-valued input feature with the training split's mean and
std (docs/data.md), and a forecaster learns standardised targets, so the weights only
know standardised numbers. An exported file (``.lsl``, ONNX, a C project) holds the
weights; the statistics stay in the run dir's ``config.json`` (``stats``). Fed raw
sensor values, a deployed model answers without an error and wrongly, so every export
names this step, and :class:`Standardization` does it:

* :meth:`Standardization.inputs` -- raw features (..., F) → the model's inputs;
* :meth:`Standardization.forecast_units` -- a forecaster's outputs → the series' units.

The C project carries the same numbers in ``preprocess.h``
(:func:`lstmlite.export.c.preprocess.preprocess_header`).

Example:
    >>> s = Standardization(mean=(10.0, 0.0), std=(2.0, 1.0))
    >>> s.inputs(np.array([[12.0, 3.0]])).tolist()
    [[1.0, 3.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Standardization", "standardization_of"]


@dataclass(frozen=True)
class Standardization:
    """Per-feature ``(x - mean) / std`` of a run's inputs, and for a forecaster the
    target's ``mean`` / ``std`` (its outputs are ``(y - target_mean) / target_std``)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    target_mean: float | None = None
    target_std: float | None = None

    def inputs(self, raw: np.ndarray) -> np.ndarray:
        """Raw features (..., F) → what the model reads, float32 (..., F).

        >>> Standardization(mean=(1.0,), std=(4.0,)).inputs(np.array([[5.0], [1.0]])).ravel().tolist()
        [1.0, 0.0]
        """
        raw = np.asarray(raw)
        if raw.shape[-1:] != (len(self.mean),):
            raise ValueError(f"inputs of shape {raw.shape}: the last axis must hold the model's {len(self.mean)} "
                             f"features")
        return ((raw.astype(np.float64) - np.asarray(self.mean)) / np.asarray(self.std)).astype(np.float32)

    def forecast_units(self, outputs: np.ndarray) -> np.ndarray:
        """A forecaster's outputs → the series' own units (float64).

        >>> Standardization((0.0,), (1.0,), target_mean=100.0, target_std=10.0).forecast_units(np.array([0.5]))
        array([105.])
        """
        if self.target_mean is None or self.target_std is None:
            raise ValueError("forecast_units is for a forecaster's outputs; this model's outputs are not standardised")
        return np.asarray(outputs, np.float64) * self.target_std + self.target_mean

    def note(self, stats: str, apply: str, forecast: str) -> str:
        """One line for an export's output: what the caller does to its raw values.
        ``stats``: where the numbers are (a config.json); ``apply`` / ``forecast``: what
        applies them to inputs / turns a forecast into the series' units, in the
        artefact's own terms.

        >>> line = Standardization((0.0,), (1.0,)).note("run/config.json", "f(raw)", "g(y)")
        >>> line.startswith("inputs: the model reads standardised features"), line.endswith("apply them with f(raw)")
        (True, True)
        """
        line = (f"inputs: the model reads standardised features, (x - mean) / std per feature with the training "
                f"split's statistics ({stats} \"stats\"); raw values give wrong answers and no error: apply them "
                f"with {apply}")
        if self.target_mean is not None:
            line += f"; its forecasts are standardised too: {forecast} gives the series' units"
        return line


def standardization_of(run: Any) -> Standardization | None:
    """The standardisation a run's model was trained with, or None when its inputs are
    token ids or the run keeps no statistics (a model imported from another framework).

    Args:
        run: a run dir path, a loaded :class:`lstmlite.io.Run`, or a run's ``config.json``
            mapping. A model object alone carries no statistics: None.

    Example:
        >>> standardization_of({"stats": {"mean": [1.0], "std": [2.0]}})
        Standardization(mean=(1.0,), std=(2.0,), target_mean=None, target_std=None)
    """
    config: Any = None
    if isinstance(run, dict):
        config = run
    elif isinstance(run, (str, Path)):
        from ..io import CONFIG_FILE, read_json

        path = Path(run) / CONFIG_FILE
        if not path.is_file():
            return None
        config = read_json(path)
    elif isinstance(getattr(run, "config", None), dict) and hasattr(run, "model"):  # a loaded Run
        config = run.config
    if int(((config or {}).get("model") or {}).get("vocab_size") or 0) > 0:
        return None  # token ids: nothing to standardise
    stats = (config or {}).get("stats") or {}
    mean, std = stats.get("mean"), stats.get("std")
    if not isinstance(mean, list) or not isinstance(std, list) or len(mean) != len(std) or not mean:
        return None
    target = (stats.get("target_mean"), stats.get("target_std"))
    if (config or {}).get("task") != "forecast" or None in target:
        target = (None, None)
    return Standardization(tuple(float(v) for v in mean), tuple(float(v) for v in std),
                           None if target[0] is None else float(target[0]),
                           None if target[1] is None else float(target[1]))
