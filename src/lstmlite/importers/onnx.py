"""Import ONNX graphs with ``LSTM`` / ``GRU`` / ``RNN`` operators into lstmlite models.

Two levels:

* **One node** — :func:`import_onnx_node` turns a single recurrent node (with its
  ``W``, ``R``, ``B`` tensors) into :class:`OnnxRecurrentNode`, our layer wrapped with
  the ONNX operator's exact input/output conventions (``layout``, ``direction``
  including ``reverse``, ``sequence_lens``, ``initial_h``/``initial_c``, outputs
  ``Y`` (T, D, B, H), ``Y_h``, ``Y_c``). This is what runs ONNX's own backend test
  cases (tests/importers/test_onnx_conformance.py).
* **A whole model** — :func:`import_onnx` recognises the usual shape of a recurrent
  model in graphs written by PyTorch's exporters (TorchScript, ``dynamo=False``, and
  dynamo, the default), tf2onnx and our own exporter:
  ``[Gather(embedding)] → stacked recurrent nodes → pooling → Gemm | MatMul+Add →
  [Softmax]``, rebuilds it as a task model and, by default, *verifies* it: the graph
  runs in ONNX Runtime (or ``onnx.reference``) on random inputs and must give what
  our model gives, else the import fails. Shape-only nodes in between (Transpose,
  Reshape, Squeeze, Concat, Gather of the last step, …) are followed, not
  interpreted, which is why the numerical check is the arbiter; shape arithmetic
  (Shape → Slice → Concat, the dynamo exporter's Reshape sizes) is skipped. A graph
  that declares a fixed time length and runs only at it (the dynamo exporter's, for
  some LSTM/GRU outputs) is checked at that length; the model takes any.

Operator support (ONNX → ours):

==========================================  =============================================
LSTM, default activations                    :class:`lstmlite.nn.LSTM`
GRU ``linear_before_reset=1`` (PyTorch's)    :class:`lstmlite.nn.GRU`
GRU ``linear_before_reset=0`` (ONNX default)  :class:`~lstmlite.importers.layers.GRUResetBefore`
RNN, Tanh or Relu                            :class:`~lstmlite.importers.layers.SimpleRNN`
``direction=reverse``                        node level only (input flipped per sequence)
``layout=1`` (batch-major)                   yes
``sequence_lens``                            yes (our ``lengths``)
``initial_h`` / ``initial_c``                node level; a model import needs zeros or graph
                                             inputs (a streaming graph: run from zeros)
peepholes ``P`` ≠ 0, ``clip``,               no (:class:`UnsupportedOnnxError`: our layers
``input_forget=1``, other activations        have no such terms)
==========================================  =============================================

The imported model takes batch-first input ((B, T) tokens or (B, T, F)) whatever the
graph's layout, and returns logits: a final Softmax/LogSoftmax/Sigmoid is dropped
and recorded in ``model.import_info["output_activation"]``.

Example:
    >>> import tempfile, os
    >>> from lstmlite.nn import SequenceClassifier
    >>> from lstmlite.export.onnx import export_onnx
    >>> model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=4)
    >>> path = export_onnx(model, os.path.join(tempfile.mkdtemp(), "m.onnx"))
    >>> back = import_onnx(path)
    >>> back.config() == model.config()
    True
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from .._text import one_line
from ..nn.layers import GRU, LSTM, RecurrentLayer
from ._common import (ModelImportError, apply_output_activation, assemble_model, check_error, per_step_kind,
                      save_imported)
from .gates import ONNX_GRU, ONNX_LSTM, ONNX_RNN, TORCH_GRU, TORCH_LSTM, TORCH_RNN, reorder_gates
from .layers import GRUResetBefore, SimpleRNN

__all__ = ["import_onnx", "import_onnx_node", "OnnxRecurrentNode", "UnsupportedOnnxError", "RECURRENT_OPS"]

log = logging.getLogger(__name__)

RECURRENT_OPS = ("LSTM", "GRU", "RNN")
_DEFAULT_ACTIVATIONS = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"], "RNN": ["tanh"]}
_GATES = {"LSTM": (ONNX_LSTM, TORCH_LSTM), "GRU": (ONNX_GRU, TORCH_GRU), "RNN": (ONNX_RNN, TORCH_RNN)}
#: Ops that only move data around; followed when tracing between the recognised parts.
_LAYOUT_OPS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Cast", "Flatten", "Concat",
               "Gather", "Slice", "Split", "Expand"}
#: our exporter's model class (metadata ``type``) → model kind
_META_KINDS = {"SequenceClassifier": "classifier", "LanguageModel": "lm", "Forecaster": "forecaster",
               "SequenceTagger": "tagger"}
_OUTPUT_ACTIVATIONS = {"Softmax": "softmax", "LogSoftmax": "log_softmax", "Sigmoid": "sigmoid"}


class UnsupportedOnnxError(ModelImportError):
    """An ONNX recurrent node uses a feature our layers do not compute (peepholes, clip, …)."""


# ----- one node -------------------------------------------------------------------------------
def node_attributes(node: Any) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded)."""
    from onnx import helper

    attrs = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode() for v in value]
        attrs[attribute.name] = value
    return attrs


def _input(node: Any, index: int) -> str:
    return node.input[index] if len(node.input) > index else ""


@dataclass
class _NodeSpec:
    """What a recurrent node computes, checked against what our layers can compute."""

    op: str
    layer: RecurrentLayer  # one layer, forward (and backward) directions, weights set
    direction: str  # forward | reverse | bidirectional
    layout: int
    variant: tuple = field(default=())  # must agree between stacked nodes


