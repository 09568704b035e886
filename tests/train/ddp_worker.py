"""Run by the DDP tests under torchrun (never collected by pytest: no ``test_`` prefix).

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/train/ddp_worker.py api OUT
        in a process group this script owns (as a user's own script would), through
        ``lstmlite.train.train``: (1) one epoch of the toy task; rank 0 writes the
        all-reduced gradients of every step to OUT/grads_<n>.safetensors; (2) a run, and
        the same run interrupted (Ctrl-C in every process) at epoch 2 then resumed; rank 0
        writes both final weights to OUT/{uninterrupted,resumed}.safetensors and which
        rank wrote checkpoints to OUT/calls.json.
    ... ddp_worker.py cli LOG [lstmlite CLI arguments ...] [:: more lstmlite arguments ...]
        runs ``lstmlite`` (each command in turn) in every rank, recording which rank calls
        ``save_run`` and ``save_checkpoint`` in LOG.rank<r>.json; ``DDP_CRASH_EPOCH=K`` makes rank 1 raise
        at the end of epoch K (a crash in one process). At exit each rank appends what it
        did to the group, with the time, to LOG.rank<r>.exit.json (``barrier``,
        ``destroy``); ``DDP_SLOW_EXIT=S`` makes rank 1 reach the exit S seconds late.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import save_file

from lstmlite.data.containers import Split


def toy_classify(n_train: int):
    """Variable-length sign-of-sum sequences (the same generator the tests use)."""
    from types import SimpleNamespace

    from lstmlite.data.containers import TaskData

    rng = np.random.default_rng(0)

    def split(n):
        x = rng.normal(size=(n, 10, 3)).astype(np.float32)
        lengths = rng.integers(3, 11, size=n).astype(np.int64)
        for i, length in enumerate(lengths):
            x[i, length:] = 0
        return Split(x, (x[:, :, 0].sum(1) > 0).astype(np.int64), lengths)

    return TaskData(train=split(n_train), val=split(32), test=split(32), name="toy", task="classify", input_size=3,
                    n_classes=2, class_names=["neg", "pos"], vocab=None,
                    spec=SimpleNamespace(level="word", to_dict=lambda: {}), stats={})


def grads_per_step(n_train: int, batch_size: int) -> dict[str, torch.Tensor]:
    """Train one epoch; return ``{"<step>.<param>": grad}`` as the optimizer saw them."""
    from lstmlite.nn import SequenceClassifier
    from lstmlite.train import TrainConfig, train

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)
    seen: dict[str, torch.Tensor] = {}

    class Record:
        def on_step(self, step: int) -> None:  # after optimizer.step, before the next zero_grad
            for name, param in model.named_parameters():
                seen[f"{step}.{name}"] = param.grad.detach().clone()

    config = TrainConfig(epochs=1, batch_size=batch_size, lr=1e-2, clip_grad_norm=0.0, schedule="none", seed=5,
                         device="cpu")
    train(model, toy_classify(n_train), config, callbacks=[Record()], progress=False)
    return seen


def interrupted_and_resumed(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Final weights of an uninterrupted run and of one stopped at epoch 2 and resumed."""
    from lstmlite.nn import SequenceClassifier
    from lstmlite.train import TrainConfig, train

    class Interrupt:
        def on_epoch_end(self, epoch, metrics):
            if epoch == 2:
                raise KeyboardInterrupt

    def model():
        torch.manual_seed(0)
        return SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)

    data, config = toy_classify(75), TrainConfig(epochs=4, batch_size=8, lr=1e-2, seed=1, device="cpu")
    reference = model()
    train(reference, data, config, out_dir=out / "uninterrupted", progress=False)
    try:
        train(model(), data, config, out_dir=out / "interrupted", callbacks=[Interrupt()], progress=False)
        raise AssertionError("the interrupt did not happen")
    except KeyboardInterrupt:
        pass
    resumed = model()
    train(resumed, data, config, out_dir=out / "interrupted", resume=True, progress=False)
    return {"uninterrupted": reference.state_dict(), "resumed": resumed.state_dict()}


