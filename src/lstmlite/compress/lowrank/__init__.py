"""Low-rank factorization of the recurrent weight matrices (W = U V by SVD).

Importing this package registers its handler with :mod:`lstmlite.compress.registry`.
"""

from .config import LowRankConfig
from .transform import LowRank, choose_rank, factorize

__all__ = ["LowRankConfig", "LowRank", "choose_rank", "factorize"]
