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

from .._text import one_line
from .objectives import BudgetError
from .space import SearchSpace, SpaceError

__all__ = ["smallest_points", "smallest_models", "unmet_limits", "check_feasible", "check_buildable"]

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


def smallest_models(space: SearchSpace, data_config: dict[str, Any], keys: tuple[str, ...] = ("size", "ram"),
                    seed: int = 0) -> dict[str, tuple[float, dict[str, Any], str]] | None:
    """``{key: (figure, point, kind)}``: for each of ``keys`` (``size``: .lsl bytes,
    ``ram``: RAM bytes), the smallest figure among the space's models (the module doc), the
    point that has it and the figure's kind (``size_kind`` / ``ram_kind``). None when the
    space has more than :data:`MAX_POINTS` combinations to measure."""
    points = smallest_points(space)
    if len(points) > MAX_POINTS:
        log.info("budget pre-check skipped: %d combinations of size-changing choices", len(points))
        return None
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
            if key in keys and (key not in best or profile[field] < best[key][0]):
                best[key] = (profile[field], point, profile.get(field.replace("_bytes", "_kind"), ""))
    return best


def shown_point(space: SearchSpace, point: dict[str, Any]) -> str:
    """``cell=gru, hidden_size=8, ...``: the size-changing values of ``point`` that the space searches."""
    return ", ".join(f"{k}={point[k]}" for k in space.params if k in _GROWING or k in _SHAPING)


def unmet_limits(space: SearchSpace, data_config: dict[str, Any], budget: dict[str, float],
                 seed: int = 0) -> dict[str, tuple[float, dict[str, Any], str]]:
    """The ``size`` / ``ram`` limits of ``budget`` that even the smallest model of
    ``space`` exceeds, in the budget's order: ``{key: (figure, point, kind)}`` as
    :func:`smallest_models` gives them. Empty when every limit has a model within it, or
    when the space has too many combinations to measure."""
    limits = {k: budget[k] for k in ("size", "ram") if k in budget}
    best = smallest_models(space, data_config, tuple(limits), seed) if limits else None
    if best is None:
        return {}
    return {key: best[key] for key, limit in limits.items() if best[key][0] > limit}


def check_feasible(space: SearchSpace, data_config: dict[str, Any], budget: dict[str, float], seed: int = 0) -> None:
    """Raise :class:`BudgetError` when even the smallest model of ``space`` exceeds the
    ``size`` or ``ram`` budget, with the smallest figure and what to change.

    Raises:
        BudgetError: e.g. "budget size=10 B is below the smallest model this space can
            build (2,305 B: cell=gru, hidden_size=8, ...); widen --budget or the space".
    """
    for key, (smallest, point, kind) in unmet_limits(space, data_config, budget, seed).items():
        what = "" if key == "size" else _RAM_KINDS.get(kind, "")
        raise BudgetError(f"budget {key}={int(budget[key]):,} B is below the smallest model this space can build "
                          f"({int(smallest):,} B{what}: {shown_point(space, point)}); widen --budget or the space "
                          "(--space)")


#: Keys that shape the model a trial builds and compresses (a value of one of them may not
#: fit the task: pooling is a classifier's, a language model cannot be bidirectional).
_BUILDING = ("cell", "num_layers", "hidden_size", "bidirectional", "embed_dim", "proj_size", "pooling",
             "rank", "sparsity", "weight_bits", "qat")


def _build_error(point: dict[str, Any], data_config: dict[str, Any], seed: int) -> str | None:
    """Why ``point``'s model cannot be built and compressed for the data (the builder's
    one line), or None when it can."""
    import torch

    from ..nn.models import build_model
    from .trial import _compress, _resolve, build_config

    _, model_config, _ = _resolve(build_config(point, data_config, seed))  # a data error is the data's
    try:
        torch.manual_seed(seed)
        _compress(build_model(model_config), point)
    except ValueError as err:
        # the builder lists every option it knows; the point's own names are what to change
        return one_line(err, limit=None).split("; known:")[0].replace("'rnn_options'", "'proj_size'")
    return None


def check_buildable(space: SearchSpace, data_config: dict[str, Any], seed: int = 0) -> None:
    """Raise :class:`SpaceError` when a value of the space builds no model for this data
    whatever the other parameters are (a pooling for a forecaster, a bidirectional
    language model, a grouped LSTM on an odd input width), before any trial: each such
    point would only fail. Each value of a model-shaping parameter is tried with the
    others at their first choice (or low end); a combination that fails while each of
    its values builds with the others (FastGRNN and bidirectional) is left to its trial."""
    names = [n for n in space.params if n in _BUILDING]
    base = {**space.fixed, **{n: s["choices"][0] if "choices" in s else s["low"] for n, s in space.params.items()}}
    from ..data import DataSpec
    from .trial import _resolve, build_config

    task = DataSpec.from_dict(data_config).task
    data, _, _ = _resolve(build_config(base, data_config, seed))
    if "max_vocab" in space.params and task in ("lm", "seq2seq"):
        # a classifier's or tagger's labels stay whole; a language model's or seq2seq model's
        # targets are the same tokens, cut to <unk> with the input
        raise SpaceError(f"search space: max_vocab is not searched for {task}: the words it drops become <unk> "
                         "in the targets too (fewer words, easier targets, a better score); set it under fixed, "
                         "or take it out of the space (--space)")
    unused = [n for n in ("embed_dim", "max_vocab") if n in space.params and data.vocab is None]
    if unused:
        # features, not tokens: the trials would differ in a number their models do not hold
        raise SpaceError(f"search space: {unused[0]} is for token input, and the {task} data's input is "
                         "features (no vocabulary, no embedding); take it out of the space (--space)")
    base_error = _build_error(base, data_config, seed)
    failing: list[tuple[str, Any, str]] = []
    for name in names:
        spec = space.params[name]
        values = spec["choices"] if "choices" in spec else [spec["low"], spec["high"]]
        for value in values:
            if value == base[name]:
                continue
            error = _build_error({**base, name: value}, data_config, seed)
            if error is not None and base_error is None:
                failing.append((name, value, error))
            elif error is None and base_error is not None:
                failing.append((name, base[name], base_error))  # the first value is the one that does not fit
    if base_error is not None and not failing:
        # no value of any one parameter builds: a parameter that fits no value (pooling
        # for a forecaster) is found by leaving it out
        for name in names + [n for n in space.fixed if n in _BUILDING]:
            if _build_error({k: v for k, v in base.items() if k != name}, data_config, seed) is None:
                raise SpaceError(f"search space: {name} builds no model for the {task} data ({base_error}); "
                                 "take it out of the space (--space)")
        raise SpaceError(f"search space: its points build no model for the {task} data ({base_error}); "
                         "change the space (--space)")
    if failing:
        name, value, error = failing[0]
        raise SpaceError(f"search space: {name}={value!r} builds no model for the {task} data ({error}); "
                         "take it out of the space (--space)")
