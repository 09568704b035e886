"""The TFLite-compatible form of the generated C (``--form tflite``).

A layer quantized by TensorFlow Lite (a :class:`~lstmlite.reference.tflite_int.TFLiteLSTMParams`,
e.g. from :func:`lstmlite.importers.tflite.read_tflite_lstm`) runs in the runtime's
``lsl_tflite.c``, which computes exactly what TensorFlow Lite Micro (``kernel="micro"``)
or desktop TFLite (``kernel="lite"``) computes: int8 (or 16x8: int16) activations, int8
weights, int16 cell state, TFLite's own multipliers, roundings and activation table.
``lsl_tflite.c`` needs only ``<stdint.h>`` and ``<stddef.h>``: no libm, no float.

The constants are the layer's as TFLite stores them: per gate (i, f, g, o) the (H, I)
input and (H, H) recurrent int8 weights row-major, the int32 (int8 model) or int64
(16x8) bias, and the ``lsl_tflite_params`` struct of multipliers and shifts in TFLite's
convention.

Example:
    >>> import numpy as np
    >>> from lstmlite.reference.tflite_int import TFLiteGate, TFLiteLSTMParams
    >>> rng = np.random.default_rng(0)
    >>> gate = lambda: TFLiteGate(rng.integers(-127, 128, (4, 3)), rng.integers(-127, 128, (4, 4)),
    ...                           np.zeros(4), 1 << 30, -3, 1 << 30, -3)
    >>> p = TFLiteLSTMParams(gate(), gate(), gate(), gate(), input_zero_point=-128, output_zero_point=0,
    ...                      cell_scale_power=-12, forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
    ...                      input_cell_multiplier=1 << 30, input_cell_shift=-17,
    ...                      output_multiplier=1 << 30, output_shift=-22)
    >>> c = tflite_model_c(p)
    >>> c.weight_bytes, c.state_bytes, c.work_bytes    # 4 x (12 + 16 + 4 x 4) + a 192-byte struct; h + c; 5 H int16
    (368, 12, 40)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...reference.tflite_int import GATES, TFLiteLSTMParams
from .carray import c_array

__all__ = ["TFLiteModelC", "tflite_model_c", "tflite_layout_note", "PARAMS_STRUCT_BYTES"]

#: sizeof(lsl_tflite_params) on a 32-bit Cortex-M (16 int32 fields + 4 gates of 4 pointers
#: and 4 int32), the const struct model.c holds.
PARAMS_STRUCT_BYTES = 16 * 4 + 4 * (4 * 4 + 4 * 4)


@dataclass
class TFLiteModelC:
    """What :func:`tflite_model_c` generated."""

    source: str
    weight_bytes: int   # every const array and the params struct
    state_bytes: int    # hidden (int8 or int16) + cell (int16), one sequence
    work_bytes: int     # LSL_TFLITE_SCRATCH_VALUES(H) int16
    input_size: int
    hidden_size: int
    activation_bits: int


def tflite_model_c(params: TFLiteLSTMParams) -> TFLiteModelC:
    """The constants and ``static const lsl_tflite_params model`` of one TFLite LSTM layer.

    Args:
        params: the layer; its ``kernel`` ("micro" or "lite") and ``rounding`` are kept.
    """
    p = params
    H, I = p.hidden_size, p.input_size
    bias_type = "int32_t" if p.activation_bits == 8 else "int64_t"
    parts: list[str] = []
    nbytes = PARAMS_STRUCT_BYTES
    gates = []
    for k, name in enumerate(GATES):
        g = p.gate(name)
        parts.append(c_array(f"g{k}_wx", g.input_weights, "int8_t"))
        parts.append(c_array(f"g{k}_wh", g.hidden_weights, "int8_t"))
        parts.append(c_array(f"g{k}_b", g.bias, bias_type))
        nbytes += g.input_weights.size + g.hidden_weights.size + H * (4 if bias_type == "int32_t" else 8)
        b32, b64 = (f"g{k}_b", "NULL") if bias_type == "int32_t" else ("NULL", f"g{k}_b")
        gates.append(f"        {{g{k}_wx, g{k}_wh, {b32}, {b64}, {int(g.input_multiplier)}, {int(g.input_shift)}, "
                     f"{int(g.hidden_multiplier)}, {int(g.hidden_shift)}}}")
    kernel = "LSL_TFLITE_KERNEL_LITE" if p.kernel == "lite" else "LSL_TFLITE_KERNEL_MICRO"
    parts.append(
        "/* TFLite's quantization of the layer (lsl_tflite.h documents every field), gates i, f, g, o */\n"
        "static const lsl_tflite_params model = {\n"
        f"    {I}, {H}, {p.activation_bits}, /* input size, hidden size, activation bits */\n"
        f"    {int(p.input_zero_point)}, {int(p.output_zero_point)}, {int(p.hidden_zero_point)}, "
        "/* zero points: input, output (= hidden state), hidden */\n"
        f"    {int(p.cell_scale_power)}, /* cell state scale 2^p */\n"
        f"    {int(p.forget_cell_multiplier)}, {int(p.forget_cell_shift)}, "
        f"{int(p.input_cell_multiplier)}, {int(p.input_cell_shift)}, "
        f"{int(p.output_multiplier)}, {int(p.output_shift)}, /* f*c, i*g, o*tanh(c) */\n"
        f"    {int(p.cell_clip)}, {1 if p.rounding == 'single' else 0}, {kernel}, "
        "/* cell clip, single rounding, kernel */\n"
        "    {\n" + ",\n".join(gates) + "\n    }\n};")
    return TFLiteModelC(source="\n\n".join(parts), weight_bytes=nbytes,
                        state_bytes=H * (p.activation_bits // 8) + 2 * H, work_bytes=2 * 5 * H,
                        input_size=I, hidden_size=H, activation_bits=p.activation_bits)


def tflite_layout_note(info: dict[str, Any], prefix: str = "") -> str:
    """How one sequence of a TFLite op's input tensor is fed to the project (a C comment
    when ``prefix`` is ``" * "``): the op's ``time_major`` says how a batch of sequences
    lies in its tensor, which a one-sequence, one-step-at-a-time API does not read."""
    shape = info.get("tflite_input_shape")
    dims = f" = {tuple(shape)}" if shape else ""
    text = ["Feeding: one sequence, step by step. lstmlite_model_step's x holds one step's",
            "LSTMLITE_MODEL_INPUT_SIZE codes; lstmlite_model_run's x holds a sequence's steps one after",
            "another (x[t * LSTMLITE_MODEL_INPUT_SIZE + i]); out after step t is that step's h."]
    if info.get("time_major"):
        text += [f"The .tflite op is time-major: its input tensor is (T, B, I){dims}, so sequence b",
                 "is input[:, b, :] (gather it; a batch of B runs as B sequences) and its output at",
                 "step t is output[t][b][:]."]
    elif info.get("time_major") is False:
        text += [f"The .tflite op is batch-major: its input tensor is (B, T, I){dims}, so sequence b",
                 "is input[b] (a batch of B runs as B sequences) and its output at step t is output[b][t][:]."]
    if prefix.strip() == "*":
        return "/* " + f"\n{prefix}".join(text) + " */"
    return "\n".join(prefix + line for line in text)
