"""Import Keras recurrent models: ``.keras`` files through Keras 3, legacy ``.h5`` through h5py.

The model Keras users write for text — ``Sequential([Embedding, LSTM, Dense(softmax)])``
— and its relatives become lstmlite task models:

=====================================  ================================================
Keras                                  lstmlite
=====================================  ================================================
``Embedding(V, E)``                    ``embedding`` (V, E)
``LSTM(H)``                            :class:`lstmlite.nn.LSTM` — kernel (I, 4H) gates
                                       i,f,c,o (PyTorch's order) transposed; the single
                                       bias goes to ``bias_ih``, ``bias_hh`` = 0
``GRU(H, reset_after=True)``           :class:`lstmlite.nn.GRU` — gates z,r,h → r,z,n;
                                       bias (2, 3H) = input and recurrent biases
``GRU(H, reset_after=False)``          :class:`~lstmlite.importers.layers.GRUResetBefore`
                                       (exact, but not a registered cell: in-memory and
                                       ONNX export only, no run dir)
``SimpleRNN(H)``                       :class:`~lstmlite.importers.layers.SimpleRNN` (same)
``Bidirectional(…, merge_mode="concat")``  ``bidirectional=True``
stacked ``return_sequences=True``      ``num_layers`` (one kind of layer per stack)
last recurrent ``return_sequences``    False → classifier (last step; Bidirectional:
                                       forward last + backward first, as Keras);
                                       True + Dense → language model (per step, over the
                                       embedding's vocabulary, one direction), else a
                                       tagger (a label per step)
``Dense(C, activation)``               ``head``; the activation (softmax, log_softmax,
                                       sigmoid or linear, or a following ``Activation``
                                       / ``Softmax`` layer) is dropped (our models
                                       return logits) and recorded in ``import_info``
``Dropout``, ``SpatialDropout1D``      nothing (inference no-ops)
=====================================  ================================================

Keras's ``Embedding`` has no ``padding_idx``; with ``mask_zero=False`` (its default)
token 0 is an ordinary token and our model computes exactly what Keras does on the
same ids. With ``mask_zero=True`` Keras skips id-0 steps; our model gives the same
result when the padding is at the end and ``lengths = (x != 0).sum(1)`` is passed
(Keras's ``pad_sequences`` pads at the *front* by default: use ``padding="post"``).
``import_info["mask_zero"]`` records which case applies. Note that fine-tuning in
lstmlite keeps embedding row 0 fixed (``padding_idx=0``).

Not supported (a clear error): other recurrent activations (``hard_sigmoid`` of old
Keras 2 models), ``go_backwards`` / ``stateful`` / ``return_state`` layers, merge modes
other than concat, mixed layer kinds in one stack, and extra layers (Conv1D,
pooling, several Dense layers).

Example:
    >>> model = import_keras("sentiment.keras")                     # doctest: +SKIP
    >>> model = import_keras("legacy.h5", out="runs/imported")      # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..nn.layers import GRU, LSTM, RecurrentLayer
from ._common import ModelImportError, apply_output_activation, assemble_model, per_step_kind, save_imported
from .gates import KERAS_GRU, TORCH_GRU, reorder_gates
from .layers import GRUResetBefore, SimpleRNN

__all__ = ["import_keras", "KerasLayer", "read_h5_layers", "model_from_keras_layers"]

log = logging.getLogger(__name__)

_NOOP_LAYERS = {"InputLayer", "Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                "ActivityRegularization"}
_RECURRENT = {"LSTM", "GRU", "SimpleRNN"}
_HEAD_ACTIVATIONS = {"softmax": "softmax", "sigmoid": "sigmoid", "linear": None, None: None,
                     "log_softmax": "log_softmax"}


@dataclass
class KerasLayer:
    """One Keras layer as the importer sees it: class name, config, weights in Keras's order."""

    class_name: str
    config: dict[str, Any]
    weights: list[np.ndarray] = field(default_factory=list)


