"""One trial: a point of the space -> train -> compress -> fine-tune -> evaluate -> measure.

Example:
    >>> record = run_trial(point, data_config, "out/trials/0003", report=None)  # doctest: +SKIP
    >>> record["val_metric"], record["size_bytes"], record["size_kind"]          # doctest: +SKIP
    (0.95, 1460, 'lsl')
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import torch

from ..io import save_run
from ..nn.models import build_model
from ..train.run import SMALL_SPLIT, _fill_data_sizes, _metrics_json, default_model_config, default_train_config
from ..train.trainer import TrainConfig, evaluate, primary_metric_name, train
from .objectives import deployable_bytes, latency_us, ram_bytes

__all__ = ["run_trial", "build_config", "profile_model", "Pruned", "SMALL_SPLIT_PASSES"]

log = logging.getLogger(__name__)

#: Loaded data per data config: a worker runs many trials on the same data, and loading
#: (parsing, splitting) can cost more than a tiny trial's training.
_DATA_CACHE: dict[str, Any] = {}


def _resolve(config: dict[str, Any]):
    """Like :func:`lstmlite.train.run.resolve_config`, with the data loaded once per process."""
    from ..data import DataSpec, load_data

    key = json.dumps(config["data"], sort_keys=True)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one data set at a time: bounded memory
        _DATA_CACHE[key] = load_data(DataSpec.from_dict(config["data"]))
    data = _DATA_CACHE[key]
    model_config = {**default_model_config(data), **config["model"]}
    return data, _fill_data_sizes(model_config, data), TrainConfig.from_dict(config["train"])


#: Passes over a small training split (fewer than ``lstmlite.train.run.SMALL_SPLIT``, 128,
#: sequences) that make one trial epoch, fine-tune epochs included. The shipped spaces'
#: epochs (4 in ``default``) are a quick look on a split of hundreds of sequences; on
#: basic_motions' 32 series at batch 32 they were 4 optimizer steps, and every trial of
#: ``lstmlite search --data basic_motions`` stayed near chance, every airline trial worse
#: than the seasonal naive forecast.
SMALL_SPLIT_PASSES = 10


def _passes_per_epoch(data: Any) -> int:
    """Trainer passes that make one trial epoch on ``data`` (``SMALL_SPLIT_PASSES`` on a
    small training split, fewer than ``SMALL_SPLIT`` sequences, where
    :func:`lstmlite.train.default_train_config` gives its small-split options; else 1);
    None data (not loaded): 1. (A large split's default options -- fewer passes at batch
    64 -- are not a trial's: a point gives its own epochs.)"""
    return SMALL_SPLIT_PASSES if data is not None and len(data.train) < SMALL_SPLIT else 1

_MODEL_KEYS = ("cell", "num_layers", "hidden_size", "bidirectional", "embed_dim", "proj_size", "pooling")
#: Keys of a point that belong to the data section (text: the vocabulary kept, most
#: frequent first -- the embedding's rows, usually most of a text model's bytes).
_DATA_KEYS = ("max_vocab",)


class Pruned(Exception):
    """Raised by the ``report`` hook when the study gives up on a trial."""


def build_config(point: dict[str, Any], data_config: dict[str, Any], seed: int, data: Any = None) -> dict[str, Any]:
    """A ``fit``-style config ({"data", "model", "train"}) from a point of the space.

    With ``data`` (the loaded data) and a small training split (fewer than 128 sequences,
    where :func:`lstmlite.train.default_train_config` gives options), a trial epoch is
    ``SMALL_SPLIT_PASSES`` (10) passes: ``train.epochs`` is the point's epochs times 10,
    and a point without ``batch_size`` trains at that function's batch (16, or 8 under 64
    sequences) instead of 32. ``lr`` stays the point's.
    """
    model = {k: point[k] for k in _MODEL_KEYS if k in point and point[k] is not None}
    proj = int(model.pop("proj_size", 0) or 0)
    if proj > 0 and model.get("cell", "lstm") == "lstm":
        # the model builder takes an LSTM's projection (LSTMP) among its rnn_options;
        # other cells have none, so a point pairing them with proj_size builds them without
        model["rnn_options"] = {"proj_size": proj}
    if model.get("cell") == "grouped_lstm":
        model["cell"] = "glstm"  # the model builder's name for GroupedLSTM
    passes = _passes_per_epoch(data)
    small = default_train_config(data) if passes > 1 else {}
    train_cfg = {"epochs": int(point.get("epochs", 4)) * passes, "lr": float(point.get("lr", 1e-2)),
                 "batch_size": int(point.get("batch_size", small.get("batch_size", 32))), "seed": seed, "device": "cpu",
                 "patience": 0, "checkpoint": False, "schedule": "cosine"}
    data = {**data_config, **{k: int(point[k]) for k in _DATA_KEYS if point.get(k) is not None}}
    return {"data": data, "model": model, "train": train_cfg}


class _Reporter:
    """Trainer callback: hands each trial epoch's validation metric to the study (pruning);
    a trial epoch is ``passes`` of the trainer's (see ``SMALL_SPLIT_PASSES``)."""

    def __init__(self, report: Callable[[int, float], None] | None, metric_name: str, passes: int = 1) -> None:
        self.report, self.metric_name, self.passes = report, metric_name, passes

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.report is not None and self.metric_name in metrics and epoch % self.passes == 0:
            self.report(epoch // self.passes, float(metrics[self.metric_name]))


def _compress(model: torch.nn.Module, point: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply what the point asks for (low rank, magnitude pruning, int weights); returns the configs."""
    from ..compress import compress_
    from ..compress.lowrank.config import LowRankConfig
    from ..compress.prune.config import MagnitudePruneConfig
    from ..compress.quantize.config import FakeQuantConfig, WeightQuantConfig

    applied = []
    rank = int(point.get("rank", 0) or 0)
    if rank > 0 and rank < int(point.get("hidden_size", rank + 1)):
        applied.append(LowRankConfig(rank=rank))
    sparsity = float(point.get("sparsity", 0.0) or 0.0)
    if sparsity > 0:
        applied.append(MagnitudePruneConfig(sparsity=sparsity))
    bits = int(point.get("weight_bits", 32))
    if bits < 32:
        # QAT: fake quantization during the fine-tune; else post-training weight-only.
        applied.append(FakeQuantConfig(bits=bits) if point.get("qat") else WeightQuantConfig(bits=bits))
    for config in applied:
        compress_(model, config)
    return [c.to_dict() for c in applied]


def profile_model(model: torch.nn.Module, point: dict[str, Any]) -> dict[str, Any]:
    """Bytes, step latency and RAM of ``model`` compressed as ``point`` says, measured on a
    copy before any training. RAM and latency depend on the architecture and the
    compression only; the .lsl file's bytes nearly so: the trained model's codes may
    include a different number of zeros, which the writer may store as a bitmask (tests
    hold the two within 5 %).

    Returns:
        ``size_bytes``, ``size_kind``, ``latency_us``, ``latency_kind``, ``ram_bytes``,
        ``ram_kind`` (:func:`~lstmlite.search.objectives.ram_bytes`).
    """
    import copy
    import tempfile

    probe = copy.deepcopy(model).cpu().eval()
    # Initial values can be special (zero biases, ζ/ν at round numbers) and then fit in
    # IEEE half, which the file stores in 2 bytes; trained values never do. A small
    # perturbation makes the probe's file the size of the trained model's.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in probe.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * (1e-3 + 1e-2 * float(param.abs().mean())))
    _compress(probe, point)
    with tempfile.TemporaryDirectory() as tmp:
        lsl = Path(tmp) / "probe.lsl"
        size, size_kind = deployable_bytes(probe, lsl)
        lat, lat_kind = latency_us(lsl if size_kind == "lsl" else None, probe)
        if lat_kind == "measured":  # the lower of two medians: a busy moment inflates one, and the
            lat = min(lat, latency_us(lsl, probe)[0])  # pre-check would skip a point that fits on it
    ram, ram_kind = ram_bytes(probe)
    return {"size_bytes": int(size), "size_kind": size_kind, "latency_us": float(lat), "latency_kind": lat_kind,
            "ram_bytes": int(ram), "ram_kind": ram_kind}


def run_trial(point: dict[str, Any], data_config: dict[str, Any], out: str | Path, seed: int = 0,
              report: Callable[[int, float], None] | None = None,
              skip_if: Callable[[dict[str, Any]], str | None] | None = None) -> dict[str, Any]:
    """Train, compress, evaluate and measure one point; write its run dir ``out``.

    Args:
        point: the sampled parameters (see :mod:`lstmlite.search.space`).
        data_config: the ``data`` section (``{"source": ..., "task": ...}``).
        out: the trial's run dir (config.json, model.safetensors, metrics.json, model.lsl).
        report: ``report(epoch, val_metric)``; may raise :class:`Pruned`.
        skip_if: ``skip_if(profile)`` -> a reason not to train this point (e.g. its file
            is over the size budget), or None. ``profile`` is :func:`profile_model`'s.

    Returns:
        the trial record: val/test metric, size_bytes + size_kind ("lsl"|"estimated"),
        latency_us + latency_kind ("measured"|"mac-model"), ram_bytes + ram_kind
        ("mcu-export"|"estimated"), the point. A
        skipped point is not trained and writes no run dir: its record has ``skipped``
        (the reason), the untrained model's validation metric and ``test_metric`` None.
    """
    out = Path(out)
    data, _, _ = _resolve(build_config(point, data_config, seed))
    config = build_config(point, data_config, seed, data)
    data, model_config, train_config = _resolve(config)
    passes = _passes_per_epoch(data)
    torch.manual_seed(seed)
    model = build_model(model_config)
    metric_name = primary_metric_name(data)
    if skip_if is not None:
        profile = profile_model(model, point)
        reason = skip_if(profile)
        if reason:
            cpu = torch.device("cpu")
            val = evaluate(model.cpu(), data, data.val, train_config.eval_batch_size, cpu)
            log.info("trial %s not trained: %s", out.name, reason)
            return {"metric_name": metric_name, "val_metric": float(val[metric_name]),
                    "val_loss": float(val.get("loss", float("nan"))), "test_metric": None,
                    **profile, "params": int(sum(p.numel() for p in model.parameters())), "run_dir": None,
                    "point": point, "skipped": reason}
    result = train(model, data, train_config, callbacks=[_Reporter(report, metric_name, passes)], progress=False)
    applied = _compress(model, point)
    finetune = int(point.get("finetune_epochs", 1))
    if applied and finetune > 0:
        ft = TrainConfig.from_dict({**train_config.to_dict(), "epochs": finetune * passes,
                                    "lr": train_config.lr * 0.3})
        train(model, data, ft, progress=False)
    model.cpu()
    cpu = torch.device("cpu")
    # test_fraction=0: no test split, so no test metric (not one measured on nothing)
    test = evaluate(model, data, data.test, train_config.eval_batch_size, cpu) if len(data.test) else None
    val = evaluate(model, data, data.val, train_config.eval_batch_size, cpu)
    metrics = {**_metrics_json(model, data, test, val), "best_epoch": result.best_epoch}
    run_config = {"task": data.task, "data": data.spec.to_dict(), "train": train_config.to_dict(),
                  "stats": data.stats, "class_names": list(data.class_names), "search_point": point,
                  "search_passes_per_epoch": passes,
                  "search_compression": applied}
    if applied:
        from ..compress.api import compression_state

        run_config["compression"] = compression_state(model)  # how load_run rebuilds the parametrizations
    vocab = data.vocab.to_dict() if data.vocab is not None else None
    out.mkdir(parents=True, exist_ok=True)
    size, size_kind = deployable_bytes(model, out / "model.lsl")
    lat, lat_kind = latency_us(out / "model.lsl" if size_kind == "lsl" else None, model)
    ram, ram_kind = ram_bytes(model)
    metrics.update({"size_bytes": size, "size_kind": size_kind, "latency_us": lat, "latency_kind": lat_kind,
                    "ram_bytes": ram, "ram_kind": ram_kind})
    save_run(out, model, run_config, metrics=metrics, history=result.history, vocab=vocab, overwrite=True)
    return {"metric_name": metric_name, "val_metric": float(val[metric_name]),
            "val_loss": float(val.get("loss", float("nan"))), "test_metric": None if test is None else float(test[metric_name]),
            "size_bytes": int(size), "size_kind": size_kind, "latency_us": float(lat), "latency_kind": lat_kind,
            "ram_bytes": int(ram), "ram_kind": ram_kind, "params": metrics["params"], "run_dir": str(out),
            "point": point}
