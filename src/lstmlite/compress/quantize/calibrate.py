"""Calibration: the ranges of every recurrent layer's internal values over all time steps.

The fused kernel returns only h (and the final c), so :func:`trace_recurrent` runs a
PyTorch time loop with the layer's *effective* weights (parametrizations applied)
and records, per layer and direction, at every valid step:

* LSTM: the gate pre-activations ``i, f, g, o`` (before sigmoid/tanh), the cell
  state ``c`` and the hidden state ``h``;
* GRU: the pre-activations ``r, z`` and ``n`` (= ``W_in x + b_in + r * hn``), the
  recurrent part of the candidate ``hn = W_hn h + b_hn`` (saturation point SAT G of
  the integer GRU) and ``h``.

:func:`calibrate` feeds a model's batches through the model (a forward pre-hook
catches exactly what its recurrent layer receives: after the embedding, input
normalisation and anything else the model does), traces the layer, and summarises
every value: min, max, absmax, mean, std, percentiles and percentiles of |v|. Padded
steps (``lengths``) are left out. The result is JSON-serialisable and is what
:func:`lstmlite.reference.integer.quantize_lstm_integer` reads::

    {"cell": "lstm", "num_layers": L, "num_directions": D, "sequences": N, "steps": S,
     "input": Stats,
     "layers": [[{"gates": {"i": Stats, ...}, "cell": Stats, "hidden": Stats}, ...], ...]}

    Stats = {"min", "max", "absmax", "mean", "std", "count",
             "percentiles": {"0.1": v, "1": v, "50": v, "99": v, "99.9": v},
             "abs_percentiles": {"99": v, "99.9": v, "99.99": v}}

min, max, absmax, mean, std and count are exact; percentiles come from an evenly
strided sample of at most ``max_samples`` values per statistic (exact below that).

Example:
    >>> import torch
    >>> from lstmlite.nn import SequenceClassifier
    >>> model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2)
    >>> cal = calibrate(model, [torch.randn(8, 10, 3)])
    >>> sorted(cal["layers"][0][0]), sorted(cal["layers"][0][0]["gates"])
    (['cell', 'gates', 'hidden'], ['f', 'g', 'i', 'o'])
    >>> cal["layers"][0][0]["hidden"]["absmax"] < 1.0
    True
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from ...nn.layers import GRU, LSTM, RecurrentLayer

__all__ = ["trace_recurrent", "calibrate", "find_recurrent", "effective_params", "value_stats", "PERCENTILES",
           "ABS_PERCENTILES"]

log = logging.getLogger(__name__)

PERCENTILES = (0.1, 1.0, 50.0, 99.0, 99.9)
ABS_PERCENTILES = (99.0, 99.9, 99.99)
LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")


def percentile_key(p: float) -> str:
    """The key of percentile ``p`` in the stats dicts: ``99.9 → "99.9"``, ``99.0 → "99"``."""
    return f"{p:g}"


def find_recurrent(model: nn.Module) -> RecurrentLayer:
    """The model's LSTM/GRU layer (``model.rnn``, or the model itself)."""
    layer = model if isinstance(model, RecurrentLayer) else getattr(model, "rnn", None)
    if not isinstance(layer, (LSTM, GRU)):
        raise TypeError(f"calibration needs an lstmlite LSTM or GRU layer, got {type(layer).__name__}")
    return layer


def effective_params(rnn: RecurrentLayer) -> dict[str, np.ndarray]:
    """The layer's effective tensors (parametrizations applied) as float64 NumPy arrays,
    under PyTorch's names: the input of ``quantize_lstm_integer`` / ``quantize_gru_integer``."""
    with torch.no_grad():
        return {name: getattr(rnn, name).detach().cpu().double().numpy()
                for layer in range(rnn.num_layers) for name in rnn.weight_names(layer)}


def _valid_mask(batch: int, steps: int, lengths: Tensor | None, device) -> Tensor:
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    lengths = torch.as_tensor(lengths, device=device)
    return torch.arange(steps, device=device)[None, :] < lengths[:, None]


