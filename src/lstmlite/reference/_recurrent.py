"""Stacking, directions and variable lengths for any recurrent cell, forward and BPTT.

The cell modules (``lstm.py``, ``gru.py``) write one time step as the equations; this
module runs those steps over time, over layers and over both directions, and runs
back-propagation through time in the opposite order.

Variable lengths follow PyTorch's packed sequences. Sequence b is active at step t
when ``t < lengths[b]``. At an active step the cell runs as usual; at a padded step
the state is carried over unchanged and the output is zero. So the forward direction
ends at each sequence's last valid step, and the reverse direction, which walks
t = T-1 .. 0, starts from the initial state at each sequence's last valid step.
Written with a mask, for each state tensor s (h, and c for the LSTM):

    s_t      = active_t * cell(x_t, s_{t-1}) + (1 - active_t) * s_{t-1}
    output_t = active_t * h_new

Back-propagation through that mask sends the gradient at a padded step straight
through to s_{t-1}, and nothing into the cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ._common import Layout, join_gate_grads, split_gates

State = tuple[np.ndarray, ...]  # (h,) for the GRU, (h, c) for the LSTM; h first
#: (x_t, state_prev, weights) -> (state_new, step cache)
StepForward = Callable[[np.ndarray, State, dict[str, np.ndarray]], tuple[State, dict[str, np.ndarray]]]
#: (d_state_new, step cache, weights, grads to add into) -> (d_x_t, d_state_prev)
StepBackward = Callable[
    [State, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]],
    tuple[np.ndarray, State],
]


@dataclass(frozen=True)
class Cell:
    """What the driver needs to know about a cell type."""

    name: str  # "lstm" or "gru"
    gates: tuple[str, ...]  # PyTorch's gate order in the stacked matrices
    step_forward: StepForward
    step_backward: StepBackward


@dataclass
class RecurrentCache:
    """Everything the backward pass needs; returned by ``*_forward``, opaque to callers.

    ``steps[layer][direction][t]`` is the cell's dict of intermediate values at step t
    (gate activations, the states it read, its input); ``mask`` is (T, B, 1) bool,
    true where a sequence is active.
    """

    cell_name: str
    layout: Layout
    dtype: np.dtype
    lengths: np.ndarray  # (B,) int
    mask: np.ndarray  # (T, B, 1) bool
    input_shapes: list[tuple[int, int, int]] = field(default_factory=list)  # per layer (B, T, I_k)
    steps: list[list[list[dict[str, np.ndarray]]]] = field(default_factory=list)

    def activations(self, name: str, layer: int = 0, direction: int = 0) -> np.ndarray:
        """One recorded intermediate over time as (B, T, size), zero at padded steps.

        ``name`` is a key of the cell's step cache, e.g. ``"f"`` (forget gate) or
        ``"c"`` (cell state) or ``"h"`` for the LSTM, ``"z"`` for the GRU. Useful to look
        at gates: after ``_, _, _, cache = lstm_forward(params, x)``,
        ``cache.activations("f")`` is the forget gate of layer 0, shape (B, T, H).
        """
        steps = self.steps[layer][direction]
        stacked = np.stack([s[name] for s in steps], axis=1)  # (B, T, size)
        return np.where(self.mask.transpose(1, 0, 2), stacked, 0)


def time_order(direction: int, steps: int) -> range:
    """Steps in the order a direction visits them: forward 0..T-1, reverse T-1..0."""
    return range(steps) if direction == 0 else range(steps - 1, -1, -1)


def run_forward(
    cell: Cell,
    params: dict[str, np.ndarray],
    layout: Layout,
    x: np.ndarray,
    init: State,
    lengths: np.ndarray,
) -> tuple[np.ndarray, State, RecurrentCache]:
    """Run all layers and directions.

    x: (B, T, I). init: one (L*D, B, size) array per state tensor, row ``layer*D + d``.
    Returns output (B, T, D*H_out) of the top layer, the final states shaped like
    ``init``, and the cache.
    """
    batch, steps, _ = x.shape
    mask = (np.arange(steps)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)
    cache = RecurrentCache(cell.name, layout, x.dtype, lengths, mask)
    final = tuple(np.empty_like(s) for s in init)

    layer_input = x  # (B, T, I_k)
    for layer in range(layout.num_layers):
        cache.input_shapes.append(layer_input.shape)
        outputs, layer_steps = [], []
        for d in range(layout.num_directions):
            idx = layer * layout.num_directions + d
            w = split_gates(params, layer, d, cell.gates)
            state = tuple(s[idx] for s in init)
            out = np.zeros((batch, steps, layout.out_size), dtype=x.dtype)  # padded steps stay 0
            step_caches: list[dict[str, np.ndarray]] = [{}] * steps
            for t in time_order(d, steps):
                active = mask[t]  # (B, 1)
                new, step_caches[t] = cell.step_forward(layer_input[:, t], state, w)
                state = tuple(np.where(active, s_new, s_old) for s_new, s_old in zip(new, state))
                out[:, t] = np.where(active, new[0], 0)
            for f, s in zip(final, state):
                f[idx] = s
            outputs.append(out)
            layer_steps.append(step_caches)
        cache.steps.append(layer_steps)
        layer_input = np.concatenate(outputs, axis=-1)  # (B, T, D*H_out)
    return layer_input, final, cache


def run_backward(
    cell: Cell,
    params: dict[str, np.ndarray],
    cache: RecurrentCache,
    d_output: np.ndarray,
    d_final: State,
) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Back-propagation through time, through every layer and direction.

    d_output: (B, T, D*H_out), gradient of the loss w.r.t. the top layer's output.
    d_final: gradients w.r.t. the final states, shaped like the initial states.
    Returns (grads with the keys of ``params``, d_x (B, T, I), d_init shaped like d_final).
    """
    layout = cache.layout
    n_dirs, out_size = layout.num_directions, layout.out_size
    mask = cache.mask.astype(cache.dtype)  # (T, B, 1): 1 active, 0 padded
    grads: dict[str, np.ndarray] = {}
    d_init = tuple(np.empty_like(s) for s in d_final)

    d_layer_out = d_output  # gradient w.r.t. this layer's output (B, T, D*H_out)
    for layer in reversed(range(layout.num_layers)):
        d_layer_in = np.zeros(cache.input_shapes[layer], dtype=cache.dtype)
        for d in range(n_dirs):
            idx = layer * n_dirs + d
            w = split_gates(params, layer, d, cell.gates)
            g = {k: np.zeros_like(v) for k, v in w.items()}
            d_out = d_layer_out[:, :, d * out_size : (d + 1) * out_size]
            d_state = tuple(s[idx] for s in d_final)  # gradient w.r.t. the state after step t
            steps = cache.steps[layer][d]
            for t in reversed(time_order(d, len(steps))):
                a = mask[t]
                # Active rows: the gradient goes into the cell's new state (h also gets
                # the output's gradient). Padded rows: it skips the cell.
                d_new = [a * ds for ds in d_state]
                d_new[0] = d_new[0] + a * d_out[:, t]
                d_x_t, d_prev = cell.step_backward(tuple(d_new), steps[t], w, g)
                d_state = tuple(dp + (1 - a) * ds for dp, ds in zip(d_prev, d_state))
                d_layer_in[:, t] += d_x_t
            for di, ds in zip(d_init, d_state):
                di[idx] = ds
            grads.update(join_gate_grads(g, layer, d, cell.gates, layout.has_bias))
        d_layer_out = d_layer_in
    return grads, d_layer_out, d_init


def cast_params(params: dict[str, Any], dtype: np.dtype) -> dict[str, np.ndarray]:
    """Every parameter as an array of ``dtype`` (no copy when it already is one)."""
    return {k: np.asarray(v, dtype=dtype) for k, v in params.items()}
