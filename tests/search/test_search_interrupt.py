"""A several-worker search interrupted by a signal to its parent process alone (a job
scheduler's or a supervising script's ``kill -INT PID`` or ``kill PID``; a terminal's
Ctrl-C reaches the whole process group). Before: the worker processes ran on, training
trial after trial (the parent, SIGINTed, waited for them at exit; SIGTERMed, it died and
left them with none). And a one-worker search (run in the calling process) SIGTERMed:
before, it died at once with its trial RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml

from .conftest import make_tiny_npz

#: One epoch, no fine-tuning: trials of about a second, so the signal finds some running.
ONE_EPOCH_SPACE = {"params": {"hidden_size": {"low": 4, "high": 8, "step": 4}},
                   "fixed": {"cell": "gru", "epochs": 1, "finetune_epochs": 0, "lr": 0.03}}


def _workers(parent: int) -> list[int]:
    """The pids of ``parent``'s multiprocessing workers (``spawn_main`` on their command
    line: not its resource tracker), from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            pids.append(int(entry))
    return pids


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_search(tmp_path: Path, workers: int) -> tuple[subprocess.Popen, Path]:
    """``lstmlite search --workers WORKERS`` of a hundred one-epoch trials on tiny data, in
    a session of its own (a signal to it reaches it alone); returns the process and OUT."""
    data = make_tiny_npz(tmp_path / "tiny.npz")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(ONE_EPOCH_SPACE))
    out = tmp_path / "s"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "lstmlite", "search", "--data", str(data), "--task", "classify",
                             "--space", str(space), "--trials", "100", "--workers", str(workers), "--no-prune",
                             "--out", str(out)],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    return proc, out


def _check_stopped_as_ctrl_c(returncode: int, err: str, out: Path) -> None:
    """Exit 130 with ``interrupted``, as Ctrl-C; every trial of the study finished (those
    the stop caught failed, none RUNNING), each failed one logged as one line without a
    traceback (_BriefInterrupts)."""
    assert returncode == 130 and err.splitlines()[-1] == "interrupted", (returncode, err[-2000:])
    study = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{out / 'study.db'}")
    states = Counter(t.state.name for t in study.trials)
    assert states["RUNNING"] == 0 and states["COMPLETE"] + states["FAIL"] == len(study.trials), states
    assert "Traceback" not in err and err.count("stopped: the search was interrupted") == states["FAIL"], err[-2000:]


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_parent_alone_stops_the_worker_processes(tmp_path, sig):
    """``lstmlite search --workers 2``, signalled once a trial runs: the parent stops both
    workers (none left running 30 s on; they take a second or two), exits as Ctrl-C makes
    it (status 130, ``interrupted``), and the study reads back with every trial finished:
    those the workers were running failed, none left RUNNING, each logged as one line
    without a traceback."""
    parent, out = _start_search(tmp_path, workers=2)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120  # a bound for a loaded machine, not a speed
        while time.monotonic() < deadline and parent.poll() is None:
            workers = workers if len(workers) == 2 else _workers(parent.pid)
            if len(workers) == 2 and (out / "trials").is_dir() and any((out / "trials").iterdir()):
                break
            time.sleep(0.1)
        assert len(workers) == 2 and parent.poll() is None, parent.stderr.read() if parent.poll() is not None else ""
        os.kill(parent.pid, sig)
        _, err = parent.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert [pid for pid in workers if _alive(pid)] == [], "worker processes left running"
    finally:
        for pid in [parent.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait()
    _check_stopped_as_ctrl_c(parent.returncode, err, out)


def test_sigterm_to_a_one_worker_search_fails_its_trial_and_exits_as_ctrl_c_does(tmp_path):
    """``lstmlite search --workers 1`` (the search runs in this one process), SIGTERMed once
    a trial runs: it stops as Ctrl-C stops it (status 130, ``interrupted``), the trial it
    was running failed rather than left RUNNING (one log line, no traceback). Before:
    SIGTERM's default ended the process at once (status -15 here) with that trial RUNNING
    in study.db."""
    proc, out = _start_search(tmp_path, workers=1)
    try:
        deadline = time.monotonic() + 120  # a bound for a loaded machine, not a speed
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "trials").is_dir() and any((out / "trials").iterdir()):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    _check_stopped_as_ctrl_c(proc.returncode, err, out)


def _frame_of(module: str, inner=None):
    """A frame of code in ``module`` (its globals' ``__name__``); with ``inner`` (a callable
    returning a frame), that frame calls it and what it returns is returned, so nested
    calls build a stack, outermost module first. A signal handler given the innermost
    frame sees the stack a signal landing there would."""
    code = compile("inner() if inner is not None else sys._getframe()", f"<{module}>", "eval")
    return eval(code, {"__name__": module, "inner": inner, "sys": sys})


