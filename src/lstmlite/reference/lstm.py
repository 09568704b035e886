"""Reference LSTM in NumPy: forward and full back-propagation through time.

The equations, per layer and direction, at step t (PyTorch's, with its names):

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)        input gate
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)        forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)     candidate C̃_t
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)        output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)                                 (no projection)
    h_t = W_hr (o_t * tanh(c_t))                          (LSTMP, projection to P)

This is the textbook f_t = σ(W_f·[h_{t-1}, x_t] + b_f) with W_f = [W_hf, W_if] and
b_f = b_if + b_hf. Parameters come in PyTorch's layout and names: ``weight_ih_l{k}``
(4H, I_k), ``weight_hh_l{k}`` (4H, H_out), ``bias_ih_l{k}`` / ``bias_hh_l{k}`` (4H,),
optional ``weight_hr_l{k}`` (P, H), with suffix ``_reverse`` for the reverse direction;
gates stacked in the order i, f, g, o. H_out is P with a projection, else H.

Example:

>>> rng = np.random.default_rng(0)
>>> params = {"weight_ih_l0": rng.normal(size=(8, 3)), "weight_hh_l0": rng.normal(size=(8, 2)),
...           "bias_ih_l0": np.zeros(8), "bias_hh_l0": np.zeros(8)}
>>> out, h_n, c_n, cache = lstm_forward(params, rng.normal(size=(1, 5, 3)))
>>> out.shape, h_n.shape, c_n.shape
((1, 5, 2), (1, 1, 2), (1, 1, 2))
>>> grads, d_x, d_h0, d_c0 = lstm_backward(params, cache, np.ones_like(out))
>>> grads["weight_ih_l0"].shape, d_x.shape
((8, 3), (1, 5, 3))
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

GATES = ("i", "f", "g", "o")  # PyTorch's order of the stacked gate rows


def lstm_cell_forward(
    x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, w: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One LSTM step for a batch, with the weights split per gate (see ``split_gates``).

    x: (B, I), h_prev: (B, H_out), c_prev: (B, H). Returns h (B, H_out), c (B, H) and
    the step's intermediate values for the backward pass.
    """
    i = sigmoid(x @ w["W_ii"].T + w["b_ii"] + h_prev @ w["W_hi"].T + w["b_hi"])  # (B, H)
    f = sigmoid(x @ w["W_if"].T + w["b_if"] + h_prev @ w["W_hf"].T + w["b_hf"])
    g = np.tanh(x @ w["W_ig"].T + w["b_ig"] + h_prev @ w["W_hg"].T + w["b_hg"])
    o = sigmoid(x @ w["W_io"].T + w["b_io"] + h_prev @ w["W_ho"].T + w["b_ho"])
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    m = o * tanh_c  # h before the projection
    h = m @ w["W_hr"].T if "W_hr" in w else m  # (B, H_out)
    step = {"x": x, "h_prev": h_prev, "c_prev": c_prev,
            "i": i, "f": f, "g": g, "o": o, "c": c, "tanh_c": tanh_c, "m": m, "h": h}
    return h, c, step


