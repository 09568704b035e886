"""The TFLite-compatible integer LSTM (lstmlite.reference.tflite_int) against TFLite
Micro's own outputs: the 8 CMSIS-NN LSTM vector sets in ../shared/peers/tflm-lstm-testdata
(int8 activations with int16 cell: lstm_1, lstm_2, lstm_one_time_step, stateful batch-major
multibatch; and their 16x8 "_s16" variants).

Mutations tried by hand on the reference (which of these tests caught them) are listed in
docs/tflite-compat.md; the tests below that name a mutation keep the discriminating ones
discriminating.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lstmlite.reference import tflite_int as T

_spec = importlib.util.spec_from_file_location("_tflm_vectors", Path(__file__).resolve().parents[1] / "_tflm_vectors.py")
V = sys.modules.setdefault("_tflm_vectors", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(V)

needs_vectors = pytest.mark.skipif(not V.available(), reason=f"TFLM vectors not found at {V.VECTOR_ROOT}")


@pytest.fixture(scope="module")
def cases():
    return {name: V.load_case(name) for name in V.ALL_CASES}


@needs_vectors
@pytest.mark.parametrize("name", V.ALL_CASES)
def test_bit_exact_with_tflite_micro(cases, name):
    """Every output integer equals TFLite Micro's, for int8 and 16x8 models alike."""
    case = cases[name]
    out, _ = T.tflite_lstm_sequence(case.params, case.x)
    assert out.dtype == (np.int8 if case.params.activation_bits == 8 else np.int16)
    np.testing.assert_array_equal(out, case.expected)


@needs_vectors
def test_time_major_layout(cases):
    """lstm_1 is stored time-major; running it in that layout gives the stored output."""
    case = cases["lstm_1"]
    assert case.time_major
    out, _ = T.tflite_lstm_sequence(case.params, case.x_file_order, time_major=True)
    np.testing.assert_array_equal(out, case.expected_file_order)


