"""Run directories: the one hand-off between lstmlite's stages.

A run dir holds
    config.json        {"format_version", "model": model.config(), "data": DataSpec,
                        "train": TrainConfig, "compression": [...], "stats": {...}, ...}
    model.safetensors  the weights (never pickle)
    metrics.json       task, dataset, metric_name, metric, params, nonzero_params,
                       size_bytes, macs_per_step (+ extra keys)
    history.json       per-epoch training curves, where the run was trained
    vocab.json         the vocabulary, for token input

Every stage reads a run dir and writes a new one; nothing edits a run dir in place.
Files are written to a temporary name and renamed, so a crash never leaves half a file.

Example:
    >>> from lstmlite.nn import SequenceClassifier
    >>> import tempfile
    >>> model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3)
    >>> d = tempfile.mkdtemp()
    >>> _ = save_run(d, model, {"task": "classify"})
    >>> load_run(d).model.config() == model.config()
    True
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = [
    "FORMAT_VERSION", "Run", "RunDirError", "save_run", "load_run", "write_json", "read_json",
    "model_state", "nonzero_params", "dense_size_bytes",
]

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
VOCAB_FILE = "vocab.json"


class RunDirError(ValueError):
    """A run dir that is missing, incomplete, or of a format this version cannot read."""


@dataclass
class Run:
    """A loaded run dir: the rebuilt model plus everything stored beside it."""

    path: Path
    model: nn.Module
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    vocab: dict[str, Any] | None = None


def write_json(path: str | Path, payload: Any) -> None:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise RunDirError(f"{path}: not valid JSON ({err})") from None


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors to store: the state dict with shared tensors stored once.

    Tied weights (a language model's head sharing the embedding) appear twice in a
    state dict; safetensors refuses aliases, so the alias is dropped and re-tied by
    the model's constructor on load.
    """
    state: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict().items():
        key = tensor.data_ptr() if tensor.numel() else id(tensor)
        if key in seen:
            continue
        seen.add(key)
        state[name] = tensor.detach().cpu().contiguous()
    return state


def save_weights(path: str | Path, model: nn.Module) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(model_state(model), tmp, metadata={"format": "pt", "lstmlite_format_version": str(FORMAT_VERSION)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def nonzero_params(model: nn.Module) -> int:
    """Stored values that are not exactly zero: each tensor as it is kept after masks
    and quantization, a low-rank one as its factors (not their product, which would
    count more values than the model has parameters). A parametrization's codes and
    scales are not parameters; tied tensors count once. Never more than the
    parameter count."""
    from .compress.api import tensor_storage  # late: compress imports io
    from .compress.targets import iter_tensors, tensor_key

    seen: set[int] = set()
    total = 0
    with torch.no_grad():
        for _, module, name in iter_tensors(model):
            key = tensor_key(module, name)
            if key not in seen:
                seen.add(key)
                storage = tensor_storage(module, name)
                parts = storage.factors or (storage,)
                total += sum(int(torch.count_nonzero(p.values)) for p in parts)
    return total


def dense_size_bytes(model: nn.Module) -> int:
    """Bytes of the weights stored densely in their own dtype (fp32: 4 bytes each)."""
    return int(sum(t.numel() * t.element_size() for t in model_state(model).values()))


def save_run(
    path: str | Path,
    model: nn.Module,
    config: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    vocab: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a run dir: config.json (with ``model`` and ``format_version`` added),
    model.safetensors, and metrics/history/vocab where given.

    Refuses to write into a non-empty run dir unless ``overwrite`` (nothing edits a
    run dir in place by accident).
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        if (path / CONFIG_FILE).exists():
            raise RunDirError(f"{path}: a run dir already exists here; choose another --out or remove it")
    path.mkdir(parents=True, exist_ok=True)
    full_config = {"format_version": FORMAT_VERSION, **config, "model": model.config()}
    save_weights(path / WEIGHTS_FILE, model)
    write_json(path / CONFIG_FILE, full_config)
    if metrics is not None:
        write_json(path / METRICS_FILE, metrics)
    if history is not None:
        write_json(path / HISTORY_FILE, history)
    if vocab is not None:
        write_json(path / VOCAB_FILE, vocab)
    return path


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and version-check a run dir's config.json."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"{path}: not a run dir (no such directory)")
    config = read_json(path / CONFIG_FILE)
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise RunDirError(
            f"{path / CONFIG_FILE}: format_version {version!r} is not supported by this lstmlite "
            f"(reads version {FORMAT_VERSION})"
        )
    if "model" not in config:
        raise RunDirError(f"{path / CONFIG_FILE}: no 'model' section")
    return config


def load_run(path: str | Path, map_location: str = "cpu") -> Run:
    """Rebuild the model of a run dir and read its metadata.

    Raises:
        RunDirError: missing directory or file, unknown format version, or weights
            that do not fit the stored architecture.
    """
    from .nn.models import build_model  # late: io is imported by nn users too

    path = Path(path)
    config = load_config(path)
    weights_path = path / WEIGHTS_FILE
    if not weights_path.exists():
        raise RunDirError(f"{weights_path}: file not found")
    model = build_model(config["model"])
    compression = config.get("compression")
    if compression:
        # Compressed runs store the parametrized form; rebuild it before loading.
        from .compress import restore_compression  # type: ignore[attr-defined]

        restore_compression(model, compression)
    state = load_file(str(weights_path), device=map_location)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {name for name in missing if _is_tied_alias(model, name)}
    missing = [m for m in missing if m not in tied]
    if missing or unexpected:
        raise RunDirError(f"{weights_path}: weights do not match the architecture "
                          f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.eval()
    metrics = read_json(path / METRICS_FILE) if (path / METRICS_FILE).exists() else {}
    history = read_json(path / HISTORY_FILE) if (path / HISTORY_FILE).exists() else []
    vocab = read_json(path / VOCAB_FILE) if (path / VOCAB_FILE).exists() else None
    return Run(path=path, model=model, config=config, metrics=metrics, history=history, vocab=vocab)


def _is_tied_alias(model: nn.Module, name: str) -> bool:
    """True when ``name`` shares storage with another parameter that was loaded."""
    state = model.state_dict()
    ptr = state[name].data_ptr()
    return any(other != name and t.data_ptr() == ptr for other, t in state.items())
