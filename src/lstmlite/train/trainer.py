"""The training loop: one loop for classification, language modelling and forecasting.

What it does, per epoch: shuffle (seeded), train with gradient clipping, validate,
step the LR schedule, keep the best weights (by the task's primary validation
metric), stop early when validation stops improving, and write a resumable
checkpoint atomically. CPU runs are seeded and deterministic; on CUDA it uses mixed
precision.

Example:
    >>> from lstmlite.data import load_data
    >>> from lstmlite.nn import SequenceClassifier
    >>> data = load_data("japanese_vowels")                          # doctest: +SKIP
    >>> model = SequenceClassifier(input_size=12, hidden_size=32, n_classes=9)
    >>> result = train(model, data, TrainConfig(epochs=5))         # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from time import perf_counter
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import distributed as D
from . import metrics as M
from . import seq2seq as S2S
from . import sequence as S
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["TrainConfig", "TrainResult", "Callback", "Batch", "train", "evaluate", "predict", "iterate_batches",
           "primary_metric_name", "set_seed", "select_device"]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Training hyper-parameters (the ``train`` section of config.json).

    Args:
        epochs: maximum passes over the training split.
        batch_size: sequences per optimizer step.
        lr: Adam learning rate.
        weight_decay: AdamW-style decoupled weight decay.
        clip_grad_norm: clip the global gradient norm to this (0 disables).
        schedule: ``cosine`` (to 0 over ``epochs``), ``plateau`` (halve when the
            validation metric stalls for 2 epochs) or ``none``.
        patience: stop after this many epochs without validation improvement (0 = never).
        seed: seeds Python, NumPy and torch; CPU runs are then repeatable bit for bit.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        amp: mixed precision on CUDA (ignored on CPU).
        eval_batch_size: batch size for validation/test.
        checkpoint: write ``checkpoints/last.*`` every epoch when an output dir is given.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip_grad_norm: float = 1.0
    schedule: str = "cosine"
    patience: int = 10
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    eval_batch_size: int = 256
    checkpoint: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        for name in ("batch_size", "eval_batch_size"):  # each named: a recipe's error must say which
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.schedule not in ("cosine", "plateau", "none"):
            raise ValueError(f"schedule must be cosine, plateau or none, got {self.schedule!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        for name in ("patience", "clip_grad_norm", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if not 0 <= self.seed < 2**32:  # NumPy's seed range; checked here, not first at train()'s set_seed
            raise ValueError(f"seed must be in [0, 2**32 - 1], got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown train option(s) {sorted(unknown)}; known: {sorted(known)}")
        from ..typed import coerce_fields

        return cls(**coerce_fields(cls, data, "train"))


class Callback(Protocol):
    """Hooks the trainer calls (pruning schedules, logging). Both are optional."""

    def on_step(self, step: int) -> None: ...

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...


@dataclass
class Batch:
    """One mini-batch, already on the device. ``lengths`` is None for fixed length."""

    x: Tensor
    y: Tensor
    lengths: Tensor | None
    index: Tensor  # (B,) rows of the split, for losses that need per-row extras


@dataclass
class TrainResult:
    history: list[dict[str, Any]]
    best_epoch: int
    best_val: float
    metric_name: str
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def set_seed(seed: int) -> None:
    """Seed every RNG we use; CPU kernels are deterministic once seeded."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def select_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU. Under torchrun a CUDA rank takes GPU
    ``LOCAL_RANK``."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda was asked for but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and D.is_distributed():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise ValueError(f"process with LOCAL_RANK {local} has no CUDA device of its own "
                             f"({torch.cuda.device_count()} here): run fewer processes per machine, or device=cpu")
        return torch.device("cuda", local)
    return torch.device(name)


def primary_metric_name(data: Any) -> str:
    """``accuracy`` (classify, tag), ``cer`` (ctc), ``exact_match`` (seq2seq), ``bits_per_char`` (char LM),
    ``perplexity`` (word LM), ``mae`` (forecast)."""
    return M.primary_metric(data.task, getattr(data.spec, "level", "word"))


def _is_variable(split: Any) -> bool:
    return bool(split.lengths is not None and split.x.ndim >= 2 and np.any(split.lengths != split.x.shape[1]))


def _make_batch(split: Any, index: Tensor, device: torch.device, variable: bool) -> Batch:
    """Rows ``index`` of a split as a Batch, trimmed to its longest sequence."""
    idx = index.numpy()
    lengths = torch.as_tensor(split.lengths[idx]) if variable else None
    x = split.x[idx]
    if lengths is not None:
        x = x[:, : int(lengths.max())]
    return Batch(x=torch.as_tensor(x).to(device), y=torch.as_tensor(split.y[idx]).to(device), lengths=lengths,
                 index=index)


