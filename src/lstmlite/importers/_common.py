"""Shared by the importers: assemble a task model from converted weights, write its run dir.

Every importer turns a foreign model into the same pieces — an optional embedding
matrix, one of our recurrent layers with PyTorch-layout weights, a head and a
pooling — and :func:`assemble_model` builds the lstmlite task model from them, so
the result compresses, trains and exports like a model trained here.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from .._text import one_line
from ..nn.layers import GRU, LSTM, RecurrentLayer

__all__ = ["ModelImportError", "assemble_model", "save_imported", "read_model_file", "per_step_kind", "TASK_OF_KIND",
           "apply_output_activation", "check_error"]

log = logging.getLogger(__name__)

#: The ``task`` a run dir of each model kind records (DataSpec's vocabulary).
TASK_OF_KIND = {"classifier": "classify", "lm": "lm", "forecaster": "forecast", "tagger": "tag"}


class ModelImportError(ValueError):
    """A foreign model that cannot be brought in faithfully (the message says why)."""


class ModelFileNotFoundError(ModelImportError, FileNotFoundError):
    """The model file to import does not exist."""


_T = TypeVar("_T")


def read_model_file(path: str | Path, what: str, reader: Callable[[str], _T]) -> _T:
    """``reader(path)``, with a missing file or bytes the reader cannot parse reported
    as one :class:`ModelImportError` naming the file (the frameworks' own messages
    often do not: protobuf says "Wire format was corrupt", h5py "bad superblock").

    Example:
        >>> read_model_file("no/such.onnx", "ONNX", open)
        Traceback (most recent call last):
        ...
        lstmlite.importers._common.ModelFileNotFoundError: no/such.onnx: no such file; check the path
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileNotFoundError(f"{path}: no such file; check the path")
    try:
        return reader(str(path))
    except (ModelImportError, ImportError):
        raise
    except Exception as err:  # noqa: BLE001 - parsers raise many types; the user needs the file name
        try:  # not a broken file: a file of another format, given to the wrong reader
            refuse_other_format(path, what)
        except ModelImportError as refusal:
            raise refusal from err
        detail = one_line(err)
        raise ModelImportError(f"{path}: not a readable {what} file, truncated or corrupt ({detail}); "
                               f"re-save it from its framework") from err


#: Files told apart by their first bytes: (offset, magic, what the file is and what to do).
_SIGNATURES = (
    (0, b"LSTMLITE", "an lstmlite .lsl file (the native runtime's model), which needs no import: "
                     "lstmlite.runtime.load(path) runs it"),
    (4, b"TFL3", "a TFLite model: lstmlite import tflite FILE"),
    (0, b"\x89HDF", "a Keras HDF5 file: lstmlite import keras FILE"),
)


def other_format(path: str | Path, what: str, head: bytes | None = None) -> str | None:
    """What ``path`` is by its first bytes (``head``, read from the file when not given),
    when it is a known format other than ``what``, else None (``lstmlite import onnx
    model.lsl`` said the file was truncated or corrupt).

    >>> other_format("model.lsl", "ONNX", head=b"LSTMLITE" + bytes(8))[:22]
    'an lstmlite .lsl file '
    """
    if head is None:
        try:
            with open(path, "rb") as f:
                head = f.read(16)
        except OSError:
            return None
    for offset, magic, said in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic and what.split()[0].lower() not in said.lower().split(":")[0]:
            return said
    return None


def not_this_format(path: str | Path, what: str, other: str) -> str:
    """The one line for a file of format ``other`` given to the ``what`` reader.

    >>> not_this_format("m.lsl", "ONNX", "an lstmlite .lsl file")
    'm.lsl: not an ONNX file but an lstmlite .lsl file'
    """
    article = "an" if what[:1].upper() in "AEIO" else "a"  # an ONNX, a Keras, a TFLite, a torch.save
    return f"{path}: not {article} {what} file but {other}"


def refuse_other_format(path: str | Path, what: str, head: bytes | None = None,
                        error: type[Exception] = ModelImportError) -> None:
    """Raise ``error`` with :func:`not_this_format`'s line when ``path`` (or its first bytes,
    ``head``) is a known format other than ``what``; return quietly otherwise.

    >>> refuse_other_format("m.tflite", "TFLite", head=bytes(4) + b"TFL3")  # its own format: no error
    """
    other = other_format(path, what, head=head)
    if other is not None:  # the reader's own failure, if any, says nothing more
        raise error(not_this_format(path, what, other)) from None