@needs_vectors
@pytest.mark.parametrize("name", ["lstm_stateful_batch_major_multibatch", "lstm_1_s16"])
def test_state_carries_between_calls(cases, name):
    """Stateful use: the sequence cut in two calls with the state passed on, or stepped
    one step at a time, gives the whole-sequence output."""
    case = cases[name]
    steps = case.x.shape[1]
    cut = max(1, steps // 2)
    first, state = T.tflite_lstm_sequence(case.params, case.x[:, :cut])
    second, _ = T.tflite_lstm_sequence(case.params, case.x[:, cut:], state)
    np.testing.assert_array_equal(np.concatenate([first, second], axis=1), case.expected)
    state = T.initial_state(case.params, case.x.shape[0])
    for t in range(steps):
        h, state = T.tflite_lstm_step(case.params, case.x[:, t], state)
        np.testing.assert_array_equal(h, case.expected[:, t])


@needs_vectors
def test_vectors_detect_rounding_mode(cases):
    """Mutation kept as a test: TFLite's default double rounding is what the vectors hold;
    the TFLITE_SINGLE_ROUNDING build's single rounding changes lstm_2's output."""
    case = cases["lstm_2"]
    single, _ = T.tflite_lstm_sequence(case.params.with_rounding("single"), case.x)
    assert not np.array_equal(single, case.expected)


@needs_vectors
def test_vectors_detect_the_table(cases):
    """Mutation kept as a test: TFLite's tuned sigmoid table is needed; plain roundings of
    65536 * sigmoid(k/24) (44 entries differ by one) break four vector sets."""
    plain = np.minimum(np.rint(65536 / (1 + np.exp(-np.arange(256) / 24))), 65535).astype(np.uint16)
    assert np.count_nonzero(plain != T.SIGMOID_TABLE_U16) == 44
    original = T.SIGMOID_TABLE_U16
    try:
        T.SIGMOID_TABLE_U16 = plain
        broken = [n for n, c in cases.items() if not np.array_equal(T.tflite_lstm_sequence(c.params, c.x)[0], c.expected)]
    finally:
        T.SIGMOID_TABLE_U16 = original
    assert len(broken) == 4


# ----- primitives: TFLite's documented semantics on hand-picked ties ----------------------
def test_rounding_divide_by_pot_rounds_half_away_from_zero():
    x = np.array([-7, -6, -5, -3, -1, 1, 3, 5, 6, 7])
    expected = [-4, -3, -3, -2, -1, 1, 2, 3, 3, 4]  # x / 2 exactly, then half away from zero
    assert T.rounding_divide_by_pot(x, 1).tolist() == expected


def test_srdhm_rounds_ties_up_and_saturates():
    # a * 2**30 / 2**31 = a / 2: ties (odd a) go toward +inf, as VQRDMULH
    assert T.saturating_rounding_doubling_high_mul(np.array([-3, -1, 1, 3]), 1 << 30).tolist() == [-1, 0, 1, 2]
    assert T.saturating_rounding_doubling_high_mul(np.array([-(1 << 31)]), -(1 << 31)).tolist() == [(1 << 31) - 1]


def test_mbqm_matches_exact_rational_within_one():
    """Independent oracle (exact rationals): mbqm is within one LSB of x * M / 2**(31 - s)."""
    rng = np.random.default_rng(0)
    x = rng.integers(-(1 << 24), 1 << 24, 2000)
    for m, s in [(1 << 30, -14), (1441324494, -22), (2123904128, -3), (1080990464, 1)]:
        got = T.multiply_by_quantized_multiplier(x, m, s)
        exact = x.astype(np.float64) * m * 2.0 ** (s - 31)
        assert np.abs(got - exact).max() <= 1.0


def test_activations_approximate_the_functions():
    """Independent oracle (float math): TFLite's LUT sigmoid/tanh stay within a few LSB of
    32768 * f(x) over every int16 input."""
    x = np.arange(-32768, 32768)
    sig = T.sigmoid_lut(x)
    assert np.abs(sig - 32768 / (1 + np.exp(-x / 4096))).max() < 12
    for left_shift in (0, -2, -3, 2):  # cell scale powers -12, -14, -15, -10
        th = T.tanh_lut(x, left_shift)
        assert np.abs(th - 32768 * np.tanh(x / 2.0 ** (12 - left_shift))).max() < 12
        assert np.all(np.diff(th) >= 0)
    assert np.all(np.diff(sig) >= 0) and sig.min() >= 0 and sig.max() <= 32767


def test_parameter_validation():
    g = T.TFLiteGate(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros(2), 1 << 30, -3, 1 << 30, -3)
    base = dict(input_zero_point=0, output_zero_point=0, cell_scale_power=-12, forget_cell_multiplier=1 << 30,
                forget_cell_shift=-14, input_cell_multiplier=1 << 30, input_cell_shift=-17,
                output_multiplier=1 << 30, output_shift=-22)
    p = T.TFLiteLSTMParams(g, g, g, g, **base)
    with pytest.raises(ValueError):
        T.TFLiteLSTMParams(g, g, g, g, **{**base, "output_zero_point": 200})
    with pytest.raises(ValueError):
        T.TFLiteLSTMParams(g, g, g, g, **{**base, "output_multiplier": -1})
    with pytest.raises(ValueError):
        replace(p, activation_bits=12)
    with pytest.raises(ValueError):
        T.TFLiteGate(np.zeros((2, 3)), np.zeros((3, 3)), np.zeros(2), 1, 0, 1, 0)
    with pytest.raises(ValueError):
        T.tflite_lstm_sequence(p, np.full((1, 2, 3), 300))
    with pytest.raises(ValueError, match="shift <= 0"):  # f * c << s could leave int32
        T.TFLiteLSTMParams(g, g, g, g, **{**base, "forget_cell_shift": 1})
    with pytest.raises(ValueError, match="int8 activations only"):
        T.TFLiteLSTMParams(g, g, g, g, **{**base, "kernel": "lite", "activation_bits": 16})


def test_accumulator_overflow_is_refused_when_built_and_never_wraps():
    """Issue 15 item 6: the worst case |b| + sum|W| * max|x - z_x| (255 for z_x = -128) is
    derived per row and refused past int32 when the parameters are built; parameters
    edited past that check still raise at run time instead of wrapping."""

    def params(cols, w=127):
        g = T.TFLiteGate(np.full((1, cols), w), np.zeros((1, 1)), np.zeros(1), 1 << 30, -3, 1 << 30, -3)
        return T.TFLiteLSTMParams(g, g, g, g, input_zero_point=-128, output_zero_point=0, cell_scale_power=-12,
                                  forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
                                  input_cell_multiplier=1 << 30, input_cell_shift=-17, output_multiplier=1 << 30,
                                  output_shift=-22)

    widest = (2**31 - 1) // (127 * 255)  # 66,313 columns of |w| = 127 against x - z_x in [0, 255]
    ok = params(widest)
    assert T.accumulator_bounds(ok)[0][2][0] == widest * 127 * 255
    with pytest.raises(ValueError, match=r"input gate input matmul row 0 could overflow its accumulator: "
                                         r".* = 2266950000 > 2147483647"):
        params(70000)
    # a left shift s > 0 of the 32-bit mbqm lowers the limit to 2**(31 - s) - 1
    g = ok.input_gate
    with pytest.raises(ValueError, match=r"> 1073741823"):
        T.TFLiteLSTMParams(T.TFLiteGate(g.input_weights, g.hidden_weights, g.bias, 1 << 30, 1, 1 << 30, -3),
                           g, g, g, **{k: getattr(ok, k) for k in (
                               "input_zero_point", "output_zero_point", "cell_scale_power", "forget_cell_multiplier",
                               "forget_cell_shift", "input_cell_multiplier", "input_cell_shift", "output_multiplier",
                               "output_shift")})
    # weights edited past the check (a frozen dataclass, forced): the run raises, never wraps
    object.__setattr__(ok.input_gate, "input_weights", np.full((1, widest), 127, np.int8))
    object.__setattr__(ok.input_gate, "bias", np.full(1, 2**31 - 1, np.int64))
    with pytest.raises(OverflowError):
        T.tflite_lstm_sequence(ok, np.full((1, 1, widest), 127))


@pytest.mark.parametrize("sign", [1, -1])
def test_an_int8_accumulator_past_either_end_of_int32_raises(sign):
    """One input column, z_x = -128 and x = 127 (x - z_x = 255), weight ±127 forced in
    after the build-time check (a frozen dataclass): by hand the accumulator is
    b ± 127 * 255 = b ± 32385. A bias putting it exactly on 2**31 - 1 / -2**31 runs; one
    more step outward raises OverflowError (TFLite would wrap). Catches the run-time check
    of the top end alone, which lets the negative overflow through as a saturated -32768
    gate instead of an error."""
    g = T.TFLiteGate(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1), 1 << 30, -3, 1 << 30, -3)
    p = T.TFLiteLSTMParams(g, g, g, g, input_zero_point=-128, output_zero_point=0, cell_scale_power=-12,
                           forget_cell_multiplier=1 << 30, forget_cell_shift=-14, input_cell_multiplier=1 << 30,
                           input_cell_shift=-17, output_multiplier=1 << 30, output_shift=-22)
    edge = 2**31 - 1 if sign > 0 else -(2**31)
    object.__setattr__(p.input_gate, "input_weights", np.array([[sign * 127]], np.int8))
    x = np.full((1, 1, 1), 127)
    object.__setattr__(p.input_gate, "bias", np.array([edge - sign * 127 * 255], np.int64))
    T.tflite_lstm_sequence(p, x)  # exactly on the int32 end: fine
    object.__setattr__(p.input_gate, "bias", np.array([edge - sign * 127 * 255 + sign], np.int64))
    with pytest.raises(OverflowError, match="int32 accumulator overflow"):
        T.tflite_lstm_sequence(p, x)


