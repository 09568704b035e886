"""Typed config values: every number in any YAML/JSON spelling, booleans only where
booleans belong, one clear error naming the key.

Configs reach us from YAML files, JSON files and ``--key=value`` overrides. YAML 1.1
reads ``1e-3`` as the *string* "1e-3" (it wants ``1.0e-3``) and JSON writes ``1000``
as ``1000.0`` after a round trip through some tools, so a config dataclass cannot
trust the Python type it is handed. :func:`coerce_fields` converts each value to its
field's annotated type before the dataclass's own range checks run:

* ``float``: int, float or a numeric string ("1e-3", "2E+5", ".5"); finite only.
* ``int``: an int, or a float / numeric string with a whole value ("1e3" -> 1000);
  2.5 is refused rather than truncated.
* ``bool``: ``true``/``false`` only (YAML and JSON booleans); ``1``, ``"yes"`` and
  ``"true"`` as a string are refused, so ``--train.epochs=true`` cannot become 1.
* ``str``: strings only; a number where a name belongs is refused (quote it).
* ``X | None``: None, or an X as above. Other annotations pass through unchanged.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Opt:
    ...     lr: float = 0.1
    ...     epochs: int = 1
    >>> coerce_fields(Opt, {"lr": "1e-3", "epochs": 1e2}, "train")
    {'lr': 0.001, 'epochs': 100}
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Callable, Union

__all__ = ["ConfigValueError", "coerce", "coerce_fields", "coerce_kwargs"]


class ConfigValueError(ValueError):
    """A config value of the wrong type; the message names the key and the fix."""


def _where(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def _number(value: Any) -> float | None:
    """The float a value spells, or None when it is not a number (bools are not)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int past float's range (YAML reads 400 digits as one): infinite
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        try:
            return float(value.strip().replace("_", ""))
        except ValueError:
            return None
    return None


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """``value`` converted to ``annotation`` (see the module doc); ``key`` names it in errors."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        concrete = [a for a in options if a is not type(None)]
        if len(concrete) == 1:
            return coerce(value, concrete[0], key)
        # e.g. hidden_size: int | Sequence[int]: a scalar goes to the first scalar type
        # that takes it; lists and mappings are left to the constructor.
        scalars = [a for a in concrete if a in (bool, int, float, str)]
        if not scalars or isinstance(value, (list, tuple, dict)):
            return value
        first_error: ConfigValueError | None = None
        for option in scalars:
            try:
                return coerce(value, option, key)
            except ConfigValueError as err:
                first_error = first_error or err
        raise first_error  # type: ignore[misc]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigValueError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = _number(value)
        if number is None or not math.isfinite(number):
            raise ConfigValueError(f"{key}: expected a whole number, got {value!r}")
        if number != int(number):
            raise ConfigValueError(f"{key}: expected a whole number, got {value!r} (not rounded for you)")
        return int(number)
    if annotation is float:
        number = _number(value)
        if number is None:
            raise ConfigValueError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigValueError(f"{key}: expected a finite number, got {value!r}")
        return number
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):  # the user wrote yes/no/on/off/true/false; "True" is not what they meant
            raise ConfigValueError(f"{key}: expected text, got {value!r} (YAML reads an unquoted yes, no, on, off, "
                                   f"true or false as a boolean: quote the word you meant, e.g. \"yes\")")
        raise ConfigValueError(f"{key}: expected text, got {value!r} (quote it in YAML: \"{value}\")")
    return value


def coerce_fields(cls: type, data: dict[str, Any], section: str = "") -> dict[str, Any]:
    """A copy of ``data`` with each value converted to the type of the dataclass
    ``cls``'s field of that name (keys ``cls`` does not define are left for the
    caller's unknown-key check)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: coerce(v, hints[k], _where(section, k)) if k in names and k in hints else v for k, v in data.items()}


def coerce_kwargs(funcs: list[Callable[..., Any]], data: dict[str, Any], section: str = "") -> dict[str, Any]:
    """As :func:`coerce_fields`, with the types of the keyword parameters of ``funcs``
    (e.g. a class's ``__init__`` and its base's); the first that annotates a key wins."""
    hints: dict[str, Any] = {}
    for func in funcs:
        for name, hint in typing.get_type_hints(func).items():
            hints.setdefault(name, hint)
    hints.pop("return", None)
    return {k: coerce(v, hints[k], _where(section, k)) if k in hints else v for k, v in data.items()}