def per_step_kind(embedding_rows: int | None, out_features: int, bidirectional: bool) -> str:
    """The kind of a model whose head runs on every step: a language model when it predicts
    the next token of its own (causal) input vocabulary, else a tagger (a label per step)."""
    return "lm" if embedding_rows == out_features and not bidirectional else "tagger"


def apply_output_activation(logits: Tensor, activation: str | None) -> Tensor:
    """What the source model outputs, from our logits: the final activation an importer dropped
    (``import_info["output_activation"]``: softmax, log_softmax, sigmoid or None), over the last axis.

    >>> apply_output_activation(torch.zeros(1, 2), "softmax").tolist()
    [[0.5, 0.5]]
    """
    if activation == "softmax":
        return torch.softmax(logits, -1)
    if activation == "log_softmax":
        return torch.log_softmax(logits, -1)
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    return logits


def check_error(expected: np.ndarray, ours: np.ndarray, rtol: float, atol: float) -> tuple[float, bool]:
    """The import check's rule, one for the ONNX and TFLite imports: the max absolute error of
    ``ours`` against the source runtime's ``expected`` (same shape), and whether every element
    satisfies ``|a - b| <= atol + rtol * |expected|``.

    >>> error, agree = check_error(np.array([1.0, 2.0]), np.array([1.0, 2.1]), rtol=1e-4, atol=1e-5)
    >>> round(error, 3), agree
    (0.1, False)
    """
    diff = np.abs(expected - ours)
    error = float(np.max(diff)) if expected.size else 0.0
    return error, bool(np.all(diff <= atol + rtol * np.abs(expected)))


def _cell_name(rnn: nn.Module) -> str | None:
    """Our task models' cell name for ``rnn``, or None when the registry has no such cell."""
    if isinstance(rnn, LSTM):  # isinstance: a parametrized layer is a generated subclass
        return "lstm"
    if isinstance(rnn, GRU):
        return "gru"
    return None


