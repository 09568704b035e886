"""The integer-only form's head and embedding (lstmlite.reference.integer_head) against
float arithmetic: the head's integers, read back with their scale, are the float head on
the dequantized codes; the embedding's codes are quantize_input of the float rows."""

from __future__ import annotations

import numpy as np
import pytest

from lstmlite.reference.integer import quantize_input, quantize_lstm_integer
from lstmlite.reference.integer_head import (
    dequantize_head, integer_head_forward, quantize_embedding_integer, quantize_head_integer,
)


def test_head_is_the_float_head_of_its_codes():
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 0.5, (5, 16)), rng.normal(0, 0.2, 5)
    head = quantize_head_integer(w, b)
    assert head.weight.dtype == np.int8 and np.abs(head.weight).max() == 127
    h_q = rng.integers(-32767, 32768, size=(7, 16))
    got = dequantize_head(head, integer_head_forward(head, h_q))
    w_deq = head.weight.astype(np.float64) * head.scale
    b_deq = head.bias.astype(np.float64) * head.scale * 2.0**-15
    np.testing.assert_allclose(got, (h_q / 32768.0) @ w_deq.T + b_deq, rtol=1e-12, atol=1e-12)
    # and close to the float head itself (weight rounding only)
    np.testing.assert_allclose(got, (h_q / 32768.0) @ w.T + b, atol=16 * head.scale)


def test_head_refuses_what_could_overflow_and_what_overflows():
    with pytest.raises(ValueError, match="overflow"):
        quantize_head_integer(np.ones((2, 600)))
    head = quantize_head_integer(np.ones((1, 4)))
    head.bias[:] = 2**31 - 1  # hand-made parameters that break the bound
    with pytest.raises(OverflowError):
        integer_head_forward(head, np.full((1, 4), 32767))


@pytest.mark.parametrize("sign", [1, -1])
def test_head_forward_refuses_an_accumulator_past_either_end_of_int32(sign):
    """Hand-made parameters past the bound (4 codes of 127, a bias near the int32 end of
    one sign): with h = ±32767 the exact sum 4 * 127 * 32767 + b lands, by hand, exactly
    on 2**31 - 1 / -2**31 (returned as is) or one past it (OverflowError, never a wrapped
    int32). Catches a check of the top end alone, which wraps the negative overflow to a
    large positive logit."""
    head = quantize_head_integer(np.ones((1, 4)))
    assert head.weight.tolist() == [[127] * 4]
    h = np.full((1, 4), sign * 32767)
    edge = 2**31 - 1 if sign > 0 else -(2**31)
    head.bias[:] = edge - sign * 4 * 127 * 32767
    assert integer_head_forward(head, h).tolist() == [[edge]]
    head.bias[:] = head.bias + sign  # one past the end
    with pytest.raises(OverflowError):
        integer_head_forward(head, h)


@pytest.mark.parametrize("sign", [1, -1])
def test_head_bound_counts_a_negative_bias_by_its_magnitude(sign):
    """500 features of weight 1 (code 127, scale 1/127) and a bias of ±17 (code
    ±17 * 127 * 2**15): by hand the worst accumulator is 127 * 2**15 * (500 + 17) =
    2,151,514,112 > 2**31 - 1, reached with a negative bias by h = -32768 everywhere,
    so both signs must be refused. Catches a bound that adds the signed bias (b_q
    instead of |b_q|), which accepts the negative one: 127 * 2**15 * (500 - 17) fits."""
    worst = 127 * 2**15 * (500 + 17)
    assert worst > 2**31 - 1 and 127 * 2**15 * (500 - 17) <= 2**31 - 1
    with pytest.raises(ValueError, match="overflow"):
        quantize_head_integer(np.ones((1, 500)), np.array([sign * 17.0]))
    # 16 features fewer, the same bias fits both ways (so it is the bias that tips it)
    head = quantize_head_integer(np.ones((1, 484)), np.array([sign * 17.0]))
    assert int(head.bias[0]) == sign * 17 * 127 * 2**15


def test_embedding_codes_are_the_quantized_input():
    rng = np.random.default_rng(1)
    table = rng.normal(0, 1, (30, 6))
    params = quantize_lstm_integer({"weight_ih_l0": rng.normal(0, .3, (16, 6)), "weight_hh_l0": rng.normal(0, .3, (16, 4))},
                                   {"input": {"absmax": 2.0}, "layers": [[{"cell": {"absmax": 1.0}}]]})
    codes = quantize_embedding_integer(table, params.input_scale)
    tokens = rng.integers(0, 30, size=(3, 5))
    np.testing.assert_array_equal(codes[tokens], quantize_input(params, table[tokens]))
    assert codes.dtype == np.int8 and np.abs(codes).max() == 127  # |table| > 2 saturates (SAT F)


def test_embedding_codes_for_16_bit_input():
    """input_bits=16: int16 codes clip(rint(E / s), -32767, 32767), written out here with
    NumPy (ties to even, symmetric range). Catches the codes cast to int8 (they wrap)."""
    table = np.array([[0.0, 1.0, -1.0], [0.5, -0.25, 3.0], [1e-4, -1e-4, -3.0]])
    s = 2.0 / 32767
    codes = quantize_embedding_integer(table, s, input_bits=16)
    assert codes.dtype == np.int16
    want = np.clip(np.rint(table / s), -32767, 32767)
    assert codes.tolist() == want.astype(int).tolist()
    assert codes[0].tolist() == [0, 16384, -16384] and codes[1, 2] == 32767 and codes[2, 2] == -32767
    with pytest.raises(ValueError, match="input_bits"):
        quantize_embedding_integer(table, s, input_bits=12)


def test_zero_weight_head_gives_its_bias():
    """A head whose weights are all zero (e.g. pruned) has no absmax to scale by; its
    logits are still the bias, to one LSB of the accumulator (2**-15 at scale 1).
    Catches a zero absmax used as the scale (0/0 codes, a bias divided by zero)."""
    b = np.array([0.25, -1.5, 3.0])
    head = quantize_head_integer(np.zeros((3, 4)), b)
    assert not head.weight.any()
    logits = dequantize_head(head, integer_head_forward(head, np.full((2, 4), 12345)))
    np.testing.assert_allclose(logits, np.broadcast_to(b, (2, 3)), atol=2.0**-15)


def test_head_input_must_be_integers_of_its_width():
    head = quantize_head_integer(np.ones((2, 4)))
    with pytest.raises(ValueError, match="integers"):
        integer_head_forward(head, np.full((1, 4), 0.5))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        integer_head_forward(head, np.zeros((1, 5), np.int16))


def test_head_weight_codes_hand_worked():
    """The docstring's scale max|W| / 127 and round-half-to-even codes, by hand:
    W = [0.5, -1.27, 0.015, 0.025] has scale 0.01 and codes [50, -127, 2, 2]; the
    bias 0.5 is 0.5 / (0.01 * 2**-15) = 1638400 accumulator units.
    Catches: the scale taken as max|W| / 128 (the largest weight no longer maps to 127)."""
    head = quantize_head_integer(np.array([[0.5, -1.27, 0.015, 0.025]]), np.array([0.5]))
    assert head.scale == pytest.approx(0.01, rel=1e-12)
    assert head.weight.tolist() == [[50, -127, 2, 2]]
    assert head.bias.tolist() == [1638400]