def trace_recurrent(rnn: RecurrentLayer, x: Tensor, lengths: Tensor | None = None) -> list[list[dict[str, Tensor]]]:
    """Run ``rnn`` step by step from zero state, recording its internal values.

    Args:
        rnn: an lstmlite LSTM or GRU (effective weights are read once per call).
        x: (B, T, I) if ``rnn.batch_first`` else (T, B, I).
        lengths: (B,) valid steps; padded steps carry the state (as the fused kernel).

    Returns:
        ``trace[layer][direction]``: a dict of (B, T, .) tensors — ``"x"`` (the
        direction's input), ``"gates"`` (G*H pre-activations in PyTorch's gate
        order; for the GRU the n block is ``W_in x + b_in + r * hn``), ``"hidden"``,
        ``"cell"`` (LSTM), ``"hn"`` (GRU) — and ``"mask"`` (B, T) bool. Values at
        padded steps are those of the carried state.
    """
    rnn = find_recurrent(rnn)
    lstm = isinstance(rnn, LSTM)
    with torch.no_grad():
        data = x if rnn.batch_first else x.transpose(0, 1)
        batch, steps, _ = data.shape
        mask = _valid_mask(batch, steps, lengths, data.device)
        trace: list[list[dict[str, Tensor]]] = []
        for layer in range(rnn.num_layers):
            hidden, proj = rnn.hidden_sizes[layer], rnn.proj_sizes[layer]
            records = []
            for suffix in rnn._suffixes():
                w_ih = getattr(rnn, f"weight_ih_l{layer}{suffix}")
                w_hh = getattr(rnn, f"weight_hh_l{layer}{suffix}")
                zeros = data.new_zeros(w_ih.shape[0])
                b_ih = getattr(rnn, f"bias_ih_l{layer}{suffix}") if rnn.bias else zeros
                b_hh = getattr(rnn, f"bias_hh_l{layer}{suffix}") if rnn.bias else zeros
                w_hr = getattr(rnn, f"weight_hr_l{layer}{suffix}") if proj else None
                xw = data @ w_ih.T + b_ih  # (B, T, G*H): the input part of every step at once
                h = data.new_zeros(batch, proj or hidden)
                c = data.new_zeros(batch, hidden)
                rec = {"x": data, "gates": torch.zeros_like(xw), "hidden": data.new_zeros(batch, steps, proj or hidden),
                       "mask": mask}
                if lstm:
                    rec["cell"] = data.new_zeros(batch, steps, hidden)
                else:
                    rec["hn"] = data.new_zeros(batch, steps, hidden)
                order = range(steps - 1, -1, -1) if suffix else range(steps)
                for t in order:
                    gh = h @ w_hh.T + b_hh  # (B, G*H)
                    m = mask[:, t, None]
                    if lstm:
                        a = xw[:, t] + gh
                        i, f, g, o = a.chunk(4, dim=1)
                        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                        h_new = torch.sigmoid(o) * torch.tanh(c_new)
                        if w_hr is not None:
                            h_new = h_new @ w_hr.T
                        c = torch.where(m, c_new, c)
                        rec["cell"][:, t] = c
                    else:
                        xr, xz, xn = xw[:, t].chunk(3, dim=1)
                        hr, hz, hn = gh.chunk(3, dim=1)
                        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                        n_pre = xn + r * hn
                        h_new = (1 - z) * torch.tanh(n_pre) + z * h
                        a = torch.cat([xr + hr, xz + hz, n_pre], dim=1)
                        rec["hn"][:, t] = hn
                    h = torch.where(m, h_new, h)
                    rec["gates"][:, t] = a
                    rec["hidden"][:, t] = h
                records.append(rec)
            trace.append(records)
            data = torch.cat([torch.where(mask[..., None], r["hidden"], 0.0) for r in records], dim=2)
    return trace


class _Summary:
    """Running exact min/max/sum/sum of squares plus a bounded strided sample.

    The sample holds the values at every ``stride``-th position of everything added so
    far (positions counted across calls), so it stays an even thinning of all batches;
    when it grows past ``2 * max_samples`` the stride doubles and every other kept value
    goes. (Re-thinning the kept values by a new stride at each overflow while later
    batches arrive whole would weigh the first batches less and less.)
    """

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.lo, self.hi = math.inf, -math.inf
        self.samples: list[np.ndarray] = []
        self.kept = 0
        self.stride = 1

    def add(self, values: Tensor) -> None:
        v = values.detach().reshape(-1).double().cpu().numpy()
        if not v.size:
            return
        first = (-self.count) % self.stride  # the first of v's positions that is a multiple of stride
        self.count += v.size
        self.total += float(v.sum())
        self.total_sq += float(np.square(v).sum())
        self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))
        kept = v[first::self.stride]
        self.samples.append(kept)
        self.kept += kept.size
        while self.kept > 2 * self.max_samples:  # thin out evenly, keeping memory bounded
            merged = np.concatenate(self.samples)[::2]  # positions 0, 2s, 4s, ...
            self.stride *= 2
            self.samples, self.kept = [merged], merged.size

    def stats(self) -> dict[str, Any]:
        if not self.count:
            raise ValueError("no values were seen (empty batches?)")
        sample = np.concatenate(self.samples)
        if sample.size > self.max_samples:
            sample = sample[:: math.ceil(sample.size / self.max_samples)]
        mean = self.total / self.count
        var = max(self.total_sq / self.count - mean * mean, 0.0)
        return {
            "min": self.lo, "max": self.hi, "absmax": max(abs(self.lo), abs(self.hi)),
            "mean": mean, "std": math.sqrt(var), "count": self.count,
            "percentiles": {percentile_key(p): float(np.percentile(sample, p)) for p in PERCENTILES},
            "abs_percentiles": {percentile_key(p): float(np.percentile(np.abs(sample), p)) for p in ABS_PERCENTILES},
        }


def value_stats(values: Tensor, max_samples: int = 1_000_000) -> dict[str, Any]:
    """The calibration statistics of one tensor of values (see the module docstring)."""
    s = _Summary(max_samples)
    s.add(values)
    return s.stats()


