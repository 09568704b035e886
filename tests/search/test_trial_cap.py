"""``--trials N`` over several workers: the study ends with N complete or pruned trials,
never N + 1. Optuna's MaxTrialsCallback counted the finished trials after each one, so a
worker that saw the study one short started a trial while another worker's last one was
still running (``lstmlite search --workers 2 --trials 2`` ended with 3 complete). These
tests stage the race by hand: the study holds N - 1 finished trials and another worker's
trial is RUNNING when this worker starts (or asks for its trial)."""

from __future__ import annotations

import threading
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from lstmlite.search import study as study_module

from .conftest import TINY_SPACE

N = 3
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # study.ask() by hand
RECORD = {"val_metric": 0.9, "size_bytes": 500, "latency_us": 2.0, "ram_bytes": 100, "point": {}}


def _study_with(out, finished: int):
    """A study in OUT/study.db holding ``finished`` complete trials (values by hand)."""
    study = study_module.open_study(out, None, 0, True, resume=True, heartbeat=1, sampler="random")
    for _ in range(finished):
        trial = study.ask()
        study_module.load_space(TINY_SPACE).sample(trial)
        study.tell(trial, [0.5, 400.0, 1.0, 100.0])
    return study


def _args(out, trials: int) -> dict:
    return {"out": str(out), "storage": None, "seed": 0, "worker": 1, "higher": True, "heartbeat": 1,
            "sampler": "random", "space": TINY_SPACE, "data_config": {}, "budget": {}, "prune": False,
            "trials": trials, "timeout": 60.0}


def _states(out) -> Counter:
    study = optuna.load_study(study_name=study_module.STUDY_NAME, storage=f"sqlite:///{out / 'study.db'}")
    return Counter(t.state.name for t in study.trials)


@pytest.fixture
def runs(monkeypatch):
    """The trials this worker trains (run_trial replaced by a record worked by hand)."""
    calls = []

    def fake_run_trial(point, data_config, run_dir, **kwargs):
        calls.append(run_dir.name)
        return dict(RECORD)
    monkeypatch.setattr(study_module, "run_trial", fake_run_trial)
    return calls


@pytest.mark.parametrize("other_ends_as, trained_here", [(TrialState.COMPLETE, 0), (TrialState.PRUNED, 0),
                                                         (TrialState.FAIL, 1)])
def test_a_worker_starting_while_the_last_trial_runs_elsewhere_waits_for_it(tmp_path, runs, other_ends_as,
                                                                             trained_here):
    """N - 1 trials finished and another worker's trial running: this worker starts none
    while it runs; when it completes (or is pruned) the study holds N and this worker
    stops; when it fails, this worker trains the N-th. Before: the worker started a trial
    at once and the study ended with N + 1 finished. Also catches a worker that does not
    wait but asks for a trial that is then failed as past the cap (no trial past N, but
    failed trials in the study)."""
    study = _study_with(tmp_path, N - 1)
    other = study.ask()  # another worker's trial, mid-training

    def other_worker_finishes():
        if other_ends_as == TrialState.COMPLETE:
            study.tell(other, [0.6, 300.0, 1.0, 100.0])
        else:
            study.tell(other, state=other_ends_as)
    timer = threading.Timer(0.5, other_worker_finishes)
    timer.start()
    try:
        study_module._worker(_args(tmp_path, N))
    finally:
        timer.join()
    states = _states(tmp_path)
    assert states["COMPLETE"] + states["PRUNED"] == N, states
    assert len(runs) == trained_here and states["RUNNING"] == 0
    # and no trial was asked for only to be failed as past the cap: the worker waited
    assert states["FAIL"] == (1 if other_ends_as == TrialState.FAIL else 0), states