def test_the_one_worker_signal_handlers_are_taken_only_from_the_default_and_given_back():
    """:class:`_InterruptsOutsideStorage` (around a one-worker search in the caller's
    process) takes SIGTERM and SIGINT where their handlers are Python's defaults, leaves a
    program's own handler alone, and restores every handler on leaving; outside the main
    thread it changes nothing."""
    import threading

    from lstmlite.search.study import _interrupt_outside_storage, _InterruptsOutsideStorage

    def mine(signum, frame):
        pass

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, mine)
    try:
        with _InterruptsOutsideStorage():
            inside = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        assert inside == (_interrupt_outside_storage, mine)
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == (signal.default_int_handler, mine)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        seen = []

        def in_a_thread():
            with _InterruptsOutsideStorage():
                seen.append(signal.getsignal(signal.SIGTERM))

        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
        assert seen == [signal.SIG_DFL]
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def test_the_parents_signal_notes_give_back_every_handler_and_leave_one_from_c_alone(monkeypatch):
    """:class:`_Signals` (the parent of a several-worker search) notes SIGINT and SIGTERM
    inside and restores the handlers it found on leaving. A handler installed from C
    (``signal.getsignal`` reads it as None) could not be put back, so that signal is not
    taken at all: it keeps its handler inside and after. Planted and failing it: taking
    every signal (leaving raised TypeError, ``signal.signal(s, None)``, or, with the None
    skipped on leaving, left our note installed: Ctrl-C swallowed for good)."""
    from lstmlite.search.study import _Signals

    def mine(signum, frame):
        pass

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, mine)
    try:
        with _Signals() as signals:
            assert signal.getsignal(signal.SIGINT) == signals.note
            signals.note(signal.SIGTERM, None)
        assert signals.received == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) is mine
        real = signal.getsignal
        monkeypatch.setattr(signal, "getsignal", lambda s: None if s == signal.SIGINT else real(s))  # "from C"
        with _Signals() as signals:
            inside = real(signal.SIGINT)
        assert inside is mine and real(signal.SIGINT) is mine
    finally:
        monkeypatch.undo()
        for s, handler in before.items():
            signal.signal(s, handler)


def test_an_interrupt_deferred_out_of_a_storage_call_is_raised_on_leaving_not_lost():
    """A SIGTERM during a storage call is deferred (SIGALRM 50 ms later); the search ending
    before it fires raises it on leaving :class:`_InterruptsOutsideStorage` (or it fires
    inside: either way KeyboardInterrupt) and leaves no alarm pending or SIGALRM taken."""
    from lstmlite.search.study import _interrupt_outside_storage, _InterruptsOutsideStorage

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGALRM)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with pytest.raises(KeyboardInterrupt):
            with _InterruptsOutsideStorage():
                _interrupt_outside_storage(signal.SIGTERM, _frame_of("sqlalchemy.engine.fake"))  # in a storage call
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
        assert signal.getsignal(signal.SIGALRM) == before[signal.SIGALRM]
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, handler in before.items():
            signal.signal(s, handler)


@pytest.mark.parametrize("stack, interruptible", [
    (["optuna.study._optimize", "lstmlite.search.study", "torch.nn.modules"], True),  # training a trial
    (["optuna.study._optimize", "optuna.study._tell"], False),  # telling a trial's result
    (["optuna.study._optimize", "optuna.study.study", "optuna.samplers._tpe"], False),  # asking for a trial
    (["optuna.study._optimize", "lstmlite.search.study", "optuna.trial._trial", "logging"], False),
    # our constraints function, called by the sampler while Optuna tells the result
    (["optuna.study._optimize", "optuna.study._tell", "optuna.samplers._tpe.sampler", "lstmlite.search.study"],
     False),
    (["lstmlite.search.study", "optuna.storages._rdb", "sqlalchemy.engine"], False),
    (["optuna.study._optimize", "lstmlite.search.study", "sqlalchemy.engine"], False),  # ours calling SQL itself
    (["lstmlite.search.study", "json"], True),  # outside optimize(): writing the outputs
])
def test_only_our_code_is_interrupted_never_optunas_bookkeeping_or_a_storage_call(stack, interruptible):
    """The stack's outermost module first. Optuna's ``_run_trial`` handles a
    KeyboardInterrupt from the objective only: one raised while it tells the result (seen
    in CI) replaced the interrupt with an UnboundLocalError and left the trial RUNNING."""
    from lstmlite.search.study import _interruptible

    def build(modules):
        if not modules:
            return None
        rest = build(modules[1:])
        return lambda: _frame_of(modules[0], rest)

    frame = build(stack)()
    assert _interruptible(frame) is interruptible