def _split_batch(batch: Any) -> tuple[Tensor, Tensor | None]:
    """A batch as (x, lengths): a tensor; an object with ``.x`` (and ``.lengths``, as the
    trainer's Batch); a dict with "x" (and "lengths"); or a tuple whose first item is x."""
    if isinstance(batch, Tensor):
        return batch, None
    if hasattr(batch, "x"):
        return batch.x, getattr(batch, "lengths", None)
    if isinstance(batch, dict):
        return batch["x"], batch.get("lengths")
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
        return batch[0], None
    raise TypeError(f"cannot read a calibration batch of type {type(batch).__name__}")


def calibrate(model: nn.Module, batches: Iterable[Any], max_samples: int = 1_000_000) -> dict[str, Any]:
    """Ranges of the recurrent layer's input, gate pre-activations, cell and hidden state.

    Args:
        model: a task model with an lstmlite LSTM/GRU as ``model.rnn`` (or the layer).
        batches: model inputs: tensors, the trainer's ``Batch`` objects (``.x``,
            ``.lengths``), dicts with ``"x"``/``"lengths"``, or tuples ``(x, ...)``
            (only x is read: every step counts, padding too; a warning says so).
        max_samples: cap on the values kept per statistic for the percentiles.

    Returns the JSON-serialisable dict described in the module docstring.
    """
    rnn = find_recurrent(model)
    lstm = isinstance(rnn, LSTM)
    gates = LSTM_GATES if lstm else GRU_GATES
    summaries: dict[tuple, _Summary] = {}

    def summary(*key) -> _Summary:
        return summaries.setdefault(key, _Summary(max_samples))

    captured: list[tuple[Tensor, Tensor | None]] = []

    def hook(module, args, kwargs):
        x_in = args[0] if args else kwargs["x"]
        captured.append((x_in, kwargs.get("lengths", args[2] if len(args) > 2 else None)))

    sequences = steps = 0
    warned = note_lengths = False
    parameters = inspect.signature(model.forward).parameters
    takes_lengths = "lengths" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    handle = rnn.register_forward_pre_hook(hook, with_kwargs=True)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                x, lengths = _split_batch(batch)
                if isinstance(batch, (tuple, list)) and len(batch) > 1 and not warned:
                    # (x, y) and (x, lengths) look alike, so a tuple's other items are not
                    # read: padded steps would be calibrated as data. Say so, once.
                    log.warning("calibration batches are tuples: only their first item (x) is used and every "
                                "step is calibrated; pass dicts {'x', 'lengths'} or Batch objects for padded "
                                "sequences")
                    warned = True
                captured.clear()
                if model is rnn:
                    rnn(x, lengths=lengths)
                elif lengths is not None and takes_lengths:
                    model(x, lengths=lengths)  # by name: a language model's second argument is its state
                else:
                    if lengths is not None and not note_lengths:
                        # a model without lengths (a language model) runs every step as data, and so is
                        # calibrated on every step
                        log.info("%s takes no lengths: every step of the batches is calibrated",
                                 type(model).__name__)
                        note_lengths = True
                    model(x)
                if len(captured) != 1:
                    raise RuntimeError(f"the model called its recurrent layer {len(captured)} times per batch")
                x_in, len_in = captured[0]
                if not isinstance(x_in, Tensor):
                    raise TypeError("calibration does not support PackedSequence inputs; pass lengths instead")
                trace = trace_recurrent(rnn, x_in, len_in)
                mask = trace[0][0]["mask"]
                sequences += int(mask.shape[0])
                steps += int(mask.sum())
                summary("input").add(trace[0][0]["x"][mask])
                for k, dirs in enumerate(trace):
                    for d, rec in enumerate(dirs):
                        m = rec["mask"]
                        hidden = rnn.hidden_sizes[k]
                        for j, gate in enumerate(gates):
                            summary(k, d, "gates", gate).add(rec["gates"][..., j * hidden:(j + 1) * hidden][m])
                        summary(k, d, "hidden").add(rec["hidden"][m])
                        summary(k, d, "cell" if lstm else "hn").add(rec["cell" if lstm else "hn"][m])
    finally:
        handle.remove()
        model.train(was_training)
    if not sequences:
        raise ValueError("calibrate needs at least one batch")
    layers = []
    for k in range(rnn.num_layers):
        dirs = []
        for d in range(rnn.num_directions):
            entry: dict[str, Any] = {"gates": {g: summaries[(k, d, "gates", g)].stats() for g in gates}}
            entry["cell" if lstm else "hn"] = summaries[(k, d, "cell" if lstm else "hn")].stats()
            entry["hidden"] = summaries[(k, d, "hidden")].stats()
            dirs.append(entry)
        layers.append(dirs)
    return {"cell": "lstm" if lstm else "gru", "num_layers": rnn.num_layers, "num_directions": rnn.num_directions,
            "sequences": sequences, "steps": steps, "input": summaries[("input",)].stats(), "layers": layers}