def _layer_from_node(node: Any, tensors: Mapping[str, np.ndarray]) -> _NodeSpec:
    op = node.op_type
    if op not in RECURRENT_OPS:
        raise ModelImportError(f"node {node.name!r} is a {op}, not one of {RECURRENT_OPS}")
    attrs = node_attributes(node)
    label = f"{op} node {node.name!r}" if node.name else f"{op} node"
    direction = attrs.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise UnsupportedOnnxError(f"{label}: unknown direction {direction!r}")
    directions = 2 if direction == "bidirectional" else 1
    if "clip" in attrs:
        raise UnsupportedOnnxError(f"{label}: cell clipping (clip={attrs['clip']}) is not supported; "
                                   "our layers do not clip gate inputs")
    if attrs.get("input_forget", 0):
        raise UnsupportedOnnxError(f"{label}: input_forget=1 (coupled input and forget gates) is not supported")
    activations = [a.lower() for a in attrs.get("activations", [])]
    nonlinearity = "tanh"
    if op == "RNN":
        activations = activations or ["tanh"] * directions
        if len(set(activations)) != 1 or activations[0] not in ("tanh", "relu"):
            raise UnsupportedOnnxError(f"{label}: activations {attrs['activations']} are not supported "
                                       "(Tanh or Relu, the same for both directions)")
        nonlinearity = activations[0]
    elif activations and activations != _DEFAULT_ACTIVATIONS[op] * directions:
        raise UnsupportedOnnxError(f"{label}: activations {attrs['activations']} are not supported "
                                   f"(only the defaults {_DEFAULT_ACTIVATIONS[op]})")

    def tensor(index: int, what: str, required: bool) -> np.ndarray | None:
        name = _input(node, index)
        if not name:
            if required:
                raise ModelImportError(f"{label}: input {what} is missing")
            return None
        if name not in tensors:
            raise ModelImportError(f"{label}: {what} ({name!r}) is not a constant tensor; weights must be "
                                   "initializers or constants")
        return np.asarray(tensors[name], dtype=np.float32)

    w, r = tensor(1, "W", True), tensor(2, "R", True)
    b = tensor(3, "B", False)
    if op == "LSTM":
        p = tensor(7, "P", False)
        if p is not None and np.any(p != 0):
            raise UnsupportedOnnxError(f"{label}: peephole weights P are not supported (our LSTM has no "
                                       "peephole connections)")
    hidden = int(attrs.get("hidden_size", r.shape[-1]))
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    if w.ndim != 3 or w.shape[:2] != (directions, gates * hidden) or r.shape != (directions, gates * hidden, hidden):
        raise ModelImportError(f"{label}: W {w.shape} / R {r.shape} do not fit hidden_size={hidden}, "
                               f"{directions} direction(s)")
    if b is not None and b.shape != (directions, 2 * gates * hidden):
        raise ModelImportError(f"{label}: B {b.shape} does not fit hidden_size={hidden}, {directions} direction(s): "
                               f"ONNX wants ({directions}, {2 * gates * hidden}), the input and recurrent biases "
                               "of each direction one after the other")
    bias = b is not None
    kwargs: dict[str, Any] = dict(input_size=int(w.shape[2]), hidden_size=hidden, num_layers=1, bias=bias,
                                  bidirectional=directions == 2)
    if op == "LSTM":
        layer: RecurrentLayer = LSTM(**kwargs)
        variant: tuple = ("LSTM",)
    elif op == "GRU":
        reset_after = int(attrs.get("linear_before_reset", 0))
        layer = GRU(**kwargs) if reset_after else GRUResetBefore(**kwargs)
        variant = ("GRU", reset_after)
    else:
        layer = SimpleRNN(**kwargs, nonlinearity=nonlinearity)
        variant = ("RNN", nonlinearity)
    source, target = _GATES[op]
    with torch.no_grad():
        for d, suffix in enumerate(layer._suffixes()):
            getattr(layer, f"weight_ih_l0{suffix}").copy_(torch.from_numpy(reorder_gates(w[d], source, target)))
            getattr(layer, f"weight_hh_l0{suffix}").copy_(torch.from_numpy(reorder_gates(r[d], source, target)))
            if bias:
                wb, rb = b[d, : gates * hidden], b[d, gates * hidden:]
                getattr(layer, f"bias_ih_l0{suffix}").copy_(torch.from_numpy(reorder_gates(wb, source, target)))
                getattr(layer, f"bias_hh_l0{suffix}").copy_(torch.from_numpy(reorder_gates(rb, source, target)))
    return _NodeSpec(op, layer.eval(), direction, int(attrs.get("layout", 0)), variant + (directions, bias))


