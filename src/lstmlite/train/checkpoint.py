"""Atomic, pickle-free training checkpoints for ``--resume``.

A checkpoint is two files in ``<run>/checkpoints/``:
    last.safetensors  model tensors (``model.*``), optimizer tensors (``optim.<i>.<key>``),
                      the RNG state (``rng.torch``)
    last.json         epoch, step, best metric and epoch, history, optimizer param
                      groups and scalar state, scheduler state, format version

Both are written to temporary names and renamed, JSON last: a crash mid-write leaves
the previous checkpoint intact, and a JSON file always points at complete tensors.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..io import read_json, write_json

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 1


def _split_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state dict → (tensors for safetensors, JSON-able rest)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    trainer_state: dict[str, Any],
) -> Path:
    """Write ``last.safetensors`` + ``last.json`` atomically; returns the JSON path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # Tied weights alias one storage; safetensors refuses aliases, so clone them apart.
    seen: set[int] = set()
    for key, value in list(tensors.items()):
        if value.data_ptr() in seen:
            tensors[key] = value.clone()
        seen.add(tensors[key].data_ptr())
    optim_tensors, optim_rest = _split_optimizer(optimizer)
    tensors.update(optim_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".last.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp)
        os.replace(tmp, directory / "last.safetensors")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    payload = {
        "checkpoint_version": CHECKPOINT_VERSION,
        **trainer_state,
        "optimizer": optim_rest,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
    }
    write_json(directory / "last.json", payload)
    return directory / "last.json"


def load_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNG from ``directory``; returns trainer state."""
    directory = Path(directory)
    meta_path = directory / "last.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: no checkpoint to resume from")
    meta = read_json(meta_path)
    if meta.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ValueError(f"{meta_path}: checkpoint version {meta.get('checkpoint_version')!r} is not supported")
    tensors = load_file(str(directory / "last.safetensors"))
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(model_state)
    optim_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    for index, scalars in meta["optimizer"]["scalars"].items():
        optim_state.setdefault(int(index), {}).update(scalars)
    optimizer.load_state_dict({"state": optim_state, "param_groups": meta["optimizer"]["param_groups"]})
    if scheduler is not None and meta.get("scheduler") is not None:
        scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    return {k: v for k, v in meta.items() if k not in ("optimizer", "scheduler", "checkpoint_version")}
