"""torchrun / DDP glue: process group, sharded batches, rank-0-only work, the launcher.

``torchrun --nproc_per_node=N -m lstmlite train …`` (or ``lstmlite train --nproc N``,
which runs exactly that) starts N processes; each reads ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` from its environment. :func:`join_process_group` joins them (gloo for CPU
tensors, nccl for CUDA ones) and the trainer then:

- wraps the model in ``DistributedDataParallel`` (gradients all-reduced, averaged);
- splits every *global* batch of ``train.batch_size`` rows across the ranks with a
  seeded ``DistributedSampler`` (``set_epoch`` each epoch) whose permutation is the
  one-process run's, so step k sees the same rows in both (:func:`shard_batches`);
- weights each rank's mean loss by its share of the global batch, so the averaged
  gradient is the one-process gradient even where the last batch splits unevenly;
- validates on rank 0 only and broadcasts the result (:func:`on_main`), so early
  stopping, the LR schedule and the best epoch agree on every rank;
- writes run dirs, checkpoints, progress bars and logs on rank 0 only.

Example (two CPU processes on one machine):
    $ torchrun --standalone --nproc_per_node=2 -m lstmlite train --data digits --out runs/digits
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler

from .._text import one_line

__all__ = ["is_distributed", "rank", "world_size", "is_main", "env_rank", "env_world_size", "join_process_group",
           "shard_batches", "on_main", "all_reduce_sum", "all_equal", "lockstep", "PeerFailed", "launch",
           "torchrun_command"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a collective waits for a silent peer before failing (a peer that *dies* is
#: noticed by torchrun at once, which then stops the others). Long enough for rank 0 to
#: validate a large split while the others wait in the broadcast.
TIMEOUT = timedelta(minutes=int(os.environ.get("LSTMLITE_DIST_TIMEOUT_MIN", "30")))

#: :func:`lockstep` sections entered and not (yet) left normally by this process.
_open_sections = 0


class PeerFailed(RuntimeError):
    """Raised on ranks != 0 when rank 0 failed in :func:`on_main`; rank 0 reports the
    error itself, so the CLI prints nothing more for this one (``quiet``)."""

    quiet = True


def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun set it (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def env_rank() -> int:
    """``RANK`` as torchrun set it (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0") or 0)


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank in the group (0 outside one)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Processes in the group (1 outside one)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or a plain one-process run): the one that writes, logs and shows bars."""
    return rank() == 0


def join_process_group(device: str = "auto") -> bool:
    """Join torchrun's process group, once per process; True when training is distributed.

    Does nothing outside torchrun (``WORLD_SIZE`` unset or 1) or when a group exists
    already (the caller's own, or ours from an earlier ``fit``: a second
    ``init_process_group`` against torchrun's store can hang, so ours stays joined until
    the process exits). Otherwise initialises ``gloo`` for CPU tensors, plus ``nccl`` for
    CUDA ones when ``device`` (the ``train.device`` option) lets training use CUDA and a
    GPU is present (each rank on GPU ``LOCAL_RANK``).

    Raises:
        ValueError: more processes on this machine than GPUs while training on CUDA.
    """
    if env_world_size() <= 1:
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed; run one process")
    if dist.is_initialized():
        return is_distributed()
    backend = "gloo"
    if device != "cpu" and torch.cuda.is_available():
        local, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
        per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", str(local + 1)))
        if per_machine > gpus:
            # nccl cannot run two ranks on one GPU; say so before any rank hangs in it
            raise ValueError(f"{per_machine} processes on this machine but {gpus} CUDA device(s): "
                             f"use at most {gpus} processes per machine, or --train.device=cpu")
        torch.cuda.set_device(local)
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend=backend, timeout=TIMEOUT)
    atexit.register(_leave)
    log.debug("rank %d of %d joined (%s)", dist.get_rank(), dist.get_world_size(), backend)
    return True


@contextlib.contextmanager
def lockstep() -> Iterator[None]:
    """Mark work every rank does in step (the same collectives, in the same order).

    Leaving it normally means this rank has done all of them, so at exit it waits for
    the others before tearing the group down (:func:`_leave`); a rank that leaves it by
    an exception may be out of step, and exits without waiting.

    Example:
        >>> with lockstep():
        ...     pass  # a fit: DDP steps, on_main broadcasts
    """
    global _open_sections
    _open_sections += 1
    yield
    _open_sections -= 1  # not reached on an exception: the section stays open


def _leave() -> None:
    """At exit: wait for the other ranks, then destroy the group.

    Why wait: a rank that destroys its group while another is still finishing (writing
    the run dir) closes the connections under the other's gloo threads: the likely cause
    of the one successful two-process run seen to abort at its teardown ("terminate
    called without an active exception", in CI on a busy machine; not reproduced in 25
    runs under load since). Ranks that may be out of step (an open :func:`lockstep`
    section) skip the wait: a barrier against a rank stuck in another collective would
    only hang until the timeout. The wait is as long as any collective's (:data:`TIMEOUT`):
    a script may give rank 0 more work after training (a long evaluation) while the
    others are done; a peer that dies instead is noticed by torchrun, which stops us.
    """
    if not dist.is_initialized():
        return
    if _open_sections == 0 and dist.get_world_size() > 1:
        try:
            if dist.get_backend() == dist.Backend.GLOO:
                dist.monitored_barrier(timeout=TIMEOUT, wait_all_ranks=True)
            else:
                dist.barrier()
        except Exception as err:  # noqa: BLE001 - at exit: report and tear down all the same
            log.warning("rank %d: the other processes did not reach the exit (%s); leaving without them",
                        dist.get_rank(), one_line(err))
    dist.destroy_process_group()


def shard_batches(n: int, batch_size: int, seed: int, epoch: int, num_replicas: int | None = None,
                  replica: int | None = None) -> Iterator[tuple[np.ndarray, float]]:
    """This rank's rows of every global batch of one epoch, with its loss weight.

    The global order is the one-process order (``randperm`` seeded ``seed + epoch``, as
    ``DistributedSampler`` draws it); global batch k is positions ``[kB, (k+1)B)`` of it
    and rank r holds the positions ≡ r (mod world) — exactly what ``DistributedSampler``
    hands rank r, cut into local batches of B / world. The sampler pads the order to a
    multiple of world with repeated rows; those are dropped here. A rank with no real
    row in the last batch keeps one row with weight 0, so every rank runs the same
    number of steps (DDP's all-reduce needs that) and adds nothing.

    Args:
        n: rows in the split. batch_size: the global batch B (a multiple of world).
        seed: the sampler seed (the trainer passes ``train.seed * 1000``, its own
            one-process seed). epoch: ``DistributedSampler.set_epoch``'s argument.
        num_replicas, replica: world size and rank (default: the process group's).

    Yields:
        (rows (b,) int64 indices into the split, weight) where ``weight`` =
        ``world × rows / rows of the global batch``: a rank's mean loss times it,
        averaged over ranks by DDP, is the global batch's mean loss.
    """
    world = world_size() if num_replicas is None else num_replicas
    me = rank() if replica is None else replica
    if batch_size % world:
        raise ValueError(f"train.batch_size={batch_size} is not a multiple of the {world} processes; "
                         f"the global batch is split evenly across them: choose a multiple of {world}")
    local = batch_size // world
    sampler = DistributedSampler(range(n), num_replicas=world, rank=me, shuffle=True, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    order = np.fromiter(iter(sampler), dtype=np.int64)
    position = me + world * np.arange(len(order))  # where each of our rows sits in the global order
    for start in range(0, len(order), local):
        rows, where = order[start:start + local], position[start:start + local]
        real = where < n
        batch_start = (start // local) * batch_size
        global_rows = min(batch_size, n - batch_start)
        if real.any():
            yield rows[real], world * float(real.sum()) / global_rows
        else:
            yield rows[:1], 0.0


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 and give its result to every rank.

    Rank 0's exception is re-raised there and reported to the others as
    :class:`PeerFailed`, so no rank waits for a result that never comes. Outside a
    process group it simply returns ``fn()``.
    """
    if not is_distributed():
        return fn()
    payload: list[Any] = [None]
    error: BaseException | None = None
    if rank() == 0:
        try:
            payload[0] = ("ok", fn())
        except Exception as err:  # noqa: BLE001 - handed to the other ranks, then re-raised
            error = err
            payload[0] = ("error", f"{type(err).__name__}: {err}")
    dist.broadcast_object_list(payload, src=0, device=torch.device("cpu"))
    if error is not None:
        raise error
    status, value = payload[0]
    if status == "error":
        raise PeerFailed(f"rank 0 failed: {value}")
    return value


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """Sum floats over ranks (float64, on CPU); the values themselves outside a group."""
    if not is_distributed():
        return [float(v) for v in values]
    tensor = torch.tensor(list(values), dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_equal(value: Any, what: str) -> None:
    """Fail on every rank when ranks disagree about ``value`` (e.g. the checkpoint each loaded)."""
    if not is_distributed():
        return
    values: list[Any] = [None] * world_size()
    dist.all_gather_object(values, value)
    if any(v != values[0] for v in values):
        raise RuntimeError(f"the processes disagree about {what}: {values}; every rank must see the same files "
                           f"(a shared folder for --out)")


def torchrun_command(nproc: int, module_args: Sequence[str]) -> list[str]:
    """The command ``lstmlite … --nproc N`` runs: torchrun on this machine, N processes.

    ``--standalone`` picks a free local rendezvous port, so parallel runs don't collide.
    """
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "lstmlite", *module_args]


def launch(nproc: int, module_args: Sequence[str]) -> int:
    """Run ``lstmlite module_args…`` as ``nproc`` torchrun processes; returns the exit code.

    Each process gets ``OMP_NUM_THREADS`` = cores / nproc (unless set), so N processes
    don't fight over the same cores.
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    command = torchrun_command(nproc, module_args)
    log.info("launching: %s", " ".join(command))
    proc = subprocess.Popen(command, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached torchrun and every worker too: let them stop on their own
        # (checkpoints are written atomically) instead of killing torchrun under them.
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait()
        raise
