"""The integer-only form's embedding and head, in NumPy integers (DESIGN decision 5b).

The integer recurrent stack (:mod:`lstmlite.reference.integer`) reads int8 (or int16)
inputs and gives an int16 Q0.15 hidden state. A task model around it needs two more
pieces to stay integer from token to logit, which this module specifies:

* **Embedding**: the table quantized with the *first layer's input scale*, so that
  looking up a token gives exactly ``quantize_input(params, table[token])``::

      E_q = clip(rint(E / s_x), -127, 127)          int8 (int16 for 16-bit input)

* **Head** (``Dense(n_out)`` on the top layer's h): int8 weights with one scale per
  tensor (so the arg-max of the logits is the arg-max of the integers), int32 bias in
  the accumulator's scale, and an exact int32 accumulator::

      acc[r] = b_q[r] + sum_j W_q[r, j] * h[j]        int32 (no overflow, proven)
      logit[r] ~= acc[r] * s_w * 2**-15               (host side, :func:`dequantize_head`)

  There is no rounding and no saturation: the sum is exact, and
  :func:`quantize_head_integer` checks ``|b_q| + 127 * 32768 * F`` fits int32 (F the
  head's input width), raising ``ValueError`` otherwise. The C runtime's
  ``lsl_int_dense`` computes the same integers.

Example:
    >>> import numpy as np
    >>> head = quantize_head_integer(np.array([[0.5, -1.0], [0.25, 0.0]]), np.array([0.1, -0.2]))
    >>> acc = integer_head_forward(head, np.array([[16384, -8192]]))   # h = 0.5, -0.25
    >>> acc.dtype, np.round(dequantize_head(head, acc), 2).tolist()
    (dtype('int32'), [[0.6, -0.07]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .integer import INT8_MAX, INT32_MAX, INT32_MIN, STATE_FRAC, quantize_symmetric

__all__ = ["IntegerHead", "quantize_head_integer", "integer_head_forward", "dequantize_head",
           "quantize_embedding_integer"]


@dataclass
class IntegerHead:
    """An integer dense layer on Q0.15 int16 features.

    Attributes:
        weight: (n_out, F) int8 codes.
        bias: (n_out,) int32 in the accumulator scale ``scale * 2**-15``.
        scale: the real value of one weight code (one per tensor).
    """

    weight: np.ndarray
    bias: np.ndarray
    scale: float

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])


def quantize_head_integer(weight: np.ndarray, bias: np.ndarray | None = None) -> IntegerHead:
    """Float head ``(n_out, F)`` weight and ``(n_out,)`` bias → :class:`IntegerHead`.

    Weights round half to even to symmetric int8 codes with one scale ``max|W| / 127``;
    the bias rounds to int32 in the accumulator scale. Raises ``ValueError`` when the
    worst-case accumulator (every |h| = 32768) could leave int32.
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 2 or not np.all(np.isfinite(w)):
        raise ValueError(f"head weight must be a finite matrix, got shape {w.shape}")
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    if b.shape != (w.shape[0],) or not np.all(np.isfinite(b)):
        raise ValueError(f"head bias must be ({w.shape[0]},) finite values")
    absmax = float(np.abs(w).max()) if w.size else 0.0
    scale = absmax / INT8_MAX if absmax > 0 else 1.0
    codes = quantize_symmetric(w, scale, 8)
    acc_lsb = scale * 2.0**-STATE_FRAC
    qb = np.rint(b / acc_lsb).astype(np.int64)
    bound = np.abs(codes).sum(axis=1) * (1 << STATE_FRAC) + np.abs(qb)
    if bound.size and bound.max() > INT32_MAX:
        row = int(bound.argmax())
        raise ValueError(f"head row {row} could overflow the int32 accumulator (worst case {int(bound[row])}); "
                         "the integer head takes at most about 500 features")
    return IntegerHead(weight=codes.astype(np.int8), bias=qb.astype(np.int32), scale=float(scale))


def integer_head_forward(head: IntegerHead, h_q: np.ndarray) -> np.ndarray:
    """``b_q + h_q @ W_q.T`` exactly: h_q (..., F) int16 Q0.15 → (..., n_out) int32."""
    h = np.asarray(h_q)
    if not np.issubdtype(h.dtype, np.integer) or h.shape[-1] != head.in_features:
        raise ValueError(f"h_q must be integers (..., {head.in_features}), got {h.dtype} {h.shape}")
    acc = h.astype(np.int64) @ head.weight.astype(np.int64).T + head.bias.astype(np.int64)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise OverflowError("int32 accumulator overflow in the integer head")
    return acc.astype(np.int32)


def dequantize_head(head: IntegerHead, acc: np.ndarray) -> np.ndarray:
    """int32 head accumulators → float64 logits (``acc * scale * 2**-15``)."""
    return np.asarray(acc, dtype=np.float64) * head.scale * 2.0**-STATE_FRAC


def quantize_embedding_integer(table: np.ndarray, input_scale: float, input_bits: int = 8) -> np.ndarray:
    """A (vocab, dim) float table → codes in the first layer's input scale (int8 or int16).

    ``quantize_embedding_integer(E, s)[t]`` equals ``quantize_symmetric(E[t], s, bits)``,
    which is what :func:`lstmlite.reference.integer.quantize_input` gives for the
    embedded vector, so a token model's integer input is defined by its table alone.
    """
    if input_bits not in (8, 16):
        raise ValueError(f"input_bits must be 8 or 16, got {input_bits}")
    codes = quantize_symmetric(np.asarray(table, dtype=np.float64), input_scale, input_bits)
    return codes.astype(np.int8 if input_bits == 8 else np.int16)
