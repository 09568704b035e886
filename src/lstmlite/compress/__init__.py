"""lstmlite.compress: one API for every compression method (DESIGN decisions 2–4).

    compress_(model, config, filter=None) -> model     apply a config in place
    finalize(model)      bake the parametrizations in
    undo(model)          restore the originals
    summary(model)       per tensor: shape, sparsity, bits, rank, bytes
    size_bytes(model)    deployable bytes
    compression_state(model) / restore_compression(model, state)   save / load

Importing this package imports every method package, so that the registry (config
type → handler, and the allow-lists used when loading) is complete.

Example:
    >>> import torch
    >>> from lstmlite.nn import SequenceClassifier
    >>> from lstmlite.compress import compress_, MagnitudePruneConfig, size_bytes
    >>> model = SequenceClassifier(input_size=4, hidden_size=16, n_classes=3)
    >>> dense = size_bytes(model)
    >>> _ = compress_(model, MagnitudePruneConfig(sparsity=0.9))
    >>> size_bytes(model) < dense
    True
"""

from __future__ import annotations

import importlib
import logging

from .api import (
    compress_, compression_state, finalize, format_summary, restore_compression, size_bytes, summary, undo,
)
from .base import CompressionParametrization
from .config import CompressionConfig, config_from_dict
from .registry import get_handler, register_config, register_handler, register_transform, registered_configs
from .size import Storage

__all__ = [
    "compress_", "finalize", "undo", "summary", "format_summary", "size_bytes",
    "compression_state", "restore_compression",
    "CompressionConfig", "config_from_dict", "CompressionParametrization", "Storage",
    "register_handler", "register_config", "register_transform", "get_handler", "registered_configs",
]

log = logging.getLogger(__name__)

# Method packages register their handlers on import. Each exports its public names
# through its own __all__, re-exported here. A package that is not written yet
# (parallel development) is skipped; any other import error is real and raised.
_METHODS = ("prune", "lowrank", "quantize", "distill", "embedding")
for _name in _METHODS:
    try:
        _module = importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _err:
        if _err.name != f"{__name__}.{_name}":
            raise
        log.debug("compression method package %s is not present", _name)
        continue
    for _export in getattr(_module, "__all__", ()):
        globals()[_export] = getattr(_module, _export)
        __all__.append(_export)
del _name