def test_an_accumulator_whose_left_shift_reaches_2_31_raises():
    """The int8 kernel's mbqm shifts the int32 accumulator left by s > 0 first, in int32:
    with s = 1 an accumulator of 2**30 becomes 2**31, one past INT32_MAX, which TFLite
    wraps. Forced past the build-time bound (one column, z_x = -128, x = 127, weight 127:
    by hand acc = b + 32385), acc = 2**30 - 1 runs and acc = 2**30 raises OverflowError.
    Catches the check written with > instead of >= (2**30 << 1 let through)."""
    g = T.TFLiteGate(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1), 1 << 30, -3, 1 << 30, -3)
    shifted = T.TFLiteGate(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1), 1 << 30, 1, 1 << 30, -3)
    p = T.TFLiteLSTMParams(shifted, g, g, g, input_zero_point=-128, output_zero_point=0, cell_scale_power=-12,
                           forget_cell_multiplier=1 << 30, forget_cell_shift=-14, input_cell_multiplier=1 << 30,
                           input_cell_shift=-17, output_multiplier=1 << 30, output_shift=-22)
    object.__setattr__(p.input_gate, "input_weights", np.array([[127]], np.int8))
    x = np.full((1, 1, 1), 127)
    object.__setattr__(p.input_gate, "bias", np.array([2**30 - 1 - 127 * 255], np.int64))
    T.tflite_lstm_sequence(p, x)  # (2**30 - 1) << 1 = 2**31 - 2 fits int32
    object.__setattr__(p.input_gate, "bias", np.array([2**30 - 127 * 255], np.int64))
    with pytest.raises(OverflowError, match="shift overflows int32"):
        T.tflite_lstm_sequence(p, x)


