"""Quantization: post-training int8/int4 weights, calibration, QAT, the integer form.

Importing this package registers its handlers (``weight_quant``, ``fake_quant``) with
:mod:`lstmlite.compress.registry`.
"""

from .calibrate import calibrate, effective_params, trace_recurrent
from .config import FakeQuantConfig, WeightQuantConfig
from .integer import integer_params_from_model
from .ops import channel_scales, dequantize, fake_quantize, pack_int4, quantize_codes, unpack_int4
from .transform import (
    FakeQuantWeight, QuantizedTensor, QuantizedWeight, freeze_quantization, quantized_tensors, stored_bytes,
)

__all__ = [
    "WeightQuantConfig", "FakeQuantConfig", "QuantizedWeight", "FakeQuantWeight", "QuantizedTensor",
    "quantized_tensors", "freeze_quantization", "stored_bytes", "channel_scales", "quantize_codes", "dequantize",
    "fake_quantize", "pack_int4", "unpack_int4", "calibrate", "trace_recurrent", "effective_params",
    "integer_params_from_model",
]
