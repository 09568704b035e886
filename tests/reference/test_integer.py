"""The integer-only LSTM reference against exact rational arithmetic and the float LSTM.

Oracles: Python's exact integers / ``fractions.Fraction`` for the primitives, NumPy's
float64 sigmoid/tanh for the tables, ``torch.nn.LSTM`` (float64) for the float LSTM
that the error bound is derived around.

The error bound (derived in ``lstm_bound``) is propagated element by element along
the float64 run. With ``e`` the bound on |integer (dequantized) - float| of a value:

* pre-activation row r: ``sum_j |W - Ŵ|_rj |x_j| + sum_j |Ŵ_rj| e_x_j + |b - b̂|``
  for each of the two matmuls, where Ŵ = q * (m / 2**shift) * 2**-12 / s_in is the
  weight the integer pipeline *effectively* applies (multiplier error included),
  plus 2**-13 per requantization rounding (two), plus the saturation distance
  |clip(a) - a| (clip to Q3.12 is 1-Lipschitz);
* gate = act(a): ``L * e_a + eps_act + |act(clip(a)) - act(a)|``, L = 1/4 for
  sigmoid, 1 for tanh, eps_act the table's measured worst error;
* ``c = f c' + i g``: ``f e_c' + (|c'| + e_c') e_f + i e_g + (|g| + e_g) e_i + 2**-F``
  (two roundings of half an LSB of Q.F) + |clip(c) - c|;
* ``h = o tanh(c)``: ``o e_t + (|tanh c| + e_t) e_o + 2**-16`` with
  ``e_t = e_c + eps_tanh``.

Every term bounds a difference of products by the triangle inequality, so the
bound is rigorous, not first order (the activation slope is the largest one on the
interval the pre-activation can lie in). Two uses:

* propagated through all T steps (the integer run's own state error feeds the next
  step). Being worst case it only stays small where the recurrence contracts, so
  that test uses small recurrent weights;
* teacher forced: each integer step starts from the float state rounded to int16,
  so the bound is per step and holds for ordinary weights.

The tests check the bound at every element of every step and that it is small, so
it says something.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from lstmlite.reference.integer import (
    GATE_FRAC, INT32_MAX, INT32_MIN, SIGMOID_MAX_ERROR_LSB, SIGMOID_TABLE, STATE_FRAC, TANH_MAX_ERROR_LSB,
    TANH_TABLE, IntegerDirection, IntegerRecurrentParams, dequantize_hidden, integer_lstm_forward,
    integer_lstm_sequence, integer_lstm_step, load_integer_params, quantize_input, quantize_lstm_integer,
    quantize_multiplier, requantize, rounding_rshift, saturate, sigmoid_q15, tanh_q15,
)

from _integer_oracles import GATE_HI, GATE_LO, Q15, act_term, effective, sigmoid, to_int16


# ----- primitives --------------------------------------------------------------------------------
def _exact_round_half_away(num: int, den: int) -> int:
    q = Fraction(num, den)
    mag = abs(q)
    r = int(mag) + (1 if mag - int(mag) >= Fraction(1, 2) else 0)
    return r if q >= 0 else -r


def test_rounding_rshift_is_round_half_away_from_zero():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.integers(-(1 << 40), 1 << 40, 2000), np.arange(-20, 21)])
    for shift in (0, 1, 2, 5, 15, 30):
        got = rounding_rshift(values, shift)
        want = [_exact_round_half_away(int(v), 1 << shift) for v in values]
        assert got.tolist() == want
    # ties go away from zero (not to even, not up)
    assert rounding_rshift(np.array([1, -1, 3, -3]), 1).tolist() == [1, -1, 2, -2]


def test_quantize_multiplier_and_requantize_match_exact_arithmetic():
    rng = np.random.default_rng(1)
    for real in np.concatenate([rng.uniform(1e-6, 1.0, 50), [2.0**-40, 0.999999999, 3.5, 1e-20]]):
        m, shift = quantize_multiplier(float(real))
        assert 0 <= m < 1 << 31 and 0 <= shift <= 62
        if real > 2.0**-31:
            assert 1 << 30 <= m
            assert abs(m / 2.0**shift - real) <= real * 2.0**-30
        acc = rng.integers(INT32_MIN, INT32_MAX, 200)
        got = requantize(acc, m, shift)
        want = [max(INT32_MIN, min(INT32_MAX, _exact_round_half_away(int(a) * m, 1 << shift))) for a in acc]
        assert got.tolist() == want
    assert quantize_multiplier(0.0) == (0, 0)
    with pytest.raises(ValueError):
        quantize_multiplier(2.0**32)
    with pytest.raises(ValueError):
        quantize_multiplier(-1.0)


def test_quantize_multiplier_edges_written_out():
    """Two edges of quantize_multiplier, computed by hand from its contract (m in
    [2**30, 2**31), M ~= m / 2**shift; past shift 62, m = round(M * 2**62)):

    * M = 1 - 2**-40: frexp's mantissa times 2**31 rounds up to 2**31, which is not an
      int32; the result must be renormalised to (2**30, 30), exactly 1.0 (catches the
      renormalisation dropped: (2**31, 31) would not fit the C engine's int32);
    * M = 1.75 * 2**-63 needs shift 64 > 62: m = round(0.875) = 1 at shift 62 (catches a
      truncating int(), which gives m = 0 and silences the row)."""
    assert quantize_multiplier(1.0 - 2.0**-40) == (1 << 30, 30)
    assert quantize_multiplier(1.0 - 2.0**-33) == (1 << 30, 30)  # 2**31 - 0.25 rounds up too
    assert quantize_multiplier(1.75 * 2.0**-63) == (1, 62)
    assert quantize_multiplier(1.25 * 2.0**-63) == (1, 62)  # 0.625 rounds up as well
    assert quantize_multiplier(2.0**-64) == (0, 62)  # 0.25 rounds to 0


def test_requantize_saturates_instead_of_wrapping():  # SAT B
    big = np.array([INT32_MAX, INT32_MIN, 1 << 30])
    got = requantize(big, (1 << 31) - 1, 0)  # multiplier ~2**31: products far outside int32
    assert got.tolist() == [INT32_MAX, INT32_MIN, INT32_MAX]
    assert saturate(np.array([1 << 15, -(1 << 15) - 1, 7]), 16).tolist() == [32767, -32768, 7]


@pytest.mark.parametrize("frac", [GATE_FRAC, 5, 9, 13, 15])
def test_activation_tables_against_float_exhaustively(frac):
    x = np.arange(-32768, 32768)
    real = x / 2.0**frac
    s, t = sigmoid_q15(x, frac), tanh_q15(x, frac)
    assert s.min() >= 0 and s.max() <= 32767 and t.min() >= -32767 and t.max() <= 32767
    assert np.all(np.diff(s) >= 0) and np.all(np.diff(t) >= 0)  # monotone, as the functions
    inside = np.abs(real) < 8  # beyond |8| SAT E holds the value at 8 - 2**-frac
    assert np.abs(s - Q15 * sigmoid(real))[inside].max() <= SIGMOID_MAX_ERROR_LSB
    assert np.abs(t - Q15 * np.tanh(real)).max() <= TANH_MAX_ERROR_LSB
    # symmetry is exact: sigma(-x) = 1 - sigma(x), tanh(-x) = -tanh(x)
    pos = np.arange(1, 32768)
    assert np.array_equal(sigmoid_q15(-pos, frac), 32768 - sigmoid_q15(pos, frac))
    assert np.array_equal(tanh_q15(-pos, frac), -tanh_q15(pos, frac))


def test_activation_saturation_points():  # SAT E
    lo, hi = np.array([-32768]), np.array([32767])
    assert tanh_q15(lo).tolist() == (-tanh_q15(hi)).tolist()
    assert sigmoid_q15(lo).tolist() == (32768 - sigmoid_q15(hi)).tolist()
    assert TANH_TABLE.max() == 32767 and TANH_TABLE[0] == 0 and SIGMOID_TABLE[0] == 16384
    assert abs(int(sigmoid_q15(hi)[0]) - Q15 * sigmoid(8.0)) <= 1.0
    # inputs far beyond 8 give the same value as 8 (held), never an index error
    assert tanh_q15(np.array([32767]), 5).tolist() == tanh_q15(np.array([256 * 1 - 1]), 5).tolist()


def test_activation_held_value_is_the_function_at_8_minus_one_lsb():  # SAT E, 5 fraction bits
    """At 5 fraction bits one input LSB is one table segment, so SAT E (|x| clipped to
    (256 << 0) - 1 = 255, i.e. 8 - 2**-5) makes every |x| >= 255 read sigmoid(255/32):
    32768 * sigmoid(7.96875) = 32756.66, rounded 32757, by hand from the float function.
    Catches a clip one LSB low ((256 << k) - 2), which holds sigmoid(254/32) = 32756.30
    -> 32756: 1 LSB off, inside the exhaustive test's 1.5-LSB tolerance, so only the
    held value itself tells them apart."""
    held = round(Q15 * float(sigmoid(255 / 32)))
    assert held == 32757
    x = np.array([255, 256, 1000, 32767, -255, -256, -32768])
    assert sigmoid_q15(x, 5).tolist() == [held] * 4 + [32768 - held] * 3


def test_activation_input_format_must_be_5_to_15_fraction_bits():
    """The table steps by 1/32, so the input needs 5..15 fraction bits (docs/integer.md);
    16 would silently read the table at the wrong scale, 4 would shift by -1."""
    for fn in (sigmoid_q15, tanh_q15):
        for frac in (4, 16):
            with pytest.raises(ValueError, match="5..15 fraction bits"):
                fn(np.array([100]), frac)


# ----- the float LSTM the integer one is compared with ---------------------------------------------
def make_params(rng, hidden, inputs, layers=1, dirs=1, hh_std=None, bias_std=0.2):
    """Random LSTM weights: N(0, 1/H) (about PyTorch's init scale); ``hh_std`` overrides W_hh's."""
    std = 1.0 / np.sqrt(hidden)
    hh = hh_std if hh_std is not None else std
    params = {}
    for k in range(layers):
        width = inputs if k == 0 else dirs * hidden
        for d in range(dirs):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            params["weight_ih" + sfx] = rng.normal(0, std, (4 * hidden, width))
            params["weight_hh" + sfx] = rng.normal(0, hh, (4 * hidden, hidden))
            params["bias_ih" + sfx] = rng.normal(0, bias_std, 4 * hidden)
            params["bias_hh" + sfx] = rng.normal(0, bias_std, 4 * hidden)
    return params


def float_direction(p, x, reverse=False):
    """Float64 LSTM of one direction: every intermediate value, (B, T, .) each."""
    batch, steps, _ = x.shape
    hidden = p["w_hh"].shape[1]
    h = np.zeros((batch, hidden))
    c = np.zeros((batch, hidden))
    rec = {k: np.zeros((batch, steps, 4 * hidden if k == "a" else hidden)) for k in ("a", "c", "h")}
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        a = x[:, t] @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"]
        i, f, g, o = (a[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        rec["a"][:, t], rec["c"][:, t], rec["h"][:, t] = a, c, h
    return rec


def direction_params(params, layer, d):
    sfx = f"_l{layer}" + ("_reverse" if d else "")
    return {"w_ih": params["weight_ih" + sfx], "w_hh": params["weight_hh" + sfx],
            "b_ih": params["bias_ih" + sfx], "b_hh": params["bias_hh" + sfx]}


def float_stack(params, x, layers, dirs):
    data = x
    for k in range(layers):
        data = np.concatenate([float_direction(direction_params(params, k, d), data, reverse=bool(d))["h"]
                               for d in range(dirs)], axis=2)
    return data


def test_float_lstm_helper_matches_torch():
    rng = np.random.default_rng(2)
    params = make_params(rng, hidden=6, inputs=3, layers=2, dirs=2)
    x = rng.normal(size=(3, 7, 3))
    ref = torch.nn.LSTM(3, 6, num_layers=2, bidirectional=True, batch_first=True).double()
    with torch.no_grad():
        for name, value in ref.named_parameters():
            value.copy_(torch.from_numpy(params[name]))
        want = ref(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(float_stack(params, x, 2, 2), want, atol=1e-12)


# ----- the error bound -------------------------------------------------------------------------------
def lstm_bound(p, qd: IntegerDirection, x, e_x, reverse=False, teacher_forced=False):
    """Float h (B, T, H) and the bound on |dequantized integer h - float h| (B, T, H).

    ``teacher_forced``: bound one integer step taken from the float state rounded to
    the integer formats (state error = that rounding), instead of propagating the
    integer run's own error through time."""
    w_ih, b_ih = effective(qd.w_ih, qd.m_ih, qd.shift_ih, qd.input_scale, qd.b_ih)
    w_hh, b_hh = effective(qd.w_hh, qd.m_hh, qd.shift_hh, 2.0**-STATE_FRAC, qd.b_hh)
    rec = float_direction(p, x, reverse)
    batch, steps, _ = x.shape
    hidden = qd.hidden_size
    F = qd.cell_frac
    c_lim = 2.0 ** (STATE_FRAC - F)
    e_h = np.zeros((batch, hidden))
    e_c = np.zeros((batch, hidden))
    h_prev = np.zeros((batch, hidden))
    c_prev = np.zeros((batch, hidden))
    out = np.zeros((batch, steps, hidden))
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        x_t, a = x[:, t], rec["a"][:, t]
        if teacher_forced:
            e_h = np.abs(h_prev - to_int16(h_prev, STATE_FRAC) / Q15)
            e_c = np.abs(c_prev - to_int16(c_prev, F) / 2.0**F)
        e_a = (np.abs(x_t) @ np.abs(p["w_ih"] - w_ih).T + e_x[:, t] @ np.abs(w_ih).T + np.abs(p["b_ih"] - b_ih)
               + np.abs(h_prev) @ np.abs(p["w_hh"] - w_hh).T + e_h @ np.abs(w_hh).T + np.abs(p["b_hh"] - b_hh)
               + 2 * 2.0 ** -(GATE_FRAC + 1))
        gates = [a[:, k * hidden:(k + 1) * hidden] for k in range(4)]
        errs = [e_a[:, k * hidden:(k + 1) * hidden] for k in range(4)]
        e_i, e_f, e_o = (act_term(sigmoid, gates[k], errs[k], SIGMOID_MAX_ERROR_LSB) for k in (0, 1, 3))
        e_g = act_term(np.tanh, gates[2], errs[2], TANH_MAX_ERROR_LSB)
        i, f, g, o = sigmoid(gates[0]), sigmoid(gates[1]), np.tanh(gates[2]), sigmoid(gates[3])
        c = rec["c"][:, t]
        e_c = (f * e_c + (np.abs(c_prev) + e_c) * e_f + i * e_g + (np.abs(g) + e_g) * e_i + 2.0**-F
               + np.abs(np.clip(c, -c_lim, c_lim) - c))
        e_t = e_c + TANH_MAX_ERROR_LSB / Q15
        e_h = o * e_t + (np.abs(np.tanh(c)) + e_t) * e_o + 2.0 ** -(STATE_FRAC + 1)
        h_prev, c_prev = rec["h"][:, t], c
        out[:, t] = e_h
    return rec["h"], out


def teacher_forced_steps(qd: IntegerDirection, x_q, rec, reverse=False):
    """The integer step taken at every t from the float state of t-1 (rounded to int16)."""
    batch, steps, _ = x_q.shape
    hidden = qd.hidden_size
    out = np.zeros((batch, steps, hidden), dtype=np.int64)
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        prev = t + 1 if reverse else t - 1
        inside = 0 <= prev < steps
        h_prev = rec["h"][:, prev] if inside else np.zeros((batch, hidden))
        c_prev = rec["c"][:, prev] if inside else np.zeros((batch, hidden))
        out[:, t] = integer_lstm_step(qd, x_q[:, t], to_int16(h_prev, STATE_FRAC), to_int16(c_prev, qd.cell_frac))[0]
    return out


def calibration_for(params, x, layers, dirs):
    """Exact ranges from the float run (the compress package's calibrate does this for models)."""
    cal = {"input": {"absmax": float(np.abs(x).max())}, "layers": []}
    data = x
    for k in range(layers):
        recs = [float_direction(direction_params(params, k, d), data, bool(d)) for d in range(dirs)]
        cal["layers"].append([{"cell": {"absmax": float(np.abs(r["c"]).max())}} for r in recs])
        data = np.concatenate([r["h"] for r in recs], axis=2)
    return cal


@pytest.mark.parametrize("input_bits,per_channel", [(8, True), (16, True), (8, False)])
def test_integer_lstm_within_propagated_bound_over_time(input_bits, per_channel):
    """Whole sequences: the bound propagated through all T steps holds everywhere.

    The propagation is worst case (all errors aligned), so it only stays small when
    the recurrence contracts; the recurrent weights here are small (row sums of
    |W_hh| about 0.6), the input weights ordinary."""
    rng = np.random.default_rng(3)
    hidden, inputs, batch, steps = 16, 5, 4, 40
    params = make_params(rng, hidden, inputs, hh_std=0.05)
    x = rng.normal(size=(batch, steps, inputs))
    q = quantize_lstm_integer(params, calibration_for(params, x, 1, 1), input_bits=input_bits,
                              per_channel=per_channel)
    x_q = quantize_input(q, x)
    h_int = integer_lstm_forward(q, x_q)
    assert h_int.dtype == np.int16 and h_int.shape == (batch, steps, hidden)
    e_x = np.abs(x - x_q * q.input_scale)
    h_float, bound = lstm_bound(direction_params(params, 0, 0), q.layers[0][0], x, e_x)
    err = np.abs(dequantize_hidden(h_int) - h_float)
    assert np.all(err <= bound + 1e-12), f"bound broken by {np.max(err - bound)}"
    # informative: about 1000 LSB of Q0.15 (3e-2) at most after 40 steps, where the
    # observed error is about 1e-3
    assert bound.max() < (0.04 if per_channel else 0.08), bound.max()
    if input_bits == 16:  # int16 input is more accurate than int8
        q8 = quantize_lstm_integer(params, calibration_for(params, x, 1, 1), input_bits=8)
        err8 = np.abs(dequantize_hidden(integer_lstm_forward(q8, quantize_input(q8, x))) - h_float)
        assert err.mean() < err8.mean()


@pytest.mark.parametrize("input_bits", [8, 16])
def test_every_integer_step_within_local_bound(input_bits):
    """Ordinary (non-contracting) weights: each integer step, taken from the float
    state, stays within the one-step bound, at every step of the sequence."""
    rng = np.random.default_rng(8)
    hidden, inputs = 16, 5
    params = make_params(rng, hidden, inputs)
    x = rng.normal(size=(4, 30, inputs))
    q = quantize_lstm_integer(params, calibration_for(params, x, 1, 1), input_bits=input_bits)
    d, p = q.layers[0][0], direction_params(params, 0, 0)
    x_q = quantize_input(q, x)
    h_float, bound = lstm_bound(p, d, x, np.abs(x - x_q * q.input_scale), teacher_forced=True)
    err = np.abs(dequantize_hidden(teacher_forced_steps(d, x_q, float_direction(p, x))) - h_float)
    assert np.all(err <= bound + 1e-12), f"bound broken by {np.max(err - bound)}"
    assert bound.max() < 0.02 and err.max() < 0.01


def test_integer_arithmetic_alone_costs_a_few_lsb_per_step():
    """Against the float LSTM that uses the *dequantized* weights, only the integer
    arithmetic differs (roundings, tables): one step costs a few LSB of Q0.15."""
    rng = np.random.default_rng(4)
    hidden, inputs = 12, 4
    params = make_params(rng, hidden, inputs)
    x = rng.normal(size=(3, 25, inputs))
    q = quantize_lstm_integer(params, calibration_for(params, x, 1, 1), input_bits=16)
    d = q.layers[0][0]
    w_ih, b_ih = effective(d.w_ih, d.m_ih, d.shift_ih, d.input_scale, d.b_ih)
    w_hh, b_hh = effective(d.w_hh, d.m_hh, d.shift_hh, 2.0**-15, d.b_hh)
    deq = {"w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh}
    x_q = quantize_input(q, x)
    x_deq = x_q * q.input_scale
    h_float, bound = lstm_bound(deq, d, x_deq, np.zeros_like(x), teacher_forced=True)
    err = np.abs(dequantize_hidden(teacher_forced_steps(d, x_q, float_direction(deq, x_deq))) - h_float)
    assert np.all(err <= bound + 1e-12)
    assert bound.max() * Q15 < 24 and err.max() * Q15 < 8, (bound.max() * Q15, err.max() * Q15)


def test_stacked_bidirectional_within_bound():
    rng = np.random.default_rng(5)
    hidden, inputs, layers, dirs = 8, 3, 2, 2
    params = make_params(rng, hidden, inputs, layers, dirs, hh_std=0.05)
    x = rng.normal(size=(2, 15, inputs))
    q = quantize_lstm_integer(params, calibration_for(params, x, layers, dirs))
    assert (q.num_layers, q.num_directions, q.layers[1][0].input_bits) == (2, 2, 16)
    x_q = quantize_input(q, x)
    out = integer_lstm_forward(q, x_q)
    data, e = x, np.abs(x - x_q * q.input_scale)
    for k in range(layers):
        results = [lstm_bound(direction_params(params, k, d), q.layers[k][d], data, e, bool(d)) for d in range(dirs)]
        data = np.concatenate([r[0] for r in results], axis=2)
        e = np.concatenate([r[1] for r in results], axis=2)
    err = np.abs(dequantize_hidden(out) - data)
    assert out.shape == (2, 15, 2 * hidden)
    assert np.all(err <= e + 1e-12) and e.max() < 0.1


# ----- saturation -------------------------------------------------------------------------------------
def _one_unit(bias, w_ih=0.0, cell_frac=13, input_bits=8):
    """A hand-made 1-unit, 1-input direction whose gates read ``bias`` (real, per gate i f g o)."""
    mult, shift = quantize_multiplier(1.0 / 64)  # acc LSB = 2**-18 real: bias b -> b * 2**18
    b = np.round(np.asarray(bias, dtype=np.float64) * 2**18).astype(np.int64)
    return IntegerDirection(
        w_ih=np.full((4, 1), w_ih), w_hh=np.zeros((4, 1)), b_ih=b, b_hh=np.zeros(4),
        m_ih=np.full(4, mult), shift_ih=np.full(4, shift), m_hh=np.full(4, mult), shift_hh=np.full(4, shift),
        cell_frac=cell_frac, input_bits=input_bits, input_scale=1.0, w_ih_scale=np.ones(4), w_hh_scale=np.ones(4))


def test_gate_preactivation_saturates_not_wraps():  # SAT A
    # bias 1000 in Q3.12 would be 4_096_000: far beyond int16. Saturated, i = f = o = sigma(8), g = tanh(8).
    for sign in (1, -1):
        d = _one_unit([1000.0, 1000.0, sign * 1000.0, 1000.0])
        h, c = integer_lstm_step(d, np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64),
                                 np.zeros((1, 1), np.int64))
        i = round(Q15 * sigmoid(8.0))
        assert abs(int(c[0, 0]) - sign * i * 32767 / 2**17) <= 2  # c = i*g in Q2.13 (F=13)
        assert np.sign(h[0, 0]) == sign and abs(h[0, 0]) > 0.75 * 32768 * np.tanh(1.0)


def test_gate_preactivation_saturates_the_sum_not_each_matmul():  # SAT A on gx + gh
    """docs/integer.md: a = sat16(requant(acc_x) + requant(acc_h)). Biases chosen so that,
    in Q3.12, the input part is 40000 (9.77, past int16 alone) and the recurrent part
    -10000 (-2.44): their sum 30000 (7.32) is inside int16 and must be used as is. So
    i = f = o = sigma(7.32), g = tanh(7.32) and from zero state c' = i * g in Q2.13, by
    hand 8192 * sigma(7.32) * tanh(7.32) = 8186.4. Catches each part saturated before
    the add (TFLite's form: 32767 - 10000 = 22767, i.e. 5.56: c' = 8161)."""
    d = _one_unit([40000 / 4096] * 4)  # input part 40000 in Q3.12 for every gate
    d = IntegerDirection(**{**d.__dict__, "b_hh": d.b_ih.astype(np.int64) // -4})  # recurrent part -10000
    zero = np.zeros((1, 1), np.int64)
    _, c = integer_lstm_step(d, zero, zero, zero)
    a = 30000 / 4096
    assert abs(int(c[0, 0]) - 8192 * float(sigmoid(a)) * np.tanh(a)) <= 2


def test_cell_state_saturates_at_int16_limits():  # SAT C
    for sign in (1, -1):
        d = _one_unit([100.0, 100.0, sign * 100.0, 100.0], cell_frac=13)  # c grows by ~1 per step, clip at 4
        h = np.zeros((1, 1), np.int64)
        c = np.zeros((1, 1), np.int64)
        cs = []
        for _ in range(8):
            h, c = integer_lstm_step(d, np.zeros((1, 1), np.int64), h, c)
            cs.append(int(c[0, 0]))
        assert cs[-1] == (32767 if sign > 0 else -32768) and cs[-2] == cs[-1]
        assert all(sign * v >= 0 for v in cs) and all(sign * (b - a) >= 0 for a, b in zip(cs, cs[1:]))
        # before saturating, c follows the float recurrence c_t = f c_{t-1} + i g (t = 1, 2, 3)
        f = sigmoid(8.0)
        real = [sign * f * (1 - f**t) / (1 - f) * np.tanh(8.0) for t in range(1, 4)]
        assert np.allclose(np.array(cs[:3]) / 2**13, real, atol=3e-3)


def test_host_input_quantization_saturates():  # SAT F
    d = _one_unit([0, 0, 0, 0])
    q = IntegerRecurrentParams("lstm", [[d]])
    assert quantize_input(q, np.array([[[1e9], [-1e9], [3.4]]])).ravel().tolist() == [127, -127, 3]


def test_weight_codes_and_scales_written_out():
    """docs/integer.md: s_w[row] = max|W_row| / 127 (per_channel) or one max|W| / 127 per
    tensor, codes rint(W / s_w) in [-127, 127], b_ih in the scale s_x * s_w[row]; an
    all-zero row (a pruned unit) gets scale 1 and zero codes. Written out with NumPy.
    Catches per_channel=False ignored for W_ih, and a zero row divided by its zero absmax."""
    w_ih = np.array([[0.5, -1.0], [0.0, 0.0], [0.3, 0.1], [-2.0, 0.7]])
    w_hh = np.array([[0.2], [-0.4], [0.0], [0.8]])
    b_ih = np.array([0.1, 0.5, -0.2, 0.0])
    params = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih, "bias_hh_l0": np.zeros(4)}
    cal = {"input": {"absmax": 1.0}, "layers": [[{"cell": {"absmax": 1.0}}]]}
    s_x = 1.0 / 127
    for per_channel in (True, False):
        d = quantize_lstm_integer(params, cal, per_channel=per_channel).layers[0][0]
        for w, codes, scales in ((w_ih, d.w_ih, d.w_ih_scale), (w_hh, d.w_hh, d.w_hh_scale)):
            absmax = np.abs(w).max(axis=1) if per_channel else np.full(4, np.abs(w).max())
            want_scale = np.where(absmax > 0, absmax / 127, 1.0)
            np.testing.assert_allclose(scales, want_scale, rtol=1e-7)  # stored as float32
            assert codes.tolist() == np.rint(w / want_scale[:, None]).astype(int).tolist()
        s_w = np.where(np.abs(w_ih).max(axis=1) > 0, np.abs(w_ih).max(axis=1) / 127, 1.0) if per_channel \
            else np.full(4, 2.0 / 127)
        assert d.b_ih.tolist() == np.rint(b_ih / (s_x * s_w)).astype(int).tolist()
    d = quantize_lstm_integer(params, cal).layers[0][0]
    assert d.w_ih[1].tolist() == [0, 0] and d.b_ih[1] == 64  # 0.5 / (1/127 * 1) = 63.5 -> 64


def test_dequantize_hidden_is_q0_15():
    assert dequantize_hidden(np.array([16384, -32768, 1, 32767])).tolist() == [0.5, -1.0, 2.0**-15, 1 - 2.0**-15]


def test_host_input_quantization_rounds_half_to_even():  # SAT F's rounding
    """docs/integer.md: host inputs round half to even (np.rint). With s_x = 1 the ties
    are written out: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0, -2.5 -> -2, -3.5 -> -4
    (catches round half up, floor(x + 0.5), which gives 1, 2, 3, 0, -2, -3)."""
    d = _one_unit([0, 0, 0, 0])
    q = IntegerRecurrentParams("lstm", [[d]])
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, -3.5, 126.5, -126.5]).reshape(1, -1, 1)
    assert quantize_input(q, x).ravel().tolist() == [0, 2, 2, 0, -2, -2, -4, 126, -126]


@pytest.mark.parametrize("absmax,frac", [(0.25, 15), (0.999, 15), (1.0, 14), (1.5, 14), (2.0, 13), (7.9, 12),
                                         (600.0, 5), (1023.5, 5)])
def test_cell_format_is_the_widest_that_holds_the_calibrated_range(absmax, frac):
    """F is the largest fraction width with 2**(15 - F) > max|c| (written out per case:
    1.0 needs one integer bit, so F = 14; |c| < 1024 still fits F = 5, the smallest the
    table supports). Catches ceil(log2) for floor(log2) + 1, and the F >= 5 limit off
    by one (refusing 600)."""
    params = {"weight_ih_l0": np.ones((4, 1)), "weight_hh_l0": np.ones((4, 1))}
    q = quantize_lstm_integer(params, {"input": {"absmax": 1.0}, "layers": [[{"cell": {"absmax": absmax}}]]})
    assert q.layers[0][0].cell_frac == frac
    assert 2.0 ** (STATE_FRAC - frac) > absmax and (frac == STATE_FRAC or 2.0 ** (STATE_FRAC - frac - 1) <= absmax)


def test_cell_range_of_1024_or_more_is_refused():
    params = {"weight_ih_l0": np.ones((4, 1)), "weight_hh_l0": np.ones((4, 1))}
    with pytest.raises(ValueError, match="integer bits"):
        quantize_lstm_integer(params, {"input": {"absmax": 1.0}, "layers": [[{"cell": {"absmax": 1024.0}}]]})


def test_input_percentile_sets_the_input_scale():
    """input_percentile=p takes the input range from abs_percentiles[str(p)] (docs/integer.md):
    s_x = 2.0 / 127 here, not absmax 10 / 127, so 2.0 quantizes to 127 and 3.0 saturates
    (SAT F). Catches the percentile ignored (absmax used) and an unknown one accepted."""
    params = {"weight_ih_l0": np.ones((4, 1)), "weight_hh_l0": np.ones((4, 1))}
    cal = {"input": {"absmax": 10.0, "abs_percentiles": {"99.9": 2.0, "99": 1.0}},
           "layers": [[{"cell": {"absmax": 1.0}}]]}
    q = quantize_lstm_integer(params, cal, input_percentile=99.9)
    assert q.input_scale == 2.0 / 127
    assert quantize_input(q, np.array([[[2.0], [3.0], [1.0]]])).ravel().tolist() == [127, 127, 64]
    assert quantize_lstm_integer(params, cal, input_percentile=99.0).input_scale == 1.0 / 127
    assert quantize_lstm_integer(params, cal).input_scale == 10.0 / 127
    with pytest.raises(ValueError, match="percentile 99.99"):
        quantize_lstm_integer(params, cal, input_percentile=99.99)


def test_accumulator_overflow_is_refused():
    rng = np.random.default_rng(6)
    wide = {"weight_ih_l0": np.ones((4, 600)), "weight_hh_l0": rng.normal(0, 0.1, (4, 1)),
            "bias_ih_l0": np.zeros(4), "bias_hh_l0": np.zeros(4)}
    cal = {"input": {"absmax": 1.0}, "layers": [[{"cell": {"absmax": 1.0}}]]}
    with pytest.raises(ValueError, match="overflow"):
        quantize_lstm_integer(wide, cal, input_bits=16)  # 600 * 127 * 32768 > 2**31
    quantize_lstm_integer(wide, cal, input_bits=8)  # 600 * 127 * 128 fits
    # hand-made parameters that do overflow make the forward raise, never wrap
    d = _one_unit([0, 0, 0, 0], input_bits=16)
    d.w_ih = np.full((4, 1), 127, np.int8)
    d.b_ih = np.full(4, INT32_MAX - 100, np.int32)
    with pytest.raises(OverflowError):
        integer_lstm_step(d, np.full((1, 1), 32767), np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64))
    d.b_ih = np.full(4, INT32_MIN + 100, np.int32)  # and below int32 as well as above
    with pytest.raises(OverflowError):
        integer_lstm_step(d, np.full((1, 1), -32768), np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64))


