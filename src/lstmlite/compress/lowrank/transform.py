"""Low-rank parametrization ``W = U V`` and its handler.

``right_inverse`` factors the current W by a truncated SVD, so after
``compress_`` the module's trainable tensors are U and V (stored as
``parametrizations.<name>.original0`` / ``original1``) and every forward reads
their product. Create the optimizer after compressing.

Example:
    >>> import torch
    >>> w = torch.randn(6, 2) @ torch.randn(2, 5)       # rank 2
    >>> choose_rank(torch.linalg.svdvals(w), energy=0.999)
    2
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn

from ..base import CompressionParametrization
from ..config import CompressionConfig
from ..registry import Filter, register_handler, register_transform
from ..size import Storage
from ..targets import attach, is_sequence_layer, recurrent_weight_filter, select_targets
from .config import LowRankConfig

__all__ = ["LowRank", "choose_rank", "factorize"]

log = logging.getLogger(__name__)


def choose_rank(singular_values: Tensor, energy: float) -> int:
    """Smallest r with Σ_{i≤r} σ_i² ≥ energy · Σ σ_i² (at least 1)."""
    sq = singular_values.double().pow(2)
    total = float(sq.sum())
    if total == 0.0:
        return 1
    cumulative = torch.cumsum(sq, 0) / total
    # tolerance: energy=1.0 must not fail on rounding in the last place
    return int(torch.searchsorted(cumulative, torch.tensor(energy - 1e-12, dtype=torch.float64))) + 1


def factorize(w: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """Balanced truncated SVD: U (m, r), V (r, n) with U V the best rank-r approximation,
    both row-major (contiguous)."""
    u, s, vh = torch.linalg.svd(w.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    # LAPACK's U comes column-major; a saved and loaded model has row-major factors, and a
    # BLAS may sum U @ V in another order for another layout (MKL's AVX2 kernels on Intel
    # do), so the compressed model must use the layout it will have after loading
    return ((u[:, :rank] * root).to(w.dtype).contiguous(),
            (root[:, None] * vh[:rank]).to(w.dtype).contiguous())


@register_transform
class LowRank(CompressionParametrization):
    """``(U, V) → U @ V``. ``rank`` is fixed at creation.

    Args:
        config: the :class:`LowRankConfig`.
        rank: r.
        keep_original: keep the dense W in memory (not in the state dict) so that
            :func:`lstmlite.compress.undo` can restore it.
    """

    kind = "low_rank"

    def __init__(self, config: Optional[CompressionConfig], rank: int, keep_original: bool = True) -> None:
        super().__init__(config)
        self.rank = int(rank)
        self.keep_original = keep_original
        self._original: Optional[Tensor] = None
        self._restoring = False

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        return u @ v

    def right_inverse(self, w: Tensor) -> tuple[Tensor, Tensor]:
        if self._restoring:  # shapes only: load_state_dict fills the factors
            return w.new_zeros(w.shape[0], self.rank), w.new_zeros(self.rank, w.shape[1])
        if self.keep_original:
            self._original = w.detach().clone()
        return factorize(w, self.rank)

    def meta(self) -> dict[str, Any]:
        return {"rank": self.rank}

    @classmethod
    def restore(cls, config: Optional[CompressionConfig], meta: dict[str, Any], tensor: Tensor) -> "LowRank":
        if "rank" not in meta:
            raise ValueError("low_rank state needs meta.rank")
        p = cls(config, int(meta["rank"]), keep_original=False)
        p._restoring = True
        return p

    def storage(self, inputs: Sequence[Storage], output: Tensor) -> Storage:
        return Storage(values=output.detach(), factors=tuple(inputs), rank=self.rank)

    def undo_original(self) -> Optional[Tensor]:
        return self._original

    def describe(self) -> str:
        return f"low-rank r={self.rank}"


_recurrent_matrices = recurrent_weight_filter(("weight_ih", "weight_hh"))


def _own_factor(name: str) -> bool:
    """A FastGRNN's own factor of W or U (``wrank`` / ``urank``): ``weight_ih_l0_left``, ..."""
    return name.endswith(("_left", "_right"))


def _default_filter(fqn: str, module: nn.Module, name: str) -> bool:
    """weight_ih / weight_hh matrices of the sequence layers (a grouped LSTM's
    per-group 3-D blocks and a FastGRNN's own factors are left alone)."""
    return _recurrent_matrices(fqn, module, name) and getattr(module, name).dim() == 2 and not _own_factor(name)


@register_handler(LowRankConfig)
def _low_rank(model: nn.Module, config: LowRankConfig, filter: Optional[Filter]) -> None:
    groups = select_targets(model, filter, _default_filter)
    if not groups:
        log.info("low_rank: the filter selects no tensor; nothing changed")
        return
    plans = []
    for group in groups:
        fqn, module, name = group[0]
        label = f"{fqn}.{name}"
        if len(group) > 1:
            raise ValueError(f"low_rank cannot factor tied tensors {[f'{f}.{n}' for f, _, n in group]}")
        if nn.utils.parametrize.is_parametrized(module, name):
            raise ValueError(f"{label} is already compressed; apply low_rank first (or finalize() before it)")
        if _own_factor(name) and is_sequence_layer(module):
            # factors of factors: no export keeps them (the .lsl file, C and ONNX store a
            # FastGRNN's W / U as its two factors), so their codes would go out as floats
            raise ValueError(f"{label} is a factor of the FastGRNN's own low-rank W / U already; low_rank cannot "
                             f"factor it again (nothing exports factors of factors): lower the layer's wrank / "
                             f"urank instead (a student with rnn_options urank / wrank)")
        w = getattr(module, name).detach()
        if w.dim() != 2:
            raise ValueError(f"low_rank factors matrices; {label} has shape {tuple(w.shape)}")
        full = min(w.shape)
        if config.rank is not None:
            rank = min(config.rank, full)
        else:
            rank = min(choose_rank(torch.linalg.svdvals(w.double()), config.energy), full)
        if rank * (w.shape[0] + w.shape[1]) >= w.numel():
            log.warning("%s: rank %d stores more values than the dense %s matrix", label, rank, tuple(w.shape))
        plans.append((group, rank))
    for group, rank in plans:
        attach(group, LowRank(config, rank))
