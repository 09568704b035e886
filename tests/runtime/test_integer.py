"""Integer-only runtime: outputs and states identical, bit for bit, to the NumPy
integer reference (lstmlite.reference.integer / integer_gru), saturations included."""

from __future__ import annotations

import numpy as np
import pytest

from lstmlite import runtime as rt

integer = pytest.importorskip("lstmlite.reference.integer")
integer_gru = pytest.importorskip("lstmlite.reference.integer_gru")


def _float_params(cell, i, h, layers, bidir, scale, rng):
    g = 4 if cell == "lstm" else 3
    params = {}
    for k in range(layers):
        in_size = i if k == 0 else h * (2 if bidir else 1)
        for suffix in ["", "_reverse"][: 2 if bidir else 1]:
            params[f"weight_ih_l{k}{suffix}"] = rng.normal(0, scale, (g * h, in_size))
            params[f"weight_hh_l{k}{suffix}"] = rng.normal(0, scale, (g * h, h))
            params[f"bias_ih_l{k}{suffix}"] = rng.normal(0, scale, g * h)
            params[f"bias_hh_l{k}{suffix}"] = rng.normal(0, scale, g * h)
    return params


def _quantized(cell, i, h, layers, bidir, input_bits, per_channel, scale, cell_absmax, seed):
    rng = np.random.default_rng(seed)
    params = _float_params(cell, i, h, layers, bidir, scale, rng)
    d = 2 if bidir else 1
    calibration = {"input": {"absmax": 2.0},
                   "layers": [[{"cell": {"absmax": cell_absmax}} for _ in range(d)] for _ in range(layers)]}
    fn = integer.quantize_lstm_integer if cell == "lstm" else integer_gru.quantize_gru_integer
    return fn(params, calibration, input_bits=input_bits, per_channel=per_channel), rng


def _reference(params, x_q, lengths=None, state=None):
    fn = integer.integer_lstm_sequence if params.cell == "lstm" else integer_gru.integer_gru_sequence
    return fn(params, x_q, lengths, state)


def _assert_state_equal(a, b):
    assert len(a) == len(b)
    for sa, sb in zip(a, b):
        for ta, tb in zip(sa if isinstance(sa, tuple) else (sa,), sb if isinstance(sb, tuple) else (sb,)):
            np.testing.assert_array_equal(ta, tb)


CASES = [
    # cell, I, H, layers, bidirectional, input_bits, per_channel, weight scale, cell absmax
    ("lstm", 5, 12, 1, False, 8, True, 0.3, 2.0),
    ("lstm", 7, 9, 2, True, 16, True, 0.3, 2.0),
    ("lstm", 4, 16, 1, False, 8, False, 0.3, 2.0),
    ("lstm", 6, 8, 2, False, 8, True, 2.0, 0.05),   # SAT A (gates past +-8) and SAT C (tiny cell range)
    ("gru", 5, 12, 1, False, 8, True, 0.3, 2.0),
    ("gru", 7, 9, 2, True, 16, False, 0.3, 2.0),
    ("gru", 6, 8, 1, False, 8, True, 2.5, 2.0),     # saturating GRU gates
    ("gru", 5, 6, 3, True, 8, True, 0.3, 2.0),      # a middle layer must not write the buffer it reads
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-L{c[3]}{'-bi' if c[4] else ''}-in{c[5]}"
                         f"{'' if c[6] else '-pertensor'}-w{c[7]}")
def test_run_is_bit_exact_with_the_reference(case):
    params, rng = _quantized(*case, seed=CASES.index(case))
    x_q = integer.quantize_input(params, rng.normal(0, 1.5, size=(3, 8, case[1])))
    lengths = np.array([8, 3, 1])
    engine = rt.IntegerEngine(params)
    for lens in (None, lengths):
        ref_out, ref_state = _reference(params, x_q, lens)
        out, state = engine.run(x_q, lens)
        assert out.dtype == np.int16
        np.testing.assert_array_equal(out, ref_out)
        _assert_state_equal(state, ref_state)
    # from a non-zero initial state
    _, mid = _reference(params, x_q[:, :4])
    ref_out, ref_state = _reference(params, x_q[:, 4:], None, mid)
    out, state = engine.run(x_q[:, 4:], state=mid)
    np.testing.assert_array_equal(out, ref_out)
    _assert_state_equal(state, ref_state)