def iterate_batches(split: Any, batch_size: int, device: torch.device, shuffle: bool = False,
                    generator: torch.Generator | None = None) -> Iterator[Batch]:
    """Mini-batches of a data split, each trimmed to its longest sequence."""
    n = len(split.y)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    variable = _is_variable(split)
    for start in range(0, n, batch_size):
        yield _make_batch(split, order[start:start + batch_size], device, variable)


def _training_batches(split: Any, config: TrainConfig, device: torch.device,
                      epoch: int) -> Iterator[tuple[Batch, float]]:
    """One epoch of (batch, loss weight). One process: the seeded shuffle, weight 1. Under
    DDP: this rank's share of the same global batches (see ``distributed.shard_batches``)."""
    seed = config.seed * 1000  # the one-process generator's seed is seed * 1000 + epoch
    if not D.is_distributed():
        generator = torch.Generator().manual_seed(seed + epoch)
        for batch in iterate_batches(split, config.batch_size, device, shuffle=True, generator=generator):
            yield batch, 1.0
        return
    variable = _is_variable(split)
    for rows, weight in D.shard_batches(len(split.y), config.batch_size, seed, epoch):
        yield _make_batch(split, torch.from_numpy(rows), device, variable), weight


def _forward(model: nn.Module, task: str, batch: Batch) -> Tensor:
    if task == "seq2seq":  # teacher forcing over the batch's longest target
        return model(batch.x, batch.lengths, S2S.trim_targets(batch.y))
    if task == "lm":
        return model(batch.x)[0]
    return model(batch.x, batch.lengths)


def _loss(task: str, output: Tensor, y: Tensor, lengths: Tensor | None = None) -> Tensor:
    if task == "seq2seq":
        return S2S.seq2seq_loss(output, y)
    if task == "ctc":
        return S.ctc_loss(output, y, lengths)
    if task == "tag":
        return S.tag_loss(output, y)
    if task == "classify":
        return nn.functional.cross_entropy(output.float(), y)
    if task == "lm":
        return nn.functional.cross_entropy(output.float().reshape(-1, output.shape[-1]), y.reshape(-1))
    return nn.functional.mse_loss(output.float(), y.float())


