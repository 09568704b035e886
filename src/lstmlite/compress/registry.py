"""The one registry: config type → handler, plus the allow-lists used when loading.

Two allow-lists live here, both filled when the method packages are imported
(``import lstmlite.compress`` imports all of them):

* **config types** (``type_name`` → config class): the only types
  :func:`~lstmlite.compress.config.config_from_dict` will build;
* **parametrization kinds** (``kind`` → :class:`~lstmlite.compress.base.CompressionParametrization`
  subclass): the only classes :func:`~lstmlite.compress.api.restore_compression`
  will re-attach to a freshly built model.

A handler has the signature ``handler(model, config, filter) -> None`` where
``filter(fqn, module, param_name) -> bool`` (or None for the method's default) picks
the tensors; it changes ``model`` in place.

Example:
    >>> from dataclasses import dataclass
    >>> from lstmlite.compress.config import CompressionConfig
    >>> @dataclass
    ... class NoopConfig(CompressionConfig):
    ...     type_name = "noop_doc_example"
    >>> @register_handler(NoopConfig)
    ... def _noop(model, config, filter):
    ...     pass
    >>> get_handler(NoopConfig()) is _noop
    True
"""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

from torch import nn

from .config import CompressionConfig

__all__ = [
    "Filter", "Handler", "register_config", "register_handler", "get_handler", "registered_configs",
    "register_transform", "get_transform", "registered_transforms",
]

Filter = Callable[[str, nn.Module, str], bool]
Handler = Callable[[nn.Module, CompressionConfig, Optional[Filter]], None]

C = TypeVar("C", bound=type)

_CONFIGS: dict[str, type[CompressionConfig]] = {}
_HANDLERS: dict[type[CompressionConfig], Handler] = {}
_TRANSFORMS: dict[str, type] = {}


def register_config(config_cls: C) -> C:
    """Add a config class to the allow-list (by its ``type_name``). Usable as a decorator."""
    if not (isinstance(config_cls, type) and issubclass(config_cls, CompressionConfig)):
        raise TypeError(f"register_config expects a CompressionConfig subclass, got {config_cls!r}")
    name = config_cls.type_name
    if not name:
        raise TypeError(f"{config_cls.__name__} must set the class attribute type_name")
    other = _CONFIGS.get(name)
    if other is not None and other.__qualname__ != config_cls.__qualname__:
        raise ValueError(f"config type {name!r} is already registered by {other.__module__}.{other.__qualname__}")
    _CONFIGS[name] = config_cls
    return config_cls


def register_handler(config_cls: type[CompressionConfig]) -> Callable[[Handler], Handler]:
    """Decorator: ``@register_handler(MyConfig)`` over ``def handler(model, config, filter)``.

    Also puts ``config_cls`` on the allow-list of config types.
    """
    register_config(config_cls)

    def decorate(handler: Handler) -> Handler:
        _HANDLERS[config_cls] = handler
        return handler

    return decorate


def get_handler(config: CompressionConfig) -> Handler:
    """The handler for ``type(config)``; a clear error for an unregistered type."""
    if isinstance(config, type):
        raise TypeError(f"pass a config instance, e.g. {config.__name__}(...), not the class")
    if not isinstance(config, CompressionConfig):
        raise TypeError(f"expected a CompressionConfig, got {type(config).__name__}")
    handler = _HANDLERS.get(type(config))
    if handler is None:
        raise ValueError(
            f"no handler registered for {type(config).__name__}; known: {sorted(c.__name__ for c in _HANDLERS)}"
        )
    return handler


def registered_configs() -> dict[str, type[CompressionConfig]]:
    """A copy of the allow-list: ``type_name`` → config class."""
    return dict(_CONFIGS)


def register_transform(cls: C) -> C:
    """Add a parametrization class (with a unique class attribute ``kind``) to the
    allow-list that :func:`restore_compression` uses. Usable as a decorator."""
    kind = getattr(cls, "kind", "")
    if not kind:
        raise TypeError(f"{cls.__name__} must set the class attribute kind")
    other = _TRANSFORMS.get(kind)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise ValueError(f"parametrization kind {kind!r} is already registered by {other.__qualname__}")
    _TRANSFORMS[kind] = cls
    return cls


def get_transform(kind: str) -> type:
    """The registered parametrization class for ``kind``; ValueError when unknown."""
    if kind not in _TRANSFORMS:
        raise ValueError(f"unknown compression parametrization kind {kind!r}; known: {sorted(_TRANSFORMS)}")
    return _TRANSFORMS[kind]


def registered_transforms() -> dict[str, Any]:
    return dict(_TRANSFORMS)
