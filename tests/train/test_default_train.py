"""default_train_config's rule for a large training split (src/lstmlite/train/run.py,
docs/training.md): a split whose 30 passes would be more than 2,000,000 time steps trains
for as many passes as that budget holds (at least 1) at batch 64 and lr 3e-3; the user's
own train keys still win. The expected options below are worked out by hand from the
rule, not asked of the code."""

from __future__ import annotations

import numpy as np
import pytest

from lstmlite.data import DataSpec, load_data
from lstmlite.data.containers import Split
from lstmlite.train import default_train_config, default_train_note, fit
from lstmlite.train import run as run_module


class _Data:
    """Just what the rule reads: a training split."""

    def __init__(self, rows: int, padded: int, length: int | None = None) -> None:
        lengths = np.full(rows, padded if length is None else length, dtype=np.int64)
        self.train = Split(x=np.zeros((rows, padded), dtype=np.int8), y=np.zeros(rows, dtype=np.int8),
                           lengths=lengths)


LARGE = {"batch_size": 64, "lr": 3e-3}


@pytest.mark.parametrize("rows, padded, length, expected", [
    # tinyshakespeare's default split: 8,923 windows of 100 characters, 892,300 time steps;
    # 2,000,000 // 892,300 = 2 passes (TrainConfig's 30 would be 26.8 million)
    (8923, 100, None, {**LARGE, "epochs": 2}),
    (1000, 100, None, {**LARGE, "epochs": 20}),     # 100,000 a pass: 20 passes
    (20000, 100, None, {**LARGE, "epochs": 1}),     # the whole budget in one pass
    (60000, 100, None, {**LARGE, "epochs": 1}),     # over it: still one pass, not zero
    (600, 100, None, {}),                           # 60,000 a pass: 33 passes fit, TrainConfig's 30 stand
    (666, 100, None, {}),                           # 66,600 a pass: 30 passes (1,998,000) fit exactly
    (667, 100, None, {**LARGE, "epochs": 29}),      # 66,700 a pass: just over a 30th of the budget
    # lengths count, not padding: 700 sequences of 100 steps padded to 200 are 70,000 (28
    # passes), where the padded 140,000 would give 14
    (700, 200, 100, {**LARGE, "epochs": 28}),
    # a small split (under 128 sequences) keeps the small-split rule, however long its sequences
    (100, 30000, None, {"batch_size": 16, "lr": 3e-3, "epochs": 200, "patience": 40}),
    # the small split's edges: under 128 sequences small (batch 16), under 64 smaller still (batch 8)
    (128, 10, None, {}),
    (127, 10, None, {"batch_size": 16, "lr": 3e-3, "epochs": 200, "patience": 40}),
    (64, 10, None, {"batch_size": 16, "lr": 3e-3, "epochs": 200, "patience": 40}),
    (63, 10, None, {"batch_size": 8, "lr": 3e-3, "epochs": 200, "patience": 40}),
])
def test_the_rule_by_split_size(rows, padded, length, expected) -> None:
    assert default_train_config(_Data(rows, padded, length)) == expected


def test_the_note_names_the_options_that_stand_and_why() -> None:
    shakespeare = _Data(8923, 100)
    note = default_train_note(shakespeare)
    assert note is not None and "epochs=2" in note and "batch_size=64" in note and "lr=0.003" in note
    assert "892,300 time steps" in note and "2,000,000" in note
    assert "30 passes would be 26,769,000 time steps" in note  # 30 x 892,300
    given = default_train_note(shakespeare, {"epochs": 5, "lr": 0.01})
    assert given is not None and "batch_size=64" in given and "epochs=" not in given and "lr=" not in given
    assert default_train_note(shakespeare, {"epochs": 5, "lr": 0.01, "batch_size": 8}) is None
    assert default_train_note(_Data(600, 100)) is None  # TrainConfig's defaults: nothing chosen


def _text(path, chars: int) -> str:
    rng = np.random.default_rng(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question"]
    path.write_text(" ".join(rng.choice(words, size=chars // 4)), encoding="utf-8")
    return str(path)


def test_a_large_lm_split_gets_the_large_defaults_and_the_users_epochs_win(tmp_path, monkeypatch) -> None:
    """A language model on a split over the budget (lowered here so that a tiny text is
    large) trains with batch 64, lr 3e-3 and the budget's passes; a user's epochs or
    batch_size are kept (checked in the run dirs' config.json)."""
    source = _text(tmp_path / "text.txt", 24_000)
    data = load_data(DataSpec(source=source, task="lm", seq_len=20))
    steps = int(data.train.lengths.sum())
    assert steps == len(data.train) * 20 and len(data.train) >= 128
    monkeypatch.setattr(run_module, "LARGE_SPLIT_TIME_STEPS", 3 * steps + 5)  # 3 passes fit, a 4th not
    config = {"data": {"source": source, "task": "lm", "seq_len": 20}, "model": {"hidden_size": 8, "embed_dim": 4,
                                                                                 "num_layers": 1}}
    default = fit(config, tmp_path / "default", progress=False)
    train = default.config["train"]
    assert (train["epochs"], train["batch_size"], train["lr"], train["schedule"]) == (3, 64, 3e-3, "cosine")
    assert len(default.history) == 3
    mine = fit({**config, "train": {"epochs": 1, "batch_size": 32}}, tmp_path / "mine", progress=False)
    train = mine.config["train"]
    assert (train["epochs"], train["batch_size"], train["lr"]) == (1, 32, 3e-3)


def test_the_builtin_sets_keep_their_rules() -> None:
    """digits and japanese_vowels (a few thousand time steps a pass) keep TrainConfig's
    defaults; airline and basic_motions the small-split rule."""
    for name in ("digits", "japanese_vowels"):
        assert default_train_config(load_data(DataSpec(source=name))) == {}, name
    assert default_train_config(load_data(DataSpec(source="airline", task="forecast")))["epochs"] == 200


SHAKESPEARE = __import__("pathlib").Path(__file__).resolve().parents[2].parent / "shared" / "data" / \
    "tinyshakespeare" / "input.txt"


@pytest.mark.slow
def test_the_tinyshakespeare_default_run_learns(tmp_path) -> None:
    """`lstmlite train --data .../tinyshakespeare/input.txt --task lm` with nothing else:
    2 passes at batch 64 (about 10 minutes on a quiet 2-core machine), and a model far
    below the characters' unigram entropy (4.77 bits per char on the training split; the
    default run measured 2.47 on val)."""
    if not SHAKESPEARE.exists():
        pytest.skip(f"{SHAKESPEARE} is absent (the shared reference data is not mounted here)")
    run = fit({"data": {"source": str(SHAKESPEARE), "task": "lm"}}, tmp_path / "run", progress=False)
    train = run.config["train"]
    assert (train["epochs"], train["batch_size"], train["lr"]) == (2, 64, 3e-3)
    assert run.metrics["val"]["bits_per_char"] < 3.0, run.metrics["val"]
