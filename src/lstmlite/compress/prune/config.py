"""Pruning configs: magnitude (one shot), gradual (Zhu & Gupta 2017), hidden units.

Default tensors (``filter=None``) for the magnitude and gradual configs: every weight
matrix of the sequence layers (``weight_ih``, ``weight_hh``, ``weight_hr``; LSTM, GRU
and the efficient cells, whose per-group blocks count as one tensor), the
embedding matrix and the head's weight; never biases. Tied tensors (a language
model's head and embedding) are pruned together with one mask.

Block shapes: a matrix is (out_features, in_features) and ``y = W x`` reduces over
the columns. ``block=(1, 4)`` prunes four consecutive input columns of one output
row together: one index per four weights, and a kept block is a 4-wide contiguous
dot product, which is what SIMD kernels along the reduction dimension want (the
recommended shape for the native runtime). ``(4, 1)`` keeps one input column for four
output rows (one broadcast of x_j feeds four accumulators). ``(1, 1)`` is
unstructured. Blocks are scored by their mean absolute value; partial blocks at the
edges are scored on the values they hold.

Example:
    >>> MagnitudePruneConfig(sparsity=0.8, block=(1, 4)).to_dict()["data"]
    {'sparsity': 0.8, 'scope': 'layer', 'block': [1, 4]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from ..config import CompressionConfig

__all__ = ["MagnitudePruneConfig", "GradualPruneConfig", "HiddenUnitPruneConfig"]

_SCOPES = ("layer", "global")


def _check_sparsity(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def _check_block(block) -> tuple[int, int]:
    try:
        rows, cols = (int(b) for b in block)
    except (TypeError, ValueError):
        raise ValueError(f"block must be two positive ints (rows, cols), got {block!r}") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"block must be two positive ints (rows, cols), got {block!r}")
    return rows, cols


def _check_scope(scope: str) -> str:
    if scope not in _SCOPES:
        raise ValueError(f"scope must be one of {_SCOPES}, got {scope!r}")
    return scope


@dataclass
class MagnitudePruneConfig(CompressionConfig):
    """One-shot magnitude pruning: zero the smallest blocks by a mask.

    Args:
        sparsity: fraction of blocks set to zero, in [0, 1).
        scope: ``"layer"`` — each tensor pruned to ``sparsity``; ``"global"`` — one
            threshold over all selected tensors (tensors with small weights lose more).
        block: (rows, cols) pruned together; see the module docstring.
    """

    type_name = "magnitude_prune"
    version = 1

    sparsity: float
    scope: str = "layer"
    block: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        self.sparsity = _check_sparsity("sparsity", self.sparsity)
        self.scope = _check_scope(self.scope)
        self.block = _check_block(self.block)


@dataclass
class GradualPruneConfig(CompressionConfig):
    """Gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune").

    At optimizer step t the target sparsity is
        s_t = s_f + (s_i − s_f) · (1 − (t − t0) / (n Δt))³      for t0 ≤ t ≤ t0 + nΔt
    with t0 = ``start_step``, t0 + nΔt = ``end_step``, Δt = ``frequency``; masks are
    recomputed every Δt steps (and at ``end_step``) from the magnitudes of the
    currently masked weights, so pruned weights stay pruned. ``compress_`` attaches
    the masks (at ``initial_sparsity`` when ``start_step`` is 0, else all ones);
    :class:`~lstmlite.compress.prune.PruningScheduler` updates them during training.

    Args:
        initial_sparsity: s_i, in [0, 1).
        final_sparsity: s_f, in [s_i, 1).
        start_step: t0, the first optimizer step that prunes (≥ 0).
        end_step: the step at which s_f is reached (> start_step).
        frequency: Δt, steps between mask updates (≥ 1).
        scope, block: as :class:`MagnitudePruneConfig`.
    """

    type_name = "gradual_prune"
    version = 1

    initial_sparsity: float
    final_sparsity: float
    start_step: int
    end_step: int
    frequency: int = 100
    scope: str = "layer"
    block: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        self.initial_sparsity = _check_sparsity("initial_sparsity", self.initial_sparsity)
        self.final_sparsity = _check_sparsity("final_sparsity", self.final_sparsity)
        if self.final_sparsity < self.initial_sparsity:
            raise ValueError(
                f"final_sparsity ({self.final_sparsity}) must be at least initial_sparsity ({self.initial_sparsity})"
            )
        for name in ("start_step", "end_step", "frequency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if self.start_step < 0:
            raise ValueError(f"start_step must be >= 0, got {self.start_step}")
        if self.end_step <= self.start_step:
            raise ValueError(f"end_step ({self.end_step}) must be after start_step ({self.start_step})")
        if self.frequency < 1:
            raise ValueError(f"frequency must be >= 1, got {self.frequency}")
        self.scope = _check_scope(self.scope)
        self.block = _check_block(self.block)

    def sparsity_at(self, step: int) -> float:
        """s_t of the cubic schedule (0 before ``start_step``, s_f after ``end_step``).

        Example:
            >>> c = GradualPruneConfig(0.0, 0.8, start_step=0, end_step=100, frequency=10)
            >>> [round(c.sparsity_at(t), 4) for t in (0, 50, 100, 200)]
            [0.0, 0.7, 0.8, 0.8]
        """
        if step < self.start_step:
            return 0.0
        progress = min(1.0, (step - self.start_step) / (self.end_step - self.start_step))
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1.0 - progress) ** 3

    def due(self, step: int) -> bool:
        """Whether the masks are recomputed at ``step``."""
        if step < self.start_step or step > self.end_step:
            return False
        return (step - self.start_step) % self.frequency == 0 or step == self.end_step


@dataclass
class HiddenUnitPruneConfig(CompressionConfig):
    """Structured pruning: remove whole hidden units, giving a smaller dense model.

    Removing unit j of a layer removes rows j, H+j, 2H+j(, 3H+j) (every gate) of that
    layer's ``weight_ih``, ``weight_hh`` and biases, column j of ``weight_hh`` (of
    ``weight_hr`` for a projected LSTM) and the input column(s) that read unit j (the
    next layer's ``weight_ih``, both directions' blocks when bidirectional, or the
    head). Each direction of a bidirectional layer chooses its own units (the same
    number). The model's ``config()`` then describes the smaller model.

    A tied language model (head = embedding) keeps its last layer's size unless the
    layer has a projection: its output width is the embedding width.

    Give exactly one of:
        fraction: fraction of each selected layer's units to remove, in [0, 1).
        keep: units to keep: one int for every layer whose width may change, or a
            list with one int per layer (fixed-width layers must list all units).

    Args:
        criterion: how units are ranked (the least important are removed):
            ``"l2"`` — L2 norm of the unit's incoming weights (its rows across every
            gate in ``weight_ih`` and ``weight_hh``); ``"group_lasso"`` — L2 norm of
            the whole group removing it deletes (incoming rows, outgoing recurrent
            column, the consumers' input columns): the group that
            :func:`~lstmlite.compress.prune.group_lasso_penalty` drives to zero (ISS,
            Wen et al. 2018).

    Layers are selected by the filter on ``weight_hh_l{k}`` (default: all).
    """

    type_name = "hidden_unit_prune"
    version = 1

    fraction: Optional[float] = None
    keep: Union[int, list[int], None] = None
    criterion: str = "l2"

    def __post_init__(self) -> None:
        if (self.fraction is None) == (self.keep is None):
            raise ValueError("give exactly one of fraction or keep")
        if self.fraction is not None:
            self.fraction = _check_sparsity("fraction", self.fraction)
        if self.keep is not None:
            values = [self.keep] if isinstance(self.keep, int) else list(self.keep)
            if not values or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in values):
                raise ValueError(f"keep must be a positive int or a list of positive ints, got {self.keep!r}")
            self.keep = self.keep if isinstance(self.keep, int) else values
        if self.criterion not in ("l2", "group_lasso"):
            raise ValueError(f"criterion must be 'l2' or 'group_lasso', got {self.criterion!r}")