def test_saturating_case_really_saturates():
    """The SAT case of CASES must reach the limits, else it tests nothing special."""
    params, rng = _quantized("lstm", 6, 8, 2, False, 8, True, 2.0, 0.05, seed=1)
    x_q = integer.quantize_input(params, rng.normal(0, 1.5, size=(3, 8, 6)))
    _, state = rt.IntegerEngine(params).run(x_q)
    c = np.concatenate([s[1].ravel() for s in state]).astype(np.int64)
    assert np.abs(c).max() == 32767 or np.abs(c).max() == 32768


@pytest.mark.parametrize("input_bits", [8, 16])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_is_bit_exact_with_the_reference_step(cell, input_bits):
    """With 16-bit inputs the step's values reach past int8 (a cast through int8 would
    wrap them); the stepped outputs and state still equal the reference's sequence."""
    params, rng = _quantized(cell, 5, 10, 2, False, input_bits, True, 0.4, 2.0, seed=7)
    x_q = integer.quantize_input(params, rng.normal(0, 1.0, size=(2, 6, 5)))
    assert np.abs(x_q).max() > (127 if input_bits == 16 else 0)
    engine = rt.IntegerEngine(params)
    state = engine.new_state(batch=2)
    stepped = np.stack([engine.step(x_q[:, t], state) for t in range(6)], axis=1)
    ref_out, ref_state = _reference(params, x_q)
    np.testing.assert_array_equal(stepped, ref_out)
    flat = engine._flatten(ref_state, 2)
    np.testing.assert_array_equal(state, flat)


def test_step_refuses_inputs_laid_out_other_than_streams_by_features():
    """step() of a state of 2 streams of I = 5 inputs: x_t.T (5, 2) holds a multiple of I
    values, and a reshape to (-1, I) stepped it with streams and features mixed up; it is
    refused naming the shape. (2, 5) steps bit-exactly as the reference."""
    params, rng = _quantized("lstm", 5, 10, 1, False, 8, True, 0.4, 2.0, seed=7)
    x_q = integer.quantize_input(params, rng.normal(0, 1.0, size=(2, 1, 5)))
    engine = rt.IntegerEngine(params)
    for bad in (x_q[:, 0].T, x_q[:, 0].reshape(-1)):
        with pytest.raises(ValueError, match=r"x_t must be \(B, 5\)"):
            engine.step(bad, engine.new_state(batch=2))
    np.testing.assert_array_equal(engine.step(x_q[:, 0], engine.new_state(batch=2)), _reference(params, x_q)[0][:, 0])


def test_out_of_range_inputs_and_overflowing_parameters_are_errors():
    params, rng = _quantized("lstm", 4, 6, 1, False, 8, True, 0.3, 2.0, seed=3)
    engine = rt.IntegerEngine(params)
    bad = np.zeros((1, 2, 4), np.int16)
    bad[0, 1, 2] = 200  # outside int8, the declared input width
    with pytest.raises(rt.RuntimeError_, match="width"):
        engine.run(bad)
    with pytest.raises(TypeError, match="x_q must be integers"):
        engine.run(bad.astype(np.float32))
    with pytest.raises(TypeError, match="x_t must be integers"):  # not cast: 0.6 would step as 0
        engine.step(np.full((1, 4), 0.6, np.float32), engine.new_state())
    # an initial state of another batch size is named, not read past or short
    wrong = [(np.zeros((1, 1, 6), np.int16), np.zeros((1, 1, 6), np.int16))]
    with pytest.raises(ValueError, match=r"layer 0 state must be \(D, B, H\) = \(1, 2, 6\)"):
        engine.run(np.zeros((2, 3, 4), np.int16), state=wrong)
    # hand-made parameters whose accumulator overflows int32: the reference raises, so must we
    d = params.layers[0][0]
    d.b_ih = np.full_like(d.b_ih, 2**31 - 1)
    d.w_ih = np.full_like(d.w_ih, 127)
    x = np.full((1, 1, 4), 127, np.int64)
    with pytest.raises(OverflowError):
        integer.integer_lstm_forward(params, x)
    with pytest.raises(rt.RuntimeError_, match="overflow"):
        rt.IntegerEngine(params).run(x)


def test_bidirectional_models_refuse_to_stream_with_a_clear_error():
    params, rng = _quantized("lstm", 7, 9, 2, True, 16, True, 0.3, 2.0, seed=2)
    engine = rt.IntegerEngine(params)
    with pytest.raises(ValueError, match="bidirectional"):
        engine.step(np.zeros((1, 7), np.int16), engine.new_state())


