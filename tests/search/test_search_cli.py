"""``lstmlite search``'s command layer with search() replaced by a recorder: every option
reaches search() (and the defaults are --help's), a trial's progress line says what its
figures are, and the best line's figures are the right ones. The trials themselves are
test_search.py's."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest

from lstmlite.cli.main import main
from lstmlite.search import study as study_module


@pytest.fixture
def recorded(monkeypatch):
    """search() replaced: its arguments, one progress line per trial given in TRIALS, and
    a best record worked by hand."""
    calls = []
    before = optuna.logging.get_verbosity()

    def fake_search(data, task, **kwargs):
        calls.append({"data": data, "task": task, **kwargs})
        for trial in TRIALS:
            kwargs["on_trial"](None, trial)
        best = {"trial": 3, "metric_name": "accuracy", "val_metric": 0.875, "test_metric": 0.625,
                "size_bytes": 1234, "latency_us": 5.25}
        return {"trials": 4, "pareto": [best], "best": best, "out": kwargs["out"]}
    monkeypatch.setattr(study_module, "search", fake_search)
    monkeypatch.setattr("lstmlite.search.search", fake_search)
    TRIALS.clear()
    yield calls
    optuna.logging.set_verbosity(before)


TRIALS: list = []


def _trial(number: int, state: str, **attrs):
    return SimpleNamespace(number=number, state=SimpleNamespace(name=state), user_attrs=attrs)


def test_options_reach_search_and_the_defaults_are_the_helps(recorded, tmp_path):
    """Catches an option dropped or read from another flag (--workers, --seed, --sampler,
    --no-prune, --resume, --storage, --space, --timeout, --task, --budget) and a default
    changed (--trials 20, one worker, seed 0, TPE, pruning on, no resume)."""
    out = str(tmp_path / "s")
    assert main(["search", "--data", "d.npz", "--out", out]) == 0
    assert recorded[-1] == {**recorded[-1], "data": "d.npz", "task": None, "budget": None, "trials": 20, "out": out,
                            "storage": None, "workers": 1, "timeout": None, "space": "default", "seed": 0,
                            "resume": False, "sampler": "tpe", "prune": True}
    assert main(["search", "--data", "d.npz", "--task", "forecast", "--budget", "size=2KB", "--trials", "7",
                 "--timeout", "2m", "--space", "s.yaml", "--storage", "sqlite:///x.db", "--workers", "3",
                 "--seed", "11", "--sampler", "random", "--resume", "--no-prune", "--out", out]) == 0
    assert recorded[-1] == {**recorded[-1], "data": "d.npz", "task": "forecast", "budget": "size=2KB", "trials": 7,
                            "out": out, "storage": "sqlite:///x.db", "workers": 3, "timeout": 120.0,
                            "space": "s.yaml", "seed": 11, "resume": True, "sampler": "random", "prune": False}


def test_a_trials_line_says_what_its_figures_are(recorded, tmp_path, capsys):
    """A trained trial within budget, one over it that was not trained (an estimated size
    and a MAC-model latency), a pruned trial without figures: each line by hand. Catches
    ok / over budget inverted, the (estimated) and (MAC model) marks inverted or
    dropped, "(not trained)" dropped, and the progress callback not given; the latency is
    per step (as the last line and docs/search.md say), where it read "12.2us" alone."""
    figures = {"metric_name": "accuracy", "val_metric": 0.5, "size_bytes": 2048, "latency_us": 12.25,
               "ram_bytes": 100}
    TRIALS.extend([
        _trial(0, "COMPLETE", **figures, size_kind="lsl", latency_kind="measured", ram_kind="mcu-export",
               feasible=True),
        _trial(1, "COMPLETE", **figures, size_kind="estimated", latency_kind="mac-model", ram_kind="estimated",
               feasible=False, skipped=True),
        _trial(2, "PRUNED")])
    assert main(["search", "--data", "d.npz", "--out", str(tmp_path / "s")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("trial ")]
    assert lines == [
        "trial    0 complete accuracy=0.5000 size=2,048 B (2.00 KiB) latency=12.2us/step ram=100 B ok",
        "trial    1 complete accuracy=0.5000 size=2,048 B (2.00 KiB) (estimated) latency=12.2us/step (MAC model) "
        "ram=100 B (estimated) over budget (not trained)",
        "trial    2 pruned"]


def test_a_failed_trials_line_gives_its_error_on_one_line(recorded, tmp_path, capsys):
    """A failed trial's line names its recorded error (the user attribute ``error``), its
    whitespace and newlines made single spaces and a long one cut to 160 characters ending in
    "..."; a failed trial with no error recorded (its worker died) keeps the bare line.
    Before, each line read "trial N fail" alone."""
    long_error = "RuntimeError: " + "x" * 300
    TRIALS.extend([
        _trial(4, "FAIL", error="KeyError: 'size_bytes'"),
        _trial(5, "FAIL", error="ValueError: the export failed:\n  line 1\n\tline 2  "),
        _trial(6, "FAIL", error=long_error),
        _trial(7, "FAIL"),
        _trial(8, "FAIL", error="OSError: " + "y" * (160 - len("OSError: ")))])  # 160 exactly: whole
    assert main(["search", "--data", "d.npz", "--out", str(tmp_path / "s")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("trial ")]
    assert lines == [
        "trial    4 fail     KeyError: 'size_bytes'",
        "trial    5 fail     ValueError: the export failed: line 1 line 2",
        "trial    6 fail     RuntimeError: " + "x" * (157 - len("RuntimeError: ")) + "...",
        "trial    7 fail",
        "trial    8 fail     OSError: " + "y" * 151]
    assert len(lines[2]) == len("trial    6 fail     ") + 160


def test_the_best_line_gives_validation_and_test_apart(recorded, tmp_path, capsys):
    """Catches the validation and test metrics swapped in the last line."""
    out = tmp_path / "s"
    assert main(["search", "--data", "d.npz", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"best within budget: trial 3 accuracy=0.8750 (val), 0.6250 (test), 1234 .lsl bytes, 5.2 us/step -> {out}/best")
