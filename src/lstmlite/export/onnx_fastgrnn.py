"""FastGRNN in ONNX from standard operators: one ``Scan`` per layer.

No ONNX operator computes FastGRNN (Kusupati et al. 2018), so each layer becomes

    x (T, B, I) ─► (T·B, I) ─► Gemm(Wᵀ) [low-rank: Gemm(W_rightᵀ) → Gemm(W_leftᵀ)] ─► WX (T, B, H)
    Scan over T, state h (B, H) = 0, scan inputs WX_t (B, H) [and valid_t (B, 1) bool]:
        pre = WX_t + h · Uᵀ                     (U = Gemm(U_left, U_right) when low-rank, once)
        z   = σ_g(pre + b_z)        h̃ = σ_u(pre + b_h)           σ: Sigmoid | Tanh
        h'  = (ζ (1 − z) + ν) ⊙ h̃ + z ⊙ h
        [lengths: h' = Where(valid_t, h', h);  y_t = h' · valid_t]
    → Y (T, B, H), h_T (B, H)

exactly :func:`lstmlite.nn._cell_kernels.fastgrnn_loop` (ζ = sigmoid(``zeta``),
ν = sigmoid(``nu``) are baked in as constants). The matrices are the layer's
*effective* tensors (masks, fake quantization, low-rank parametrizations applied),
stored in PyTorch's (rows, cols) layout so that quantized codes keep their per-row
scales. The input projection is a ``Gemm`` with ``transB=1`` on the flattened steps, not a
``MatMul`` with a transposed weight: ONNX Runtime rewrites ``DequantizeLinear →
Transpose → MatMul`` into ``MatMulNBits`` with int8 activations (accuracy level 4),
which moved a JapaneseVowels FastGRNN's logits by 1e-2; ``Gemm`` computes in float.

Example:
    >>> import tempfile, os
    >>> from lstmlite.export.onnx import export_onnx
    >>> from lstmlite.nn import SequenceClassifier
    >>> model = SequenceClassifier(input_size=4, cell="fastgrnn", hidden_size=8, n_classes=2)
    >>> export_onnx(model, os.path.join(tempfile.mkdtemp(), "f.onnx")).suffix
    '.onnx'
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["fastgrnn_stack"]

#: weight(graph_name, tensor, parameter_name) -> the graph value holding the (dequantized) matrix
WeightFn = Callable[[str, Tensor, str], str]

_ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh"}


def _matrix(g: Any, rnn: nn.Module, name: str, rank: int | None, weight: WeightFn, prefix: str) -> list[str]:
    """The graph values of one matrix: [M] or, factored, [left, right]."""
    names = [name] if rank is None else [f"{name}_left", f"{name}_right"]
    return [weight(f"{prefix}.{n}", getattr(rnn, n), n) for n in names]


def _transposed(g: Any, value: str) -> str:
    return g.one("Transpose", [value], perm=[1, 0])


def _body(prefix: str, u_t: str, b_gate: str, b_update: str, zeta: str, nu: str, one: str,
          gate: str, update: str, masked: bool) -> Any:
    """The Scan body: (h_prev (B, H), wx_t (B, H)[, valid_t (B, 1)]) → (h (B, H), y_t (B, H)).

    It reads the layer's constants from the outer graph by name; every value it makes
    is prefixed, because a subgraph must not reuse an outer name.
    """
    from onnx import TensorProto, helper

    p = f"{prefix}.body"
    h_prev, wx_t, valid_t = f"{p}.h_prev", f"{p}.wx_t", f"{p}.valid_t"
    nodes = []

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [f"{p}.{out}"], name=f"{p}.{out}", **attrs))
        return f"{p}.{out}"

    pre = node("Add", [wx_t, node("MatMul", [h_prev, u_t], "uh")], "pre")  # W x_t + U h: shared by both branches
    z = node(gate, [node("Add", [pre, b_gate], "pre_z")], "z")
    h_tilde = node(update, [node("Add", [pre, b_update], "pre_h")], "h_tilde")
    coef = node("Add", [node("Mul", [zeta, node("Sub", [one, z], "one_minus_z")], "zeta_term"), nu], "coef")
    h_new = node("Add", [node("Mul", [coef, h_tilde], "new_term"), node("Mul", [z, h_prev], "keep_term")], "h_new")
    inputs = [helper.make_tensor_value_info(h_prev, TensorProto.FLOAT, None),
              helper.make_tensor_value_info(wx_t, TensorProto.FLOAT, None)]
    if masked:
        # A padded step keeps the state and outputs zero, as the PyTorch layer does.
        inputs.append(helper.make_tensor_value_info(valid_t, TensorProto.BOOL, None))
        h_out = node("Where", [valid_t, h_new, h_prev], "h")
        y_t = node("Mul", [h_out, node("Cast", [valid_t], "valid_f", to=TensorProto.FLOAT)], "y")
    else:
        h_out, y_t = h_new, node("Identity", [h_new], "y")
    outputs = [helper.make_tensor_value_info(h_out, TensorProto.FLOAT, None),
               helper.make_tensor_value_info(y_t, TensorProto.FLOAT, None)]
    return helper.make_graph(nodes, f"{p}", inputs, outputs)


def _scalar(t: Tensor) -> np.ndarray:
    """sigmoid of a (1,) parameter, as float32 (1,): ζ or ν as the layer uses them."""
    return torch.sigmoid(t.detach().float().cpu()).numpy().reshape(1)


def fastgrnn_stack(g: Any, rnn: nn.Module, x: str, lengths: str | None, weight: WeightFn,
                   prefix: str = "rnn") -> tuple[str, list[list[str]]]:
    """Emit ``rnn`` (a :class:`~lstmlite.nn.cells.FastGRNN`) as one Scan per layer.

    Args:
        g: the export graph (:class:`lstmlite.export.onnx._Graph`).
        rnn: the FastGRNN stack (possibly compressed: its attributes are the effective tensors).
        x: the (T, B, I) float input value.
        lengths: the (B,) int64 lengths value, or None when every sequence is full.
        weight: makes a matrix's graph value (float initializer, or int codes + DequantizeLinear).
        prefix: name prefix of everything emitted.

    Returns:
        the (T, B, H) output sequence and, per layer, ``[h_n (1, B, H)]``.
    """
    from onnx import TensorProto, helper

    from .onnx import _valid_steps  # the same padding mask the other layers use

    valid = _valid_steps(g, x, lengths, time_axis=0, prefix=f"{prefix}.mask") if lengths is not None else None
    one = g.const(f"{prefix}.one", np.ones(1, np.float32))
    batch = g.one("Gather", [g.one("Shape", [x]), g.ints(f"{prefix}.batch_axis", [1])], axis=0)  # (1,)
    states = []
    for k, hidden in enumerate(rnn.hidden_sizes):
        lp = f"{prefix}.l{k}"
        w = _matrix(g, rnn, f"weight_ih_l{k}", rnn.wrank, weight, prefix)
        # All steps' W x_t at once, through the factors when low-rank (fewer MACs), as PyTorch does.
        width = g.ints(f"{lp}.hidden", [hidden])
        steps_batch = g.one("Slice", [g.one("Shape", [x]), g.ints(f"{lp}.tb_start", [0]),
                                      g.ints(f"{lp}.tb_end", [2])])  # (2,): T, B
        flat = g.one("Reshape", [x, g.ints(f"{lp}.flat", [-1, rnn.layer_input_size(k)])])  # (T·B, I)
        for factor in reversed(w):  # [W] or [W_left, W_right]: W_right first
            flat = g.one("Gemm", [flat, factor], transB=1)
        wx = g.one("Reshape", [flat, g.one("Concat", [steps_batch, width], axis=0)])  # (T, B, H)
        u = _matrix(g, rnn, f"weight_hh_l{k}", rnn.urank, weight, prefix)
        u_eff = u[0] if len(u) == 1 else g.one("Gemm", u)  # (H, H), multiplied out once; Gemm: see module doc
        u_t = _transposed(g, u_eff)
        b_gate = g.const(f"{lp}.bias_gate", getattr(rnn, f"bias_gate_l{k}").detach().float().cpu().numpy())
        b_update = g.const(f"{lp}.bias_update", getattr(rnn, f"bias_update_l{k}").detach().float().cpu().numpy())
        zeta = g.const(f"{lp}.zeta", _scalar(getattr(rnn, f"zeta_l{k}")))
        nu = g.const(f"{lp}.nu", _scalar(getattr(rnn, f"nu_l{k}")))
        h0 = g.one("ConstantOfShape", [g.one("Concat", [batch, width], axis=0)],
                   value=helper.make_tensor(f"{lp}.zero", TensorProto.FLOAT, [1], [0.0]))
        body = _body(lp, u_t, b_gate, b_update, zeta, nu, one, _ACTIVATIONS[rnn.gate_nonlinearity],
                     _ACTIVATIONS[rnn.update_nonlinearity], masked=valid is not None)
        scan_inputs = [h0, wx] + ([valid] if valid is not None else [])
        h_n, x = g.node("Scan", scan_inputs, n_out=2, name=f"{lp}.scan", body=body,
                        num_scan_inputs=len(scan_inputs) - 1)
        states.append([g.one("Unsqueeze", [h_n, g.ints(f"{lp}.axis0", [0])])])  # (1, B, H) like Y_h
    return x, states
