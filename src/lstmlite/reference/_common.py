"""Shared pieces of the NumPy reference layers.

Activations, PyTorch's parameter names, reading the layer sizes off a parameter
dict, and splitting PyTorch's stacked gate matrices into one matrix per gate (and
joining the gradients back) so that the cell code can be written as the equations.

PyTorch stores the gates of one layer and direction stacked along the rows:
``weight_ih_l0`` is ``(G*H, I)`` with gate ``k`` in rows ``k*H:(k+1)*H``; G = 4 for
the LSTM (i, f, g, o) and 3 for the GRU (r, z, n). After splitting, the names are
PyTorch's documentation names: ``W_ii`` (input -> gate i), ``W_hi`` (hidden -> gate
i), ``b_ii``, ``b_hi``, and so on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

#: Suffix of a parameter name per direction: 0 = forward, 1 = reverse.
DIRECTION_SUFFIXES: tuple[str, str] = ("", "_reverse")

_PARAM_RE = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-a)), elementwise, in the dtype of ``a``.

    Written with exp(-|a|) so that it never overflows; both branches are the exact
    logistic function, so nothing is approximated.

    >>> float(sigmoid(np.array(0.0)))
    0.5
    """
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def param_name(kind: str, layer: int, direction: int) -> str:
    """PyTorch's name of a recurrent parameter.

    >>> param_name("weight_ih", 1, 1)
    'weight_ih_l1_reverse'
    """
    return f"{kind}_l{layer}{DIRECTION_SUFFIXES[direction]}"


@dataclass(frozen=True)
class Layout:
    """Sizes of a (stacked, maybe bidirectional) recurrent layer, read off its params.

    ``out_size`` is the size of h (``proj_size`` when the LSTM has a projection,
    else ``hidden_size``); ``hidden_size`` is the size of the gates and of c.
    """

    num_layers: int
    num_directions: int
    input_size: int
    hidden_size: int
    proj_size: int  # 0 = no projection
    has_bias: bool

    @property
    def out_size(self) -> int:
        return self.proj_size or self.hidden_size

    def layer_input_size(self, layer: int) -> int:
        """Width of layer ``layer``'s input: x for layer 0, else the layer below's output."""
        return self.input_size if layer == 0 else self.num_directions * self.out_size


def infer_layout(
    params: dict[str, np.ndarray],
    num_gates: int,
    num_layers: int | None,
    bidirectional: bool | None,
    allow_projection: bool,
) -> Layout:
    """Read the sizes off ``params`` and check every expected tensor and shape.

    ``num_layers`` / ``bidirectional``: ``None`` infers them from the names; a given
    value must agree with the names. Raises ``ValueError`` on a missing, unknown or
    wrongly shaped parameter.
    """
    found: dict[tuple[str, int, int], tuple[int, ...]] = {}
    for name, value in params.items():
        m = _PARAM_RE.match(name)
        if m is None:
            raise ValueError(f"unknown recurrent parameter name {name!r}")
        if m.group(1) == "weight_hr" and not allow_projection:
            raise ValueError(f"{name!r}: this layer type has no projection")
        found[(m.group(1), int(m.group(2)), 1 if m.group(3) else 0)] = np.shape(value)
    if ("weight_ih", 0, 0) not in found:
        raise ValueError("params lack 'weight_ih_l0'")

    n_layers = 1 + max(layer for _, layer, _ in found)
    n_dirs = 2 if any(d == 1 for _, _, d in found) else 1
    if num_layers is not None and num_layers != n_layers:
        raise ValueError(f"num_layers={num_layers} but params hold {n_layers} layer(s)")
    if bidirectional is not None and bool(bidirectional) != (n_dirs == 2):
        raise ValueError(f"bidirectional={bidirectional} but params say {n_dirs == 2}")

    gh, input_size = found[("weight_ih", 0, 0)]
    if gh % num_gates:
        raise ValueError(f"weight_ih_l0 has {gh} rows, not a multiple of {num_gates} gates")
    hidden = gh // num_gates
    has_bias = ("bias_ih", 0, 0) in found
    proj = found[("weight_hr", 0, 0)][0] if ("weight_hr", 0, 0) in found else 0
    layout = Layout(n_layers, n_dirs, input_size, hidden, proj, has_bias)

    out = layout.out_size
    expected: dict[tuple[str, int, int], tuple[int, ...]] = {}
    for layer in range(n_layers):
        for d in range(n_dirs):
            expected[("weight_ih", layer, d)] = (gh, layout.layer_input_size(layer))
            expected[("weight_hh", layer, d)] = (gh, out)
            if has_bias:
                expected[("bias_ih", layer, d)] = (gh,)
                expected[("bias_hh", layer, d)] = (gh,)
            if proj:
                expected[("weight_hr", layer, d)] = (proj, hidden)
    for key, shape in expected.items():
        name = param_name(key[0], key[1], key[2])
        if key not in found:
            raise ValueError(f"params lack {name!r}")
        if tuple(found[key]) != shape:
            raise ValueError(f"{name!r} has shape {tuple(found[key])}, expected {shape}")
    extra = sorted(param_name(*k) for k in set(found) - set(expected))
    if extra:
        raise ValueError(f"unexpected parameters {extra}")
    return layout