@needs_vectors
def test_vectors_cannot_tell_tflm_literal_multipliers(cases):
    """The vector headers give f * c and i * g multipliers as exact powers of two; TFLite
    Micro's kernel derives them from its float32 literal 0.00003051757 (a few ULP below
    2**-15), which is what read_tflite_lstm(kernel='micro') does. Both give TFLite Micro's
    outputs on every set, so the vectors do not decide between them (recorded, not hidden)."""
    from lstmlite.importers.tflite import quantize_multiplier_tflite as qm

    nl = float(np.float32(0.00003051757))
    for case in cases.values():
        p = case.params
        scale = 2.0 ** p.cell_scale_power
        q = replace(p, **dict(zip(("forget_cell_multiplier", "forget_cell_shift"), qm(nl * scale / scale))))
        if p.activation_bits == 8:
            q = replace(q, **dict(zip(("input_cell_multiplier", "input_cell_shift"), qm(nl * nl / scale))))
        assert (q.forget_cell_multiplier, q.forget_cell_shift) != (p.forget_cell_multiplier, p.forget_cell_shift)
        np.testing.assert_array_equal(T.tflite_lstm_sequence(q, case.x)[0], case.expected)


# ----- the rules the vectors do not reach, from the C sources that define them ---------------
def test_single_rounding_mbqm_rounds_half_up():
    """TFLITE_SINGLE_ROUNDING builds (CMSIS-NN's arm_nn_requantize with
    CMSIS_NN_USE_SINGLE_ROUNDING: ``r = (x * m) >> (30 - s); return (r + 1) >> 1``) round
    x * m / 2**(31 - s) half up, toward +inf. Ties by hand with m = 2**30 (x / 2 at s = 0,
    x / 8 at s = -2): 1.5 -> 2, -1.5 -> -1, 0.5 -> 1, -0.5 -> 0, 12.5 -> 13, -12.5 -> -12.
    Catches ties rounded down (the vectors use double rounding and cannot see this)."""
    mbqm = T.multiply_by_quantized_multiplier
    assert mbqm(np.array([3, -3, 1, -1, 5, -5]), 1 << 30, 0, "single").tolist() == [2, -1, 1, 0, 3, -2]
    assert mbqm(np.array([100, -100, 101, -101]), 1 << 30, -2, "single").tolist() == [13, -12, 13, -13]


