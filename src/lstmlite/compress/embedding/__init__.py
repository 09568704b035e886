"""Embedding compression: int8/int4 rows, vocabulary pruning by frequency, low-rank.

Importing this package registers the ``embedding_quant``, ``vocab_prune`` and
``embedding_low_rank`` handlers with :mod:`lstmlite.compress.registry`.
"""

from .config import EmbeddingLowRankConfig, EmbeddingQuantConfig, VocabPruneConfig
from .transform import embedding_filter, prune_vocabulary
from .vocab import prune_vocab, remap_data, remap_ids

__all__ = [
    "EmbeddingQuantConfig", "VocabPruneConfig", "EmbeddingLowRankConfig", "embedding_filter", "prune_vocabulary",
    "prune_vocab", "remap_data", "remap_ids",
]
