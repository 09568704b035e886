"""Gate orders of the frameworks we exchange weights with, and conversion between them.

A recurrent weight stacks one block of ``H`` rows per gate (TFLite's LSTM op keeps one
(H, I) tensor per gate instead; stacked in its operand order they are such a weight). The frameworks agree on
the maths but not on the order of the blocks:

=========  =================  =============
framework  LSTM               GRU
=========  =================  =============
PyTorch    i, f, g, o         r, z, n
ONNX       i, o, f, c (= g)   z, r, h (= n)
Keras      i, f, c, o         z, r, h
TFLite     i, f, c, o         (no fused op)
=========  =================  =============

We name the gates with one letter each (``g`` is the LSTM candidate, ``n`` the GRU
candidate; ONNX's ``c`` and ``h`` are written as ``g`` and ``n`` here) so an order is
a string, and :func:`reorder_gates` permutes blocks from one order to another.

Example:
    >>> import numpy as np
    >>> w = np.arange(8).reshape(4, 2)            # 4 gates x H=1 rows, 2 inputs
    >>> reorder_gates(w, TORCH_LSTM, ONNX_LSTM)[:, 0].tolist()   # i f g o -> i o f g
    [0, 6, 2, 4]
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

__all__ = [
    "TORCH_LSTM", "ONNX_LSTM", "KERAS_LSTM", "TFLITE_LSTM", "TORCH_GRU", "ONNX_GRU", "KERAS_GRU", "TORCH_RNN",
    "ONNX_RNN", "reorder_gates",
]

TORCH_LSTM = "ifgo"
ONNX_LSTM = "iofg"
KERAS_LSTM = "ifgo"
TFLITE_LSTM = "ifgo"  # operands input_to_{input,forget,cell,output}_weights, in that order
TORCH_GRU = "rzn"
ONNX_GRU = "zrn"
KERAS_GRU = "zrn"
TORCH_RNN = ONNX_RNN = "n"

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def reorder_gates(weight: ArrayT, source: str, target: str, axis: int = 0) -> ArrayT:
    """Permute the gate blocks of ``weight`` along ``axis`` from ``source`` to ``target`` order.

    Args:
        weight: a NumPy array or tensor whose ``axis`` has ``len(source) * H`` entries
            (e.g. (G*H, I) weights, (G*H,) biases, or Keras's (I, G*H) kernels with axis=1).
        source, target: gate orders, the same letters in two arrangements.

    Returns:
        The same kind of array with the blocks rearranged (a copy).
    """
    if sorted(source) != sorted(target):
        raise ValueError(f"gate orders {source!r} and {target!r} do not name the same gates")
    size = weight.shape[axis]
    if size % len(source):
        raise ValueError(f"axis {axis} has {size} entries, not a multiple of {len(source)} gates")
    hidden = size // len(source)
    order = [source.index(gate) for gate in target]
    index = np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in order])
    if isinstance(weight, torch.Tensor):
        return weight.index_select(axis, torch.as_tensor(index, device=weight.device))
    return np.take(weight, index, axis=axis)