def test_mbqm64_reduces_the_multiplier_to_16_bits_as_tflite_does():
    """TFLite's 64-bit MultiplyByQuantizedMultiplier (kernels/internal/common.h):
    ``reduced = m < 0x7FFF0000 ? (m + (1 << 15)) >> 16 : 0x7FFF; total = 15 - s;
    return (x * reduced + (1 << (total - 1))) >> total``. By hand at x = 2**20, s = 0:
    m = 2**30 + 2**15 -> reduced 2**14 + 1 (rounded, not truncated to 2**14):
    (2**34 + 2**20 + 2**14) >> 15 = 2**19 + 32 = 524320;
    m = 2**31 - 1 -> reduced 0x7FFF (not 0x8000): 32 * 32767 = 1048544."""
    mbqm64 = T.multiply_by_quantized_multiplier_64
    x = np.array([1 << 20, -(1 << 20)])
    assert mbqm64(x, (1 << 30) + (1 << 15), 0).tolist() == [524320, -524320]
    assert mbqm64(x, (1 << 31) - 1, 0).tolist() == [1048544, -1048544]
    assert mbqm64(x, 0x7FFF0000, 0).tolist() == [1048544, -1048544]  # the first saturated one
    assert mbqm64(x, 0x7FFF0000 - 1, 0).tolist() == [1048544, -1048544]  # rounds to 0x7FFF too


def _gate_params(zero_in=0, zero_out=0, bits=8, shift=-3):
    w = np.array([[1, -2, 3]])
    g = T.TFLiteGate(w, np.array([[-4]]), np.array([5]), 1 << 30, shift, 1 << 30, shift)
    return T.TFLiteLSTMParams(g, g, g, g, input_zero_point=zero_in, output_zero_point=zero_out,
                              cell_scale_power=-12, forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
                              input_cell_multiplier=1 << 30, input_cell_shift=-17, output_multiplier=1 << 30,
                              output_shift=-22, activation_bits=bits)


def test_accumulator_bound_takes_the_far_side_of_the_zero_point():
    """max|v - z| over int8 v in [-128, 127] is max(127 - z, z + 128): 228 for z = 100
    (v = -128), 255 for z = -128 (v = 127); by hand, input row |1| + |-2| + |3| = 6 and
    bias 5: 6 * 228 + 5 = 1373; hidden row 4 * 228 = 912. Catches 127 - z alone (27)."""
    bounds = {(n, m): (int(b[0]), lim) for n, m, b, lim in T.accumulator_bounds(_gate_params(100, 100))}
    assert bounds[("input", "input")] == (1373, 2**31 - 1) and bounds[("output", "hidden")] == (912, 2**31 - 1)
    bounds = {(n, m): int(b[0]) for n, m, b, _ in T.accumulator_bounds(_gate_params(-128, -128))}
    assert bounds[("cell", "input")] == 6 * 255 + 5 and bounds[("cell", "hidden")] == 4 * 255
    b16 = {(n, m): (int(b[0]), lim) for n, m, b, lim in T.accumulator_bounds(_gate_params(0, 0, bits=16))}
    assert b16[("forget", "input")] == (6 * 32768 + 5, 2**47 - 1)


def test_16x8_gate_shifts_beyond_7_are_refused():
    """TFLite's 64-bit mbqm shifts right by 15 - s and asserts s < 8 (docs/tflite-compat.md,
    limits); s = 7 is accepted, s = 8 refused. Catches the check dropped."""
    _gate_params(bits=16, shift=7)
    with pytest.raises(ValueError, match="shifts <= 7"):
        _gate_params(bits=16, shift=8)
    _gate_params(bits=8, shift=8)  # the 32-bit mbqm has no such limit


