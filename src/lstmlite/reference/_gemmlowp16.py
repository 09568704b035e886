"""gemmlowp's int16 fixed-point logistic and tanh, vectorized in NumPy integers.

Desktop TensorFlow Lite (the LiteRT interpreter) evaluates the gates of its integer LSTM
with these (``tensor_utils::ApplySigmoid`` / ``ApplyTanh`` on ``gemmlowp::FixedPoint
<int16_t, k>``), where TensorFlow Lite Micro uses a lookup table; the two differ in the
last bit now and then. This module re-states gemmlowp's algorithm (a Taylor polynomial
for exp on [-1/4, 0), a barrel of exp(-2^k) factors, a Newton-Raphson reciprocal) with
its int16 semantics written out:

* ``add``/``sub``/``neg`` wrap modulo 2**16 (C++ int16 arithmetic);
* ``srdhm(a, b)`` = trunc((a*b + nudge) / 2**15), nudge = 2**14 if a*b >= 0 else 1 - 2**14
  (ties toward +inf: 0.5 -> 1, -0.5 -> 0, -1.5 -> -1),
  with -32768 * -32768 saturating to 32767;
* ``rdbpot`` rounds half away from zero; ``mul_pot(x, e > 0)`` saturates;
* the int32 constants of gemmlowp are rounded to int16 with ``rdbpot(c, 16)``.

Inputs and outputs are int64 arrays holding int16 values. ``k`` is the input's integer
bits (F_k = Q k.(15-k)); the output is Q0.15.

>>> import numpy as np
>>> logistic(np.array([0, 4096, -4096, 32767]), 3).tolist()
[16384, 23955, 8813, 32757]
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["logistic", "tanh", "logistic_table", "tanh_table"]


def _wrap(v: np.ndarray) -> np.ndarray:
    return ((v + 32768) & 0xFFFF) - 32768


def _tdiv(n: np.ndarray, d: int) -> np.ndarray:
    """C's truncating integer division."""
    return np.where(n >= 0, n // d, -((-n) // d))


def _srdhm(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    out = _tdiv(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 1 << 15)
    return np.where((a == -32768) & (b == -32768), 32767, out)


def _rdbpot(x: np.ndarray | int, e: int) -> np.ndarray:
    x = np.asarray(x, np.int64)
    if e == 0:
        return x
    mask = (1 << e) - 1
    return (x >> e) + ((x & mask) > ((mask >> 1) + (x < 0)))


def _mul_pot(x: np.ndarray, e: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT<e> on int16."""
    if e <= 0:
        return _rdbpot(x, -e)
    threshold = (1 << (15 - e)) - 1
    return np.where(x > threshold, 32767, np.where(x < -threshold, -32768, x * (1 << e)))


def _c16(v: int) -> int:
    """gemmlowp's RescaleConstantInitializer for int16: an int32 constant / 2**16, rounded."""
    return int(_rdbpot(np.int64(v), 16))


_EXP_M1_8 = _c16(1895147668)    # exp(-1/8)
_ONE_THIRD = _c16(715827883)
_BARREL = [(-2, _c16(1672461947)), (-1, _c16(1302514674)), (0, _c16(790015084)), (1, _c16(290630308)),
           (2, _c16(39332535)), (3, _c16(720401)), (4, _c16(242))]  # exp(-2**e)
_48_17, _NEG_32_17 = _c16(1515870810), _c16(-1010580540)  # in F2
_ONE_F0, _ONE_F2 = 32767, 1 << 13


def _exp_on_quarter_interval(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), F0 → F0."""
    x = _wrap(a + (1 << 12))  # a + 1/8
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    poly = _rdbpot(_wrap(_srdhm(_wrap(_rdbpot(x4, 2) + x3), _ONE_THIRD) + x2), 1)
    return np.clip(_EXP_M1_8 + _srdhm(_EXP_M1_8, _wrap(x + poly)), -32768, 32767)  # AddSaturatingIf16Bit


def _exp_on_negative_values(a: np.ndarray, k: int) -> np.ndarray:
    """exp(a) for a <= 0 in F_k → F0."""
    frac = 15 - k
    quarter = 1 << (frac - 2)
    amq = _wrap((a & (quarter - 1)) - quarter)
    result = _exp_on_quarter_interval(_mul_pot(amq, k))
    remainder = _wrap(amq - a)
    for e, m in _BARREL:
        if k > e:
            result = np.where(remainder & (1 << (frac + e)), _srdhm(result, m), result)
    if k > 5:
        result = np.where(a < _c16(-(1 << (36 - k))), 0, result)
    return np.where(a == 0, _ONE_F0, result)


def _newton_reciprocal_f2(a: np.ndarray) -> np.ndarray:
    """x ≈ 1 / ((1 + a) / 2) in F2, for a in F0 [0, 1]."""
    half = _tdiv(a + _ONE_F0 + np.where(a + _ONE_F0 >= 0, 1, -1), 2)  # RoundingHalfSum
    x = _wrap(_48_17 + _srdhm(half, _NEG_32_17))
    for _ in range(3):
        one_minus = _wrap(_ONE_F2 - _srdhm(half, x))
        x = _wrap(x + _mul_pot(_srdhm(x, one_minus), 2))
    return x


def logistic(a: np.ndarray, k: int) -> np.ndarray:
    """gemmlowp::logistic on F_k int16 raw values → Q0.15."""
    a = np.asarray(a, np.int64)
    positive = a > 0
    abs_in = np.where(positive, a, _wrap(-a))
    if_pos = _mul_pot(_newton_reciprocal_f2(_exp_on_negative_values(_wrap(-abs_in), k)), 1)  # x/2 in F1 → F0
    if_neg = _wrap(_ONE_F0 - if_pos)
    return np.where(a == 0, 16384, np.where(positive, if_pos, if_neg))


def tanh(a: np.ndarray, k: int) -> np.ndarray:
    """gemmlowp::tanh on F_k int16 raw values → Q0.15."""
    a = np.asarray(a, np.int64)
    negative = a < 0
    n = np.where(negative, a, _wrap(-a))
    e = _exp_on_negative_values(n, k + 1)  # exp(2n): same raw read with one more integer bit
    t = _mul_pot(_wrap(_newton_reciprocal_f2(e) - _ONE_F2), 2)  # (1 - e) / (1 + e)
    return np.where(a == 0, 0, np.where(negative, _wrap(-t), t))


@lru_cache(maxsize=None)
def logistic_table(k: int) -> np.ndarray:
    """logistic over every int16 input (index = x + 32768), read-only."""
    t = logistic(np.arange(-32768, 32768), k)
    t.setflags(write=False)
    return t


@lru_cache(maxsize=None)
def tanh_table(k: int) -> np.ndarray:
    """tanh over every int16 input (index = x + 32768), read-only."""
    t = tanh(np.arange(-32768, 32768), k)
    t.setflags(write=False)
    return t
