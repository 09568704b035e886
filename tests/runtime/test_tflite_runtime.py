"""The TFLite-compatible integer LSTM in C (lsl_tflite.c): bit-exact with TFLite Micro's
vectors and with the NumPy reference (lstmlite.reference.tflite_int), also on random
parameters chosen to reach every saturation point; and lsl_tflite.c alone, compiled as
strict C99 with UBSan, passing the vectors read from their C headers."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lstmlite.reference import tflite_int as T
from lstmlite.reference.tflite_int import TFLiteLSTMState
from lstmlite.runtime import TFLiteLSTM
from lstmlite.runtime import _lsl

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "lstmlite" / "runtime"
_spec = importlib.util.spec_from_file_location("_tflm_vectors", ROOT / "tests" / "_tflm_vectors.py")
V = sys.modules.setdefault("_tflm_vectors", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(V)

needs_vectors = pytest.mark.skipif(not V.available(), reason=f"TFLM vectors not found at {V.VECTOR_ROOT}")


@needs_vectors
@pytest.mark.parametrize("name", V.ALL_CASES)
def test_c_bit_exact_with_tflite_micro(name):
    case = V.load_case(name)
    engine = TFLiteLSTM(case.params, time_major=case.time_major)
    np.testing.assert_array_equal(engine.run(case.x_file_order), case.expected_file_order)
    # stateful: a second call continues from the state; reset() starts over
    engine.reset()
    steps_axis = 0 if case.time_major else 1
    x = case.x_file_order
    cut = max(1, x.shape[steps_axis] // 2)
    parts = [engine.run(np.take(x, range(0, cut), axis=steps_axis)),
             engine.run(np.take(x, range(cut, x.shape[steps_axis]), axis=steps_axis))]
    np.testing.assert_array_equal(np.concatenate(parts, axis=steps_axis), case.expected_file_order)


def _random_params(rng: np.random.Generator, bits: int, extreme: bool) -> T.TFLiteLSTMParams:
    """Random layer; ``extreme`` picks multipliers that saturate the matmuls, the gate sum,
    the cell products and the output, and a cell clip."""
    I, H = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    shift_hi = 4 if extreme else -1

    def mult():
        return int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(-12, shift_hi))

    def gate():
        bias = rng.integers(-(1 << 20), 1 << 20, H) if bits == 8 else rng.integers(-(1 << 36), 1 << 36, H)
        return T.TFLiteGate(rng.integers(-128, 128, (H, I)), rng.integers(-128, 128, (H, H)), bias, *mult(), *mult())

    lo, hi = (-128, 127) if bits == 8 else (-32768, 32767)
    p = int(rng.integers(-15, -8))
    return T.TFLiteLSTMParams(
        gate(), gate(), gate(), gate(),
        input_zero_point=int(rng.integers(lo, hi + 1)) if bits == 8 else 0,
        output_zero_point=int(rng.integers(lo, hi + 1)) if bits == 8 else 0,
        cell_scale_power=p,
        forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
        input_cell_multiplier=int(rng.integers(1 << 30, 1 << 31)) if extreme else 1 << 30,
        input_cell_shift=int(rng.integers(-16, 1)) if extreme else -15 - (15 + p),
        output_multiplier=int(rng.integers(1 << 30, 1 << 31)), output_shift=int(rng.integers(-24 if bits == 8 else -16, 1)),
        cell_clip=int(rng.integers(1000, 32768)) if extreme and rng.random() < 0.5 else 0,
        activation_bits=bits, rounding="single" if rng.random() < 0.25 else "double",
        kernel="lite" if bits == 8 and rng.random() < 0.5 else "micro",
        hidden_zero_point=int(rng.integers(lo, hi + 1)) if bits == 8 and rng.random() < 0.3 else None)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("extreme", [False, True], ids=["ordinary", "saturating"])
def test_c_matches_reference_on_random_layers(bits, extreme):
    rng = np.random.default_rng(bits * 10 + extreme)
    lo, hi = (-128, 127) if bits == 8 else (-32768, 32767)
    for _ in range(40):
        params = _random_params(rng, bits, extreme)
        B, steps = int(rng.integers(1, 4)), int(rng.integers(1, 7))
        x = rng.integers(lo, hi + 1, (B, steps, params.input_size))
        try:
            want, state = T.tflite_lstm_sequence(params, x)
        except OverflowError:
            with pytest.raises(OverflowError):
                TFLiteLSTM(params).run(x)
            continue
        engine = TFLiteLSTM(params)
        np.testing.assert_array_equal(engine.run(x), want)
        np.testing.assert_array_equal(engine.state.cell, state.cell)
        np.testing.assert_array_equal(engine.state.hidden, state.hidden)
        # time-major layout and stepping give the same numbers
        tm = TFLiteLSTM(params, time_major=True)
        np.testing.assert_array_equal(tm.run(x.transpose(1, 0, 2)), want.transpose(1, 0, 2))
        st = TFLiteLSTM(params)
        np.testing.assert_array_equal(np.stack([st.step(x[:, t]) for t in range(steps)], axis=1), want)



def test_lite_kernel_rounds_negative_cell_ties_away_from_zero():
    """The desktop (lite) kernel divides f * c by 2^15 with gemmlowp's RoundingDivideByPOT,
    half away from zero for negative products too: from a cell of -2^14 every odd f makes
    f * c a negative tie, which a remainder threshold without its +1 for x < 0 rounds up."""
    rng = np.random.default_rng(31)
    for _ in range(5):
        params = replace(_random_params(rng, 8, False), kernel="lite")
        batch, h = 3, params.hidden_size
        state = T.TFLiteLSTMState(np.full((batch, h), params.output_zero_point, np.int64),
                                  np.full((batch, h), -(1 << 14), np.int64))
        x = rng.integers(-128, 128, (batch, 2, params.input_size))
        want, final = T.tflite_lstm_sequence(params, x, state)
        engine = TFLiteLSTM(params)
        engine.state = state
        np.testing.assert_array_equal(engine.run(x), want)
        np.testing.assert_array_equal(engine.state.cell, final.cell)

def test_saturating_layers_reach_the_saturation_points():
    """The 'saturating' draws above do clamp (else that test proves little): the cell
    state and the outputs hit their limits on some inputs."""
    rng = np.random.default_rng(18)
    hit_cell = hit_out = False
    for _ in range(40):
        params = _random_params(rng, 8, True)
        x = rng.integers(-128, 128, (2, 6, params.input_size))
        try:
            out, state = T.tflite_lstm_sequence(params, x)
        except OverflowError:
            continue
        lim = params.cell_clip or 32767
        hit_cell |= bool(np.any(np.abs(state.cell) >= lim))
        hit_out |= bool(np.any((out == -128) | (out == 127)))
    assert hit_cell and hit_out


@pytest.mark.parametrize("integer_bits", range(8))
def test_c_gemmlowp_activations_equal_reference_on_every_input(integer_bits):
    from lstmlite.reference import _gemmlowp16 as G

    x = np.arange(-32768, 32768, dtype=np.int16)
    out = np.empty_like(x)
    _lsl.tflite_activation(x, out, 2, integer_bits)
    np.testing.assert_array_equal(out, G.logistic(x, integer_bits))
    _lsl.tflite_activation(x, out, 3, integer_bits)
    np.testing.assert_array_equal(out, G.tanh(x, integer_bits))


@pytest.mark.parametrize("left_shift", [0, -3, -2, 2, 3])
def test_c_activations_equal_reference_on_every_input(left_shift):
    x = np.arange(-32768, 32768, dtype=np.int16)
    out = np.empty_like(x)
    _lsl.tflite_activation(x, out, 1, left_shift)
    np.testing.assert_array_equal(out, T.tanh_lut(x, left_shift))
    if left_shift == 0:
        _lsl.tflite_activation(x, out, 0, 0)
        np.testing.assert_array_equal(out, T.sigmoid_lut(x))


def test_bad_inputs_raise():
    rng = np.random.default_rng(0)
    params = _random_params(rng, 8, False)
    engine = TFLiteLSTM(params)
    with pytest.raises(ValueError):
        engine.run(np.zeros((1, 2, params.input_size + 1), np.int8))
    with pytest.raises(TypeError):
        engine.run(np.zeros((1, 2, params.input_size), np.float32))
    # one past the 8-bit activation range either way, in a wider array: refused, not wrapped
    for value in (-129, 128):
        with pytest.raises(ValueError, match="outside int8"):
            engine.run(np.full((1, 2, params.input_size), value, np.int16))
    engine.run(np.zeros((2, 1, params.input_size), np.int8))
    with pytest.raises(ValueError):  # the state holds batch 2
        engine.run(np.zeros((3, 1, params.input_size), np.int8))
    # a state whose width is not the layer's, or whose hidden and cell differ, is refused
    h = params.hidden_size
    for hidden, cell in (((2, h + 1), (2, h + 1)), ((2, h), (3, h)), ((h,), (h,))):
        with pytest.raises(ValueError, match="state must be"):
            engine.state = TFLiteLSTMState(np.zeros(hidden, np.int64), np.zeros(cell, np.int64))
    with pytest.raises(ValueError):  # the C checks too: a cell scale power out of range
        _lsl.tflite_run((params.input_size, params.hidden_size, 8, 0, 0, 99, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0),
                        engine._weights, engine._bias, engine._gate_q, np.zeros(params.input_size, np.int8),
                        np.zeros(params.hidden_size, np.int8), np.zeros(params.hidden_size, np.int8),
                        np.zeros(params.hidden_size, np.int16), 1, 1, 0)


@pytest.mark.parametrize("bits", [8, 16])
def test_a_state_outside_the_tensors_range_is_refused_not_wrapped(bits):
    """TFLite's state tensors are int8/int16 hidden and int16 cell: a hidden of 200 in an
    8-bit layer (or a cell of 40000) was cast, wrapping to -56 (-25536), so the layer ran
    from another state than the reference given the same one; refused naming the part.
    A state in range runs bit-exactly as the reference."""
    rng = np.random.default_rng(4)
    params = _random_params(rng, bits, False)
    engine = TFLiteLSTM(params)
    h = params.hidden_size
    lo, hi = params.activation_range
    for hidden, cell, part in ((hi + 1, 0, "hidden"), (lo - 1, 0, "hidden"), (0, 40000, "cell")):
        with pytest.raises(ValueError, match=f"state {part} has values outside int"):
            engine.state = TFLiteLSTMState(np.full((2, h), hidden, np.int64), np.full((2, h), cell, np.int64))
    x = rng.integers(lo, hi + 1, (2, 3, params.input_size))
    state = TFLiteLSTMState(np.full((2, h), hi, np.int64), np.full((2, h), -32768, np.int64))
    want, final = T.tflite_lstm_sequence(params, x, state)
    engine.state = state
    np.testing.assert_array_equal(engine.run(x), want)
    np.testing.assert_array_equal(engine.state.cell, final.cell)


# ----- lsl_tflite.c alone, as C ------------------------------------------------------
@needs_vectors
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("name", V.ALL_CASES)
def test_c_source_alone_passes_vectors(tmp_path, name):
    """lsl_tflite.c needs nothing but a C99 compiler (no libm, no other runtime file):
    built strict (-pedantic -Werror) with UBSan (any implementation-defined or undefined
    shift or overflow aborts), it reproduces TFLite Micro's outputs from the C headers."""
    exe = tmp_path / "tv"
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-fsanitize=undefined",
           "-fno-sanitize-recover=all", "-I", str(RUNTIME), "-I", str(V.VECTOR_ROOT),
           f'-DCASE_HEADER="{name}/test_data.h"', f"-DLO={name}", f"-DUP={name.upper()}",
           str(ROOT / "tests" / "c" / "test_tflite_vectors.c"), str(RUNTIME / "lsl_tflite.c"), "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and ran.stdout.startswith("ok"), ran.stdout + ran.stderr


