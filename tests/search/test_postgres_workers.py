"""Two worker processes share one study in a real PostgreSQL server; one is killed in
the middle of a trial. No completed trial is lost and the study still finishes.

The server is Debian's ``postgresql`` package (scripts/system-deps-search.txt), started
here in a temp dir, listening on 127.0.0.1 only, as a non-root user. A missing
PostgreSQL fails this test (with the reason), it does not skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lstmlite.search.study import _storage

from .conftest import TINY_SPACE, make_tiny_npz

TRIALS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_db_user(cmd: list[str]) -> list[str]:
    # initdb refuses to run as root: run the server as the package's `postgres` user.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def postgres_url():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.fail("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                    "apt-get install postgresql (listed in scripts/system-deps-search.txt)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.fail("psycopg2 is not installed: pip install 'lstmlite[search]'")
    bindir = Path(bins[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="lstmlite-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    subprocess.run(_as_db_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "lstm"]),
                   check=True, capture_output=True)
    subprocess.run(_as_db_user([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                                "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root}", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://lstm@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_db_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _worker(data: str, url: str, out: Path) -> subprocess.Popen:
    code = ("import sys; from lstmlite.search import search; "
            f"search({data!r}, 'classify', trials={TRIALS}, out={str(out)!r}, storage={url!r}, "
            f"space={TINY_SPACE!r}, resume=True, heartbeat=1)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def test_two_workers_one_killed_mid_trial(postgres_url, tmp_path):
    import optuna
    from optuna.trial import TrialState

    data = str(make_tiny_npz(tmp_path / "tiny.npz"))
    out = tmp_path / "s"
    killed, survivor = _worker(data, postgres_url, out), _worker(data, postgres_url, out)

    def trials():
        try:  # through the workers' own storage, which waits out their schema creation
            return optuna.load_study(study_name="lstmlite-search", storage=_storage(postgres_url, out, 1)).trials
        except KeyError:  # the study is not created yet
            return []

    # Kill the first worker while it is inside a trial: both workers busy at once.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        running = [t for t in trials() if t.state == TrialState.RUNNING]
        if len(running) >= 2:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the two workers never ran trials at the same time")
    complete_before = {t.number: t.values for t in trials() if t.state == TrialState.COMPLETE}
    killed.send_signal(signal.SIGKILL)
    killed.wait()

    _, err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, err.decode()[-2000:]
    if any(t.state == TrialState.RUNNING for t in trials()):
        # The survivor finished its trials within the heartbeat's grace period (2 s), before
        # the dead worker's heartbeat went stale. The next worker to start after that fails
        # the stale trial (as a worker joining later on a cluster would).
        time.sleep(2.5)
        late = _worker(data, postgres_url, out)
        _, err = late.communicate(timeout=60)
        assert late.returncode == 0, err.decode()[-2000:]
    final = trials()
    by_number = {t.number: t for t in final}
    for number, values in complete_before.items():  # nothing completed is lost
        assert by_number[number].state == TrialState.COMPLETE and by_number[number].values == values
    assert sum(t.state == TrialState.COMPLETE for t in final) >= TRIALS  # the study finished
    assert not any(t.state == TrialState.RUNNING for t in final)  # the dead worker's trial was failed
    assert any(t.state == TrialState.FAIL for t in final)
    assert (out / "pareto.json").is_file()
