"""Mask pruning: the ``Mask`` parametrization and the magnitude / gradual handlers.

The effective tensor is ``W * mask`` (``mask`` a boolean buffer saved with the
model). The gradient reaching the stored original is ``grad * mask``, so fine-tuning
updates exactly the surviving weights while the pruned ones stay zero in every
forward — the layer reads the effective tensor at every call, which is what
``nn.LSTM``'s flat weights break (pytorch#33618).

Example:
    >>> import torch
    >>> w = torch.tensor([[0.1, -2.0, 0.3, 4.0]])
    >>> block_mask(w, sparsity=0.5, block=(1, 1)).tolist()
    [[False, True, False, True]]
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn

from ..base import CompressionParametrization
from ..config import CompressionConfig
from ..registry import Filter, register_handler, register_transform
from ..targets import Target, attach, matrix_filter, select_targets
from .config import GradualPruneConfig, MagnitudePruneConfig

__all__ = ["Mask", "block_scores", "block_mask", "prune_groups"]

log = logging.getLogger(__name__)


@register_transform
class Mask(CompressionParametrization):
    """``W → W * mask``: magnitude pruning (one shot or gradual).

    Args:
        config: the pruning config (its ``block`` is shown by :meth:`describe`).
        mask: boolean tensor of W's shape; True where the weight survives.
        group: which ``compress_`` call made it (gradual pruning with a global scope
            ranks a whole group together).
    """

    kind = "mask"

    def __init__(self, config: Optional[CompressionConfig], mask: Tensor, group: int = 0) -> None:
        super().__init__(config)
        self.register_buffer("mask", mask.to(torch.bool).clone())
        self.group = int(group)

    def forward(self, w: Tensor) -> Tensor:
        return w * self.mask

    def meta(self) -> dict[str, Any]:
        return {"group": self.group}

    @classmethod
    def restore(cls, config: Optional[CompressionConfig], meta: dict[str, Any], tensor: Tensor) -> "Mask":
        return cls(config, torch.ones_like(tensor, dtype=torch.bool), group=int(meta.get("group", 0)))

    def sparsity(self) -> float:
        return 1.0 - float(self.mask.sum()) / max(self.mask.numel(), 1)

    def describe(self) -> str:
        block = getattr(self.config, "block", (1, 1))
        shape = "" if tuple(block) == (1, 1) else f" {block[0]}x{block[1]}"
        return f"mask {self.sparsity():.0%}{shape}"


# ----- scores and masks -------------------------------------------------------------------
def _as_matrix(w: Tensor) -> Tensor:
    return w.reshape(1, -1) if w.dim() < 2 else w.reshape(w.shape[0], -1)


def block_scores(w: Tensor, block: tuple[int, int]) -> Tensor:
    """Mean |w| of every block: (ceil(rows/br), ceil(cols/bc)) for W viewed as a matrix.

    Partial blocks at the edges are averaged over the values they hold.
    """
    m = _as_matrix(w.detach()).abs().float()
    br, bc = block
    rows, cols = m.shape
    gr, gc = -(-rows // br), -(-cols // bc)
    padded = m.new_zeros(gr * br, gc * bc)
    padded[:rows, :cols] = m
    counts = m.new_zeros(gr * br, gc * bc)
    counts[:rows, :cols] = 1.0
    total = padded.view(gr, br, gc, bc).sum(dim=(1, 3))
    return total / counts.view(gr, br, gc, bc).sum(dim=(1, 3))


def _expand(kept_blocks: Tensor, block: tuple[int, int], like: Tensor) -> Tensor:
    """Block-level keep flags (gr, gc) → element mask of ``like``'s shape."""
    br, bc = block
    full = kept_blocks.repeat_interleave(br, dim=0).repeat_interleave(bc, dim=1)
    m = _as_matrix(like)
    return full[: m.shape[0], : m.shape[1]].reshape(like.shape).to(like.device)


def _keep_flags(scores: Tensor, n_prune: int) -> Tensor:
    """True for every score but the ``n_prune`` smallest (ties broken by position)."""
    flat = scores.reshape(-1)
    keep = torch.ones_like(flat, dtype=torch.bool)
    if n_prune > 0:
        order = torch.argsort(flat, stable=True)
        keep[order[:n_prune]] = False
    return keep.view_as(scores)


def block_mask(w: Tensor, sparsity: float, block: tuple[int, int]) -> Tensor:
    """Boolean mask keeping the largest blocks of ``w``; round(sparsity · blocks) pruned."""
    scores = block_scores(w, block)
    return _expand(_keep_flags(scores, int(round(sparsity * scores.numel()))), block, w)


def prune_groups(tensors: Sequence[Tensor], sparsity: float, scope: str, block: tuple[int, int]) -> list[Tensor]:
    """Masks for several tensors: each to ``sparsity`` (``layer``) or one ranking (``global``)."""
    if scope == "layer":
        return [block_mask(t, sparsity, block) for t in tensors]
    scores = [block_scores(t, block) for t in tensors]
    flat = torch.cat([s.reshape(-1) for s in scores])
    keep = _keep_flags(flat, int(round(sparsity * flat.numel())))
    masks, start = [], 0
    for t, s in zip(tensors, scores):
        masks.append(_expand(keep[start:start + s.numel()].view_as(s), block, t))
        start += s.numel()
    return masks


def _effective(group: list[Target]) -> Tensor:
    _, module, name = group[0]
    with torch.no_grad():
        return getattr(module, name).detach()


def _is_low_rank(module: nn.Module, name: str) -> bool:
    """Whether ``module.name`` is (already) a low-rank product of two factors."""
    from torch.nn.utils import parametrize

    from ..lowrank.transform import LowRank
    from ..quantize.transform import chain

    return parametrize.is_parametrized(module, name) and any(
        isinstance(p, LowRank) for p in chain(module.parametrizations[name]))


def _next_group_id(model: nn.Module) -> int:
    ids = [m.group for m in model.modules() if isinstance(m, Mask)]
    return max(ids, default=0) + 1


def _attach_masks(model: nn.Module, config: CompressionConfig, filter: Optional[Filter], sparsity: float) -> None:
    groups = select_targets(model, filter, matrix_filter)
    if not groups:
        log.info("%s: the filter selects no tensor; nothing changed", config.type_name)
        return
    low_rank = sorted(f"{fqn}.{name}" if fqn else name for group in groups for fqn, module, name in group[:1]
                      if _is_low_rank(module, name))
    if low_rank:
        log.warning("%s: %s %s low-rank: a mask on a product makes it a dense matrix again, so the .lsl file "
                    "stores the masked product in float, not the factors (larger than they are, and codes "
                    "quantized later stay in the factors beneath it); prune before low-rank, or leave these "
                    "out of the targets", config.type_name, ", ".join(low_rank), "is" if len(low_rank) == 1 else "are")
    masks = prune_groups([_effective(g) for g in groups], sparsity, config.scope, config.block)
    group_id = _next_group_id(model)
    for group, mask in zip(groups, masks):
        attach(group, Mask(config, mask, group=group_id))


@register_handler(MagnitudePruneConfig)
def _magnitude_prune(model: nn.Module, config: MagnitudePruneConfig, filter: Optional[Filter]) -> None:
    _attach_masks(model, config, filter, config.sparsity)


@register_handler(GradualPruneConfig)
def _gradual_prune(model: nn.Module, config: GradualPruneConfig, filter: Optional[Filter]) -> None:
    # The masks start at s_i if pruning starts now, else keep everything; the
    # PruningScheduler recomputes them as training goes.
    _attach_masks(model, config, filter, config.sparsity_at(0))