# ----- determinism, lengths, serialisation, validation ----------------------------------------------------
def _small_model(seed=7, dirs=1):
    rng = np.random.default_rng(seed)
    params = make_params(rng, 6, 3, 1, dirs)
    x = rng.normal(size=(4, 9, 3))
    q = quantize_lstm_integer(params, calibration_for(params, x, 1, dirs))
    return q, quantize_input(q, x)


def test_deterministic_and_batch_independent():
    q, x_q = _small_model(dirs=2)
    a = integer_lstm_forward(q, x_q)
    assert np.array_equal(a, integer_lstm_forward(q, x_q.copy()))
    for b in range(x_q.shape[0]):
        assert np.array_equal(a[b:b + 1], integer_lstm_forward(q, x_q[b:b + 1]))


def test_lengths_match_running_each_sequence_alone():
    q, x_q = _small_model(dirs=2)
    lengths = np.array([9, 4, 1, 6])
    out, state = integer_lstm_sequence(q, x_q, lengths)
    for b, n in enumerate(lengths):
        alone, s_alone = integer_lstm_sequence(q, x_q[b:b + 1, :n])
        assert np.array_equal(out[b, :n], alone[0]) and not out[b, n:].any()
        assert np.array_equal(state[0][0][:, b], s_alone[0][0][:, 0])
        assert np.array_equal(state[0][1][:, b], s_alone[0][1][:, 0])


