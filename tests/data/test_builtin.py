"""The four built-ins: shapes, splits, normalisation, checked against the raw package data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aeon.datasets import load_airline, load_basic_motions, load_japanese_vowels
from sklearn.datasets import load_digits

from lstmlite.data import describe_dataset, list_datasets, load_data


def _rows(split):
    """Each row's valid steps as a tuple of bytes, to compare sets of rows."""
    return [split.x[k, : split.lengths[k]].tobytes() for k in range(len(split))]


def test_list_datasets_names_all_four():
    listed = {d["name"]: d for d in list_datasets()}
    assert set(listed) == {"japanese_vowels", "basic_motions", "digits", "airline"}
    for d in listed.values():
        assert {"task", "description", "size", "n_classes"} <= set(d)
    assert listed["airline"]["task"] == "forecast" and listed["digits"]["n_classes"] == 10


def test_japanese_vowels_against_aeon(builtin_data):
    data = builtin_data["japanese_vowels"]
    raw_train, y_train = load_japanese_vowels(split="train")
    raw_test, y_test = load_japanese_vowels(split="test")
    t_max = max(s.shape[1] for s in [*raw_train, *raw_test])
    assert data.train.x.shape[1:] == (t_max, 12) and data.test.x.shape == (370, t_max, 12)
    assert len(data.train) + len(data.val) == 270 and len(data.val) == 27
    assert data.train.x.dtype == np.float32 and data.train.y.dtype == np.int64 and data.train.lengths.dtype == np.int64
    assert data.class_names == [str(k) for k in range(1, 10)] and data.n_classes == 9 and data.input_size == 12
    # test rows keep aeon's order: lengths and labels match, padding is exactly zero
    assert data.test.lengths.tolist() == [s.shape[1] for s in raw_test]
    assert [data.class_names[i] for i in data.test.y] == list(y_test)
    for k in (0, 100, 369):
        assert not data.test.x[k, data.test.lengths[k] :].any()
    # normalisation: de-normalised test rows equal aeon's values
    mean, std = np.array(data.stats["mean"]), np.array(data.stats["std"])
    k = 5
    np.testing.assert_allclose(data.test.x[k, : data.test.lengths[k]] * std + mean, raw_test[k].T, rtol=1e-5, atol=1e-5)


def test_train_only_normalisation_stats(builtin_data):
    data = builtin_data["japanese_vowels"]
    raw_train, _ = load_japanese_vowels(split="train")
    mean, std = np.array(data.stats["mean"]), np.array(data.stats["std"])
    # recover the training rows in original units and recompute their stats with NumPy
    steps = np.concatenate([data.train.x[k, : data.train.lengths[k]] for k in range(len(data.train))]) * std + mean
    np.testing.assert_allclose(steps.mean(0), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(steps.std(0), std, rtol=1e-5)
    # and they differ from the stats of all 270 training-source rows (val is excluded)
    all_steps = np.concatenate([s.T for s in raw_train])
    assert not np.allclose(all_steps.mean(0), mean, rtol=0, atol=1e-9)
    # the normalised training steps have mean 0 / std 1
    z = np.concatenate([data.train.x[k, : data.train.lengths[k]] for k in range(len(data.train))])
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)


def test_train_and_val_partition_the_official_train_set(builtin_data):
    data = builtin_data["japanese_vowels"]
    raw_train, y_train = load_japanese_vowels(split="train")
    mean, std = np.array(data.stats["mean"]), np.array(data.stats["std"])
    expected = sorted(((s.T - mean) / std).astype(np.float32).tobytes() for s in raw_train)
    got_train, got_val = _rows(data.train), _rows(data.val)
    assert not set(got_train) & set(got_val)
    assert sorted(got_train + got_val) == expected
    # stratified: 27 val rows over 9 speakers with 30 each → 3 per speaker
    assert np.bincount(data.val.y, minlength=9).tolist() == [3] * 9


def test_basic_motions_shapes_and_order(builtin_data):
    data = builtin_data["basic_motions"]
    raw_test, y_test = load_basic_motions(split="test")
    assert data.train.x.shape == (36, 100, 6) and data.val.x.shape == (4, 100, 6) and data.test.x.shape == (40, 100, 6)
    assert data.class_names == sorted(set(y_test)) and data.n_classes == 4
    assert (data.test.lengths == 100).all()
    mean, std = np.array(data.stats["mean"]), np.array(data.stats["std"])
    np.testing.assert_allclose(data.test.x * std + mean, raw_test.transpose(0, 2, 1), rtol=1e-5, atol=1e-4)