def test_a_trial_asked_for_past_the_cap_is_not_trained(tmp_path, runs):
    """Two workers that both read the count (N - 1 finished, none running) each ask for a
    trial: the earlier trial is trained, the later one fails before any sampling or
    training (OverCap) and does not count. Before: both were trained (N + 1)."""
    study = _study_with(tmp_path, N - 1)
    objective = study_module._objective_factory(study_module.load_space(TINY_SPACE), {}, tmp_path, {}, 0,
                                                prune=False, cap=N)
    first, second = study.ask(), study.ask()
    with pytest.raises(study_module.OverCap, match=f"trial {second.number} not run"):
        objective(second)
    assert second.params == {} and runs == []
    assert study.trials[second.number].user_attrs["over_cap"] is True  # recorded, for the failures in a row
    study.tell(second, state=TrialState.FAIL)
    assert objective(first) == (0.9, 500, 2.0, 100) and runs == [f"{first.number:04d}"]


def test_a_resumed_study_already_at_the_cap_runs_no_trial(tmp_path, runs):
    """``--resume --trials N`` on a study that holds N finished trials trains nothing."""
    _study_with(tmp_path, N)
    study_module._worker(_args(tmp_path, N))
    assert runs == [] and _states(tmp_path) == Counter({"COMPLETE": N})


@pytest.fixture
def no_waiting(monkeypatch):
    """time.sleep replaced by a failure: a worker that should stop at once, but waits, fails
    here rather than hanging (or passing once a timeout ends its wait)."""
    def sleep(seconds):
        raise AssertionError(f"the worker waited ({seconds} s) where it should have stopped")
    monkeypatch.setattr("time.sleep", sleep)


def test_a_study_at_the_cap_with_no_timeout_stops_without_waiting(tmp_path, runs, no_waiting):
    """N finished trials and none running, no --timeout: the worker returns at once.
    Catches the wait loop's stop test as ``done > cap`` (at the cap it neither stopped nor
    found room: it waited for ever, or, with a --timeout, until it ran out)."""
    study = _study_with(tmp_path, N)
    assert study_module._wait_for_room(study, N) is False
    study_module._worker({**_args(tmp_path, N), "timeout": None})
    assert runs == [] and _states(tmp_path) == Counter({"COMPLETE": N})


def test_a_worker_waiting_for_room_stops_at_its_timeout(tmp_path, runs, no_waiting):
    """N - 1 finished and another worker's trial running (never finished here), and a
    timeout already spent (0 s): the worker stops without waiting or training. Catches the
    timeout not given to the wait loop (the worker waited on the other trial for ever:
    Optuna's own timeout is only checked once a trial may start)."""
    study = _study_with(tmp_path, N - 1)
    study.ask()  # another worker's trial, mid-training
    study_module._worker({**_args(tmp_path, N), "timeout": 0.0})
    assert runs == [] and _states(tmp_path) == Counter({"COMPLETE": N - 1, "RUNNING": 1})


def test_a_dead_workers_last_trial_is_failed_and_trained_here(tmp_path, runs, no_waiting):
    """N - 1 finished and another worker's trial RUNNING whose heartbeat stopped an hour ago
    (its worker died; the heartbeat row is set back by hand in the SQLite file): this
    worker fails it as stale at once, without waiting on it, and trains its re-queued
    copy, the N-th. Catches the wait loop not failing stale trials (the worker waited on
    the dead one for ever, or until --timeout, and the study ended one short)."""
    import sqlite3

    study = _study_with(tmp_path, N - 1)
    dead = study.ask()
    study._storage.record_heartbeat(dead._trial_id)
    with sqlite3.connect(tmp_path / "study.db") as db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-1 hour')")
    study_module._worker({**_args(tmp_path, N), "timeout": None})
    assert _states(tmp_path) == Counter({"COMPLETE": N, "FAIL": 1}), _states(tmp_path)
    assert runs == [f"{N:04d}"]  # the copy of the dead trial (numbers 0 .. N - 1 taken)


