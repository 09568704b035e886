"""Loss and evaluation of the ``seq2seq`` task.

Targets as the data stores them (:mod:`lstmlite.data.pairs`): y (B, S) int64 target ids
followed by ``</s>``, 0-padded; the model's teacher-forced logits are (B, S, V).

Evaluation decodes (greedy or beam, :func:`lstmlite.seq2seq.decode_torch`) and scores
the strings: ``exact_match``, ``bleu`` and ``chrf`` (sacrebleu, fractions), ``cer``
(jiwer), plus the teacher-forced ``loss`` (nats per target token).

Example:
    >>> import torch
    >>> logits = torch.zeros(1, 2, 5)          # uniform over 5 tokens
    >>> round(float(seq2seq_loss(logits, torch.tensor([[4, 3]]))), 4)   # ln 5
    1.6094
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import metrics as M

__all__ = ["seq2seq_loss", "trim_targets", "evaluate_seq2seq", "references", "score_texts"]


def trim_targets(y: Tensor) -> Tensor:
    """y (B, S) without the columns that are padding in every row."""
    used = int((y != 0).any(0).nonzero().max()) + 1 if bool((y != 0).any()) else 1
    return y[:, :used]


def seq2seq_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy over the target tokens (``</s>`` included, padding 0 ignored);
    logits (B, S, V), y (B, S)."""
    steps = min(logits.shape[1], y.shape[1])
    return nn.functional.cross_entropy(logits[:, :steps].float().reshape(-1, logits.shape[-1]),
                                       y[:, :steps].reshape(-1), ignore_index=0)


def references(split: Any, tokens: list[str], level: str) -> list[str]:
    """The target strings of a split (ids before ``</s>``)."""
    from ..seq2seq import texts_of

    rows = [[int(v) for v in row[: int(np.argmax(row == 3)) if (row == 3).any() else len(row)]] for row in split.y]
    return texts_of(rows, tokens, level)


def score_texts(refs: list[str], hyps: list[str]) -> dict[str, float]:
    """exact_match, bleu, chrf and cer of hypothesis strings against references."""
    return {"exact_match": M.exact_match(refs, hyps), "bleu": M.bleu(refs, hyps), "chrf": M.chrf(refs, hyps),
            "cer": M.cer(refs, hyps)}


@torch.no_grad()
def evaluate_seq2seq(model: nn.Module, data: Any, split: Any, decoder: str = "greedy", beam: int = 4,
                     batch_size: int = 256) -> dict[str, float]:
    """Decode a split and score it (see the module doc)."""
    from ..seq2seq import decode_torch, texts_of

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    model.cpu()
    try:
        tokens, level = data.vocab.tokens, data.spec.level
        hyps = texts_of(decode_torch(model, split.x, split.lengths, decoder, beam, batch_size=batch_size),
                        tokens, level)
        result = score_texts(references(split, tokens, level), hyps)
        total, count = 0.0, 0
        for start in range(0, len(split.x), batch_size):
            x = torch.as_tensor(split.x[start:start + batch_size])
            y = trim_targets(torch.as_tensor(split.y[start:start + batch_size]))
            lengths = torch.as_tensor(split.lengths[start:start + batch_size])
            n = int((y != 0).sum())
            total += float(seq2seq_loss(model(x, lengths, y), y)) * n
            count += n
        result["loss"] = total / max(count, 1)
    finally:
        model.to(device)
        model.train(was_training)
    return result
