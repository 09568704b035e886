"""Integer safety (issue 15, item 6): every integer-only accumulator's worst case is
derived from the weights and input widths, a model that could overflow is refused where
it is built (NumPy reference) and checked (C: lsl_int_model_check), and extreme inputs --
every weight +-127, inputs and state at the ends of their types, the largest multiplier
-- give the saturated results docs/integer.md states, identically in the NumPy
reference, the host C engine and a build of lsl_int.c under AddressSanitizer + UBSan."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lstmlite import runtime as rt
from lstmlite.reference import integer, integer_gru
from lstmlite.reference.integer import INT32_MAX, IntegerDirection, IntegerRecurrentParams, accumulator_bound

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "lstmlite" / "runtime"
CELL_CODES = {"lstm": 1, "gru": 2}


def _direction(cell: str, i: int, h: int, w: int, bits: int, bias: int, frac: int = 15,
               m: int = INT32_MAX, shift: int = 0) -> IntegerDirection:
    """Every weight `w`, every bias `bias`, the largest multiplier (SAT B reachable)."""
    g = (4 if cell == "lstm" else 3) * h
    return IntegerDirection(
        w_ih=np.full((g, i), w), w_hh=np.full((g, h), w), b_ih=np.full(g, bias), b_hh=np.full(g, bias),
        m_ih=np.full(g, m), shift_ih=np.full(g, shift), m_hh=np.full(g, m), shift_hh=np.full(g, shift),
        cell_frac=frac if cell == "lstm" else 0, input_bits=bits, input_scale=1.0,
        w_ih_scale=np.ones(g), w_hh_scale=np.ones(g))


def _widest(bits: int, h: int, w: int = 127) -> int:
    """The most inputs a row of |w| weights may read at `bits` bits with zero bias."""
    return INT32_MAX // (abs(w) * (1 << (bits - 1)))


def _reference(params, x, state):
    if params.cell == "lstm":
        out, st = integer.integer_lstm_sequence(params, x, None, state)
        return out, np.concatenate([st[0][0].ravel(), st[0][1].ravel()])
    out, st = integer_gru.integer_gru_sequence(params, x, None, state)
    return out, st[0].ravel()


def _extreme_case(cell: str, bits: int, sign: int, h: int = 3):
    """An edge-of-the-bound layer: every weight 127, the widest input the bound allows for
    int16 (516 columns) or a wide one for int8, the largest multiplier; stream 0 has every
    input and the state at one end of its type (sign > 0: the top, else the bottom), so
    every accumulator saturates that way; stream 1 reads the opposite inputs (mixed)."""
    i = _widest(16, h) if bits == 16 else 2000
    d = _direction(cell, i, h, 127, bits, bias=0)
    params = IntegerRecurrentParams(cell, [[d]])
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    x = np.full((2, 3, i), hi if sign > 0 else lo, np.int64)
    x[1] = lo if sign > 0 else hi
    hs = np.full((1, 2, h), 32767 if sign > 0 else -32768, np.int64)  # (D, B, H)
    state = [(hs, hs.copy())] if cell == "lstm" else [hs]
    return params, x, state


def test_bound_is_exact_arithmetic_and_matches_the_shape_rule():
    w = np.array([[127, -128, 5], [0, 0, 0]])
    b = np.array([-7, INT32_MAX])
    np.testing.assert_array_equal(accumulator_bound(w, b, 8), [(127 + 128 + 5) * 128 + 7, INT32_MAX])
    np.testing.assert_array_equal(accumulator_bound(w, b, 16), [(127 + 128 + 5) * 32768 + 7, INT32_MAX])
    # the shape-only rule of docs/integer.md: K * 128 * 2**(bits-1) <= 2**31 - 1
    assert _widest(8, 1, 128) == 131071 and _widest(16, 1, 128) == 511 and _widest(16, 1, 127) == 516


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bits", [8, 16])
def test_a_model_that_could_overflow_is_refused_naming_the_bound(cell, bits):
    """One column past the bound: ValueError from the reference, LSL_ERR_OVERFLOW from C
    (IntegerEngine builds the C model from parameters that bypass the Python check)."""
    i = _widest(bits, 2)
    ok = _direction(cell, i, 2, 127, bits, bias=0)  # exactly at the bound: accepted
    rt.IntegerEngine(IntegerRecurrentParams(cell, [[ok]]))
    with pytest.raises(ValueError, match=r"w_ih row 0 could overflow the int32 accumulator: .* = 21\d{8} > 2147483647"):
        _direction(cell, i + 1, 2, 127, bits, bias=0)
    with pytest.raises(ValueError, match="w_hh row 0 could overflow"):
        _direction(cell, 2, 2, 127, 8, bias=INT32_MAX - 127 * 32768 * 2 + 1)  # h is int16 whatever x is
    # the C check, on parameters edited past the Python one
    d = _direction(cell, i, 2, 127, bits, bias=0)
    d.b_ih = np.full_like(d.b_ih, INT32_MAX - i * 127 * (1 << (bits - 1)) + 1)  # one past the bound
    with pytest.raises(rt.RuntimeError_, match="overflow"):
        rt.IntegerEngine(IntegerRecurrentParams(cell, [[d]]))



@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_c_bounds_recurrent_rows_at_the_16_bit_state_whatever_the_input_width(cell):
    """W_hh rows read h, which is int16 even under 8-bit input: the C check bounds them
    with 2^15 per column. A b_hh at the bound is accepted and one past it refused (a check
    at the input's 8 bits would take rows 256 times too large)."""
    h = 2
    d = _direction(cell, 3, h, 127, 8, bias=0)
    d.b_hh = np.full_like(d.b_hh, INT32_MAX - h * 127 * (1 << 15))  # exactly at the bound
    rt.IntegerEngine(IntegerRecurrentParams(cell, [[d]]))
    d.b_hh = d.b_hh + 1
    with pytest.raises(rt.RuntimeError_, match="overflow"):
        rt.IntegerEngine(IntegerRecurrentParams(cell, [[d]]))

def _build_ubsan(tmp_path: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is missing: the UBSan check of the integer engine needs it (scripts/system-deps*.txt)")
    exe = tmp_path / "int_extremes"
    res = subprocess.run(["gcc", "-std=c99", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                          "-I", str(RUNTIME), str(ROOT / "tests" / "c" / "int_extremes.c"), str(RUNTIME / "lsl_int.c"),
                          "-o", str(exe)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return exe


def _run_ubsan(exe: Path, tmp_path: Path, params, x, state) -> tuple[list[int], np.ndarray, np.ndarray]:
    d = params.layers[0][0]
    b, t, _ = x.shape
    flat_state = (np.concatenate([state[0][0].ravel(), state[0][1].ravel()]) if params.cell == "lstm"
                  else state[0].ravel())
    blob = struct.pack("<7i", CELL_CODES[params.cell], d.input_size, d.hidden_size, d.cell_frac, d.input_bits, b, t)
    blob += d.w_ih.astype("<i1").tobytes() + d.w_hh.astype("<i1").tobytes()
    for name in ("b_ih", "b_hh", "m_ih", "shift_ih", "m_hh", "shift_hh"):
        blob += getattr(d, name).astype("<i4").tobytes()
    blob += x.astype("<i2").tobytes() + flat_state.astype("<i2").tobytes()
    src, dst = tmp_path / "case.bin", tmp_path / "out.bin"
    src.write_bytes(blob)
    res = subprocess.run([str(exe), str(src), str(dst)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "runtime error" not in res.stderr, res.stderr[-3000:]
    raw = dst.read_bytes()
    rcs = list(struct.unpack("<2i", raw[:8]))
    n_out = b * t * d.hidden_size
    out = np.frombuffer(raw[8:8 + 2 * n_out], "<i2").reshape(b, t, d.hidden_size)
    return rcs, out, np.frombuffer(raw[8 + 2 * n_out:], "<i2")


# The documented saturated results (docs/integer.md, "Extreme inputs"), derived there by
# hand from the step's equations: every accumulator saturates (SAT B) and so does every
# gate pre-activation (SAT A), so i = f = o = sigmoid's last table value 32757 (or 32768 -
# 32757 = 11 at the bottom) and g = +-32767.
EXPECTED = {
    # (cell, sign): stream 0's h at steps 1..3, its c after step 3 (LSTM)
    ("lstm", 1): ([24948, 24948, 24948], 32767),  # c: SAT C; h = rrs(32757 * tanh_q15(32767, F=15), 15)
    ("lstm", -1): ([0, 0, 0], -11),  # c: -11 - 11 = -22, then rrs(11 * c, 15) - 11 = -11; h rounds to 0
    ("gru", 1): ([32767, 32767, 32767], None),  # h' = rrs(11 * 32767 + 32757 * 32767, 15)
    ("gru", -1): ([-32767, -32767, -32767], None),  # n = -32767 (SAT E), h' = -32767
}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("sign", [1, -1], ids=["max", "min"])
def test_extreme_inputs_saturate_identically_in_numpy_c_and_ubsan(tmp_path, cell, bits, sign):
    params, x, state = _extreme_case(cell, bits, sign)
    want_out, want_state = _reference(params, x, [tuple(s.copy() for s in st) if isinstance(st, tuple) else st.copy()
                                                  for st in state])
    # host C engine (the extension)
    got_out, got_state = rt.IntegerEngine(params).run(x, state=[tuple(s.copy() for s in st) if isinstance(st, tuple)
                                                                else st.copy() for st in state])
    np.testing.assert_array_equal(got_out, want_out)
    flat = (np.concatenate([got_state[0][0].ravel(), got_state[0][1].ravel()]) if cell == "lstm"
            else got_state[0].ravel())
    np.testing.assert_array_equal(flat, want_state)
    # the sanitized build: no report, the same integers
    rcs, out, st = _run_ubsan(_build_ubsan(tmp_path), tmp_path, params, x, state)
    assert rcs == [0, 0]
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(st, want_state)
    # and the documented values
    h_want, c_want = EXPECTED[(cell, sign)]
    np.testing.assert_array_equal(want_out[0], np.repeat(np.array(h_want)[:, None], 3, axis=1))
    if c_want is not None:  # state: h (B, H) then c (B, H); stream 0's c
        H = params.layers[0][0].hidden_size
        np.testing.assert_array_equal(want_state[2 * H:3 * H], c_want)


def test_an_int8_matrix_past_the_int32_column_bound_is_refused_by_the_loader(tmp_path, monkeypatch):
    """Weight-only int8 with dynamic 8-bit (or VNNI limb) activations sums K * 255 * 128 at
    most in int32: K <= 65,793 (LSL_I8_MAX_COLS). A file whose int8 matrix is wider is
    refused by the C loader; the same width in fp32, and int8 at the bound, load and run."""
    from lstmlite.export.lsl import spec_from_state_dict, write_lsl

    rng = np.random.default_rng(0)

    def lstm_file(cols: int, weights: str) -> Path:
        state = {"weight_ih_l0": rng.normal(0, 0.01, (4, cols)).astype(np.float32),
                 "weight_hh_l0": rng.normal(0, 0.1, (4, 1)).astype(np.float32)}
        path = tmp_path / f"{weights}-{cols}.lsl"
        write_lsl(spec_from_state_dict(state), weights=weights, path=path)
        return path

    x = rng.normal(size=(1, 2, 65794)).astype(np.float32)
    with pytest.raises(ValueError, match=r"l0.0.w_ih: an int8 matrix row of 65794 values could overflow .* K <= 65793"):
        lstm_file(65794, "int8")  # the writer says why
    # a file made past the writer (the fp32 file's matrix re-encoded as int8 codes by hand)
    # is refused by the C loader
    import lstmlite.export.lsl as writer

    assert f"#define LSL_I8_MAX_COLS {writer.I8_MAX_COLS}" in (RUNTIME / "lsl_internal.h").read_text()
    assert writer.I8_MAX_COLS * 255 * 128 <= INT32_MAX < (writer.I8_MAX_COLS + 1) * 255 * 128
    monkeypatch.setattr(writer, "I8_MAX_COLS", 10**6)
    wide = lstm_file(65794, "int8")
    monkeypatch.undo()
    with pytest.raises(rt.RuntimeError_, match="malformed|format"):
        rt.load(wide, activations="dynamic")
    fp32 = rt.load(lstm_file(65794, "fp32"))
    assert np.all(np.isfinite(fp32.run(x)))
    at_bound = rt.load(lstm_file(65793, "int8"), activations="dynamic")
    assert np.all(np.isfinite(at_bound.run(x[..., :65793])))


def test_a_wide_block_sparse_int8_matrix_is_bounded_by_its_kept_values(tmp_path):
    """The block-sparse form sums only its kept blocks: 200,000 columns with a few blocks
    per row fit the int32 bound, so the writer and the C loader accept it and it runs."""
    from lstmlite.export.lsl import spec_from_state_dict, write_lsl

    cols = 200_000
    w = np.zeros((4, cols), np.float32)
    w[:, ::50_000] = 0.5
    w[1, 7] = -0.25
    state = {"weight_ih_l0": w, "weight_hh_l0": np.full((4, 1), 0.1, np.float32)}
    path = tmp_path / "wide-sparse.lsl"
    write_lsl(spec_from_state_dict(state), weights="int8-sparse", path=path)
    engine = rt.load(path, activations="dynamic")
    x = np.random.default_rng(1).standard_normal((1, 2, cols)).astype(np.float32)
    assert np.all(np.isfinite(engine.run(x)))


def test_a_block_sparse_row_past_the_int32_column_bound_is_refused_by_the_writer():
    """A (1, 4)-block-sparse row sums 4 products a kept block: 17,000 kept blocks of a
    120,000-column row are 68,000 values, past the 65,793 an int32 holds (K * 255 * 128),
    though the block form still pays (6 bytes a block against 4 dense); 16,000 blocks are
    64,000 values and are written. Catches the width counted in blocks, not values."""
    import torch

    from lstmlite.export.lsl import spec_from_module, write_lsl
    from lstmlite.runtime.lsl import QTensor, describe_lsl

    rng = np.random.default_rng(0)

    def spec_with(kept: int):
        spec = spec_from_module(torch.nn.LSTM(120_000, 1, batch_first=True))
        codes = np.zeros((4, 120_000), np.int8)
        for row in codes:
            row[rng.choice(30_000, kept, replace=False) * 4] = rng.integers(1, 127, kept)
        spec.layers[0].directions[0]["w_ih"] = QTensor(codes, np.full(4, 0.01, np.float32))
        return spec

    with pytest.raises(ValueError, match=r"l0.0.w_ih: an int8 matrix row of 68000 values could overflow"):
        write_lsl(spec_with(17_000), weights="int8-sparse")
    rows = {r["name"]: r for r in describe_lsl(write_lsl(spec_with(16_000), weights="int8-sparse"))}
    assert rows["l0.0.w_ih"]["dtype"] == "int8 block-sparse"