# ----- reading ------------------------------------------------------------------------------
def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_h5_layers(path: str | Path) -> tuple[list[KerasLayer], dict[str, Any]]:
    """Layers of a legacy Keras HDF5 file (Keras 2 / tf.keras / Keras 3 ``model.save("x.h5")``), no Keras needed.

    The file keeps the architecture as JSON in the root attribute ``model_config`` and
    each layer's weights under ``model_weights/<layer name>/`` in the order its
    ``weight_names`` attribute lists.
    """
    import h5py

    with h5py.File(str(path), "r") as handle:
        if "model_config" not in handle.attrs:
            raise ModelImportError(f"{path}: no model_config in this HDF5 file (weights-only files need the "
                                   "architecture: save the whole model)")
        config = json.loads(_decode(handle.attrs["model_config"]))
        weights_root = handle["model_weights"] if "model_weights" in handle else handle
        meta = {"keras_version": _decode(handle.attrs.get("keras_version", "")),
                "backend": _decode(handle.attrs.get("backend", ""))}
        if config.get("class_name") not in ("Sequential", "Functional", "Model"):
            raise ModelImportError(f"{path}: a {config.get('class_name')} model; lstmlite imports Sequential or "
                                   "Functional models")
        layers = []
        for entry in config["config"]["layers"]:
            name = entry["config"].get("name", "")
            weights = []
            if name in weights_root:
                group = weights_root[name]
                for weight_name in group.attrs.get("weight_names", []):
                    weights.append(np.asarray(group[_decode(weight_name)], dtype=np.float32))
            layers.append(KerasLayer(entry["class_name"], entry["config"], weights))
    return layers, meta


def _load_keras_model(path: str | Path) -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on PyTorch: no TensorFlow needed
    try:
        import keras
    except ImportError as err:
        raise ImportError("reading .keras files needs Keras 3: pip install 'lstmlite[keras]'") from err
    if keras.backend.backend() != "torch":
        log.warning("Keras runs on the %s backend (KERAS_BACKEND was set before lstmlite); fine if it works",
                    keras.backend.backend())
    return keras.saving.load_model(str(path), compile=False)  # safe_mode: no lambdas deserialised


def _keras_layers(model: Any) -> list[KerasLayer]:
    return [KerasLayer(type(layer).__name__, layer.get_config(), [np.asarray(w, np.float32)
                                                                  for w in layer.get_weights()])
            for layer in model.layers]


# ----- converting ---------------------------------------------------------------------------
def _check_recurrent(class_name: str, config: dict[str, Any], where: str, backward: bool = False) -> None:
    name = config.get("name", class_name)
    if class_name not in _RECURRENT:
        raise ModelImportError(f"{where}: {class_name} layers are not supported (LSTM, GRU, SimpleRNN)")
    activation = config.get("activation", "tanh")
    allowed = ("tanh", "relu") if class_name == "SimpleRNN" else ("tanh",)
    if activation not in allowed:
        raise ModelImportError(f"{where}: layer {name!r} uses activation={activation!r}; supported: {allowed}")
    if class_name != "SimpleRNN" and config.get("recurrent_activation", "sigmoid") != "sigmoid":
        raise ModelImportError(f"{where}: layer {name!r} uses recurrent_activation="
                               f"{config.get('recurrent_activation')!r}; only 'sigmoid' maps onto our layers "
                               "(old Keras 2 models default to hard_sigmoid)")
    for flag in ("stateful", "return_state", "time_major"):
        if config.get(flag):
            raise ModelImportError(f"{where}: layer {name!r} has {flag}=True, which lstmlite does not import")
    if config.get("go_backwards") and not backward:
        raise ModelImportError(f"{where}: layer {name!r} has go_backwards=True (outside Bidirectional), "
                               "which lstmlite does not import")


