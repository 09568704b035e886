"""The reference data sets of ../shared/data: TREC and tiny-shakespeare (skipped if absent)."""

from __future__ import annotations

import numpy as np
import pytest

from lstmlite.data import load_data


def _require(path):
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared reference data is not mounted here)")
    return path


def test_trec_coarse_counts(shared_data):
    folder = _require(shared_data / "trec")
    train_file, test_file = folder / "train_5500.label", _require(folder / "TREC_10.label")
    data = load_data(str(_require(train_file)), test_path=str(test_file))
    assert len(data.train) + len(data.val) == 5452 and len(data.test) == 500
    assert data.class_names == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    # an independent count of the coarse labels in the test file
    raw = test_file.read_bytes().decode("latin-1").splitlines()
    expected = {name: sum(1 for line in raw if line.split(":", 1)[0] == name) for name in data.class_names}
    assert {n: int(c) for n, c in zip(data.class_names, np.bincount(data.test.y, minlength=6))} == expected
    assert len(data.vocab) <= 10000 and data.vocab.tokens[:2] == ["<pad>", "<unk>"]
    # the folder form gives the same arrays
    same = load_data(str(folder))
    assert same.train.x.tobytes() == data.train.x.tobytes() and same.test.y.tobytes() == data.test.y.tobytes()


def test_trec_fine_labels(shared_data):
    folder = _require(shared_data / "trec")
    data = load_data(str(folder), label_level="fine")
    assert data.n_classes == 50 and all(":" in name for name in data.class_names)


def test_tiny_shakespeare_char_lm(shared_data):
    path = _require(shared_data / "tinyshakespeare" / "input.txt")
    text = path.read_text(encoding="ascii")
    data = load_data(str(path), seq_len=100)
    n_test = int(np.floor(0.1 * len(text) + 0.5))
    assert data.task == "lm" and data.spec.level == "char"
    assert len(data.vocab) == len(set(text[: len(text) - 2 * n_test])) + 2
    assert data.train.x.shape == ((len(text) - 2 * n_test - 1) // 100, 100)
    assert data.test.x.shape == ((n_test - 1) // 100, 100)
    # the test part is the last 10 % of the text, windows in order
    assert "".join(data.vocab.decode(data.test.x[0])) == text[len(text) - n_test :][:100]
    assert "".join(data.vocab.decode(data.train.x[0])).startswith("First Citizen:")
