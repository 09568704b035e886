"""Integer-only GRU (DESIGN decision 5b): the bit-exact specification.

The number formats, rounding (half away from zero), requantization, activation
tables and saturation points SAT A, B, D, E, F are those of
:mod:`lstmlite.reference.integer`; read its docstring first. The GRU adds one
saturation point, SAT G, on the recurrent part of the candidate gate, which the
reset gate multiplies before it is added to the input part (PyTorch's GRU form).

One step of one direction (gate order r, z, n as in PyTorch)::

    acc_x[r] = b_ih[r] + sum_j W_ih[r, j] * x[j]                     int32 (proven)
    acc_h[r] = b_hh[r] + sum_j W_hh[r, j] * h[j]                     int32 (proven)
    gx = requant(acc_x, m_ih, shift_ih) ;  gh = requant(acc_h, m_hh, shift_hh)   Q.12 int32 (SAT B)
    r  = sigmoid_q15(sat16(gx_r + gh_r))                             Q0.15  (SAT A)
    z  = sigmoid_q15(sat16(gx_z + gh_z))                             Q0.15  (SAT A)
    hn = sat16(gh_n)                                                 Q3.12  (SAT G)
    n  = tanh_q15(sat16(gx_n + rrs(r * hn, 15)))                     Q0.15  (SAT A)
    h' = sat16(rrs((32768 - z) * n + z * h, 15))                     Q0.15  (SAT D)

``r * hn`` is at most 32767 * 32768 < 2**30; ``(32768 - z) * n + z * h`` is at most
2**31 - 2**16 in magnitude, so both fit int32. SAT D cannot trigger (h' is a convex
combination of two int16 values); SAT G clips W_hn h + b_hn to [-8, 8 - 2**-12].

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> H, I = 8, 3
    >>> params = {"weight_ih_l0": rng.normal(0, 0.3, (3 * H, I)),
    ...           "weight_hh_l0": rng.normal(0, 0.3, (3 * H, H))}
    >>> q = quantize_gru_integer(params, {"input": {"absmax": 3.0}})
    >>> h = integer_gru_forward(q, quantize_input(q, rng.normal(size=(2, 5, I))))
    >>> h.dtype, h.shape
    (dtype('int16'), (2, 5, 8))
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .integer import (
    STATE_FRAC, IntegerDirection, IntegerRecurrentParams, _check_input, _matmul_acc, _run_stack, quantize_input,
    quantize_recurrent_integer, requantize, rounding_rshift, saturate, sigmoid_q15, tanh_q15,
)

__all__ = ["IntegerGRUParams", "quantize_gru_integer", "integer_gru_step", "integer_gru_forward",
           "integer_gru_sequence", "quantize_input"]

#: The parameter set of an integer GRU (``cell == "gru"``; ``cell_frac`` unused).
IntegerGRUParams = IntegerRecurrentParams


def quantize_gru_integer(
    params_float: Mapping[str, np.ndarray],
    calibration: Mapping[str, Any],
    input_bits: int = 8,
    per_channel: bool = True,
    input_percentile: float | None = None,
) -> IntegerRecurrentParams:
    """Float GRU parameters + calibrated input range → the integer GRU.

    Same arguments as :func:`lstmlite.reference.integer.quantize_lstm_integer`; a GRU
    has no cell state, so ``calibration`` needs only ``{"input": {"absmax": ...}}``.
    """
    return quantize_recurrent_integer(params_float, calibration, "gru", input_bits, per_channel, input_percentile)


def integer_gru_step(d: IntegerDirection, x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One GRU step of one direction, exactly as in the module docstring.

    Args:
        d: the direction's parameters.
        x_t: (B, I) integers of ``d.input_bits`` width.
        h: (B, H) int16 Q0.15.

    Returns h' (B, H) int16 Q0.15.
    """
    x_t = _check_input(x_t, d.input_bits, "x_t")
    h = _check_input(h, 16, "h")
    hidden = d.hidden_size
    gx = requantize(_matmul_acc(x_t, d.w_ih, d.b_ih), d.m_ih, d.shift_ih)  # (B, 3H) Q.12
    gh = requantize(_matmul_acc(h, d.w_hh, d.b_hh), d.m_hh, d.shift_hh)
    rz = saturate(gx[:, :2 * hidden] + gh[:, :2 * hidden], 16)  # SAT A
    r = sigmoid_q15(rz[:, :hidden])
    z = sigmoid_q15(rz[:, hidden:])
    hn = saturate(gh[:, 2 * hidden:], 16)  # SAT G
    n = tanh_q15(saturate(gx[:, 2 * hidden:] + rounding_rshift(r * hn, STATE_FRAC), 16))  # SAT A
    h_new = saturate(rounding_rshift(((1 << STATE_FRAC) - z) * n + z * h, STATE_FRAC), 16)  # SAT D
    return h_new.astype(np.int16)


def integer_gru_sequence(
    params: IntegerRecurrentParams, x_q: np.ndarray, lengths: np.ndarray | None = None,
    state: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run the integer GRU over whole sequences: output (B, T, D*H) int16 and final state.

    ``state``: per layer h (D, B, H) int16 Q0.15, or None for zeros. ``lengths`` as
    in :func:`lstmlite.reference.integer.integer_lstm_sequence`.
    """
    if params.cell != "gru":
        raise ValueError(f"integer_gru_sequence needs GRU parameters, got cell={params.cell!r}")
    return _run_stack(params, x_q, lengths, state, integer_gru_step)


def integer_gru_forward(
    params: IntegerRecurrentParams, x_q: np.ndarray, lengths: np.ndarray | None = None
) -> np.ndarray:
    """The h sequence (B, T, D*H) int16 Q0.15 of the integer GRU from zero state."""
    return integer_gru_sequence(params, x_q, lengths)[0]
