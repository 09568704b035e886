"""Reference GRU in NumPy: forward and full back-propagation through time.

The equations, per layer and direction, at step t (PyTorch's semantics and names):

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)               reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)               update gate
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))    candidate
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Note that r multiplies ``W_hn h + b_hn`` (PyTorch / cuDNN form), not h alone as in the
original paper. Parameters come in PyTorch's layout and names: ``weight_ih_l{k}``
(3H, I_k), ``weight_hh_l{k}`` (3H, H), ``bias_ih_l{k}`` / ``bias_hh_l{k}`` (3H,), with
suffix ``_reverse`` for the reverse direction; gates stacked in the order r, z, n.
(Here ``W_hr`` is the hidden-to-reset-gate block, not the LSTM's projection.)

Example:

>>> rng = np.random.default_rng(0)
>>> params = {"weight_ih_l0": rng.normal(size=(6, 3)), "weight_hh_l0": rng.normal(size=(6, 2))}
>>> out, h_n, cache = gru_forward(params, rng.normal(size=(1, 5, 3)))
>>> out.shape, h_n.shape
((1, 5, 2), (1, 1, 2))
>>> grads, d_x, d_h0 = gru_backward(params, cache, np.ones_like(out))
>>> grads["weight_hh_l0"].shape, d_h0.shape
((6, 2), (1, 1, 2))
"""

from __future__ import annotations

import numpy as np

from ._common import (
    compute_dtype,
    check_lengths,
    grad_or_zeros,
    infer_layout,
    initial_state,
    sigmoid,
    split_gates,
)
from ._recurrent import Cell, RecurrentCache, cast_params, run_backward, run_forward

GATES = ("r", "z", "n")  # PyTorch's order of the stacked gate rows