def test_zero_steps_give_an_empty_output_and_the_state_unchanged():
    """A (B, 0, I) input (no steps) gives a (B, 0, H) output of the activation dtype and
    returns the state it was given (TFLite's reset state when none)."""
    p = _gate_params(zero_out=7)
    out, state = T.tflite_lstm_sequence(p, np.zeros((2, 0, 3), np.int8))
    assert out.shape == (2, 0, 1) and out.dtype == np.int8
    assert state.hidden.tolist() == [[7], [7]] and state.cell.tolist() == [[0], [0]]
    out, _ = T.tflite_lstm_sequence(p, np.zeros((0, 2, 3), np.int8), time_major=True)
    assert out.shape == (0, 2, 1)


def _bias_only(bias, hidden_w=0, **kw):
    """1 unit, 1 input: zero input weights; the input matmul's mbqm (2**30, -3) is x / 16."""
    g = lambda b: T.TFLiteGate(np.zeros((1, 1)), np.full((1, 1), hidden_w), np.array([b]),  # noqa: E731
                               1 << 30, -3, 1 << 30, -3)
    base = dict(input_zero_point=0, output_zero_point=0, cell_scale_power=-12, forget_cell_multiplier=1 << 30,
                forget_cell_shift=-14, input_cell_multiplier=1 << 30, input_cell_shift=-17,
                output_multiplier=1 << 30, output_shift=-15)
    return T.TFLiteLSTMParams(*(g(b) for b in bias), **{**base, **kw})


@pytest.mark.parametrize("sign", [1, -1])
def test_cell_clip_binds_by_hand(sign):
    """TFLite's cell_clip (CMSIS-NN's arm_nn_lstm_step_s8 clamps the new cell to
    [-cell_clip, cell_clip]): gates pinned by bias 16 * 32767 (a = 32767: i = 32757,
    g = +-32767), c = 0, so c' = mbqm(i * g, 2**30, -17) = +-4095 without a clip and
    exactly +-100 with cell_clip = 100. Catches the clip ignored (the vectors never make
    it bind where it shows)."""
    big = 16 * 32767
    bias = (big, big, sign * big, big)
    _, free = T.tflite_lstm_step(_bias_only(bias), np.zeros((1, 1)), T.initial_state(_bias_only(bias)))
    # 32757 * 32767 = 1073348619; SRDHM by 2**30: (x + 1) / 2 = 536674310; / 2**17 = 4094.50003 -> 4095
    assert free.cell.tolist() == [[sign * 4095]]
    p = _bias_only(bias, cell_clip=100)
    _, clipped = T.tflite_lstm_step(p, np.zeros((1, 1)), T.initial_state(p))
    assert clipped.cell.tolist() == [[sign * 100]]


@pytest.mark.parametrize("sign", [1, -1])
def test_cell_update_saturates_the_sum_by_hand(sign):
    """c' = sat16(f * c + i * g), TFLite's saturating add: gates pinned as in
    test_cell_clip_binds_by_hand (f = i = 32757, g = +-32767) and c = +-30000, so
    f * c = +-982710000 -> mbqm(2**30, -14) = +-29990 and i * g -> +-4095; the sum
    +-34085 lies outside int16 and saturates to 32767 / -32768.
    Catches the sum of the two int16 products left unsaturated."""
    big = 16 * 32767
    p = _bias_only((big, big, sign * big, big))
    start = T.TFLiteLSTMState(np.zeros((1, 1)), np.array([[sign * 30000]]))
    _, state = T.tflite_lstm_step(p, np.zeros((1, 1)), start)
    assert state.cell.tolist() == [[32767 if sign > 0 else -32768]]