def _flip_valid(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of x (B, T, ...) within its first lengths[b] steps."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (B, T)
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


class OnnxRecurrentNode(nn.Module):
    """One ONNX ``LSTM`` / ``GRU`` / ``RNN`` node, computed by our layers with the node's conventions.

    forward(X, sequence_lens=None, initial_h=None, initial_c=None):
        X: (T, B, I) when ``layout`` = 0, else (B, T, I).
        sequence_lens: (B,) valid steps per sequence.
        initial_h, initial_c: (D, B, H) (layout 1: (B, D, H)); None = zeros.
    Returns ``(Y, Y_h, Y_c)``: Y (T, D, B, H) (layout 1: (B, T, D, H)), Y_h and Y_c
    (D, B, H) (layout 1: (B, D, H)); Y_c is None for GRU and RNN.
    """

    def __init__(self, layer: RecurrentLayer, op: str, direction: str = "forward", layout: int = 0) -> None:
        super().__init__()
        self.layer = layer
        self.op = op
        self.direction = direction
        self.layout = layout

    def forward(self, X: Tensor, sequence_lens: Tensor | None = None, initial_h: Tensor | None = None,
                initial_c: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        x = X if self.layout == 1 else X.transpose(0, 1)  # (B, T, I)
        lengths = None if sequence_lens is None else torch.as_tensor(sequence_lens).long().cpu()
        if self.layout == 1:  # states (B, D, H) → (D, B, H)
            initial_h = None if initial_h is None else initial_h.transpose(0, 1)
            initial_c = None if initial_c is None else initial_c.transpose(0, 1)
        state = None
        if initial_h is not None or initial_c is not None:
            batch, d = x.shape[0], self.layer.num_directions
            zeros = x.new_zeros(d, batch, self.layer.hidden_size)
            h0 = initial_h if initial_h is not None else zeros
            state = [(h0, initial_c if initial_c is not None else zeros)] if self.op == "LSTM" else [h0]
        if self.direction == "reverse":
            x = _flip_valid(x, lengths)
        out, final = self.layer(x, state, lengths=lengths)
        if self.direction == "reverse":
            out = _flip_valid(out, lengths)
        batch, steps = out.shape[0], out.shape[1]
        y = out.reshape(batch, steps, self.layer.num_directions, -1)  # (B, T, D, H)
        h_n, c_n = final[0] if self.op == "LSTM" else (final[0], None)
        if self.layout == 1:
            return y, h_n.transpose(0, 1), None if c_n is None else c_n.transpose(0, 1)
        return y.permute(1, 2, 0, 3), h_n, c_n


def import_onnx_node(node: Any, tensors: Mapping[str, np.ndarray]) -> OnnxRecurrentNode:
    """Build :class:`OnnxRecurrentNode` from a NodeProto and its constant inputs.

    Args:
        node: an ``LSTM``, ``GRU`` or ``RNN`` NodeProto.
        tensors: name → array for the node's W, R and (optional) B and P inputs.

    Raises:
        UnsupportedOnnxError: peepholes, clip, input_forget, non-default activations.

    Example:
        >>> import numpy as np
        >>> from onnx import helper
        >>> node = helper.make_node("GRU", ["X", "W", "R"], ["Y", "Y_h"], hidden_size=2)
        >>> rng = np.random.default_rng(0)
        >>> m = import_onnx_node(node, {"W": rng.normal(size=(1, 6, 3)), "R": rng.normal(size=(1, 6, 2))})
        >>> [tuple(t.shape) for t in m(torch.randn(5, 4, 3))[:2]]
        [(5, 1, 4, 2), (1, 4, 2)]
    """
    spec = _layer_from_node(node, tensors)
    return OnnxRecurrentNode(spec.layer, spec.op, spec.direction, spec.layout).eval()


# ----- whole graphs ---------------------------------------------------------------------------
class _Graph:
    """Index of an ONNX graph: constants (folded), producers, consumers."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.producer: dict[str, tuple[Any, int]] = {}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for node in self.graph.node:
            for i, name in enumerate(node.output):
                self.producer[name] = (node, i)
            for name in node.input:
                if name:
                    self.consumers[name].append(node)
        self.input_names = [v.name for v in self.graph.input if v.name not in self.consts]
        self.output_names = [v.name for v in self.graph.output]
        self._fold_constants()
        self.shape_only = self._shape_only()

    @functools.cached_property
    def ranks(self) -> dict[str, int]:
        """Each tensor's rank, where ONNX shape inference can tell (computed once, when asked)."""
        import onnx

        try:
            inferred = onnx.shape_inference.infer_shapes(self.model).graph
        except Exception as err:  # noqa: BLE001 - a graph inference cannot follow: ranks unknown, not an error
            log.debug("ONNX shape inference failed (%s); tensor ranks unknown", err)
            return {}
        return {v.name: len(v.type.tensor_type.shape.dim)
                for v in [*inferred.value_info, *inferred.output, *inferred.input]
                if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape")}

    def _shape_only(self) -> set[str]:
        """Tensors computed from tensor shapes alone (Shape/Size and the arithmetic on them).

        PyTorch's dynamo exporter builds the sizes of every Reshape/Expand so (Shape → Slice →
        Concat); they carry no data of the recurrent layers, so tracing skips them.
        """
        shape_only: set[str] = set()
        for node in self.graph.node:  # ONNX graphs are topologically sorted
            if node.op_type in ("Shape", "Size"):
                shape_only.update(n for n in node.output if n)
                continue
            if node.op_type in RECURRENT_OPS:
                continue
            names = [n for n in node.input if n and n not in self.consts]
            if names and all(n in shape_only for n in names):
                shape_only.update(n for n in node.output if n)
        return shape_only

    def _fold_constants(self) -> None:
        """Evaluate every node whose inputs are all constant (shape arithmetic, Constant nodes)."""
        from onnx.reference import ReferenceEvaluator

        for node in self.graph.node:
            if node.op_type in RECURRENT_OPS or node.op_type.startswith("Random") or node.domain not in ("", "ai.onnx"):
                continue
            if any(a.g.node or a.graphs for a in node.attribute):  # control flow
                continue
            names = [n for n in node.input if n]
            if not all(n in self.consts for n in names):
                continue
            try:
                values = ReferenceEvaluator(node, opsets={"": self.opset}).run(
                    None, {n: self.consts[n] for n in names})
            except Exception:  # noqa: BLE001 - an op the reference cannot fold stays a node
                continue
            for name, value in zip(node.output, values):
                if name:
                    self.consts[name] = np.asarray(value)

    def node_of(self, name: str) -> Any | None:
        hit = self.producer.get(name)
        return hit[0] if hit else None

    def is_zero(self, name: str) -> bool:
        """True when ``name`` is provably all zeros (a constant, or zeros reshaped/sliced/expanded)."""
        if not name:
            return True
        if name in self.consts:
            return not np.any(self.consts[name])
        node = self.node_of(name)
        if node is None:
            return False
        if node.op_type == "ConstantOfShape":
            value = node_attributes(node).get("value")
            from onnx import numpy_helper

            return value is None or not np.any(numpy_helper.to_array(value))
        if node.op_type in ("Expand", "Tile", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Cast",
                            "Slice", "Gather", "Split"):
            return self.is_zero(node.input[0])
        if node.op_type == "Concat":
            return all(self.is_zero(n) for n in node.input)
        return False

    def backward_reach(self, name: str) -> tuple[set[tuple[str, int]], set[str]]:
        """Recurrent outputs (node name, output index) reachable backwards from ``name``, and the ops passed.

        Shape computations (the target shape of a Reshape, …) are not followed: their Slice or
        Gather of a shape vector is not a pooling of the data.
        """
        reached: set[tuple[str, int]] = set()
        ops: set[str] = set()
        stack, seen = [name], set()
        while stack:
            current = stack.pop()
            if current in seen or current in self.consts or current in self.shape_only:
                continue
            seen.add(current)
            hit = self.producer.get(current)
            if hit is None:
                continue
            node, index = hit
            if node.op_type in RECURRENT_OPS:
                reached.add((node.name or node.output[0], index))
                continue
            ops.add(node.op_type)
            stack.extend(n for n in node.input if n)
        return reached, ops


def _key(node: Any) -> str:
    return node.name or node.output[0]


@dataclass
class _Recognised:
    """The parts of a graph that make up a task model."""

    rnn: RecurrentLayer
    embedding: np.ndarray | None
    input_name: str
    time_axis: int  # of the graph input
    lengths_name: str | None
    kind: str
    pooling: str
    head_weight: np.ndarray | None = None
    head_bias: np.ndarray | None = None
    output_name: str | None = None
    output_activation: str | None = None
    #: graph inputs feeding initial_h / initial_c (a streaming graph): zeros for the model
    state_inputs: list[str] = field(default_factory=list)


def _trace_input(g: _Graph, name: str, time_axis: int, normalised: bool = False
                 ) -> tuple[str, int, np.ndarray | None]:
    """Follow the first recurrent node's X back to a graph input; returns (input, time axis, embedding).

    ``normalised``: our forecaster's instance normalisation sits in between, as
    Where(valid, x - level, 0) (or (x - level) * mask, from files before it ignored NaN
    padding); follow the data operands.
    """
    embedding = None
    passable = {"Identity", "Cast", "Squeeze", "Unsqueeze", "Reshape"} | ({"Sub", "Mul"} if normalised else set())
    while name not in g.input_names:
        node = g.node_of(name)
        if node is None:
            raise ModelImportError(f"the first recurrent node's input {name!r} comes from no graph input")
        if node.op_type == "Transpose":
            perm = node_attributes(node).get("perm")
            time_axis = perm[time_axis] if perm else 2 - time_axis  # default perm reverses (rank 3)
        elif node.op_type == "Gather" and node.input[0] in g.consts and embedding is None:
            table = g.consts[node.input[0]]
            if table.ndim != 2 or node_attributes(node).get("axis", 0) != 0:
                raise ModelImportError(f"Gather {node.name!r} before the recurrent layer is not an embedding lookup")
            embedding = table.astype(np.float32)
            name = node.input[1]
            continue
        elif normalised and node.op_type == "Where":  # Where(condition, x - level, 0): the data is input 1
            name = node.input[1]
            continue
        elif node.op_type not in passable:
            raise ModelImportError(f"cannot follow the recurrent layer's input through {node.op_type} "
                                   f"node {node.name!r}; lstmlite imports [embedding →] recurrent → head graphs")
        name = node.input[0]
    return name, time_axis, embedding


def _trace_lengths(g: _Graph, name: str) -> str | None:
    if not name:
        return None
    while name not in g.input_names:
        node = g.node_of(name)
        if name in g.consts:
            raise ModelImportError("constant sequence_lens are not supported; feed lengths as a graph input")
        if node is None or node.op_type not in ("Cast", "Identity", "Reshape", "Squeeze"):
            raise ModelImportError(f"sequence_lens {name!r} is not a graph input (through Cast)")
        name = node.input[0]
    return name


def _stack_layers(specs: list[_NodeSpec]) -> RecurrentLayer:
    """One stacked layer from per-node single layers (hidden sizes may differ per layer)."""
    first = specs[0]
    for k, spec in enumerate(specs[1:], start=1):
        if spec.variant != first.variant:
            raise ModelImportError(f"recurrent node {k} ({spec.variant}) differs in kind from node 0 "
                                   f"({first.variant}); lstmlite stacks one kind of layer")
        if spec.layer.input_size != specs[k - 1].layer.output_size:
            raise ModelImportError(f"recurrent node {k} reads {spec.layer.input_size} features but node {k - 1} "
                                   f"gives {specs[k - 1].layer.output_size}")
    layer = first.layer
    kwargs: dict[str, Any] = dict(input_size=layer.input_size, hidden_size=[s.layer.hidden_size for s in specs],
                                  num_layers=len(specs), bias=layer.bias, bidirectional=layer.bidirectional)
    if isinstance(layer, SimpleRNN):
        kwargs["nonlinearity"] = layer.nonlinearity
    stacked = type(layer)(**kwargs)
    with torch.no_grad():
        for k, spec in enumerate(specs):
            for name, tensor in spec.layer.named_parameters():
                getattr(stacked, name.replace("_l0", f"_l{k}")).copy_(tensor)
    return stacked.eval()


def _find_head(g: _Graph, last: Any) -> Any | None:
    """First Gemm/MatMul with a constant weight downstream of the last recurrent node."""
    queue, seen = list(last.output), set()
    while queue:
        name = queue.pop(0)
        if not name or name in seen:
            continue
        seen.add(name)
        for node in g.consumers.get(name, []):
            if node.op_type == "Gemm" and node.input[1] in g.consts:
                return node
            if node.op_type == "MatMul" and node.input[1] in g.consts:
                return node
            queue.extend(node.output)
    return None


def _head_bias(bias: np.ndarray, classes: int) -> np.ndarray:
    """The output layer's bias as (C,): exporters write (C,), (1, C) or a broadcast scalar."""
    if bias.size == 1:
        return np.full(classes, float(bias.reshape(())), dtype=np.float32)
    if bias.ndim and bias.shape[-1] == classes and all(d == 1 for d in bias.shape[:-1]):  # broadcasts on the batch
        return np.ascontiguousarray(bias.reshape(classes), dtype=np.float32)
    raise ModelImportError(f"the output layer's bias has shape {tuple(bias.shape)}; expected ({classes},) for its "
                           f"{classes} outputs (or (1, {classes}), or one value)")


def _read_head(g: _Graph, head: Any) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Our Linear (weight (C, F), bias (C,)) from a Gemm or MatMul[+Add]; returns the head's output name."""
    if head.op_type == "Gemm":
        attrs = node_attributes(head)
        if attrs.get("transA", 0):
            raise ModelImportError("Gemm with transA=1 after the recurrent layer is not supported")
        b = g.consts[head.input[1]].astype(np.float32)
        weight = attrs.get("alpha", 1.0) * (b if attrs.get("transB", 0) else b.T)  # y = x W^T
        bias = None
        if _input(head, 2):
            if head.input[2] not in g.consts:
                raise ModelImportError("the output layer's bias is not constant")
            bias = _head_bias(attrs.get("beta", 1.0) * g.consts[head.input[2]].astype(np.float32), weight.shape[0])
        return np.ascontiguousarray(weight, dtype=np.float32), bias, head.output[0]
    weight = np.ascontiguousarray(g.consts[head.input[1]].astype(np.float32).T)
    if weight.ndim != 2:
        raise ModelImportError("the MatMul after the recurrent layer does not have a 2-D weight")
    out = head.output[0]
    users = g.consumers.get(out, [])
    if len(users) == 1 and users[0].op_type == "Add":
        other = [n for n in users[0].input if n != out]
        if len(other) == 1 and other[0] in g.consts:
            bias = _head_bias(g.consts[other[0]].astype(np.float32), weight.shape[0])
            return weight, bias, users[0].output[0]
    return weight, None, out


def _check_softmax_axis(g: _Graph, node: Any, rank: int | None, class_axis: int | None) -> None:
    """Refuse a (Log)Softmax that does not normalise over the classes alone.

    Our models return logits and record the dropped softmax as one over the classes; a
    softmax over time (or, before opset 13, one whose ``axis`` flattens time and classes
    together) computes something else. Where ranks are unknown, verification decides.
    """
    if rank is None or class_axis is None:
        return
    axis = node_attributes(node).get("axis", -1 if g.opset >= 13 else 1)
    if axis % rank != class_axis:
        raise ModelImportError(
            f"{node.op_type} node {_key(node)!r} normalises over axis {axis} of its rank-{rank} input, but the "
            f"classes are on axis {class_axis}: lstmlite's models end with a softmax over the classes")
    if g.opset < 13 and class_axis != rank - 1:
        raise ModelImportError(
            f"{node.op_type} node {_key(node)!r} (opset {g.opset}) normalises over axes {axis} to {rank - 1} of "
            "its input together, the classes and the axes after them: lstmlite's models end with a softmax over "
            "the classes alone")


def _follow_output(g: _Graph, name: str, normalised: bool = False) -> tuple[str, str | None]:
    """From the head's output to a graph output, noting a final activation.

    ``normalised``: our forecaster adds the window level back (an Add of a Slice).
    """
    activation = None
    passable = {"Identity", "Reshape", "Transpose", "Squeeze", "Flatten"} | ({"Add"} if normalised else set())
    rank = g.ranks.get(name)
    class_axis = None if rank is None else rank - 1  # the head's output: classes last
    while name not in g.output_names:
        users = g.consumers.get(name, [])
        if len(users) != 1:
            raise ModelImportError(f"the output layer's result {name!r} feeds {len(users)} nodes; expected a "
                                   "single path to the graph output")
        node = users[0]
        if node.op_type in ("Softmax", "LogSoftmax") and activation is None:
            _check_softmax_axis(g, node, rank, class_axis)
        if node.op_type == "Transpose" and class_axis is not None:
            perm = node_attributes(node).get("perm") or list(reversed(range(rank or 0)))
            class_axis = list(perm).index(class_axis) if class_axis in perm else None
        elif node.op_type in ("Reshape", "Squeeze", "Flatten"):  # they keep the classes last, or verify says
            rank = g.ranks.get(node.output[0])
            class_axis = None if rank is None else rank - 1
        if node.op_type in _OUTPUT_ACTIVATIONS and activation is None:
            activation = _OUTPUT_ACTIVATIONS[node.op_type]
        elif node.op_type not in passable:
            raise ModelImportError(f"{node.op_type} node {node.name!r} after the output layer is not supported")
        name = node.output[0]
    return name, activation


def _recognise(g: _Graph, kind: str | None, normalised: bool = False) -> _Recognised:
    nodes = [n for n in g.graph.node if n.op_type in RECURRENT_OPS]
    if not nodes:
        if any(n.op_type == "Scan" for n in g.graph.node):  # e.g. lstmlite's FastGRNN export
            raise ModelImportError("the graph's recurrence is a Scan loop (lstmlite writes FastGRNN so), not an "
                                   "LSTM, GRU or RNN node: import the run dir it was exported from instead")
        ops = {n.op_type for n in g.graph.node}
        if g.model.producer_name == "pytorch" and "MatMul" in ops and ops & {"Tanh", "Relu"}:
            raise ModelImportError(  # onnxscript 0.7 translates aten::lstm and aten::gru, not aten::rnn_*
                "the graph has no LSTM, GRU or RNN node: its recurrence is unrolled into per-step MatMul/Tanh "
                "ops, as PyTorch's dynamo exporter writes nn.RNN (fixed at the example's length); export with "
                "torch.onnx.export(..., dynamo=False), which writes an RNN node")
        raise ModelImportError("the graph has no LSTM, GRU or RNN node")
    specs = [_layer_from_node(n, g.consts) for n in nodes]
    state_inputs: list[str] = []
    for node, spec in zip(nodes, specs):
        if spec.direction == "reverse":
            raise UnsupportedOnnxError(f"node {node.name!r}: a reverse-only recurrent layer has no lstmlite "
                                       "model form (use import_onnx_node for single nodes)")
        for index, what in ((5, "initial_h"), (6, "initial_c")):
            name = _input(node, index)
            if name in g.input_names:  # a streaming graph's carried state: the model starts from zeros
                state_inputs.append(name)
            elif not g.is_zero(name):
                raise ModelImportError(f"node {node.name!r}: {what} is not zero; a model import needs zero "
                                       "initial states (stateful graphs: use import_onnx_node)")
    for k in range(1, len(nodes)):
        reached, _ = g.backward_reach(nodes[k].input[0])
        if reached != {(_key(nodes[k - 1]), 0)}:
            raise ModelImportError(f"recurrent node {nodes[k].name!r} does not read the output sequence of "
                                   f"{nodes[k - 1].name!r}; lstmlite imports a simple stack")
    lengths = {_trace_lengths(g, _input(n, 4)) for n in nodes}
    if len(lengths) != 1:
        raise ModelImportError("the recurrent nodes use different sequence_lens")
    lengths_name = lengths.pop()
    x_time_axis = 1 if specs[0].layout == 1 else 0
    input_name, time_axis, embedding = _trace_input(g, nodes[0].input[0], x_time_axis, normalised)
    rnn = _stack_layers(specs)

    head = _find_head(g, nodes[-1])
    if head is None:
        if kind not in (None, "layer"):
            raise ModelImportError(f"kind={kind!r} needs an output layer, but no Gemm/MatMul follows the "
                                   "recurrent nodes")
        return _Recognised(rnn, embedding, input_name, time_axis, lengths_name, "layer", "none",
                           state_inputs=state_inputs)
    weight, bias, out = _read_head(g, head)
    output_name, activation = _follow_output(g, out, normalised)
    reached, ops = g.backward_reach(head.input[0])
    last = _key(nodes[-1])
    if not any(key == last for key, _ in reached):
        raise ModelImportError("the output layer does not read the last recurrent node")
    if (last, 2) in reached:
        raise ModelImportError("an output layer reading the LSTM cell state Y_c is not supported")
    if (last, 0) in reached:
        if ops & {"ReduceMean", "ReduceSum"}:  # ReduceSum / count: a masked mean
            pooling = "mean"
        elif "ReduceMax" in ops:
            pooling = "max"
        elif ops & {"Gather", "Slice"}:
            pooling = "last"
        else:
            pooling = "none"  # the head runs on every step
    else:
        pooling = "last"
    if kind is None:
        if pooling == "none":
            kind = per_step_kind(None if embedding is None else embedding.shape[0], weight.shape[0],
                                 rnn.bidirectional)
        else:
            kind = "forecaster" if weight.shape[0] == 1 else "classifier"
    return _Recognised(rnn, embedding, input_name, time_axis, lengths_name, kind, pooling, weight, bias,
                       output_name, activation, state_inputs)


def _metadata(model: Any) -> dict[str, Any] | None:
    from ..export.onnx import METADATA_KEY

    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                return json.loads(prop.value)
            except json.JSONDecodeError:
                return None
    return None


def _build(rec: _Recognised, meta: dict[str, Any] | None) -> nn.Module:
    config = (meta or {}).get("config") or {}
    meta_kind = _META_KINDS.get((meta or {}).get("type", ""))
    kind = rec.kind
    extra: dict[str, Any] = {}
    if meta_kind == kind == "forecaster":
        extra = {"horizon": config.get("horizon"), "targets": config.get("targets", 1),
                 "instance_norm": bool(config.get("instance_norm", False))}
    if meta_kind == kind == "classifier" and config.get("pooling") in ("last", "mean", "max"):
        rec.pooling = config["pooling"]  # our exporter's own word beats reading it from the ops
    head_weight = None if rec.head_weight is None else torch.from_numpy(rec.head_weight)
    head_bias = None if rec.head_bias is None else torch.from_numpy(rec.head_bias)
    embedding = None if rec.embedding is None else torch.from_numpy(rec.embedding)
    model = assemble_model(rec.rnn, kind, embedding=embedding, head_weight=head_weight, head_bias=head_bias,
                           pooling=rec.pooling, **extra)
    tied = meta_kind == kind == "lm" and config.get("tie_weights")
    if tied and torch.equal(model.head.weight, model.embedding.weight):
        model.tie_weights = True
        model.head.weight = model.embedding.weight  # our exporter wrote one matrix for both
    return model


def _dims(value_info: Any) -> list[int | str]:
    """A declared shape: fixed sizes as ints, symbolic or unknown ones as their name (or "")."""
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value_info.type.tensor_type.shape.dim]


def _declared_steps(g: _Graph, rec: _Recognised) -> int | None:
    """The time length the graph declares fixed for the recurrent output sequence while its input's is not.

    PyTorch's dynamo exporter (``torch.onnx.export(..., dynamo=True)``, torch 2.13) writes the
    export example's length into the shape of an LSTM/GRU's output sequence (its value_info,
    and a per-step model's output), and its optimiser may fold that length into a Reshape:
    such a graph runs at that length only (related: pytorch/pytorch#191855). Read from the declared
    shapes (graph outputs and value_info) of the tensors computed from a recurrent node's Y,
    where one of the two leading axes is the input's symbolic batch axis; None unless they
    agree on one length.
    """
    inputs = {v.name: v for v in g.graph.input}
    in_dims = _dims(inputs[rec.input_name])
    if rec.time_axis not in (0, 1) or len(in_dims) < 2 or isinstance(in_dims[rec.time_axis], int):
        return None
    batch = in_dims[1 - rec.time_axis]
    if not isinstance(batch, str) or not batch:
        return None
    declared = {v.name: _dims(v) for v in list(g.graph.value_info) + list(g.graph.output)}
    steps: set[int] = set()
    queue = [n.output[0] for n in g.graph.node if n.op_type in RECURRENT_OPS and n.output and n.output[0]]
    seen: set[str] = set()
    while queue:
        name = queue.pop()
        if name in seen or name in g.shape_only:
            continue
        seen.add(name)
        dims = declared.get(name, [])
        if len(dims) >= 3 and batch in dims[:2]:
            size = dims[1 - dims[:2].index(batch)]
            if isinstance(size, int) and size > 0:
                steps.add(size)
        for node in g.consumers.get(name, []):
            # a recurrent node's final states (Y_h, Y_c) are no sequence: follow its Y only
            queue.extend(node.output[:1] if node.op_type in RECURRENT_OPS else [o for o in node.output if o])
    return steps.pop() if len(steps) == 1 else None


def _probe_inputs(g: _Graph, rec: _Recognised, batch: int = 2, steps: int = 5
                  ) -> tuple[dict[str, np.ndarray], Tensor, Tensor | None]:
    """Random feeds for the graph and the matching batch-first input for our model."""
    from onnx import helper

    info = {v.name: v for v in g.graph.input}
    tensor_type = info[rec.input_name].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tensor_type.shape.dim]
    batch_axis = 1 - rec.time_axis if rec.time_axis in (0, 1) else 0
    if dims and dims[batch_axis]:
        batch = dims[batch_axis]
    if dims and len(dims) > rec.time_axis and dims[rec.time_axis]:
        steps = dims[rec.time_axis]
    rng = np.random.default_rng(0)
    dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
    if rec.embedding is not None:
        ours = rng.integers(0, rec.embedding.shape[0], size=(batch, steps))
    else:
        ours = rng.standard_normal((batch, steps, rec.rnn.input_size))
    ours_t = torch.from_numpy(ours.astype(np.int64 if rec.embedding is not None else np.float32))
    feed = ours if rec.time_axis == 1 else np.swapaxes(ours, 0, 1)
    feeds = {rec.input_name: np.ascontiguousarray(feed).astype(dtype)}
    lengths = None
    if rec.lengths_name:
        values = np.maximum(steps - np.arange(batch) * 2, 1)
        len_type = helper.tensor_dtype_to_np_dtype(info[rec.lengths_name].type.tensor_type.elem_type)
        feeds[rec.lengths_name] = values.astype(len_type)
        lengths = torch.from_numpy(values.astype(np.int64))
    for name in rec.state_inputs:  # (D, B, H), or (B, D, H) under layout 1: zeros, as the model starts
        state_dims = [d.dim_value if d.HasField("dim_value") else 0 for d in info[name].type.tensor_type.shape.dim]
        state_type = helper.tensor_dtype_to_np_dtype(info[name].type.tensor_type.elem_type)
        feeds[name] = np.zeros([d or batch for d in state_dims], state_type)
    for name in g.input_names:
        if name not in feeds:
            raise ModelImportError(f"graph input {name!r} is neither the model input nor sequence lengths")
    return feeds, ours_t, lengths


class _GraphRunError(Exception):
    """Neither ONNX Runtime nor onnx.reference could run the graph on the check's input."""


def _graph_run_reason(err: BaseException) -> str:
    """An ONNX Runtime / onnx.reference error in one short line (the failing node and the reason)."""
    text = one_line(err, limit=None)  # flattened but whole: the node and reason are picked out before the cut
    node = re.search(r"running (\w+) node\. Name:'([^']*)'", text)
    if node:
        marker = " was false. " if " was false. " in text else "Status Message: "  # after ORT's source location
        reason = text.rsplit(marker, 1)[-1]
        op, name = node.group(1), node.group(2)
        text = f"{op} node {name!r}: {reason}" if name else f"{op} node: {reason}"
    return one_line(text)


def _run_graph(model: Any, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
    ort_error: BaseException | None = None
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 4  # failures come back as exceptions, reported by the caller
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return session.run([output], feeds)[0]
    except Exception as err:  # noqa: BLE001 - ORT absent, or an op/attribute ORT lacks (layout=1)
        log.debug("onnxruntime could not run the graph (%s); using onnx.reference", err)
        ort_error = None if isinstance(err, ImportError) else err
    from onnx.reference import ReferenceEvaluator

    try:
        return ReferenceEvaluator(model).run([output], feeds)[0]
    except Exception as err:  # noqa: BLE001 - the graph cannot run on these feeds
        raise _GraphRunError(_graph_run_reason(ort_error or err)) from err


def _check(g: _Graph, rec: _Recognised, model: nn.Module, rtol: float, atol: float,
           steps: int | None = None) -> float:
    """Run the graph and our model on the same random input (``steps`` long, default 5); the max error.

    Raises ModelImportError when they differ, _GraphRunError (naming the input's batch and
    steps) when the graph cannot run.
    """
    feeds, x, lengths = _probe_inputs(g, rec) if steps is None else _probe_inputs(
        g, rec, batch=3 if steps == 2 else 2, steps=steps)  # batch ≠ steps: a time-major output is told apart
    try:
        expected = np.asarray(_run_graph(g.model, feeds, rec.output_name), dtype=np.float64)
    except _GraphRunError as err:
        raise _GraphRunError(f"batch {x.shape[0]}, {x.shape[1]} steps; {err}") from err
    with torch.no_grad():
        ours = apply_output_activation(model(x)[0] if rec.kind == "lm" else model(x, lengths=lengths),
                                       rec.output_activation)
    ours_np = ours.double().numpy()
    if rec.pooling == "none" and expected.shape != ours_np.shape and expected.shape[:2] == ours_np.shape[1::-1]:
        expected = np.swapaxes(expected, 0, 1)  # time-major graph output
    if expected.size != ours_np.size:
        raise ModelImportError(f"the graph's output has shape {expected.shape}, the imported model gives "
                               f"{ours_np.shape}: the graph does not have the structure lstmlite imports")
    expected = expected.reshape(ours_np.shape)
    error, agree = check_error(expected, ours_np, rtol, atol)
    if not agree:
        raise ModelImportError(
            f"the imported model does not reproduce the ONNX graph (max error {error:.3g} on a random "
            f"input, pooling read as {rec.pooling!r}): the graph computes something lstmlite does not map "
            "(e.g. a bidirectional model read at the last step, or extra ops between the layers)")
    return error


def _verify(g: _Graph, rec: _Recognised, model: nn.Module, rtol: float, atol: float,
            info: dict[str, Any]) -> float:
    """Check the import against the graph; raise if they differ or the graph cannot run.

    A graph that declares a fixed time length (see :func:`_declared_steps`) and fails at
    another length is checked at its own length: it runs there only, our model takes any
    length (``info["graph_steps"]`` records it, with a warning).
    """
    try:
        return _check(g, rec, model, rtol, atol)
    except (_GraphRunError, ModelImportError) as err:
        declared = _declared_steps(g, rec)
        if declared is None or declared == 5:  # 5: the check's own length (the input's time axis is not fixed)
            if isinstance(err, _GraphRunError):
                raise ModelImportError(
                    f"the graph does not run on the check's random input ({err}): it is likely tied to the input "
                    "shape it was exported with; re-export it with dynamic batch and time axes (from PyTorch: "
                    "torch.onnx.export(..., dynamo=False, dynamic_axes=...)) or skip the check (verify=False, "
                    "CLI --no-verify)") from None
            raise
        try:
            error = _check(g, rec, model, rtol, atol, steps=declared)
        except _GraphRunError as again:
            raise ModelImportError(f"the graph does not run on the check's random input, neither at 5 steps nor at "
                                   f"the {declared} steps it declares ({again}); skip the check "
                                   "(verify=False, CLI --no-verify) to import it unchecked") from None
    log.warning("the ONNX graph runs at %d steps only (it fixes the recurrent output's time axis at the export "
                "example's length, as torch.onnx.export(dynamo=True) may); the import was checked at %d steps and "
                "takes any length. For an ONNX file that runs at any length, export with dynamo=False",
                declared, declared)
    info["graph_steps"] = declared
    return error


def import_onnx(
    source: str | Path | Any,
    out: str | Path | None = None,
    *,
    kind: str | None = None,
    verify: bool = True,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    overwrite: bool = False,
) -> nn.Module:
    """Import an ONNX model with LSTM / GRU / RNN nodes as an lstmlite model.

    Args:
        source: an ``.onnx`` path or a loaded ``onnx.ModelProto``.
        out: when given, also write the model as a run dir there (``overwrite``: replacing a
            run dir of ours already there).
        kind: ``classifier`` | ``lm`` | ``forecaster`` | ``tagger`` | ``layer``; default:
            from our exporter's metadata, else inferred (per-step head → ``lm`` when it
            predicts the embedding's vocabulary from a unidirectional layer, else
            ``tagger``; pooled head with one output → ``forecaster``; pooled →
            ``classifier``; no head → the bare recurrent layer).
        verify: run the graph (ONNX Runtime, else ``onnx.reference``) and the imported
            model on the same random input and fail unless they agree within
            ``rtol``/``atol``.

    Returns:
        The model (eval mode) taking batch-first input; ``model.import_info`` says
        where it came from, the graph input's layout and the dropped output activation.

    Raises:
        UnsupportedOnnxError: a recurrent node uses peepholes, clip, etc.
        ModelImportError: a graph lstmlite does not map, or a failed verification.
    """
    import onnx

    from ._common import read_model_file

    if out is not None:
        from ..io import check_out_dir

        check_out_dir(out, overwrite=overwrite)  # before the import's work, not after it
    model_proto = source if isinstance(source, onnx.ModelProto) else read_model_file(source, "ONNX", onnx.load)
    g = _Graph(model_proto)
    meta = _metadata(model_proto)
    if kind is None and meta is not None:
        kind = _META_KINDS.get(
            meta.get("type", ""), "layer")
    normalised = bool(((meta or {}).get("config") or {}).get("instance_norm")) and kind == "forecaster"
    rec = _recognise(g, kind, normalised)
    model = _build(rec, meta)
    info: dict[str, Any] = {
        "source": "onnx",
        "file": str(source) if not isinstance(source, onnx.ModelProto) else None,
        "producer": f"{model_proto.producer_name} {model_proto.producer_version}".strip(),
        "input_layout": "batch_first" if rec.time_axis == 1 else "time_major",
        "output_activation": rec.output_activation,
        "uses_lengths": rec.lengths_name is not None,
    }
    if rec.state_inputs:
        info["state_inputs"] = list(rec.state_inputs)  # fed zeros: the model runs each sequence from zero states
    if any(node.op_type == "DequantizeLinear" for node in model_proto.graph.node):
        info["dequantized"] = True  # a QDQ file's codes became float weights: the run is float
    if verify and rec.kind != "layer":
        info["verified_max_error"] = _verify(g, rec, model, rtol, atol, info)
    model.import_info = info
    if out is not None:
        save_imported(out, model, info, overwrite=overwrite)
    return model