def _two_workers(out, trials: int) -> None:
    """Two workers on the study in OUT/study.db at once (threads here, so that the
    monkeypatched run_trial is theirs; spawned processes would import the real one). The
    study is made first, as search() makes it before starting its workers."""
    _study_with(out, 0)
    workers = [threading.Thread(target=study_module._worker, args=({**_args(out, trials), "worker": i},))
               for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a worker never stopped"


def _failed_by_the_trial(out) -> int:
    """Failed trials whose own run raised (not those failed as past the cap, OverCap)."""
    study = optuna.load_study(study_name=study_module.STUDY_NAME, storage=f"sqlite:///{out / 'study.db'}")
    return sum(t.state == TrialState.FAIL and not t.user_attrs["error"].startswith("OverCap:") for t in study.trials)


def test_several_workers_replace_a_failed_trial_up_to_the_cap(tmp_path, monkeypatch):
    """Two workers, the first trial run raises: the study still ends with N complete trials
    (the failure replaced, nothing past N), as with one worker."""
    calls = []

    def fail_first(point, data_config, run_dir, **kwargs):
        calls.append(run_dir.name)
        if len(calls) == 1:
            raise RuntimeError("injected")
        return dict(RECORD)
    monkeypatch.setattr(study_module, "run_trial", fail_first)
    _two_workers(tmp_path, N)
    states = _states(tmp_path)
    assert states["COMPLETE"] == N and states["RUNNING"] == 0 and _failed_by_the_trial(tmp_path) == 1, states


def test_several_workers_stop_on_a_trial_that_fails_every_time(tmp_path, monkeypatch):
    """Two workers and a trial that always raises: both stop once MAX_FAILURES_IN_A_ROW
    trials failed in a row (each may have one more running then: at most 11), rather than
    replacing failures for ever."""
    calls = []

    def always_fails(point, data_config, run_dir, **kwargs):
        calls.append(run_dir.name)
        if len(calls) > 20:  # pytest's Failed is no Exception: optimize() does not catch it (ends the thread)
            pytest.fail("the workers did not stop")
        raise RuntimeError("injected")
    monkeypatch.setattr(study_module, "run_trial", always_fails)
    _two_workers(tmp_path, N)
    failed = _failed_by_the_trial(tmp_path)
    assert study_module.MAX_FAILURES_IN_A_ROW <= failed <= study_module.MAX_FAILURES_IN_A_ROW + 1, failed
    assert len(calls) == failed and _states(tmp_path)["COMPLETE"] == 0


def test_several_workers_replace_trials_that_raise_any_exception(tmp_path, monkeypatch):
    """Two workers whose first two trial runs raise a KeyError and an OSError (not ValueError or
    RuntimeError): both trials fail and are replaced, the study ends with N complete trials and
    neither worker ends on the error, as one worker does. Before, optimize() re-raised those
    types: each worker that ran one died (here both: the study ended with no complete trial)."""
    calls = []
    escaped = []
    errors = [KeyError("size_bytes"), OSError(28, "No space left on device")]

    def fail_two(point, data_config, run_dir, **kwargs):
        calls.append(run_dir.name)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return dict(RECORD)
    monkeypatch.setattr(study_module, "run_trial", fail_two)

    original = study_module._worker

    def worker(args):
        try:
            original(args)
        except BaseException as exc:  # noqa: BLE001 - what ended the worker, checked below
            escaped.append(exc)
    monkeypatch.setattr(study_module, "_worker", worker)
    _two_workers(tmp_path, N)
    states = _states(tmp_path)
    assert escaped == [] and states["COMPLETE"] == N and states["RUNNING"] == 0, (escaped, states)
    assert _failed_by_the_trial(tmp_path) == 2


@pytest.mark.parametrize("over_cap_attrs", [
    {"over_cap": True, "error": "OverCap: trial 5 not run: the study holds 0 finished and 3 running trials of its 3"},
    {"over_cap": True, "error": "recorded some other way"},  # the attribute decides, not the error's words
    # a study written before the attribute: the error's prefix is the fallback
    {"error": "OverCap: trial 5 not run: the study holds 0 finished and 3 running trials of its 3"},
], ids=["attribute", "attribute-only", "old-study-prefix"])
def test_trials_failed_as_past_the_cap_do_not_count_as_failures_in_a_row(tmp_path, runs, over_cap_attrs):
    """A trial failed as past the cap (OverCap: two workers read the count at once) is no
    fault of the trial: a study whose last 10 failures are 9 that raised and 1 OverCap is 9
    failures in a row, under MAX_FAILURES_IN_A_ROW, so a worker starting on it trains the N
    trials asked for rather than stopping with none. The OverCap trial is known by its
    ``over_cap`` attribute, or, in a study from before it, by its error's ``OverCap:``
    prefix. Catches the attribute ignored (only the error's words read)."""
    assert study_module.MAX_FAILURES_IN_A_ROW == 10
    study = _study_with(tmp_path, 0)
    attrs = [{"error": "RuntimeError: injected"}] * 5 + [over_cap_attrs] + [{"error": "RuntimeError: injected"}] * 4
    for trial_attrs in attrs:
        trial = study.ask()
        study_module.load_space(TINY_SPACE).sample(trial)
        for key, value in trial_attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, state=TrialState.FAIL)
    study_module._worker(_args(tmp_path, N))
    assert len(runs) == N and _states(tmp_path) == Counter(FAIL=10, COMPLETE=N)


