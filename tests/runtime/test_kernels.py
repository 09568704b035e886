"""GEMM kernels of every ISA against NumPy, on shapes that hit every tail.

The kernels see activations x (M, K) and a packed weight matrix W (N, K); they add
x @ W^T (with per-row scales for int8) into y. Shapes cover M = 1 (the step path),
M in 2..9 (row blocks and their remainders), N with partial 16-row panels, and K
not a multiple of 4 (the VNNI padding).
"""

from __future__ import annotations

import numpy as np
import pytest

from lstmlite.runtime import _lsl, quantize_rows

from .conftest import dynamic_codes, rel_err

SHAPES = [(1, 16, 8), (1, 37, 13), (1, 128, 40), (1, 512, 128), (2, 48, 5), (3, 33, 16), (4, 64, 64),
          (5, 100, 3), (7, 17, 29), (9, 80, 44), (100, 512, 40), (12, 40, 258),
          (35, 37, 29),  # many rows (AVX2 float activations: unpacked panels) with every tail
          (16, 40, 300), (21, 33, 129), (31, 20, 64)]  # just below 32 rows, where the AVX-VNNI table unpacks too
# Dynamic int8 (exact sums) also past K = 1024, where the AVX2 kernel for several rows
# hands over to its one-row form (its int16 row buffer holds 1024 columns), and past
# K = 2048, where the AVX2 one-row form keeps the sign form (LSL_DYNM_KMAX: its |q| and
# sign planes live on the stack).
SHAPES_DYN = SHAPES + [(3, 20, 1030), (1, 20, 2100)]


def _case(m, n, k, seed=0):
    rng = np.random.default_rng(seed + 1000 * m + n + 7 * k)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((n, k)) * 0.3).astype(np.float32)
    y0 = rng.standard_normal((m, n)).astype(np.float32)
    return x, w, y0


@pytest.mark.parametrize("m,n,k", SHAPES)
def test_fp32_gemm_matches_numpy(isa, m, n, k):
    x, w, y0 = _case(m, n, k)
    y = y0.copy()
    _lsl.matmul(w, None, _lsl.ACT_FLOAT, x, y)
    ref = y0.astype(np.float64) + x.astype(np.float64) @ w.T.astype(np.float64)
    assert rel_err(y, ref) < 1e-6


@pytest.mark.parametrize("m,n,k", SHAPES)
def test_int8_weight_only_gemm_equals_dequantized_float(isa, m, n, k):
    x, w, y0 = _case(m, n, k)
    qt = quantize_rows(w)
    y = y0.copy()
    _lsl.matmul(qt.q, qt.scale, _lsl.ACT_FLOAT, x, y)
    deq = qt.q.astype(np.float64) * qt.scale.astype(np.float64)[:, None]
    ref = y0.astype(np.float64) + x.astype(np.float64) @ deq.T
    assert rel_err(y, ref) < 1e-6


def _dynamic_reference(x, qt, y0, qmax=127):
    """Independent NumPy statement of dynamic quantization: per-row symmetric 8-bit
    activations (round half to even; qmax = 63: LSL_ACT_DYN7's 7-bit ones), exact
    integer dot products, then the scales."""
    q, xs = dynamic_codes(x, qmax)
    acc = q @ qt.q.astype(np.int64).T  # exact
    return y0.astype(np.float64) + acc * (xs.astype(np.float64)[:, None] * qt.scale.astype(np.float64)[None, :])


@pytest.mark.parametrize("bits", [8, 7])
@pytest.mark.parametrize("m,n,k", SHAPES_DYN)
def test_dynamic_int8_gemm_matches_integer_reference(isa, m, n, k, bits):
    """bits = 7: codes within [-63, 63], which the AVX2 tables multiply in their own form
    (LSL_K_U7, every row count and K)."""
    x, w, y0 = _case(m, n, k)
    x[0, :] = 0.0 if m > 3 else x[0, :]  # an all-zero row quantizes to zeros
    qt = quantize_rows(w, bits)
    y = y0.copy()
    _lsl.matmul(qt.q, qt.scale, _lsl.ACT_DYN8, x, y)
    assert rel_err(y, _dynamic_reference(x, qt, y0)) < 1e-6


# LSL_ACT_DYN7 also past the AVX2 form's 2048-column row buffer with 4 rows and more
# (H7_KMAX: those rows take the 8-bit-safe form), and with an odd number of k4 steps
# (k = 44, 29, 3: the pair loop's single last step).
SHAPES_DYN7 = SHAPES_DYN + [(6, 48, 2100), (8, 16, 4)]


