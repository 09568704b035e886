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


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_evaluate_seq2seq_scores_the_decoded_strings_against_the_references(monkeypatch) -> None:
    """The decoder replaced by fixed outputs ("abcd", "a", "ccd" for the references
    "abcd", "ab", "c"): exact match 1/3; CER the edits (0 + 1 + 2, by a Levenshtein
    distance written out here) over the 7 reference characters, not the 8 hypothesis
    ones; BLEU and chrF sacrebleu's with the hypotheses first; and the decoder and beam
    asked for reach the decoder.
    Catches: CER normalised by the hypothesis length, BLEU/chrF of the references scored
    against the hypotheses, a reference cut before its last token, ``decoder="beam"`` or
    ``beam`` dropped on the way to the search."""
    import sacrebleu

    import lstmlite.seq2seq

    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=8, embed_dim=4, hidden_size=6, attention="luong", max_target_len=5).eval()
    x = np.array([[4, 5, 6], [7, 4, 0], [5, 0, 0]])
    y = np.array([[4, 5, 6, 7, 3], [4, 5, 3, 0, 0], [6, 3, 0, 0, 0]])  # "abcd", "ab", "c"
    split = Split(x, y, np.array([3, 2, 1]))
    data = SimpleNamespace(vocab=SimpleNamespace(tokens=["<pad>", "<unk>", "<s>", "</s>", "a", "b", "c", "d"]),
                           spec=SimpleNamespace(level="char"))
    asked = []

    def fixed(model, x, lengths, decoder="greedy", beam=4, max_len=None, min_len=0, batch_size=256):
        asked.append((decoder, beam))
        return [[4, 5, 6, 7], [4], [6, 6, 7]]

    monkeypatch.setattr(lstmlite.seq2seq, "decode_torch", fixed)
    result = evaluate_seq2seq(model, data, split, decoder="beam", beam=3)
    assert asked == [("beam", 3)]
    refs, hyps = ["abcd", "ab", "c"], ["abcd", "a", "ccd"]
    assert result["exact_match"] == pytest.approx(1 / 3)
    assert [_edit_distance(r, h) for r, h in zip(refs, hyps)] == [0, 1, 2]
    assert result["cer"] == pytest.approx(3 / 7)
    assert result["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="char").score / 100)
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score / 100)


def test_evaluate_seq2seq_hands_a_training_model_back_training() -> None:
    """Evaluated between training epochs, a model with dropout scores as in eval mode
    (the same numbers as evaluating it in eval mode) and is training again afterwards.
    Catches: model.train(was_training) dropped (the rest of training without dropout)."""
    torch.manual_seed(1)
    model = Seq2Seq(vocab_size=8, embed_dim=4, hidden_size=6, attention="luong", dropout=0.5, max_target_len=4)
    split = Split(np.array([[4, 5, 6], [7, 4, 0]]), np.array([[4, 5, 3], [6, 3, 0]]), np.array([3, 2]))
    data = SimpleNamespace(vocab=SimpleNamespace(tokens=["<pad>", "<unk>", "<s>", "</s>", "a", "b", "c", "d"]),
                           spec=SimpleNamespace(level="char"))
    during_training = evaluate_seq2seq(model.train(), data, split)
    assert model.training
    assert evaluate_seq2seq(model.eval(), data, split) == during_training
    assert not model.training


def test_the_docstring_examples_hold():
    """The examples in lstmlite.train.seq2seq's docstrings are run (nothing else runs them), so they
    stay true of the code."""
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module("lstmlite.train.seq2seq")).failed == 0