def test_a_trial_failed_with_its_own_error_is_not_taken_for_one_over_the_cap(tmp_path):
    """Only a trial marked ``over_cap`` (or, in an old study, whose error starts with
    ``OverCap:``) is taken for one failed as past the cap: a trial failed with another error,
    or with none recorded (its worker died), is a failure."""
    study = _study_with(tmp_path, 0)
    for attrs in ({"error": "RuntimeError: OverCap: in the message"}, {}, {"over_cap": False, "error": "KeyError: 'x'"}):
        trial = study.ask()
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, state=TrialState.FAIL)
    assert [study_module._failed_over_cap(t) for t in study.trials] == [False, False, False]


def test_another_workers_running_trial_does_not_break_a_run_of_failures(tmp_path, runs):
    """Failures in a row are counted past a trial still running on another worker: 5 failed
    trials, one running elsewhere, 5 more failed are 10 failures in a row
    (MAX_FAILURES_IN_A_ROW), so this worker starts no trial."""
    study = _study_with(tmp_path, 0)
    for number in range(11):
        trial = study.ask()
        study_module.load_space(TINY_SPACE).sample(trial)
        if number != 5:  # trial 5 stays RUNNING
            trial.set_user_attr("error", "RuntimeError: injected")
            study.tell(trial, state=TrialState.FAIL)
    study_module._worker(_args(tmp_path, N))
    assert runs == [] and _states(tmp_path) == Counter(FAIL=10, RUNNING=1)


class _CountingStudy:
    """A study whose ``get_trials`` calls (each a query of the storage) are counted."""

    def __init__(self, study) -> None:
        self._study, self.reads = study, 0

    def get_trials(self, *args, **kwargs):
        self.reads += 1
        return self._study.get_trials(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._study, name)


@pytest.mark.parametrize("finished, room", [(N, False), (N - 1, True)], ids=["at-the-cap", "room"])
def test_a_poll_for_room_reads_the_studys_trials_once(tmp_path, finished, room):
    """One poll of the wait for room (the study at the cap: stop; one short: run a trial)
    reads the study's trials from the storage once, however many questions it asks of them
    (the run dirs to set aside, the counts, the failures in a row). Before: three reads a
    poll, each a query of the shared database from every worker."""
    study = _CountingStudy(_study_with(tmp_path, finished))
    assert study_module._wait_for_room(study, N, out=tmp_path) is room
    assert study.reads == 1


def test_a_trial_failed_as_past_the_cap_is_not_logged_as_a_failure():
    """Optuna's two WARNING lines for a trial a worker started past --trials (failed unrun on
    purpose, OverCap) are dropped; `--workers 2` printed "Trial 4 failed with value None." for
    it. Another trial's failure keeps both lines."""
    import logging
    import sys

    from lstmlite.search.study import OverCap, _BriefInterrupts

    def record(message, error=None):
        exc_info = None
        if error is not None:
            try:
                raise error
            except type(error):
                exc_info = sys.exc_info()
        return logging.LogRecord("optuna.study._optimize", logging.WARNING, __file__, 1, message, None, exc_info)

    brief = _BriefInterrupts()
    assert not brief.filter(record("Trial 4 failed with parameters: {} because of the following error: OverCap()",
                                   OverCap("trial 4 not run")))
    assert not brief.filter(record("Trial 4 failed with value None."))
    assert brief.filter(record("Trial 5 failed with parameters: {} because of the following error: KeyError('x')",
                               KeyError("x")))
    assert brief.filter(record("Trial 5 failed with value None."))
