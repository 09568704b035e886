"""The gradual-pruning callback: recomputes the masks on the Zhu & Gupta schedule.

The trainer (:func:`lstmlite.train.train`) calls ``on_step(step)`` after every
optimizer step and ``on_epoch_end(epoch, metrics)`` after each epoch; pass a
:class:`PruningScheduler` in its ``callbacks``. Masks are found on the model at
each update (so a model restored from a run dir continues where it stopped).

Example:
    >>> import torch
    >>> from lstmlite.nn import SequenceClassifier
    >>> from lstmlite.compress import compress_, GradualPruneConfig, PruningScheduler
    >>> model = SequenceClassifier(input_size=4, hidden_size=16, n_classes=3)
    >>> _ = compress_(model, GradualPruneConfig(0.0, 0.5, start_step=0, end_step=10, frequency=5))
    >>> scheduler = PruningScheduler(model)
    >>> for _ in range(10):
    ...     scheduler.step()          # one optimizer step done
    >>> round(scheduler.current_sparsity(), 2)
    0.5
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Optional

import torch
from torch import nn

from ..targets import chain
from .config import GradualPruneConfig
from .transform import Mask, prune_groups

__all__ = ["PruningScheduler"]

log = logging.getLogger(__name__)


def _input_of(plist: nn.Module, target: Mask) -> torch.Tensor:
    """The tensor ``target`` receives in its parametrization chain (masks may be stacked)."""
    x: Any = plist.original if plist.is_tensor else [getattr(plist, f"original{i}") for i in range(plist.ntensors)]
    for p in chain(plist):
        if p is target:
            return x
        x = p(x) if isinstance(x, torch.Tensor) else p(*x)
    raise ValueError("mask not found in its parametrization list")


class PruningScheduler:
    """Update every gradual-pruning mask of ``model`` as training proceeds.

    Args:
        model: a model compressed with :class:`GradualPruneConfig`.
        start: the step count so far (when resuming).
        groups: the mask groups (one per ``compress_`` call, :attr:`Mask.group`) to
            drive; None: every gradual group of the model. A later gradual step must
            name its own: counting from 0 again, the scheduler would otherwise redo an
            earlier step's ramp and lower that step's finished masks.

    ``step()`` counts one optimizer step; ``step(t)`` / ``on_step(t)`` say the step
    number (the trainer's count, starting at 1). At every step where the config is
    due (every ``frequency`` steps from ``start_step``, and at ``end_step``) the masks
    of each ``compress_`` call are recomputed at s_t from the magnitudes of the
    currently masked weights.
    """

    def __init__(self, model: nn.Module, start: int = 0, groups: Optional[Iterable[int]] = None) -> None:
        self.model = model
        self.step_count = int(start)
        self.only = None if groups is None else {int(g) for g in groups}
        if not self._groups():
            log.warning("PruningScheduler: the model has no gradual-pruning masks; it will do nothing")

    def _groups(self) -> dict[int, list[tuple[Mask, nn.Module]]]:
        """Gradual masks by group, each with one module that reads it (for the weights)."""
        groups: dict[int, list[tuple[Mask, nn.Module]]] = {}
        seen: set[int] = set()
        for module in self.model.modules():
            if isinstance(module, nn.utils.parametrize.ParametrizationList):
                for p in chain(module):
                    if (isinstance(p, Mask) and isinstance(p.config, GradualPruneConfig) and id(p) not in seen
                            and (self.only is None or p.group in self.only)):
                        seen.add(id(p))
                        groups.setdefault(p.group, []).append((p, module))
        return groups

    def step(self, step: Optional[int] = None) -> None:
        """Advance to ``step`` (default: one more than the last) and update due masks."""
        self.step_count = self.step_count + 1 if step is None else int(step)
        for members in self._groups().values():
            config: GradualPruneConfig = members[0][0].config  # type: ignore[assignment]
            if not config.due(self.step_count):
                continue
            sparsity = config.sparsity_at(self.step_count)
            with torch.no_grad():
                # Effective weights: pruned ones are 0 and so are pruned first again.
                weights = [_input_of(plist, mask) * mask.mask for mask, plist in members]
                new = prune_groups(weights, sparsity, config.scope, config.block)
                for (mask, _), m in zip(members, new):
                    mask.mask.copy_(m)
            log.debug("step %d: pruned group to sparsity %.3f", self.step_count, sparsity)

    def on_step(self, step: int) -> None:
        """Trainer hook: called after optimizer step ``step``."""
        self.step(step)

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        """Trainer hook: logs the sparsity reached (the schedule runs on steps)."""
        log.info("epoch %d: gradual pruning at sparsity %.3f", epoch, self.current_sparsity())

    @property
    def complete(self) -> bool:
        """True once every gradual group has reached its ``end_step`` (final masks).

        A trainer that keeps the best validation epoch should only consider epochs
        where this is True: an earlier epoch's state carries less sparse masks.
        """
        groups = self._groups().values()
        return all(self.step_count >= members[0][0].config.end_step for members in groups)

    def current_sparsity(self) -> float:
        """Fraction of zeros over all gradual masks."""
        masks = [m for members in self._groups().values() for m, _ in members]
        total = sum(m.mask.numel() for m in masks)
        return 1.0 - sum(int(m.mask.sum()) for m in masks) / total if total else 0.0