@torch.no_grad()
def predict(model: nn.Module, data: Any, split: Any, batch_size: int = 256,
            device: torch.device | None = None) -> np.ndarray:
    """Model outputs over a split: logits (N, C) / (N, T, V) (tag, ctc: (N, T, C) with
    T the split's padded length), or forecasts (N, horizon)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = [_forward(model, data.task, batch).float().cpu() for batch in
               iterate_batches(split, batch_size, device)]
    model.train(was_training)
    if data.task in ("tag", "ctc"):  # batches are trimmed to their longest row: pad back to T
        steps = split.x.shape[1]
        outputs = [nn.functional.pad(o, (0, 0, 0, steps - o.shape[1])) for o in outputs]
    return torch.cat(outputs).numpy()


@torch.no_grad()
def evaluate(model: nn.Module, data: Any, split: Any, batch_size: int = 256,
             device: torch.device | None = None) -> dict[str, float]:
    """All metrics of the task on one split.

    classify: accuracy, macro_f1, loss; tag: per-step accuracy, macro_f1,
    sequence_accuracy, loss; ctc: cer, wer, sequence_accuracy (greedy decoding), loss; seq2seq: exact_match,
    bleu, chrf, cer (greedy decoding), loss; lm: loss (nats/token), perplexity,
    bits_per_char (char level) or bits_per_token; forecast: mae, rmse (original
    units), the seasonal-naive baseline's mae/rmse, and ``mae_vs_naive`` (< 1 beats it).
    """
    if len(split) == 0:  # lm would score nothing as perplexity 1.0; the rest would crash in torch.cat
        raise ValueError(f"{data.name}: cannot evaluate a split with no rows")
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    task = data.task
    if task == "seq2seq":  # decoded greedily and scored as strings
        model.train(was_training)
        return S2S.evaluate_seq2seq(model, data, split, batch_size=batch_size)
    if task == "lm":
        total, count = 0.0, 0
        for batch in iterate_batches(split, batch_size, device):
            logits = _forward(model, task, batch)
            total += float(nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                       batch.y.reshape(-1), reduction="sum"))
            count += batch.y.numel()
        model.train(was_training)
        nll = total / max(count, 1)
        bits_key = "bits_per_char" if getattr(data.spec, "level", "word") == "char" else "bits_per_token"
        return {"loss": nll, "perplexity": M.perplexity(nll), bits_key: M.bits_per_token(nll)}
    outputs = predict(model, data, split, batch_size, device)
    model.train(was_training)
    if task == "ctc":
        return S.evaluate_ctc(outputs, split, list(data.class_names))
    if task == "tag":
        return S.evaluate_tag(outputs, split, data.n_classes)
    if task == "classify":
        pred = outputs.argmax(-1)
        loss = float(nn.functional.cross_entropy(torch.as_tensor(outputs), torch.as_tensor(split.y)))
        return {"accuracy": M.accuracy(split.y, pred), "macro_f1": M.macro_f1(split.y, pred, data.n_classes),
                "loss": loss}
    # forecast: report in the series' own units
    mean = float(data.stats.get("target_mean", 0.0))
    std = float(data.stats.get("target_std", 1.0))
    truth = split.y * std + mean
    pred = outputs.reshape(split.y.shape) * std + mean
    result = {"mae": M.mae(truth, pred), "rmse": M.rmse(truth, pred)}
    if split.naive is not None:
        naive = split.naive * std + mean
        result.update(naive_mae=M.mae(truth, naive), naive_rmse=M.rmse(truth, naive))
        result["mae_vs_naive"] = result["mae"] / result["naive_mae"] if result["naive_mae"] else math.inf
    return result


def require_rows(data: Any, parts: Sequence[str], why: str) -> None:
    """Refuse, as one line, data whose ``parts`` splits are empty (tiny data, or a fraction
    of 0): an empty split would otherwise crash inside ``torch.cat`` or, for a language
    model, score a perplexity of 1.0 without a word."""
    from ..data import DataError

    empty = [part for part in parts if len(getattr(data, part)) == 0]
    if empty:
        sizes = ", ".join(f"{name} {len(split)}" for name, split in data.splits.items())
        raise DataError(f"{data.name}: the {empty[0]} split has no rows ({sizes}); {why}")


#: A 1-minute load average of this many per core makes a machine busy. Just above one
#: per core, torch's 2 threads still beat one (TREC's default epoch: 1.21 s against 1.5 s
#: at load 2.3 on 2 cores, this process's own previous run counted in it); at load 7 they
#: took 8 times as long.
BUSY_LOAD_PER_CORE = 2.0
#: Whether this process has warned that the machine is busy (once: a recipe or a search
#: trains many times in one process).
_busy_warned = False


def _busy_cpu_note() -> str | None:
    """Why training on this CPU may crawl, or None: torch runs several threads per process
    but the machine has at least twice as many runnable processes as cores (1-minute load
    average; ``BUSY_LOAD_PER_CORE``).

    Each LSTM time step is a small parallel region whose threads wait for each other;
    on a busy machine one of them is often descheduled, so the others spin until its
    next time slice. Measured on 2 shared cores (load average about 7): TREC's default
    epoch took 52.6 s with torch's 2 threads against 6.6 s with one, same weights.

    Example::

        _busy_cpu_note()  # on a 2-core laptop running two other trainings
        # 'the machine is busy (load average 6.2 on 2 cores) and torch runs 2 threads: ...'
    """
    threads = torch.get_num_threads()
    if threads < 2 or not hasattr(os, "getloadavg"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load = os.getloadavg()[0]
    if load < BUSY_LOAD_PER_CORE * cores:
        return None
    return (f"the machine is busy (load average {load:.1f} on {cores} cores) and torch runs {threads} threads: "
            f"they wait for each other's time slices, which can make training several times slower; start it "
            f"with OMP_NUM_THREADS=1 (one thread per process) or when the machine is idle")


def _warn_if_busy() -> None:
    """Log :func:`_busy_cpu_note` at WARNING, once per process."""
    global _busy_warned
    note = None if _busy_warned else _busy_cpu_note()
    if note:
        _busy_warned = True
        log.warning(note)


def _make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over ``model``'s parameters, fused into one kernel on CPU and CUDA.

    The same update as torch's default (per-tensor) AdamW, to rounding, but the default
    walks every parameter tensor in several elementwise passes: on the reference text
    model (a 7,950 x 128 embedding, 1.15 M parameters, dense gradients every step) that
    is 7.4 ms a step against 1.0 ms fused, a fifth of a TREC epoch on one core.

    Example:
        >>> _make_optimizer(nn.Linear(4, 2), TrainConfig(), torch.device("cpu")).defaults["fused"]
        True
    """
    fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in model.parameters())
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                             fused=fused or None)


