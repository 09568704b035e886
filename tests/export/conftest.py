"""Shared artefacts of the export tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small classifier trained on the built-in digits set (2 epochs, hidden 12): a run
    dir whose config.json holds the training split's feature statistics."""
    from lstmlite.train import fit

    root = tmp_path_factory.mktemp("digits")
    fit({"data": {"source": "digits"}, "model": {"hidden_size": 12}, "train": {"epochs": 2, "seed": 0}},
        root / "run", progress=False)
    return root / "run"
