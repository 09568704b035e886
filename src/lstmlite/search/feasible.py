"""Refuse a search whose budget no model of the space can meet, before any trial.

A size or RAM budget below the smallest model the space can build would otherwise run
every trial only to report "no trial met the budget". The smallest models are found by
measuring (the same :func:`~lstmlite.search.trial.profile_model` the trials use, on
untrained models) every combination of the choices that change a model's bytes, each
range at the end that makes the model smaller. The RAM is the trials' own figure
(:func:`~lstmlite.search.objectives.ram_bytes`: the Cortex-M4 RAM of the model's C
export, or an estimate where there is none), and the refusal says which it was. Latency is not checked: it is measured
and noisy, and refusing a feasible budget on a slow run would be worse than searching.

Example:
    >>> from lstmlite.search.space import load_space
    >>> len(smallest_points(load_space("default"))) # cells x sparsity x weight bits
    8
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from .objectives import BudgetError
from .space import SearchSpace

__all__ = ["smallest_points", "check_feasible"]

log = logging.getLogger(__name__)

#: Keys whose larger values make a model larger (their ranges are taken at ``low``).
_GROWING = ("num_layers", "hidden_size", "embed_dim", "max_vocab")
#: Keys that change the deployable bytes in ways not monotone enough to guess: every choice
#: is tried. ``rank`` and ``proj_size`` are 0 for "none" (the full, largest matrices).
_SHAPING = ("cell", "bidirectional", "sparsity", "weight_bits", "rank", "proj_size", "pooling")
#: How a refusal names the RAM figure, by ``ram_kind``.
_RAM_KINDS = {"mcu-export": " of RAM in its C project on a Cortex-M4 (state, scratch and stack)",
              "estimated": " of RAM, estimated (no C export of it)"}
#: More combinations than this and the check is skipped (each costs a model build and an export).
MAX_POINTS = 64


def _candidates(name: str, spec: dict[str, Any]) -> list[Any]:
    if "choices" in spec:
        return list(spec["choices"]) if name in _SHAPING else [min(spec["choices"])]
    low, high = spec["low"], spec["high"]
    if name in ("rank", "proj_size"):
        # 0 means "not factored" / "no projection": 1 is the smallest factoring or projection
        return sorted({low, max(low, 1)})
    if name in ("sparsity",):
        return [low, high]
    return [low]


def smallest_points(space: SearchSpace) -> list[dict[str, Any]]:
    """The points among which the space's smallest model is (see the module doc)."""
    names = [n for n in space.params if n in _GROWING or n in _SHAPING]
    options = [_candidates(n, space.params[n]) for n in names]
    points = []
    for values in itertools.product(*options):
        point = {**space.fixed, **{n: s["low"] if "low" in s else s["choices"][0] for n, s in space.params.items()}}
        point.update(zip(names, values))
        points.append(point)
    return points


def check_feasible(space: SearchSpace, data_config: dict[str, Any], budget: dict[str, float], seed: int = 0) -> None:
    """Raise :class:`BudgetError` when even the smallest model of ``space`` exceeds the
    ``size`` or ``ram`` budget, with the smallest figure and what to change.

    Raises:
        BudgetError: e.g. "budget size=10 B is below the smallest model this space can
            build (2,305 B: cell=gru, hidden_size=8, ...); widen --budget or the space".
    """
    limits = {k: budget[k] for k in ("size", "ram") if k in budget}
    if not limits:
        return
    points = smallest_points(space)
    if len(points) > MAX_POINTS:
        log.info("budget pre-check skipped: %d combinations of size-changing choices", len(points))
        return
    import torch

    from ..nn.models import build_model
    from .trial import _resolve, build_config, profile_model

    best: dict[str, tuple[float, dict[str, Any], str]] = {}
    for point in points:
        config = build_config(point, data_config, seed)
        _, model_config, _ = _resolve(config)
        torch.manual_seed(seed)
        profile = profile_model(build_model(model_config), point)
        for key, field in (("size", "size_bytes"), ("ram", "ram_bytes")):
            if key in limits and (key not in best or profile[field] < best[key][0]):
                best[key] = (profile[field], point, profile.get(field.replace("_bytes", "_kind"), ""))
    for key, limit in limits.items():
        smallest, point, kind = best[key]
        if smallest > limit:
            shown = ", ".join(f"{k}={point[k]}" for k in space.params if k in _GROWING or k in _SHAPING)
            what = "" if key == "size" else _RAM_KINDS.get(kind, "")
            raise BudgetError(f"budget {key}={int(limit):,} B is below the smallest model this space can build "
                              f"({int(smallest):,} B{what}: {shown}); widen --budget or the space (--space)")
