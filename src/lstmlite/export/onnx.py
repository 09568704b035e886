"""Export lstmlite models to ONNX with the standard ``LSTM`` / ``GRU`` / ``RNN`` operators.

The graph is written with ``onnx.helper`` directly (not traced), so its shape is
fixed and known to our importer:

    input (B, T) int64 tokens ─► Gather(embedding) ─┐
    input (B, T, F) float ──────────────────────────┴► Transpose → (T, B, I)
      ─► LSTM|GRU|RNN per layer (layout 0, sequence_lens = lengths) → Y (T, D, B, H)
         Transpose + Reshape → (T, B, D*H) between layers
      ─► pooling: "last" = each sequence's final state Y_h (D, B, H) → (B, D*H)
                  (forward at its last valid step, backward at step 0 — what our
                  classifier reads), "mean"/"max" over the valid steps
      ─► head: Gemm (B, F) → (B, C)      LanguageModel, SequenceTagger: Gemm on the (B·T, F) steps → (B, T, V)
      ─► [Softmax] ─► output

Batch and time are dynamic axes. Weights are the *effective* ones (read as
attributes, so pruning masks, fake quantization and low-rank products are baked
in), converted from PyTorch's gate order (i,f,g,o / r,z,n) to ONNX's (i,o,f,c / z,r,h);
PyTorch's GRU is ``linear_before_reset=1``.

What each recurrent layer becomes:

* :class:`lstmlite.nn.LSTM` → ``LSTM``; ``proj_size`` > 0 raises NotImplementedError
  (the ONNX op has no projection).
* :class:`lstmlite.nn.GRU` → ``GRU`` with ``linear_before_reset=1``.
* ``GroupedLSTM`` → ``LSTM`` with its block-diagonal dense weights and the channel
  shuffle folded into the next layer's input weights: exact, but ONNX runtimes then
  do the dense (G times larger) arithmetic.
* ``FastGRNN`` → one ``Scan`` per layer whose body is MatMul / Add / Sigmoid / Tanh /
  Mul (see :mod:`lstmlite.export.onnx_fastgrnn`): no ONNX operator computes it.
* :class:`lstmlite.importers.layers.SimpleRNN` → ``RNN``;
  :class:`~lstmlite.importers.layers.GRUResetBefore` → ``GRU`` with ``linear_before_reset=0``.

Example:
    >>> import tempfile, os
    >>> from lstmlite.nn import SequenceClassifier
    >>> model = SequenceClassifier(vocab_size=50, embed_dim=8, hidden_size=16, n_classes=3)
    >>> path = export_onnx(model, os.path.join(tempfile.mkdtemp(), "model.onnx"))
    >>> path.name
    'model.onnx'
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..importers.gates import ONNX_GRU, ONNX_LSTM, ONNX_RNN, TORCH_GRU, TORCH_LSTM, TORCH_RNN, reorder_gates

__all__ = ["export_onnx", "build_onnx_model", "check_onnx", "check_opset", "max_opset", "read_export_metadata",
           "DEFAULT_OPSET", "INT4_OPSET", "METADATA_KEY"]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
MIN_OPSET = 14
#: the first opset whose DequantizeLinear takes int4 codes (two per byte)
INT4_OPSET = 21
#: metadata_props key holding ``model.config()`` as JSON (read back by import_onnx).
METADATA_KEY = "lstmlite.model_config"


# ----- what a recurrent layer becomes in ONNX ---------------------------------------------
@dataclass
class OnnxRecurrentLayer:
    """One ONNX recurrent node: op type, attributes and per-direction weights in PyTorch layout.

    ``weights[d]`` is ``(w_ih (G*H, I), w_hh (G*H, H), b_ih (G*H,) | None, b_hh | None)``
    with PyTorch's gate order; :meth:`onnx_tensors` converts them.
    """

    op: str  # "LSTM" | "GRU" | "RNN"
    hidden_size: int
    weights: list[tuple[Tensor, Tensor, Tensor | None, Tensor | None]]
    attrs: dict[str, Any] = field(default_factory=dict)
    #: per direction, the layer's parameter names of w_ih and w_hh (for quantized export)
    names: list[tuple[str, str]] = field(default_factory=list)

    @property
    def gate_orders(self) -> tuple[str, str]:
        return {"LSTM": (TORCH_LSTM, ONNX_LSTM), "GRU": (TORCH_GRU, ONNX_GRU), "RNN": (TORCH_RNN, ONNX_RNN)}[self.op]

    def onnx_tensors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) or None, float32, in ONNX gate order."""
        source, target = self.gate_orders

        def conv(t: Tensor) -> np.ndarray:
            return reorder_gates(t.detach().to(torch.float32).cpu().numpy(), source, target)

        w = np.stack([conv(d[0]) for d in self.weights])
        r = np.stack([conv(d[1]) for d in self.weights])
        if self.weights[0][2] is None:
            return w, r, None
        b = np.stack([np.concatenate([conv(d[2]), conv(d[3])]) for d in self.weights])  # type: ignore[arg-type]
        return w, r, b


