"""lstmlite.export: deployable artefacts from models and run dirs.

ONNX (:func:`export_onnx`, standard LSTM/GRU/RNN operators) needs the ``onnx`` extra
and is imported on first use, so ``import lstmlite.export`` costs nothing without it.
:func:`export_c` writes a dependency-free C99 project for a microcontroller
(:mod:`lstmlite.export.c`, docs/mcu.md). :func:`standardization_of` gives the input
statistics a run's exported model needs applied to raw values
(:mod:`lstmlite.export.preprocessing`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_onnx", "check_onnx", "OnnxStream", "export_c", "standardization_of", "Standardization"]


def __getattr__(name: str) -> Any:
    if name in ("export_onnx", "check_onnx", "build_onnx_model", "OnnxStream"):
        from . import onnx as _onnx

        return getattr(_onnx, name)
    if name in ("standardization_of", "Standardization"):
        from . import preprocessing

        return getattr(preprocessing, name)
    if name == "export_c":
        from .c import export_c

        return export_c
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
