"""Structured hidden-unit pruning (DESIGN decision 4) and the ISS group-lasso penalty.

Unit j of layer k (one direction) owns, with H = hidden size and G gates (4 LSTM,
3 GRU):
    incoming  rows j, H+j, …, (G−1)H+j of weight_ih_l{k}, weight_hh_l{k}, bias_ih/hh
    outgoing  column j of weight_hh_l{k} (of weight_hr_l{k} for a projected LSTM),
              and the input column that reads it in the consumer: the next layer's
              weight_ih (column d·H + j of both directions' matrices, d the
              direction that produced it) or the head's weight for the last layer
              (projected layers feed P outputs, untouched).
Removing these gives a smaller dense model whose outputs equal the original's with
unit j's outgoing weights set to zero: unit j still runs in the original, but
nothing reads it.

Language models with tied weights: the head *is* the embedding (V, E), so the last
layer's output width is E; its units are not pruned (unless it has a projection).

Example:
    >>> import torch
    >>> from lstmlite.nn import SequenceClassifier
    >>> from lstmlite.compress import compress_, HiddenUnitPruneConfig
    >>> model = SequenceClassifier(input_size=4, hidden_size=16, num_layers=2, n_classes=3)
    >>> _ = compress_(model, HiddenUnitPruneConfig(keep=[8, 4]))
    >>> model.rnn.hidden_sizes, model.head.in_features
    ([8, 4], 4)
"""

from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..api import push_undo
from ..registry import Filter, register_handler
from ..targets import is_recurrent
from .config import HiddenUnitPruneConfig

__all__ = ["group_lasso_penalty", "unit_scores", "prune_hidden_units"]

log = logging.getLogger(__name__)


def _parts(model: nn.Module) -> tuple[nn.Module, Optional[nn.Linear]]:
    """(recurrent layer, head or None) of a task model or a bare recurrent layer."""
    if is_recurrent(model):
        return model, None
    rnn = getattr(model, "rnn", None)
    if rnn is None or not is_recurrent(rnn):
        # A seq2seq model has LSTM/GRU layers, but four kinds of readers of them; name what works.
        instead = ("; a seq2seq model shrinks by distillation into a narrower student instead "
                   "(student: {width: 0.5}, as the seq2seq-small recipe does)"
                   if getattr(model, "kind", "") == "seq2seq" else "")
        raise ValueError("hidden-unit pruning needs an lstmlite LSTM/GRU layer (model.rnn or the model itself); "
                         f"got {type(rnn or model).__name__}{instead}")
    head = getattr(model, "head", None)
    return rnn, head if isinstance(head, nn.Linear) else None


def _tied(model: nn.Module, head: Optional[nn.Linear]) -> bool:
    embedding = getattr(model, "embedding", None)
    return head is not None and embedding is not None and head.weight is embedding.weight


def _prunable(model: nn.Module, rnn: nn.Module, head: Optional[nn.Linear], layer: int) -> bool:
    """Whether layer ``layer``'s width may change (its output is not fixed from outside)."""
    if rnn.proj_sizes[layer] or layer < rnn.num_layers - 1:
        return True
    if head is None:
        return False  # a bare layer's last output is the model's output
    return not _tied(model, head)


def _group_sq_norms(model: nn.Module, rnn: nn.Module, head: Optional[nn.Linear], layer: int, direction: int,
                    criterion: str) -> Tensor:
    """(H,) squared L2 norm of each unit's group (see ``HiddenUnitPruneConfig.criterion``).

    Uses the effective (parametrized) weights, so it is differentiable for the penalty.
    """
    g, h, p = rnn.gates, rnn.hidden_sizes[layer], rnn.proj_sizes[layer]
    sfx = "_reverse" if direction else ""
    w_ih = getattr(rnn, f"weight_ih_l{layer}{sfx}")  # (G*H, I)
    w_hh = getattr(rnn, f"weight_hh_l{layer}{sfx}")  # (G*H, P or H)
    sq = w_ih.view(g, h, -1).pow(2).sum(dim=(0, 2)) + w_hh.view(g, h, -1).pow(2).sum(dim=(0, 2))
    if criterion == "l2":
        return sq
    if p:
        return sq + getattr(rnn, f"weight_hr_l{layer}{sfx}").pow(2).sum(dim=0)  # column j of (P, H)
    sq = sq + w_hh.pow(2).sum(dim=0)  # column j: what unit j feeds back
    cols = slice(direction * h, (direction + 1) * h)
    if layer < rnn.num_layers - 1:
        for nsfx in rnn._suffixes():
            sq = sq + getattr(rnn, f"weight_ih_l{layer + 1}{nsfx}")[:, cols].pow(2).sum(dim=0)
    elif head is not None and not _tied(model, head):
        sq = sq + head.weight[:, cols].pow(2).sum(dim=0)
    return sq


