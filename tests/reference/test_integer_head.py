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
