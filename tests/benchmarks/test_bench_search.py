"""bench_search.py's hypervolume against Optuna's own implementation (an independent oracle)."""

import numpy as np
import pytest

from bench_search import hypervolume_2d


def test_hypervolume_matches_optuna_on_random_fronts():
    from optuna._hypervolume import compute_hypervolume

    rng = np.random.default_rng(0)
    for _ in range(200):
        pts = rng.random((int(rng.integers(1, 12)), 2))
        assert hypervolume_2d([tuple(p) for p in pts]) == pytest.approx(
            compute_hypervolume(pts, np.array([1.0, 1.0])), abs=1e-9)


def test_points_outside_the_reference_box_add_nothing():
    assert hypervolume_2d([]) == 0.0
    assert hypervolume_2d([(1.5, 0.1), (0.1, 1.0)]) == 0.0
    assert hypervolume_2d([(0.5, 0.5), (1.5, 0.1)]) == pytest.approx(0.25)
