"""Embedding compression configs: quantized rows, vocabulary pruning, low-rank.

The reference text model spends 1.28 M of its 1.41 M parameters on the embedding, so
these matter most for text. Each config acts on ``nn.Embedding`` weights only
(``embedding.weight`` of the task models); a ``filter`` narrows that further, and a
filter matching nothing changes nothing. A language model whose head is tied to the
embedding shares whatever is done to the embedding.

Example:
    >>> VocabPruneConfig(keep=5000).to_dict()
    {'type': 'vocab_prune', 'version': 1, 'data': {'keep': 5000}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..config import CompressionConfig

__all__ = ["EmbeddingQuantConfig", "VocabPruneConfig", "EmbeddingLowRankConfig"]


@dataclass
class EmbeddingQuantConfig(CompressionConfig):
    """int8 / int4 embedding rows: one symmetric scale per token row.

    Applies the quantization method's own weight quantizer
    (:class:`lstmlite.compress.quantize.WeightQuantConfig` with per-channel scales;
    for an embedding a channel is a token row) to the embedding only, so size
    accounting, packing (int4: two codes per byte) and export are the same code.

    Args:
        bits: 8 or 4 (2..8 accepted).
        scale_method: ``"absmax"`` or ``"mse"`` (per-row clip that minimises error).
    """

    type_name = "embedding_quant"
    version = 1

    bits: int = 8
    scale_method: str = "absmax"

    def __post_init__(self) -> None:
        from ..quantize.config import WeightQuantConfig

        WeightQuantConfig(bits=self.bits, scale_method=self.scale_method)  # same validation, same messages


@dataclass
class VocabPruneConfig(CompressionConfig):
    """Keep the ``keep`` most frequent token ids; drop the rest to ``<unk>``.

    lstmlite vocabularies are ordered by training-split frequency (``<pad>`` = 0,
    ``<unk>`` = 1, then most frequent first; see :class:`lstmlite.data.Vocabulary`),
    so the ``keep`` most frequent tokens are ids ``0 .. keep-1``. ``keep`` counts the
    two specials, as ``DataSpec.max_vocab`` does, and rebuilding the data with
    ``max_vocab=keep`` gives exactly the pruned encoding.

    The embedding shrinks to ``keep`` rows; a language model's output layer shrinks
    to ``keep`` outputs too (its dropped outputs' probability mass now belongs to
    ``<unk>``). The model's inputs must then use the pruned vocabulary (ids ≥ keep →
    ``<unk>``): :func:`lstmlite.compress.embedding.remap_data` does that for data and
    :func:`lstmlite.compress.recipe.apply_recipe` rewrites the run dir's
    ``vocab.json``. A structural change, like hidden-unit pruning: it must come
    before any other compression of the embedding or the LM head.

    Args:
        keep: vocabulary size after pruning, specials included (≥ 3).
    """

    type_name = "vocab_prune"
    version = 1

    keep: int

    def __post_init__(self) -> None:
        if isinstance(self.keep, bool) or not isinstance(self.keep, int) or self.keep < 3:
            raise ValueError(f"keep must be an int >= 3 (<pad>, <unk> and one token), got {self.keep!r}")


@dataclass
class EmbeddingLowRankConfig(CompressionConfig):
    """Low-rank embedding E (V, D) ≈ A (V, r) · B (r, D), trainable A and B.

    Uses the low-rank method's SVD parametrization on the embedding only. Give exactly
    one of ``rank`` or ``energy`` (the fraction of Σσ² kept, in (0, 1]). Tied LM
    embeddings are refused (the head would need the same factors). It saves bytes when
    r < V·D / (V + D) (about D for a large vocabulary).
    """

    type_name = "embedding_low_rank"
    version = 1

    rank: Optional[int] = None
    energy: Optional[float] = None

    def __post_init__(self) -> None:
        from ..lowrank.config import LowRankConfig

        checked = LowRankConfig(rank=self.rank, energy=self.energy)
        self.energy = checked.energy
