"""Run directories: the one hand-off between lstmlite's stages.

A run dir holds
    config.json        {"format_version", "model": model.config(), "data": DataSpec,
                        "train": TrainConfig, "compression": [...], "stats": {...}, ...}
    model.safetensors  the weights (never pickle)
    metrics.json       task, dataset, metric_name, metric, params, nonzero_params,
                       size_bytes, macs_per_step (+ extra keys)
    history.json       per-epoch training curves, where the run was trained
    vocab.json         the vocabulary, for token input
    manifest.json      SHA-256 and size of each file above; written last, it marks
                       the run dir complete, and every load checks it

Every stage reads a run dir and writes a new one; nothing edits a run dir in place.
Files are written to a temporary name, flushed to disk (fsync) and renamed, so a crash
never leaves half a file, and a run dir without its manifest is an unfinished one.
Nothing is written into a folder holding files lstmlite did not write.

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

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ._text import one_line

__all__ = [
    "FORMAT_VERSION", "Run", "RunDirError", "save_run", "load_run", "write_json", "read_json",
    "model_state", "nonzero_params", "dense_size_bytes", "check_out_dir", "write_manifest", "verify_manifest", "file_sha256",
    "named_os_error",
]

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
VOCAB_FILE = "vocab.json"
MANIFEST_FILE = "manifest.json"
# What a run dir of ours may hold besides temp files: the files above, a compression
# recipe, training checkpoints, and the model exported beside it (a search trial's).
OWN_ENTRIES = {CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, HISTORY_FILE, VOCAB_FILE, MANIFEST_FILE, "recipe.json",
               "checkpoints", "model.lsl"}


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


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the OS lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_our_temp(entry: Path) -> bool:
    """A temp file of write_json / save_weights (``.NAME.XXXX.tmp``)."""
    return entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file()


def named_os_error(err: OSError, path: str | Path) -> OSError:
    """``err`` naming ``path`` when the OS did not say which file (fsync or write on a
    full disk: "No space left on device" alone). The same subclass (errno decides)."""
    if err.filename is not None or err.errno is None:
        return err
    return OSError(err.errno, err.strerror or str(err), str(path))


def write_json(path: str | Path, payload: Any) -> None:
    """Write JSON atomically (temp file in the same folder, fsync, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise named_os_error(err, path) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    """The process umask (mkstemp creates files 0600; run files follow the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise RunDirError(f"{path}: not valid JSON ({err}); restore the file or re-create it") from None
    except UnicodeDecodeError as err:
        raise RunDirError(f"{path}: not valid UTF-8 (byte {err.object[err.start]:#04x} at offset {err.start}); "
                          f"restore the file or re-create it") from None


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
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise named_os_error(err, path) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(path: str | Path, names: list[str] | None = None) -> Path:
    """Hash the run dir's files into manifest.json, the mark of a complete run dir.

    Args:
        path: the run dir.
        names: the files to cover (default: every top-level file of ours present).
    """
    path = Path(path)
    if names is None:
        names = sorted(n for n in OWN_ENTRIES - {MANIFEST_FILE, "checkpoints", "model.lsl"} if (path / n).is_file())
    files = {n: {"sha256": file_sha256(path / n), "bytes": (path / n).stat().st_size} for n in names}
    write_json(path / MANIFEST_FILE, {"format_version": FORMAT_VERSION, "files": files})
    return path / MANIFEST_FILE


def verify_manifest(path: str | Path) -> None:
    """Check every file manifest.json lists against its size and SHA-256.

    Raises:
        RunDirError: no manifest (an unfinished run dir), a listed file missing, or
            one whose bytes changed (corrupt, truncated or edited by hand).
    """
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.exists():
        raise RunDirError(f"{path}: unfinished run dir (no {MANIFEST_FILE}: it was interrupted while being "
                          f"written); re-create it")
    manifest = read_json(manifest_path)
    if isinstance(manifest, dict) and manifest.get("format_version") != FORMAT_VERSION:
        raise RunDirError(f"{manifest_path}: format_version {manifest.get('format_version')!r} is not supported by "
                          f"this lstmlite (reads version {FORMAT_VERSION}); upgrade lstmlite or re-create the run dir")
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        raise RunDirError(f"{manifest_path}: malformed manifest (no 'files' mapping)")
    # every byte of the manifest counts too: its keys and version exactly as written
    if set(manifest) != {"format_version", "files"} or manifest.get("format_version") != FORMAT_VERSION or \
            not all(set(v) == {"sha256", "bytes"} for v in files.values()):
        raise RunDirError(f"{manifest_path}: malformed manifest (keys or format_version differ from what lstmlite "
                          f"writes: corrupt or edited); re-create the run dir")
    for name, entry in files.items():
        file = path / name
        if Path(name).name != name or not file.is_file():
            raise RunDirError(f"{file}: listed in {MANIFEST_FILE} but missing")
        if file.stat().st_size != entry.get("bytes") or file_sha256(file) != entry.get("sha256"):
            raise RunDirError(f"{file}: contents do not match {MANIFEST_FILE} (corrupt, truncated or edited); "
                              f"re-create the run dir")


def check_out_dir(path: str | Path, overwrite: bool = False) -> None:
    """Refuse an output folder whose contents writing a run dir would lose.

    Fine: a new or empty folder, or one holding only an interrupted training run of
    ours (``checkpoints/``). A run dir of ours, finished or not, is replaced only with
    ``overwrite`` (the CLI's ``--force``). A folder holding anything else is
    always refused: those files are not ours to overwrite. Stale temp files of ours are
    removed on the way.

    Raises:
        RunDirError: naming the folder, what is in it and what to do.
    """
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise RunDirError(f"{path}: exists and is not a folder; choose another --out")
    entries = []
    for entry in path.iterdir():
        if _is_our_temp(entry):
            entry.unlink(missing_ok=True)  # left by a killed write
        else:
            entries.append(entry)
    names = {e.name for e in entries}
    if not names:
        return
    ours = names <= OWN_ENTRIES
    if ours and overwrite:
        return  # --force (or a resumed run's final save): every file here is ours to replace
    if ours and MANIFEST_FILE in names:
        raise RunDirError(f"{path}: a run dir already exists here; choose another --out, or --force to replace it")
    if names == {"checkpoints"} and (path / "checkpoints" / "last.json").exists():
        return
    if ours and CONFIG_FILE in names:
        raise RunDirError(f"{path}: an unfinished run dir is here (no {MANIFEST_FILE}: its writing was "
                          f"interrupted); choose another --out, or --force to replace it")
    if names == {"model.lsl"}:
        return  # a model exported ahead of its run dir (a search trial's); save_run leaves it be
    foreign = sorted(names - OWN_ENTRIES) or sorted(names)
    shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
    raise RunDirError(f"{path}: holds files lstmlite did not write ({shown}); choose a new or empty --out")


def nonzero_params(model: nn.Module) -> int:
    """Stored values that are not exactly zero: each tensor as it is kept after masks
    and quantization, a low-rank one as its factors (not their product, which would
    count more values than the model has parameters). A parametrization's codes and
    scales are not parameters; tied tensors count once. Never more than the
    parameter count, but for a pruning mask over a low-rank product: what is kept then is
    the masked dense product (what the .lsl file stores), which pruning warns of."""
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
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a run dir: config.json (with ``model`` and ``format_version`` added),
    model.safetensors, and metrics/history/vocab where given; ``extra`` maps more
    file names of ours (``recipe.json``) to their JSON payloads.

    Every file is written atomically and durably, and manifest.json (their hashes)
    last, so an interrupted save leaves a folder that reads as unfinished. Refuses a
    folder holding files lstmlite did not write, and replaces a finished run dir only
    with ``overwrite`` (see :func:`check_out_dir`).
    """
    path = Path(path)
    for name in extra or {}:  # before anything is touched: a bad name must not cost the old run
        if name not in OWN_ENTRIES or name in (CONFIG_FILE, WEIGHTS_FILE, MANIFEST_FILE):
            raise ValueError(f"{name}: not a file a run dir holds besides its own")
    check_out_dir(path, overwrite=overwrite)
    path.mkdir(parents=True, exist_ok=True)
    (path / MANIFEST_FILE).unlink(missing_ok=True)  # unfinished until the new one is written
    for name in (METRICS_FILE, HISTORY_FILE, VOCAB_FILE, "recipe.json"):
        (path / name).unlink(missing_ok=True)  # the replaced run's, not this one's
    full_config = {"format_version": FORMAT_VERSION, **config, "model": model.config()}
    save_weights(path / WEIGHTS_FILE, model)
    write_json(path / CONFIG_FILE, full_config)
    names = [WEIGHTS_FILE, CONFIG_FILE]
    for name, payload in ((METRICS_FILE, metrics), (HISTORY_FILE, history), (VOCAB_FILE, vocab),
                          *(extra or {}).items()):
        if payload is not None:
            write_json(path / name, payload)
            names.append(name)
    write_manifest(path, names)
    return path


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and version-check a run dir's config.json."""
    path = Path(path)
    if path.is_file():
        # a model file of another framework given where a run dir goes: say how it becomes one
        kinds = {".onnx": "onnx", ".keras": "keras", ".h5": "keras", ".pt": "torch", ".pth": "torch",
                 ".safetensors": "torch"}
        hint = (f"; import it first: lstmlite import {kinds[path.suffix.lower()]} {path} --out RUN_DIR"
                if path.suffix.lower() in kinds else "")
        raise RunDirError(f"{path}: not a run dir (a file; a run dir is the folder lstmlite train, compress or "
                          f"import writes){hint}")
    if not path.is_dir():
        raise RunDirError(f"{path}: not a run dir (no such directory)")
    if not (path / CONFIG_FILE).exists():
        if (path / "checkpoints" / "last.json").is_file():  # what Ctrl-C or a crash in `lstmlite train` leaves
            raise RunDirError(f"{path}: not a run dir yet: it holds an interrupted training run (checkpoints/"
                              f"last.json, no {CONFIG_FILE}); finish it with the command that started it plus "
                              f"--resume (lstmlite train ... --out {path} --resume)")
        raise RunDirError(f"{path}: not a run dir (no {CONFIG_FILE})")
    verify_manifest(path)
    config = read_json(path / CONFIG_FILE)
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise RunDirError(
            f"{path / CONFIG_FILE}: format_version {version!r} is not supported by this lstmlite "
            f"(reads version {FORMAT_VERSION}); upgrade lstmlite or re-create the run dir"
        )
    if not isinstance(config.get("model"), dict):
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
    state = _read_weights(weights_path, map_location)
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
    if vocab is None and getattr(model, "vocab_size", 0) and (config.get("data") or {}).get("source"):
        # a model trained here on text: its token ids mean nothing without the vocabulary
        # it was trained with, and building a new one would evaluate garbage silently
        raise RunDirError(f"{path / VOCAB_FILE}: missing, and this run's model reads token ids; restore the run "
                          f"dir's vocab.json (or re-create the run dir)")
    return Run(path=path, model=model, config=config, metrics=metrics, history=history, vocab=vocab)


def _read_weights(weights_path: Path, map_location: str) -> dict[str, torch.Tensor]:
    """The tensors of model.safetensors, refusing unreadable files and NaN/Inf weights
    (a diverged run would otherwise evaluate, export and pass its checks silently)."""
    try:
        state = load_file(str(weights_path), device=map_location)
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise RunDirError(f"{weights_path}: not a readable safetensors file, truncated or corrupt "
                          f"({one_line(err)}); re-create the run dir") from None
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise RunDirError(f"{weights_path}: tensor {name!r} holds NaN or Inf values (training diverged?); "
                              f"retrain, e.g. with a lower --train.lr")
    return state


def _is_tied_alias(model: nn.Module, name: str) -> bool:
    """True when ``name`` shares storage with another parameter that was loaded."""
    state = model.state_dict()
    ptr = state[name].data_ptr()
    return any(other != name and t.data_ptr() == ptr for other, t in state.items())
