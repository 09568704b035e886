"""lstmlite.reference: the recurrent layers written as their equations, in NumPy.

This package is the specification the rest of lstmlite is checked against: the fused
PyTorch layers, the native C runtime, the exported models and the compressed forms.
Float LSTM / GRU, forward and full back-propagation through time, stacked,
bidirectional, with LSTM projection, variable lengths (PyTorch's packed-sequence
semantics) and initial states; parameters use PyTorch's names and layout.

>>> import numpy as np
>>> from lstmlite.reference import lstm_forward, lstm_backward
>>> rng = np.random.default_rng(0)
>>> params = {"weight_ih_l0": rng.normal(size=(8, 3)), "weight_hh_l0": rng.normal(size=(8, 2))}
>>> out, h_n, c_n, cache = lstm_forward(params, rng.normal(size=(4, 6, 3)), lengths=[6, 2, 5, 1])
>>> grads, d_x, d_h0, d_c0 = lstm_backward(params, cache, np.ones_like(out))
"""

from __future__ import annotations

from ._common import sigmoid
from ._recurrent import RecurrentCache
from .gru import gru_backward, gru_cell_backward, gru_cell_forward, gru_forward, gru_step
from .lstm import lstm_backward, lstm_cell_backward, lstm_cell_forward, lstm_forward, lstm_step

__all__ = [
    "lstm_forward", "lstm_backward", "lstm_step", "lstm_cell_forward", "lstm_cell_backward",
    "gru_forward", "gru_backward", "gru_step", "gru_cell_forward", "gru_cell_backward",
    "RecurrentCache", "sigmoid",
]

# The integer-only (fixed-point) LSTM/GRU: the specification the C runtime matches bit for bit.
from .integer import (  # noqa: E402
    GATE_FRAC, SIGMOID_TABLE, STATE_FRAC, TANH_TABLE, IntegerDirection, IntegerLSTMParams, IntegerRecurrentParams,
    dequantize_hidden, integer_lstm_forward, integer_lstm_sequence, integer_lstm_step, load_integer_params,
    accumulator_bound, quantize_input, quantize_lstm_integer,
)
from .integer_gru import (  # noqa: E402
    IntegerGRUParams, integer_gru_forward, integer_gru_sequence, integer_gru_step, quantize_gru_integer,
)

__all__ += [
    "IntegerRecurrentParams", "IntegerLSTMParams", "IntegerDirection", "quantize_lstm_integer",
    "integer_lstm_forward", "integer_lstm_sequence", "integer_lstm_step", "quantize_input", "dequantize_hidden",
    "load_integer_params", "accumulator_bound", "GATE_FRAC", "STATE_FRAC", "SIGMOID_TABLE", "TANH_TABLE",
    "IntegerGRUParams", "quantize_gru_integer", "integer_gru_forward", "integer_gru_sequence", "integer_gru_step",
]
