"""The search space: a small YAML file the user can edit (docs/search.md).

Format::

    params:                      # sampled per trial
      cell: {choices: [lstm, gru, fastgrnn, grouped_lstm]}
      hidden_size: {low: 8, high: 64, step: 8}
      lr: {low: 1e-3, high: 3e-2, log: true}
    fixed:                       # used as given
      epochs: 4

Example:
    >>> space = load_space("default")
    >>> sorted(space.params)[:2]
    ['bidirectional', 'cell']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .._text import one_line

__all__ = ["SearchSpace", "SpaceError", "load_space", "parse_space", "KNOWN_KEYS"]

#: Every parameter a space may name, with the Python type its values must have.
KNOWN_KEYS: dict[str, type | tuple[type, ...]] = {
    "cell": str, "num_layers": int, "hidden_size": int, "bidirectional": bool, "embed_dim": int,
    "proj_size": int, "rank": int, "sparsity": (int, float), "weight_bits": int, "qat": bool,
    "lr": (int, float), "epochs": int, "batch_size": int, "finetune_epochs": int,
    "pooling": str, "max_vocab": int,
}
CELLS = ("lstm", "gru", "fastgrnn", "grouped_lstm")
POOLINGS = ("last", "mean", "max")
#: The least value each numeric parameter takes (a layer of 0 units or a rate of 0 builds
#: or trains nothing); ``lr`` must be above its bound, the others at least theirs.
_LEAST = {"num_layers": 1, "hidden_size": 1, "embed_dim": 1, "epochs": 1, "batch_size": 1, "proj_size": 0,
          "rank": 0, "finetune_epochs": 0, "max_vocab": 3, "lr": 0}
_RANGE_KEYS = {"low", "high", "log", "step"}


class SpaceError(ValueError):
    """A search space file that does not follow the format (one-line message)."""


@dataclass
class SearchSpace:
    """``params``: name -> {"choices": [...]} or {"low", "high", "log", "step"};
    ``fixed``: name -> value."""

    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)

    def sample(self, trial: Any) -> dict[str, Any]:
        """One point: every param suggested through the Optuna ``trial``, plus ``fixed``."""
        point = dict(self.fixed)
        for name, spec in self.params.items():
            if "choices" in spec:
                point[name] = trial.suggest_categorical(name, spec["choices"])
            elif isinstance(spec["low"], int) and isinstance(spec["high"], int) and not spec.get("log_float"):
                point[name] = trial.suggest_int(name, spec["low"], spec["high"], step=spec.get("step", 1),
                                                log=spec.get("log", False))
            else:
                point[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                                  log=spec.get("log", False), step=spec.get("step"))
        return point

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "fixed": self.fixed}


def _check_value(name: str, value: Any) -> None:
    expected = KNOWN_KEYS[name]
    # bool is an int in Python; a bool where a number is expected is a typo.
    if isinstance(value, bool) and expected is not bool:
        raise SpaceError(f"search space: {name} must be {_type_name(expected)}, got {value!r}")
    if not isinstance(value, expected):
        raise SpaceError(f"search space: {name} must be {_type_name(expected)}, got {value!r}")
    if name == "cell" and value not in CELLS:
        raise SpaceError(f"search space: unknown cell {value!r}; known: {', '.join(CELLS)}")
    if name == "sparsity" and not 0 <= value < 1:
        raise SpaceError(f"search space: sparsity must be in [0, 1), got {value!r}")
    if name == "weight_bits" and value not in (4, 8, 32):
        raise SpaceError(f"search space: weight_bits must be 4, 8 or 32, got {value!r}")
    if name == "pooling" and value not in POOLINGS:
        raise SpaceError(f"search space: pooling must be last, mean or max, got {value!r}")
    if name == "lr" and not value > 0:
        raise SpaceError(f"search space: lr must be more than 0, got {value!r}")
    if name in _LEAST and name != "lr" and value < _LEAST[name]:
        raise SpaceError(f"search space: {name} must be at least {_LEAST[name]}"
                         f"{' (<pad>, <unk> and one word)' if name == 'max_vocab' else ''}, got {value!r}")


def _type_name(t: type | tuple[type, ...]) -> str:
    return "a number" if isinstance(t, tuple) else {str: "a string", int: "an integer", bool: "true/false"}[t]


def parse_space(raw: Any) -> SearchSpace:
    """Validate a loaded YAML mapping into a :class:`SearchSpace` (raises :class:`SpaceError`)."""
    if not isinstance(raw, dict):
        raise SpaceError("search space: the file must be a mapping with `params` and/or `fixed`")
    unknown = set(raw) - {"params", "fixed"}
    if unknown:
        raise SpaceError(f"search space: unknown top-level key(s) {sorted(unknown)}; use params and fixed")
    params, fixed = raw.get("params") or {}, raw.get("fixed") or {}
    if not isinstance(params, dict) or not isinstance(fixed, dict):
        raise SpaceError("search space: params and fixed must be mappings")
    for name in list(params) + list(fixed):
        if name not in KNOWN_KEYS:
            raise SpaceError(f"search space: unknown parameter {name!r}; known: {', '.join(sorted(KNOWN_KEYS))}")
    both = set(params) & set(fixed)
    if both:
        raise SpaceError(f"search space: {sorted(both)} are both searched and fixed")
    for name, value in fixed.items():
        _check_value(name, value)
    for name, spec in params.items():
        if not isinstance(spec, dict):
            raise SpaceError(f"search space: {name} must be {{choices: [...]}} or {{low: .., high: ..}}")
        if "choices" in spec:
            if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
                raise SpaceError(f"search space: {name}: `choices` must be a non-empty list and alone")
            for value in spec["choices"]:
                _check_value(name, value)
        else:
            extra = set(spec) - _RANGE_KEYS
            if extra or "low" not in spec or "high" not in spec:
                raise SpaceError(f"search space: {name}: a range needs low and high (and optionally log, step);"
                                 f" got keys {sorted(spec)}")
            _check_value(name, spec["low"])
            _check_value(name, spec["high"])
            if spec["low"] > spec["high"]:
                raise SpaceError(f"search space: {name}: low {spec['low']} is above high {spec['high']}")
            _check_range(name, spec)
    return SearchSpace(params=dict(params), fixed=dict(fixed))


def _check_range(name: str, spec: dict[str, Any]) -> None:
    """``step`` and ``log`` as Optuna samples them, refused here in one line rather than in
    every trial: a step above 0 (a whole number for a whole-number range) that divides
    high - low (Optuna would quietly lower high), not with ``log`` (Optuna takes one or the
    other), and ``log`` only over positive values."""
    step, log = spec.get("step"), spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"search space: {name}: log must be true or false, got {log!r}")
    if step is not None:
        whole = isinstance(spec["low"], int) and isinstance(spec["high"], int)
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0 or (whole and step != int(step)):
            raise SpaceError(f"search space: {name}: step must be a{' whole' if whole else ''} number above 0, "
                             f"got {step!r}")
        span = (spec["high"] - spec["low"]) / step
        if abs(span - round(span)) > 1e-9:
            raise SpaceError(f"search space: {name}: step {step} does not divide high - low "
                             f"({spec['high']} - {spec['low']}); Optuna would never sample {spec['high']}")
        if log:
            raise SpaceError(f"search space: {name}: give step or log, not both (Optuna samples one or the other)")
    if log and spec["low"] <= 0:
        raise SpaceError(f"search space: {name}: a log range needs low above 0, got {spec['low']}")


def load_space(source: str | Path | dict[str, Any] = "default") -> SearchSpace:
    """A space from a shipped name (``default``), a YAML file path, or a dict."""
    if isinstance(source, dict):
        return parse_space(source)
    path = Path(source)
    if not path.exists() and "/" not in str(source) and not str(source).endswith((".yaml", ".yml")):
        shipped = resources.files("lstmlite.search") / "spaces" / f"{source}.yaml"
        if not shipped.is_file():
            raise SpaceError(f"no search space file or shipped space named {source!r}")
        text = shipped.read_text()
    elif path.exists():
        text = path.read_text()
    else:
        raise SpaceError(f"search space file {source} does not exist")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpaceError(f"search space {source}: not valid YAML ({one_line(err)})") from None
    return parse_space(raw)