def gru_cell_forward(
    x: np.ndarray, h_prev: np.ndarray, w: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One GRU step for a batch, with the weights split per gate (see ``split_gates``).

    x: (B, I), h_prev: (B, H). Returns h (B, H) and the step's intermediate values.
    """
    r = sigmoid(x @ w["W_ir"].T + w["b_ir"] + h_prev @ w["W_hr"].T + w["b_hr"])  # (B, H)
    z = sigmoid(x @ w["W_iz"].T + w["b_iz"] + h_prev @ w["W_hz"].T + w["b_hz"])
    hn = h_prev @ w["W_hn"].T + w["b_hn"]  # kept: r multiplies it, and backward needs it
    n = np.tanh(x @ w["W_in"].T + w["b_in"] + r * hn)
    h = (1 - z) * n + z * h_prev
    step = {"x": x, "h_prev": h_prev, "r": r, "z": z, "n": n, "hn": hn, "h": h}
    return h, step


def gru_cell_backward(
    dh: np.ndarray,
    step: dict[str, np.ndarray],
    w: dict[str, np.ndarray],
    grad: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Back through one GRU step: the equations of ``gru_cell_forward`` in reverse.

    dh: (B, H) gradient w.r.t. this step's h. Adds the weight gradients into ``grad``
    (same keys as ``w``) and returns (dx (B, I), dh_prev (B, H)).
    """
    x, h_prev = step["x"], step["h_prev"]
    r, z, n, hn = step["r"], step["z"], step["n"], step["hn"]

    # h = (1 - z) * n + z * h_prev
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    dh_prev = dh * z
    # n = tanh(a_n), a_n = W_in x + b_in + r * hn, hn = W_hn h_prev + b_hn
    da_n = dn * (1 - n**2)
    dr = da_n * hn
    d_hn = da_n * r
    grad["W_in"] += da_n.T @ x
    grad["b_in"] += da_n.sum(axis=0)
    grad["W_hn"] += d_hn.T @ h_prev
    grad["b_hn"] += d_hn.sum(axis=0)
    dx = da_n @ w["W_in"]
    dh_prev = dh_prev + d_hn @ w["W_hn"]
    # r, z = σ(W_i* x + b_i* + W_h* h_prev + b_h*), σ' = σ(1-σ)
    for gate, da in (("r", dr * r * (1 - r)), ("z", dz * z * (1 - z))):
        grad[f"W_i{gate}"] += da.T @ x
        grad[f"W_h{gate}"] += da.T @ h_prev
        grad[f"b_i{gate}"] += da.sum(axis=0)
        grad[f"b_h{gate}"] += da.sum(axis=0)
        dx = dx + da @ w[f"W_i{gate}"]
        dh_prev = dh_prev + da @ w[f"W_h{gate}"]
    return dx, dh_prev


def _step_forward(x, state, w):
    h, step = gru_cell_forward(x, state[0], w)
    return (h,), step


def _step_backward(d_state, step, w, grad):
    dx, dh_prev = gru_cell_backward(d_state[0], step, w, grad)
    return dx, (dh_prev,)


GRU_CELL = Cell("gru", GATES, _step_forward, _step_backward)


def gru_step(
    x: np.ndarray,
    h: np.ndarray,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray | None = None,
    bias_hh: np.ndarray | None = None,
) -> np.ndarray:
    """One GRU step with PyTorch-layout weights, e.g. for streaming (state carried).

    x: (B, I), h: (B, H), weight_ih: (3H, I), weight_hh: (3H, H), biases (3H,).
    Returns h_new (B, H) in the common float dtype of the inputs.

    >>> gru_step(np.ones((1, 3)), np.zeros((1, 2)), np.zeros((6, 3)), np.zeros((6, 2))).shape
    (1, 2)
    """
    named = {"weight_ih_l0": weight_ih, "weight_hh_l0": weight_hh,
             "bias_ih_l0": bias_ih, "bias_hh_l0": bias_hh}
    named = {k: v for k, v in named.items() if v is not None}
    dtype = compute_dtype(x, h, *named.values())
    params = cast_params(named, dtype)
    h_new, _ = gru_cell_forward(np.asarray(x, dtype), np.asarray(h, dtype),
                                split_gates(params, 0, 0, GATES))
    return h_new


def gru_forward(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    h0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    num_layers: int | None = None,
    bidirectional: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, RecurrentCache]:
    """Run a stacked, optionally bidirectional GRU over a batch of sequences.

    Same result as ``torch.nn.GRU(batch_first=True)`` with these parameters (and, with
    ``lengths``, as a packed sequence).

    Args:
        params: PyTorch names to arrays, see the module docstring. Sizes are read off
            them; biases may be absent (``bias=False``).
        x: (B, T, I) input, batch first.
        h0: (L*D, B, H) initial hidden state, row ``layer*D + direction``; zeros if None.
        lengths: (B,) ints in 1..T; sequence b uses steps 0..lengths[b]-1. Padded steps
            give zero output; the final state is taken at each sequence's last valid step,
            and the reverse direction starts there.
        num_layers, bidirectional: inferred from ``params`` when None; checked if given.

    Returns:
        output (B, T, D*H) of the top layer (directions concatenated, forward first),
        h_n (L*D, B, H), and a cache for :func:`gru_backward`. Arrays are in the common
        float dtype of params and x (float64 for ints).
    """
    layout = infer_layout(params, len(GATES), num_layers, bidirectional, allow_projection=False)
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != layout.input_size:
        raise ValueError(f"x has shape {x.shape}, expected (B, T, {layout.input_size})")
    dtype = compute_dtype(x, *params.values())
    params = cast_params(params, dtype)
    x = x.astype(dtype, copy=False)
    batch, steps, _ = x.shape
    n_states = layout.num_layers * layout.num_directions
    h0 = initial_state(h0, "h0", (n_states, batch, layout.hidden_size), dtype)
    lengths = check_lengths(lengths, batch, steps)
    output, (h_n,), cache = run_forward(GRU_CELL, params, layout, x, (h0,), lengths)
    return output, h_n, cache


def gru_backward(
    params: dict[str, np.ndarray],
    cache: RecurrentCache,
    d_output: np.ndarray | None,
    d_h_n: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Full back-propagation through time for :func:`gru_forward`.

    Args:
        params: the parameters given to ``gru_forward``.
        cache: the cache it returned.
        d_output: (B, T, D*H) gradient of the loss w.r.t. ``output`` (None = zeros).
        d_h_n: (L*D, B, H) gradient w.r.t. ``h_n`` (None = zeros).

    Returns:
        (grads with the same keys and shapes as ``params``, d_x (B, T, I), d_h0 (L*D, B, H)).
    """
    if cache.cell_name != "gru":
        raise ValueError(f"cache comes from a {cache.cell_name} forward, not gru_forward")
    layout, dtype = cache.layout, cache.dtype
    if infer_layout(params, len(GATES), None, None, allow_projection=False) != layout:
        raise ValueError("params do not match the ones the cache was made with")
    params = cast_params(params, dtype)
    batch, steps, _ = cache.input_shapes[0]
    n_states = layout.num_layers * layout.num_directions
    d_output = grad_or_zeros(
        d_output, "d_output", (batch, steps, layout.num_directions * layout.hidden_size), dtype)
    d_h_n = grad_or_zeros(d_h_n, "d_h_n", (n_states, batch, layout.hidden_size), dtype)
    grads, d_x, (d_h0,) = run_backward(GRU_CELL, params, cache, d_output, (d_h_n,))
    return {k: grads[k] for k in params}, d_x, d_h0
