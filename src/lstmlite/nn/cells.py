"""Efficient recurrent layers: grouped LSTM (G-LSTM) and FastGRNN.

Both are drop-in sequence layers with the interface of :class:`lstmlite.nn.LSTM`:
``forward(x (B, T, I), state=None, lengths=None) -> (output (B, T, H), state)``,
``macs_per_step()``, ``config()`` / ``from_config()``, attributes ``input_size``,
``hidden_size``, ``num_layers``, ``bidirectional`` (always False) and
``output_size``. Parameters are plain ``nn.Parameter``s read as attributes in every
forward, so ``torch.nn.utils.parametrize`` parametrizations (masks, fake
quantization, low-rank products) apply to them.

Example:
    >>> import torch
    >>> from lstmlite.nn.cells import FastGRNN, GroupedLSTM
    >>> x = torch.randn(4, 20, 12)
    >>> out, state = GroupedLSTM(input_size=12, hidden_size=32, groups=4, num_layers=2)(x)
    >>> out.shape, state[1][0].shape
    (torch.Size([4, 20, 32]), torch.Size([1, 4, 32]))
    >>> out, state = FastGRNN(input_size=12, hidden_size=32, urank=8)(x, lengths=torch.tensor([20, 9, 3, 1]))
    >>> out.shape, state[0].shape
    (torch.Size([4, 20, 32]), torch.Size([1, 4, 32]))
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ._cell_kernels import (
    channel_shuffle,
    fastgrnn_fused,
    fastgrnn_loop,
    freeze_column,
    glstm_dense_weights,
    glstm_loop,
)

__all__ = ["GroupedLSTM", "FastGRNN"]

LayerState = Any  # GroupedLSTM: (h (1, B, H), c (1, B, H)); FastGRNN: h (1, B, H)


def _is_whole(value: Any) -> bool:
    """An int, or a float with no fraction (2.0 from JSON); never a bool. ``int()`` would
    silently turn ``urank: 1.5`` into 1 and ``groups: 2.5`` into 2."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and float(value).is_integer()


