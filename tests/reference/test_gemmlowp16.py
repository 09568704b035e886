"""gemmlowp's int16 fixed-point logistic and tanh (lstmlite.reference._gemmlowp16), which
desktop TFLite's integer LSTM (kernel="lite") uses, against gemmlowp's own definitions
(fixedpoint.h, quoted per test) on hand-picked ties and saturations, and against float64
sigmoid/tanh over every int16 input. tests/importers/test_tflite_import.py compares the
whole LSTM with the LiteRT interpreter; these pin the primitives where its models do not
reach (ties, saturation) so that a bug shared with runtime/lsl_tflite.c shows."""

from __future__ import annotations

import numpy as np
import pytest

from lstmlite.reference import _gemmlowp16 as G


def test_srdhm_int16_ties_go_toward_plus_infinity():
    """fixedpoint.h, SaturatingRoundingDoublingHighMul(int16 a, int16 b):
    ``ab = a * b; nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return a == b == INT16_MIN ? INT16_MAX : (ab + nudge) / (1 << 15)`` (C division
    truncates). With b = 16384 (a / 2): 0.5 -> 1, -0.5 -> 0, 1.5 -> 2, -1.5 -> -1,
    2.5 -> 3, -2.5 -> -2; -32768 * -32768 saturates. Catches the nudge as -(1 << 14)
    for negative products (ties away from zero: -0.5 -> -1)."""
    a = np.array([1, -1, 3, -3, 5, -5, -32768, 32767])
    b = np.array([16384] * 6 + [-32768, 32767])
    assert G._srdhm(a, b).tolist() == [1, 0, 2, -1, 3, -2, 32767, 32766]


def test_rounding_divide_by_pot_ties_away_from_zero():
    """fixedpoint.h, RoundingDivideByPOT: ``mask = (1 << e) - 1; threshold = (mask >> 1) +
    (x < 0); return (x >> e) + ((x & mask) > threshold)``: 2.5 -> 3, -2.5 -> -3, 1.25 -> 1,
    -1.75 -> -2 (e = 1 and 2)."""
    assert G._rdbpot(np.array([5, -5, 7, -7, 4, -4]), 1).tolist() == [3, -3, 4, -4, 2, -2]
    assert G._rdbpot(np.array([5, -7, 6, -6, 2, -2]), 2).tolist() == [1, -2, 2, -2, 1, -1]
    assert G._rdbpot(np.array([123, -123]), 0).tolist() == [123, -123]


@pytest.mark.parametrize("e", [1, 2, 3])
def test_saturating_multiply_by_pot_saturates_past_the_threshold(e):
    """fixedpoint.h, SaturatingRoundingMultiplyByPOT<e > 0> on int16: ``threshold =
    (1 << (15 - e)) - 1``; x > threshold gives 32767, x < -threshold gives -32768, else
    x << e. Catches the threshold one too high (x = 2**(15 - e) would give 32768)."""
    t = (1 << (15 - e)) - 1
    x = np.array([t, t + 1, -t, -t - 1, 1, -1])
    assert G._mul_pot(x, e).tolist() == [t << e, 32767, -(t << e), -32768, 1 << e, -(1 << e)]


@pytest.mark.parametrize("k", range(7))
def test_logistic_and_tanh_approximate_the_functions_everywhere(k):
    """Over every int16 input in Q k.(15-k): within 7 LSB (logistic) and 12.5 LSB (tanh)
    of 32768 * f(x) (gemmlowp's int16 polynomial and 3 Newton steps; measured 6.7 and
    12.1; not monotone: neighbours may step back a few LSB), exact at 0, and symmetric as gemmlowp builds them: logistic(-x) =
    32767 - logistic(x) (one minus in Q0.15 is 32767), tanh(-x) = -tanh(x)."""
    x = np.arange(-32768, 32768)
    real = x / 2.0 ** (15 - k)
    s, t = G.logistic(x, k), G.tanh(x, k)
    assert np.abs(s - 32768 / (1 + np.exp(-real))).max() <= 7
    assert np.abs(t - 32768 * np.tanh(real)).max() <= 12.5
    assert s[32768] == 16384 and t[32768] == 0
    pos = np.arange(1, 32768)
    assert np.array_equal(G.logistic(-pos, k), 32767 - G.logistic(pos, k))
    assert np.array_equal(G.tanh(-pos, k), -G.tanh(pos, k))


def test_constants_are_gemmlowp_s_rounded_to_int16():
    """gemmlowp's int32 constants are the functions' values in Q0.31 (F2 for 48/17 and
    -32/17); rescaled to int16 (Q0.15 / F2 raw) they are those values rounded: exp(-1/8),
    1/3, exp(-2**e) for e = -2..4, 48/17 and -32/17 (float64 oracle, within half an LSB
    plus the int32 constant's own rounding)."""
    assert abs(G._EXP_M1_8 - np.exp(-1 / 8) * 32768) <= 0.5 + 2**-15
    assert abs(G._ONE_THIRD - 32768 / 3) <= 0.5 + 2**-15
    for e, m in G._BARREL:
        assert abs(m - np.exp(-(2.0**e)) * 32768) <= 0.5 + 2**-15, e
    assert abs(G._48_17 - 48 / 17 / 4 * 32768) <= 0.5 + 2**-15
    assert abs(G._NEG_32_17 + 32 / 17 / 4 * 32768) <= 0.5 + 2**-15
