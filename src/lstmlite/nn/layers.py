"""LSTM and GRU sequence layers that lstmlite owns (DESIGN decision 1).

Parameters are plain tensors under PyTorch's names (``weight_ih_l0``,
``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``weight_hr_l0`` and the
``_reverse`` twins; gate order i, f, g, o for LSTM and r, z, n for GRU). Every
forward reads the parameters as attributes, so ``torch.nn.utils.parametrize``
parametrizations (masks, fake quantization, low-rank products) apply, and passes
the resulting *effective* weights to PyTorch's fused kernel (``torch._VF.lstm`` /
``torch._VF.gru``) one layer at a time. Running one layer per kernel call is what
lets structured pruning give every layer its own hidden size.

We never compress ``nn.LSTM``'s packed flat weights in place: that path silently
stops updating the pruned weights (pytorch#33618, pytorch#65688).

Example:
    >>> import torch
    >>> from lstmlite.nn import LSTM
    >>> lstm = LSTM(input_size=12, hidden_size=32, num_layers=2)
    >>> out, state = lstm(torch.randn(4, 20, 12))
    >>> out.shape
    torch.Size([4, 20, 32])
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["LSTM", "GRU", "RecurrentLayer", "from_torch", "stack_state"]

#: Pre-activation that saturates a float32/float16 sigmoid to exactly 0 or 1.
FREEZE = 1.0e4

LayerState = Any  # LSTM: (h (D, B, H_out), c (D, B, H)); GRU: h (D, B, H)


class RecurrentLayer(nn.Module):
    """Shared machinery of the fused LSTM and GRU layers.

    Args:
        input_size: features per time step, I.
        hidden_size: units per layer, H; an int, or one int per layer (what
            structured pruning produces).
        num_layers: stacked layers, L.
        bias: whether the layers have ``bias_ih``/``bias_hh``.
        batch_first: inputs are (B, T, I) when True (the default), else (T, B, I).
        dropout: dropout on the outputs of every layer but the last (training only).
        bidirectional: run a reverse direction too; outputs concatenate (D = 2).
    """

    gates: int = 0  # rows of weight_ih per hidden unit: 4 (LSTM) or 3 (GRU)
    mode: str = ""
    #: whether ``_freeze_column`` can hold the state on padded steps (else: packing)
    freezes_padding: bool = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int | Sequence[int],
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int | Sequence[int] = 0,
    ) -> None:
        super().__init__()
        sizes = [int(hidden_size)] * num_layers if isinstance(hidden_size, int) else [int(h) for h in hidden_size]
        projs = [int(proj_size)] * num_layers if isinstance(proj_size, int) else [int(p) for p in proj_size]
        if input_size <= 0:
            raise ValueError(f"input_size must be positive, got {input_size}")
        if num_layers < 1:  # else it reads as a mismatch: [64] * 0 layers "does not match" 64
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if len(sizes) != num_layers or len(projs) != num_layers:
            raise ValueError(
                f"num_layers={num_layers} does not match hidden_size={hidden_size!r} / proj_size={proj_size!r}"
            )
        if any(h <= 0 for h in sizes):
            raise ValueError(f"hidden sizes must be positive, got {sizes}")
        if any(p < 0 or (p > 0 and p >= h) for p, h in zip(projs, sizes)):
            raise ValueError(f"proj_size must be 0 or smaller than hidden_size, got {projs} for {sizes}")
        if any(p > 0 for p in projs) and self.mode != "LSTM":
            raise ValueError("proj_size is only supported by LSTM")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size = int(input_size)
        self.hidden_sizes = sizes
        self.proj_sizes = projs
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1

        for layer in range(num_layers):
            in_size = self.layer_input_size(layer)
            h, p = sizes[layer], projs[layer]
            for suffix in self._suffixes():
                self.register_parameter(
                    f"weight_ih_l{layer}{suffix}", nn.Parameter(torch.empty(self.gates * h, in_size))
                )
                self.register_parameter(
                    f"weight_hh_l{layer}{suffix}", nn.Parameter(torch.empty(self.gates * h, p or h))
                )
                if bias:
                    self.register_parameter(f"bias_ih_l{layer}{suffix}", nn.Parameter(torch.empty(self.gates * h)))
                    self.register_parameter(f"bias_hh_l{layer}{suffix}", nn.Parameter(torch.empty(self.gates * h)))
                if p:
                    self.register_parameter(f"weight_hr_l{layer}{suffix}", nn.Parameter(torch.empty(p, h)))
        self.reset_parameters()

    # ----- sizes -------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        """Hidden size of the last layer (all layers, unless pruned unevenly)."""
        return self.hidden_sizes[-1]

    @property
    def proj_size(self) -> int:
        return self.proj_sizes[-1]

    def layer_output_size(self, layer: int) -> int:
        """Features one direction of ``layer`` emits per step (P if projected, else H)."""
        return self.proj_sizes[layer] or self.hidden_sizes[layer]

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.layer_output_size(layer - 1) * self.num_directions

    @property
    def output_size(self) -> int:
        """Features of the output sequence: D * (P or H) of the last layer."""
        return self.layer_output_size(self.num_layers - 1) * self.num_directions

    def _suffixes(self) -> list[str]:
        return ["", "_reverse"][: self.num_directions]

    def weight_names(self, layer: int) -> list[str]:
        """Names of one layer's tensors in the order the fused kernel wants them."""
        names = []
        for suffix in self._suffixes():
            names += [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
            if self.bias:
                names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
            if self.proj_sizes[layer]:
                names.append(f"weight_hr_l{layer}{suffix}")
        return names

    def reset_parameters(self) -> None:
        """PyTorch's initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every tensor."""
        for layer in range(self.num_layers):
            bound = 1.0 / math.sqrt(self.hidden_sizes[layer])
            for name in self.weight_names(layer):
                nn.init.uniform_(getattr(self, name), -bound, bound)

    def macs_per_step(self) -> int:
        """Multiply-accumulates per time step per sequence, all layers and directions."""
        total = 0
        for layer in range(self.num_layers):
            h, p = self.hidden_sizes[layer], self.proj_sizes[layer]
            per_direction = self.gates * h * (self.layer_input_size(layer) + (p or h)) + p * h
            total += per_direction * self.num_directions
        return total

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (see :meth:`from_config`)."""
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_sizes if len(set(self.hidden_sizes)) > 1 else self.hidden_sizes[0],
            "num_layers": self.num_layers,
            "bias": self.bias,
            "batch_first": self.batch_first,
            "dropout": self.dropout,
            "bidirectional": self.bidirectional,
            **({"proj_size": self.proj_sizes if len(set(self.proj_sizes)) > 1 else self.proj_sizes[0]}
               if self.mode == "LSTM" else {}),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "RecurrentLayer":
        return cls(**config)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())

    # ----- state handling ----------------------------------------------------------
    def _zero_state(self, layer: int, batch: int, like: Tensor) -> LayerState:
        raise NotImplementedError

    def _split_state(self, state: Any, batch: int, like: Tensor) -> list[LayerState]:
        """Accept None, our per-layer list, or nn.LSTM/nn.GRU's stacked form."""
        if state is None:
            return [self._zero_state(layer, batch, like) for layer in range(self.num_layers)]
        if isinstance(state, list):
            if len(state) != self.num_layers:
                raise ValueError(f"state has {len(state)} layers, the module has {self.num_layers}")
            states = state
        else:
            rows = self.num_layers * self.num_directions
            for t in state if isinstance(state, tuple) else (state,):
                if isinstance(t, Tensor) and (t.dim() != 3 or t.shape[0] != rows):
                    raise ValueError(f"a stacked state must be ({rows}, B, H) (layers x directions first), "
                                     f"got {tuple(t.shape)}")
            states = self._unstack_state(state)
        # The fused kernel does not check the state (nn.LSTM does, before calling it): a
        # wrong batch size there corrupts memory instead of raising.
        for layer, s in enumerate(states):
            wanted = self._state_shapes(layer, batch)
            parts = tuple(s) if isinstance(s, (tuple, list)) else (s,)
            if len(parts) != len(wanted) or not all(isinstance(t, Tensor) for t in parts):
                raise ValueError(f"layer {layer} state must be {'a tuple (h, c)' if len(wanted) == 2 else 'a tensor'}")
            for name, got, want in zip(("h", "c"), parts, wanted):
                if tuple(got.shape) != want:
                    raise ValueError(f"layer {layer} state {name} must be {want}, got {tuple(got.shape)}")
        return states

    def _unstack_state(self, state: Any) -> list[LayerState]:
        raise NotImplementedError

    def _state_shapes(self, layer: int, batch: int) -> tuple[tuple[int, ...], ...]:
        """Shapes of one layer's state tensors (LSTM: h, c; GRU: h), from ``_zero_state``."""
        zero = self._zero_state(layer, batch, torch.empty(0, device="meta"))  # shapes only, no memory
        return tuple(tuple(t.shape) for t in (zero if isinstance(zero, tuple) else (zero,)))

    # ----- forward -----------------------------------------------------------------
    def _run_layer(self, layer: int, data: Tensor, batch_sizes: Tensor | None, state: LayerState,
                   weights: list[Tensor] | None = None):
        raise NotImplementedError

    def forward(
        self, x: Tensor | PackedSequence, state: Any = None, lengths: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, list[LayerState]]:
        """Run the stack over a batch of sequences.

        Args:
            x: (B, T, I) if ``batch_first`` else (T, B, I); or a PackedSequence.
            state: None (zeros), a list with one state per layer, or the stacked
                form nn.LSTM/nn.GRU use ((h0, c0) or h0, each (L*D, B, H)).
            lengths: (B,) valid steps per sequence for a padded batch. Padded steps
                give zero outputs and the final state is each sequence's state at its
                last valid step, exactly as if it ran alone.

        Returns:
            output: (B, T, D*H_out) (or a PackedSequence if ``x`` was one) and the
            final state as a list with one entry per layer: LSTM (h (D, B, H_out),
            c (D, B, H)); GRU h (D, B, H). :func:`stack_state` gives nn.LSTM's form.
        """
        packed_input = isinstance(x, PackedSequence)
        if not packed_input and x.dim() != 3:
            raise ValueError(f"expected a 3-D input (batch, time, features), got shape {tuple(x.shape)}")
        if packed_input:
            packed = x
        elif lengths is not None:
            if not self.batch_first:
                x = x.transpose(0, 1)
            lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
            if lengths.shape != (x.shape[0],) or int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
                raise ValueError(f"lengths must be (B,) with values in [1, T]; got {lengths.tolist()} for T={x.shape[1]}")
            if self.freezes_padding and x.device.type == "cpu" and (state is None or not self.bidirectional):
                output, final = self._forward_padded(x, lengths, state)
                return (output if self.batch_first else output.transpose(0, 1)), final
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        else:
            packed = None

        if packed is not None:
            batch = int(packed.batch_sizes[0])
            states = self._split_state(state, batch, packed.data)
            if packed.sorted_indices is not None:
                states = [_map_state(s, lambda t: t.index_select(1, packed.sorted_indices)) for s in states]
            data, batch_sizes = packed.data, packed.batch_sizes
        else:
            data = x if self.batch_first else x.transpose(0, 1)  # (B, T, I)
            batch_sizes = None
            states = self._split_state(state, data.shape[0], data)

        final = []
        for layer in range(self.num_layers):
            if data.shape[-1] != self.layer_input_size(layer):
                raise ValueError(
                    f"layer {layer} expects {self.layer_input_size(layer)} input features, got {data.shape[-1]}"
                )
            data, layer_state = self._run_layer(layer, data, batch_sizes, states[layer])
            final.append(layer_state)
            if self.dropout and self.training and layer < self.num_layers - 1:
                data = nn.functional.dropout(data, self.dropout, training=True)

        if packed is not None:
            if packed.unsorted_indices is not None:
                final = [_map_state(s, lambda t: t.index_select(1, packed.unsorted_indices)) for s in final]
            out_packed = PackedSequence(data, batch_sizes, packed.sorted_indices, packed.unsorted_indices)
            if packed_input:
                return out_packed, final
            total = x.shape[1]
            output, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=total)
        else:
            output = data
        if not self.batch_first:
            output = output.transpose(0, 1)
        return output, final

    def _weights(self, layer: int) -> list[Tensor]:
        # Attribute access runs any parametrization: these are the effective weights.
        return [getattr(self, name) for name in self.weight_names(layer)]

    # ----- padded batches without packing -----------------------------------------
    def _freeze_column(self, layer: int, like: Tensor) -> Tensor:
        """(G*H, 1) weights for a "padded step" input flag that hold the state still."""
        raise NotImplementedError

    def _final_state_from_output(self, state: LayerState, output: Tensor, lengths: Tensor) -> LayerState:
        return state

    def _forward_padded(self, x: Tensor, lengths: Tensor, state: Any) -> tuple[Tensor, list[LayerState]]:
        """A padded batch through the fused kernel without packing (CPU).

        Packed sequences are slow on CPU (about 9× slower fwd + bwd at B=32, T=29,
        H=32). Instead each layer gets one extra input, 1 on padded steps, whose
        weights (``_freeze_column``, ±1e4) saturate the gates so the state holds
        exactly still there: LSTM input gate 0 and forget gate 1 (c frozen; a reverse
        direction starting from zeros keeps c = h = 0), GRU update gate 1 (h' = h).
        Saturated gates have zero derivative, so gradients are exact too. Padded
        outputs are zeroed; an LSTM's final forward h is read at ``lengths - 1``.
        """
        batch, steps = x.shape[:2]
        pad = (torch.arange(steps)[None, :] >= lengths[:, None]).to(x.dtype).unsqueeze(-1)  # (B, T, 1)
        keep = 1.0 - pad
        # Zero the padding: a large value there would swamp the ±1e4 freeze column, and
        # a NaN would reach the state (0 · NaN is NaN), though neither step is valid.
        x = torch.where(pad > 0, x.new_zeros(()), x)
        states = self._split_state(state, batch, x)
        data, final = x, []
        for layer in range(self.num_layers):
            if data.shape[-1] != self.layer_input_size(layer):
                raise ValueError(
                    f"layer {layer} expects {self.layer_input_size(layer)} input features, got {data.shape[-1]}"
                )
            weights = self._weights(layer)
            stride = len(weights) // self.num_directions
            column = self._freeze_column(layer, data)
            for direction in range(self.num_directions):
                weights[direction * stride] = torch.cat([weights[direction * stride], column], dim=1)
            output, layer_state = self._run_layer(layer, torch.cat([data, pad], dim=-1), None, states[layer],
                                                  weights)
            data = output * keep
            final.append(self._final_state_from_output(layer_state, data, lengths))
            if self.dropout and self.training and layer < self.num_layers - 1:
                data = nn.functional.dropout(data, self.dropout, training=True)
        return data, final