def test_digits_rows_are_time_steps(builtin_data):
    data = builtin_data["digits"]
    digits = load_digits()
    assert (len(data.train), len(data.val), len(data.test)) == (1437, 180, 180)
    assert data.train.x.shape[1:] == (8, 8) and data.n_classes == 10
    mean, std = np.array(data.stats["mean"]), np.array(data.stats["std"])
    images = {img.astype(np.float32).tobytes(): int(t) for img, t in zip(digits.images, digits.target)}
    # every test row, de-normalised, is one of sklearn's images with the same label
    found = 0
    for k in range(len(data.test)):
        img = (np.round(data.test.x[k] * std + mean) + 0.0).astype(np.float32)  # +0.0 turns -0.0 into 0.0
        if images.get(img.tobytes()) == int(data.test.y[k]):
            found += 1
    assert found == len(data.test)
    # 3-way split is disjoint and complete (sklearn digits holds no duplicate images)
    counts = np.bincount(np.concatenate([data.train.y, data.val.y, data.test.y]), minlength=10)
    assert counts.tolist() == np.bincount(digits.target, minlength=10).tolist()
    assert not set(_rows(data.train)) & set(_rows(data.test)) and not set(_rows(data.val)) & set(_rows(data.test))


def test_same_spec_gives_byte_identical_arrays_other_seed_differs(builtin_data):
    again = load_data("digits")
    base = builtin_data["digits"]
    for name in ("train", "val", "test"):
        a, b = base.splits[name], again.splits[name]
        assert a.x.tobytes() == b.x.tobytes() and a.y.tobytes() == b.y.tobytes()
    other = load_data("digits", seed=1)
    assert other.val.x.tobytes() != base.val.x.tobytes()
    assert load_data(base.spec).test.x.tobytes() == base.test.x.tobytes()


def test_airline_is_chronological_without_leakage(builtin_data):
    data = builtin_data["airline"]
    series = np.asarray(load_airline(), dtype=np.float64).reshape(-1)
    H, W, L = 12, data.spec.seq_len, len(series)
    assert data.task == "forecast" and data.input_size == 1 and data.stats["season"] == 12
    assert data.train.x.shape[1:] == (W, 1) and data.train.y.shape[1:] == (H,)
    # the last test window's targets are the last 12 months of the series
    np.testing.assert_allclose(data.denormalize(data.test.y[-1]), series[-H:], rtol=1e-5)
    # normalisation from the training region only
    train_end = data.stats["train_end"]
    assert data.stats["target_mean"] == pytest.approx(series[:train_end].mean())
    assert data.stats["target_std"] == pytest.approx(series[:train_end].std())
    # locate every window's targets in the series: train < val < test, no overlap
    def target_starts(split):
        values = data.denormalize(split.y)
        starts = []
        for row in values:
            hits = [t for t in range(L - H + 1) if np.allclose(series[t : t + H], row, rtol=1e-5)]
            assert len(hits) == 1
            starts.append(hits[0])
        return np.array(starts)

    tr, va, te = target_starts(data.train), target_starts(data.val), target_starts(data.test)
    assert tr.max() + H <= train_end <= va.min() and va.max() + H <= te.min()
    assert te.max() + H == L
    # inputs are the W points just before the targets
    first_inputs = data.test.x[0, :, 0] * data.stats["std"][0] + data.stats["mean"][0]
    np.testing.assert_allclose(first_inputs, series[te[0] - W : te[0]], rtol=1e-5)


def test_airline_seasonal_naive_against_a_loop(builtin_data):
    data = builtin_data["airline"]
    series = np.asarray(load_airline(), dtype=np.float64).reshape(-1)
    te0 = data.stats["val_end"]  # the first test origin
    for k in range(len(data.test)):
        t = te0 + k
        expected = []
        for h in range(12):
            j = 1
            while t + h - 12 * j >= t:  # smallest k whose value is already known
                j += 1
            expected.append(series[t + h - 12 * j])
        np.testing.assert_allclose(data.denormalize(data.test.naive[k]), expected, rtol=1e-5)


def test_stats_and_summaries_are_json(builtin_data):
    for data in builtin_data.values():
        assert json.loads(json.dumps(data.stats)) == data.stats
        assert json.loads(json.dumps(data.summary()))["task"] == data.task


def test_zero_val_fraction_gives_an_empty_val_split():
    data = load_data("basic_motions", val_fraction=0)
    assert data.val.x.shape == (0, 100, 6) and data.val.y.shape == (0,) and len(data.train) == 40


def test_describe_dataset_reports_shapes_and_counts():
    info = describe_dataset("basic_motions")
    assert info["task"] == "classify" and info["splits"]["test"]["x_shape"] == [40, 100, 6]
    assert sum(info["splits"]["test"]["class_counts"].values()) == 40
    assert info["splits"]["train"]["length"] == {"min": 100, "mean": 100.0, "max": 100}
    assert "description" in info
