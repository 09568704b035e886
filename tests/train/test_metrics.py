"""Metrics against scikit-learn / NumPy written out independently."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from lstmlite.train import metrics as M


def test_accuracy_and_macro_f1_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 5, 200))
    assert M.accuracy(y, p) == pytest.approx(np.mean(y == p))
    assert M.macro_f1(y, p) == pytest.approx(f1_score(y, p, average="macro"))
    with pytest.raises(ValueError):
        M.accuracy(np.array([]), np.array([]))


def test_language_and_regression_metrics():
    assert M.perplexity(math.log(50.0)) == pytest.approx(50.0)
    assert M.bits_per_token(math.log(2.0) * 1.5) == pytest.approx(1.5)
    y, p = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 1.0])
    assert M.mae(y, p) == pytest.approx(4 / 3)
    assert M.rmse(y, p) == pytest.approx(math.sqrt(10 / 3))
    assert M.higher_is_better("accuracy") and not M.higher_is_better("bits_per_char")