def _map_state(state: LayerState, fn) -> LayerState:
    if isinstance(state, tuple):
        return tuple(fn(t) for t in state)
    return fn(state)


class LSTM(RecurrentLayer):
    """Long short-term memory layers (Hochreiter & Schmidhuber 1997), PyTorch-compatible.

    Per layer and direction, with x_t the input and [h, x] concatenation:
        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)   candidate C̃_t
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)            (then h_t = W_hr h_t with proj_size, LSTMP)

    ``weight_ih_l{k}`` is (4H, I) stacking W_i, W_f, W_g, W_o; ``weight_hh_l{k}`` is
    (4H, P or H). See :class:`RecurrentLayer` for arguments and :meth:`forward`.
    """

    gates = 4
    mode = "LSTM"
    freezes_padding = True

    def _zero_state(self, layer: int, batch: int, like: Tensor) -> LayerState:
        h, p = self.hidden_sizes[layer], self.proj_sizes[layer]
        zeros = like.new_zeros
        return (zeros(self.num_directions, batch, p or h), zeros(self.num_directions, batch, h))

    def _unstack_state(self, state: Any) -> list[LayerState]:
        h0, c0 = state
        d = self.num_directions
        return [(h0[k * d:(k + 1) * d], c0[k * d:(k + 1) * d]) for k in range(self.num_layers)]

    def _run_layer(self, layer: int, data: Tensor, batch_sizes: Tensor | None, state: LayerState,
                   weights: list[Tensor] | None = None):
        hx = (state[0].contiguous(), state[1].contiguous())
        weights = self._weights(layer) if weights is None else weights
        if batch_sizes is None:
            out, h, c = torch._VF.lstm(data, hx, weights, self.bias, 1, 0.0, self.training,
                                       self.bidirectional, True)
        else:
            out, h, c = torch._VF.lstm(data, batch_sizes, hx, weights, self.bias, 1, 0.0, self.training,
                                       self.bidirectional)
        return out, (h, c)

    def _freeze_column(self, layer: int, like: Tensor) -> Tensor:
        column = like.new_zeros(4, self.hidden_sizes[layer])
        column[0], column[1] = -FREEZE, FREEZE  # input gate → 0, forget gate → 1
        return column.reshape(-1, 1)

    def _final_state_from_output(self, state: LayerState, output: Tensor, lengths: Tensor) -> LayerState:
        # c is frozen, but h = o * tanh(c) moves with o on padded steps: take the
        # forward direction's h from the output at each sequence's last valid step.
        h, c = state
        last = output[torch.arange(output.shape[0]), lengths - 1, : h.shape[-1]]  # (B, H_out)
        return (torch.cat([last.unsqueeze(0), h[1:]], dim=0), c)


