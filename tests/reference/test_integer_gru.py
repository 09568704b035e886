"""The integer-only GRU reference against the float GRU (``torch.nn.GRU`` checks the
float64 helper) with a derived error bound, plus its saturation points.

The bound follows ``test_integer.py``'s derivation; the GRU-specific terms, with
gx / gh the input and recurrent parts of the pre-activations:

* r, z: ``act(gx + gh)`` as for the LSTM gates;
* hn = gh_n clipped to Q3.12 (SAT G): ``e_gh_n + |clip(hn) - hn|``;
* ``r * hn`` (rounded to Q.12): ``r e_hn + e_r (|hn| + e_hn) + 2**-13``;
* n = tanh(gx_n + r hn): the activation term with ``e_gx_n + e_rhn``;
* ``h = (1 - z) n + z h'`` (one rounding to Q0.15):
  ``(1 - z) e_n + e_z (|n| + e_n) + z e_h' + e_z (|h'| + e_h') + 2**-16``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _integer_oracles import GATE_HI, GATE_LO, Q15, act_term, effective, sigmoid, to_int16
from lstmlite.reference.integer import (
    SIGMOID_MAX_ERROR_LSB, STATE_FRAC, TANH_MAX_ERROR_LSB, IntegerDirection, IntegerRecurrentParams,
    dequantize_hidden, load_integer_params, quantize_multiplier,
)
from lstmlite.reference.integer_gru import (
    integer_gru_forward, integer_gru_sequence, integer_gru_step, quantize_gru_integer, quantize_input,
)


def make_params(rng, hidden, inputs, layers=1, dirs=1, hh_std=None, bias_std=0.2):
    std = 1.0 / np.sqrt(hidden)
    hh = hh_std if hh_std is not None else std
    params = {}
    for k in range(layers):
        width = inputs if k == 0 else dirs * hidden
        for d in range(dirs):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            params["weight_ih" + sfx] = rng.normal(0, std, (3 * hidden, width))
            params["weight_hh" + sfx] = rng.normal(0, hh, (3 * hidden, hidden))
            params["bias_ih" + sfx] = rng.normal(0, bias_std, 3 * hidden)
            params["bias_hh" + sfx] = rng.normal(0, bias_std, 3 * hidden)
    return params


def direction_params(params, layer, d):
    sfx = f"_l{layer}" + ("_reverse" if d else "")
    return {"w_ih": params["weight_ih" + sfx], "w_hh": params["weight_hh" + sfx],
            "b_ih": params["bias_ih" + sfx], "b_hh": params["bias_hh" + sfx]}


def float_direction(p, x, reverse=False):
    """Float64 GRU of one direction: gx, gh (B, T, 3H) and h (B, T, H)."""
    batch, steps, _ = x.shape
    hidden = p["w_hh"].shape[1]
    h = np.zeros((batch, hidden))
    rec = {"gx": np.zeros((batch, steps, 3 * hidden)), "gh": np.zeros((batch, steps, 3 * hidden)),
           "h": np.zeros((batch, steps, hidden))}
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        gx = x[:, t] @ p["w_ih"].T + p["b_ih"]
        gh = h @ p["w_hh"].T + p["b_hh"]
        r = sigmoid(gx[:, :hidden] + gh[:, :hidden])
        z = sigmoid(gx[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
        n = np.tanh(gx[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
        h = (1 - z) * n + z * h
        rec["gx"][:, t], rec["gh"][:, t], rec["h"][:, t] = gx, gh, h
    return rec


def float_stack(params, x, layers, dirs):
    data = x
    for k in range(layers):
        data = np.concatenate([float_direction(direction_params(params, k, d), data, bool(d))["h"]
                               for d in range(dirs)], axis=2)
    return data


def test_float_gru_helper_matches_torch():
    rng = np.random.default_rng(0)
    params = make_params(rng, hidden=5, inputs=3, layers=2, dirs=2)
    x = rng.normal(size=(3, 6, 3))
    ref = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True, batch_first=True).double()
    with torch.no_grad():
        for name, value in ref.named_parameters():
            value.copy_(torch.from_numpy(params[name]))
        want = ref(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(float_stack(params, x, 2, 2), want, atol=1e-12)


def gru_bound(p, qd: IntegerDirection, x, e_x, reverse=False, teacher_forced=False):
    """Float h (B, T, H) and the bound on |dequantized integer h - float h|."""
    w_ih, b_ih = effective(qd.w_ih, qd.m_ih, qd.shift_ih, qd.input_scale, qd.b_ih)
    w_hh, b_hh = effective(qd.w_hh, qd.m_hh, qd.shift_hh, 2.0**-STATE_FRAC, qd.b_hh)
    rec = float_direction(p, x, reverse)
    batch, steps, _ = x.shape
    hidden = qd.hidden_size
    e_h = np.zeros((batch, hidden))
    h_prev = np.zeros((batch, hidden))
    out = np.zeros((batch, steps, hidden))
    half_gate = 2.0**-13
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        if teacher_forced:
            e_h = np.abs(h_prev - to_int16(h_prev, STATE_FRAC) / Q15)
        gx, gh = rec["gx"][:, t], rec["gh"][:, t]
        e_gx = (np.abs(x[:, t]) @ np.abs(p["w_ih"] - w_ih).T + e_x[:, t] @ np.abs(w_ih).T
                + np.abs(p["b_ih"] - b_ih) + half_gate)
        e_gh = (np.abs(h_prev) @ np.abs(p["w_hh"] - w_hh).T + e_h @ np.abs(w_hh).T
                + np.abs(p["b_hh"] - b_hh) + half_gate)
        sl = [slice(k * hidden, (k + 1) * hidden) for k in range(3)]
        a_r, a_z = gx[:, sl[0]] + gh[:, sl[0]], gx[:, sl[1]] + gh[:, sl[1]]
        e_r = act_term(sigmoid, a_r, e_gx[:, sl[0]] + e_gh[:, sl[0]], SIGMOID_MAX_ERROR_LSB)
        e_z = act_term(sigmoid, a_z, e_gx[:, sl[1]] + e_gh[:, sl[1]], SIGMOID_MAX_ERROR_LSB)
        r, z = sigmoid(a_r), sigmoid(a_z)
        hn = gh[:, sl[2]]
        e_hn = e_gh[:, sl[2]] + np.abs(np.clip(hn, GATE_LO, GATE_HI) - hn)  # SAT G
        e_rhn = r * e_hn + e_r * (np.abs(hn) + e_hn) + half_gate
        a_n = gx[:, sl[2]] + r * hn
        e_n = act_term(np.tanh, a_n, e_gx[:, sl[2]] + e_rhn, TANH_MAX_ERROR_LSB)
        n = np.tanh(a_n)
        e_h = (1 - z) * e_n + e_z * (np.abs(n) + e_n) + z * e_h + e_z * (np.abs(h_prev) + e_h) + 2.0**-16
        h_prev = rec["h"][:, t]
        out[:, t] = e_h
    return rec["h"], out


def calibration_for(x):
    return {"input": {"absmax": float(np.abs(x).max())}}


@pytest.mark.parametrize("input_bits,per_channel", [(8, True), (16, True), (8, False)])
def test_integer_gru_within_propagated_bound_over_time(input_bits, per_channel):
    rng = np.random.default_rng(1)
    hidden, inputs, batch, steps = 16, 5, 4, 40
    params = make_params(rng, hidden, inputs, hh_std=0.05)
    x = rng.normal(size=(batch, steps, inputs))
    q = quantize_gru_integer(params, calibration_for(x), input_bits=input_bits, per_channel=per_channel)
    x_q = quantize_input(q, x)
    h_int = integer_gru_forward(q, x_q)
    assert h_int.dtype == np.int16 and h_int.shape == (batch, steps, hidden)
    h_float, bound = gru_bound(direction_params(params, 0, 0), q.layers[0][0], x, np.abs(x - x_q * q.input_scale))
    err = np.abs(dequantize_hidden(h_int) - h_float)
    assert np.all(err <= bound + 1e-12), f"bound broken by {np.max(err - bound)}"
    assert bound.max() < (0.04 if per_channel else 0.08), bound.max()


@pytest.mark.parametrize("input_bits", [8, 16])
def test_every_integer_gru_step_within_local_bound(input_bits):
    rng = np.random.default_rng(2)
    hidden, inputs = 16, 5
    params = make_params(rng, hidden, inputs)
    x = rng.normal(size=(4, 30, inputs))
    q = quantize_gru_integer(params, calibration_for(x), input_bits=input_bits)
    d, p = q.layers[0][0], direction_params(params, 0, 0)
    x_q = quantize_input(q, x)
    h_float, bound = gru_bound(p, d, x, np.abs(x - x_q * q.input_scale), teacher_forced=True)
    rec = float_direction(p, x)
    got = np.zeros_like(h_float)
    for t in range(x.shape[1]):
        h_prev = rec["h"][:, t - 1] if t else np.zeros((4, hidden))
        got[:, t] = dequantize_hidden(integer_gru_step(d, x_q[:, t], to_int16(h_prev, STATE_FRAC)))
    err = np.abs(got - h_float)
    assert np.all(err <= bound + 1e-12), f"bound broken by {np.max(err - bound)}"
    assert bound.max() < 0.02 and err.max() < 0.01


def test_stacked_bidirectional_gru_within_bound():
    rng = np.random.default_rng(3)
    hidden, inputs, layers, dirs = 8, 3, 2, 2
    params = make_params(rng, hidden, inputs, layers, dirs, hh_std=0.05)
    x = rng.normal(size=(2, 12, inputs))
    q = quantize_gru_integer(params, calibration_for(x))
    x_q = quantize_input(q, x)
    out = integer_gru_forward(q, x_q)
    data, e = x, np.abs(x - x_q * q.input_scale)
    for k in range(layers):
        results = [gru_bound(direction_params(params, k, d), q.layers[k][d], data, e, bool(d)) for d in range(dirs)]
        data = np.concatenate([r[0] for r in results], axis=2)
        e = np.concatenate([r[1] for r in results], axis=2)
    err = np.abs(dequantize_hidden(out) - data)
    assert out.shape == (2, 12, 2 * hidden)
    assert np.all(err <= e + 1e-12) and e.max() < 0.15


def _one_unit(b_ih, b_hh):
    """A hand-made 1-unit GRU direction with zero weights: the gates read the biases (real)."""
    mult, shift = quantize_multiplier(1.0 / 64)  # acc LSB = 2**-18 real
    to_acc = lambda b: np.round(np.asarray(b, dtype=np.float64) * 2**18).astype(np.int64)  # noqa: E731
    return IntegerDirection(
        w_ih=np.zeros((3, 1)), w_hh=np.zeros((3, 1)), b_ih=to_acc(b_ih), b_hh=to_acc(b_hh),
        m_ih=np.full(3, mult), shift_ih=np.full(3, shift), m_hh=np.full(3, mult), shift_hh=np.full(3, shift),
        cell_frac=0, input_bits=8, input_scale=1.0, w_ih_scale=np.ones(3), w_hh_scale=np.ones(3))


@pytest.mark.parametrize("sign", [1, -1])
def test_candidate_recurrent_part_saturates_not_wraps(sign):  # SAT G, then SAT A
    # r = sigma(8), z = sigma(-8); W_hn h + b_hn = +-1000 saturates to +-8 (not wrapped),
    # so n = tanh(~8 r) and h' = (1 - z) n: close to +-1 with the sign of b_hn.
    d = _one_unit([1000.0, -1000.0, 0.0], [0.0, 0.0, sign * 1000.0])
    h = integer_gru_step(d, np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64))
    z = 1 - sigmoid(8.0)
    want = sign * (1 - z) * np.tanh(8.0 * sigmoid(8.0))
    assert abs(h[0, 0] / Q15 - want) < 2e-4


def test_update_gate_keeps_state_exactly_when_saturated():
    """z = sigma(8) (32757/32768): h' = ((32768 - z) n + z h) >> 15, checked by hand."""
    d = _one_unit([0.0, 1000.0, 0.0], [0.0, 0.0, 0.0])
    h0 = np.array([[20000]])
    h = integer_gru_step(d, np.zeros((1, 1), np.int64), h0)
    z = int(round(Q15 * sigmoid(8.0)))  # table value at 8 (exact: SIGMOID_TABLE[256])
    n = 0  # tanh(0)
    assert h[0, 0] == (z * 20000 + (32768 - z) * n + (1 << 14)) >> 15