def unit_scores(model: nn.Module, criterion: str = "l2") -> list[list[Tensor]]:
    """Importance of every hidden unit: ``[layer][direction] -> (H,)`` group L2 norms."""
    rnn, head = _parts(model)
    with torch.no_grad():
        return [[_group_sq_norms(model, rnn, head, k, d, criterion).sqrt() for d in range(rnn.num_directions)]
                for k in range(rnn.num_layers)]


def group_lasso_penalty(model: nn.Module) -> Tensor:
    """Sum over every prunable hidden unit of the L2 norm of its weight group (ISS,
    Wen et al. 2018: "Learning intrinsic sparse structures within LSTMs").

    Add ``λ · group_lasso_penalty(model)`` to the training loss (e.g. the trainer's
    ``extra_loss=lambda m, batch, out: lam * group_lasso_penalty(m)``) to drive
    whole units to zero; then prune with ``HiddenUnitPruneConfig(...,
    criterion="group_lasso")``. Units whose width is fixed (a tied language model's
    last layer) are left out. Returns a scalar tensor with gradients.

    Example:
        >>> from lstmlite.nn import SequenceClassifier
        >>> m = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3)
        >>> group_lasso_penalty(m).backward()
        >>> m.rnn.weight_hh_l0.grad.shape
        torch.Size([32, 8])
    """
    rnn, head = _parts(model)
    terms = []
    for layer in range(rnn.num_layers):
        if not _prunable(model, rnn, head, layer):
            continue
        for direction in range(rnn.num_directions):
            sq = _group_sq_norms(model, rnn, head, layer, direction, "group_lasso")
            terms.append(sq.clamp_min(1e-12).sqrt().sum())  # clamp: no NaN gradient at an all-zero group
    if not terms:
        return next(rnn.parameters()).new_zeros(())
    return torch.stack(terms).sum()


def _keep_counts(config: HiddenUnitPruneConfig, rnn: nn.Module) -> list[int]:
    sizes = rnn.hidden_sizes
    projs = rnn.proj_sizes
    if config.fraction is not None:
        # A projected layer needs more units than its projection (LSTMP: P < H).
        return [max(1, p + 1, h - int(round(config.fraction * h))) if p < h else h for h, p in zip(sizes, projs)]
    keep = [config.keep] * rnn.num_layers if isinstance(config.keep, int) else list(config.keep)
    if len(keep) != rnn.num_layers:
        raise ValueError(f"keep has {len(keep)} entries but the model has {rnn.num_layers} layers")
    for k, (n, h, p) in enumerate(zip(keep, sizes, projs)):
        if n > h:
            raise ValueError(f"keep[{k}] = {n} is more than layer {k}'s {h} units")
        if p and n <= p:
            raise ValueError(f"keep[{k}] = {n}: layer {k} projects to {p}, so it needs more than {p} units")
    return keep


