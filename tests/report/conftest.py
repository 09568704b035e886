"""Tiny run dirs for the report tests, trained once per session (a few seconds each).

* ``jv_runs``: an LSTM-8 on JapaneseVowels (1 epoch) and its int8 compression
  (the shipped ``int8`` recipe: no training);
* ``text_runs``: a token model (Embedding → LSTM → Dense) on a generated JSONL file
  whose labels and words include HTML (``<b>``, ``<script>``), and its int8 compression.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from lstmlite.compress.recipe import apply_recipe
from lstmlite.train import fit

# The browser helper (_headless_chromium.py) is imported by name: the suite runs with
# --import-mode=importlib, which does not put a test's folder on sys.path.
_here = str(Path(__file__).resolve().parent)
if _here not in sys.path:
    sys.path.insert(0, _here)

EVIL_LABEL = '<script>alert("label")</script>'


def _train_and_compress(root: Path, config: dict) -> tuple[Path, Path]:
    base, small = root / "base", root / "base-int8"
    fit(config, base, progress=False)
    apply_recipe(base, "int8", small, progress=False)
    return base, small


@pytest.fixture(scope="session")
def jv_runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("jv")
    return _train_and_compress(root, {
        "data": {"source": "japanese_vowels", "val_fraction": 0.2},
        "model": {"cell": "lstm", "hidden_size": 8},
        "train": {"epochs": 1, "batch_size": 32, "lr": 1e-2}})


def write_text_data(path: Path, rows: int = 240, seed: int = 0) -> Path:
    """JSONL rows: the label is decided by which marker word appears."""
    rng = random.Random(seed)
    markers = {"good": "pos", "<b>bad</b>": EVIL_LABEL}
    filler = ["the", "a", "film", "plot", "&amp;", "was", "very", "it", "<i>"]
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(rows):
            marker = rng.choice(list(markers))
            words = [rng.choice(filler) for _ in range(rng.randint(3, 8))]
            words.insert(rng.randint(0, len(words)), marker)
            handle.write(json.dumps({"text": " ".join(words), "label": markers[marker]}) + "\n")
    return path


@pytest.fixture(scope="session")
def text_runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("text")
    data = write_text_data(root / "reviews.jsonl")
    return _train_and_compress(root, {
        "data": {"source": str(data), "task": "classify"},
        "model": {"cell": "lstm", "embed_dim": 8, "hidden_size": 8},
        "train": {"epochs": 3, "batch_size": 16, "lr": 2e-2}})


@pytest.fixture(scope="session")
def other_runs(tmp_path_factory) -> tuple[Path, Path]:
    """A forecaster on the airline series and a word language model on generated text."""
    root = tmp_path_factory.mktemp("other")
    rng = random.Random(1)
    words = "the cat sat on a mat and then ran off to see the dog".split()
    text = root / "words.txt"
    text.write_text(" ".join(rng.choice(words) for _ in range(3000)), encoding="utf-8")
    forecast, lm = root / "airline", root / "words-lm"
    fit({"data": {"source": "airline", "task": "forecast"}, "model": {"hidden_size": 8}, "train": {"epochs": 1}},
        forecast, progress=False)
    fit({"data": {"source": str(text), "task": "lm", "level": "word", "seq_len": 20},
         "model": {"hidden_size": 8, "embed_dim": 4, "num_layers": 1}, "train": {"epochs": 1}}, lm, progress=False)
    return forecast, lm


@pytest.fixture(scope="session")
def tag_run(tmp_path_factory) -> Path:
    """A frame tagger (an .npz with a label per step, variable lengths), 1 epoch."""
    import numpy as np

    root = tmp_path_factory.mktemp("tag")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 12, 3))
    np.savez(root / "frames.npz", x=x, y=(np.cumsum(x[:, :, 0], 1) > 0).astype(int),
             lengths=rng.integers(4, 13, size=60))
    fit({"data": {"source": str(root / "frames.npz"), "task": "tag"}, "model": {"hidden_size": 4},
         "train": {"epochs": 1}}, root / "run", progress=False)
    return root / "run"
