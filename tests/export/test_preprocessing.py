"""lstmlite.export.preprocessing: the standardisation a deployed model needs of raw inputs.

The oracle is the data pipeline that trained the run: over every row of the built-in
digits set, the native runtime fed ``standardization_of(run).inputs(raw)`` (raw: the
scikit-learn images themselves) must predict what PyTorch predicts on the pipeline's own
normalised rows -- compared as confusion matrices, so no row order is assumed. Fed the
raw rows, the same runtime does not (the defect a user met: 0.25 accuracy where the
run scores 0.57, and no error).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lstmlite.export.lsl import export_lsl
from lstmlite.export.preprocessing import Standardization, standardization_of
from lstmlite.io import load_run
from lstmlite.runtime import load
from lstmlite.train import fit, load_run_data


def _confusion(labels: np.ndarray, predicted: np.ndarray, n: int = 10) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """Every digits image as the built-in set reads it (8 steps of 8 pixels), unscaled."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float64), digits.target.astype(np.int64)


def pipeline_confusion(run_dir: Path) -> np.ndarray:
    """PyTorch's predictions on the data pipeline's normalised rows, every split."""
    run = load_run(run_dir)
    data = load_run_data(run)
    labels, predicted = [], []
    with torch.no_grad():
        for split in (data.train, data.val, data.test):
            predicted.append(run.model(torch.as_tensor(split.x)).argmax(-1).numpy())
            labels.append(split.y)
    return _confusion(np.concatenate(labels), np.concatenate(predicted))


def test_the_runtime_fed_standardised_raw_rows_predicts_what_training_saw(digits_run: Path, tmp_path: Path) -> None:
    raw, labels = raw_digits()
    s = standardization_of(digits_run)
    assert s is not None and len(s.mean) == 8 and s.target_mean is None
    engine = load(export_lsl(digits_run, tmp_path / "m.lsl"))
    expected = pipeline_confusion(digits_run)
    assert expected.sum() == len(raw)  # the pipeline's splits hold every image once
    got = _confusion(labels, engine.run(s.inputs(raw)).argmax(-1))
    np.testing.assert_array_equal(got, expected)
    fed_raw = _confusion(labels, engine.run(raw.astype(np.float32)).argmax(-1))
    assert np.abs(fed_raw - expected).sum() > len(raw) // 10  # the defect this step prevents


def test_a_forecasters_outputs_come_back_in_the_series_units(tmp_path: Path) -> None:
    """forecast_units(engine output) is the pipeline's own denormalize of the model's
    forecast (TaskData.denormalize, the series' units), on every test window."""
    fit({"data": {"source": "airline", "task": "forecast"}, "model": {"hidden_size": 6, "instance_norm": False},
         "train": {"epochs": 1, "seed": 0}}, tmp_path / "air", progress=False)
    s = standardization_of(tmp_path / "air")
    run = load_run(tmp_path / "air")
    data = load_run_data(run)
    engine = load(export_lsl(tmp_path / "air", tmp_path / "air.lsl"))
    with torch.no_grad():
        expected = data.denormalize(run.model(torch.as_tensor(data.test.x)).numpy())
    np.testing.assert_allclose(s.forecast_units(engine.run(data.test.x)), expected, rtol=1e-5)
    assert s.target_mean == pytest.approx(float(np.mean(expected)), rel=0.5)  # passengers, some hundreds


def test_hand_values_and_what_has_no_statistics() -> None:
    """(x - mean) / std per feature (not x * std + mean, not one mean for all); targets only
    for a forecast run; token input and a run without stats (an imported model) give None."""
    s = Standardization(mean=(10.0, -2.0), std=(4.0, 0.5))
    np.testing.assert_allclose(s.inputs(np.array([[[14.0, -1.0], [10.0, -3.0]]])), [[[1.0, 2.0], [0.0, -2.0]]])
    with pytest.raises(ValueError, match="the last axis must hold the model's 2 features"):
        s.inputs(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="forecast_units is for a forecaster"):
        s.forecast_units(np.zeros(3))
    stats = {"mean": [1.0], "std": [2.0], "target_mean": 5.0, "target_std": 3.0}
    assert standardization_of({"task": "forecast", "stats": stats}).forecast_units(np.array([1.0])).tolist() == [8.0]
    assert standardization_of({"task": "classify", "stats": stats}).target_mean is None
    assert standardization_of({"task": "classify", "model": {"vocab_size": 50}, "stats": stats}) is None
    assert standardization_of({"task": "classify"}) is None


def test_standardization_of_what_is_not_a_usable_set_of_statistics(tmp_path):
    """Statistics that cannot standardise the inputs give None, as a run without any does
    (hand-made config.json mappings): a mean and a std of different lengths, empty lists; a
    run dir without config.json gives None too, and a loaded Run gives its config's numbers.
    Catches the length check dropped, empty statistics taken as a 0-feature standardisation,
    a missing config.json read anyway, and a loaded Run ignored."""
    from types import SimpleNamespace

    assert standardization_of({"task": "classify", "stats": {"mean": [1.0, 2.0], "std": [3.0]}}) is None
    assert standardization_of({"task": "classify", "stats": {"mean": [], "std": []}}) is None
    assert standardization_of(tmp_path) is None  # no config.json
    run = SimpleNamespace(config={"task": "forecast", "stats": {"mean": [1.0], "std": [2.0], "target_mean": 3.0,
                                                                 "target_std": 4.0}}, model=None)
    assert standardization_of(run) == Standardization((1.0,), (2.0,), 3.0, 4.0)
