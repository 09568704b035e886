"""Shared oracles for the integer-reference tests (LSTM and GRU).

A float64 sigmoid, the weights the integer pipeline *effectively* applies, the
activation error term of the derived bounds, and rounding a float state to int16.
"""

from __future__ import annotations

import numpy as np

from lstmlite.reference.integer import GATE_FRAC, STATE_FRAC

Q15 = float(1 << STATE_FRAC)
GATE_HI = 32767 / 2.0**GATE_FRAC  # SAT A clip range in real units
GATE_LO = -8.0


def sigmoid(a):
    e = np.exp(-np.abs(a))  # never overflows
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def effective(q: np.ndarray, m: np.ndarray, shift: np.ndarray, in_scale: float, b_q: np.ndarray):
    """The real weights and biases the integer pipeline applies (multiplier rounding included)."""
    row_scale = m.astype(np.float64) / 2.0 ** shift.astype(np.float64) * 2.0**-GATE_FRAC  # real per acc LSB
    return q * (row_scale / in_scale)[:, None], b_q * row_scale


def act_term(fn, a, e_a, eps_lsb):
    """Bound on |act_int(clip(â)) - act(a)| given |â - a| <= e_a.

    The slope used is the largest derivative of ``act`` between clip(a - e_a) and
    clip(a + e_a) (at the point nearest 0: both derivatives peak there), which is at
    most 1/4 (sigmoid) or 1 (tanh)."""
    lo, hi = np.clip(a - e_a, GATE_LO, GATE_HI), np.clip(a + e_a, GATE_LO, GATE_HI)
    v = np.where(lo > 0, lo, np.where(hi < 0, hi, 0.0))
    slope = fn(v) * (1 - fn(v)) if fn is sigmoid else 1 - np.tanh(v) ** 2
    return slope * e_a + eps_lsb / Q15 + np.abs(fn(np.clip(a, GATE_LO, GATE_HI)) - fn(a))


def to_int16(v, frac):
    """Float state → its int16 code with ``frac`` fraction bits."""
    return np.clip(np.rint(v * 2.0**frac), -32768, 32767).astype(np.int64)