def compute_dtype(*arrays: np.ndarray) -> np.dtype:
    """The float dtype to compute in: the common dtype of the inputs, float64 if none is a float."""
    dt = np.result_type(*[np.asarray(a).dtype for a in arrays])
    if np.issubdtype(dt, np.complexfloating):
        raise ValueError("complex inputs are not supported")
    return dt if np.issubdtype(dt, np.floating) else np.dtype(np.float64)


def split_gates(
    params: dict[str, np.ndarray], layer: int, direction: int, gates: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """One layer and direction's weights with one matrix per gate.

    Returns ``{"W_i<gate>": (H, I_k), "W_h<gate>": (H, H_out), "b_i<gate>": (H,),
    "b_h<gate>": (H,)}`` for every gate, plus ``"W_hr": (P, H)`` when the LSTM has a
    projection. Missing biases (``bias=False``) come back as zeros, so the cell code
    has one form.
    """
    w: dict[str, np.ndarray] = {}
    for src, short in (("ih", "i"), ("hh", "h")):
        weight = params[param_name(f"weight_{src}", layer, direction)]
        hidden = weight.shape[0] // len(gates)
        bias = params.get(param_name(f"bias_{src}", layer, direction))
        if bias is None:
            bias = np.zeros(weight.shape[0], dtype=weight.dtype)
        for k, gate in enumerate(gates):
            rows = slice(k * hidden, (k + 1) * hidden)
            w[f"W_{short}{gate}"] = weight[rows]
            w[f"b_{short}{gate}"] = bias[rows]
    projection = params.get(param_name("weight_hr", layer, direction))
    if projection is not None:
        w["W_hr"] = projection
    return w


def join_gate_grads(
    grads: dict[str, np.ndarray],
    layer: int,
    direction: int,
    gates: tuple[str, ...],
    has_bias: bool,
) -> dict[str, np.ndarray]:
    """Inverse of :func:`split_gates` for gradients: stack the per-gate gradients
    back into PyTorch's ``(G*H, ...)`` layout under PyTorch's names."""
    out: dict[str, np.ndarray] = {}
    for src, short in (("ih", "i"), ("hh", "h")):
        out[param_name(f"weight_{src}", layer, direction)] = np.concatenate(
            [grads[f"W_{short}{g}"] for g in gates], axis=0
        )
        if has_bias:
            out[param_name(f"bias_{src}", layer, direction)] = np.concatenate(
                [grads[f"b_{short}{g}"] for g in gates], axis=0
            )
    if "W_hr" in grads:
        out[param_name("weight_hr", layer, direction)] = grads["W_hr"]
    return out


def check_lengths(lengths: np.ndarray | None, batch: int, steps: int) -> np.ndarray:
    """Lengths as an int array (B,); ``None`` means every sequence has all T steps.

    Like PyTorch's packed sequences, each length must be in 1..T.
    """
    if lengths is None:
        return np.full(batch, steps, dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.shape != (batch,):
        raise ValueError(f"lengths has shape {arr.shape}, expected ({batch},)")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(arr == np.round(arr)):
            raise ValueError("lengths must be integers")
    arr = arr.astype(np.int64)
    if arr.min() < 1 or arr.max() > steps:
        raise ValueError(f"lengths must lie in 1..{steps}, got {arr.tolist()}")
    return arr


def initial_state(
    state: np.ndarray | None, name: str, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """A given initial state cast to ``dtype`` after a shape check, or zeros."""
    if state is None:
        return np.zeros(shape, dtype=dtype)
    arr = np.asarray(state, dtype=dtype)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    return arr


def grad_or_zeros(
    grad: np.ndarray | None, name: str, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """An incoming gradient checked against its tensor's shape; ``None`` means zeros."""
    return initial_state(grad, name, shape, dtype)