def peer_checks(out: Path) -> None:
    """What each rank sees when rank 0 fails in ``on_main`` and when ranks disagree."""
    from lstmlite.train import distributed as D

    def fail_on_main():
        raise FileExistsError("runs/x: a run dir already exists")

    seen = {}
    try:
        D.on_main(fail_on_main)
    except Exception as err:  # noqa: BLE001 - recorded for the test
        seen["on_main"] = [type(err).__name__, str(err), bool(getattr(err, "quiet", False))]
    try:
        D.all_equal(D.rank(), "the rank")  # differs by construction
    except RuntimeError as err:
        seen["all_equal"] = str(err)
    seen["ok"] = D.on_main(lambda: {"value": 42})
    seen["sum"] = D.all_reduce_sum([D.rank() + 1.0, 0.5])
    (out / f"peer.rank{D.rank()}.json").write_text(json.dumps(seen))


def main_api(out: Path) -> None:
    import importlib

    trainer_module = importlib.import_module("lstmlite.train.trainer")
    calls: list[int] = []
    save_checkpoint = trainer_module.save_checkpoint

    def recording_save_checkpoint(*args, **kwargs):
        calls.append(int(args[4]["epoch"]))
        return save_checkpoint(*args, **kwargs)

    trainer_module.save_checkpoint = recording_save_checkpoint
    dist.init_process_group("gloo")
    try:
        for n in (73, 75):  # 73 = 9 x 8 + 1: rank 1 has no row in the last batch; 75: 2 + 1 rows
            seen = grads_per_step(n, 8)
            if dist.get_rank() == 0:
                save_file(seen, str(out / f"grads_{n}.safetensors"))
        weights = interrupted_and_resumed(out)
        peer_checks(out)
        every = [None] * dist.get_world_size()
        dist.all_gather_object(every, calls)
        if dist.get_rank() == 0:
            for name, state in weights.items():
                save_file({k: v.contiguous() for k, v in state.items()}, str(out / f"{name}.safetensors"))
            (out / "calls.json").write_text(json.dumps(every))
    finally:
        dist.destroy_process_group()


def main_cli(log: Path, argv: list[str]) -> int:
    import importlib

    from lstmlite.cli.main import main

    # importlib: the package root re-exports a function named ``train`` over the module
    io_module = importlib.import_module("lstmlite.io")
    run_module = importlib.import_module("lstmlite.train.run")
    trainer_module = importlib.import_module("lstmlite.train.trainer")
    from lstmlite.train import distributed as D

    rank = D.env_rank()
    calls: list[str] = []
    save_run, save_checkpoint, all_reduce = run_module.save_run, trainer_module.save_checkpoint, D.all_reduce_sum

    def recording_save_run(*args, **kwargs):
        calls.append("save_run")
        return save_run(*args, **kwargs)

    def recording_save_checkpoint(*args, **kwargs):
        calls.append(f"save_checkpoint e{args[4]['epoch']}")
        return save_checkpoint(*args, **kwargs)

    epochs = {"done": 0}
    crash_at = int(os.environ.get("DDP_CRASH_EPOCH", "0"))

    def crashing_all_reduce(values):  # called once per epoch, after its last step
        epochs["done"] += 1
        if rank == 1 and epochs["done"] == crash_at:
            raise RuntimeError(f"injected crash in rank 1 at epoch {crash_at}")
        return all_reduce(values)

    exits: list[list] = []

    def recording(name: str, fn):
        def wrapped(*args, **kwargs):
            exits.append([name, time.time()])
            Path(f"{log}.rank{rank}.exit.json").write_text(json.dumps(exits))  # at exit: no later chance
            return fn(*args, **kwargs)
        return wrapped

    dist.monitored_barrier = recording("barrier", dist.monitored_barrier)
    dist.destroy_process_group = recording("destroy", dist.destroy_process_group)
    run_module.save_run = io_module.save_run = recording_save_run
    trainer_module.save_checkpoint = recording_save_checkpoint
    trainer_module.D.all_reduce_sum = crashing_all_reduce
    commands, current = [], []
    for item in argv:
        if item == "::":
            commands.append(current)
            current = []
        else:
            current.append(item)
    try:
        for command in [*commands, current]:
            code = main(command)
            if code:
                return code
        if rank == 1:
            time.sleep(float(os.environ.get("DDP_SLOW_EXIT", "0")))
        return 0
    finally:
        Path(f"{log}.rank{rank}.json").write_text(json.dumps(calls))


if __name__ == "__main__":
    mode, target = sys.argv[1], Path(sys.argv[2])
    if mode == "api":
        main_api(target)
    else:
        sys.exit(main_cli(target, sys.argv[3:]))