@pytest.mark.parametrize("m,n,k", SHAPES_DYN7)
def test_dynamic7_gemm_matches_integer_reference(isa, m, n, k):
    """7-bit activation codes (|q| <= 63) times 7-bit weights, which the AVX2 tables
    multiply with two k4 steps' pairs summed in int16 (gemm_h7): the exact sums of the
    7-bit codes, not of 8-bit ones (that reference differs by ~1e-2)."""
    x, w, y0 = _case(m, n, k)
    x[0, :] = 0.0 if m > 3 else x[0, :]
    qt = quantize_rows(w, 7)
    qt.q[::5, ::3] = 64  # the codes' extremes, where int16 pairs are tightest
    qt.q[1::5, ::3] = -64
    y = y0.copy()
    _lsl.matmul(qt.q, qt.scale, _lsl.ACT_DYN7, x, y)
    assert rel_err(y, _dynamic_reference(x, qt, y0, qmax=63)) < 1e-6
    assert rel_err(y, _dynamic_reference(x, qt, y0)) > 1e-4


def test_dynamic7_refuses_8_bit_weights():
    """7-bit activations only for 7-bit weights: 8-bit codes could saturate the int16
    pair sums, so lsl_matrix_pack refuses them (and lsl_load keeps 8 bits for them)."""
    x, w, y0 = _case(4, 16, 8)
    with pytest.raises(ValueError):
        _lsl.matmul(quantize_rows(w).q, quantize_rows(w).scale, _lsl.ACT_DYN7, x, y0.copy())


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, 3.1e38])
@pytest.mark.parametrize("act", [_lsl.ACT_FLOAT, _lsl.ACT_DYN8])
def test_int8_packing_refuses_a_row_scale_that_is_not_finite(bad, act):
    """lsl_matrix_pack refuses a row scale that is NaN, infinite or past 3e38 (no
    meaningful product: inf x a zero sum is NaN), as the sparse packer does. Catches a
    pack that tests only for NaN (scale == scale) and lets +-inf and huge scales through."""
    x, w, y0 = _case(2, 20, 12)
    qt = quantize_rows(w)
    scale = qt.scale.copy()
    scale[5] = bad
    with pytest.raises(ValueError):
        _lsl.matmul(qt.q, scale, act, x, y0.copy())


@pytest.mark.parametrize("m", [1, 6])
@pytest.mark.parametrize("codes", ["with -128", "7-bit", "7-bit, 7-bit activations"])
def test_dynamic_int8_accumulators_are_identical_across_isas(m, codes, restore_isa):
    """Integer sums do not depend on the kernel: all levels give the same bits."""
    from .conftest import ISAS
    from lstmlite import runtime as rt

    x, w, y0 = _case(m, 75, 37, seed=3)
    if codes == "with -128":
        qt = quantize_rows(w)
        qt.q[::3, ::5] = -128  # outside the quantizer's range, inside int8's: still exact
    else:
        qt = quantize_rows(w, 7)
        qt.q[::3, ::5] = 64
        qt.q[1::3, ::5] = -64
    act = _lsl.ACT_DYN7 if codes.endswith("activations") else _lsl.ACT_DYN8
    outs = []
    for name in ISAS:
        rt.set_isa(name)
        y = y0.copy()
        _lsl.matmul(qt.q, qt.scale, act, x, y)
        outs.append(y)
    for y in outs[1:]:
        np.testing.assert_array_equal(y, outs[0])


def test_matmul_rejects_bad_shapes_with_exceptions():
    x, w, y0 = _case(2, 8, 4)
    with pytest.raises(ValueError):
        _lsl.matmul(w, None, _lsl.ACT_FLOAT, x[:, :3].copy(), y0)
    with pytest.raises(TypeError):
        _lsl.matmul(w.astype(np.float64), None, _lsl.ACT_FLOAT, x, y0)
    with pytest.raises(ValueError):  # fp32 weights have no dynamic form
        _lsl.matmul(w, None, _lsl.ACT_DYN8, x, y0)