def _direction_tensors(class_name: str, config: dict[str, Any], weights: list[np.ndarray], where: str
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Keras kernel/recurrent_kernel/bias → PyTorch (w_ih, w_hh, b_ih, b_hh)."""
    use_bias = config.get("use_bias", True)
    if len(weights) != (3 if use_bias else 2):
        raise ModelImportError(f"{where}: expected {3 if use_bias else 2} weight arrays, found {len(weights)}")
    kernel, recurrent = weights[0].T, weights[1].T  # (G*H, I), (G*H, H)
    bias = weights[2] if use_bias else None
    if class_name == "GRU":  # Keras z, r, h → PyTorch r, z, n
        kernel, recurrent = reorder_gates(kernel, KERAS_GRU, TORCH_GRU), reorder_gates(recurrent, KERAS_GRU, TORCH_GRU)
        if bias is not None:
            if bias.ndim == 2:  # reset_after=True: (2, 3H) input and recurrent biases
                return kernel, recurrent, reorder_gates(bias[0], KERAS_GRU, TORCH_GRU), reorder_gates(
                    bias[1], KERAS_GRU, TORCH_GRU)
            bias = reorder_gates(bias, KERAS_GRU, TORCH_GRU)
    # LSTM (i, f, c, o is PyTorch's i, f, g, o) and SimpleRNN need no reordering; Keras
    # has one bias per gate, PyTorch two that add up: put it all in bias_ih.
    return kernel, recurrent, bias, (np.zeros_like(bias) if bias is not None else None)


@dataclass
class _RecurrentSpec:
    class_name: str
    variant: tuple
    hidden: int
    directions: list  # per direction (w_ih, w_hh, b_ih, b_hh)
    return_sequences: bool
    bias: bool
    nonlinearity: str = "tanh"


def _recurrent_spec(layer: KerasLayer, where: str) -> _RecurrentSpec:
    config = layer.config
    if layer.class_name == "Bidirectional":
        if config.get("merge_mode", "concat") != "concat":
            raise ModelImportError(f"{where}: Bidirectional merge_mode={config.get('merge_mode')!r} is not "
                                   "supported (only concat, which is what our bidirectional layers do)")
        forward = config["layer"]
        backward = config.get("backward_layer") or forward
        cls = forward["class_name"]
        if backward["class_name"] != cls:
            raise ModelImportError(f"{where}: Bidirectional with different forward/backward layer kinds")
        _check_recurrent(cls, forward["config"], where)
        _check_recurrent(cls, backward["config"], where, backward=True)
        # Our bidirectional layer has one form for both directions; Keras lets backward_layer differ.
        for key, what in (("units", "sizes"), ("use_bias", "use_bias"), ("reset_after", "reset_after"),
                          ("activation", "activations")):
            if forward["config"].get(key) != backward["config"].get(key):
                raise ModelImportError(f"{where}: Bidirectional with different forward/backward {what} "
                                       f"({forward['config'].get(key)!r} vs {backward['config'].get(key)!r}); "
                                       "lstmlite's bidirectional layers use one form for both directions")
        half = len(layer.weights) // 2
        directions = [_direction_tensors(cls, forward["config"], layer.weights[:half], where),
                      _direction_tensors(cls, backward["config"], layer.weights[half:], where)]
        inner = forward["config"]
    else:
        cls, inner = layer.class_name, config
        _check_recurrent(cls, inner, where)
        directions = [_direction_tensors(cls, inner, layer.weights, where)]
    reset_after = _reset_after(inner, layer.weights) if cls == "GRU" else None
    nonlinearity = inner.get("activation", "tanh") if cls == "SimpleRNN" else "tanh"
    return _RecurrentSpec(cls, (cls, reset_after, nonlinearity, len(directions), inner.get("use_bias", True)),
                          int(inner["units"]), directions, bool(inner.get("return_sequences", False)),
                          bool(inner.get("use_bias", True)), nonlinearity)


def _reset_after(config: dict[str, Any], weights: list[np.ndarray]) -> bool:
    """A GRU's ``reset_after``. Keras writes it in every config since 2.1.3; a file from before
    lacks it and computes the reset-before form (its bias is one (3H,) vector, not (2, 3H))."""
    if "reset_after" in config:
        return bool(config["reset_after"])
    return len(weights) > 2 and np.ndim(weights[2]) == 2


def _stack(specs: list[_RecurrentSpec], input_size: int) -> RecurrentLayer:
    first = specs[0]
    for k, spec in enumerate(specs[1:], start=1):
        if spec.variant != first.variant:
            raise ModelImportError(f"recurrent layer {k} ({spec.variant[0]}, {spec.variant[3]} direction(s)) differs "
                                   f"from layer 0 ({first.variant[0]}, {first.variant[3]}); lstmlite stacks one "
                                   "kind of layer")
    kwargs: dict[str, Any] = dict(input_size=input_size, hidden_size=[s.hidden for s in specs],
                                  num_layers=len(specs), bias=first.bias, bidirectional=len(first.directions) == 2)
    cls = first.class_name
    if cls == "LSTM":
        layer: RecurrentLayer = LSTM(**kwargs)
    elif cls == "GRU":
        layer = GRU(**kwargs) if first.variant[1] else GRUResetBefore(**kwargs)
    else:
        layer = SimpleRNN(**kwargs, nonlinearity=first.nonlinearity)
    with torch.no_grad():
        for k, spec in enumerate(specs):
            for suffix, tensors in zip(layer._suffixes(), spec.directions):
                for kind, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), tensors):
                    if value is None:
                        continue
                    target = getattr(layer, f"{kind}_l{k}{suffix}")
                    if tuple(target.shape) != value.shape:
                        raise ModelImportError(f"recurrent layer {k}: {kind} has shape {value.shape}, expected "
                                               f"{tuple(target.shape)}")
                    target.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return layer.eval()


def _check_softmax_axis(axis: Any, rank: int, where: str) -> None:
    """Refuse a ``Softmax`` layer over any axis but the head's classes (the last of ``rank``):
    our models return logits and importers re-apply the activation over the last axis, so
    a softmax over time (``axis=1`` on a per-step output) would be recorded as one over the
    classes, silently, in an ``.h5`` import (which is not run)."""
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if [int(a) % rank for a in axes] != [rank - 1]:
        raise ModelImportError(f"{where}: Softmax over axis {axis} of the ({', '.join(['B', 'T', 'C'][-rank:])}) "
                               "output is not supported: lstmlite imports a softmax over the classes (axis -1)")


def model_from_keras_layers(layers: list[KerasLayer]) -> tuple[nn.Module, dict[str, Any]]:
    """Build our model from a linear list of Keras layers; returns (model, info)."""
    embedding = None
    mask_zero = False
    specs: list[_RecurrentSpec] = []
    head_weight = head_bias = None
    activation = None
    for index, layer in enumerate(layers):
        where = f"layer {index} ({layer.config.get('name', layer.class_name)})"
        name = layer.class_name
        if name in _NOOP_LAYERS:
            continue
        if name == "Embedding":
            if embedding is not None or specs:
                raise ModelImportError(f"{where}: an Embedding must come first, once")
            embedding = layer.weights[0]
            mask_zero = bool(layer.config.get("mask_zero", False))
        elif name in _RECURRENT or name == "Bidirectional":
            if head_weight is not None:
                raise ModelImportError(f"{where}: a recurrent layer after the Dense head is not supported")
            if specs and not specs[-1].return_sequences:
                raise ModelImportError(f"{where}: the previous recurrent layer has return_sequences=False, so "
                                       "this one cannot be stacked on it")
            specs.append(_recurrent_spec(layer, where))
        elif name == "Dense":
            if not specs or head_weight is not None:
                raise ModelImportError(f"{where}: lstmlite imports one Dense layer, after the recurrent layers")
            act = layer.config.get("activation")
            if act not in _HEAD_ACTIVATIONS:
                raise ModelImportError(f"{where}: Dense activation {act!r} is not supported (softmax, "
                                       "log_softmax, sigmoid, linear)")
            activation = _HEAD_ACTIVATIONS[act]
            head_weight = layer.weights[0].T
            head_bias = layer.weights[1] if layer.config.get("use_bias", True) else None
        elif name in ("Activation", "Softmax") and head_weight is not None and activation is None:
            act = layer.config.get("activation", "softmax") if name == "Activation" else "softmax"
            if name == "Softmax":
                _check_softmax_axis(layer.config.get("axis", -1), 3 if specs[-1].return_sequences else 2, where)
            if act not in _HEAD_ACTIVATIONS:
                raise ModelImportError(f"{where}: activation {act!r} after the head is not supported")
            activation = _HEAD_ACTIVATIONS[act]
        else:
            raise ModelImportError(f"{where}: Keras layer {name} is not supported by the lstmlite importer")
    if not specs:
        raise ModelImportError("the Keras model has no LSTM, GRU or SimpleRNN layer")
    input_size = int(embedding.shape[1]) if embedding is not None else int(specs[0].directions[0][0].shape[1])
    rnn = _stack(specs, input_size)
    per_step = specs[-1].return_sequences
    if head_weight is None:
        kind = "layer"
    elif per_step:
        kind = per_step_kind(None if embedding is None else int(embedding.shape[0]), int(head_weight.shape[0]),
                             rnn.bidirectional)
    else:
        kind = "classifier" if head_weight.shape[0] > 1 else "forecaster"
    model = assemble_model(
        rnn, kind,
        embedding=None if embedding is None else torch.from_numpy(np.ascontiguousarray(embedding)),
        head_weight=None if head_weight is None else torch.from_numpy(np.ascontiguousarray(head_weight)),
        head_bias=None if head_bias is None else torch.from_numpy(np.ascontiguousarray(head_bias)),
        pooling="none" if per_step else "last")
    info = {"source": "keras", "output_activation": activation, "mask_zero": mask_zero,
            "cell": f"{specs[0].class_name}" + ("" if specs[0].variant[1] in (None, True) else " reset_after=False")}
    if mask_zero:
        info["note"] = ("Keras skips id-0 steps (mask_zero=True): pad at the end and pass lengths=(x != 0).sum(1) "
                        "to get Keras's results")
    return model, info


def _verify(keras_model: Any, model: nn.Module, info: dict[str, Any], atol: float) -> float:
    """Run Keras and our model on the same random batch; raise if they differ."""
    rng = np.random.default_rng(0)
    batch, steps = 3, 7
    embedding = getattr(model, "embedding", None)
    lengths = None
    if embedding is not None:
        x = rng.integers(1, embedding.num_embeddings, size=(batch, steps))
        if info.get("mask_zero"):
            lengths = np.array([steps, steps - 2, 3])
            x[np.arange(steps)[None, :] >= lengths[:, None]] = 0  # padding at the end
    else:
        rnn = model if isinstance(model, RecurrentLayer) else model.rnn
        x = rng.standard_normal((batch, steps, rnn.input_size)).astype(np.float32)
    expected = np.asarray(keras_model.predict(x, verbose=0), dtype=np.float64)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        if isinstance(model, RecurrentLayer):
            ours = model(xt)[0]
        elif getattr(model, "kind", "") == "lm":
            ours = model(xt)[0]
        else:
            ours = model(xt, lengths=None if lengths is None else torch.from_numpy(lengths))
        ours = apply_output_activation(ours, info.get("output_activation"))
    ours_np = ours.double().numpy()
    if lengths is not None and ours_np.ndim == 3:  # per-step outputs: Keras's masked steps are not comparable
        valid = np.arange(steps)[None, :] < lengths[:, None]
        expected, ours_np = expected[valid], ours_np[valid]
    if expected.shape != ours_np.shape:
        raise ModelImportError(f"Keras gives shape {expected.shape}, the imported model {ours_np.shape}")
    error = float(np.max(np.abs(expected - ours_np)))
    if error > atol + 1e-4 * float(np.max(np.abs(expected))):
        raise ModelImportError(f"the imported model does not reproduce the Keras model (max error {error:.3g})")
    return error


def import_keras(path: str | Path, out: str | Path | None = None, *, verify: bool = True,
                 atol: float = 1e-5, overwrite: bool = False) -> nn.Module:
    """Import a Keras recurrent model.

    Args:
        path: a ``.keras`` file (read by Keras 3 on the PyTorch backend) or a legacy
            ``.h5``/``.hdf5`` file (read with h5py alone).
        out: when given, also write the model as a run dir there (``overwrite``: replacing a
            run dir of ours already there).
        verify: for ``.keras`` files, run Keras and our model on a random batch and
            fail unless they agree within ``atol`` (+ 1e-4 relative). ``.h5`` files are
            read without Keras and are not run.

    Returns:
        Our model (eval mode, batch-first input, logits out); ``model.import_info``
        records the dropped output activation and the ``mask_zero`` setting.

    Raises:
        ModelImportError: a layer or setting lstmlite does not map (see module doc).
    """
    from ._common import read_model_file

    path = Path(path)
    if out is not None:
        from ..io import check_out_dir

        check_out_dir(out, overwrite=overwrite)  # before the import's work, not after it
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        layers, meta = read_model_file(path, "Keras HDF5", read_h5_layers)
        model, info = model_from_keras_layers(layers)
        info.update(meta)
    elif suffix == ".keras":
        keras_model = read_model_file(path, "Keras", _load_keras_model)
        model, info = model_from_keras_layers(_keras_layers(keras_model))
        if verify:
            info["verified_max_error"] = _verify(keras_model, model, info, atol)
    else:
        from ._common import refuse_other_format

        refuse_other_format(path, "Keras")
        raise ModelImportError(f"{path}: expected a .keras or .h5 file")
    info["file"] = str(path)
    model.import_info = info
    if out is not None:
        save_imported(out, model, info, overwrite=overwrite)
    return model