def recurrent_layers_for_onnx(rnn: nn.Module) -> list[OnnxRecurrentLayer]:
    """Describe ``rnn`` (any of our recurrent layers) as a stack of ONNX recurrent nodes.

    Raises:
        NotImplementedError: for layers with no ONNX recurrent operator (``FastGRNN``:
            :mod:`.onnx_fastgrnn` writes it as a Scan; an LSTM with ``proj_size``).
    """
    from ..importers.layers import GRUResetBefore, SimpleRNN
    from ..nn.layers import GRU, LSTM

    name = type(rnn).__name__
    if isinstance(rnn, (LSTM, GRU, SimpleRNN, GRUResetBefore)):
        if isinstance(rnn, LSTM) and any(rnn.proj_sizes):
            raise NotImplementedError(
                f"ONNX export of layer rnn (LSTM, proj_size={max(rnn.proj_sizes)}) is not supported: the ONNX LSTM "
                "op has no projection; nearest exportable form: the same LSTM without proj_size (or a FastGRNN)")
        # isinstance, not type(): a parametrized (compressed) layer is a generated subclass.
        if isinstance(rnn, LSTM):
            op, attrs = "LSTM", {}
        elif isinstance(rnn, GRU):
            op, attrs = "GRU", {"linear_before_reset": 1}
        elif isinstance(rnn, GRUResetBefore):
            op, attrs = "GRU", {"linear_before_reset": 0}
        else:
            op = "RNN"
            activation = "Tanh" if rnn.nonlinearity == "tanh" else "Relu"
            attrs = {"activations": [activation] * rnn.num_directions}
        layers = []
        for k in range(rnn.num_layers):
            per_direction, names = [], []
            for suffix in rnn._suffixes():
                get = lambda kind: getattr(rnn, f"{kind}_l{k}{suffix}")  # noqa: E731 - effective weights
                biases = (get("bias_ih"), get("bias_hh")) if rnn.bias else (None, None)
                per_direction.append((get("weight_ih"), get("weight_hh"), *biases))
                names.append((f"weight_ih_l{k}{suffix}", f"weight_hh_l{k}{suffix}"))
            layers.append(OnnxRecurrentLayer(op, rnn.hidden_sizes[k], per_direction, dict(attrs), names))
        return layers
    cells = _efficient_cells()
    if "GroupedLSTM" in cells and isinstance(rnn, cells["GroupedLSTM"]):
        return _grouped_lstm_layers(rnn)
    if "FastGRNN" in cells and isinstance(rnn, cells["FastGRNN"]):
        raise NotImplementedError("FastGRNN has no ONNX recurrent operator: it is written as a Scan "
                                  "(lstmlite.export.onnx_fastgrnn.fastgrnn_stack)")
    raise NotImplementedError(f"ONNX export of recurrent layer {name} is not supported; nearest exportable form: "
                              "an lstmlite LSTM, GRU or FastGRNN of the same sizes")


def _efficient_cells() -> dict[str, type]:
    try:
        from ..nn.cells import FastGRNN, GroupedLSTM
    except ImportError:  # pragma: no cover - cells module absent
        return {}
    return {"GroupedLSTM": GroupedLSTM, "FastGRNN": FastGRNN}


def _grouped_lstm_layers(rnn: nn.Module) -> list[OnnxRecurrentLayer]:
    """A grouped LSTM as ordinary LSTM nodes with block-diagonal weights (exact)."""
    from ..nn._cell_kernels import channel_shuffle, glstm_dense_weights

    layers = []
    for k in range(rnn.num_layers):
        names = rnn.weight_names(k)
        tensors = [getattr(rnn, n) for n in names] + ([] if rnn.bias else [None, None])
        dense = glstm_dense_weights(*tensors)
        w_ih, w_hh = dense[0], dense[1]
        if k > 0 and rnn.shuffle and rnn.groups > 1:
            # The layer reads channel_shuffle(previous output): input p is previous feature
            # src[p]; fold that permutation into the columns so ONNX needs no shuffle node.
            src = channel_shuffle(torch.arange(w_ih.shape[1], dtype=torch.float64), rnn.groups).long()
            folded = torch.zeros_like(w_ih)
            folded[:, src] = w_ih
            w_ih = folded
        b_ih, b_hh = (dense[2], dense[3]) if rnn.bias else (None, None)
        layers.append(OnnxRecurrentLayer("LSTM", rnn.hidden_sizes[k], [(w_ih, w_hh, b_ih, b_hh)]))
    return layers


def _grouped_codes(rnn: nn.Module, layers: list[OnnxRecurrentLayer], quant: dict[str, Any], prefix: str,
                   found: dict[str, Any]) -> None:
    """Add to ``quant`` a grouped LSTM's quantized (G, 4Hg, C) weights as the codes of the dense
    block-diagonal matrices :func:`_grouped_lstm_layers` writes -- codes laid out as the weights
    (zeros off the blocks, the channel shuffle folded into the columns), each row with its
    group's scale -- and name them on the layers, so QDQ stores them as it stores any layer's.
    A matrix whose codes do not give its effective weights (changed after quantizing by more
    than a mask) stays float."""
    from ..nn._cell_kernels import channel_shuffle, glstm_dense_weights
    from .lsl import fitted_codes

    for k, layer in enumerate(layers):
        names = (f"weight_ih_l{k}", f"weight_hh_l{k}")
        q = [found.get(f"{prefix}{n}") for n in names]
        if all(t is None or t.codes.dim() != 3 for t in q):
            continue
        shapes = [getattr(rnn, n).shape for n in names]
        codes = [t.codes.to(torch.float64) if t is not None else torch.zeros(shape, dtype=torch.float64)
                 for t, shape in zip(q, shapes)]
        dense = glstm_dense_weights(codes[0], codes[1], None, None)
        if k > 0 and rnn.shuffle and rnn.groups > 1:  # as _grouped_lstm_layers folds the floats
            src = channel_shuffle(torch.arange(dense[0].shape[1], dtype=torch.float64), rnn.groups).long()
            folded = torch.zeros_like(dense[0])
            folded[:, src] = dense[0]
            dense[0] = folded
        effective = layer.weights[0][:2]
        for name, t, d, w in zip(names, q, dense, effective):
            if t is None:
                continue
            groups, rows = t.codes.shape[0], t.codes.shape[1] // 4
            # dense row q*H + g*Hg + j belongs to group g: its scale is the group's
            scales = t.scales.reshape(-1).expand(groups).reshape(1, groups, 1).expand(4, groups, rows).reshape(-1)
            coded = t._replace(codes=d.to(torch.int8), scales=scales.to(torch.float32).contiguous())
            # kept by the .lsl writer's test, as every other tensor's codes (_quantized_weights)
            fitted = fitted_codes(f"{prefix}{name}", coded, w.detach().float().cpu().numpy())
            if fitted is not None:
                quant[f"{prefix}{name}"] = coded._replace(codes=torch.from_numpy(fitted.q))
        layer.names = [names]