def test_recurrent_matmul_subtracts_the_output_state_zero_point():
    """docs/tflite-compat.md: the hidden output adds hidden_zero_point (desktop TFLite's
    effective-hidden intermediate), while the recurrent matmul subtracts z_h, the output
    state tensor's zero point. By hand with z_h = 0, hidden_zero_point = 10, zero biases
    and inputs, W_h = 127, from TFLite's reset state h = 0: h - z_h = 0, every gate reads
    a = 0, g = 0, c' = 0, tanh(0) = 0, so h' = 0 + 10 = 10 and c' = 0. Catches the
    recurrent matmul subtracting hidden_zero_point (a = -79, c' != 0)."""
    p = _bias_only((0, 0, 0, 0), hidden_w=127, hidden_zero_point=10)
    h, state = T.tflite_lstm_step(p, np.zeros((1, 1)), T.initial_state(p))
    assert h.tolist() == [[10]] and state.cell.tolist() == [[0]]


# ----- CMSIS-NN's own C, compiled here, as the oracle of the activations and requantization -------
CMSIS = Path("/work/shared/peers/cmsis-nn")
for _root in Path(__file__).resolve().parents:  # ../shared/peers/cmsis-nn beside the checkout
    if (_root / "shared" / "peers" / "cmsis-nn" / "Include").is_dir():
        CMSIS = _root / "shared" / "peers" / "cmsis-nn"
        break

