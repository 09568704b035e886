"""Losses and metrics of the per-step tasks (lstmlite.train.sequence, metrics.cer/wer),
checked against brute force and hand-worked numbers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lstmlite.ctc import collapse
from lstmlite.data import Split
from lstmlite.train import metrics as M
from lstmlite.train.sequence import PAD_LABEL, ctc_loss, evaluate_ctc, evaluate_tag, tag_loss


def brute_force_nll(log_probs: np.ndarray, target: list[int]) -> float:
    """-log P(target): sum over every frame path that collapses to it (blank 0)."""
    steps, classes = log_probs.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=steps):
        if collapse(path) == target:
            total += math.exp(sum(log_probs[t, c] for t, c in enumerate(path)))
    return -math.log(total)


@pytest.mark.parametrize("seed", range(6))
def test_ctc_loss_equals_the_sum_over_alignments(seed):
    rng = np.random.default_rng(seed)
    steps, classes = 5, 3
    logits = torch.as_tensor(rng.normal(size=(2, steps, classes)) * 2, dtype=torch.float32)
    targets = [[1, 2], [2, 2, 1]]  # the second needs a blank between the two 2s
    y = torch.tensor([[1, 2, PAD_LABEL], [2, 2, 1]])
    log_probs = logits.double().log_softmax(-1).numpy()
    expected = np.mean([brute_force_nll(log_probs[b], targets[b]) / len(targets[b]) for b in range(2)])
    assert float(ctc_loss(logits, y, None)) == pytest.approx(expected, rel=1e-5)


def test_ctc_loss_ignores_frames_after_the_length():
    rng = np.random.default_rng(1)
    logits = torch.as_tensor(rng.normal(size=(1, 6, 3)), dtype=torch.float32)
    y = torch.tensor([[1, 2]])
    short = float(ctc_loss(logits[:, :4], y, None))
    padded = logits.clone()
    padded[:, 4:] = 100.0  # garbage in the padding must not matter
    assert float(ctc_loss(padded, y, torch.tensor([4]))) == pytest.approx(short, rel=1e-6)
    log_probs = logits[0, :4].double().log_softmax(-1).numpy()
    assert short == pytest.approx(brute_force_nll(log_probs, [1, 2]) / 2, rel=1e-5)



def test_ctc_loss_of_an_utterance_too_short_for_its_transcript_counts_zero():
    """Row 1 has 2 frames for the transcript "2 2", which needs 3 (a blank between the
    2s): no path reaches it, so, as documented (zero_infinity), its term is 0 and the
    batch mean is row 0's brute-force NLL over its target length, halved; finite, with
    finite gradients. Catches: zero_infinity off (the loss of the whole batch infinite)."""
    rng = np.random.default_rng(4)
    logits = torch.as_tensor(rng.normal(size=(2, 4, 3)), dtype=torch.float32).requires_grad_()
    y = torch.tensor([[1, 2], [2, 2]])
    loss = ctc_loss(logits, y, torch.tensor([4, 2]))
    row0 = brute_force_nll(logits[0].detach().double().log_softmax(-1).numpy(), [1, 2]) / 2
    assert float(loss.detach()) == pytest.approx((row0 + 0.0) / 2, rel=1e-5)
    loss.backward()
    assert bool(torch.isfinite(logits.grad).all())

def test_tag_loss_ignores_padding():
    logits = torch.randn(2, 4, 3)
    y = torch.tensor([[0, 1, 2, PAD_LABEL], [2, PAD_LABEL, PAD_LABEL, PAD_LABEL]])
    picked = torch.cat([logits[0, :3], logits[1, :1]])
    expected = torch.nn.functional.cross_entropy(picked, torch.tensor([0, 1, 2, 2]))
    assert float(tag_loss(logits, y)) == pytest.approx(float(expected), rel=1e-6)


def test_cer_and_wer_hand_worked():
    # "1 2 3" → "1 2 4": one substituted character of five; one word of three
    assert M.cer(["1 2 3"], ["1 2 4"]) == pytest.approx(1 / 5)
    assert M.wer(["1 2 3"], ["1 2 4"]) == pytest.approx(1 / 3)
    # corpus level: edits summed over utterances / reference length summed
    assert M.cer(["12", "3"], ["1", ""]) == pytest.approx(2 / 3)
    assert M.wer(["1 2", "3"], ["", "3"]) == pytest.approx(2 / 3)
    assert M.higher_is_better("cer") is False


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_evaluate_ctc_decodes_and_scores(decoder: str) -> None:
    """Hand-worked texts, and frames past each utterance's length ignored: decoding stops
    at the length (the padding frames spell a "2" that must not appear) and the loss is
    torch's CTC loss of each utterance's valid frames alone.

    Catches: decoding or scoring the padding frames (lengths dropped)."""
    alphabet = ["<blank>", " ", "1", "2"]
    frames = [2, 0, 1, 3, 3]  # "1", blank, " ", "2", "2" → "1 2"
    logits = np.full((2, 7, 4), -5.0, np.float32)
    logits[0, np.arange(5), frames] = 5.0
    logits[1, np.arange(5), [2, 2, 2, 0, 0]] = 5.0  # → "1"
    logits[:, 5:, 3] = 5.0  # padding: a "2" for every row if it were read
    logits[1, 3:, 0] += np.arange(4)  # and not peaky: the loss depends on which frames count
    y = np.array([[2, 1, 3], [2, 1, 3]])  # both "1 2"
    split = Split(np.zeros((2, 7, 1), np.float32), y, np.array([5, 4]))
    result = evaluate_ctc(logits, split, alphabet, decoder=decoder)  # peaky frames: both decoders read alike
    assert result["cer"] == pytest.approx(2 / 6)  # second utterance misses " 2"
    assert result["wer"] == pytest.approx(1 / 4)
    assert result["sequence_accuracy"] == 0.5
    per_row = [torch.nn.functional.ctc_loss(torch.as_tensor(logits[b, :n]).log_softmax(-1)[:, None],
                                            torch.as_tensor(y[b:b + 1]), torch.tensor([n]), torch.tensor([3]),
                                            reduction="sum") / 3 for b, n in enumerate(split.lengths)]
    assert result["loss"] == pytest.approx(float(sum(per_row)) / 2, rel=1e-5)


def test_evaluate_ctc_error_rates_are_corpus_level():
    """References of different lengths: CER and WER are edits over the whole corpus
    divided by its reference characters / words (1 of 6 and 1 of 4 here, hand counted),
    not the mean of per-utterance rates (1/2 for both).
    Catches: error rates averaged per utterance."""
    alphabet = ["<blank>", " ", "1", "2"]
    logits = np.full((2, 5, 4), -5.0, np.float32)
    logits[0, np.arange(5), [3, 0, 0, 0, 0]] = 5.0  # "2" for the reference "1"
    logits[1, np.arange(5), [2, 1, 3, 1, 2]] = 5.0  # "1 2 1", right
    y = np.array([[2, PAD_LABEL, PAD_LABEL, PAD_LABEL, PAD_LABEL], [2, 1, 3, 1, 2]])
    result = evaluate_ctc(logits, Split(np.zeros((2, 5, 1), np.float32), y, np.array([5, 5])), alphabet)
    assert result["cer"] == pytest.approx(1 / 6)
    assert result["wer"] == pytest.approx(1 / 4)


def test_evaluate_tag_counts_valid_steps_only():
    """Per-step accuracy, macro-F1 (scikit-learn) and whole-row accuracy over the valid
    steps only. Catches: padding steps counted in macro-F1 (as false positives)."""
    from sklearn.metrics import f1_score

    logits = np.zeros((2, 3, 2), np.float32)
    logits[:, :, 1] = 1.0  # predicts label 1 everywhere
    y = np.array([[1, 1, PAD_LABEL], [0, 1, 1]])
    result = evaluate_tag(logits, Split(np.zeros((2, 3), np.int64), y, np.array([2, 3])), 2)
    assert result["accuracy"] == pytest.approx(4 / 5)
    assert result["sequence_accuracy"] == 0.5
    assert result["macro_f1"] == pytest.approx(f1_score([1, 1, 0, 1, 1], [1] * 5, average="macro"))


def test_evaluate_ctc_searches_with_the_beam_width_it_is_given() -> None:
    """Two frames of P(blank) 0.6, P("1") 0.4: a width-1 prefix beam keeps only "" (0.6,
    then 0.36) and reads nothing; width 2 also keeps "1" and finds it more probable (0.64,
    hand-summed over "1 1", "1 -", "- 1"). decode_batch and evaluate_ctc give those two
    answers for beam 1 and 2. Catches: the beam width dropped (the default 8 used)."""
    from lstmlite.train.sequence import decode_batch

    logits = np.log(np.array([[[0.6, 0.4], [0.6, 0.4]]], np.float32))
    lengths = np.array([2])
    assert decode_batch(logits, lengths, "beam", beam=1) == [[]]
    assert decode_batch(logits, lengths, "beam", beam=2) == [[1]]
    split = Split(np.zeros((1, 2, 1), np.float32), np.array([[1]]), lengths)
    assert evaluate_ctc(logits, split, ["<blank>", "1"], decoder="beam", beam=1)["cer"] == 1.0
    assert evaluate_ctc(logits, split, ["<blank>", "1"], decoder="beam", beam=2)["cer"] == 0.0


def test_the_docstring_examples_hold():
    """The examples in lstmlite.train.sequence's docstrings are run (nothing else runs them), so they
    stay true of the code."""
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module("lstmlite.train.sequence")).failed == 0