def prune_hidden_units(model: nn.Module, keep: list[list[Tensor]]) -> nn.Module:
    """Rebuild ``model.rnn`` (and the head) keeping the given units.

    Args:
        keep: ``[layer][direction]`` → sorted int64 indices of the units to keep;
            every direction of a layer keeps the same number.

    Returns the new recurrent layer (also set on ``model``; a bare layer is returned
    and ``model`` itself is left unchanged).
    """
    rnn, head = _parts(model)
    g = rnn.gates
    new_sizes = [len(k[0]) for k in keep]
    old = {name: t.detach() for name, t in rnn.named_parameters()}
    sliced: dict[str, Tensor] = {}
    for layer in range(rnn.num_layers):
        h, p = rnn.hidden_sizes[layer], rnn.proj_sizes[layer]
        in_cols = None
        if layer > 0 and not rnn.proj_sizes[layer - 1]:
            h_prev = rnn.hidden_sizes[layer - 1]
            in_cols = torch.cat([d * h_prev + keep[layer - 1][d] for d in range(rnn.num_directions)])
        for d, sfx in enumerate(rnn._suffixes()):
            units = keep[layer][d]
            rows = torch.cat([gate * h + units for gate in range(g)])
            w_ih = old[f"weight_ih_l{layer}{sfx}"][rows]
            sliced[f"weight_ih_l{layer}{sfx}"] = w_ih if in_cols is None else w_ih[:, in_cols]
            w_hh = old[f"weight_hh_l{layer}{sfx}"][rows]
            sliced[f"weight_hh_l{layer}{sfx}"] = w_hh if p else w_hh[:, units]
            if rnn.bias:
                for b in ("bias_ih", "bias_hh"):
                    sliced[f"{b}_l{layer}{sfx}"] = old[f"{b}_l{layer}{sfx}"][rows]
            if p:
                sliced[f"weight_hr_l{layer}{sfx}"] = old[f"weight_hr_l{layer}{sfx}"][:, units]
    config = {**rnn.config(), "hidden_size": new_sizes}
    like = next(rnn.parameters())
    new_rnn = type(rnn)(**config).to(like.device, like.dtype)
    with torch.no_grad():
        for name, param in new_rnn.named_parameters():
            param.copy_(sliced[name])
    new_rnn.train(rnn.training)
    if not is_recurrent(model):
        last = rnn.num_layers - 1
        new_head = None
        if head is not None and not rnn.proj_sizes[last] and new_sizes[last] != rnn.hidden_sizes[last]:
            h = rnn.hidden_sizes[last]
            cols = torch.cat([d * h + keep[last][d] for d in range(rnn.num_directions)])
            new_head = nn.Linear(len(cols), head.out_features, bias=head.bias is not None).to(like.device, like.dtype)
            with torch.no_grad():
                new_head.weight.copy_(head.weight[:, cols])
                if head.bias is not None:
                    new_head.bias.copy_(head.bias)
            new_head.train(head.training)
        old_rnn, old_head = rnn, head

        def restore() -> None:
            model.rnn = old_rnn
            if new_head is not None:
                model.head = old_head

        model.rnn = new_rnn
        if new_head is not None:
            model.head = new_head
        push_undo(model, restore)
    return new_rnn


def _choose_units(model: nn.Module, config: HiddenUnitPruneConfig, filter: Optional[Filter]) -> Optional[list]:
    rnn, head = _parts(model)
    fqn = "" if rnn is model else "rnn"
    counts = _keep_counts(config, rnn)
    scores = unit_scores(model, config.criterion)
    keep, changed = [], False
    for layer in range(rnn.num_layers):
        h = rnn.hidden_sizes[layer]
        selected = (filter or (lambda *_: True))(fqn, rnn, f"weight_hh_l{layer}")
        n = counts[layer] if selected else h
        if n < h and not _prunable(model, rnn, head, layer):
            if isinstance(config.keep, list):
                raise ValueError(f"layer {layer}'s width is fixed (it feeds a tied embedding or is the model's "
                                 f"output); keep[{layer}] must be {h}")
            log.info("layer %d keeps its %d units: its output width is fixed", layer, h)
            n = h
        per_direction = []
        for d in range(rnn.num_directions):
            top = torch.argsort(scores[layer][d], descending=True, stable=True)[:n]
            per_direction.append(torch.sort(top).values)
        changed |= n < h
        keep.append(per_direction)
    return keep if changed else None


@register_handler(HiddenUnitPruneConfig)
def _hidden_unit_prune(model: nn.Module, config: HiddenUnitPruneConfig, filter: Optional[Filter]) -> None:
    rnn, head = _parts(model)
    if rnn is model:
        raise ValueError("hidden-unit pruning replaces the recurrent layer; apply it to a task model "
                         "(or call prune_hidden_units and use the layer it returns)")
    for name, module in (("rnn", rnn), ("head", head)):
        if module is not None and parametrize.is_parametrized(module):
            raise ValueError(f"model.{name} carries other compression; apply hidden-unit pruning first: to the "
                             "float run a compressed run came from (its recipe.json names it), or in Python "
                             "finalize() / undo() the other compression before it")
    keep = _choose_units(model, config, filter)
    if keep is None:
        log.info("hidden_unit_prune: no layer changes; nothing done")
        return
    before = list(rnn.hidden_sizes)
    prune_hidden_units(model, keep)
    log.info("hidden units %s -> %s", before, model.rnn.hidden_sizes)