_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"
#include "arm_nn_tables.h"
int main(int argc, char **argv) {
    if (!strcmp(argv[1], "act")) {            /* act TYPE L: every int16 through arm_nn_activation_s16 */
        static int16_t in[65536], out[65536];
        for (int i = 0; i < 65536; i++) in[i] = (int16_t)(i - 32768);
        arm_nn_activation_s16(in, out, 65536, atoi(argv[3]), atoi(argv[2]) ? ARM_TANH : ARM_SIGMOID);
        fwrite(out, 2, 65536, stdout);
    } else if (!strcmp(argv[1], "req")) {     /* req M S: int32 from stdin through arm_nn_requantize */
        int32_t m = (int32_t)atol(argv[2]), s = atoi(argv[3]), v;
        while (fread(&v, 4, 1, stdin) == 1) { int32_t r = arm_nn_requantize(v, m, s); fwrite(&r, 4, 1, stdout); }
    } else {
        fwrite(sigmoid_table_uint16, 2, 256, stdout);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def cmsis(tmp_path_factory):
    """Two builds of CMSIS-NN's arm_nn_activation_s16.c / arm_nntables.c / arm_nn_requantize
    (host gcc): TFLite's default double rounding and CMSIS_NN_USE_SINGLE_ROUNDING."""
    import subprocess

    if not (CMSIS / "Include" / "arm_nnfunctions.h").is_file():
        pytest.fail(f"CMSIS-NN's sources are not at {CMSIS} (../shared/peers/cmsis-nn)")
    d = tmp_path_factory.mktemp("cmsis")
    (d / "h.c").write_text(_HARNESS)
    exes = {}
    for name, flags in (("double", []), ("single", ["-DCMSIS_NN_USE_SINGLE_ROUNDING"])):
        exe = d / name
        subprocess.run(["gcc", "-O1", *flags, "-I", str(CMSIS / "Include"), str(d / "h.c"),
                        str(CMSIS / "Source/ActivationFunctions/arm_nn_activation_s16.c"),
                        str(CMSIS / "Source/NNSupportFunctions/arm_nntables.c"), "-o", str(exe)], check=True)
        exes[name] = exe

    def run(*args, rounding="double", data=b""):
        return subprocess.run([str(exes[rounding]), *map(str, args)], input=data, capture_output=True,
                              check=True).stdout
    return run


def test_activations_equal_cmsis_nn_on_every_int16(cmsis):
    """arm_nn_activation_s16 (what TFLite Micro's LSTM calls on Cortex-M) over every int16
    input: the table is CMSIS-NN's sigmoid_table_uint16, the gate sigmoid (left shift 0)
    and the tanh at every left shift a cell scale 2**p with p in [-31, 2] gives (L = p + 12)
    are the same integers. Catches the negative-input rounding constant of the sigmoid
    (- 1 dropped), the tanh saturation point (u > 255) or value, and the rounding of a
    negative left shift, which the vectors do not all reach."""
    x = np.arange(-32768, 32768)
    table = np.frombuffer(cmsis("table"), np.uint16)
    assert np.array_equal(table, T.SIGMOID_TABLE_U16)
    assert np.array_equal(np.frombuffer(cmsis("act", 0, 0), np.int16), T.sigmoid_lut(x))
    for left_shift in range(-19, 15):
        want = np.frombuffer(cmsis("act", 1, left_shift), np.int16)
        assert np.array_equal(want, T.tanh_lut(x, left_shift)), left_shift


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_mbqm_equals_cmsis_nn_requantize(cmsis, rounding):
    """arm_nn_requantize (double rounding: SRDHM then RoundingDivideByPOT; single: one
    rounding, CMSIS_NN_USE_SINGLE_ROUNDING) on random int32 values and on the ties of
    every shift, for left and right shifts."""
    rng = np.random.default_rng(3)
    for m, s in [(1 << 30, -14), (1441324494, -22), (2123904128, -3), (1080990464, 1), ((1 << 31) - 1, -31),
                 (1 << 30, 0), (1518500250, -9)]:
        bound = (1 << 31) >> max(s, 0)
        ties = np.array([k * (1 << min(-s, 30)) + (1 << min(-s, 30)) // 2 for k in range(-4, 4)] if s < 0 else [], np.int64)
        x = np.concatenate([rng.integers(-bound, bound, 3000), ties, [0, 1, -1, bound - 1, -bound]]).astype(np.int32)
        want = np.frombuffer(cmsis("req", m, s, rounding=rounding, data=x.tobytes()), np.int32)
        got = T.multiply_by_quantized_multiplier(x.astype(np.int64), m, s, rounding)
        assert np.array_equal(got, want), (m, s)


def test_cell_scale_power_past_2_is_refused_because_tflite_overflows_there(cmsis):
    """The cell's tanh multiplies c by 3 * 2**(p + 12) in int32 (CMSIS-NN's
    arm_nn_activation_s16, TFLite Micro's reference_integer_ops::Tanh). At p = 3 (left
    shift 15) that is 3 * 2**30 for |c| = 2**15, past int32: TFLite's own tanh then wraps
    (tanh of the most negative cell comes out +32767), so there is no TFLite answer to
    match, and the parameters are refused; p = 2 (left shift 14) still fits and is kept.
    Real bug fixed: [-31, 3] was accepted (the comment's own rule gave L <= 14)."""
    wrapped = np.frombuffer(cmsis("act", 1, 15), np.int16)
    assert wrapped[0] == 32767  # tanh(c = -32768 * 2**3) in TFLite Micro: wrapped, not -32767
    fits = np.frombuffer(cmsis("act", 1, 14), np.int16)
    assert np.array_equal(fits, T.tanh_lut(np.arange(-32768, 32768), 14)) and fits[0] == -32767
    p = _gate_params()
    assert replace(p, cell_scale_power=2).cell_scale_power == 2
    with pytest.raises(ValueError, match=r"cell_scale_power 3 out of range \[-31, 2\]"):
        replace(p, cell_scale_power=3)


def test_16x8_accumulator_past_2_47_raises_instead_of_wrapping():
    """The 16x8 kernel's 64-bit mbqm takes |acc| < 2**47 (TFLite asserts it); parameters
    edited past the build-time bound (a frozen dataclass, forced) raise OverflowError at
    run time. Catches the run-time check dropped (the int64 product would go on silently)."""
    p = _gate_params(bits=16)
    object.__setattr__(p.input_gate, "bias", np.array([(1 << 47) - 100], np.int64))
    with pytest.raises(OverflowError, match="2\\*\\*47"):
        T.tflite_lstm_step(p, np.full((1, 3), 32767), T.initial_state(p))
