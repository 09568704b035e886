"""Distributed training (torchrun, DDP on gloo): two CPU processes against one.

The oracle is the one-process trainer. With the same *global* batch (train.batch_size,
split evenly over the processes) and no dropout, DDP's averaged gradient of each step
is the one-process gradient of the same rows, up to float summation order (two half
batch means averaged instead of one mean: ~1e-7 relative). So:

- one step: gradients equal to 1e-6 (rtol 1e-5, atol 1e-7), every step of an epoch to
  1e-5, including a last batch that splits unevenly or leaves one rank without a row;
- a whole run (basic_motions, 4 epochs): weights within 1e-5 and the test accuracy
  within one test example (1/40): rounding-level weight differences may flip at most a
  borderline prediction, never more;
- resume of an interrupted two-process run: bit-identical to the uninterrupted one
  (same processes, same order of operations).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import lstmlite
from lstmlite.cli.main import main as cli_main
from lstmlite.train.distributed import shard_batches

WORKER = Path(__file__).with_name("ddp_worker.py")
SRC = Path(lstmlite.__file__).resolve().parents[1]
TRAIN_ARGS = ["train", "--data", "basic_motions", "--model.hidden_size=8", "--train.epochs=4", "--train.lr=0.02",
              "--train.batch_size=8", "--train.device=cpu", "--json"]  # CPU (gloo) wherever the tests run
COMPRESS_ARGS = ["compress", "--recipe", "prune-agp-80", "--max-epochs", "2", "--json"]
TIMEOUT = 300
# Two processes sum a batch's gradients in another order than one process (each its half,
# then the all-reduce), so the weights agree to rounding, amplified by Adam (a gradient
# near zero becomes a step of up to lr). Measured after these runs: < 1e-5 with PyTorch's
# AVX-512 kernels, 6.6e-5 with its AVX2 ones (AVX-512 hidden: benchmarks/avx2_view.py).
# A wrong split (a rank training on the other's data, a missed all-reduce) moves weights
# by steps of lr = 0.02: 200x this bound.
WEIGHT_ATOL = 1e-4


def _env(**extra: str) -> dict[str, str]:
    # this checkout's lstmlite; one thread per process so runs are comparable bit for bit
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env


def _torchrun(*args: str, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(command, env=_env(**env), capture_output=True, text=True, timeout=TIMEOUT)


def _worker_module():
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# -- the sharding, without processes -------------------------------------------------

@pytest.mark.parametrize("n,batch,world", [(73, 8, 2), (75, 8, 2), (64, 8, 2), (3, 8, 2), (50, 6, 3)])
def test_shards_are_the_one_process_batches(n, batch, world):
    seed, epoch = 5000, 3
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).numpy()
    shards = [list(shard_batches(n, batch, seed, epoch, num_replicas=world, replica=r)) for r in range(world)]
    steps = -(-n // batch)
    assert all(len(s) == steps for s in shards)  # every rank steps together (DDP needs it)
    for k in range(steps):
        expected = order[k * batch:(k + 1) * batch]
        rows = np.concatenate([s[k][0] for s in shards if s[k][1] > 0])
        assert sorted(rows) == sorted(expected)  # the same rows, none twice, none padded in
        weights = [s[k][1] for s in shards]
        for (part, weight) in (s[k] for s in shards):
            assert weight == pytest.approx(world * len(part) / len(expected)) or (weight == 0 and len(part) == 1)
        assert sum(weights) == pytest.approx(world)  # DDP's mean of weighted means = the batch mean


def test_global_batch_must_split_evenly():
    with pytest.raises(ValueError, match="batch_size=9 is not a multiple of the 2 processes"):
        next(shard_batches(10, 9, 0, 1, num_replicas=2, replica=0))


# -- two processes --------------------------------------------------------------------

@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    """One torchrun launch of the worker's API checks (gradients, interrupt + resume)."""
    out = tmp_path_factory.mktemp("ddp_api")
    proc = _torchrun(str(WORKER), "api", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_two_processes_give_the_one_process_gradients(api_run):
    worker = _worker_module()
    for n in (73, 75):
        two = load_file(str(api_run / f"grads_{n}.safetensors"))
        one = worker.grads_per_step(n, 8)
        assert sorted(two) == sorted(one) and len({k.split(".")[0] for k in one}) == -(-n // 8)
        for key in one:
            step = int(key.split(".")[0])
            tol = dict(rtol=1e-5, atol=1e-7) if step == 1 else dict(rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(two[key], one[key], **tol, msg=lambda m, key=key: f"{n} rows, {key}: {m}")


def test_resume_of_a_two_process_run_continues_identically(api_run):
    reference = load_file(str(api_run / "uninterrupted.safetensors"))
    resumed = load_file(str(api_run / "resumed.safetensors"))
    assert sorted(reference) == sorted(resumed)
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key
    # checkpoints came from rank 0 only: epochs 1-4 (uninterrupted), 1 (interrupted at 2), 2-4 (resumed)
    rank0, rank1 = json.loads((api_run / "calls.json").read_text())
    assert rank0 == [1, 2, 3, 4, 1, 2, 3, 4] and rank1 == []


def test_rank_0_failures_reach_every_rank_once(api_run):
    rank0, rank1 = (json.loads((api_run / f"peer.rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["on_main"] == ["FileExistsError", "runs/x: a run dir already exists", False]
    # the other ranks stop too, quietly (the CLI prints nothing for them: rank 0 reports it)
    assert rank1["on_main"] == ["PeerFailed", "rank 0 failed: FileExistsError: runs/x: a run dir already exists",
                                True]
    for seen in (rank0, rank1):
        assert "disagree about the rank" in seen["all_equal"]
        assert seen["ok"] == {"value": 42}
        assert seen["sum"] == [3.0, 1.0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same CLI runs (train, then compress its run) with two processes (through the
    recording worker) and with one."""
    root = tmp_path_factory.mktemp("ddp")
    two = _torchrun(str(WORKER), "cli", str(root / "calls"), "-v", *TRAIN_ARGS, "--out", str(root / "two"), "::",
                    *COMPRESS_ARGS, str(root / "two"), "--out", str(root / "two_c"), DDP_SLOW_EXIT="1")
    out = StringIO()
    with redirect_stdout(out):
        assert cli_main([*TRAIN_ARGS, "--out", str(root / "one"), "--no-progress"]) == 0
        assert cli_main([*COMPRESS_ARGS, str(root / "one"), "--out", str(root / "one_c"), "--no-progress"]) == 0
    return root, two


def test_two_process_cli_run_matches_one_process_and_writes_once(runs):
    root, proc = runs
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = root / "one", root / "two"
    assert _tree(two) == _tree(one)  # the same run dir, checkpoints included
    # rank 0 wrote every checkpoint and the run dir, once each; rank 1 wrote nothing
    assert json.loads((root / "calls.rank0.json").read_text()) == [
        "save_checkpoint e1", "save_checkpoint e2", "save_checkpoint e3", "save_checkpoint e4", "save_run",
        "save_run"]  # the second: compress's run dir
    assert json.loads((root / "calls.rank1.json").read_text()) == []
    assert proc.stdout.count('"run_dir"') == 2  # the metrics are printed once per command
    # -v: rank 0 logs each epoch once; rank 1 stays quiet
    assert [line for line in proc.stderr.splitlines() if "[rank 0] lstmlite.train.trainer: epoch" in line][:1]
    assert "[rank 1]" not in proc.stderr
    a, b = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=WEIGHT_ATOL)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m2["metric"] == pytest.approx(m1["metric"], abs=1 / 40 + 1e-9)
    assert m1["metric"] > 0.25  # the run learned something (4 classes): the comparison means something
    h1, h2 = (json.loads((d / "history.json").read_text()) for d in (one, two))
    assert [h["epoch"] for h in h2] == [h["epoch"] for h in h1] == [1, 2, 3, 4]
    for r1, r2 in zip(h1, h2):
        assert r2["train_loss"] == pytest.approx(r1["train_loss"], rel=1e-5)
        assert r2["lr"] == r1["lr"]


def test_ranks_wait_for_each_other_before_leaving_the_group(runs):
    """A rank that tears the group down while another is still finishing can abort that
    one at exit after a successful run (gloo's threads). Rank 1 reaches the exit a second
    late here: rank 0 must wait for it in the barrier before destroying the group."""
    root, proc = runs
    assert proc.returncode == 0, proc.stderr[-3000:]
    zero, one = (json.loads((root / f"calls.rank{r}.exit.json").read_text()) for r in (0, 1))
    assert [name for name, _ in zero] == [name for name, _ in one] == ["barrier", "destroy"]
    assert zero[1][1] >= one[0][1]  # rank 0 destroyed after rank 1 arrived at the barrier


def test_two_process_compress_recipe_matches_one_process(runs):
    """The recipe's fine-tune steps share the trainer: gradual pruning under DDP gives the
    one-process masks and weights (masks come from weights equal to ~1e-7)."""
    root, proc = runs
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = root / "one_c", root / "two_c"
    assert _tree(two) == _tree(one)
    a, b = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert sorted(a) == sorted(b)
    for key in a:
        assert torch.equal(a[key] == 0, b[key] == 0), f"{key}: another pruning mask"
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=WEIGHT_ATOL)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m1["nonzero_params"] == m2["nonzero_params"] < m1["params"]  # it did prune
    assert m2["metric"] == pytest.approx(m1["metric"], abs=1 / 40 + 1e-9)


@pytest.mark.slow  # two more launches (~40 s on 2 busy cores); resume is covered above without them
def test_crash_of_one_rank_fails_the_run_and_resume_continues_identically(runs, tmp_path):
    root, reference = runs
    assert reference.returncode == 0, reference.stderr[-3000:]
    out = tmp_path / "run"
    crashed = _torchrun(str(WORKER), "cli", str(tmp_path / "calls"), *TRAIN_ARGS, "--out", str(out),
                        DDP_CRASH_EPOCH="2")
    assert crashed.returncode != 0
    assert ("lstmlite train (rank 1): internal error (RuntimeError: injected crash in rank 1 at epoch 2)"
            in crashed.stderr)
    assert (out / "checkpoints" / "last.json").exists() and not (out / "config.json").exists()
    assert json.loads((tmp_path / "calls.rank1.json").read_text()) == []
    # the crashed rank may be out of step with the other: it leaves without waiting for it
    assert [name for name, _ in json.loads((tmp_path / "calls.rank1.exit.json").read_text())] == ["destroy"]
    # --resume through the documented launcher; each rank loads the same checkpoint
    resumed = subprocess.run([sys.executable, "-m", "lstmlite", *TRAIN_ARGS, "--out", str(out), "--resume",
                              "--nproc", "2"], env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = load_file(str(root / "two" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
    h_ref = json.loads((root / "two" / "history.json").read_text())
    assert json.loads((out / "history.json").read_text()) == h_ref


# -- the launcher and its errors, without processes -----------------------------------

def test_nproc_relaunches_the_same_command_without_nproc(monkeypatch, tmp_path):
    """The launcher re-runs the command without --nproc, and the launching process trains
    nothing itself (its processes write --out). Catches the launcher's process training
    the model once more after they finished (a run dir written by it, here where the
    stand-in launcher wrote none)."""
    from lstmlite.cli import common
    from lstmlite.train import distributed as D

    launched = []
    monkeypatch.setattr(D, "launch", lambda n, args: launched.append((n, args)) or 0)
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data", "digits", "--nproc", "2", "--train.epochs=1", "--out", "r"]
    assert cli_main(argv) == 0
    assert launched == [(2, ["train", "--data", "digits", "--train.epochs=1", "--out", "r"])]
    assert not (tmp_path / "r").exists()
    assert common._without_nproc(["compress", "r", "--nproc=3", "--out", "c"]) == ["compress", "r", "--out", "c"]
    assert D.torchrun_command(2, ["train"])[1:] == ["-m", "torch.distributed.run", "--standalone",
                                                    "--nproc_per_node=2", "-m", "lstmlite", "train"]


@pytest.mark.parametrize("argv,env,message", [
    (["--nproc", "0"], {}, "--nproc must be at least 1, got 0"),
    (["--nproc", "2"], {"WORLD_SIZE": "2"}, "already running under torchrun"),
    (["--nproc", "2", "--train.epochs=0"], {}, "epochs must be at least 1"),  # checked before launching
])
def test_nproc_errors_are_one_line(argv, env, message, monkeypatch, capsys):
    from lstmlite.train import distributed as D

    monkeypatch.setattr(D, "launch", lambda n, args: pytest.fail("launched"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli_main(["train", "--data", "digits", "--out", "r", *argv]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_failed_launch_says_how_to_continue(monkeypatch, capsys):
    from lstmlite.train import distributed as D

    monkeypatch.setattr(D, "launch", lambda n, args: 1)
    assert cli_main(["train", "--data", "digits", "--out", "r", "--nproc", "2"]) == 2
    err = capsys.readouterr().err
    assert "a process failed (exit 1" in err and "--resume" in err


def test_more_processes_than_gpus_is_refused_before_joining(monkeypatch):
    from lstmlite.train import distributed as D

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda *a, **k: pytest.fail("joined"))
    with pytest.raises(ValueError, match="2 processes on this machine but 1 CUDA device"):
        D.join_process_group("auto")
    # device=cpu never touches CUDA: it would join (gloo), which the stub above refuses
    with pytest.raises(pytest.fail.Exception, match="joined"):
        D.join_process_group("cpu")


def test_peer_failure_is_not_printed_again(monkeypatch, capsys):
    from lstmlite.train.distributed import PeerFailed

    train_package = importlib.import_module("lstmlite.train")  # the attribute is the train() function

    def fit(*args, **kwargs):
        raise PeerFailed("rank 0 failed: FileExistsError: runs/x")

    monkeypatch.setattr(train_package, "fit", fit)
    assert cli_main(["train", "--data", "digits", "--out", "r"]) == 1
    assert capsys.readouterr().err == ""