def test_negative_ties_round_half_away_from_zero():
    """Every right shift rounds half away from zero, negative ties too. Multipliers 2^30
    with shifts 31..33 (a division by 2..8) make many input accumulators ties, and n-gate
    recurrent terms of -2^14 make rrs(r * hn, 15) = -r / 2 a tie whenever r is odd. A
    shift that rounds half up ((x + half) >> s, right for x >= 0 only) fails."""
    rng = np.random.default_rng(11)
    i, h = 5, 8
    g = 3 * h
    w_hh = rng.integers(-40, 41, (g, h))
    w_hh[2 * h:] = 0  # the n rows: hn = requant(b_hh) = -2^14 whatever h is
    b_hh = rng.integers(-2000, 2001, g)
    b_hh[2 * h:] = -(1 << 14)
    shift_ih = rng.integers(31, 34, g)
    shift_hh = np.full(g, 42)
    shift_hh[2 * h:] = 30  # rrs(-2^14 * 2^30, 30) = -2^14 exactly
    d = integer.IntegerDirection(
        w_ih=rng.integers(-127, 128, (g, i)), w_hh=w_hh, b_ih=rng.integers(-5000, 5001, g), b_hh=b_hh,
        m_ih=np.full(g, 1 << 30), shift_ih=shift_ih, m_hh=np.full(g, 1 << 30), shift_hh=shift_hh,
        cell_frac=0, input_bits=8, input_scale=1.0, w_ih_scale=np.ones(g), w_hh_scale=np.ones(g))
    params = integer.IntegerRecurrentParams("gru", [[d]])
    x_q = rng.integers(-128, 128, (2, 10, i))
    acc = x_q @ d.w_ih.T.astype(np.int64) + d.b_ih  # rrs(acc * 2^30, s) = rrs(acc, s - 30)
    ties = (acc < 0) & (acc % (1 << (shift_ih - 30)) == (1 << (shift_ih - 31)))
    assert ties.sum() > 20  # the case really holds negative ties
    out, state = rt.IntegerEngine(params).run(x_q)
    ref_out, ref_state = _reference(params, x_q)
    np.testing.assert_array_equal(out, ref_out)
    _assert_state_equal(state, ref_state)


def test_inputs_are_accepted_exactly_within_their_width():
    """8-bit input: -128 and 127 run (as the reference runs them), 128 and -129 are refused
    by the C check (a bound off by one took 128); 16-bit input: values past int16 on either
    side are refused before the cast to int16 could wrap them into range."""
    params, rng = _quantized("lstm", 4, 6, 1, False, 8, True, 0.3, 2.0, seed=3)
    engine = rt.IntegerEngine(params)
    x = rng.integers(-128, 128, (2, 3, 4))
    x[0, 0, :2] = [-128, 127]
    np.testing.assert_array_equal(engine.run(x)[0], _reference(params, x)[0])
    for bad in (128, -129):
        x_bad = x.copy()
        x_bad[1, 2, 3] = bad
        with pytest.raises(ValueError):
            _reference(params, x_bad)
        with pytest.raises(rt.RuntimeError_, match="width"):
            engine.run(x_bad)
    params16, rng = _quantized("lstm", 4, 6, 1, False, 16, True, 0.3, 2.0, seed=4)
    engine16 = rt.IntegerEngine(params16)
    for bad in (32768, -32769):
        x_bad = np.zeros((1, 2, 4), np.int64)
        x_bad[0, 1, 0] = bad
        with pytest.raises(ValueError, match="outside int16"):
            engine16.run(x_bad)


def test_step_refuses_inputs_past_int16_and_a_scalar_as_run_does():
    """step() checks its x_t as run() checks x: an int64 32768 would wrap to -32768 in
    the cast to int16 and step silently (run refuses it, and so does the reference's
    integer_lstm_step); a 0-d x_t is a shape error (ValueError), not an IndexError."""
    params16, _ = _quantized("lstm", 4, 6, 1, False, 16, True, 0.3, 2.0, seed=4)
    engine = rt.IntegerEngine(params16)
    state = engine.new_state(1)
    for bad in (32768, -32769):
        x_t = np.zeros((1, 4), np.int64)
        x_t[0, 2] = bad
        zeros = np.zeros((1, 6), np.int16)
        with pytest.raises(ValueError):
            integer.integer_lstm_step(params16.layers[0][0], x_t, zeros, zeros)
        with pytest.raises(ValueError, match="outside int16"):
            engine.step(x_t, state)
    with pytest.raises(ValueError, match="x_t must be"):
        engine.step(np.int64(3), state)


