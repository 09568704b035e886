"""Honest deployable size: the bytes a deployment stores for each tensor.

A :class:`Storage` describes how one tensor is kept by an exporter:

* ``values``: the tensor as the deployment holds it (for quantized forms the
  dequantized view is fine: only its shape and its zero pattern are read);
* ``bits`` per stored value (32 fp32, 16, 8 int8, 4 packed int4: two per byte);
* ``overhead_bytes``: scales, zero points, lookup tables stored beside it;
* ``factors``: when non-empty the tensor may be stored as these tensors instead (a
  low-rank ``W = U V`` stores U and V, or the product at ``bits`` when that is
  smaller), ``rank`` says the rank;
* ``allow_sparse``: False forces the dense layout.

Bytes of a non-factored tensor (:func:`storage_bytes`) are the smallest of
    dense         ceil(numel * bits / 8)
    sparse        values of the non-zero blocks (every value in a kept block) plus
                  the index, the smaller of a bitmask (one bit per block) and CSR
                  (int32 row pointers per block row + one uint16 column index per
                  kept block, int32 once a row has more than 65536 block columns),
over the block shapes in :data:`BLOCK_SHAPES` — (1, 1) unstructured, (1, 4) four
consecutive input columns of one output row (one index per 4 weights, the shape the
native runtime's SIMD kernels read along the reduction dimension), (4, 1) one input
column across 4 output rows. A matrix is (out_features, in_features); a 1-D tensor is
one row; higher ranks are flattened to (shape[0], -1). Partial blocks at the edges
count as whole blocks. Zero pattern = ``values == 0``, so a mask that is baked in by
``finalize`` is counted the same as the mask itself.

Parametrizations report their storage through
:meth:`lstmlite.compress.base.CompressionParametrization.storage`, which lets
quantization (bits, scales) and low-rank (factors) plug into the same count.

Example:
    >>> import torch
    >>> storage_bytes(Storage(torch.ones(8, 8)))          # dense fp32
    256
    >>> w = torch.zeros(8, 8); w[0, :4] = 1.0              # one kept 1x4 block
    >>> storage_bytes(Storage(w))  # 4 values * 4 B + bitmask of 16 blocks (2 B)
    18
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["Storage", "BLOCK_SHAPES", "storage_bytes", "sparse_bytes", "dense_bytes", "as_matrix"]

BLOCK_SHAPES: tuple[tuple[int, int], ...] = ((1, 1), (1, 4), (4, 1))


@dataclass
class Storage:
    """How one tensor is stored by a deployment (see the module docstring)."""

    values: Tensor
    bits: int = 32
    overhead_bytes: int = 0
    factors: tuple["Storage", ...] = ()
    rank: int | None = None
    allow_sparse: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def nbytes(self) -> int:
        return storage_bytes(self)

    @property
    def value_bits(self) -> int:
        """Bits per stored value (of the factors, when factored)."""
        if self.factors:
            return max(f.value_bits for f in self.factors)
        return self.bits

    @classmethod
    def plain(cls, tensor: Tensor) -> "Storage":
        """A tensor stored in its own dtype (fp32 → 32 bits)."""
        return cls(values=tensor.detach(), bits=tensor.element_size() * 8)


def as_matrix(values: Tensor) -> Tensor:
    """(out, in) view used for block and CSR counts: 1-D → (1, n), N-D → (shape[0], -1)."""
    if values.dim() == 0:
        return values.reshape(1, 1)
    if values.dim() == 1:
        return values.reshape(1, -1)
    return values.reshape(values.shape[0], -1)


def dense_bytes(numel: int, bits: int) -> int:
    return int(math.ceil(numel * bits / 8))


def sparse_bytes(nonzero: Tensor, bits: int, block: tuple[int, int]) -> int:
    """Bytes of a sparse layout of a 2-D boolean pattern at one block shape."""
    br, bc = block
    rows, cols = nonzero.shape
    grid_r, grid_c = -(-rows // br), -(-cols // bc)
    padded = torch.zeros(grid_r * br, grid_c * bc, dtype=torch.bool)
    padded[:rows, :cols] = nonzero
    kept = padded.view(grid_r, br, grid_c, bc).any(dim=3).any(dim=1)  # (grid_r, grid_c)
    n_blocks = int(kept.sum())
    values = dense_bytes(n_blocks * br * bc, bits)
    bitmask = dense_bytes(grid_r * grid_c, 1)
    index_bytes = 2 if grid_c <= 65536 else 4
    csr = (grid_r + 1) * 4 + n_blocks * index_bytes
    return values + min(bitmask, csr)


def storage_bytes(storage: Storage) -> int:
    """Deployable bytes of one tensor: smallest of dense and the sparse layouts."""
    values = storage.values.detach()
    if storage.factors:
        # A deployment stores the factors, or the product when that is smaller.
        factored = sum(storage_bytes(f) for f in storage.factors) + storage.overhead_bytes
        return int(min(factored, storage_bytes(Storage(values=values, bits=storage.bits,
                                                       allow_sparse=storage.allow_sparse))))
    best = dense_bytes(values.numel(), storage.bits)
    if storage.allow_sparse and values.numel():
        nonzero = as_matrix(values != 0).cpu()
        for block in BLOCK_SHAPES:
            best = min(best, sparse_bytes(nonzero, storage.bits, block))
    return int(best + storage.overhead_bytes)
