"""Oracles shared by the compression tests."""

import numpy as np
import pytest


def _mse_scale(row: np.ndarray, qmax: int) -> float:
    """The documented MSE scale search written out: clip ratios 1.0, 0.975, ..., 0.5 of
    max|row| / qmax; the smallest squared error wins, ties to the larger ratio (the first
    tried)."""
    base = np.float32(np.abs(row).max() / np.float32(qmax))
    best, best_err = None, np.inf
    for k in range(21):
        s = base * np.float32(1.0 - 0.025 * k)
        err = ((np.clip(np.rint(row / s), -qmax, qmax) * s - row) ** 2).sum()
        if err < best_err:
            best, best_err = s, err
    return float(best)


@pytest.fixture
def mse_scale():
    """``mse_scale(row, qmax)``: one row's scale as the MSE search should choose it (used
    by the weight quantizer's and the embedding quantizer's tests alike)."""
    return _mse_scale
