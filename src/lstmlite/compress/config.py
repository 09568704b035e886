"""Compression configs: validated dataclasses, saved as versioned JSON.

Every compression method has one config class (DESIGN decision 2, as torchao does
it). A config

* is a ``@dataclass`` subclass of :class:`CompressionConfig` that validates its
  fields in ``__post_init__`` (raising a clear ``ValueError``);
* names itself with the class attributes ``type_name`` (``"magnitude_prune"``,
  ``"int8_weight"``, …) and ``version`` (bumped when its fields change meaning);
* serialises with :meth:`CompressionConfig.to_dict` to
  ``{"type": type_name, "version": version, "data": {field: value}}``;
* is read back with :func:`config_from_dict`, which accepts only the types in the
  registry's allow-list (:mod:`lstmlite.compress.registry`) and fails loudly on an
  unknown type, a version it cannot read, or unknown / missing keys. Nothing is
  ever ``eval``-ed or unpickled.

Example:
    >>> from dataclasses import dataclass
    >>> from lstmlite.compress.registry import register_config
    >>> @register_config
    ... @dataclass
    ... class ToyConfig(CompressionConfig):
    ...     type_name = "toy_doc_example"
    ...     strength: float = 0.5
    ...     def __post_init__(self):
    ...         if not 0 <= self.strength <= 1:
    ...             raise ValueError("strength must be in [0, 1]")
    >>> d = ToyConfig(0.25).to_dict()
    >>> d
    {'type': 'toy_doc_example', 'version': 1, 'data': {'strength': 0.25}}
    >>> config_from_dict(d) == ToyConfig(0.25)
    True
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

__all__ = ["CompressionConfig", "config_from_dict"]


def _jsonable(value: Any) -> Any:
    """Tuples become lists, nested containers are converted; other values pass."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@dataclasses.dataclass
class CompressionConfig:
    """Base of every compression config.

    Subclasses are dataclasses; they set ``type_name`` (unique, stable: it is what
    run dirs and recipes store) and ``version``, and validate in ``__post_init__``.
    Fields must be JSON values (numbers, strings, bools, None, lists/tuples, dicts).
    A subclass whose fields hold tuples should convert lists back to tuples in
    ``__post_init__`` (JSON has no tuples). A subclass that changes the meaning of
    its fields bumps ``version`` and may define ``migrate(version, data) -> data``
    (a classmethod) to read older versions; without it an old version is refused.
    """

    type_name: ClassVar[str] = ""
    version: ClassVar[int] = 1

    def to_dict(self) -> dict[str, Any]:
        """``{"type": type_name, "version": version, "data": {field: value}}`` (JSON-safe)."""
        if not self.type_name:
            raise TypeError(f"{type(self).__name__} does not set type_name")
        data = {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"type": self.type_name, "version": int(self.version), "data": data}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "CompressionConfig":
        """Build from the ``data`` part of :meth:`to_dict`; unknown keys are an error."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.type_name}: 'data' must be a JSON object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"{cls.type_name}: unknown key(s) {unknown}; known: {sorted(fields)}")
        missing = sorted(
            name for name, f in fields.items()
            if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        if missing:
            raise ValueError(f"{cls.type_name}: missing key(s) {missing}")
        from ..typed import coerce_fields

        return cls(**coerce_fields(cls, data, cls.type_name))


def config_from_dict(d: dict[str, Any]) -> CompressionConfig:
    """Rebuild a config from :meth:`CompressionConfig.to_dict` output.

    Only registered config types are accepted (the allow-list in
    :mod:`lstmlite.compress.registry`; importing :mod:`lstmlite.compress` registers
    every built-in method).

    Raises:
        ValueError: not a ``{"type", "version", "data"}`` object, an unknown type, an
            unsupported version, unknown or missing keys, or invalid values.
    """
    from .registry import registered_configs  # late: registry imports this module

    if not isinstance(d, dict):
        raise ValueError(f"a compression config must be a JSON object, got {type(d).__name__}")
    extra = sorted(set(d) - {"type", "version", "data"})
    if extra or "type" not in d:
        raise ValueError(
            f"a compression config is {{'type', 'version', 'data'}}; got keys {sorted(d)}"
        )
    known = registered_configs()
    type_name = d["type"]
    if type_name not in known:
        raise ValueError(f"unknown compression config type {type_name!r}; known: {sorted(known)}")
    cls = known[type_name]
    version = d.get("version")
    data = d.get("data", {})
    if isinstance(version, bool):  # True == 1 in Python, so it would pass as version 1
        raise ValueError(f"compression config {type_name!r}: version must be a whole number, got {version!r}")
    if version != cls.version:
        migrate = getattr(cls, "migrate", None)
        if not isinstance(version, int) or migrate is None or version > cls.version:
            raise ValueError(
                f"{type_name}: config version {version!r} is not supported (this lstmlite reads version {cls.version})"
            )
        data = migrate(version, dict(data))
    return cls.from_data(dict(data))
