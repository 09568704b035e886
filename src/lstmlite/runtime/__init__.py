"""lstmlite.runtime: the native CPU runtime (DESIGN decision 6).

A portable C99 core with AVX2, AVX-VNNI, AVX-512 and AVX-512 VNNI kernels chosen at run
time (``info()`` says which; ``LSTMLITE_ISA`` or ``set_isa`` forces one), reached
through a CPython extension built at install time. Whole-sequence and streaming
inference for LSTM, GRU and FastGRNN models (stacked, LSTM / GRU bidirectional in
sequence mode, with an embedding and a linear head); weights fp32, int8, int7 or int4
(weight-only), dense, bitmask- or block-sparse, or low-rank. It loads and runs; the
writer that turns PyTorch models into .lsl files is :mod:`lstmlite.export.lsl`.

Example:
    >>> import numpy as np, torch
    >>> from lstmlite import runtime
    >>> engine = runtime.Engine.from_torch(torch.nn.GRU(3, 6, batch_first=True), weights="int8")
    >>> engine.run(np.zeros((1, 4, 3), np.float32)).shape
    (1, 4, 6)
"""

from .engine import (ISAS, Engine, InputTypeError, RuntimeError_, StreamState, best_isa, has_vnni, info, isa, set_isa,
                     supported_isas)
from .integer import IntegerEngine
from .loading import load
from .tflite import TFLiteLSTM
from .lsl import LslFormatError, ModelSpec, QTensor, read_lsl

__all__ = [
    "Engine", "StreamState", "RuntimeError_", "InputTypeError", "isa", "set_isa", "best_isa", "has_vnni",
    "supported_isas", "info",
    "ISAS",
    "ModelSpec", "QTensor", "LslFormatError", "quantize_rows", "read_lsl", "write_lsl",
    "spec_from_module", "spec_from_state_dict", "load", "export_lsl", "spec_from_run", "IntegerEngine",
    "TFLiteLSTM",
]

# The writer (PyTorch models and run dirs -> .lsl) lives in lstmlite.export.lsl; its
# names stay importable from here, loaded on first use.
_WRITER = ("quantize_rows", "spec_from_module", "spec_from_state_dict", "write_lsl", "export_lsl", "spec_from_run")


def __getattr__(name: str):
    if name in _WRITER:
        from ..export import lsl as _writer

        return getattr(_writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