# ----- graph building ---------------------------------------------------------------------
class _Graph:
    """Collects nodes and initializers with unique names."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0
        #: int4 tensors stored as int8 codes because the opset has no int4 DequantizeLinear
        self.int4_as_int8 = 0

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def int4(self, name: str, codes: np.ndarray) -> str:
        """An INT4 initializer: values in [-8, 7] packed two per byte, the first in the low nibble."""
        from onnx import TensorProto, helper

        flat = codes.astype(np.int8).reshape(-1)
        if flat.size and (flat.min() < -8 or flat.max() > 7):
            raise ValueError(f"{name}: int4 codes must lie in [-8, 7], got [{flat.min()}, {flat.max()}]")
        nibbles = flat.astype(np.uint8) & 0x0F
        if nibbles.size % 2:
            nibbles = np.append(nibbles, np.uint8(0))
        packed = (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()
        self.initializers.append(helper.make_tensor(name, TensorProto.INT4, list(codes.shape), packed, raw=True))
        return name

    def ints(self, name: str, values: list[int]) -> str:
        return self.const(name, np.asarray(values, dtype=np.int64))

    def node(self, op: str, inputs: list[str], n_out: int = 1, name: str | None = None,
             outputs: list[str] | None = None, **attrs: Any) -> list[str]:
        from onnx import helper

        self._count += 1
        base = name or f"{op.lower()}_{self._count}"
        outputs = outputs or [f"{base}_out{i}" if n_out > 1 else f"{base}_out" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=base, **attrs))
        return outputs

    def one(self, op: str, inputs: list[str], **attrs: Any) -> str:
        return self.node(op, inputs, **attrs)[0]

    def dequantized(self, name: str, codes: np.ndarray, scales: np.ndarray, shape: list[int] | None = None,
                    bits: int = 8) -> str:
        """Integer ``codes`` (N, C) with per-row ``scales`` (N,) → DequantizeLinear (axis 0) → float [→ shape].

        Codes of ``bits`` ≤ 4 are stored as ONNX int4 (two per byte) from opset
        :data:`INT4_OPSET` on; before it, as int8 (one per byte), counted in ``int4_as_int8``.
        """
        rows = codes.shape[0]
        if bits <= 4 and self.opset >= INT4_OPSET:
            code_name = self.int4(f"{name}.codes", codes)
            zero_point = self.int4(f"{name}.zero_point", np.zeros(rows, np.int8))
        else:
            if bits <= 4:
                self.int4_as_int8 += 1
            code_name = self.const(f"{name}.codes", codes.astype(np.int8))
            zero_point = self.const(f"{name}.zero_point", np.zeros(rows, np.int8))
        out = self.one("DequantizeLinear", [code_name, self.const(f"{name}.scale", scales.astype(np.float32)),
                                            zero_point], axis=0)
        if shape is not None:
            out = self.one("Reshape", [out, self.ints(f"{name}.shape", list(shape))])
        return out

    def reduce(self, op: str, x: str, axis: int, keepdims: int = 0) -> str:
        """Reduce* over one axis; axes moved from attribute to input in opset 18 (13 for ReduceSum)."""
        takes_input = self.opset >= (13 if op == "ReduceSum" else 18)
        if takes_input:
            return self.one(op, [x, self.ints(f"axes_{op.lower()}_{self._count}", [axis])], keepdims=keepdims)
        return self.one(op, [x], axes=[axis], keepdims=keepdims)


def _direction_codes(q: Any, gate_orders: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """One direction's codes (G*H, C) and per-row scales (G*H,), in ONNX gate order."""
    source, target = gate_orders
    scale = q.scales.expand(q.codes.shape[0]) if q.scales.numel() == 1 else q.scales  # per-tensor → per row
    return reorder_gates(q.codes.cpu().numpy(), source, target), reorder_gates(scale.cpu().numpy(), source, target)


def _stacked_codes(layer: OnnxRecurrentLayer, which: int, quant: dict[str, Any], prefix: str
                   ) -> tuple[np.ndarray, np.ndarray, list[int], int] | None:
    """Integer codes (D*G*H, C), per-row scales (D*G*H,) in ONNX gate order, the shape (D, G*H, C)
    and the widest code's bits, if every direction has codes."""
    codes, scales, bits = [], [], 0
    for names in layer.names:
        q = quant.get(f"{prefix}{names[which]}")
        if q is None:
            return None
        bits = max(bits, q.bits)
        direction_codes, direction_scales = _direction_codes(q, layer.gate_orders)
        codes.append(direction_codes)
        scales.append(direction_scales)
    stacked = np.stack(codes)  # (D, G*H, C)
    return stacked.reshape(-1, stacked.shape[-1]), np.concatenate(scales), list(stacked.shape), bits


def _mixed_directions(g: _Graph, layer: OnnxRecurrentLayer, which: int, quant: dict[str, Any], prefix: str,
                      dense: np.ndarray, name: str) -> str | None:
    """W or R (D, G*H, C) of a layer whose directions are not all quantized (a filter that
    took the forward direction only): each direction's codes + DequantizeLinear, or its
    floats, as (1, G*H, C), concatenated along the directions. None when no direction has codes."""
    found = [quant.get(f"{prefix}{names[which]}") for names in layer.names]
    if all(q is None for q in found):
        return None
    parts = []
    for d, q in enumerate(found):
        if q is None:
            parts.append(g.const(f"{name}_d{d}", np.ascontiguousarray(dense[d:d + 1])))
            continue
        codes, scales = _direction_codes(q, layer.gate_orders)
        parts.append(g.dequantized(f"{name}_d{d}", codes, scales, shape=[1, *codes.shape], bits=q.bits))
    return g.one("Concat", parts, axis=0)