def lstm_cell_backward(
    dh: np.ndarray,
    dc: np.ndarray,
    step: dict[str, np.ndarray],
    w: dict[str, np.ndarray],
    grad: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back through one LSTM step: the equations of ``lstm_cell_forward`` in reverse.

    dh: (B, H_out), dc: (B, H), gradients w.r.t. this step's h and c. Adds the weight
    gradients into ``grad`` (same keys as ``w``) and returns (dx (B, I),
    dh_prev (B, H_out), dc_prev (B, H)).
    """
    x, h_prev, c_prev = step["x"], step["h_prev"], step["c_prev"]
    i, f, g, o, tanh_c = step["i"], step["f"], step["g"], step["o"], step["tanh_c"]

    # h = W_hr m  (or h = m)
    if "W_hr" in w:
        grad["W_hr"] += dh.T @ step["m"]
        dm = dh @ w["W_hr"]
    else:
        dm = dh
    # m = o * tanh(c); c also reaches the loss through later steps (dc)
    do = dm * tanh_c
    dc = dc + dm * o * (1 - tanh_c**2)
    # c = f * c_prev + i * g
    di = dc * g
    dg = dc * i
    df = dc * c_prev
    dc_prev = dc * f
    # Through the activations: σ'(a) = σ(1-σ), tanh'(a) = 1 - tanh²; da_* is the
    # gradient w.r.t. a gate's pre-activation W_i* x + b_i* + W_h* h_prev + b_h*.
    pre = {"i": di * i * (1 - i), "f": df * f * (1 - f), "g": dg * (1 - g**2), "o": do * o * (1 - o)}
    dx = np.zeros_like(x)
    dh_prev = np.zeros_like(h_prev)
    for gate, da in pre.items():
        grad[f"W_i{gate}"] += da.T @ x
        grad[f"W_h{gate}"] += da.T @ h_prev
        grad[f"b_i{gate}"] += da.sum(axis=0)
        grad[f"b_h{gate}"] += da.sum(axis=0)
        dx += da @ w[f"W_i{gate}"]
        dh_prev += da @ w[f"W_h{gate}"]
    return dx, dh_prev, dc_prev


def _step_forward(x, state, w):
    h, c, step = lstm_cell_forward(x, state[0], state[1], w)
    return (h, c), step


def _step_backward(d_state, step, w, grad):
    dx, dh_prev, dc_prev = lstm_cell_backward(d_state[0], d_state[1], step, w, grad)
    return dx, (dh_prev, dc_prev)


LSTM_CELL = Cell("lstm", GATES, _step_forward, _step_backward)


def lstm_step(
    x: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray | None = None,
    bias_hh: np.ndarray | None = None,
    weight_hr: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step with PyTorch-layout weights, e.g. for streaming (state carried).

    x: (B, I), h: (B, H_out), c: (B, H), weight_ih: (4H, I), weight_hh: (4H, H_out),
    biases (4H,), weight_hr: (P, H). Returns (h_new (B, H_out), c_new (B, H)) in the
    common float dtype of the inputs.

    >>> h, c = lstm_step(np.ones((1, 3)), np.zeros((1, 2)), np.zeros((1, 2)),
    ...                  np.zeros((8, 3)), np.zeros((8, 2)))
    >>> h.shape, c.shape
    ((1, 2), (1, 2))
    """
    named = {"weight_ih_l0": weight_ih, "weight_hh_l0": weight_hh, "bias_ih_l0": bias_ih,
             "bias_hh_l0": bias_hh, "weight_hr_l0": weight_hr}
    named = {k: v for k, v in named.items() if v is not None}
    dtype = compute_dtype(x, h, c, *named.values())
    params = cast_params(named, dtype)
    h_new, c_new, _ = lstm_cell_forward(
        np.asarray(x, dtype), np.asarray(h, dtype), np.asarray(c, dtype),
        split_gates(params, 0, 0, GATES),
    )
    return h_new, c_new


def lstm_forward(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    num_layers: int | None = None,
    bidirectional: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, RecurrentCache]:
    """Run a stacked, optionally bidirectional LSTM over a batch of sequences.

    Same result as ``torch.nn.LSTM(batch_first=True)`` with these parameters (and, with
    ``lengths``, as a packed sequence).

    Args:
        params: PyTorch names to arrays, see the module docstring. Sizes are read off
            them; biases may be absent (``bias=False``).
        x: (B, T, I) input, batch first.
        h0: (L*D, B, H_out) initial hidden state, row ``layer*D + direction``; zeros if None.
        c0: (L*D, B, H) initial cell state; zeros if None.
        lengths: (B,) ints in 1..T; sequence b uses steps 0..lengths[b]-1. Padded steps
            give zero output; the final state is taken at each sequence's last valid step,
            and the reverse direction starts there.
        num_layers, bidirectional: inferred from ``params`` when None; checked if given.

    Returns:
        output (B, T, D*H_out) of the top layer (directions concatenated, forward first),
        h_n (L*D, B, H_out), c_n (L*D, B, H), and a cache for :func:`lstm_backward`.
        Arrays are in the common float dtype of params and x (float64 for ints).
    """
    layout = infer_layout(params, len(GATES), num_layers, bidirectional, allow_projection=True)
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != layout.input_size:
        raise ValueError(f"x has shape {x.shape}, expected (B, T, {layout.input_size})")
    dtype = compute_dtype(x, *params.values())
    params = cast_params(params, dtype)
    x = x.astype(dtype, copy=False)
    batch, steps, _ = x.shape
    n_states = layout.num_layers * layout.num_directions
    h0 = initial_state(h0, "h0", (n_states, batch, layout.out_size), dtype)
    c0 = initial_state(c0, "c0", (n_states, batch, layout.hidden_size), dtype)
    lengths = check_lengths(lengths, batch, steps)
    output, (h_n, c_n), cache = run_forward(LSTM_CELL, params, layout, x, (h0, c0), lengths)
    return output, h_n, c_n, cache


def lstm_backward(
    params: dict[str, np.ndarray],
    cache: RecurrentCache,
    d_output: np.ndarray | None,
    d_h_n: np.ndarray | None = None,
    d_c_n: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Full back-propagation through time for :func:`lstm_forward`.

    Args:
        params: the parameters given to ``lstm_forward``.
        cache: the cache it returned.
        d_output: (B, T, D*H_out) gradient of the loss w.r.t. ``output`` (None = zeros).
        d_h_n: (L*D, B, H_out) gradient w.r.t. ``h_n`` (None = zeros).
        d_c_n: (L*D, B, H) gradient w.r.t. ``c_n`` (None = zeros).

    Returns:
        (grads with the same keys and shapes as ``params``, d_x (B, T, I),
        d_h0 (L*D, B, H_out), d_c0 (L*D, B, H)).
    """
    if cache.cell_name != "lstm":
        raise ValueError(f"cache comes from a {cache.cell_name} forward, not lstm_forward")
    layout, dtype = cache.layout, cache.dtype
    if infer_layout(params, len(GATES), None, None, allow_projection=True) != layout:
        raise ValueError("params do not match the ones the cache was made with")
    params = cast_params(params, dtype)
    batch, steps, _ = cache.input_shapes[0]
    n_states = layout.num_layers * layout.num_directions
    d_output = grad_or_zeros(
        d_output, "d_output", (batch, steps, layout.num_directions * layout.out_size), dtype)
    d_h_n = grad_or_zeros(d_h_n, "d_h_n", (n_states, batch, layout.out_size), dtype)
    d_c_n = grad_or_zeros(d_c_n, "d_c_n", (n_states, batch, layout.hidden_size), dtype)
    grads, d_x, (d_h0, d_c0) = run_backward(LSTM_CELL, params, cache, d_output, (d_h_n, d_c_n))
    return {k: grads[k] for k in params}, d_x, d_h0, d_c0