def _small_model(dirs=2):
    rng = np.random.default_rng(4)
    params = make_params(rng, 6, 3, 1, dirs)
    x = rng.normal(size=(4, 9, 3))
    q = quantize_gru_integer(params, calibration_for(x))
    return q, quantize_input(q, x)


def test_gru_lengths_streaming_determinism():
    q, x_q = _small_model()
    lengths = np.array([9, 2, 5, 1])
    out, state = integer_gru_sequence(q, x_q, lengths)
    assert np.array_equal(out, integer_gru_sequence(q, x_q.copy(), lengths)[0])
    for b, n in enumerate(lengths):
        alone, s_alone = integer_gru_sequence(q, x_q[b:b + 1, :n])
        assert np.array_equal(out[b, :n], alone[0]) and not out[b, n:].any()
        assert np.array_equal(state[0][:, b], s_alone[0][:, 0])
    q1, x1 = _small_model(dirs=1)
    full, _ = integer_gru_sequence(q1, x1)
    a, s = integer_gru_sequence(q1, x1[:, :3])
    b, _ = integer_gru_sequence(q1, x1[:, 3:], state=s)
    assert np.array_equal(full, np.concatenate([a, b], axis=1))


def test_gru_serialisation_round_trip(tmp_path):
    q, x_q = _small_model()
    want = integer_gru_forward(q, x_q)
    again = IntegerRecurrentParams.from_dict(json.loads(json.dumps(q.to_dict())))
    assert again.cell == "gru" and np.array_equal(integer_gru_forward(again, x_q), want)
    q.save(tmp_path / "g.npz")
    assert np.array_equal(integer_gru_forward(load_integer_params(tmp_path / "g.npz"), x_q), want)
    with pytest.raises(ValueError, match="LSTM"):
        from lstmlite.reference.integer import integer_lstm_forward
        integer_lstm_forward(q, x_q)