class GRU(RecurrentLayer):
    """Gated recurrent unit layers (Cho et al. 2014), PyTorch-compatible.

    Per layer and direction:
        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)       reset gate
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)       update gate
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    ``weight_ih_l{k}`` is (3H, I) stacking W_r, W_z, W_n. See :class:`RecurrentLayer`.
    """

    gates = 3
    mode = "GRU"
    freezes_padding = True

    def _zero_state(self, layer: int, batch: int, like: Tensor) -> LayerState:
        return like.new_zeros(self.num_directions, batch, self.hidden_sizes[layer])

    def _unstack_state(self, state: Any) -> list[LayerState]:
        d = self.num_directions
        return [state[k * d:(k + 1) * d] for k in range(self.num_layers)]

    def _run_layer(self, layer: int, data: Tensor, batch_sizes: Tensor | None, state: LayerState,
                   weights: list[Tensor] | None = None):
        weights = self._weights(layer) if weights is None else weights
        hx = state.contiguous()
        if batch_sizes is None:
            out, h = torch._VF.gru(data, hx, weights, self.bias, 1, 0.0, self.training, self.bidirectional, True)
        else:
            out, h = torch._VF.gru(data, batch_sizes, hx, weights, self.bias, 1, 0.0, self.training,
                                   self.bidirectional)
        return out, h

    def _freeze_column(self, layer: int, like: Tensor) -> Tensor:
        column = like.new_zeros(3, self.hidden_sizes[layer])
        column[1] = FREEZE  # update gate → 1, so h' = h exactly
        return column.reshape(-1, 1)


