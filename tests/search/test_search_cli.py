"""``lstmlite search``'s command layer with search() replaced by a recorder: every option
reaches search() (and the defaults are --help's), a trial's progress line says what its
figures are, and the best line's figures are the right ones. The trials themselves are
test_search.py's."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from lstmlite.cli.main import main
from lstmlite.cli.common import CliError
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
        out = Path(kwargs["out"])  # trials.json as write_outputs gives it: what the last lines count
        out.mkdir(parents=True, exist_ok=True)
        (out / "trials.json").write_text(json.dumps(
            [{"trial": t.number, **t.user_attrs, "state": t.state.name} for t in TRIALS]))
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
    per step (as the last line and docs/search.md say), where it read "12.2us" alone. The
    untrained trial shows no metric (``accuracy=-``): it read the untrained model's figure
    (the sampler's placeholder) as if measured, "accuracy=0.1111 ... (not trained)"."""
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
        "trial    1 complete accuracy=- size=2,048 B (2.00 KiB) (estimated) latency=12.2us/step (MAC model) "
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
        f"best within budget: trial 3 accuracy=0.8750 (val), 0.6250 (test), 1,234 B (1.21 KiB) .lsl file, "
        f"5.2 us/step -> {out}/best")


def test_a_seq2seq_best_is_sized_as_its_three_files(recorded, tmp_path, capsys):
    """A seq2seq best's size is its bundle (encoder.lsl + decoder.lsl + seq2seq.safetensors),
    and the last line says so; it said "18698 .lsl bytes" while best/model.lsl (the decoder,
    kept for timing) was 5,287 B."""
    out = tmp_path / "s"
    (out / "best").mkdir(parents=True)
    (out / "best" / "config.json").write_text(json.dumps({"task": "seq2seq", "model": {"kind": "seq2seq"}}))
    assert main(["search", "--data", "d.npz", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"best within budget: trial 3 accuracy=0.8750 (val), 0.6250 (test), 1,234 B (1.21 KiB) exported "
        f"(encoder.lsl + decoder.lsl + seq2seq.safetensors), 5.2 us/step -> {out}/best")


def test_the_last_lines_count_the_trials_trained_apart_from_those_not_trained(recorded, tmp_path, capsys):
    """The summary line says how many of the trials --trials counts (complete or pruned)
    trained a model and how many were over the budget before training, so not trained;
    failed trials (replaced) are counted apart, a trial failed as past the cap not at all.
    Before, "4 trials complete" for 2 trials of which 1 trained a model (the user asked for
    2 and got 1 model, with nothing saying why)."""
    figures = {"metric_name": "accuracy", "val_metric": 0.5, "size_bytes": 2048, "latency_us": 12.25,
               "ram_bytes": 100, "size_kind": "lsl", "latency_kind": "measured", "ram_kind": "mcu-export"}
    TRIALS.extend([_trial(0, "COMPLETE", **figures, feasible=False, skipped="over budget before training"),
                   _trial(1, "COMPLETE", **figures, feasible=True),
                   _trial(2, "PRUNED"),
                   _trial(3, "FAIL", error="KeyError: 'x'"),
                   _trial(4, "FAIL", error="OverCap: trial 4 not run", over_cap=True)])
    out = tmp_path / "s"
    assert main(["search", "--data", "d.npz", "--trials", "3", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the trial a worker started past --trials (failed unrun) gets no line: 4 lines for trials 0-3
    assert [line.split()[:2] for line in lines[:-2]] == [["trial", str(n)] for n in range(4)], lines
    assert lines[-2] == (f"3 trials, 1 trained, 1 over budget (not trained), 1 pruned (stopped early), "
                         f"1 failed and replaced; 1 on the Pareto front within budget ({out}/pareto.json, pareto.png)")


def test_the_last_lines_count_trained_trials_that_came_out_over_budget(recorded, tmp_path, capsys):
    """Trials trained in full whose models came out over the budget (no pre-training check
    stopped them, --no-prune) are counted as such; it said "0 over budget" for three trials
    all over it, then "no trial met the budget"."""
    figures = {"metric_name": "accuracy", "val_metric": 0.5, "size_bytes": 2048, "latency_us": 12.25,
               "ram_bytes": 100, "size_kind": "lsl", "latency_kind": "measured", "ram_kind": "mcu-export"}
    TRIALS.extend([_trial(0, "COMPLETE", **figures, feasible=False), _trial(1, "COMPLETE", **figures, feasible=False),
                   _trial(2, "COMPLETE", **figures, feasible=True)])
    out = tmp_path / "s"
    assert main(["search", "--data", "d.npz", "--trials", "3", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-2].startswith(
        "3 trials, 3 trained (2 of them over budget), 0 over budget (not trained); ")


@pytest.mark.parametrize("storage, says", [
    ("mysql://x/y", "the mysql driver (MySQLdb) is not installed; pip install mysqlclient"),
    ("sqlite:////nonexistent/dir/x.db", "the folder /nonexistent/dir does not exist; create it"),
    ("foo://x", "unknown database kind 'foo'"),
    ("study.db", "not a database URL; use sqlite:///PATH/study.db"),
])
def test_a_storage_url_that_cannot_be_opened_is_one_line_and_leaves_no_out(tiny_data, tmp_path, capsys, storage,
                                                                           says):
    """A --storage URL the study cannot be opened on (no driver, no such folder, an
    unknown kind, not a URL) is refused as one line naming the URL, what is wrong and the
    fix, exit status 2, and the --out folder (and the parent it would make) is not left
    behind; an --out that existed before is kept. Before, "internal error (ImportError: Failed
    to import DB access module ...)" or "(OperationalError: unable to open database file)",
    exit 1, and an empty --out left behind. search() is the real one: unchecked, it made
    --out and then failed opening the storage."""
    out = tmp_path / "new" / "s"
    code = main(["search", "--data", tiny_data, "--task", "classify", "--trials", "1", "--storage", storage,
                 "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"lstmlite search: error: --storage {storage}: ") and says in err[0]
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    assert main(["search", "--data", tiny_data, "--trials", "1", "--storage", storage, "--out", str(kept)]) == 2
    assert kept.is_dir()


def test_a_storage_file_that_is_not_a_database_is_refused_and_a_study_is_taken(tmp_path):
    """An SQLite --storage file that is not a database is refused as such (it read as
    "internal error (DatabaseError ...)"); an existing study's file (--resume) and a new
    file in an existing folder pass, the new one not created by the check; a password in
    the URL is masked in the message."""
    from lstmlite.cli.search_cmd import check_storage

    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    with pytest.raises(CliError, match=r"^--storage sqlite:///.*junk\.db: cannot open it \(file is not a database\)"):
        check_storage(f"sqlite:///{junk}")
    study_db = tmp_path / "study.db"
    optuna.create_study(storage=f"sqlite:///{study_db}")
    check_storage(f"sqlite:///{study_db}")
    check_storage(f"sqlite:///{tmp_path / 'new.db'}")
    assert not (tmp_path / "new.db").exists()
    with pytest.raises(CliError) as caught:
        check_storage("mysql://user:secret@host/db")
    assert "secret" not in str(caught.value) and "mysql://user:***@host/db" in str(caught.value)


def test_a_run_that_fails_before_any_trial_removes_only_the_out_it_made(monkeypatch, tmp_path, capsys):
    """search() failing after it made --out but before writing anything there (here: a
    shared storage whose study already has trials): the empty --out this run made, and the
    parent it made, are removed; an --out that existed before stays, and so does a new one
    the run wrote into. Before, the empty folder stayed."""
    written = {}

    def failing_search(data, task, **kwargs):
        out = Path(kwargs["out"])
        out.mkdir(parents=True, exist_ok=True)
        if written.get("write"):
            (out / "study.db").write_text("")
        raise FileExistsError(f"{out}: the study already has trials; pass resume=True (--resume) to continue it")
    monkeypatch.setattr("lstmlite.search.search", failing_search)
    out = tmp_path / "new" / "s"
    assert main(["search", "--data", "d.npz", "--out", str(out)]) == 2
    assert "the study already has trials" in capsys.readouterr().err and not (tmp_path / "new").exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    assert main(["search", "--data", "d.npz", "--out", str(existing)]) == 2 and existing.is_dir()
    written["write"] = True
    assert main(["search", "--data", "d.npz", "--out", str(out)]) == 2 and (out / "study.db").exists()