def assemble_model(
    rnn: RecurrentLayer,
    kind: str,
    *,
    embedding: Tensor | None = None,
    head_weight: Tensor | None = None,
    head_bias: Tensor | None = None,
    pooling: str = "last",
    horizon: int | None = None,
    targets: int = 1,
    instance_norm: bool = False,
) -> nn.Module:
    """Build a task model around an already-converted recurrent layer.

    Args:
        rnn: our layer with its weights set (LSTM, GRU, or an importers.layers layer).
        kind: ``classifier`` | ``lm`` | ``forecaster`` | ``tagger`` (a head at every step) |
            ``layer`` (return ``rnn`` alone).
        embedding: (V, E) token embedding, or None for feature input.
        head_weight, head_bias: (C, D*H) and (C,); a missing bias is zero.
        pooling: the classifier's pooling (``last`` | ``mean`` | ``max``).
        horizon, targets: the forecaster's output shape (horizon * targets = C).
        instance_norm: the forecaster's per-window level removal (ours only; foreign
            models have none).

    Returns:
        The model in eval mode.
    """
    from ..nn.models import Forecaster, build_model

    if kind == "layer":
        return rnn.eval()
    if head_weight is None:
        raise ModelImportError(f"a {kind} needs an output layer (head); the source model has none")
    out_features, in_features = head_weight.shape
    if in_features != rnn.output_size:
        raise ModelImportError(f"the head reads {in_features} features but the recurrent layer gives {rnn.output_size}")
    if not rnn.batch_first:
        raise ModelImportError("internal: the recurrent layer must be batch_first")
    cell = _cell_name(rnn)
    sizes = rnn.hidden_sizes
    config: dict[str, Any] = {
        "kind": kind,
        "input_size": 0 if embedding is not None else rnn.input_size,
        "vocab_size": int(embedding.shape[0]) if embedding is not None else 0,
        "embed_dim": int(embedding.shape[1]) if embedding is not None else 0,
        # A placeholder cell of the same output size stands in for layers the registry lacks.
        "cell": cell or "lstm",
        "hidden_size": sizes if len(set(sizes)) > 1 else sizes[0],
        "num_layers": rnn.num_layers,
        "bidirectional": rnn.bidirectional,
        "rnn_options": {} if rnn.bias else {"bias": False},
    }
    # An LSTM's projection (PyTorch's proj_size) is part of the layer the task model builds:
    # without it the model's layer has other shapes and the weights cannot be copied in.
    proj = [int(p) for p in getattr(rnn, "proj_sizes", ()) or ()]
    if cell == "lstm" and any(proj):
        config["rnn_options"]["proj_size"] = proj if len(set(proj)) > 1 else proj[0]
    if embedding is not None and embedding.shape[1] != rnn.input_size:
        raise ModelImportError(f"the embedding has {embedding.shape[1]} features but the recurrent layer reads "
                           f"{rnn.input_size}")
    if kind == "classifier":
        config.update(n_classes=out_features, pooling=pooling)
    elif kind == "lm":
        if embedding is None:
            raise ModelImportError("a language model needs token input (an embedding)")
        if pooling != "none":
            raise ModelImportError("a language model's head runs on every step (no pooling)")
        if out_features != embedding.shape[0]:
            raise ModelImportError(f"a per-step output layer with {out_features} outputs is not a language model "
                                   f"over the {embedding.shape[0]}-token vocabulary; import it as a tagger "
                                   "(kind='tagger')")
    elif kind == "tagger":
        if pooling != "none":
            raise ModelImportError(f"a tagger's head runs on every step; the source pools with {pooling!r}")
        config.update(n_classes=out_features)
    elif kind == "forecaster":
        horizon = horizon or out_features // targets
        if horizon * targets != out_features:
            raise ModelImportError(f"horizon {horizon} x targets {targets} does not match the head's "
                                   f"{out_features} outputs")
        config.update(horizon=horizon, targets=targets)
        if "instance_norm" in inspect.signature(Forecaster.__init__).parameters:
            config["instance_norm"] = bool(instance_norm)
        elif instance_norm:
            raise ModelImportError("this lstmlite's Forecaster has no instance_norm")
        if pooling != "last":
            raise ModelImportError(f"a forecaster reads the last step; the source pools with {pooling!r}")
    else:
        raise ModelImportError(f"unknown model kind {kind!r}; expected classifier, lm, forecaster, tagger or "
                               "layer")
    if "rnn_options" in config and not config["rnn_options"]:
        config.pop("rnn_options")
    try:
        model = build_model(config)
    except ValueError as err:  # e.g. a bidirectional language model: the model class refuses the form
        raise ModelImportError(f"the imported {kind} cannot be built: {err}") from None
    with torch.no_grad():
        if cell is None:
            model.rnn = rnn
            model.cell = rnn.mode.lower()
        else:
            model.rnn.load_state_dict(rnn.state_dict())
        if embedding is not None:
            model.embedding.weight.copy_(torch.as_tensor(embedding))
        model.head.weight.copy_(torch.as_tensor(head_weight))
        model.head.bias.copy_(torch.as_tensor(head_bias) if head_bias is not None else torch.zeros(out_features))
    return model.eval()


def _model_metrics(model: nn.Module) -> dict[str, Any]:
    try:
        from ..train.run import model_metrics

        return model_metrics(model)
    except ImportError:  # pragma: no cover - trainer absent in a partial checkout
        from ..io import dense_size_bytes, nonzero_params

        return {"params": sum(p.numel() for p in model.parameters()), "nonzero_params": nonzero_params(model),
                "size_bytes": dense_size_bytes(model), "macs_per_step": int(model.macs_per_step())}


def save_imported(out: str | Path, model: nn.Module, source: dict[str, Any], overwrite: bool = False) -> Path:
    """Write an imported model as a run dir: config.json (``import`` section), weights, metrics
    (``overwrite``: replace a run dir of ours there, the CLI's ``--force``).

    Raises:
        ModelImportError: for a bare recurrent layer (a run dir holds a task model) or a
            model whose recurrent layer lstmlite.nn has no cell for.
    """
    from ..io import save_run
    from ..nn.models import CELLS

    kind = getattr(model, "kind", None)
    if kind not in TASK_OF_KIND:
        raise ModelImportError(
            f"a {type(model).__name__} alone cannot be saved as a run dir: a run dir holds a task model "
            "(embedding/input → recurrent layer → head); import a model with an output layer")
    if model.cell not in CELLS:
        raise ModelImportError(
            f"the imported recurrent layer ({type(model.rnn).__name__}) has no lstmlite.nn cell, so it cannot be "
            "saved as a run dir; use the returned model in memory or export it to ONNX")
    metrics = {"task": TASK_OF_KIND[kind], "dataset": None, "metric_name": None, "metric": None,
               **_model_metrics(model)}
    path = save_run(out, model, {"task": TASK_OF_KIND[kind], "import": source}, metrics=metrics,
                    overwrite=overwrite)
    log.info("wrote imported %s to %s", kind, path)
    return path
