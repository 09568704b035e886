"""Recurrent layers that other frameworks have and :mod:`lstmlite.nn` does not (yet).

Imports meet two recurrent forms with no exact counterpart among our layers:

* :class:`SimpleRNN` — the Elman RNN, ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``
  with ``act`` tanh or ReLU: ONNX's ``RNN`` op, Keras's ``SimpleRNN``, PyTorch's
  ``nn.RNN``. Runs on PyTorch's fused kernel (``torch._VF.rnn_tanh`` / ``rnn_relu``).
* :class:`GRUResetBefore` — the GRU of Cho et al. (2014) as first written, with the
  reset gate applied to the state *before* the recurrent matrix:
  ``n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn)``. This is ONNX's GRU
  with ``linear_before_reset=0`` (its default) and Keras's GRU with
  ``reset_after=False``. PyTorch's GRU (and :class:`lstmlite.nn.GRU`) computes
  ``r_t * (W_hn h_{t-1} + b_hn)`` instead, which differs for any nonzero ``r`` ≠ 1,
  so no weight conversion makes one the other. No fused kernel exists: it runs a
  Python loop over time steps (fine for importing and checking, slow for training).

Both subclass :class:`lstmlite.nn.layers.RecurrentLayer`, so they take the same
arguments, lengths, states, stacking and bidirection as our LSTM/GRU, and keep
PyTorch's parameter names (``weight_ih_l0`` …; GRU gate order r, z, n).

They are not (yet) cells of the task models' registry (``lstmlite.nn.CELLS``): a
model that contains one runs, exports to ONNX and compares, but cannot be written
to a run dir.

Example:
    >>> import torch
    >>> rnn = SimpleRNN(input_size=3, hidden_size=4)
    >>> ref = torch.nn.RNN(3, 4, batch_first=True)
    >>> _ = rnn.load_state_dict(ref.state_dict())
    >>> x = torch.randn(2, 5, 3)
    >>> torch.allclose(rnn(x)[0], ref(x)[0], atol=1e-6)
    True
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..nn.layers import LayerState, RecurrentLayer

__all__ = ["SimpleRNN", "GRUResetBefore", "EXTRA_LAYERS"]


class SimpleRNN(RecurrentLayer):
    """Elman RNN layers: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Args:
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
        Other arguments as :class:`lstmlite.nn.layers.RecurrentLayer` (no ``proj_size``).

    forward(x (B, T, I), state=None, lengths=None) → (output (B, T, D*H), [h (D, B, H)] per layer).
    """

    gates = 1
    mode = "RNN"

    def __init__(self, input_size: int, hidden_size: int | Sequence[int], num_layers: int = 1,
                 bias: bool = True, batch_first: bool = True, dropout: float = 0.0,
                 bidirectional: bool = False, nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "nonlinearity": self.nonlinearity}

    def _zero_state(self, layer: int, batch: int, like: Tensor) -> LayerState:
        return like.new_zeros(self.num_directions, batch, self.hidden_sizes[layer])

    def _unstack_state(self, state: Any) -> list[LayerState]:
        d = self.num_directions
        return [state[k * d:(k + 1) * d] for k in range(self.num_layers)]

    def _run_layer(self, layer: int, data: Tensor, batch_sizes: Tensor | None, state: LayerState):
        kernel = torch._VF.rnn_tanh if self.nonlinearity == "tanh" else torch._VF.rnn_relu
        weights = self._weights(layer)
        hx = state.contiguous()
        if batch_sizes is None:
            out, h = kernel(data, hx, weights, self.bias, 1, 0.0, self.training, self.bidirectional, True)
        else:
            out, h = kernel(data, batch_sizes, hx, weights, self.bias, 1, 0.0, self.training, self.bidirectional)
        return out, h


class GRUResetBefore(RecurrentLayer):
    """GRU with the reset gate applied before the recurrent matrix (ONNX ``linear_before_reset=0``).

    Per layer and direction (gate order r, z, n as in PyTorch)::

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn)
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    forward(x (B, T, I), state=None, lengths=None) → (output (B, T, D*H), [h (D, B, H)] per layer).
    """

    gates = 3
    mode = "GRU_RESET_BEFORE"

    def __init__(self, input_size: int, hidden_size: int | Sequence[int], num_layers: int = 1,
                 bias: bool = True, batch_first: bool = True, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)

    def _zero_state(self, layer: int, batch: int, like: Tensor) -> LayerState:
        return like.new_zeros(self.num_directions, batch, self.hidden_sizes[layer])

    def _unstack_state(self, state: Any) -> list[LayerState]:
        d = self.num_directions
        return [state[k * d:(k + 1) * d] for k in range(self.num_layers)]

    def _run_layer(self, layer: int, data: Tensor, batch_sizes: Tensor | None, state: LayerState):
        packed = batch_sizes is not None
        if packed:
            sizes = [int(b) for b in batch_sizes]
            flat = data  # (N, I), time-major rows, the first batch_sizes[t] sequences at step t
        else:
            batch, steps = data.shape[0], data.shape[1]
            sizes = [batch] * steps
            flat = data.transpose(0, 1).reshape(batch * steps, -1)  # (T*B, I)
        weights = self._weights(layer)
        per = 4 if self.bias else 2
        outs, finals = [], []
        for d in range(self.num_directions):
            w_ih, w_hh, *biases = weights[d * per:(d + 1) * per]
            b_ih, b_hh = biases if biases else (None, None)
            out, h = _gru_reset_before_direction(flat, sizes, state[d], w_ih, w_hh, b_ih, b_hh, reverse=d == 1)
            outs.append(out)
            finals.append(h)
        out = torch.cat(outs, dim=-1)  # (N, D*H)
        if not packed:
            out = out.reshape(steps, batch, -1).transpose(0, 1)  # (B, T, D*H)
        return out, torch.stack(finals)


def _gru_reset_before_direction(flat: Tensor, sizes: list[int], h0: Tensor, w_ih: Tensor, w_hh: Tensor,
                                b_ih: Tensor | None, b_hh: Tensor | None, reverse: bool) -> tuple[Tensor, Tensor]:
    """One direction over time-major rows: flat (N, I), sizes[t] active sequences at step t.

    Sequences are sorted by decreasing length (packed order), so the active ones at a
    step are always the first ``sizes[t]``. Returns outputs (N, H) and the final state (B, H).
    """
    hidden = w_hh.shape[1]
    gi = torch.nn.functional.linear(flat, w_ih, b_ih)  # (N, 3H): every input projection at once
    w_rz, w_n = w_hh[: 2 * hidden], w_hh[2 * hidden:]
    b_rz = b_hh[: 2 * hidden] if b_hh is not None else None
    b_n = b_hh[2 * hidden:] if b_hh is not None else None
    offsets = [0]
    for size in sizes:
        offsets.append(offsets[-1] + size)
    outputs: list[Tensor | None] = [None] * len(sizes)
    h = h0
    order = range(len(sizes) - 1, -1, -1) if reverse else range(len(sizes))
    for t in order:
        n_active = sizes[t]
        g = gi[offsets[t]:offsets[t + 1]]  # (b, 3H)
        prev = h[:n_active]
        gh = torch.nn.functional.linear(prev, w_rz, b_rz)  # (b, 2H)
        r = torch.sigmoid(g[:, :hidden] + gh[:, :hidden])
        z = torch.sigmoid(g[:, hidden:2 * hidden] + gh[:, hidden:])
        n = torch.tanh(g[:, 2 * hidden:] + torch.nn.functional.linear(r * prev, w_n, b_n))
        new = (1 - z) * n + z * prev
        outputs[t] = new
        # Sequences that have ended (forward) or not yet started (reverse) keep their state.
        h = new if n_active == h.shape[0] else torch.cat([new, h[n_active:]], dim=0)
    return torch.cat(outputs, dim=0), h  # type: ignore[arg-type]


#: Layer classes by ``mode``, for code that rebuilds a layer from ``mode`` + ``config()``.
EXTRA_LAYERS: dict[str, type[RecurrentLayer]] = {"RNN": SimpleRNN, "GRU_RESET_BEFORE": GRUResetBefore}
