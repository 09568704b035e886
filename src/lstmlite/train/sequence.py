"""Losses and evaluation of the per-step tasks: ``tag`` and ``ctc``.

Targets as the data stores them (see :mod:`lstmlite.data.containers`):

- ``tag``: y (B, T) int64, one label per step, ``PAD_LABEL`` (-1) after each row's length.
- ``ctc``: y (B, S) int64 label ids 1..C-1 (0 is the blank), ``PAD_LABEL`` after each
  transcript's end; the model's logits are (B, T, C).

Example:
    >>> import torch
    >>> logits = torch.zeros(1, 4, 3)
    >>> y = torch.tensor([[1, 2, -1]])
    >>> # uniform frames: 15 of the 81 paths collapse to [1, 2], so -log(15/81) / 2
    >>> round(float(ctc_loss(logits, y, None)), 4)
    0.8432
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..ctc import BLANK, beam_decode, greedy_decode
from . import metrics as M

__all__ = ["PAD_LABEL", "ctc_loss", "tag_loss", "input_lengths", "target_lengths", "decode_batch",
           "evaluate_tag", "evaluate_ctc"]

PAD_LABEL = -1


def input_lengths(logits: Tensor, lengths: Tensor | None) -> Tensor:
    """(B,) valid frames: ``lengths``, or T for every row when None."""
    if lengths is None:
        return torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)
    return torch.as_tensor(lengths, dtype=torch.long).cpu()


def target_lengths(y: Tensor) -> Tensor:
    """(B,) transcript lengths of padded targets (B, S)."""
    return (y != PAD_LABEL).sum(1).long()


def ctc_loss(logits: Tensor, y: Tensor, lengths: Tensor | None) -> Tensor:
    """Mean over the batch of CTC negative log-likelihood divided by target length
    (``torch.nn.CTCLoss``'s ``reduction="mean"``), blank 0.

    ``zero_infinity`` is on: an utterance too short for its transcript (fewer frames
    than labels plus repeats) contributes nothing rather than an infinite loss.

    Args:
        logits: (B, T, C); y: (B, S) padded with ``PAD_LABEL``; lengths: (B,) valid frames.
    """
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, C), as CTCLoss wants
    targets = y.clamp(min=0)  # padding is never read (target_lengths); CTCLoss wants non-negative ids
    return nn.functional.ctc_loss(log_probs, targets, input_lengths(logits, lengths).to(log_probs.device),
                                  target_lengths(y).to(log_probs.device), blank=BLANK, reduction="mean",
                                  zero_infinity=True)


def tag_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy over the valid steps; logits (B, T, C), y (B, T) padded with ``PAD_LABEL``."""
    steps = min(logits.shape[1], y.shape[1])  # batches are trimmed to their longest row
    return nn.functional.cross_entropy(logits[:, :steps].float().reshape(-1, logits.shape[-1]),
                                       y[:, :steps].reshape(-1), ignore_index=PAD_LABEL)


def decode_batch(logits: np.ndarray, lengths: np.ndarray, decoder: str = "greedy", beam: int = 8) -> list[list[int]]:
    """Label sequences of a batch: logits (N, T, C), lengths (N,)."""
    if decoder == "greedy":
        return [greedy_decode(row, int(n)) for row, n in zip(logits, lengths)]
    if decoder == "beam":
        return [beam_decode(row, beam=beam, length=int(n)) for row, n in zip(logits, lengths)]
    raise ValueError(f"decoder must be greedy or beam, got {decoder!r}")


def _texts(rows: list[list[int]], alphabet: list[str]) -> list[str]:
    return ["".join(alphabet[i] for i in row) for row in rows]


def evaluate_ctc(logits: np.ndarray, split: Any, alphabet: list[str], decoder: str = "greedy",
                 beam: int = 8) -> dict[str, float]:
    """cer, wer, exact match (``sequence_accuracy``) and the mean CTC loss of a split.

    Args:
        logits: (N, T, C) model outputs (padding frames beyond ``split.lengths`` ignored).
        split: a :class:`~lstmlite.data.Split` of the ctc task.
        alphabet: label id → character (``alphabet[0]`` is the blank).
        decoder: ``greedy`` or ``beam`` (prefix beam search of width ``beam``).
    """
    hyp = decode_batch(logits, split.lengths, decoder, beam)
    ref = [[int(v) for v in row if v != PAD_LABEL] for row in split.y]
    refs, hyps = _texts(ref, alphabet), _texts(hyp, alphabet)
    loss = float(ctc_loss(torch.as_tensor(logits), torch.as_tensor(split.y), torch.as_tensor(split.lengths)))
    return {"cer": M.cer(refs, hyps), "wer": M.wer(refs, hyps),
            "sequence_accuracy": M.accuracy(np.array(refs, dtype=object), np.array(hyps, dtype=object)),
            "loss": loss}


def evaluate_tag(logits: np.ndarray, split: Any, n_classes: int) -> dict[str, float]:
    """Per-step accuracy and macro-F1 over valid steps, the loss, and whole-sequence accuracy."""
    steps = min(logits.shape[1], split.y.shape[1])
    y = split.y[:, :steps]
    pred = logits[:, :steps].argmax(-1)
    valid = y != PAD_LABEL
    rows_right = np.all((pred == y) | ~valid, axis=1)
    loss = float(tag_loss(torch.as_tensor(logits), torch.as_tensor(split.y)))
    return {"accuracy": M.accuracy(y[valid], pred[valid]), "macro_f1": M.macro_f1(y[valid], pred[valid], n_classes),
            "sequence_accuracy": float(rows_right.mean()), "loss": loss}
