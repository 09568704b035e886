"""Handlers of the embedding configs, and the vocabulary-pruning surgery.

Quantized rows and low-rank embeddings reuse the quantization and low-rank methods'
parametrizations, restricted to ``nn.Embedding`` weights; their run-dir state,
``undo``/``finalize`` and size accounting are those methods'. Vocabulary pruning
replaces the embedding (and a language model's head) by smaller modules and records
how to undo that, as hidden-unit pruning does.

Example:
    >>> import torch
    >>> from lstmlite.nn import LanguageModel
    >>> from lstmlite.compress import compress_
    >>> lm = LanguageModel(vocab_size=50, embed_dim=8, hidden_size=16)
    >>> _ = compress_(lm, VocabPruneConfig(keep=20))
    >>> lm.embedding.num_embeddings, lm.head.out_features, lm.config()["vocab_size"]
    (20, 20, 20)
"""

from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..api import push_undo
from ..registry import Filter, get_handler, register_handler
from .config import EmbeddingLowRankConfig, EmbeddingQuantConfig, VocabPruneConfig

__all__ = ["embedding_filter", "prune_vocabulary"]

log = logging.getLogger(__name__)


def embedding_filter(fqn: str, module: nn.Module, name: str) -> bool:
    """Filter: the weight of every ``nn.Embedding``."""
    return isinstance(module, nn.Embedding) and name == "weight"


def _restricted(filter: Optional[Filter]) -> Filter:
    """Embedding weights that ``filter`` (when given) also accepts."""
    if filter is None:
        return embedding_filter
    return lambda fqn, module, name: embedding_filter(fqn, module, name) and bool(filter(fqn, module, name))


@register_handler(EmbeddingQuantConfig)
def _embedding_quant(model: nn.Module, config: EmbeddingQuantConfig, filter: Optional[Filter]) -> None:
    from ..quantize.config import WeightQuantConfig

    weight_config = WeightQuantConfig(bits=config.bits, granularity="per_channel", scale_method=config.scale_method)
    get_handler(weight_config)(model, weight_config, _restricted(filter))


@register_handler(EmbeddingLowRankConfig)
def _embedding_low_rank(model: nn.Module, config: EmbeddingLowRankConfig, filter: Optional[Filter]) -> None:
    from ..lowrank.config import LowRankConfig

    low_rank = LowRankConfig(rank=config.rank, energy=config.energy)
    get_handler(low_rank)(model, low_rank, _restricted(filter))


def prune_vocabulary(model: nn.Module, keep: int) -> nn.Module:
    """Keep token ids ``0 .. keep-1`` in ``model.embedding`` (and an LM's head), in place.

    Args:
        model: a task model with token input (``model.embedding``; a
            :class:`~lstmlite.nn.LanguageModel`'s ``head`` is shrunk too; tied
            weights stay tied).
        keep: ids to keep (the most frequent ones in an lstmlite vocabulary).

    Returns ``model``. Rows 0..keep-1 (and the head's outputs 0..keep-1) are copied
    exactly, so the pruned model's logits equal the original's first ``keep`` logits
    on any input that uses only those ids. :func:`lstmlite.compress.undo` restores
    the original modules.
    """
    embedding = getattr(model, "embedding", None)
    if not isinstance(embedding, nn.Embedding):
        raise ValueError("vocab_prune needs a model with token input (model.embedding); this one has none")
    if getattr(model, "kind", "") == "seq2seq":  # its targets are written in the same vocabulary
        raise ValueError("vocab_prune cannot shrink a seq2seq model's vocabulary: source and target share it and "
                         "the output layer must still write every target token; nearest supported form: "
                         "embedding_quant (embedding_int8 / embedding_int4) or embedding_low_rank")
    vocab = embedding.num_embeddings
    if keep >= vocab:
        log.info("vocab_prune: keep=%d >= vocabulary %d; nothing changed", keep, vocab)
        return model
    head = getattr(model, "head", None)
    is_lm = getattr(model, "kind", "") == "lm"
    tied = is_lm and head is not None and head.weight is embedding.weight
    for name, module in (("embedding", embedding), ("head", head if is_lm else None)):
        if module is not None and parametrize.is_parametrized(module):
            raise ValueError(f"model.{name} carries other compression; apply vocab_prune first, "
                             "or finalize() / undo() the other compression before it")
    like = embedding.weight
    new_embedding = nn.Embedding(keep, embedding.embedding_dim, padding_idx=embedding.padding_idx,
                                 max_norm=embedding.max_norm, norm_type=embedding.norm_type,
                                 scale_grad_by_freq=embedding.scale_grad_by_freq, sparse=embedding.sparse)
    new_embedding = new_embedding.to(like.device, like.dtype)
    with torch.no_grad():
        new_embedding.weight.copy_(embedding.weight[:keep])
    new_embedding.train(embedding.training)
    new_head = None
    if is_lm:
        new_head = nn.Linear(head.in_features, keep, bias=head.bias is not None).to(like.device, like.dtype)
        with torch.no_grad():
            if tied:
                new_head.weight = new_embedding.weight
            else:
                new_head.weight.copy_(head.weight[:keep])
            if head.bias is not None:
                new_head.bias.copy_(head.bias[:keep])
        new_head.train(head.training)
    old_embedding, old_head, old_vocab = embedding, head, getattr(model, "vocab_size", vocab)

    def restore() -> None:
        model.embedding = old_embedding
        if new_head is not None:
            model.head = old_head
        model.vocab_size = old_vocab

    model.embedding = new_embedding
    if new_head is not None:
        model.head = new_head
    if hasattr(model, "vocab_size"):
        model.vocab_size = keep
    push_undo(model, restore)
    log.info("vocabulary %d -> %d tokens", vocab, keep)
    return model


@register_handler(VocabPruneConfig)
def _vocab_prune(model: nn.Module, config: VocabPruneConfig, filter: Optional[Filter]) -> None:
    embedding = getattr(model, "embedding", None)
    if not isinstance(embedding, nn.Embedding):
        raise ValueError("vocab_prune needs a model with token input (model.embedding); this one has none")
    if filter is not None and not filter("embedding", embedding, "weight"):
        log.info("vocab_prune: the filter does not select embedding.weight; nothing changed")
        return
    prune_vocabulary(model, config.keep)