def test_streaming_in_chunks_equals_one_pass():
    q, x_q = _small_model()
    full, _ = integer_lstm_sequence(q, x_q)
    first, state = integer_lstm_sequence(q, x_q[:, :4])
    second, _ = integer_lstm_sequence(q, x_q[:, 4:], state=state)
    assert np.array_equal(full, np.concatenate([first, second], axis=1))


def test_bidirectional_initial_state_reaches_each_direction():
    """state[k] = (h, c) of shape (D, B, H): row 0 starts the forward direction, row 1 the
    reverse one (at each sequence's last valid step). The oracle walks the steps by hand
    with integer_lstm_step (forward t = 0.., reverse t = n-1..0). Catches the reverse
    direction started from the forward direction's row."""
    q, x_q = _small_model(dirs=2)
    rng = np.random.default_rng(11)
    shape = (2, x_q.shape[0], 6)
    h0 = rng.integers(-20000, 20000, shape)
    c0 = rng.integers(-20000, 20000, shape)
    lengths = np.array([9, 4, 1, 6])
    out, state = integer_lstm_sequence(q, x_q, lengths, state=[(h0, c0)])
    for b, n in enumerate(lengths):
        for j, steps in ((0, range(n)), (1, range(n - 1, -1, -1))):
            h, c = h0[j, b:b + 1], c0[j, b:b + 1]
            for t in steps:
                h, c = integer_lstm_step(q.layers[0][j], x_q[b:b + 1, t], h, c)
                assert np.array_equal(out[b, t, 6 * j:6 * (j + 1)], h[0])
            assert np.array_equal(state[0][0][j, b], h[0]) and np.array_equal(state[0][1][j, b], c[0])
        assert not out[b, n:].any()


