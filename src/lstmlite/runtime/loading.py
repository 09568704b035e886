"""Load run dirs and .lsl files into the runtime; export run dirs as .lsl.

Example:
    >>> import tempfile, pathlib
    >>> from lstmlite.nn import SequenceClassifier
    >>> from lstmlite.io import save_run
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> _ = save_run(run, SequenceClassifier(input_size=3, hidden_size=8, n_classes=2), {"task": "classify"})
    >>> engine = load(run)
    >>> path = export_lsl(run, run.parent / "model.lsl", weights="int8")
    >>> load(path).info["layers"][0]["weights"]
    'int8'
"""

from __future__ import annotations

import logging
from pathlib import Path

from .engine import Engine
from .lsl import ModelSpec, has_int8, spec_from_module, write_lsl

__all__ = ["load", "export_lsl", "spec_from_run"]

log = logging.getLogger(__name__)


def spec_from_run(run_dir: str | Path) -> ModelSpec:
    """The runtime spec of a run dir's model (compression honoured, see
    :func:`~lstmlite.runtime.lsl.spec_from_module`)."""
    from lstmlite.io import load_run

    # nothing about where the run lives goes in the file: its bytes are the model's
    # size (lstmlite.export.size), the same wherever the run dir is
    return spec_from_module(load_run(run_dir).model)


def _default_weights(spec: ModelSpec, weights: str | None) -> str:
    # A quantized run keeps its int8 codes; a float run stays float unless asked.
    return weights or ("int8" if has_int8(spec) else "fp32")


def load(path: str | Path, weights: str | None = None, activations: str = "float") -> Engine:
    """An :class:`Engine` from a run dir or a ``.lsl`` file.

    Args:
        path: a run dir (config.json + model.safetensors) or a .lsl file.
        weights: for a run dir, ``fp32``, ``int8`` or ``int8-sparse`` (int8 with the
            mostly-zero (1, 4) blocks of a pruned run skipped); default: int8 when the
            run was quantized, else fp32. Ignored for a .lsl file (it says which).
        activations: ``float`` or ``dynamic`` (see :class:`Engine`).
    """
    path = Path(path)
    if path.is_dir():
        spec = spec_from_run(path)
        return Engine(spec, weights=_default_weights(spec, weights), activations=activations)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run dir or .lsl file")
    return Engine(path.read_bytes(), activations=activations)


def export_lsl(run_dir: str | Path, out_path: str | Path, weights: str | None = None) -> Path:
    """Write a run dir's model as a .lsl file (see :func:`load` for ``weights``).

    Returns the path written. The file is checked by loading it into the runtime.
    """
    spec = spec_from_run(run_dir)
    out_path = Path(out_path)
    if out_path.is_dir():
        out_path = out_path / "model.lsl"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    data = write_lsl(spec, weights=_default_weights(spec, weights))
    Engine(data)  # refuse to write a file the runtime cannot load
    tmp.write_bytes(data)
    tmp.replace(out_path)
    log.info("wrote %s (%d bytes)", out_path, len(data))
    return out_path