def _recurrent_stack(g: _Graph, layers: list[OnnxRecurrentLayer], x: str, seq_lens: str | None,
                     prefix: str, quant: dict[str, Any] | None = None, quant_prefix: str = "",
                     initial: list[list[str]] | None = None) -> tuple[str, list[list[str]]]:
    """Emit the recurrent nodes. x: (T, B, I). Returns seq (T, B, D*H) and per layer [Y_h(, Y_c)].

    ``quant``: quantized tensors by parameter name (``quant_prefix`` + ``weight_ih_l0``);
    W and R with codes are stored as int8 + DequantizeLinear (QDQ), the rest as float.
    ``initial``: per layer the names of its initial_h (and initial_c) inputs (D, B, H).
    """
    shape_tbf = g.ints(f"{prefix}.shape_tbf", [0, 0, -1])
    states = []
    for k, layer in enumerate(layers):
        w, r, b = layer.onnx_tensors()
        directions = w.shape[0]
        matrices = []
        for which, (label, dense) in enumerate((("W", w), ("R", r))):
            coded = _stacked_codes(layer, which, quant, quant_prefix) if quant and layer.names else None
            mixed = _mixed_directions(g, layer, which, quant, quant_prefix, dense, f"{prefix}.{label}_l{k}") \
                if coded is None and quant and layer.names else None
            if mixed is not None:  # some directions quantized, others not
                matrices.append(mixed)
            elif coded is None:
                matrices.append(g.const(f"{prefix}.{label}_l{k}", dense))
            else:
                matrices.append(g.dequantized(f"{prefix}.{label}_l{k}", *coded))
        inputs = [x, *matrices]
        inputs.append(g.const(f"{prefix}.B_l{k}", b) if b is not None else "")
        inputs.append(seq_lens or "")
        if initial is not None:
            inputs.extend(initial[k])
        while inputs and inputs[-1] == "":  # trailing optional inputs are omitted
            inputs.pop()
        n_out = 3 if layer.op == "LSTM" else 2
        outs = g.node(layer.op, inputs, n_out=n_out, name=f"{prefix}.{layer.op.lower()}_l{k}",
                      hidden_size=layer.hidden_size,
                      direction="bidirectional" if directions == 2 else "forward", **layer.attrs)
        y = g.one("Transpose", [outs[0]], perm=[0, 2, 1, 3])  # (T, D, B, H) → (T, B, D, H)
        x = g.one("Reshape", [y, shape_tbf])  # (T, B, D*H): directions side by side, as PyTorch
        states.append(outs[1:])
    return x, states


def _valid_steps(g: _Graph, x: str, lengths: str, time_axis: int, prefix: str) -> str:
    """Bool mask of valid steps shaped like x's first two axes plus 1: (T, B, 1) or (B, T, 1)."""
    steps = g.one("Gather", [g.one("Shape", [x]), g.ints(f"{prefix}.time_axis", [time_axis])], axis=0)  # (1,)
    t_range = g.one("Range", [g.const(f"{prefix}.start", np.array(0, np.int64)),
                              g.one("Squeeze", [steps, g.ints(f"{prefix}.axis0", [0])]),
                              g.const(f"{prefix}.delta", np.array(1, np.int64))])  # (T,)
    t_axis = g.ints(f"{prefix}.t_axis", [1 - time_axis])
    b_axis = g.ints(f"{prefix}.b_axis", [time_axis])
    valid = g.one("Less", [g.one("Unsqueeze", [t_range, t_axis]), g.one("Unsqueeze", [lengths, b_axis])])
    return g.one("Unsqueeze", [valid, g.ints(f"{prefix}.axis2", [2])])


def _pool(g: _Graph, pooling: str, seq: str, last_state: str, lengths: str | None) -> str:
    """(T, B, F) sequence → (B, F) summary, as SequenceClassifier.features does it."""
    if pooling == "last":
        # Y_h (D, B, H): forward state at each sequence's last valid step, backward state
        # after running back to step 0 — exactly _final_features.
        y = g.one("Transpose", [last_state], perm=[1, 0, 2])
        return g.one("Reshape", [y, g.ints("pool.shape_bf", [0, -1])])
    if lengths is None:
        return g.reduce("ReduceMean" if pooling == "mean" else "ReduceMax", seq, axis=0)
    valid = _valid_steps(g, seq, lengths, time_axis=0, prefix="pool")  # (T, B, 1) bool
    if pooling == "mean":
        mask = g.one("Cast", [valid], to=1)
        total = g.reduce("ReduceSum", g.one("Mul", [seq, mask]), axis=0)
        count = g.one("Max", [g.reduce("ReduceSum", mask, axis=0), g.const("pool.one", np.array(1.0, np.float32))])
        return g.one("Div", [total, count])
    masked = g.one("Where", [valid, seq, g.const("pool.neg_inf", np.array(-np.inf, np.float32))])
    return g.reduce("ReduceMax", masked, axis=0)


def _instance_norm(g: _Graph, x: str, lengths: str | None) -> tuple[str, str]:
    """Forecaster's RevIN: subtract each window's mean over valid steps; x (B, T, F) → (x', level (B, 1, F))."""
    if lengths is None:
        level = g.one("ReduceMean", [x], axes=[1], keepdims=1) if g.opset < 18 else g.one(
            "ReduceMean", [x, g.ints("norm.axes", [1])], keepdims=1)
        return g.one("Sub", [x, level]), level
    valid = _valid_steps(g, x, lengths, time_axis=1, prefix="norm")  # (B, T, 1) bool
    mask = g.one("Cast", [valid], to=1)
    axes = g.ints("norm.axes", [1])
    zero = g.const("norm.zero", np.array(0.0, np.float32))
    # Where, not a product with the mask: NaN padding times 0 is NaN (as the model does)
    total = g.one("ReduceSum", [g.one("Where", [valid, x, zero]), axes], keepdims=1)
    level = g.one("Div", [total, g.one("ReduceSum", [mask, axes], keepdims=1)])  # (B, 1, F)
    return g.one("Where", [valid, g.one("Sub", [x, level]), zero]), level


