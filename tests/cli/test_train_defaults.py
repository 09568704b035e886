"""`lstmlite train` says which training options the data chose and why (one line on
stderr), its bar counts steps, and --nproc checks the data's default batch once, in the
launcher, before any process starts (src/lstmlite/cli/train_cmd.py; docs/training.md)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lstmlite.cli.main import main
from lstmlite.train import distributed as D
from lstmlite.train import run as run_module


def test_the_small_split_defaults_are_named_without_the_users_keys(tmp_path, capsys) -> None:
    assert main(["train", "--data", "basic_motions", "--epochs=1", "--hidden_size=4", "--out",
                 str(tmp_path / "bm"), "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("train defaults for this data: batch_size=8, lr=0.003, patience=40 (")
    assert "36 sequences, under 128" in lines[0] and "epochs" not in lines[0]  # --epochs=1 is the user's


def test_no_line_when_the_data_choose_nothing(tmp_path, capsys) -> None:
    assert main(["train", "--data", "digits", "--hidden_size=4", "--epochs=1", "--out", str(tmp_path / "d"),
                 "--quiet"]) == 0
    assert capsys.readouterr().err.strip() == ""


def _large_text(tmp_path, monkeypatch) -> str:
    """A tiny text that counts as a large split: the time-step budget lowered to 2 passes."""
    rng = np.random.default_rng(0)
    path = tmp_path / "text.txt"
    path.write_text(" ".join(rng.choice(["to", "be", "or", "not"], size=6000)), encoding="utf-8")
    from lstmlite.data import DataSpec, load_data

    steps = int(load_data(DataSpec(source=str(path), task="lm", seq_len=20)).train.lengths.sum())
    monkeypatch.setattr(run_module, "LARGE_SPLIT_TIME_STEPS", 2 * steps)
    return str(path)


def test_a_large_split_names_its_passes_and_json_stays_clean(tmp_path, monkeypatch, capsys) -> None:
    source = _large_text(tmp_path, monkeypatch)
    assert main(["train", "--data", source, "--task", "lm", "--data.seq_len=20", "--hidden_size=8",
                 "--num_layers=1", "--out", str(tmp_path / "lm"), "--quiet", "--json"]) == 0
    out, err = capsys.readouterr()
    metrics = json.loads(out)  # the note went to stderr
    assert metrics["run_dir"] == str(tmp_path / "lm")
    assert "train defaults for this data: batch_size=64, lr=0.003, epochs=2 (a large training split" in err
    config = json.loads((tmp_path / "lm" / "config.json").read_text())
    assert (config["train"]["epochs"], config["train"]["batch_size"]) == (2, 64)


def _no_launch(n, args):
    pytest.fail(f"launched {n} processes")


@pytest.mark.parametrize("data, nproc, batch, rows", [
    (["--data", "basic_motions"], "16", 8, 36),          # 16 divides 32, not basic_motions' 8
    (["--data", "airline", "--task", "forecast"], "32", 16, 81),  # 32 divides 32, not airline's 16
])
def test_nproc_against_a_small_splits_default_batch_is_refused_once_before_launching(data, nproc, batch, rows,
                                                                                      monkeypatch, capsys) -> None:
    monkeypatch.setattr(D, "launch", _no_launch)
    assert main(["train", *data, "--out", "r", "--nproc", nproc]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"lstmlite train: error: train.batch_size={batch} (the default for a training split of {rows} "
                   f"sequences) is not a multiple of --nproc {nproc} (it is the global batch, split evenly over "
                   f"the processes): choose a multiple of {nproc}")


def test_nproc_that_divides_a_large_splits_default_batch_is_launched(tmp_path, monkeypatch, capsys) -> None:
    """64 processes split a large split's default batch of 64 (not TrainConfig's 32)."""
    source = _large_text(tmp_path, monkeypatch)
    launched = []
    monkeypatch.setattr(D, "launch", lambda n, args: launched.append(n) or 0)
    assert main(["train", "--data", source, "--task", "lm", "--data.seq_len=20", "--out", "r", "--nproc", "64"]) == 0
    assert launched == [64]


def test_the_bar_counts_steps_over_all_passes(tmp_path, monkeypatch, capsys) -> None:
    """A run of two long passes shows its steps, not 0/2 epochs until the first pass ends:
    the total is passes x ceil(rows / 64), and the pass it is in stands beside it."""
    source = _large_text(tmp_path, monkeypatch)
    from lstmlite.data import DataSpec, load_data

    rows = len(load_data(DataSpec(source=source, task="lm", seq_len=20)).train)
    total = 2 * -(-rows // 64)
    assert main(["train", "--data", source, "--task", "lm", "--data.seq_len=20", "--hidden_size=8",
                 "--num_layers=1", "--out", str(tmp_path / "lm"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert f"/{total} [" in err and "step" in err, err[-500:]
    assert "epoch=1/2" in err and "epoch=2/2" in err


def test_a_resumed_runs_bar_starts_at_the_steps_already_done(tmp_path, monkeypatch, capsys) -> None:
    """A run interrupted after its first of 3 passes resumes with its bar at that pass's
    steps: basic_motions' 36 training sequences at its default batch 8 are ceil(36 / 8) = 5
    steps a pass, so the bar opens at 5/15 (not 0/15, nor 10/15: a pass counted twice)."""
    from lstmlite.train import trainer

    evaluate, calls = trainer.evaluate, []

    def stops_in_pass_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # pass 2's validation: its checkpoint is never written
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)
    argv = ["train", "--data", "basic_motions", "--epochs=3", "--hidden_size=4", "--out", str(tmp_path / "bm")]
    monkeypatch.setattr(trainer, "evaluate", stops_in_pass_2)
    assert main([*argv, "--quiet"]) != 0  # "interrupted"
    assert json.loads((tmp_path / "bm" / "checkpoints" / "last.json").read_text())["epoch"] == 1
    monkeypatch.setattr(trainer, "evaluate", evaluate)
    capsys.readouterr()
    assert main([*argv, "--resume", "--progress"]) == 0
    counts = re.findall(r"(\d+)/15 \[", capsys.readouterr().err)
    assert counts and counts[0] == "5" and max(map(int, counts)) == 15, counts
