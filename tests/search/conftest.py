"""A tiny two-class sensor data set, so a search trial trains in about a second."""

from __future__ import annotations

import numpy as np
import pytest


def make_tiny_npz(path, n: int = 192, t: int = 10, f: int = 3, seed: int = 0):
    # 192 rows: 154 training sequences, above SMALL_SPLIT (128), so a trial's epoch is one
    # pass, as these tests count them (a small split's is SMALL_SPLIT_PASSES; test_trial.py)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, t, f)).astype(np.float32)
    x[:, :, 0] += np.where(y == 1, 1.5, -1.5)[:, None]  # separable: the model can learn it in an epoch
    np.savez(path, x=x, y=y.astype(str))
    return path


@pytest.fixture
def tiny_data(tmp_path):
    return str(make_tiny_npz(tmp_path / "tiny.npz"))


#: A space small enough for a few-second trial.
TINY_SPACE = {
    "params": {"cell": {"choices": ["lstm", "gru"]}, "hidden_size": {"low": 4, "high": 16, "step": 4},
               "weight_bits": {"choices": [32, 8]}, "sparsity": {"choices": [0.0, 0.5]}},
    "fixed": {"epochs": 2, "lr": 0.03, "finetune_epochs": 1},
}