def _forecast_output(g: _Graph, model: nn.Module, y: str, level: str | None) -> tuple[str, list[Any]]:
    """(B, horizon*targets) → (B, horizon, targets) [+ level of the target features] → (B, horizon) if 1 target."""
    y = g.one("Reshape", [y, g.ints("head.shape", [0, model.horizon, model.targets])])
    if level is not None:
        target_level = g.one("Slice", [level, g.ints("head.level_start", [0]),
                                       g.ints("head.level_end", [model.targets]), g.ints("head.level_axis", [2])])
        y = g.one("Add", [y, target_level])  # (B, horizon, targets) + (B, 1, targets)
    if model.targets == 1:
        return g.one("Reshape", [y, g.ints("head.shape1", [0, model.horizon])]), ["batch", model.horizon]
    return y, ["batch", model.horizon, model.targets]


def _f32(t: Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).cpu().numpy()


def _quantized_weights(model: nn.Module) -> dict[str, Any]:
    """The model's int codes + scales by parameter name, kept only where they reproduce the
    effective tensor (the ``.lsl`` writer's test, :func:`~lstmlite.export.lsl.fitted_codes`):
    a tensor pruned after it was quantized (its codes predate the mask) keeps its codes
    with the mask's zeros applied; one changed otherwise after quantizing goes out as float.
    """
    try:
        from ..compress.quantize import quantized_tensors
    except ImportError as err:  # pragma: no cover - compression package absent
        raise NotImplementedError("quantized ONNX export needs lstmlite.compress") from err
    from .lsl import fitted_codes

    found = {}
    for name, q in quantized_tensors(model).items():
        if q.codes.dim() != 2 or q.bits > 8:
            continue  # grouped 3-D weights: laid out as dense block-diagonal codes by _grouped_codes
        owner, _, leaf = name.rpartition(".")
        try:
            module = model.get_submodule(owner) if owner else model
        except AttributeError:  # a quantized low-rank factor ("rnn.weight_ih_l0.original0")
            continue
        effective = getattr(module, leaf, None)
        if not isinstance(effective, Tensor) or effective.shape != q.codes.shape:
            continue
        fitted = fitted_codes(name, q, effective.detach().float().cpu().numpy())
        if fitted is not None:
            found[name] = q._replace(codes=torch.from_numpy(fitted.q).to(q.codes.device, q.codes.dtype))
    return found


def _no_codes_reason(model: nn.Module, whose: str = "the model's") -> str:
    """Why ``quantize='qdq'`` finds nothing to store as codes, in one line naming what to do
    (``whose``: how the message names the model; the seq2seq pair's export says so too)."""
    from ..compress.quantize import quantized_tensors

    found = quantized_tensors(model)
    if not found:
        return ("quantize='qdq' needs a model with quantized weights (compress it with a weight_quant / "
                "fake_quant recipe first)")
    return (f"quantize='qdq': none of {whose} quantized tensors ({', '.join(sorted(found))}) can be stored as "
            "codes in ONNX (low-rank factors are written as their float product, a tensor changed after "
            "quantizing by more than a mask as its floats); export without --quantize, or with --format lsl, "
            "which keeps them")


def _weight(g: _Graph, name: str, tensor: Tensor, quant: dict[str, Any], key: str) -> str:
    """A float weight as an initializer, or int8 codes + DequantizeLinear when quantized."""
    q = quant.get(key)
    if q is None:
        return g.const(name, _f32(tensor))
    scales = q.scales.expand(q.codes.shape[0]) if q.scales.numel() == 1 else q.scales
    return g.dequantized(name, q.codes.cpu().numpy(), scales.cpu().numpy(), bits=q.bits)


def _is_fastgrnn(rnn: nn.Module) -> bool:
    cell = _efficient_cells().get("FastGRNN")
    return cell is not None and isinstance(rnn, cell)


def max_opset() -> int:
    """The newest opset lstmlite can write: the installed onnx package's newest."""
    from onnx.defs import onnx_opset_version

    return int(onnx_opset_version())


def check_opset(opset: int | None) -> None:
    """Refuse an opset outside :data:`MIN_OPSET` .. :func:`max_opset` (None: the default)
    in one line naming the range, before anything is built.

    Example:
        >>> check_opset(17)
        >>> check_opset(9)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: opset 9 is too old; lstmlite writes opsets 14 to ...
    """
    if opset is None:
        return
    newest = max_opset()
    if not MIN_OPSET <= opset <= newest:
        why = "too old" if opset < MIN_OPSET else "newer than the installed onnx package knows"
        raise ValueError(f"opset {opset} is {why}; lstmlite writes opsets {MIN_OPSET} to {newest}")


