"""Quantization math against independent NumPy computations and hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite.compress.quantize.ops import (
    channel_scales, dequantize, fake_quantize, pack_int4, packed_bytes, qmax_for, quantize_codes, unpack_int4,
)


@pytest.mark.parametrize("bits", [8, 4])
def test_per_channel_scales_and_codes_match_numpy(bits):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(12, 7)).astype(np.float32)
    w[3] = 0.0  # an all-zero row
    qmax = 2 ** (bits - 1) - 1
    absmax = np.abs(w).max(axis=1)
    want_scale = np.where(absmax > 0, absmax / qmax, 1.0)
    scale = channel_scales(torch.from_numpy(w), bits)
    np.testing.assert_allclose(scale.numpy(), want_scale, rtol=1e-6)
    codes = quantize_codes(torch.from_numpy(w), scale, bits).numpy()
    assert codes.dtype == np.int8 and codes.min() >= -qmax and codes.max() <= qmax
    np.testing.assert_array_equal(codes, np.clip(np.rint(w / scale.numpy()[:, None]), -qmax, qmax))
    # the largest |w| of each non-zero row maps to +-qmax, and the error is at most half a step
    assert np.all(np.abs(codes[absmax > 0]).max(axis=1) == qmax)
    deq = dequantize(torch.from_numpy(codes), scale).numpy()
    assert np.all(np.abs(deq - w) <= scale.numpy()[:, None] / 2 + 1e-6)
    per_tensor = channel_scales(torch.from_numpy(w), bits, "per_tensor")
    np.testing.assert_allclose(per_tensor.numpy(), [np.abs(w).max() / qmax], rtol=1e-6)


def test_mse_scale_never_worse_than_absmax():
    rng = np.random.default_rng(1)
    w = torch.from_numpy(rng.standard_t(df=3, size=(32, 64)).astype(np.float32))  # heavy tails
    errs = {}
    for method in ("absmax", "mse"):
        s = channel_scales(w, 4, method=method)
        errs[method] = ((fake_quantize(w, s, 4) - w) ** 2).sum(dim=1)
    assert torch.all(errs["mse"] <= errs["absmax"] + 1e-7)
    assert errs["mse"].sum() < 0.9 * errs["absmax"].sum()  # clipping outliers pays at int4


def test_ste_gradient_is_identity_inside_clip_range_and_zero_outside():
    bits, qmax = 4, 7
    scale = torch.tensor([0.1, 0.2])
    w = torch.tensor([[0.05, 0.69, 0.71, -0.71, 0.7], [1.5, -1.39, -1.41, 0.0, 0.33]], requires_grad=True)
    upstream = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0]])
    out = fake_quantize(w, scale, bits)
    (out * upstream).sum().backward()
    # by hand: the clip range is |w| <= qmax * s = 0.7 (row 0) and 1.4 (row 1)
    inside = torch.tensor([[1, 1, 0, 0, 1], [0, 1, 0, 1, 1]], dtype=torch.float32)
    torch.testing.assert_close(w.grad, upstream * inside)
    # forward: round to the grid, clamp to +-qmax steps
    want = torch.tensor([[0.0, 0.7, 0.7, -0.7, 0.7], [1.4, -1.4, -1.4, 0.0, 0.4]])
    torch.testing.assert_close(out.detach(), want)


def test_ste_matches_finite_differences_of_the_clipped_identity():
    """STE is the derivative of clamp(w, -qmax s, qmax s): compare with central differences."""
    torch.manual_seed(0)
    w = (torch.randn(3, 6, dtype=torch.float64) * 0.8).requires_grad_()
    scale = torch.tensor([0.05, 0.1, 0.2], dtype=torch.float64)
    g = torch.randn(3, 6, dtype=torch.float64)
    (fake_quantize(w, scale, 4) * g).sum().backward()
    eps = 1e-6
    limit = (7 * scale)[:, None]
    surrogate = lambda v: (torch.clamp(v, -limit, limit) * g).sum()  # noqa: E731
    fd = torch.zeros_like(w)
    for idx in np.ndindex(*w.shape):
        e = torch.zeros_like(w)
        e[idx] = eps
        fd[idx] = (surrogate(w.detach() + e) - surrogate(w.detach() - e)) / (2 * eps)
    torch.testing.assert_close(w.grad, fd, atol=1e-6, rtol=0)
    assert (fd == 0).any() and (fd != 0).any()  # both regimes are exercised


def test_scale_gets_no_gradient():
    w = torch.randn(4, 5, requires_grad=True)
    s = channel_scales(w, 8).requires_grad_()
    fake_quantize(w, s, 8).sum().backward()
    assert s.grad is None and w.grad is not None


@pytest.mark.parametrize("n", [1, 2, 7, 8])
def test_int4_pack_unpack_round_trip(n):
    g = torch.Generator().manual_seed(n)
    codes = torch.randint(-8, 8, (5, 3, n), generator=g, dtype=torch.int8)
    packed = pack_int4(codes)
    assert packed.dtype == torch.uint8 and packed.shape == (5, 3, (n + 1) // 2)
    assert torch.equal(unpack_int4(packed, n), codes)
    assert packed.numel() == packed_bytes(codes.shape, 4)


def test_int4_nibble_order_by_hand():
    codes = torch.tensor([[1, -2, 7, -8, -1]], dtype=torch.int8)
    # byte 0: low = 1 (0x1), high = -2 (0xE) -> 0xE1; byte 1: low 7, high -8 (0x8) -> 0x87;
    # byte 2: low -1 (0xF), high padding 0 -> 0x0F
    assert pack_int4(codes).tolist() == [[0xE1, 0x87, 0x0F]]
    with pytest.raises(ValueError):
        pack_int4(torch.tensor([8]))
    with pytest.raises(TypeError):
        pack_int4(torch.tensor([0.5]))


def test_packed_bytes_and_bits_validation():
    assert packed_bytes((10, 5), 8) == 50
    assert packed_bytes((10, 5), 4) == 30  # 3 bytes per row of 5 nibbles
    assert packed_bytes((10, 5), 2) == 30  # 2-bit codes are stored as nibbles too
    assert qmax_for(8) == 127 and qmax_for(4) == 7
    with pytest.raises(ValueError):
        qmax_for(9)


def test_mse_ties_go_to_the_larger_ratio_so_an_all_zero_row_keeps_scale_one():
    w = torch.tensor([[0.0, 0.0, 0.0], [0.9, -0.2, 0.4]])
    for method in ("absmax", "mse"):
        # every clip ratio quantizes the zero row exactly: the tie keeps ratio 1 (s = 1, as absmax)
        assert float(channel_scales(w, 4, method=method)[0]) == 1.0


def test_float16_scales_are_clamped_to_the_float16_range():
    w = torch.tensor([[1e-9, -2e-9, 0.0], [1.0, 0.5, -0.25], [1e7, 0.0, 0.0]])
    s = channel_scales(w, 8, scale_bits=16)
    # 1e-9 / 127 underflows float16: the smallest positive float16, 2**-24, keeps the row's codes finite
    assert s.tolist() == [2.0**-24, float(torch.tensor(1.0 / 127).half()), 65504.0]
    codes = quantize_codes(w, s, 8)
    assert codes[0].tolist() == [0, 0, 0] and codes[2, 0] == 127
    assert torch.isfinite(dequantize(codes, s)).all()


@pytest.mark.parametrize("bits", [8, 4])
def test_codes_round_exact_ties_half_to_even(bits):
    """w / s exactly on a .5 tie rounds to the even code (torch.round, as fake_quantize does),
    so the stored codes give the same weights as the forward. Catches rounding half away
    from zero (or half up) in quantize_codes."""
    qmax = 2 ** (bits - 1) - 1
    # row absmax = qmax, so s = 1.0 exactly and w / s are the values themselves
    w = torch.tensor([[float(qmax), 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5]])
    s = channel_scales(w, bits)
    assert s.tolist() == [1.0]
    # by hand: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0, -1.5 -> -2, -2.5 -> -2, 3.5 -> 4
    assert quantize_codes(w, s, bits).tolist() == [[qmax, 0, 2, 2, 0, -2, -2, 4]]
    assert torch.equal(dequantize(quantize_codes(w, s, bits), s), fake_quantize(w, s, bits))


def test_mse_search_reaches_the_clip_ratio_one_half(mse_scale):
    """A 2-bit row (qmax 1) of one outlier 2.0 and 64 values at +-1.0: clipping at half the
    absmax (s = 1.0) costs only the outlier, (2 - 1)^2 = 1, while ratio 0.525 costs
    0.95^2 + 64 * 0.05^2 = 1.0625 and every larger ratio more. Catches a ratio list that
    stops before 0.5."""
    row = np.array([2.0] + [1.0] * 32 + [-1.0] * 32, dtype=np.float32)
    assert mse_scale(row, 1) == pytest.approx(1.0, rel=1e-6)
    got = channel_scales(torch.from_numpy(row[None, :]), 2, method="mse")
    assert float(got[0]) == pytest.approx(1.0, rel=1e-6)
    # and heavy-tailed int4 rows agree with the written-out search row by row
    rows = np.random.default_rng(2).standard_t(df=2, size=(16, 40)).astype(np.float32)
    got = channel_scales(torch.from_numpy(rows), 4, method="mse").numpy()
    np.testing.assert_allclose(got, [mse_scale(r, 7) for r in rows], rtol=1e-6)


@pytest.mark.parametrize("bits", [8, 4])
def test_codes_beyond_the_clip_range_stop_at_minus_qmax(bits):
    """Weights past the scale's range (MSE clipping, or fixed scales after fine-tuning) clamp
    to -qmax, never to -2**(b-1): the codes must give the forward's weights and negate
    without overflow. Catches a clamp at -128 / -8 in quantize_codes."""
    qmax = 2 ** (bits - 1) - 1
    w = torch.tensor([[-3.0 * qmax, -qmax - 1.0, 2.0 * qmax, 1.0]])
    s = torch.tensor([1.0])
    # by hand: -3 qmax -> -qmax, -(qmax + 1) -> -qmax, 2 qmax -> qmax, 1 -> 1
    assert quantize_codes(w, s, bits).tolist() == [[-qmax, -qmax, qmax, 1]]
    assert torch.equal(dequantize(quantize_codes(w, s, bits), s), fake_quantize(w, s, bits))
