"""Low-rank factorization config.

Default tensors (``filter=None``): the sequence layers' 2-D ``weight_ih`` and
``weight_hh`` matrices (every layer and direction; FastGRNN's too, not the grouped
LSTM's 3-D per-group blocks). The whole gate-stacked matrix is
factored, W (G·H, I) ≈ U (G·H, r) · V (r, I), as FastGRNN's low-rank form does.

Example:
    >>> LowRankConfig(energy=0.9).to_dict()
    {'type': 'low_rank', 'version': 1, 'data': {'rank': None, 'energy': 0.9}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..config import CompressionConfig

__all__ = ["LowRankConfig"]


@dataclass
class LowRankConfig(CompressionConfig):
    """SVD factorization W = U V with trainable U and V.

    Give exactly one of:
        rank: the rank r of every selected matrix (clamped to min(rows, cols)).
        energy: per matrix, the smallest r whose singular values keep this fraction
            of the squared Frobenius norm, Σ_{i≤r} σ_i² / Σ σ_i² ≥ energy, in (0, 1].

    The factors are balanced: U = U_r·diag(√σ), V = diag(√σ)·V_rᵀ. A factorization
    stores r·(rows + cols) values, so it only saves bytes when r < rows·cols/(rows + cols);
    ``summary`` shows the rank and the bytes of the factors.
    """

    type_name = "low_rank"
    version = 1

    rank: Optional[int] = None
    energy: Optional[float] = None

    def __post_init__(self) -> None:
        if (self.rank is None) == (self.energy is None):
            raise ValueError("give exactly one of rank or energy")
        if self.rank is not None:
            if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
                raise ValueError(f"rank must be a positive int, got {self.rank!r}")
        if self.energy is not None:
            self.energy = float(self.energy)
            if not 0.0 < self.energy <= 1.0:
                raise ValueError(f"energy must be in (0, 1], got {self.energy}")