@pytest.mark.parametrize("m,k", [(1, 40), (3, 128), (5, 258)])
@pytest.mark.parametrize("codes", ["with -128", "within +-127", "within +-64"])
def test_int8_products_are_exact_at_the_extremes(isa, m, k, codes):
    """The worst case for the AVX2 sign forms (vpmaddubsw saturates at int16): weights of
    -128 and 127 and activations of +-max|row| (q = +-127), so every product is 127 * 128
    and a pair of them 32512. Weights within +-127 take the one-row forms that negate the
    weights instead (|q| * (w sign(q)), pairs of 2 * 127 * 127); weights within +-64 (7-bit
    codes, ONNX Runtime's included) the form without a sign step, u = q + 128 times w
    (pairs up to 2 * 255 * 64). Dynamic int8
    must still give the exact integer sums, dense and sparse; float activations the
    dequantized product."""
    from lstmlite.runtime.lsl import QTensor, block_csr

    rng = np.random.default_rng(k)
    n = 48
    if codes == "with -128":
        q = rng.choice(np.array([-128, 127, -127, -128], np.int8), (n, k))
        q[:, 1::4] = -128  # both weights of some pairs at -128
    else:
        top = 127 if codes == "within +-127" else 64
        q = rng.choice(np.array([-top, top], np.int8), (n, k))
        q[:, 1::4] = q[:, ::4]  # pairs of equal weights: products of one sign meet
    scale = (rng.random(n).astype(np.float32) + 0.5) / 100
    x = rng.choice(np.array([-1.0, 1.0], np.float32), (m, k)) * 2.5  # q = +-127 everywhere
    y0 = rng.standard_normal((m, n)).astype(np.float32)

    qt = QTensor(q, scale)  # codes the project's quantizer never makes (it clips to +-127)
    dense = y0.copy()
    _lsl.matmul(q, scale, _lsl.ACT_DYN8, x, dense)
    assert rel_err(dense, _dynamic_reference(x, qt, y0)) < 1e-6
    sparse = y0.copy()
    rowptr, bcol, values = block_csr(q)
    _lsl.matmul_sparse(rowptr, bcol, values, scale, _lsl.ACT_DYN8, k, x, sparse)
    np.testing.assert_array_equal(sparse, dense)
    yf = y0.copy()
    _lsl.matmul(q, scale, _lsl.ACT_FLOAT, x, yf)
    ref = y0.astype(np.float64) + x.astype(np.float64) @ (q.astype(np.float64) * scale[:, None]).T
    assert rel_err(yf, ref) < 1e-6


def _dynamic16_reference(x, q, scale, y0):
    """Independent NumPy statement of LSL_ACT_DYN16, in float32 as the kernels compute:
    per-row symmetric 16-bit codes (qmax 32767, or (2^31 - 1) // (128 kpad) for rows so
    long that the int32 sums could overflow), exact integer sums, then
    y0 + float(sum) * (xs * scale)."""
    kpad = (x.shape[1] + 3) // 4 * 4
    qmax = min(32767, (2**31 - 1) // (128 * kpad))
    codes, xs = dynamic_codes(x, qmax)
    acc = codes @ q.astype(np.int64).T  # exact
    assert np.abs(acc).max(initial=0) < 2**31  # what qmax guarantees
    return (y0 + acc.astype(np.float32) * (xs[:, None] * scale[None, :])).astype(np.float32)


# past K = 512 the codes shrink below 32767; past K = 1024 the AVX2 tile takes one row at a time
SHAPES_DYN16 = SHAPES + [(3, 20, 600), (7, 20, 1030), (2, 33, 2100)]


@pytest.mark.parametrize("m,n,k", SHAPES_DYN16)
def test_dynamic16_gemm_is_bit_exact_to_integer_reference(isa, m, n, k):
    """16-bit activations (the input projections of activations="dynamic16"): the exact
    integer sums and the float epilogue, bit for bit, on every table."""
    x, w, y0 = _case(m, n, k)
    x[0, :] = 0.0 if m > 3 else x[0, :]  # an all-zero row quantizes to zeros
    qt = quantize_rows(w)
    y = y0.copy()
    _lsl.matmul(qt.q, qt.scale, _lsl.ACT_DYN16, x, y)
    np.testing.assert_array_equal(y, _dynamic16_reference(x, qt.q, qt.scale, y0))


@pytest.mark.parametrize("m,k", [(1, 40), (6, 512), (2, 516), (7, 1100)])
def test_dynamic16_products_are_exact_at_the_extremes(isa, m, k):
    """Weights of -128 and activations of +-max|row| (codes +-qmax) in every column: the
    largest sums the 16-bit form can make (up to 2^31 - 1 at K = 512), still exact."""
    rng = np.random.default_rng(k)
    q = np.full((20, k), -128, np.int8)
    q[1::2, ::3] = 127
    scale = (rng.random(20).astype(np.float32) + 0.5) / 100
    x = rng.choice(np.array([-1.0, 1.0], np.float32), (m, k)) * 3.0
    x[0, :] = -3.0  # every product of row 0 with row 0 of q is +qmax * 128
    y0 = rng.standard_normal((m, 20)).astype(np.float32)
    y = y0.copy()
    _lsl.matmul(q, scale, _lsl.ACT_DYN16, x, y)
    np.testing.assert_array_equal(y, _dynamic16_reference(x, q, scale, y0))


def test_dynamic16_is_for_dense_int8_only():
    from lstmlite.runtime.lsl import block_csr

    x, w, y0 = _case(2, 8, 4)
    with pytest.raises(ValueError):  # fp32 weights have no dynamic form
        _lsl.matmul(w, None, _lsl.ACT_DYN16, x, y0)
    qt = quantize_rows(w)
    rowptr, bcol, values = block_csr(qt.q)
    with pytest.raises(ValueError):  # nor the sparse kernels a 16-bit one
        _lsl.matmul_sparse(rowptr, bcol, values, qt.scale, _lsl.ACT_DYN16, 4, x, y0.copy())