# ----- one step worked by hand ----------------------------------------------------------------------
# _one_unit's gates read their biases: a real bias b is b * 4096 in Q3.12. The products
# below are written out from docs/integer.md's GRU step and rounded by hand (half away
# from zero); the table values used are float facts: sigmoid_q15(0) = 16384, tanh(1) *
# 32768 = 24956.4 -> 24956 (a table point, k = 32), tanh(2 / 4096) * 32768 = 15.999 -> 16.
def _step(b_ih, b_hh, h):
    d = _one_unit(b_ih, b_hh)
    return int(integer_gru_step(d, np.zeros((1, 1), np.int64), np.array([[h]]))[0, 0])


def test_gru_step_update_mix_by_hand():  # h' = rrs((32768 - z) n + z h, 15)
    """z = 16384 (a_z = 0), n = 24956 (a_n = 1.0, r * hn = 0):
    h = 0:     16384 * 24956 / 32768 = 12478 exactly;
    h = 20000: (16384 * 24956 + 16384 * 20000) / 32768 = 22478 exactly;
    h = 1:     12478.5 -> 12479 (half away from zero).
    Catches 32767 - z for 32768 - z (12477, 22477) and a flooring final shift (12478)."""
    assert _step([0.0, 0.0, 1.0], [0.0, 0.0, 0.0], 0) == 12478
    assert _step([0.0, 0.0, 1.0], [0.0, 0.0, 0.0], 20000) == 22478
    assert _step([0.0, 0.0, 1.0], [0.0, 0.0, 0.0], 1) == 12479
    assert _step([0.0, 0.0, -1.0], [0.0, 0.0, 0.0], -20000) == -22478


