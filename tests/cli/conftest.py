"""Shared run dirs of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstmlite.train.run import fit


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run dir trained on the built-in digits for one epoch (hidden size 8)."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    fit({"data": {"source": "digits"}, "model": {"hidden_size": 8}, "train": {"epochs": 1}}, out, progress=False)
    return out
