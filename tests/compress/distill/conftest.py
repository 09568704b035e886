"""Small synthetic tasks for the distillation tests (no files, a few hundred rows)."""

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


@pytest.fixture(scope="module")
def toy_classify():
    rng = np.random.default_rng(0)
    return _task("classify", _classify_split(rng, 256), _classify_split(rng, 128), _classify_split(rng, 128),
                 input_size=3, n_classes=2, class_names=["neg", "pos"])


@pytest.fixture(scope="module")
def toy_lm():
    # a periodic "text" over ids 2..9 with a random phase per window: learnable to near-zero loss
    text = np.tile(np.arange(2, 10), 300)

    def split(start, n):
        x = np.stack([text[start + i: start + i + 16] for i in range(n)])
        y = np.stack([text[start + i + 1: start + i + 17] for i in range(n)])
        return Split(x.astype(np.int64), y.astype(np.int64), np.full(n, 16, np.int64))

    return _task("lm", split(0, 96), split(3, 24), split(5, 24), level="char", vocab=list(range(10)))


@pytest.fixture(scope="module")
def toy_seq2seq(tmp_path_factory):
    """Reversal pairs of 2-4 letters, so targets end at different steps (0-padded after ``</s>``)."""
    from lstmlite.data import load_data

    path = tmp_path_factory.mktemp("pairs") / "pairs.tsv"
    path.write_text("abc\tcba\nbca\tacb\ncab\tbac\nab\tba\nabcd\tdcba\nca\tac\n" * 6, encoding="utf-8")
    return load_data(str(path), task="seq2seq", seed=0)