def _edge_params(cols: int, bits: int) -> T.TFLiteLSTMParams:
    """Every weight 127 in `cols` columns (the widest the accumulator bound allows for
    int8 with z_x = -128), no bias, the largest multipliers: every gate saturates."""
    g = T.TFLiteGate(np.full((1, cols), 127), np.full((1, 1), -128), np.zeros(1), (1 << 31) - 1, 0, (1 << 31) - 1, 0)
    return T.TFLiteLSTMParams(g, g, g, g, input_zero_point=-128 if bits == 8 else 0, output_zero_point=0,
                              cell_scale_power=-12, forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
                              input_cell_multiplier=1 << 30, input_cell_shift=-17, output_multiplier=1 << 30,
                              output_shift=-22, activation_bits=bits)


@pytest.mark.parametrize("bits", [8, 16])
def test_extreme_inputs_at_the_accumulator_bound_match_and_saturate(bits):
    """Issue 15 item 6: at the edge of the bound, inputs at both ends of their type give
    identical integers in C and the reference, without an overflow, and saturate: the
    gates' pre-activations clamp (SAT 1), so i = f = o = sigmoid(+8) and g = tanh(+8)
    for the top input, the cell and the output reach their limits within a few steps."""
    cols = (2**31 - 1) // (127 * 255) if bits == 8 else 4000
    params = _edge_params(cols, bits)
    lo, hi = params.activation_range
    x = np.empty((2, 12, cols), np.int64)
    x[0], x[1] = hi, lo
    want, state = T.tflite_lstm_sequence(params, x)
    np.testing.assert_array_equal(TFLiteLSTM(params).run(x), want)
    # step 1 of the top stream: i = f = o = sigmoid's limit, g = tanh's (SAT 1, SAT 4), c = 0
    i_, g_ = T.sigmoid_lut(np.array([32767]))[0], T.tanh_lut(np.array([32767]), 0)[0]
    assert (i_, g_) == (32757, 32767)
    _, first = T.tflite_lstm_sequence(params, x[:, :1])
    assert first.cell[0, 0] == T.multiply_by_quantized_multiplier(np.array([i_ * g_]), 1 << 30, -17, "double")[0]
    # ... and each step adds about 4095 while f keeps c: the cell clamps at 32767 (SAT 2)
    assert state.cell[0, 0] == 32767 and want[0, -1, 0] > 0
    # the bottom stream: i = f = o = 11, g = -32767: i * g / 2**18 rounds to -1 or 0 and f
    # forgets c, so the cell stays at or just below 0
    assert T.sigmoid_lut(np.array([-32768]))[0] == 11 and -2 <= state.cell[1, 0] <= 0


def test_c_refuses_parameters_past_the_bound_even_if_the_reference_was_bypassed():
    params = _edge_params((2**31 - 1) // (127 * 255), 8)
    object.__setattr__(params.input_gate, "bias", np.full(1, 1 << 20, np.int64))  # past the bound now
    with pytest.raises(OverflowError, match="could overflow for some input in range"):
        TFLiteLSTM(params).run(np.zeros((1, 1, params.input_size), np.int64))