def build_onnx_model(model: nn.Module, opset: int | None = None, lengths: bool | None = None,
                     probabilities: bool = False, quantize: str | None = None, stateful: bool = False) -> Any:
    """Build the ONNX ``ModelProto`` for ``model`` (see :func:`export_onnx`)."""
    import onnx
    from onnx import TensorProto, helper

    from ..importers.layers import GRUResetBefore, SimpleRNN
    from ..nn.layers import RecurrentLayer
    from ..nn.models import Forecaster, LanguageModel, SequenceClassifier, SequenceTagger

    check_opset(opset)
    model = model.eval()
    bare = isinstance(model, (RecurrentLayer, *_efficient_cells().values()))
    if not bare and not isinstance(model, (SequenceClassifier, LanguageModel, Forecaster, SequenceTagger)):
        raise TypeError(f"export_onnx expects an lstmlite task model or recurrent layer, got {type(model).__name__}")
    rnn = model if bare else model.rnn
    layers = None if _is_fastgrnn(rnn) else recurrent_layers_for_onnx(rnn)
    hidden_sizes = list(rnn.hidden_sizes) if layers is None else [layer.hidden_size for layer in layers]
    is_lm = isinstance(model, LanguageModel)
    per_step = is_lm or isinstance(model, SequenceTagger)  # a head at every step: (B, T, C) logits
    if stateful:
        _check_stateful(model, rnn, layers, per_step, lengths)
        lengths = False
    if lengths is None:
        lengths = not bare and not is_lm  # classifier/forecaster pad variable-length batches
    if lengths and is_lm:
        raise ValueError("a LanguageModel takes no lengths; export it with lengths=False")
    if probabilities and (bare or isinstance(model, Forecaster)):
        raise ValueError("probabilities=True needs a classifier or language model")
    if quantize not in (None, "qdq"):
        raise ValueError(f"quantize must be None or 'qdq', got {quantize!r}")
    quant = _quantized_weights(model) if quantize else {}
    if quantize and layers is not None and isinstance(rnn, _efficient_cells().get("GroupedLSTM", ())):
        from ..compress.quantize import quantized_tensors

        _grouped_codes(rnn, layers, quant, "" if bare else "rnn.", quantized_tensors(model))
    if quantize and not quant:
        raise ValueError(_no_codes_reason(model))
    if opset is None:  # the widely supported default, unless int4 codes need the opset that packs them
        opset = INT4_OPSET if any(q.bits <= 4 for q in quant.values()) else DEFAULT_OPSET
    g = _Graph(opset)

    tokens = not bare and model.embedding is not None
    batch_first = True if not bare else bool(getattr(rnn, "batch_first", True))
    in_dims: list[Any] = ["batch", "time"] if batch_first else ["time", "batch"]
    graph_inputs = [helper.make_tensor_value_info(
        "input", TensorProto.INT64 if tokens else TensorProto.FLOAT,
        in_dims if tokens else in_dims + [rnn.input_size])]
    seq_lens = None
    if lengths:
        graph_inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]))
        seq_lens = g.one("Cast", ["lengths"], to=TensorProto.INT32)  # sequence_lens is int32

    x = "input"
    level = None
    if isinstance(model, Forecaster) and getattr(model, "instance_norm", False):
        x, level = _instance_norm(g, x, "lengths" if lengths else None)
    if tokens:
        table = _weight(g, "embedding.weight", model.embedding.weight, quant, "embedding.weight")
        x = g.one("Gather", [table, x], axis=0)
    if batch_first:
        x = g.one("Transpose", [x], perm=[1, 0, 2])  # (T, B, I): ORT runs layout 0 only
    quant_prefix = "" if bare else "rnn."
    if layers is None:
        from .onnx_fastgrnn import fastgrnn_stack

        seq, states = fastgrnn_stack(g, rnn, x, "lengths" if lengths else None,
                                     lambda name, t, key: _weight(g, name, t, quant, quant_prefix + key))
    else:
        initial = None
        if stateful:  # per layer h0 (and c0) (1, B, H) in, h_n (and c_n) out: chunk by chunk
            initial = [[f"{n}0_l{k}" for n in ("h", "c")[: 2 if layer.op == "LSTM" else 1]]
                       for k, layer in enumerate(layers)]
            for names, layer in zip(initial, layers):
                graph_inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, "batch", layer.hidden_size])
                                 for n in names]
        seq, states = _recurrent_stack(g, layers, x, seq_lens, "rnn", quant, quant_prefix, initial)

    outputs: list[Any] = []
    if bare:
        y = g.one("Transpose", [seq], perm=[1, 0, 2]) if batch_first else seq
        g.node("Identity", [y], outputs=["output"])
        outputs.append(helper.make_tensor_value_info("output", TensorProto.FLOAT, in_dims + [rnn.output_size]))
        directions = 2 if getattr(rnn, "bidirectional", False) else 1
        for i, state_name in enumerate(["h_n", "c_n"][: len(states[0])]):
            if len(set(hidden_sizes)) == 1:  # nn.LSTM's stacked form
                g.node("Concat", [s[i] for s in states], outputs=[state_name], axis=0)  # (L*D, B, H)
                outputs.append(helper.make_tensor_value_info(
                    state_name, TensorProto.FLOAT, [len(hidden_sizes) * directions, "batch", hidden_sizes[0]]))
                continue
            for k, (s, hidden) in enumerate(zip(states, hidden_sizes)):  # pruned unevenly: one per layer
                g.node("Identity", [s[i]], outputs=[f"{state_name}_l{k}"])
                outputs.append(helper.make_tensor_value_info(
                    f"{state_name}_l{k}", TensorProto.FLOAT, [directions, "batch", hidden]))
    else:
        head_w = model.head.weight
        out_name = "probabilities" if probabilities else ("forecast" if isinstance(model, Forecaster) else "logits")
        if per_step:
            tied = model.embedding is not None and bool(getattr(model, "tie_weights", False))
            y = g.one("Transpose", [seq], perm=[1, 0, 2])  # (B, T, F)
            w = table if tied else _weight(g, "head.weight", head_w, quant, "head.weight")  # (V, F)
            # Gemm on the flattened steps, not MatMul with a transposed weight: ONNX Runtime
            # rewrites DequantizeLinear → Transpose → MatMul into MatMulNBits with int8
            # activations (accuracy level 4), which moved a quantized head's logits by ~1e-3.
            flat = g.one("Reshape", [y, g.ints("head.flat", [-1, model.head.in_features])])  # (B·T, F)
            batch_time = g.one("Slice", [g.one("Shape", [y]), g.ints("head.bt_start", [0]),
                                         g.ints("head.bt_end", [2])])
            logits = g.one("Reshape", [
                g.one("Gemm", [flat, w, g.const("head.bias", _f32(model.head.bias))], transB=1),
                g.one("Concat", [batch_time, g.ints("head.classes", [model.head.out_features])], axis=0)])
            dims: list[Any] = ["batch", "time", model.head.out_features]
        else:
            pooled = _pool(g, model.pooling if isinstance(model, SequenceClassifier) else "last", seq,
                           states[-1][0], "lengths" if lengths else None)
            logits = g.one("Gemm", [pooled, _weight(g, "head.weight", head_w, quant, "head.weight"),
                                    g.const("head.bias", _f32(model.head.bias))], transB=1)
            dims = ["batch", model.head.out_features]
            if isinstance(model, Forecaster):
                logits, dims = _forecast_output(g, model, logits, level)
        if probabilities:
            logits = g.one("Softmax", [logits], axis=-1)
        g.node("Identity", [logits], outputs=[out_name])
        outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, dims))
        if stateful:
            for k, (layer_states, layer) in enumerate(zip(states, layers)):
                for n, state in zip(("h", "c"), layer_states):
                    g.node("Identity", [state], outputs=[f"{n}_n_l{k}"])
                    outputs.append(helper.make_tensor_value_info(f"{n}_n_l{k}", TensorProto.FLOAT,
                                                                 [1, "batch", layer.hidden_size]))

    graph = helper.make_graph(g.nodes, "lstmlite", graph_inputs, outputs, initializer=g.initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                   producer_name="lstmlite", producer_version=_version())
    # The oldest IR version that carries this opset: readable by the widest range of runtimes.
    onnx_model.ir_version = helper.find_min_ir_version_for(list(onnx_model.opset_import))
    config = model.config() if hasattr(model, "config") else {}
    recorded = {"type": type(model).__name__, "config": config, "lengths": bool(lengths),
                "probabilities": bool(probabilities), "quantized": sorted(quant)}
    if stateful:  # only when set: other files keep their bytes
        recorded["stateful"] = True
    if _int4_storage(quant, g) is not None:  # only when there are int4 codes: no bytes otherwise
        recorded["int4"] = _int4_storage(quant, g)
    meta = {METADATA_KEY: json.dumps(recorded)}
    if layers is None:
        meta["lstmlite.note"] = "recurrent layer FastGRNN written as one Scan per layer (MatMul/Sigmoid/Tanh body)"
    elif isinstance(rnn, (SimpleRNN, GRUResetBefore, *_efficient_cells().values())):
        meta["lstmlite.note"] = f"recurrent layer {type(rnn).__name__} written as standard {layers[0].op} nodes"
    if g.int4_as_int8:
        log.warning("%d int4 tensor(s) stored as int8 codes, one per byte: opset %d has no int4 DequantizeLinear "
                    "(opset %d or newer packs them two per byte)", g.int4_as_int8, opset, INT4_OPSET)
    helper.set_model_props(onnx_model, meta)
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def _check_stateful(model: nn.Module, rnn: nn.Module, layers: list[OnnxRecurrentLayer] | None,
                    per_step: bool, lengths: bool | None) -> None:
    """Refuse, with the reason, a model that cannot be exported as a streaming (stateful) graph."""
    if not per_step:
        raise ValueError(f"a streaming (stateful) export needs a per-step model (a tagger / CTC model or a "
                         f"language model); a {type(model).__name__} summarizes the whole sequence: export it "
                         f"without --stateful")
    if getattr(rnn, "bidirectional", False):
        raise ValueError("a bidirectional model needs whole sequences; it cannot be exported for streaming")
    if layers is None:
        raise ValueError("a streaming (stateful) export needs LSTM/GRU/RNN layers; a FastGRNN is written as a Scan "
                         "without state inputs (stream it in the native runtime: lstmlite eval --stream)")
    if lengths:
        raise ValueError("a streaming (stateful) export takes no lengths: each call carries the state over one "
                         "full chunk")


