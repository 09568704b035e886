"""Pruning: magnitude masks (one shot, gradual), block sparsity, hidden-unit removal.

Importing this package registers its handlers with :mod:`lstmlite.compress.registry`.
"""

from .config import GradualPruneConfig, HiddenUnitPruneConfig, MagnitudePruneConfig
from .schedule import PruningScheduler
from .structured import group_lasso_penalty, prune_hidden_units, unit_scores
from .transform import Mask

__all__ = [
    "MagnitudePruneConfig", "GradualPruneConfig", "HiddenUnitPruneConfig", "PruningScheduler",
    "group_lasso_penalty", "prune_hidden_units", "unit_scores", "Mask",
]