def test_json_and_npz_round_trips(tmp_path):
    q, x_q = _small_model(dirs=2)
    want = integer_lstm_forward(q, x_q)
    again = IntegerRecurrentParams.from_dict(json.loads(json.dumps(q.to_dict())))
    assert np.array_equal(integer_lstm_forward(again, x_q), want)
    q.save(tmp_path / "p.npz")
    loaded = load_integer_params(tmp_path / "p.npz")
    assert np.array_equal(integer_lstm_forward(loaded, x_q), want)
    assert loaded.layers[0][1].w_ih.dtype == np.int8 and loaded.layers[0][0].m_ih.dtype == np.int32
    with np.load(tmp_path / "p.npz", allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    # the host side survives too: input scale, bits and cell format, so quantize_input of
    # the reloaded parameters gives the same codes (the forward alone never reads the scale)
    x = np.linspace(-3, 3, 4 * 9 * 3).reshape(4, 9, 3)
    for other in (again, loaded):
        for d0, d1 in zip(sum(q.layers, []), sum(other.layers, [])):
            assert (d1.input_scale, d1.input_bits, d1.cell_frac) == (d0.input_scale, d0.input_bits, d0.cell_frac)
            assert np.array_equal(d1.w_ih_scale, d0.w_ih_scale) and np.array_equal(d1.w_hh_scale, d0.w_hh_scale)
        assert np.array_equal(quantize_input(other, x), quantize_input(q, x))


def test_validation_errors():
    q, x_q = _small_model()
    d = q.layers[0][0]
    with pytest.raises(ValueError, match="int8"):
        IntegerDirection(**{**d.__dict__, "w_ih": np.full(d.w_ih.shape, 200)})
    with pytest.raises(ValueError, match="symmetric"):
        IntegerDirection(**{**d.__dict__, "w_ih": np.full(d.w_ih.shape, -128)})
    with pytest.raises(ValueError, match="outside int8"):
        integer_lstm_forward(q, x_q * 300)
    with pytest.raises(TypeError):
        integer_lstm_forward(q, x_q.astype(np.float32))
    with pytest.raises(ValueError, match="format"):
        IntegerRecurrentParams.from_dict({**q.to_dict(), "version": 99})
    with pytest.raises(ValueError, match="gate_frac/state_frac"):
        IntegerRecurrentParams.from_dict({**q.to_dict(), "gate_frac": 11})
    two_layers = {"weight_ih_l0": np.ones((4, 1)), "weight_hh_l0": np.ones((4, 1)),
                  "weight_ih_l1": np.ones((4, 2)), "weight_hh_l1": np.ones((4, 1)),
                  "weight_ih_l0_reverse": np.ones((4, 1)), "weight_hh_l0_reverse": np.ones((4, 1)),
                  "weight_ih_l1_reverse": np.ones((4, 2)), "weight_hh_l1_reverse": np.ones((4, 1))}
    cell = {"cell": {"absmax": 1.0}}
    for layers in ([[cell, cell]], [[cell], [cell]], [[cell, cell], [cell]], None):  # needs 2 x 2
        with pytest.raises(ValueError, match="calibration needs 'layers' with 2 x 2"):
            quantize_lstm_integer(two_layers, {"input": {"absmax": 1.0}, "layers": layers})
    quantize_lstm_integer(two_layers, {"input": {"absmax": 1.0}, "layers": [[cell, cell], [cell, cell]]})
    with pytest.raises(ValueError, match="input range must be positive"):
        quantize_lstm_integer({"weight_ih_l0": np.ones((4, 1)), "weight_hh_l0": np.ones((4, 1))},
                              {"input": {"absmax": 0.0}, "layers": [[{"cell": {"absmax": 1.0}}]]})
    with pytest.raises(ValueError, match="one entry per layer"):
        integer_lstm_sequence(q, x_q, state=[(np.zeros((1, 4, 6)), np.zeros((1, 4, 6)))] * 2)
    with pytest.raises(ValueError, match="projection"):
        quantize_lstm_integer({"weight_ih_l0": np.ones((8, 2)), "weight_hh_l0": np.ones((8, 1)),
                               "weight_hr_l0": np.ones((1, 2))}, {"input": {"absmax": 1}, "layers": [[{}]]})


@pytest.mark.parametrize("name", ["w_ih", "w_hh"])
def test_a_weight_code_of_minus_128_is_refused_in_either_matrix(name):
    """Weights are symmetric int8 (docs/integer.md: -128 never appears; the C engine's
    sign-trick kernels rely on it), for the recurrent matrix as much as the input one: one
    hand-placed -128 in either is refused when the direction is built, while -127 in the
    same place is fine. Catches the check written for w_ih alone (a w_hh holding -128
    accepted)."""
    d = _one_unit([0, 0, 0, 0])
    for code, ok in ((-127, True), (-128, False)):
        w = np.zeros(getattr(d, name).shape, np.int64)
        w[0, 0] = code
        if ok:
            IntegerDirection(**{**d.__dict__, name: w})
        else:
            with pytest.raises(ValueError, match="symmetric"):
                IntegerDirection(**{**d.__dict__, name: w})


def test_hand_made_parameters_outside_the_c_engine_contract_are_refused():
    """The forms the C engine's lsl_int_model_check refuses (docs/integer.md: m < 0 or
    shift outside 0..62; F outside 5..15; a layer above the first reading anything but the
    int16 h below) are refused in the reference too, when the parameters are built.
    Catches each of those checks dropped."""
    d = _one_unit([0, 0, 0, 0])
    for name in ("m_ih", "m_hh"):
        with pytest.raises(ValueError, match="non-negative"):
            IntegerDirection(**{**d.__dict__, name: np.full(4, -1)})
    for name in ("shift_ih", "shift_hh"):
        for bad in (-1, 63):
            with pytest.raises(ValueError, match="shifts must lie in 0..62"):
                IntegerDirection(**{**d.__dict__, name: np.full(4, bad)})
        IntegerDirection(**{**d.__dict__, name: np.full(4, 62)})  # the edge itself is fine
    for frac in (4, 16):
        with pytest.raises(ValueError, match="cell_frac"):
            IntegerRecurrentParams("lstm", [[_one_unit([0, 0, 0, 0], cell_frac=frac)]])
    for frac in (5, 15):
        IntegerRecurrentParams("lstm", [[_one_unit([0, 0, 0, 0], cell_frac=frac)]])
    with pytest.raises(ValueError, match="int16 h of layer 0"):
        IntegerRecurrentParams("lstm", [[d], [_one_unit([0, 0, 0, 0], input_bits=8)]])
    IntegerRecurrentParams("lstm", [[d], [_one_unit([0, 0, 0, 0], input_bits=16)]])


def test_lstm_cell_update_rounds_both_products_half_away_by_hand():
    """One step with c != 0, written out from docs/integer.md (F = 13): gates read their
    biases, a_i = a_f = a_o = 0 -> 16384 (sigma(0) = 1/2), a_g = +-1.0 -> +-24956
    (tanh(1) * 32768 = 24956.4, a table point). Then
    c = 3:     rrs(16384 * 3, 15) = rrs(1.5) = 2;  rrs(16384 * 24956, 17) = rrs(3119.5) = 3120;  c' = 3122
    c = -3:    -2 and -3120 (ties away from zero, not up);                            c' = -3122
    c = 1001:  rrs(500.5) = 501;                                                      c' = 3621
    and h' = rrs(16384 * tanh_q15(c', 13), 15), within 3 LSB of 16384 * tanh(c' / 8192).
    Catches a flooring f * c shift (3121) and ties rounded up (-3119 - 1)."""
    for g_sign, c0, c_want in ((1, 3, 3122), (-1, -3, -3122), (1, 1001, 3621)):
        d = _one_unit([0.0, 0.0, g_sign * 1.0, 0.0], cell_frac=13)
        h, c = integer_lstm_step(d, np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64), np.array([[c0]]))
        assert int(c[0, 0]) == c_want, (c0, int(c[0, 0]))
        assert abs(int(h[0, 0]) - 16384 * np.tanh(c_want / 8192)) <= 3
