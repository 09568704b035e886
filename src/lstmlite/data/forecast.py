"""Build forecasting :class:`TaskData` from one series, split in time order.

The series (L, F) is cut into three regions by the time of the TARGETS: train targets
come first, then val, and the test targets are the last ``n_test`` points, where
``n_test = max(horizon, round(test_fraction · L))`` (``n_val`` likewise). A window
(inputs ``z[t-W:t]``, targets ``z[t:t+H, 0]``, origin ``t``) belongs to a split when all
its targets lie inside that split's region; its inputs are the known past, so no
future value is ever an input or a training target of an earlier split.

Every feature is normalised with the mean/std of the training region only. The target
is feature 0; ``stats["target_mean"]``/``["target_std"]`` turn predictions back into
the series' units. ``naive`` is the seasonal-naive forecast
``ŷ[t+h] = z[t+h-s·k]`` with the smallest k ≥ 1 that lands before the origin
(k = h // s + 1), falling back to the last known value ``z[t-1]`` before the series
starts; with season s = 1 it is the persistence forecast.

Example:
    >>> import numpy as np
    >>> from lstmlite.data.spec import DataSpec
    >>> series = np.arange(144, dtype=float)
    >>> data = build_forecast("toy", DataSpec("toy.npy", seq_len=24, horizon=12, season=12), series)
    >>> data.train.x.shape, data.val.y.shape, data.test.y.shape
    ((81, 24, 1), (3, 12), (3, 12))
    >>> round(float(data.denormalize(data.test.y)[-1, -1]), 3)
    143.0
"""

from __future__ import annotations

import numpy as np

from .containers import Split, TaskData
from .errors import DataError
from .spec import DataSpec
from .splits import round_half_up

__all__ = ["build_forecast", "forecast_regions", "seasonal_naive"]


def forecast_regions(length: int, horizon: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """``(train_end, val_end)``: targets in [0, train_end) train, [train_end, val_end) val, rest test."""
    n_test = max(horizon, round_half_up(test_fraction * length)) if test_fraction > 0 else 0
    n_val = max(horizon, round_half_up(val_fraction * length)) if val_fraction > 0 else 0
    return length - n_test - n_val, length - n_test


def seasonal_naive(z: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Seasonal-naive forecasts of ``z`` (L,) from each origin: (len(origins), horizon)."""
    h = np.arange(horizon)
    index = origins[:, None] + h[None, :] - season * (h[None, :] // season + 1)  # < origin always
    index = np.where(index >= 0, index, origins[:, None] - 1)  # no season back yet: last value
    return z[index]


def build_forecast(name: str, spec: DataSpec, series: np.ndarray, *, where: str | None = None) -> TaskData:
    """Forecasting windows over a (L,) or (L, F) series.

    Args:
        name: :attr:`TaskData.name`.
        spec: the resolved spec (``seq_len`` W, ``horizon`` H, ``season``, fractions).
        series: the raw series; feature 0 is the target.
        where: the name for error messages.

    Returns:
        TaskData with x (N, W, F) float32, y and naive (N, H) float32, all normalised.
    """
    where = where or name
    z = np.asarray(series, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    length, n_features = z.shape
    W, H = spec.seq_len, spec.horizon
    train_end, val_end = forecast_regions(length, H, spec.val_fraction, spec.test_fraction)
    if train_end < W + H:
        raise DataError(
            f"{where}: a series of {length} points is too short for seq_len={W} + horizon={H} training "
            f"windows before {length - train_end} val/test points; use a smaller seq_len, horizon or fraction"
        )
    mean = z[:train_end].mean(axis=0)
    std = z[:train_end].std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    zn = (z - mean) / std  # (L, F)

    def make(first_target: int, end: int) -> Split:
        origins = np.arange(max(W, first_target), end - H + 1, dtype=np.int64)  # all targets in [first, end)
        steps = np.arange(W)
        x = zn[origins[:, None] - W + steps[None, :]]  # (N, W, F)
        y = zn[origins[:, None] + np.arange(H)[None, :], 0]  # (N, H)
        naive = seasonal_naive(zn[:, 0], origins, H, spec.season)
        return Split(
            np.ascontiguousarray(x, dtype=np.float32).reshape(len(origins), W, n_features),
            np.ascontiguousarray(y, dtype=np.float32).reshape(len(origins), H),
            np.full(len(origins), W, dtype=np.int64),
            np.ascontiguousarray(naive, dtype=np.float32).reshape(len(origins), H),
        )

    return TaskData(
        name=name,
        task="forecast",
        train=make(0, train_end),
        val=make(train_end, val_end),
        test=make(val_end, length),
        input_size=int(n_features),
        n_classes=0,
        class_names=[],
        vocab=None,
        spec=spec,
        stats={
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "season": int(spec.season),
            "horizon": int(H),
            "target_column": 0,
            "target_mean": float(mean[0]),
            "target_std": float(std[0]),
            "train_end": int(train_end),
            "val_end": int(val_end),
            "length": int(length),
        },
    )
