"""lstmlite.importers: bring PyTorch, Keras, ONNX and TFLite recurrent models into lstmlite.

    import_torch(module_or_state_dict_or_file, arch=None, out=None)
    import_keras(path, out=None)            .keras (Keras 3) or legacy .h5 (h5py)
    import_onnx(path, out=None)             graphs with LSTM / GRU / RNN operators
    import_onnx_node(node, tensors)         one ONNX recurrent node → our layer, ONNX conventions
    import_tflite(path, out=None)           a float32 .tflite LSTM (fused UNIDIRECTIONAL_SEQUENCE_LSTM ops)
    read_tflite_lstm(path, kernel="micro")  a TFLite-quantized LSTM → TFLite-compatible integer
                                            parameters (docs/tflite-compat.md; not a run dir)

Each returns our model (``model.import_info`` says where it came from) and, with
``out``, writes a run dir. Frameworks are imported on first use.
"""

from __future__ import annotations

from typing import Any

from ._common import ModelImportError
from .layers import GRUResetBefore, SimpleRNN

__all__ = ["import_torch", "import_keras", "import_onnx", "import_onnx_node", "import_tflite", "read_tflite_lstm",
           "ModelImportError", "SimpleRNN", "GRUResetBefore"]

_LAZY = {"import_torch": "torch", "import_keras": "keras", "import_onnx": "onnx", "import_onnx_node": "onnx",
         "OnnxRecurrentNode": "onnx", "UnsupportedOnnxError": "onnx", "read_tflite_lstm": "tflite",
         "import_tflite": "tflite"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