def _int4_storage(quant: dict[str, Any], g: _Graph) -> str | None:
    """How the model's int4 codes are stored: ``"int4"`` (packed), ``"int8"`` (opset too old) or None."""
    if not any(q.bits <= 4 for q in quant.values()):
        return None
    return "int8" if g.int4_as_int8 else "int4"


def read_export_metadata(path: str | Path) -> dict[str, Any]:
    """What :func:`export_onnx` recorded in a file's metadata (``{}`` for other files).

    Keys: ``type``, ``config``, ``lengths``, ``probabilities``, ``quantized`` (tensor
    names stored as codes) and, when the model has int4 codes, ``int4`` (``"int4"``:
    packed two per byte; ``"int8"``: widened because the opset predates int4) and, for a
    streaming graph, ``stateful`` (True).
    """
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return {}


def _version() -> str:
    from .. import __version__

    return __version__


def _as_model(source: Any) -> nn.Module:
    if isinstance(source, nn.Module):
        return source
    from ..io import Run, load_run

    if isinstance(source, Run):
        return source.model
    return load_run(source).model


def export_onnx(source: Any, path: str | Path, opset: int | None = None, *, lengths: bool | None = None,
                probabilities: bool = False, quantize: str | None = None, stateful: bool = False) -> Path:
    """Write ``source`` as an ONNX file with standard recurrent operators.

    Args:
        source: a task model (SequenceClassifier, LanguageModel, Forecaster), a
            recurrent layer, a loaded :class:`~lstmlite.io.Run`, or a run dir path.
        path: the ``.onnx`` file to write (parent folders are created).
        opset: ONNX opset, at least 14. Default 17, or 21 (:data:`INT4_OPSET`) when
            ``quantize="qdq"`` meets int4 codes, which opset 21 stores two per byte;
            an explicit older opset stores them as int8 (one per byte, logged).
        lengths: add an int64 ``lengths`` (B,) input fed to ``sequence_lens``, so a
            padded batch gives what ``model(x, lengths)`` gives. Default: yes for
            classifiers and forecasters, no for language models and bare layers.
        probabilities: end with Softmax (classifier / language model), e.g. to compare
            with a Keras model whose last layer is ``Dense(softmax)``.
        quantize: ``"qdq"`` stores every weight-quantized tensor (``weight_quant`` /
            ``fake_quant`` compression, int8 or int4 codes) as integer codes + per-row
            fp32 scales feeding ``DequantizeLinear`` (int8: about 4x smaller than
            fp32; int4 at opset ≥ 21: about 8x), and the runtime computes with
            exactly the dequantized weights our model uses. Other tensors (biases,
            factors of a parametrized low-rank product) stay float.
        stateful: a streaming graph for a unidirectional tagger (CTC) or language model:
            per layer ``k`` inputs ``h0_l{k}`` [``c0_l{k}``] (1, B, H) and outputs
            ``h_n_l{k}`` [``c_n_l{k}``], so a caller runs it chunk by chunk (one frame at
            a time, T = 1) feeding each call's final state to the next; no ``lengths``.
            See :class:`OnnxStream`.

    Graph signature (batch B and time T dynamic):
        inputs ``input`` (B, T) int64 tokens or (B, T, F) float, [``lengths`` (B,) int64];
        output ``logits`` / ``probabilities`` (B, C) (language model (B, T, V)),
        ``forecast`` (B, horizon[, targets]); a bare layer gives ``output`` (B, T, D*H),
        ``h_n`` [and ``c_n``] (L*D, B, H).

    Returns:
        The written path.

    Raises:
        NotImplementedError: an LSTM with ``proj_size`` (one line naming the layer and
            the nearest exportable form).
        ValueError: a TFLite-quantized LSTM (a ``.tflite`` file, ``TFLiteLSTMParams``,
            ``read_tflite_lstm``'s model): its integer arithmetic has no ONNX form; one
            line naming the format that takes it (C, ``export_c(..., form="tflite")``).
    """
    from ._tflite_source import tflite_refusal

    refusal = tflite_refusal(source, "onnx")
    if refusal is not None:  # before anything is written
        raise ValueError(refusal)
    onnx_model = build_onnx_model(_as_model(source), opset=opset, lengths=lengths, probabilities=probabilities,
                                  quantize=quantize, stateful=stateful)
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save_model(onnx_model, str(tmp))
    tmp.replace(path)  # atomic: a crash never leaves half a file
    log.info("wrote %s (%d nodes, opset %d)", path, len(onnx_model.graph.node), onnx_model.opset_import[0].version)
    return path