def test_lengths_outside_one_to_t_are_refused_like_the_reference():
    """Lengths lie in 1..T (lsl.h, the reference's check_lengths): a zero length, which a
    check of lengths >= 0 would take (running nothing for that row), and T + 1 are errors."""
    params, rng = _quantized("lstm", 5, 12, 1, False, 8, True, 0.3, 2.0, seed=5)
    x_q = integer.quantize_input(params, rng.normal(0, 1.5, size=(3, 8, 5)))
    engine = rt.IntegerEngine(params)
    for bad in ([8, 0, 1], [8, 3, 9]):
        with pytest.raises(ValueError, match="lengths"):
            _reference(params, x_q, np.array(bad))
        with pytest.raises(rt.RuntimeError_):
            engine.run(x_q, np.array(bad))


@pytest.mark.parametrize("bad", [np.array([8, 2.5, 1]), np.array([8, 2**32 + 3, 1], np.int64)],
                         ids=["fraction", "int64-past-int32"])
def test_lengths_are_checked_before_the_cast_to_int32(bad):
    """2.5 steps, or an int64 2**32 + 3 (3 after a cast to int32), is no length in 1..T,
    and the reference refuses it; a bare cast ran them as 2 and 3 steps silently."""
    params, rng = _quantized("lstm", 5, 12, 1, False, 8, True, 0.3, 2.0, seed=5)
    x_q = integer.quantize_input(params, rng.normal(0, 1.5, size=(3, 8, 5)))
    engine = rt.IntegerEngine(params)
    with pytest.raises(ValueError, match="lengths"):
        _reference(params, x_q, bad)
    with pytest.raises(ValueError, match=r"lengths must be \(B,\) = \(3,\) with values in \[1, 8\]"):
        engine.run(x_q, bad)
    good = np.array([8, 3, 1])
    np.testing.assert_array_equal(engine.run(x_q, good.astype(np.float64))[0], _reference(params, x_q, good)[0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_initial_states_outside_int16_are_refused_like_the_reference(cell):
    """An initial h of 40000 is no int16 state: the reference refuses it ("h has values
    outside int16"); the engine's cast to int16 wrapped it to -25536 and ran on that.
    In range, the same state runs bit-exactly as the reference."""
    params, rng = _quantized(cell, 5, 6, 1, False, 8, True, 0.3, 2.0, seed=4)
    x_q = integer.quantize_input(params, rng.normal(0, 1.0, size=(2, 3, 5)))
    engine = rt.IntegerEngine(params)

    def state(value):
        h = np.full((1, 2, 6), value, np.int64)
        return [(h, np.zeros_like(h))] if cell == "lstm" else [h]

    with pytest.raises(ValueError, match="outside int16"):
        _reference(params, x_q, None, state(40000))
    with pytest.raises(ValueError, match="layer 0 state has values outside int16"):
        engine.run(x_q, state=state(40000))
    out, final = engine.run(x_q, state=state(-25536))
    ref_out, ref_final = _reference(params, x_q, None, state(-25536))
    np.testing.assert_array_equal(out, ref_out)
    _assert_state_equal(final, ref_final)


def test_step_through_layers_of_different_widths_is_bit_exact():
    """A stack of H = 6 over H = 4: a step writes each stream's top-layer h at rows of the
    top layer's width (a stride of the first layer's width put stream 1 past its row)."""
    rng = np.random.default_rng(9)
    cal = {"input": {"absmax": 2.0}, "layers": [[{"cell": {"absmax": 2.0}}]]}
    low = integer.quantize_lstm_integer(_float_params("lstm", 5, 6, 1, False, 0.3, rng), cal)
    cal16 = {"input": {"absmax": 1.0}, "layers": [[{"cell": {"absmax": 2.0}}]]}
    params_top = {"weight_ih_l0": rng.normal(0, 0.3, (16, 6)), "weight_hh_l0": rng.normal(0, 0.3, (16, 4))}
    top = integer.quantize_lstm_integer(params_top, cal16, input_bits=16)
    params = integer.IntegerRecurrentParams("lstm", [low.layers[0], top.layers[0]])
    x_q = integer.quantize_input(params, rng.normal(0, 1.0, size=(3, 6, 5)))
    engine = rt.IntegerEngine(params)
    state = engine.new_state(batch=3)
    stepped = np.stack([engine.step(x_q[:, t], state) for t in range(6)], axis=1)
    ref_out, ref_state = _reference(params, x_q)
    assert stepped.shape == ref_out.shape == (3, 6, 4)
    np.testing.assert_array_equal(stepped, ref_out)
    np.testing.assert_array_equal(state, engine._flatten(ref_state, 3))
