"""A several-worker search interrupted by a signal to its parent process alone (a job
scheduler's or a supervising script's ``kill -INT PID`` or ``kill PID``; a terminal's
Ctrl-C reaches the whole process group). Before: the worker processes ran on, training
trial after trial (the parent, SIGINTed, waited for them at exit; SIGTERMed, it died and
left them with none)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

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


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_parent_alone_stops_the_worker_processes(tmp_path, sig):
    """``lstmlite search --workers 2``, signalled once a trial runs: the parent stops both
    workers (none left running 30 s on; they take a second or two), exits as Ctrl-C makes
    it (status 130, ``interrupted``), and the study reads back with every trial finished:
    those the workers were running failed, none left RUNNING."""
    data = make_tiny_npz(tmp_path / "tiny.npz")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(ONE_EPOCH_SPACE))
    out = tmp_path / "s"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, "-m", "lstmlite", "search", "--data", str(data), "--task", "classify",
                               "--space", str(space), "--trials", "100", "--workers", "2", "--no-prune",
                               "--out", str(out)],
                              env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
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
    assert parent.returncode == 130 and err.splitlines()[-1] == "interrupted", err[-2000:]
    study = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{out / 'study.db'}")
    states = Counter(t.state.name for t in study.trials)
    assert states["RUNNING"] == 0 and states["COMPLETE"] + states["FAIL"] == len(study.trials), states