class _SequenceCell(nn.Module):
    """Argument checks, state and ``lengths`` handling shared by the two layers.

    Subclasses implement ``_zero_state``, ``_unstack_state``, ``_check_state`` and
    ``_run`` (padded (B, T, I) input, per-layer states, optional lengths).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int | Sequence[int],
        num_layers: int = 1,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        sizes = [int(hidden_size)] * num_layers if isinstance(hidden_size, int) else [int(h) for h in hidden_size]
        if input_size <= 0:
            raise ValueError(f"input_size must be positive, got {input_size}")
        if num_layers < 1:  # else it reads as a mismatch: [64] * 0 layers "does not match" 64
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if len(sizes) != num_layers:
            raise ValueError(f"num_layers={num_layers} does not match hidden_size={hidden_size!r}")
        if any(h <= 0 for h in sizes):
            raise ValueError(f"hidden sizes must be positive, got {sizes}")
        if not batch_first:
            raise ValueError(f"{type(self).__name__} supports batch_first=True only (inputs shaped (B, T, I))")
        if bidirectional:
            raise ValueError(f"{type(self).__name__} is unidirectional; bidirectional=True is not supported")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size = int(input_size)
        self.hidden_sizes = sizes
        self.num_layers = int(num_layers)
        self.batch_first = True
        self.dropout = float(dropout)
        self.bidirectional = False
        self.num_directions = 1

    @property
    def hidden_size(self) -> int:
        """Hidden size of the last layer (of all layers, unless pruned unevenly)."""
        return self.hidden_sizes[-1]

    @property
    def output_size(self) -> int:
        """Features of the output sequence: H of the last layer."""
        return self.hidden_sizes[-1]

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.hidden_sizes[layer - 1]

    def _base_config(self) -> dict[str, Any]:
        sizes = self.hidden_sizes
        return {
            "input_size": self.input_size,
            "hidden_size": sizes if len(set(sizes)) > 1 else sizes[0],
            "num_layers": self.num_layers,
            "batch_first": True,
            "dropout": self.dropout,
        }

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (see :meth:`from_config`)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "_SequenceCell":
        """Build a fresh (newly initialised) layer from :meth:`config`'s dict."""
        return cls(**config)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())

    # ----- state -------------------------------------------------------------------
    def _zero_state(self, layer: int, batch: int, like: Tensor) -> LayerState:
        raise NotImplementedError

    def _unstack_state(self, state: Any) -> list[LayerState]:
        raise NotImplementedError

    def _check_state(self, layer: int, state: LayerState, batch: int) -> None:
        raise NotImplementedError

    def _split_state(self, state: Any, batch: int, like: Tensor) -> list[LayerState]:
        """Accept None, a per-layer list, or the stacked (L, B, H) form nn.LSTM/nn.GRU use."""
        if state is None:
            return [self._zero_state(layer, batch, like) for layer in range(self.num_layers)]
        states = list(state) if isinstance(state, list) else self._unstack_state(state)
        if len(states) != self.num_layers:
            raise ValueError(f"state has {len(states)} layers, the module has {self.num_layers}")
        for layer, s in enumerate(states):
            self._check_state(layer, s, batch)
        return states

    def _state_shape_error(self, layer: int, got: Any, batch: int) -> ValueError:
        return ValueError(
            f"layer {layer} state must be (1, {batch}, {self.hidden_sizes[layer]}), got {tuple(got.shape)}"
        )

    # ----- forward -----------------------------------------------------------------
    def _run(
        self, x: Tensor, states: list[LayerState], lengths: Tensor | None
    ) -> tuple[Tensor, list[LayerState]]:
        raise NotImplementedError

    def _between_layers(self, data: Tensor, layer: int) -> Tensor:
        """Dropout on the outputs of every layer but the last (training only)."""
        if self.dropout and self.training and layer < self.num_layers - 1:
            data = nn.functional.dropout(data, self.dropout, training=True)
        return data

    def forward(
        self, x: Tensor | PackedSequence, state: Any = None, lengths: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, list[LayerState]]:
        """Run the stack over a batch of sequences.

        Args:
            x: (B, T, I), or a PackedSequence (then ``lengths`` must be None).
            state: None (zeros), a list with one state per layer, or the stacked
                form ((L, B, H) tensors).
            lengths: (B,) valid steps per sequence, each in [1, T]. Steps
                t >= lengths[b] leave row b's state unchanged and give zero output,
                so the final state is each sequence's last valid state.

        Returns:
            output (B, T, H) (a PackedSequence if ``x`` was one) and the final state,
            a list with one entry per layer.
        """
        packed_in = x if isinstance(x, PackedSequence) else None
        if packed_in is not None:
            if lengths is not None:
                raise ValueError("give lengths or a PackedSequence, not both")
            x, lengths = pad_packed_sequence(packed_in, batch_first=True)
        if x.dim() != 3:
            raise ValueError(f"expected a 3-D input (batch, time, features), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"expected {self.input_size} input features, got {x.shape[-1]}")
        batch, steps = x.shape[0], x.shape[1]
        if lengths is not None:
            lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
            if lengths.shape != (batch,) or (batch and (int(lengths.min()) < 1 or int(lengths.max()) > steps)):
                raise ValueError(
                    f"lengths must be (B,) with values in [1, T]; got {lengths.tolist()} for B={batch}, T={steps}"
                )
            if bool((lengths == steps).all()):
                lengths = None  # nothing is padded: take the faster unmasked path
            else:
                # Zero the padding so that NaN or sentinel values cannot reach the
                # gradients (0 · NaN is NaN even where a step's result is discarded).
                valid = torch.arange(steps)[None, :] < lengths[:, None]  # (B, T)
                x = torch.where(valid.to(x.device)[..., None], x, x.new_zeros(()))
        states = self._split_state(state, batch, x)
        output, final = self._run(x, states, lengths)
        if packed_in is None:
            return output, final
        return _repack(output, packed_in), final


def _repack(output: Tensor, like: PackedSequence) -> PackedSequence:
    """(B, T, H) padded output → a PackedSequence with ``like``'s batch order."""
    lengths = _packed_lengths(like)
    if like.sorted_indices is not None:
        output, lengths = output.index_select(0, like.sorted_indices), lengths[like.sorted_indices.cpu()]
    packed = pack_padded_sequence(output, lengths, batch_first=True, enforce_sorted=True)
    return PackedSequence(packed.data, packed.batch_sizes, like.sorted_indices, like.unsorted_indices)


def _packed_lengths(packed: PackedSequence) -> Tensor:
    """Per-sequence lengths of a PackedSequence, in its original batch order."""
    sizes = packed.batch_sizes  # (T,) sequences still running at each step, sorted order
    sorted_lengths = (sizes[None, :] > torch.arange(int(sizes[0]))[:, None]).sum(1)
    if packed.unsorted_indices is not None:
        sorted_lengths = sorted_lengths[packed.unsorted_indices.cpu()]
    return sorted_lengths


# ======================================================================================
class GroupedLSTM(_SequenceCell):
    """Group LSTM, G-LSTM (Kuchaiev & Ginsburg 2017, "Factorization tricks for LSTM networks").

    The input x_t (I) and the state h_{t-1}, c_{t-1} (H) of each layer are split into
    G equal slices; group g is an independent small LSTM on its slices
    (Ig = I/G inputs, Hg = H/G units), so a layer has G times fewer weights and MACs
    than an LSTM of the same width. For group g, with x^g_t, h^g_{t-1}, c^g_{t-1} its
    slices and W^g = ``weight_ih_l{k}[g]``, R^g = ``weight_hh_l{k}[g]``:

        [i; f; g̃; o] = W^g x^g_t + b^g_ih + R^g h^g_{t-1} + b^g_hh     (4Hg rows, order i, f, g, o)
        c^g_t = σ(f) ⊙ c^g_{t-1} + σ(i) ⊙ tanh(g̃)
        h^g_t = σ(o) ⊙ tanh(c^g_t)
        h_t   = [h^1_t, …, h^G_t]           (concatenation; c_t likewise)

    With ``shuffle`` (the default) the input of layer k > 0 is the previous layer's
    output after a channel shuffle (feature g*Hg + j moves to j*G + g, see
    :func:`~lstmlite.nn._cell_kernels.channel_shuffle`), so information crosses groups
    between layers; without it the groups of a stack would never mix.

    Parameters per layer k: ``weight_ih_l{k}`` (G, 4Hg, I_k/G), ``weight_hh_l{k}``
    (G, 4Hg, Hg), and when ``bias`` ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G, 4Hg), with
    I_0 = I and I_k = H_{k-1}. Initialised U(−1/√Hg, 1/√Hg), as PyTorch initialises
    an LSTM of Hg units.

    Speed: a grouped LSTM is an ordinary LSTM with block-diagonal weights, so the
    default ``impl="fused"`` builds the dense (4H, I) / (4H, H) matrices each forward
    and calls PyTorch's fused LSTM kernel. That does G times the arithmetic of the
    grouped form but avoids a per-step Python loop. With ``lengths`` it does not pack
    (packed backward is slow on CPU): :func:`~lstmlite.nn._cell_kernels.freeze_column`
    holds the cell state exactly fixed on padded steps instead (other devices pack;
    set ``layer.lengths_strategy = "pack" | "freeze"`` to choose). Forward + backward,
    B=32, T=29, I=12, H=32, G=4, 1 CPU thread, median (best of 7 rounds):
    fused 1.26 ms (random lengths: 1.57 ms; packed: 5.5 ms); ``impl="loop"`` (one
    batched matmul per step) 9.3 ms (10.7 ms); ``torch.jit.script`` on that loop gave
    no gain. :meth:`macs_per_step` reports the grouped count, which is what a
    deployed kernel pays.

    Args:
        input_size: I, divisible by ``groups``.
        hidden_size: H (or one per layer), each divisible by ``groups``.
        groups: G.
        num_layers: stacked layers L.
        bias: whether the layers have ``bias_ih``/``bias_hh``.
        batch_first: must be True.
        dropout: dropout on the outputs of every layer but the last (training only).
        shuffle: channel-shuffle the input of layers k > 0.
        impl: "fused" (block-diagonal weights through ``torch._VF.lstm``) or "loop".

    Example:
        >>> import torch
        >>> layer = GroupedLSTM(input_size=12, hidden_size=32, groups=4)
        >>> out, [(h, c)] = layer(torch.randn(2, 5, 12))
        >>> out.shape, h.shape, layer.macs_per_step()
        (torch.Size([2, 5, 32]), torch.Size([1, 2, 32]), 1408)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int | Sequence[int],
        groups: int = 2,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        shuffle: bool = True,
        impl: str = "fused",
        bidirectional: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)
        if not _is_whole(groups) or groups < 1:
            raise ValueError(f"groups must be >= 1 (a whole number), got {groups!r}")
        if input_size % groups:
            raise ValueError(f"input_size={input_size} is not divisible by groups={groups}")
        bad = [h for h in self.hidden_sizes if h % groups]
        if bad:
            raise ValueError(f"hidden_size {bad} not divisible by groups={groups}")
        if impl not in ("fused", "loop"):
            raise ValueError(f"impl must be 'fused' or 'loop', got {impl!r}")
        self.groups = int(groups)
        self.bias = bool(bias)
        self.shuffle = bool(shuffle)
        self.impl = impl
        g = self.groups
        for layer in range(self.num_layers):
            hg, ig = self.hidden_sizes[layer] // g, self.layer_input_size(layer) // g
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(g, 4 * hg, ig)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(g, 4 * hg, hg)))
            if self.bias:
                self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(g, 4 * hg)))
                self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(g, 4 * hg)))
        self.reset_parameters()

    def weight_names(self, layer: int) -> list[str]:
        """Names of one layer's parameters."""
        names = [f"weight_ih_l{layer}", f"weight_hh_l{layer}"]
        return names + ([f"bias_ih_l{layer}", f"bias_hh_l{layer}"] if self.bias else [])

    def reset_parameters(self) -> None:
        """U(−1/√Hg, 1/√Hg) for every tensor (PyTorch's LSTM init at the group's size)."""
        for layer in range(self.num_layers):
            bound = 1.0 / math.sqrt(self.hidden_sizes[layer] // self.groups)
            for name in self.weight_names(layer):
                nn.init.uniform_(getattr(self, name), -bound, bound)

    def macs_per_step(self) -> int:
        """Matrix multiply-accumulates per step per sequence, all layers: Σ_k 4 H_k (I_k + H_k) / G.

        Elementwise gate arithmetic (O(H)) is not counted, as for :class:`~lstmlite.nn.LSTM`.
        """
        return sum(
            4 * h * (self.layer_input_size(k) + h) // self.groups for k, h in enumerate(self.hidden_sizes)
        )

    def config(self) -> dict[str, Any]:
        return {**self._base_config(), "groups": self.groups, "bias": self.bias, "shuffle": self.shuffle,
                "impl": self.impl}

    # ----- state -------------------------------------------------------------------
    def _zero_state(self, layer: int, batch: int, like: Tensor) -> LayerState:
        h = self.hidden_sizes[layer]
        return (like.new_zeros(1, batch, h), like.new_zeros(1, batch, h))

    def _unstack_state(self, state: Any) -> list[LayerState]:
        h0, c0 = state
        return [(h0[k:k + 1], c0[k:k + 1]) for k in range(h0.shape[0])]

    def _check_state(self, layer: int, state: LayerState, batch: int) -> None:
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(f"layer {layer} state must be a tuple (h, c)")
        for t in state:
            if tuple(t.shape) != (1, batch, self.hidden_sizes[layer]):
                raise self._state_shape_error(layer, t, batch)

    # ----- forward -----------------------------------------------------------------
    def _layer_input(self, data: Tensor, layer: int) -> Tensor:
        if layer > 0 and self.shuffle and self.groups > 1:
            data = channel_shuffle(data, self.groups)
        return data

    def _run(self, x: Tensor, states: list[LayerState], lengths: Tensor | None):
        if self.impl == "fused":
            return self._run_fused(x, states, lengths)
        return self._run_loop(x, states, lengths)

    def _lengths_strategy(self, device: torch.device) -> str:
        """How the fused path handles padding: "freeze" (verified on CPU) or "pack".

        The freeze trick relies on the kernel's sigmoid returning exactly 0 and 1 at
        ±1e4, checked for PyTorch's CPU kernels in the tests; other devices (cuDNN)
        take the packed path, which needs no such assumption. ``lengths_strategy``
        set on the instance overrides the choice.
        """
        forced = getattr(self, "lengths_strategy", None)
        if forced is not None:
            return forced
        return "freeze" if device.type == "cpu" else "pack"

    def _run_fused(self, x: Tensor, states: list[LayerState], lengths: Tensor | None):
        if lengths is not None and self._lengths_strategy(x.device) == "pack":
            return self._run_packed(x, states, lengths)
        batch, steps = x.shape[0], x.shape[1]
        data, pad, last = x, None, None
        if lengths is not None:
            # No packing (its backward is ~4x slower on CPU): a "padded" flag feature
            # and freeze_column() hold c fixed after each sequence ends; h is read
            # from the output at the last valid step.
            lengths_d = lengths.to(x.device)
            pad = (torch.arange(steps, device=x.device)[None, :] >= lengths_d[:, None])[..., None].to(x.dtype)
            last = (lengths_d - 1).view(batch, 1, 1)
        final = []
        for layer in range(self.num_layers):
            data = self._layer_input(data, layer)
            weights = self._dense_weights(layer)
            if pad is not None:
                data = torch.cat([data, pad], dim=-1)
                weights[0] = torch.cat([weights[0], freeze_column(self.hidden_sizes[layer], weights[0])], dim=1)
            hx = (states[layer][0].contiguous(), states[layer][1].contiguous())
            data, h, c = torch._VF.lstm(data, hx, weights, self.bias, 1, 0.0, self.training, False, True)
            if last is not None:
                h = data.gather(1, last.expand(batch, 1, data.shape[-1])).transpose(0, 1)  # (1, B, H)
            final.append((h, c))
            data = self._between_layers(data, layer)
        if pad is not None:
            data = data * (1.0 - pad)  # zero output at padded steps
        return data, final

    def _run_packed(self, x: Tensor, states: list[LayerState], lengths: Tensor):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        data, batch_sizes = packed.data, packed.batch_sizes
        order, back = packed.sorted_indices, packed.unsorted_indices
        final = []
        for layer in range(self.num_layers):
            data = self._layer_input(data, layer)  # a feature permutation: fine on packed rows
            h0, c0 = (s.index_select(1, order).contiguous() for s in states[layer])
            data, h, c = torch._VF.lstm(data, batch_sizes, (h0, c0), self._dense_weights(layer), self.bias, 1, 0.0,
                                        self.training, False)
            final.append((h.index_select(1, back), c.index_select(1, back)))
            data = self._between_layers(data, layer)
        out = PackedSequence(data, batch_sizes, order, back)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], final

    def _dense_weights(self, layer: int) -> list[Tensor]:
        # Attribute access runs any parametrization: these are the effective weights.
        return glstm_dense_weights(*(getattr(self, n) for n in self.weight_names(layer)),
                                   *([] if self.bias else [None, None]))

    def _run_loop(self, x: Tensor, states: list[LayerState], lengths: Tensor | None):
        steps, batch, g = x.shape[1], x.shape[0], self.groups
        data = x.transpose(0, 1)  # (T, B, I): the loop indexes time
        mask = None
        if lengths is not None:
            valid = torch.arange(steps)[:, None] < lengths[None, :]  # (T, B)
            mask = valid.to(x.device)[:, None, :, None]  # (T, 1, B, 1), broadcast over groups
        final = []
        for layer in range(self.num_layers):
            data = self._layer_input(data, layer)
            h_size = self.hidden_sizes[layer]
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            # All steps' input projections at once: (T, B, G, Ig) × (G, 4Hg, Ig) → (T, G, B, 4Hg).
            gx = torch.einsum("tbgi,gki->tgbk", data.reshape(steps, batch, g, -1), w_ih)
            if self.bias:
                gx = gx + (getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}"))[None, :, None]

            def group_major(s: Tensor) -> Tensor:  # (1, B, H) → (G, B, Hg)
                return s[0].reshape(batch, g, -1).transpose(0, 1)

            out, h, c = glstm_loop(gx, group_major(states[layer][0]), group_major(states[layer][1]), w_hh, mask)
            data = out.permute(0, 2, 1, 3).reshape(steps, batch, h_size)  # (T, B, H)
            final.append(tuple(s.transpose(0, 1).reshape(1, batch, h_size) for s in (h, c)))
            data = self._between_layers(data, layer)
        return data.transpose(0, 1).contiguous(), final


# ======================================================================================
_NONLINEARITIES = ("sigmoid", "tanh")


class FastGRNN(_SequenceCell):
    """FastGRNN (Kusupati et al. 2018, "FastGRNN: A Fast, Accurate, Stable and Tiny
    Kilobyte Sized Gated Recurrent Neural Network"), eqs. (3)–(4) of the paper.

    One weight pair (W, U) is shared by the gate and the update, which is what makes
    the cell tiny. Per layer, with W = ``weight_ih_l{k}`` (H, I) and U =
    ``weight_hh_l{k}`` (H, H):

        z_t  = σ_g(W x_t + U h_{t-1} + b_z)          gate (σ_g: "sigmoid" or "tanh")
        h̃_t  = σ_u(W x_t + U h_{t-1} + b_h)          update (σ_u: "tanh" or "sigmoid")
        h_t  = (ζ (1 − z_t) + ν) ⊙ h̃_t + z_t ⊙ h_{t-1}
        ζ = sigmoid(``zeta_l{k}``),  ν = sigmoid(``nu_l{k}``)    (scalars in (0, 1), as EdgeML)

    With ``wrank`` = r_w, W = ``weight_ih_l{k}_left`` (H, r_w) @ ``weight_ih_l{k}_right``
    (r_w, I) and x_t is projected through the factors; with ``urank`` = r_u,
    U = ``weight_hh_l{k}_left`` (H, r_u) @ ``weight_hh_l{k}_right`` (r_u, H).
    Biases ``bias_gate_l{k}`` = b_z and ``bias_update_l{k}`` = b_h are (H,).
    Initialisation follows EdgeML: weights 0.1·N(0, 1), biases 1, ``zeta`` =
    ``zeta_init`` (1.0), ``nu`` = ``nu_init`` (−4.0).

    Speed: there is no fused kernel for this update. The input projection for all
    steps is one matmul; the default ``impl="fused"`` runs the recurrence as one
    autograd node with a hand-written BPTT backward
    (:class:`~lstmlite.nn._cell_kernels._FastGRNNRecurrence`); ``impl="loop"`` lets
    autograd record every step. A low-rank U is multiplied out once per forward: one
    (H, H) matmul per step is faster than two thin ones at these sizes. Forward +
    backward, B=32, T=29, I=12, H=32, 1 CPU thread, median (best of 7 rounds):
    fused 2.19 ms (random lengths: 2.88 ms), loop 3.73 ms (4.42 ms).
    ``torch.jit.script`` on the autograd loop gained about 15 % (and is deprecated
    in this PyTorch), less than the hand-written backward, so it is not used.

    Args:
        input_size: I.
        hidden_size: H (or one per layer).
        num_layers: stacked layers L.
        batch_first: must be True.
        dropout: dropout on the outputs of every layer but the last (training only).
        wrank, urank: ranks of W and U, or None for full rank.
        gate_nonlinearity: "sigmoid" (default) or "tanh".
        update_nonlinearity: "tanh" (default) or "sigmoid".
        zeta_init, nu_init: initial values of the pre-sigmoid ζ and ν parameters.
        impl: "fused" (hand-written backward) or "loop" (autograd through each step).

    Example:
        >>> import torch
        >>> layer = FastGRNN(input_size=12, hidden_size=32, wrank=4, urank=8)
        >>> out, [h] = layer(torch.randn(2, 5, 12))
        >>> out.shape, h.shape, layer.macs_per_step()
        (torch.Size([2, 5, 32]), torch.Size([1, 2, 32]), 688)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int | Sequence[int],
        num_layers: int = 1,
        batch_first: bool = True,
        dropout: float = 0.0,
        wrank: int | None = None,
        urank: int | None = None,
        gate_nonlinearity: str = "sigmoid",
        update_nonlinearity: str = "tanh",
        zeta_init: float = 1.0,
        nu_init: float = -4.0,
        impl: str = "fused",
        bidirectional: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, batch_first, dropout, bidirectional)
        if impl not in ("fused", "loop"):
            raise ValueError(f"impl must be 'fused' or 'loop', got {impl!r}")
        self.impl = impl
        for name, rank in (("wrank", wrank), ("urank", urank)):
            if rank is not None and (not _is_whole(rank) or rank < 1):
                raise ValueError(f"{name} must be None or a whole number >= 1, got {rank!r}")
        for name, nl in (("gate_nonlinearity", gate_nonlinearity), ("update_nonlinearity", update_nonlinearity)):
            if nl not in _NONLINEARITIES:
                raise ValueError(f"{name} must be one of {_NONLINEARITIES}, got {nl!r}")
        self.wrank = None if wrank is None else int(wrank)
        self.urank = None if urank is None else int(urank)
        self.gate_nonlinearity = gate_nonlinearity
        self.update_nonlinearity = update_nonlinearity
        self.zeta_init = float(zeta_init)
        self.nu_init = float(nu_init)
        for layer in range(self.num_layers):
            h, i = self.hidden_sizes[layer], self.layer_input_size(layer)
            for name, rows, cols, rank in (("weight_ih", h, i, self.wrank), ("weight_hh", h, h, self.urank)):
                if rank is None:
                    self.register_parameter(f"{name}_l{layer}", nn.Parameter(torch.empty(rows, cols)))
                else:
                    self.register_parameter(f"{name}_l{layer}_left", nn.Parameter(torch.empty(rows, rank)))
                    self.register_parameter(f"{name}_l{layer}_right", nn.Parameter(torch.empty(rank, cols)))
            self.register_parameter(f"bias_gate_l{layer}", nn.Parameter(torch.empty(h)))
            self.register_parameter(f"bias_update_l{layer}", nn.Parameter(torch.empty(h)))
            self.register_parameter(f"zeta_l{layer}", nn.Parameter(torch.empty(1)))
            self.register_parameter(f"nu_l{layer}", nn.Parameter(torch.empty(1)))
        self.reset_parameters()

    def weight_names(self, layer: int) -> list[str]:
        """Names of one layer's matrices (W's, then U's)."""
        names = []
        for name, rank in (("weight_ih", self.wrank), ("weight_hh", self.urank)):
            suffixes = [""] if rank is None else ["_left", "_right"]
            names += [f"{name}_l{layer}{s}" for s in suffixes]
        return names

    def reset_parameters(self) -> None:
        """EdgeML's initialisation: weights 0.1·N(0, 1), biases 1, ζ, ν their init values."""
        for layer in range(self.num_layers):
            for name in self.weight_names(layer):
                nn.init.normal_(getattr(self, name), 0.0, 0.1)
            nn.init.ones_(getattr(self, f"bias_gate_l{layer}"))
            nn.init.ones_(getattr(self, f"bias_update_l{layer}"))
            nn.init.constant_(getattr(self, f"zeta_l{layer}"), self.zeta_init)
            nn.init.constant_(getattr(self, f"nu_l{layer}"), self.nu_init)

    def macs_per_step(self) -> int:
        """Matrix multiply-accumulates per step per sequence, all layers.

        Per layer: W costs H·I (or r_w·(I + H) factored), U costs H·H (or 2·r_u·H).
        Elementwise work (O(H)) is not counted, as for :class:`~lstmlite.nn.LSTM`.
        """
        total = 0
        for layer, h in enumerate(self.hidden_sizes):
            i = self.layer_input_size(layer)
            total += h * i if self.wrank is None else self.wrank * (i + h)
            total += h * h if self.urank is None else 2 * self.urank * h
        return total

    def config(self) -> dict[str, Any]:
        return {**self._base_config(), "wrank": self.wrank, "urank": self.urank,
                "gate_nonlinearity": self.gate_nonlinearity, "update_nonlinearity": self.update_nonlinearity,
                "zeta_init": self.zeta_init, "nu_init": self.nu_init, "impl": self.impl}

    # ----- state -------------------------------------------------------------------
    def _zero_state(self, layer: int, batch: int, like: Tensor) -> LayerState:
        return like.new_zeros(1, batch, self.hidden_sizes[layer])

    def _unstack_state(self, state: Any) -> list[LayerState]:
        if not isinstance(state, Tensor):
            raise ValueError("FastGRNN state must be a list of (1, B, H) tensors or one (L, B, H) tensor")
        return [state[k:k + 1] for k in range(state.shape[0])]

    def _check_state(self, layer: int, state: LayerState, batch: int) -> None:
        if not isinstance(state, Tensor) or tuple(state.shape) != (1, batch, self.hidden_sizes[layer]):
            raise self._state_shape_error(layer, state if isinstance(state, Tensor) else torch.empty(0), batch)

    # ----- forward -----------------------------------------------------------------
    def _matrix(self, name: str, rank: int | None) -> tuple[Tensor, ...]:
        if rank is None:
            return (getattr(self, name),)
        return getattr(self, f"{name}_left"), getattr(self, f"{name}_right")

    def _run(self, x: Tensor, states: list[LayerState], lengths: Tensor | None):
        steps = x.shape[1]
        data = x.transpose(0, 1)  # (T, B, I): the loop indexes time
        mask = None
        if lengths is not None:
            mask = (torch.arange(steps)[:, None] < lengths[None, :]).to(x.device)[:, :, None]  # (T, B, 1)
        final = []
        for layer in range(self.num_layers):
            w = self._matrix(f"weight_ih_l{layer}", self.wrank)
            # All steps' W x_t in one matmul (through the factors when low-rank: fewer MACs).
            wx = data @ w[0].t() if len(w) == 1 else (data @ w[1].t()) @ w[0].t()  # (T, B, H)
            u = self._matrix(f"weight_hh_l{layer}", self.urank)
            u_eff = u[0] if len(u) == 1 else u[0] @ u[1]  # (H, H)
            recurrence = fastgrnn_fused if self.impl == "fused" else fastgrnn_loop
            out, h = recurrence(
                wx.contiguous(), states[layer][0], u_eff,
                getattr(self, f"bias_gate_l{layer}"), getattr(self, f"bias_update_l{layer}"),
                torch.sigmoid(getattr(self, f"zeta_l{layer}")), torch.sigmoid(getattr(self, f"nu_l{layer}")),
                mask, self.gate_nonlinearity, self.update_nonlinearity,
            )
            final.append(h[None])
            data = self._between_layers(out, layer)
        return data.transpose(0, 1).contiguous(), final
