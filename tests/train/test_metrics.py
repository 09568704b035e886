"""Metrics against scikit-learn / NumPy written out independently."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from lstmlite.train import metrics as M


@pytest.mark.parametrize("n_classes", [None, 5, 7])
def test_accuracy_and_macro_f1_match_sklearn(n_classes):
    """Macro-F1 is scikit-learn's with its default labels (the classes seen): with
    ``n_classes`` 7 the two absent classes are left out, not averaged in as 0.
    Catches: an absent class counted with F1 = 0."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 5, 200))
    assert M.accuracy(y, p) == pytest.approx(np.mean(y == p))
    assert M.macro_f1(y, p, n_classes) == pytest.approx(f1_score(y, p, average="macro"))
    with pytest.raises(ValueError):
        M.accuracy(np.array([]), np.array([]))


def test_language_and_regression_metrics():
    assert M.perplexity(math.log(50.0)) == pytest.approx(50.0)
    assert M.bits_per_token(math.log(2.0) * 1.5) == pytest.approx(1.5)
    y, p = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 1.0])
    assert M.mae(y, p) == pytest.approx(4 / 3)
    assert M.rmse(y, p) == pytest.approx(math.sqrt(10 / 3))
    assert M.higher_is_better("accuracy") and not M.higher_is_better("bits_per_char")


def test_text_scores_are_sacrebleus_as_fractions():
    """bleu and chrf are sacrebleu's corpus scores over 100 (fractions in [0, 1]);
    exact_match is the share of identical strings, worked by hand.
    Catches: sacrebleu's 0-100 scale passed through; exact_match ignoring surrounding
    whitespace."""
    import sacrebleu

    refs, hyps = ["2024-03-05", "hello world", "abc"], ["2024-03-06", "hello world", "abd"]
    assert M.bleu(refs, hyps) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="char").score / 100)
    assert M.chrf(refs, hyps) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score / 100)
    assert 0 < M.bleu(refs, hyps) < 1 and 0 < M.chrf(refs, hyps) < 1
    assert M.exact_match(refs, hyps) == pytest.approx(1 / 3)
    # character for character: whitespace and case count
    assert M.exact_match(["a b", "ab", "Ab"], ["a b ", " ab", "ab"]) == 0.0


@pytest.mark.parametrize("name, higher", [
    ("accuracy", True), ("macro_f1", True), ("exact_match", True), ("sequence_accuracy", True),
    ("bleu", True), ("chrf", True),                                 # scores: a share or overlap of matches
    ("perplexity", False), ("bits_per_char", False), ("mae", False),  # losses and errors
    ("rmse", False), ("cer", False), ("wer", False),
])
def test_every_metric_has_its_direction(name: str, higher: bool) -> None:
    """The direction the trainer selects epochs by (and the report draws fronts by), for
    every metric a run reports, each task's primary metric among them, against each
    metric's definition.
    Catches: exact_match (seq2seq) selected as if lower were better; a set that knows only
    accuracy and macro_f1."""
    assert M.higher_is_better(name) is higher
    assert (name in M.HIGHER_IS_BETTER) is higher


def test_every_primary_metric_is_in_the_direction_table() -> None:
    """Each task's primary metric is one the direction test above covers."""
    covered = {"accuracy", "macro_f1", "exact_match", "sequence_accuracy", "bleu", "chrf", "perplexity",
               "bits_per_char", "mae", "rmse", "cer", "wer"}
    assert set(M.PRIMARY_METRIC.values()) <= covered


def test_primary_metric_of_a_character_language_model_is_bits_per_char() -> None:
    """By the table: a word-level LM is selected on perplexity, a char-level one on bits
    per char; the level matters for lm only. Catches the level ignored."""
    assert M.primary_metric("lm", "word") == "perplexity"
    assert M.primary_metric("lm", "char") == "bits_per_char"
    assert M.primary_metric("classify", "char") == "accuracy"


def test_macro_f1_counts_a_class_that_is_predicted_but_never_true():
    """[0, 0] predicted as [0, 1]: class 0's F1 is 2·1/(2·1 + 0 + 1) = 2/3, class 1's is 0,
    their mean 1/3 (sklearn's). Catches the classes taken from y_true alone (2/3)."""
    assert M.macro_f1([0, 0], [0, 1]) == pytest.approx(1 / 3)
    assert M.macro_f1([0, 0], [0, 1]) == pytest.approx(f1_score([0, 0], [0, 1], average="macro"))
