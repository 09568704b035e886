"""Forecasting windows (lstmlite.data.forecast) on a series whose values are their own
time indices, so every target and naive value names the time step it came from."""

from __future__ import annotations

import numpy as np
import pytest

from lstmlite.data import DataSpec
from lstmlite.data.forecast import build_forecast


@pytest.mark.parametrize("W, H, regions, val_starts, test_starts", [
    # round(0.1 · 60) = 6 < H = 12: each of val and test still gets H points, one window each
    (12, 12, (36, 48), [36], [48]),
    # 6 ≥ H = 4: six points each, so three windows whose 4 targets fit inside the region
    (6, 4, (48, 54), [48, 49, 50], [54, 55, 56]),
])
def test_val_and_test_regions_hold_at_least_a_horizon(W: int, H: int, regions: tuple[int, int],
                                                      val_starts: list[int], test_starts: list[int]) -> None:
    """Regions are n_test = n_val = max(H, round(0.1 · 60)) points from the end (hand-computed),
    and each window's targets are the H steps from its origin. Catches n_test without the
    max(horizon, ·), which leaves a 60-point series with horizon 12 no test window at all."""
    series = np.arange(60, dtype=np.float64)
    data = build_forecast("toy", DataSpec("toy.npy", seq_len=W, horizon=H, season=1,
                                          val_fraction=0.1, test_fraction=0.1), series)
    assert (data.stats["train_end"], data.stats["val_end"]) == regions
    for split, starts in ((data.val, val_starts), (data.test, test_starts)):
        targets = np.rint(data.denormalize(split.y))
        np.testing.assert_array_equal(targets, np.array(starts)[:, None] + np.arange(H)[None, :])


def test_seasonal_naive_falls_back_to_the_last_known_value() -> None:
    """Season 24 with 6-step inputs: early origins have no value one season back, so the
    naive forecast is z[t-1] there (the module doc), and z[t+h-24k] later; checked against
    a loop over every window of every split. Catches a fallback to the series' first value."""
    series = np.arange(60, dtype=np.float64)
    data = build_forecast("toy", DataSpec("toy.npy", seq_len=6, horizon=4, season=24,
                                          val_fraction=0.1, test_fraction=0.1), series)
    checked_fallback = False
    for split in data.splits.values():
        origins = np.rint(data.denormalize(split.y[:, 0])).astype(int)  # the first target is z[t] = t
        for t, naive in zip(origins, np.rint(data.denormalize(split.naive))):
            expected = []
            for h in range(4):
                k = 1
                while t + h - 24 * k >= t:  # the smallest season step already known at t
                    k += 1
                j = t + h - 24 * k
                expected.append(series[j] if j >= 0 else series[t - 1])
                checked_fallback |= j < 0
            np.testing.assert_array_equal(naive, expected)
    assert checked_fallback


@pytest.mark.parametrize("length, horizon, val, test, regions", [
    (65, 4, 0.1, 0.1, (51, 58)),   # 6.5 points each: half up to 7, so 65 - 7 - 7 and 65 - 7
    (45, 4, 0.1, 0.3, (26, 31)),   # val 4.5 → 5, test 13.5 → 14
    (25, 2, 0.0, 0.1, (22, 22)),   # no val; test 2.5 → 3
    (30, 5, 0.1, 0.1, (20, 25)),   # 3 points each are fewer than a horizon: 5 each
])
def test_regions_round_halves_up_and_hold_a_horizon(length: int, horizon: int, val: float, test: float,
                                                    regions: tuple[int, int]) -> None:
    """``forecast_regions`` against hand-computed region ends: n = max(H, floor(f·L + 0.5))
    for each fraction above 0. Catches Python's round (halves to even: 6.5 → 6, 4.5 → 4,
    2.5 → 2) in either the val or the test count."""
    from lstmlite.data.forecast import forecast_regions

    assert forecast_regions(length, horizon, val, test) == regions


def test_a_series_with_room_for_exactly_one_training_window_is_taken():
    """10 points, W = 7, H = 1: val and test take max(H, round(0.1 · 10)) = 1 point each, so
    train ends at 8 = W + H: one window (points 0..6 in, 7 out). Catches the bound made
    strict, which refused the series as too short."""
    data = build_forecast("toy", DataSpec("toy.npy", seq_len=7, horizon=1, season=1), np.arange(10.0))
    assert data.stats["train_end"] == 8 and data.train.x.shape == (1, 7, 1)
    np.testing.assert_allclose(data.denormalize(data.train.y), [[7.0]], atol=1e-5)
