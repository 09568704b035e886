"""Symmetric weight quantization math: scales, codes, fake quantization, int4 packing.

A tensor W is quantized per output channel (row ``r`` of W viewed as a matrix
(shape[0], -1): a gate row of ``weight_ih``/``weight_hh``, an output unit of the head,
a token row of the embedding) or per tensor, symmetrically, with b bits::

    qmax  = 2**(b-1) - 1                        (127 for int8, 7 for int4)
    s_r   = clip_r * max_j |W[r, j]| / qmax     (clip_r = 1 for "absmax"; the
                                                 MSE-best ratio for "mse")
    q     = clamp(round(W / s), -qmax, qmax)    round half to even (torch.round)
    W_hat = q * s

Codes never use -2**(b-1) (-128, -8), so negation never overflows. A row that is all
zeros gets s = 1 (its codes are 0 whatever s is).

Fake quantization (:func:`fake_quantize`) returns ``W_hat`` in the forward pass and
passes the gradient straight through (the STE, Bengio et al. 2013) where W lies in
the clip range ``[-qmax s, qmax s]`` and blocks it outside, as
``d W_hat / d W = 1{|W| <= qmax s}``. ``s`` is treated as a constant (no gradient).

int4 packing (:func:`pack_int4`): two codes per byte along the last dimension, the
element with the even index in the **low nibble**, the odd one in the high nibble,
each as a 4-bit two's complement value; a row of odd length is padded with a zero
nibble, so every row starts on a byte boundary.

Example:
    >>> import torch
    >>> w = torch.tensor([[0.6, -1.0, 0.25], [2.0, 0.0, -0.5]])
    >>> s = channel_scales(w, bits=4)
    >>> quantize_codes(w, s, bits=4).tolist()
    [[4, -7, 2], [7, 0, -2]]
    >>> pack_int4(torch.tensor([[1, -2, 3]], dtype=torch.int8)).tolist()   # 0xE1, 0x03
    [[225, 3]]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "GRANULARITIES", "SCALE_METHODS", "qmax_for", "channel_scales", "quantize_codes", "dequantize",
    "fake_quantize", "pack_int4", "unpack_int4", "packed_bytes", "storage_bits", "as_rows",
]

GRANULARITIES = ("per_channel", "per_tensor")
SCALE_METHODS = ("absmax", "mse")
#: Clip ratios the "mse" method tries (1.0 is absmax).
MSE_RATIOS = tuple(1.0 - 0.025 * k for k in range(21))  # 1.0 .. 0.5


def qmax_for(bits: int) -> int:
    """Largest code of a symmetric ``bits``-bit quantizer: 2**(bits-1) - 1."""
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    return (1 << (bits - 1)) - 1


def as_rows(w: Tensor) -> Tensor:
    """W viewed as (channels, -1); a 1-D tensor is one row (1, n), a scalar (1, 1)."""
    if w.dim() == 0:
        return w.reshape(1, 1)
    if w.dim() == 1:
        return w.reshape(1, -1)
    return w.reshape(w.shape[0], -1)


def _fq_rows(rows: Tensor, scale: Tensor, qmax: int) -> Tensor:
    return torch.clamp(torch.round(rows / scale), -qmax, qmax) * scale


def channel_scales(w: Tensor, bits: int, granularity: str = "per_channel", method: str = "absmax",
                   scale_bits: int = 32) -> Tensor:
    """Scales of ``w``: (rows,) for per_channel, (1,) for per_tensor; float32, no grad.

    ``method="mse"`` picks, per row (or for the tensor), the clip ratio in
    :data:`MSE_RATIOS` whose fake-quantized rows have the smallest squared error
    (ties go to the larger ratio, so absmax wins when clipping does not help).
    ``scale_bits=16`` rounds every scale to the nearest float16 (at least 2**-24,
    float16's smallest positive value) so that a deployment can store it in 2 bytes;
    the values stay float32 tensors.
    """
    scale = _scales(w, bits, granularity, method)
    if scale_bits == 32:
        return scale
    if scale_bits != 16:
        raise ValueError(f"scale_bits must be 32 or 16, got {scale_bits}")
    return scale.clamp(min=2.0**-24, max=65504.0).half().float()


def _scales(w: Tensor, bits: int, granularity: str, method: str) -> Tensor:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if method not in SCALE_METHODS:
        raise ValueError(f"scale method must be one of {SCALE_METHODS}, got {method!r}")
    qmax = qmax_for(bits)
    with torch.no_grad():
        rows = as_rows(w.detach()).float()
        if granularity == "per_tensor":
            rows = rows.reshape(1, -1)
        absmax = rows.abs().amax(dim=1) if rows.numel() else rows.new_zeros(rows.shape[0])
        base = torch.where(absmax > 0, absmax / qmax, torch.ones_like(absmax))
        if method == "absmax":
            return base
        best_err = torch.full_like(base, math.inf)
        best = base.clone()
        for ratio in MSE_RATIOS:
            scale = base * ratio
            err = (_fq_rows(rows, scale[:, None], qmax) - rows).pow(2).sum(dim=1)
            better = err < best_err
            best = torch.where(better, scale, best)
            best_err = torch.where(better, err, best_err)
        return best


def _broadcast(scale: Tensor, w: Tensor) -> Tensor:
    """(rows,) or (1,) scales → a shape that broadcasts against ``w``."""
    if w.dim() <= 1 or scale.numel() == 1:
        return scale.reshape(()) if scale.numel() == 1 else scale.reshape(-1)
    return scale.reshape(-1, *([1] * (w.dim() - 1)))


def quantize_codes(w: Tensor, scale: Tensor, bits: int) -> Tensor:
    """Integer codes ``clamp(round(w / s), -qmax, qmax)`` as int8, w's shape."""
    qmax = qmax_for(bits)
    with torch.no_grad():
        s = _broadcast(scale.to(w.dtype), w)
        return torch.clamp(torch.round(w.detach() / s), -qmax, qmax).to(torch.int8)


def dequantize(codes: Tensor, scale: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """``codes * scale`` in ``dtype``."""
    return codes.to(dtype) * _broadcast(scale.to(dtype), codes)


class _FakeQuantSTE(torch.autograd.Function):
    """Forward: exactly ``round(clamp(w, -limit, limit) / s) * s``; backward: the clipped STE."""

    @staticmethod
    def forward(ctx, w: Tensor, s: Tensor, limit: Tensor) -> Tensor:  # type: ignore[override]
        inside = (w >= -limit) & (w <= limit)
        ctx.save_for_backward(inside)
        return torch.round(torch.clamp(w, -limit, limit) / s) * s

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


def fake_quantize(w: Tensor, scale: Tensor, bits: int) -> Tensor:
    """``W_hat = clamp(round(w / s), -qmax, qmax) * s`` with the clipped straight-through gradient.

    Forward value: exactly the dequantized codes (``codes * s`` in w's dtype). Gradient
    w.r.t. ``w``: the incoming gradient where ``|w| <= qmax * s``, zero elsewhere;
    none w.r.t. ``scale``.
    """
    qmax = qmax_for(bits)
    s = _broadcast(scale.detach().to(w.dtype), w)
    return _FakeQuantSTE.apply(w, s, qmax * s)


def pack_int4(codes: Tensor) -> Tensor:
    """Pack int4 codes (values in [-8, 7], any integer dtype) two per byte along the last dim.

    Returns uint8 of shape (..., ceil(n / 2)): byte k holds element 2k in its low
    nibble and element 2k+1 in its high nibble (4-bit two's complement each); an odd
    row is padded with a zero nibble.
    """
    if codes.dtype.is_floating_point:
        raise TypeError("pack_int4 expects integer codes")
    c = codes.to(torch.int16)
    if c.numel() and (int(c.min()) < -8 or int(c.max()) > 7):
        raise ValueError("int4 codes must lie in [-8, 7]")
    if c.dim() == 0:
        c = c.reshape(1)
    if c.shape[-1] % 2:
        c = torch.nn.functional.pad(c, (0, 1))
    nibbles = (c & 0xF).to(torch.uint8)
    return nibbles[..., 0::2] | (nibbles[..., 1::2] << 4)


def unpack_int4(packed: Tensor, n: int) -> Tensor:
    """Inverse of :func:`pack_int4`: uint8 (..., ceil(n/2)) → int8 codes (..., n), sign-extended."""
    if packed.dtype != torch.uint8:
        raise TypeError(f"unpack_int4 expects uint8, got {packed.dtype}")
    if packed.shape[-1] != (n + 1) // 2:
        raise ValueError(f"{packed.shape[-1]} bytes per row cannot hold {n} int4 codes")
    p = packed.to(torch.int16)
    low, high = p & 0xF, (p >> 4) & 0xF
    both = torch.stack([low, high], dim=-1).reshape(*packed.shape[:-1], -1)[..., :n]
    return torch.where(both >= 8, both - 16, both).to(torch.int8)


def storage_bits(bits: int) -> int:
    """Bits a deployment spends per code: 4 (nibbles) for 2..4-bit codes, 8 for 5..8."""
    qmax_for(bits)
    return 4 if bits <= 4 else 8


def packed_bytes(shape: tuple[int, ...] | torch.Size, bits: int) -> int:
    """Bytes of the codes of a tensor of ``shape`` at ``bits``.

    5..8-bit codes take one byte each; 2..4-bit codes are packed two per byte along
    the last dimension (:func:`pack_int4`), ``rows * ceil(n / 2)`` bytes for rows of
    n codes.
    """
    numel = math.prod(shape) if len(shape) else 1
    if storage_bits(bits) == 8:
        return numel
    n = shape[-1] if len(shape) else 1
    return (numel // n) * ((n + 1) // 2) if n else 0