def stack_state(state: list[LayerState]) -> Any:
    """Per-layer state list → nn.LSTM's ``(h_n, c_n)`` / nn.GRU's ``h_n`` (L*D, B, H).

    Only possible when every layer has the same hidden size.
    """
    if isinstance(state[0], tuple):
        return tuple(torch.cat([s[i] for s in state], dim=0) for i in range(len(state[0])))
    return torch.cat(state, dim=0)


def from_torch(module: nn.LSTM | nn.GRU) -> LSTM | GRU:
    """Convert ``torch.nn.LSTM`` / ``torch.nn.GRU`` into our layer with identical outputs.

    Example:
        >>> import torch
        >>> ref = torch.nn.LSTM(8, 16, num_layers=2, batch_first=True)
        >>> ours = from_torch(ref)
        >>> x = torch.randn(3, 5, 8)
        >>> torch.allclose(ours(x)[0], ref(x)[0])
        True
    """
    if isinstance(module, nn.LSTM):
        cls, extra = LSTM, {"proj_size": module.proj_size}
    elif isinstance(module, nn.GRU):
        cls, extra = GRU, {}
    else:
        raise TypeError(f"from_torch expects torch.nn.LSTM or torch.nn.GRU, got {type(module).__name__}")
    layer = cls(
        input_size=module.input_size,
        hidden_size=module.hidden_size,
        num_layers=module.num_layers,
        bias=module.bias,
        batch_first=module.batch_first,
        dropout=float(module.dropout),
        bidirectional=module.bidirectional,
        **extra,
    )
    source = dict(module.named_parameters())
    with torch.no_grad():
        for name, param in layer.named_parameters():
            param.copy_(source[name])
    return layer.to(next(module.parameters()).device, next(module.parameters()).dtype)
