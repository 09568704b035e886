"""Load run dirs and .lsl files into the runtime (the writer, ``export_lsl``, lives
in :mod:`lstmlite.export.lsl` and stays importable from here).

Example:
    >>> import tempfile, pathlib
    >>> from lstmlite.nn import SequenceClassifier
    >>> from lstmlite.io import save_run
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> _ = save_run(run, SequenceClassifier(input_size=3, hidden_size=8, n_classes=2), {"task": "classify"})
    >>> engine = load(run)
    >>> from lstmlite.export.lsl import export_lsl
    >>> path = export_lsl(run, run.parent / "model.lsl", weights="int8")
    >>> load(path).info["layers"][0]["weights"]
    'int8'
"""

from __future__ import annotations

import logging
from pathlib import Path

from .engine import Engine, RuntimeError_

__all__ = ["load", "export_lsl", "spec_from_run"]

log = logging.getLogger(__name__)


def __getattr__(name: str):
    # the writer side moved to lstmlite.export.lsl; these names stay importable here
    if name in ("export_lsl", "spec_from_run", "_default_weights"):
        from ..export import lsl as _writer

        return getattr(_writer, "default_weights" if name == "_default_weights" else name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(path: str | Path, weights: str | None = None, activations: str = "float", threads: int = 1,
         keep_sparse: bool = False) -> Engine:
    """An :class:`Engine` from a run dir or a ``.lsl`` file.

    Args:
        path: a run dir (config.json + model.safetensors) or a .lsl file.
        weights: for a run dir, ``auto`` (default: what ``export --format lsl``
            writes -- the run's own floats and codes, each matrix in its smallest
            form), ``fp32``, ``int8``, ``int7`` (int8 codes within [-63, 63]: see
            :class:`Engine`), ``int7r`` (only the recurrent matrices' codes within
            [-63, 63]), ``int4`` or ``int8-sparse`` (int8 with the
            mostly-zero (1, 4) blocks of a pruned run skipped). Ignored for a .lsl
            file (it says which).
        activations: ``float``, ``dynamic``, ``dynamic16``, ``dynamic-h7`` or ``dynamic16-h7``
            (see :class:`Engine`).
        threads: threads a batched :meth:`Engine.run` splits over (see :class:`Engine`).
        keep_sparse: keep ``int8-sparse`` matrices sparse in memory rather than in the
            form the kernel table runs faster (see :class:`Engine`).
    """
    path = Path(path)
    if path.is_dir():
        from ..export.lsl import default_weights, spec_from_run  # converting a model is the writer's job

        spec = spec_from_run(path)
        return Engine(spec, weights=default_weights(spec, weights), activations=activations, threads=threads,
                      keep_sparse=keep_sparse)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run dir or .lsl file")
    try:
        return Engine(path.read_bytes(), activations=activations, threads=threads, keep_sparse=keep_sparse)
    except RuntimeError_ as err:  # the C loader's message does not know the file's name
        raise RuntimeError_(f"{path}: {err}; re-export it (lstmlite export RUN --format lsl)") from None