def test_gru_step_reset_product_rounds_half_away_by_hand():  # n = tanh(gx_n + rrs(r * hn, 15))
    """r = 16384 (a_r = 0), hn = 3 LSB of Q3.12: r * hn / 32768 = 1.5 -> 2, so n =
    tanh_q15(2) = 16; z = sigma(-8) = 11 (SAT A, E), h = 0: h' = rrs(32757 * 16, 15) =
    15.99 -> 16. A flooring r * hn shift gives tanh_q15(1) = 8, h' = 8."""
    assert _step([0.0, -1000.0, 0.0], [0.0, 0.0, 3 / 4096], 0) == 16


def test_gru_candidate_recurrent_part_saturates_before_the_reset_gate_by_hand():  # SAT G
    """W_hn h + b_hn = 20 is clipped to 8 - 2**-12 (Q3.12) *before* r multiplies it:
    r = sigma(-2) = 0.1192, so n = tanh(0.1192 * 8) = 0.7414 (not tanh(0.1192 * 20) =
    0.9830 as without SAT G); z = sigma(-8), h = 0: h' = (1 - z) n. Float oracle within
    a few LSB."""
    got = _step([-2.0, -1000.0, 0.0], [0.0, 0.0, 20.0], 0)
    r = sigmoid(-2.0)
    z = 11 / Q15  # sigmoid_q15 at SAT A's -8: 32768 - 32757
    want = (1 - z) * np.tanh(r * (8 - 2.0**-12)) * Q15
    assert abs(got - want) <= 8, (got, want)
    assert abs(got - (1 - z) * np.tanh(r * 20.0) * Q15) > 5000