def _make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, higher: bool):
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max" if higher else "min",
                                                          factor=0.5, patience=2)
    return None


def train(
    model: nn.Module,
    data: Any,
    config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    callbacks: Sequence[Any] = (),
    extra_loss: Callable[[nn.Module, Batch, Tensor], Tensor] | None = None,
    resume: bool = False,
    progress: bool | str = True,
    fingerprint: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data.train``, selecting the best epoch on ``data.val``.

    Args:
        model: a task model (its output must fit ``data.task``).
        data: a :class:`lstmlite.data.TaskData`.
        config: hyper-parameters (defaults: :class:`TrainConfig`).
        out_dir: where ``checkpoints/`` go (None: no checkpoints).
        callbacks: objects with optional ``on_step(step)`` / ``on_epoch_end(epoch, metrics)``.
        extra_loss: ``f(model, batch, output) -> scalar`` added to the task loss
            (distillation, group-lasso penalties).
        resume: continue from ``out_dir/checkpoints/last.json``.
        progress: show a progress bar; a string shows one labelled with it (what runs:
            ``"recipe tiny step 2 (prune)"``), True labels it ``"train"``.
        fingerprint: what defines the run (default: ``{"train": config}``); saved in
            each checkpoint, and a resume with a different one is refused.

    Returns:
        TrainResult; the model is left holding the best validation weights, and
        ``extra["train_seconds"]`` is the training's wall time, the epochs done before a
        resume included (the checkpoint carries them).

    Under torchrun (a process group of N > 1, see :mod:`lstmlite.train.distributed`)
    every rank calls this with the same arguments: the model is wrapped in DDP,
    ``config.batch_size`` is the global batch (split evenly over the ranks), validation
    runs on rank 0 and is broadcast, and only rank 0 writes checkpoints and shows the
    bar. On resume every rank loads the same checkpoint.
    """
    started = perf_counter()
    config = config or TrainConfig()
    require_rows(data, ("train", "val"), "training picks its epoch on val: give more data or a larger "
                                         "--data.val_fraction")
    distributed = D.is_distributed()
    main = D.is_main()
    if distributed and config.batch_size % D.world_size():
        raise ValueError(f"train.batch_size={config.batch_size} is not a multiple of the {D.world_size()} "
                         f"processes (it is the global batch, split evenly): choose a multiple of {D.world_size()}")
    set_seed(config.seed)
    device = select_device(config.device)
    if device.type == "cpu" and main:
        _warn_if_busy()
    model.to(device)
    metric_name = primary_metric_name(data)
    higher = M.higher_is_better(metric_name)
    optimizer = _make_optimizer(model, config, device)
    scheduler = _make_scheduler(config, optimizer, higher)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    checkpoint_dir = Path(out_dir) / "checkpoints" if out_dir is not None else None
    fingerprint = fingerprint if fingerprint is not None else {"train": config.to_dict()}

    history: list[dict[str, Any]] = []
    best_val = -math.inf if higher else math.inf
    best_val_loss = math.inf
    best_epoch, step, start_epoch, stale = 0, 0, 1, 0
    seconds_before = 0.0  # training time of the epochs a resumed run did before its interruption
    best_state = copy.deepcopy(model.state_dict())
    if resume:
        if checkpoint_dir is None:
            raise ValueError("resume needs the output dir of the interrupted run")
        # Every rank reads the same files (--out on a shared folder) and restores the same
        # RNG states; only rank 0 tidies the folder.
        state = load_checkpoint(checkpoint_dir, model, optimizer, scheduler, config=fingerprint, tidy=main)
        D.all_equal((state["epoch"], state["checkpoint_sha256"]), "the checkpoint resumed from")
        history, step = state["history"], state["step"]
        best_val, best_epoch, stale = state["best_val"], state["best_epoch"], state["stale"]
        best_val_loss = state.get("best_val_loss", math.inf)
        # Checkpoints written before train_seconds was saved lack it: their earlier
        # epochs count as 0 s (the resume itself works as before; no version change).
        seconds_before = float(state.get("train_seconds", 0.0))
        start_epoch = state["epoch"] + 1
        best_state = {k: v.to(device) for k, v in state["best_state"].items()}
        if main:
            log.info("resuming at epoch %d of %d", start_epoch, config.epochs)
    # DDP all-reduces (averages) gradients in backward; constructing it broadcasts rank
    # 0's weights, so every rank starts from the same ones.
    net: nn.Module = model
    if distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    stopped_early = False
    label = progress if isinstance(progress, str) and progress else "train"
    # The bar counts optimizer steps, not epochs: a run of a few long passes (a language
    # model's default 2) would otherwise sit at 0 % for minutes. Each pass is the same
    # number of global batches, one process or DDP (see distributed.shard_batches).
    per_epoch = math.ceil(len(data.train) / config.batch_size)
    bar = tqdm(desc=label, unit="step", disable=not (progress and main), initial=(start_epoch - 1) * per_epoch,
               total=config.epochs * per_epoch, leave=False)
    shown: dict[str, str] = {}
    try:
        for epoch in range(start_epoch, config.epochs + 1):
            model.train()
            total_loss, batches = 0.0, 0
            shown["epoch"] = f"{epoch}/{config.epochs}"
            bar.set_postfix(shown)
            for batch, weight in _training_batches(data.train, config, device, epoch):
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device_type=device.type, enabled=use_amp):
                    output = _forward(net, data.task, batch)
                    loss = _loss(data.task, output, batch.y, batch.lengths)
                    if extra_loss is not None:
                        loss = loss + extra_loss(model, batch, output)
                if distributed:
                    # this rank's share of the global batch; DDP's average then gives the
                    # one-process gradient of the global batch's mean loss
                    loss = loss * weight
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"training diverged at epoch {epoch} (loss {float(loss)}); lower lr")
                scaler.scale(loss).backward()
                if config.clip_grad_norm:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                step += 1
                for callback in callbacks:
                    if hasattr(callback, "on_step"):
                        callback.on_step(step)
                total_loss += float(loss.detach())
                batches += 1
                bar.update(1)
                if batches % 10 == 0:  # this pass's mean loss so far, between the epochs' validation
                    shown["loss"] = f"{total_loss / batches:.3f}"
                    bar.set_postfix(shown, refresh=False)
            if distributed:  # the global batches' mean losses, summed (weights make the mean exact)
                total_loss = D.all_reduce_sum([total_loss])[0] / D.world_size()
            # Validation once, on rank 0; every rank gets its result, so early stopping, the
            # schedule and the best epoch agree everywhere.
            val = D.on_main(lambda: evaluate(model, data, data.val, config.eval_batch_size, device))
            current = val[metric_name]
            # Ties in a coarse metric (accuracy on a small validation split) go to the
            # epoch with the lower validation loss, not simply the first one.
            tie_better = current == best_val and val.get("loss", math.inf) < best_val_loss
            improved = (current > best_val if higher else current < best_val) or tie_better
            # A callback that is still changing the model (a pruning schedule before its
            # final sparsity) says so with ``complete = False``: such epochs can't be "best",
            # and the latest weights stand in until one can.
            selectable = all(getattr(callback, "complete", True) for callback in callbacks)
            if not selectable:
                improved = False
                best_state = copy.deepcopy(model.state_dict())
            elif improved:
                best_val, best_epoch, stale = current, epoch, 0
                best_val_loss = val.get("loss", math.inf)
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            record = {"epoch": epoch, "train_loss": total_loss / max(batches, 1),
                      "lr": optimizer.param_groups[0]["lr"], **{f"val_{k}": v for k, v in val.items()}}
            history.append(record)
            if main:
                log.info("epoch %d: train_loss %.4f val_%s %.4f", epoch, record["train_loss"], metric_name, current)
            shown.update(loss=f"{record['train_loss']:.3f}", **{f"val_{metric_name}": f"{current:.4f}"})
            bar.set_postfix(shown)
            for callback in callbacks:
                if hasattr(callback, "on_epoch_end"):
                    callback.on_epoch_end(epoch, val)
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(current)
            elif scheduler is not None:
                scheduler.step()
            if checkpoint_dir is not None and config.checkpoint and main:
                save_checkpoint(checkpoint_dir, model, optimizer, scheduler, {
                    "epoch": epoch, "step": step, "history": history, "best_val": best_val,
                    "best_epoch": best_epoch, "best_val_loss": best_val_loss, "stale": stale,
                    "train_seconds": seconds_before + perf_counter() - started},
                    best_state=best_state if (improved or not selectable) else None, config=fingerprint)
            if config.patience and stale >= config.patience:
                stopped_early = True
                if main:
                    log.info("early stop at epoch %d (best epoch %d)", epoch, best_epoch)
                break
    finally:
        # however training ends (Ctrl-C included): a message printed next starts on a
        # line of its own, not glued to the end of the bar's
        bar.close()
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(history=history, best_epoch=best_epoch, best_val=best_val, metric_name=metric_name,
                       stopped_early=stopped_early,
                       extra={"train_seconds": seconds_before + perf_counter() - started})