def check_onnx(model: nn.Module, path: str | Path, batch: int = 3, steps: int = 9, seed: int = 0) -> float:
    """Run ``path`` in ONNX Runtime and ``model`` on the same random batch; return the max abs difference.

    The batch has sequences of different lengths when the graph takes ``lengths``,
    so padding handling is part of the check; a ``stateful`` graph runs in two chunks
    with the state carried from the first to the second, so state passing is too.
    """
    from ..nn.models import LanguageModel

    model = model.eval()
    session = _onnxruntime_session(path)
    names = [i.name for i in session.get_inputs()]
    generator = torch.Generator().manual_seed(seed)
    embedding = getattr(model, "embedding", None)
    if embedding is not None:
        x = torch.randint(0, embedding.num_embeddings, (batch, steps), generator=generator)
    else:
        rnn = getattr(model, "rnn", model)
        x = torch.randn(batch, steps, rnn.input_size, generator=generator)
    feeds = {"input": x.numpy()}
    lengths = None
    if "lengths" in names:
        lengths = torch.clamp(steps - 3 * torch.arange(batch), min=1)
        feeds["lengths"] = lengths.numpy()
    with torch.no_grad():
        if isinstance(model, LanguageModel) or not hasattr(model, "head"):
            ours = model(x)[0] if lengths is None else model(x, lengths=lengths)[0]
        else:
            ours = model(x, lengths=lengths)
    if set(names) - {"input", "lengths"}:  # a stateful graph: two chunks, the state carried between them
        stream = OnnxStream(session)  # the same session: the file is loaded once
        stream.reset(batch)
        got = np.concatenate([stream.step(feeds["input"][:, chunk])
                              for chunk in np.array_split(np.arange(steps), 2)], axis=1)
    else:
        got = session.run(None, feeds)[0]
    if "probabilities" in [o.name for o in session.get_outputs()][:1]:
        ours = torch.softmax(ours, -1)
    return float(np.max(np.abs(got - ours.numpy()))) if got.size else 0.0


def _onnxruntime_session(path: str | Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session of ``path`` on ``threads`` intra-op threads with
    spinning off, so that its idle workers cannot take the cores of whatever runs beside
    it (with 2 threads, spinning workers halved the speed of the engine timed next)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxStream:
    """Run a ``stateful=True`` export in ONNX Runtime chunk by chunk with the state carried.

    Example::

        export_onnx(run_dir, "ctc.onnx", stateful=True)
        stream = OnnxStream("ctc.onnx")
        for frame in frames:                  # frame (F,) float32
            logits = stream.step(frame[None, None])[0, 0]   # (1, 1, F) -> (C,)
        stream.reset()                        # next utterance

    Args:
        source: the ``.onnx`` file, or an ONNX Runtime session of one.
        threads: ONNX Runtime's intra-op threads for a file (1 by default, with spinning
            off, so it cannot slow whatever runs beside it).
    """

    def __init__(self, source: Any, threads: int = 1) -> None:
        is_file = isinstance(source, (str, Path))
        self.session = _onnxruntime_session(source, threads) if is_file else source
        # h0_lK [c0_lK] in, h_n_lK [c_n_lK] out after the logits, both in layer order
        self.state_inputs = [i for i in self.session.get_inputs() if i.name != "input"]
        if not self.state_inputs:
            what = source if is_file else "this session's model"
            raise ValueError(f"{what} has no state inputs: export it with stateful=True (--stateful)")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.reset()

    def reset(self, batch: int = 1) -> None:
        """Zero the carried state (a new utterance), for ``batch`` streams."""
        self.state = {i.name: np.zeros((1, batch, i.shape[2]), np.float32) for i in self.state_inputs}

    def step(self, x: np.ndarray) -> np.ndarray:
        """x: (B, t, F) float32 (or (B, t) token ids) → logits (B, t, C); the state moves on."""
        logits, *states = self.session.run(self.output_names, {"input": x, **self.state})
        self.state = dict(zip(self.state, states))
        return logits
