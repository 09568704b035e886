"""Small synthetic tasks for the trainer tests (no files, a few hundred rows)."""

from types import SimpleNamespace

import numpy as np
import pytest

from lstmlite.data.containers import Split, TaskData


def _classify_split(rng, n):
    x = rng.normal(size=(n, 10, 3)).astype(np.float32)
    lengths = rng.integers(3, 11, size=n).astype(np.int64)
    for i, length in enumerate(lengths):
        x[i, length:] = 0
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)  # sign of a sum: needs the whole sequence
    return Split(x, y, lengths)


def _task(task, train, val, test, **kw):
    defaults = dict(name="toy", task=task, input_size=0, n_classes=0, class_names=[], vocab=None,
                    spec=SimpleNamespace(level=kw.pop("level", "word"), to_dict=lambda: {}), stats={})
    defaults.update(kw)
    return TaskData(train=train, val=val, test=test, **defaults)


@pytest.fixture
def toy_classify():
    rng = np.random.default_rng(0)
    return _task("classify", _classify_split(rng, 256), _classify_split(rng, 64), _classify_split(rng, 64),
                 input_size=3, n_classes=2, class_names=["neg", "pos"])


@pytest.fixture
def toy_lm():
    rng = np.random.default_rng(1)
    text = np.tile(np.arange(1, 9), 200)  # a periodic "text": learnable to near-zero loss

    def split(start, n):
        x = np.stack([text[start + i: start + i + 16] for i in range(n)])
        y = np.stack([text[start + i + 1: start + i + 17] for i in range(n)])
        return Split(x.astype(np.int64), y.astype(np.int64), np.full(n, 16, np.int64))

    return _task("lm", split(0, 64), split(3, 16), split(5, 16), level="char", vocab=list(range(10)))


@pytest.fixture
def toy_forecast():
    t = np.arange(400, dtype=np.float32)
    series = np.sin(2 * np.pi * t / 12).astype(np.float32)

    def split(start, n):
        x = np.stack([series[start + i: start + i + 24] for i in range(n)])[..., None]
        y = np.stack([series[start + i + 24: start + i + 28] for i in range(n)])
        naive = np.stack([series[start + i + 12: start + i + 16] for i in range(n)])
        return Split(x, y, np.full(n, 24, np.int64), naive=naive)

    return _task("forecast", split(0, 200), split(200, 50), split(300, 50), input_size=1,
                 stats={"target_mean": 10.0, "target_std": 2.0})
