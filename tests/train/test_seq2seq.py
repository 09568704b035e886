"""Loss and evaluation of the seq2seq task (lstmlite.train.seq2seq) against torch's
cross-entropy on hand-picked tokens and hand-worked arrays."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lstmlite.data import Split
from lstmlite.nn import Seq2Seq
from lstmlite.train.seq2seq import evaluate_seq2seq, seq2seq_loss, trim_targets


def test_seq2seq_loss_is_the_mean_over_target_tokens_without_padding() -> None:
    """Mean cross-entropy over the target tokens (</s> = 3 included), padding (0) left
    out: torch's cross-entropy of the 5 picked (logits, token) pairs.
    Catches: padding positions counted as targets of id 0."""
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6)
    y = torch.tensor([[5, 4, 3, 0], [4, 3, 0, 0]])
    picked = torch.stack([logits[0, 0], logits[0, 1], logits[0, 2], logits[1, 0], logits[1, 1]])
    expected = torch.nn.functional.cross_entropy(picked, torch.tensor([5, 4, 3, 4, 3]))
    assert float(seq2seq_loss(logits, y)) == pytest.approx(float(expected), rel=1e-6)


def test_trim_targets_keeps_every_column_some_row_uses() -> None:
    """Hand-worked: the last used column (the longer row's </s>) is kept, the all-padding
    ones go; all padding keeps one column. Catches: the last used column cut off."""
    y = torch.tensor([[5, 3, 0, 0, 0], [4, 4, 3, 0, 0]])
    assert trim_targets(y).tolist() == [[5, 3, 0], [4, 4, 3]]
    assert trim_targets(torch.zeros(2, 4, dtype=torch.long)).shape == (2, 1)


def test_evaluate_seq2seq_loss_is_per_token_over_the_whole_split() -> None:
    """Evaluated one row per batch, the reported loss is still the split's mean
    cross-entropy per target token (torch, over all rows at once), so a row with more
    tokens weighs more. Catches: batch means averaged (or summed) unweighted."""
    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=8, embed_dim=4, hidden_size=6, attention="luong", max_target_len=5).eval()
    x = np.array([[4, 5, 6], [7, 4, 0], [5, 0, 0]])
    y = np.array([[4, 5, 6, 7, 3], [6, 3, 0, 0, 0], [3, 0, 0, 0, 0]])  # 5, 2 and 1 target tokens
    split = Split(x, y, np.array([3, 2, 1]))
    data = SimpleNamespace(vocab=SimpleNamespace(tokens=["<pad>", "<unk>", "<s>", "</s>", "a", "b", "c", "d"]),
                           spec=SimpleNamespace(level="char"))
    result = evaluate_seq2seq(model, data, split, batch_size=1)
    with torch.no_grad():
        logits = model(torch.as_tensor(x), torch.as_tensor(split.lengths), torch.as_tensor(y))
    valid = torch.as_tensor(y) != 0
    expected = torch.nn.functional.cross_entropy(logits[valid], torch.as_tensor(y)[valid])
    assert result["loss"] == pytest.approx(float(expected), rel=1e-5)
