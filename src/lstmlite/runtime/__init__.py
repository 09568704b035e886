"""lstmlite.runtime: the native CPU runtime (DESIGN decision 6).

A portable C99 core with AVX2, AVX-VNNI, AVX-512 and AVX-512 VNNI kernels chosen at run
time (``info()`` says which; ``LSTMLITE_ISA`` or ``set_isa`` forces one), reached
through a CPython extension built at install time. Whole-sequence and streaming
inference for LSTM / GRU models (stacked, bidirectional in sequence mode, with an
embedding and a linear head), fp32 or int8 weight-only weights.

Example:
    >>> import numpy as np, torch
    >>> from lstmlite import runtime
    >>> engine = runtime.Engine.from_torch(torch.nn.GRU(3, 6, batch_first=True), weights="int8")
    >>> engine.run(np.zeros((1, 4, 3), np.float32)).shape
    (1, 4, 6)
"""

from .engine import ISAS, Engine, RuntimeError_, StreamState, best_isa, has_vnni, info, isa, set_isa, supported_isas
from .integer import IntegerEngine
from .loading import export_lsl, load, spec_from_run
from .lsl import LslFormatError, ModelSpec, QTensor, quantize_rows, read_lsl, spec_from_module, \
    spec_from_state_dict, write_lsl

__all__ = [
    "Engine", "StreamState", "RuntimeError_", "isa", "set_isa", "best_isa", "has_vnni", "supported_isas", "info",
    "ISAS",
    "ModelSpec", "QTensor", "LslFormatError", "quantize_rows", "read_lsl", "write_lsl",
    "spec_from_module", "spec_from_state_dict", "load", "export_lsl", "spec_from_run", "IntegerEngine",
]
