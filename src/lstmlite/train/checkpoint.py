"""Atomic, pickle-free training checkpoints for ``--resume``.

A checkpoint lives in ``<run>/checkpoints/``:
    last.eN.safetensors  model tensors (``model.*``), optimizer tensors
                         (``optim.<i>.<key>``), torch's RNG state (``rng.torch``), epoch N
    best.eM.safetensors  the best weights so far (epoch M), when they were saved
    last.json            the one pointer: the file names above with their SHA-256, epoch,
                         step, best metric and epoch, history, training seconds so far,
                         optimizer param groups and scalar state, scheduler state, NumPy's
                         and Python's RNG states, the config the run was started with,
                         format version

Tensor files get a new name every epoch and ``last.json`` is replaced last (each file
temp + fsync + rename), so a crash at any point leaves a ``last.json`` that names
complete files of one and the same epoch; files it no longer names are removed after.
The hashes bind the tensors to their metadata: a changed or mixed-up file is refused.
``--resume`` with another config than the one the run started with is refused, listing
the differences, instead of silently mixing two runs.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..io import file_sha256, named_os_error, read_json, write_json

__all__ = ["save_checkpoint", "load_checkpoint", "refuse_other_options", "CheckpointError", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 2
META_FILE = "last.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message says why and what to do."""


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


def _untie(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tied weights alias one storage; safetensors refuses aliases, so clone them apart."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in tensors.items():
        value = value.detach().cpu().contiguous()
        out[key] = value.clone() if value.data_ptr() in seen else value
        seen.add(out[key].data_ptr())
    return out


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write a safetensors file durably under ``path``; returns its SHA-256."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise named_os_error(err, path) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return file_sha256(path)


def _rng_states() -> dict[str, Any]:
    """NumPy's and Python's global RNG states as JSON (torch's goes with the tensors)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"numpy": [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)],
            "python": [version, list(internal), gauss_next]}


def _set_rng_states(states: dict[str, Any]) -> None:
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _tidy(directory: Path, keep: set[str]) -> None:
    """Remove tensor files and temp files of ours that ``last.json`` no longer names."""
    for entry in directory.iterdir():
        name = entry.name
        stale_tensor = name.endswith(".safetensors") and name.startswith(("last.", "best.")) and name not in keep
        stale_temp = name.startswith((".last.", ".best.")) and name.endswith(".tmp")
        if (stale_tensor or stale_temp) and entry.is_file():
            entry.unlink(missing_ok=True)


def save_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    trainer_state: dict[str, Any],
    best_state: dict[str, torch.Tensor] | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint of epoch ``trainer_state["epoch"]``; returns last.json's path.

    Args:
        best_state: the best weights, when they changed (else the previous best file
            stays named in last.json).
        config: what the run was started with (compared on resume).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    epoch = int(trainer_state["epoch"])
    previous = read_json(directory / META_FILE) if (directory / META_FILE).exists() else {}
    files = dict(previous.get("files", {})) if previous.get("checkpoint_version") == CHECKPOINT_VERSION else {}

    tensors = _untie({f"model.{k}": v for k, v in model.state_dict().items()})
    optim_tensors, optim_rest = _split_optimizer(optimizer)
    tensors.update(optim_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    last = f"last.e{epoch}.safetensors"
    files["last"], files["last_sha256"] = last, _write_tensors(directory / last, tensors)
    if best_state is not None or "best" not in files:
        best = f"best.e{epoch}.safetensors"
        source = best_state if best_state is not None else model.state_dict()
        files["best"], files["best_sha256"] = best, _write_tensors(directory / best, _untie(source))
    payload = {
        "checkpoint_version": CHECKPOINT_VERSION,
        **trainer_state,
        "files": files,
        "config": config,
        "rng": _rng_states(),
        "optimizer": optim_rest,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
    }
    write_json(directory / META_FILE, payload)
    _tidy(directory, {files["last"], files["best"]})
    return directory / META_FILE


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``["train.lr: 0.001 -> 0.002", ...]`` between two JSON-like configs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            out += _differences(old.get(key, "(unset)"), new.get(key, "(unset)"), name)
        return out
    return [] if old == new else [f"{prefix or 'config'}: {old!r} -> {new!r}"]


def refuse_other_options(meta_path: Path, recorded: dict[str, Any], config: dict[str, Any]) -> None:
    """Raise CheckpointError listing what differs between the config a checkpoint was
    started with (``recorded``) and the resuming run's (``config``); nothing when equal."""
    changed = _differences(recorded, config)
    if changed:
        shown = "; ".join(changed[:6]) + ("; ..." if len(changed) > 6 else "")
        raise CheckpointError(f"{meta_path}: --resume with other options than the interrupted run ({shown}); "
                              f"resume with the same options, or start a new --out")


def _verified(directory: Path, name: str, sha256: str) -> Path:
    path = directory / name
    if Path(name).name != name or not path.is_file():
        raise CheckpointError(f"{path}: named in {META_FILE} but missing; cannot resume (start a new --out)")
    if file_sha256(path) != sha256:
        raise CheckpointError(f"{path}: does not match the SHA-256 in {META_FILE} (corrupt or from another "
                              f"epoch); cannot resume (start a new --out)")
    return path


def load_checkpoint(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    config: dict[str, Any] | None = None,
    tidy: bool = True,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and every RNG from ``directory``.

    Args:
        config: the config of the resuming run; it must equal the one the checkpoint
            was started with (None: not checked).
        tidy: remove files of ours that ``last.json`` no longer names (under DDP only
            rank 0 does, while the others read).

    Returns:
        the trainer state saved beside them, plus ``best_state`` (the best weights) and
        ``checkpoint_sha256`` (of the tensor file restored: ranks compare it).

    Raises:
        FileNotFoundError: no checkpoint. CheckpointError: another version, another
            config (the differences listed), or files that fail their hash.
    """
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: no checkpoint to resume from")
    meta = read_json(meta_path)
    if meta.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{meta_path}: checkpoint version {meta.get('checkpoint_version')!r} is not "
                              f"supported (this lstmlite writes {CHECKPOINT_VERSION}); start a new --out")
    if config is not None and meta.get("config") is not None:
        refuse_other_options(meta_path, meta["config"], config)
    files = meta["files"]
    tensors = load_file(str(_verified(directory, files["last"], files["last_sha256"])))
    best = load_file(str(_verified(directory, files["best"], files["best_sha256"])))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
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
    _set_rng_states(meta["rng"])
    if tidy:
        _tidy(directory, {files["last"], files["best"]})
    skip = ("optimizer", "scheduler", "checkpoint_version", "files", "rng", "config")
    return {**{k: v for k, v in meta.items() if k not in skip}, "best_state": best,
            "checkpoint_sha256": files["last_sha256"]}
