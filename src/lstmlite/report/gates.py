"""Gate activations over time, recorded by stepping a model's recurrent layer by hand.

The fused kernels (``torch._VF.lstm`` / ``gru``) return only outputs and final states;
to see the gates, :func:`record_gates` replays one sequence step by step with the
layer's *effective* weights (parametrizations applied: masks, fake quantization,
low-rank products), so a compressed model shows its own gates. The replay's output
is checked against the fused kernel's before anything is returned.

LSTM gates, PyTorch order: ``i`` input, ``f`` forget, ``g`` cell candidate (C̃), ``o``
output; GRU: ``r`` reset, ``z`` update, ``n`` candidate.

Example:
    >>> import torch
    >>> from lstmlite.nn import SequenceClassifier
    >>> model = SequenceClassifier(input_size=3, hidden_size=5, n_classes=2)
    >>> gates = record_gates(model, torch.randn(7, 3))
    >>> sorted(gates[0]), gates[0]["f"].shape
    (['c', 'f', 'g', 'h', 'i', 'o'], (7, 5))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["record_gates", "rnn_input", "GATE_NAMES", "GATE_TITLES"]

GATE_NAMES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
GATE_TITLES = {"i": "input gate i", "f": "forget gate f", "g": "cell candidate g (C̃)", "o": "output gate o",
               "r": "reset gate r", "z": "update gate z", "n": "candidate n"}


def rnn_input(model: nn.Module, x: Tensor, lengths: Tensor | None = None) -> Tensor:
    """What the model's recurrent layer reads for batch ``x``: embedded tokens, or the
    features (level-removed for a forecaster with instance norm), (B, T, I)."""
    if getattr(model, "instance_norm", False):
        steps = torch.arange(x.shape[1])
        valid = torch.ones(x.shape[:2], dtype=x.dtype) if lengths is None else \
            (steps[None, :] < lengths[:, None]).to(x.dtype)
        mask = valid.unsqueeze(-1)
        level = (x * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
        x = (x - level) * mask
    return model._embed(x)


def _lstm_steps(weights: dict[str, Tensor], xs: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    hidden = weights["weight_hh"].shape[0] // 4
    out_size = weights["weight_hh"].shape[1]
    h = xs.new_zeros(out_size)
    c = xs.new_zeros(hidden)
    record: dict[str, list[Tensor]] = {k: [] for k in ("i", "f", "g", "o", "c", "h")}
    b = weights.get("bias_ih", 0) + weights.get("bias_hh", 0)
    for x_t in xs:
        a = weights["weight_ih"] @ x_t + weights["weight_hh"] @ h + b  # (4H,)
        i, f, g, o = torch.sigmoid(a[:hidden]), torch.sigmoid(a[hidden:2 * hidden]), \
            torch.tanh(a[2 * hidden:3 * hidden]), torch.sigmoid(a[3 * hidden:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        if "weight_hr" in weights:
            h = weights["weight_hr"] @ h
        for key, value in zip(("i", "f", "g", "o", "c", "h"), (i, f, g, o, c, h)):
            record[key].append(value)
    stacked = {k: torch.stack(v) for k, v in record.items()}
    return stacked, stacked["h"]


def _gru_steps(weights: dict[str, Tensor], xs: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    hidden = weights["weight_hh"].shape[0] // 3
    h = xs.new_zeros(hidden)
    record: dict[str, list[Tensor]] = {k: [] for k in ("r", "z", "n", "h")}
    zero = xs.new_zeros(3 * hidden)
    for x_t in xs:
        gi = weights["weight_ih"] @ x_t + weights.get("bias_ih", zero)
        gh = weights["weight_hh"] @ h + weights.get("bias_hh", zero)
        r = torch.sigmoid(gi[:hidden] + gh[:hidden])
        z = torch.sigmoid(gi[hidden:2 * hidden] + gh[hidden:2 * hidden])
        n = torch.tanh(gi[2 * hidden:] + r * gh[2 * hidden:])
        h = (1 - z) * n + z * h
        for key, value in zip(("r", "z", "n", "h"), (r, z, n, h)):
            record[key].append(value)
    stacked = {k: torch.stack(v) for k, v in record.items()}
    return stacked, stacked["h"]


@torch.no_grad()
def record_gates(model: nn.Module, x: Tensor, check: bool = True) -> list[dict[str, np.ndarray]]:
    """Gate activations of every layer for ONE sequence ``x`` (T, F) floats or (T,) ids.

    Returns one dict per layer: gate name → (T, H) array, plus ``c`` (LSTM cell state)
    and ``h`` (the layer's output). Raises ValueError for cells without gates of this
    form (FastGRNN, grouped LSTM) and for bidirectional layers.

    With ``check``, the replayed top-layer output must match the fused kernel's
    (max difference 1e-4), so the heatmaps show what the model computes.
    """
    rnn = getattr(model, "rnn", None)
    cell = getattr(model, "cell", "")
    if rnn is None or cell not in GATE_NAMES:
        raise ValueError(f"gate heatmaps need an LSTM or GRU layer; this model's cell is {cell!r}")
    if getattr(rnn, "bidirectional", False):
        raise ValueError("gate heatmaps support one direction only; this model is bidirectional")
    was_training = model.training
    model.eval()
    try:
        inputs = rnn_input(model, x.unsqueeze(0))[0]  # (T, I)
        layers: list[dict[str, np.ndarray]] = []
        current = inputs
        for layer in range(rnn.num_layers):
            names = rnn.weight_names(layer)
            weights = {name.rsplit("_l", 1)[0]: tensor for name, tensor in zip(names, rnn._weights(layer))}
            stepper = _lstm_steps if cell == "lstm" else _gru_steps
            record, current = stepper(weights, current)
            layers.append({k: v.numpy().copy() for k, v in record.items()})
        if check:
            fused, _ = rnn(inputs.unsqueeze(0))
            diff = float((fused[0] - current).abs().max())
            if diff > 1e-4:
                raise RuntimeError(f"replayed gates disagree with the fused kernel (max |diff| {diff:.2e})")
    finally:
        model.train(was_training)
    return layers


def describe(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean activation of each gate per layer (a compact text view of the heatmaps)."""
    return {f"layer {k}": {g: float(np.mean(v)) for g, v in layer.items() if g not in ("c", "h")}
            for k, layer in enumerate(layers)}