def test_sigterm_while_optuna_tells_a_result_stops_the_next_trial_not_optuna(monkeypatch, tmp_path):
    """A one-worker search SIGTERMed while Optuna records trial 0's result: the interrupt
    waits until our code runs again (trial 1's training, or on a slow machine our code
    between the trials), so trial 0 is COMPLETE, trial 1 (if begun) FAIL ``interrupted``
    and the search raises KeyboardInterrupt. Before (CI): it landed in
    Optuna's ``_tell_with_warning``, the search died of an UnboundLocalError and trial 0 was
    left RUNNING."""
    from optuna.study import _optimize

    from lstmlite.search import search
    from lstmlite.search import study as study_module

    def fake_run_trial(point, data_config, run_dir, **kwargs):
        if run_dir.name != "0000":  # trial 1
            deadline = time.monotonic() + 30  # the interrupt lands here, 50 ms after the signal
            while time.monotonic() < deadline:
                time.sleep(0.01)
            raise AssertionError("the deferred interrupt never came")
        return {"point": point, "val_metric": 0.5, "size_bytes": 100, "latency_us": 1.0, "ram_bytes": 10}

    tell = _optimize._tell_with_warning
    signalled = []

    def tell_signalled(**kwargs):  # SIGTERM arrives while Optuna's code runs
        if not signalled:
            signalled.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
        return tell(**kwargs)

    code = compile("lambda **kwargs: tell_signalled(**kwargs)", "<optuna.study._tell>", "eval")
    monkeypatch.setattr(_optimize, "_tell_with_warning",
                        eval(code, {"__name__": "optuna.study._tell", "tell_signalled": tell_signalled}))
    monkeypatch.setattr(study_module, "run_trial", fake_run_trial)
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGALRM)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with pytest.raises(KeyboardInterrupt):
            search(str(make_tiny_npz(tmp_path / "tiny.npz")), "classify", trials=3, out=tmp_path / "s",
                   space=ONE_EPOCH_SPACE)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, handler in before.items():
            signal.signal(s, handler)
    assert signalled
    study = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    # trial 1 failed by the interrupt, or none if it landed in our code between the trials
    # (a slow machine: the 50 ms passed before trial 1 began)
    assert [(t.number, t.state.name, t.user_attrs.get("error")) for t in study.trials] in (
        [(0, "COMPLETE", None), (1, "FAIL", "interrupted")], [(0, "COMPLETE", None)])


def test_an_interrupted_trial_is_one_log_line_and_a_real_failure_keeps_its_traceback(monkeypatch, tmp_path,
                                                                                   caplog):
    """A search whose trial 0 raises an error and trial 1 is interrupted (Ctrl-C in its
    training): Optuna's warning for trial 0 keeps its traceback; trial 1 is one line,
    ``trial 1 stopped: the search was interrupted``, with no traceback and no ``failed
    with value None`` line after, and its ``error`` says ``interrupted``. Before: trial 1
    got Optuna's warning ``Trial 1 failed with parameters ... KeyboardInterrupt()`` with the
    traceback of wherever the interrupt landed (in every worker at every stop)."""
    import logging

    from lstmlite.search import search
    from lstmlite.search import study as study_module

    calls = []

    def fake_run_trial(point, data_config, run_dir, **kwargs):
        calls.append(run_dir)
        if len(calls) == 1:
            raise RuntimeError("injected: a real fault")
        raise KeyboardInterrupt

    monkeypatch.setattr(study_module, "run_trial", fake_run_trial)
    optuna_log = logging.getLogger("optuna.study._optimize")
    filters = list(optuna_log.filters)
    optuna.logging.enable_propagation()  # Optuna's records to caplog's handler
    try:
        with caplog.at_level(logging.WARNING, logger="optuna"), pytest.raises(KeyboardInterrupt):
            search(str(make_tiny_npz(tmp_path / "tiny.npz")), "classify", trials=3, out=tmp_path / "s",
                   space=ONE_EPOCH_SPACE)
    finally:
        optuna.logging.disable_propagation()
    records = [r for r in caplog.records if r.name == "optuna.study._optimize"]
    fault = [r for r in records if r.getMessage().startswith("Trial 0 failed with parameters")]
    assert len(fault) == 1 and fault[0].exc_info is not None and isinstance(fault[0].exc_info[1], RuntimeError)
    assert "injected: a real fault" in fault[0].getMessage()
    stopped = [r for r in records if "rial 1 " in r.getMessage()]
    assert [(r.getMessage(), r.exc_info) for r in stopped] == [("trial 1 stopped: the search was interrupted", None)]
    assert "Traceback" not in caplog.text.split("Trial 0 failed with value")[-1]
    assert optuna_log.filters == filters  # taken off when the search ended
    study = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    assert [(t.number, t.state.name, t.user_attrs.get("error")) for t in study.trials] == [
        (0, "FAIL", "RuntimeError: injected: a real fault"), (1, "FAIL", "interrupted")]
