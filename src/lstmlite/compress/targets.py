"""Choosing the tensors a config applies to, and attaching parametrizations.

A *target* is ``(fqn, module, name)``: the module's fully qualified name in the
model (``"rnn"``, ``"head"``, ``"embedding"``), the module, and the tensor's
attribute name (``"weight_ih_l0"``). Filters have the signature
``filter(fqn, module, name) -> bool``.

Tied tensors (a language model's head sharing the embedding matrix) are one tensor
seen from two modules. They are compressed together or not at all: if a filter
selects any alias, every alias gets the *same* parametrization object, so the tie
survives compression, ``finalize``, ``undo`` and save/load. Otherwise the head would
read a masked copy while the embedding read the original, and ``finalize`` would
then write the masked values into the shared tensor.

Example:
    >>> from lstmlite.nn import SequenceClassifier
    >>> m = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2)
    >>> [(f, n) for f, _, n in iter_tensors(m)][:2]
    [('rnn', 'weight_ih_l0'), ('rnn', 'weight_hh_l0')]
"""

from __future__ import annotations

import logging
from typing import Iterator, Optional

from torch import Tensor, nn
from torch.nn.utils import parametrize

from .registry import Filter

__all__ = [
    "Target", "iter_tensors", "select_targets", "attach", "tensor_key", "is_recurrent", "is_sequence_layer",
    "recurrent_weight_filter", "matrix_filter", "nothing", "effective", "canonical_order", "chain",
]

log = logging.getLogger(__name__)

Target = tuple[str, nn.Module, str]


def _inside_parametrization(fqn: str) -> bool:
    return "parametrizations" in fqn.split(".")


def iter_tensors(model: nn.Module) -> Iterator[Target]:
    """Every parameter of the model, parametrized ones under their public name.

    The internals of parametrizations (``...parametrizations.weight.original``,
    masks) are not offered.
    """
    for fqn, module in model.named_modules(remove_duplicate=False):
        if _inside_parametrization(fqn):
            continue
        names = [n for n, p in module._parameters.items() if p is not None]
        if parametrize.is_parametrized(module):
            names += [n for n in module.parametrizations.keys() if n not in names]
        for name in canonical_order(module, names):
            yield fqn, module, name


def canonical_order(module: nn.Module, names: list[str]) -> list[str]:
    """A stable order that does not depend on which tensors are parametrized:
    a recurrent layer's kernel order, else weights before biases."""
    if hasattr(module, "weight_names") and hasattr(module, "num_layers"):
        order = [n for layer in range(module.num_layers) for n in module.weight_names(layer)]
        return [n for n in order if n in names] + [n for n in names if n not in order]
    return sorted(names, key=lambda n: (not n.startswith("weight"), names.index(n)))


def chain(plist: nn.Module) -> list[nn.Module]:
    """The parametrizations of a ``ParametrizationList`` in application order.

    Iterating the list itself is wrong once one of its originals is parametrized
    (a quantized low-rank factor): its ``parametrizations`` dict is then a child
    module too. torch applies ``plist[0]``, ``plist[1]``, … by index; so do we.
    """
    out, i = [], 0
    while str(i) in plist._modules:
        out.append(plist._modules[str(i)])
        i += 1
    return out


def tensor_key(module: nn.Module, name: str) -> int:
    """Identity of the stored tensor behind ``module.name`` (equal for tied aliases)."""
    if parametrize.is_parametrized(module, name):
        plist = module.parametrizations[name]
        return id(plist.original) if plist.is_tensor else id(plist)
    return id(module._parameters[name])


def effective(module: nn.Module, name: str) -> Tensor:
    return getattr(module, name)


def select_targets(
    model: nn.Module, filter: Optional[Filter], default: Filter
) -> list[list[Target]]:
    """Groups of targets the filter (or ``default`` when None) selects.

    Each group is one stored tensor: usually a single target, several for tied
    aliases. A group is selected when any alias is.
    """
    chosen = filter if filter is not None else default
    groups: dict[int, list[Target]] = {}
    selected: set[int] = set()
    for target in iter_tensors(model):
        key = tensor_key(target[1], target[2])
        group = groups.setdefault(key, [])
        if not any(t[1] is target[1] and t[2] == target[2] for t in group):
            group.append(target)
        if chosen(*target):
            selected.add(key)
    result = [groups[k] for k in groups if k in selected]
    for group in result:
        if len(group) > 1:
            log.info("tied tensors %s are compressed together", [f"{f}.{n}" for f, _, n in group])
    return result


def attach(group: list[Target], parametrization: nn.Module) -> None:
    """Register ``parametrization`` on every alias of one stored tensor.

    Parametrizations nested on a tensor's originals (a quantizer on low-rank
    factors) must come last: torch cannot run anything appended after them.
    """
    for fqn, module, name in group:
        if parametrize.is_parametrized(module, name) and "parametrizations" in module.parametrizations[name]._modules:
            # torch appends under key str(len(list)), which the nested dict offsets, and
            # its forward then silently skips the new entry: refuse instead.
            raise ValueError(f"{fqn}.{name}: an input of this tensor is already parametrized (e.g. a quantized "
                             "low-rank factor); no parametrization can be added after it. finalize() first")
        parametrize.register_parametrization(module, name, parametrization)


def is_recurrent(module: nn.Module) -> bool:
    """lstmlite's fused LSTM/GRU layers (the ones the methods know the layout of)."""
    from ..nn.layers import RecurrentLayer

    return isinstance(module, RecurrentLayer)


def is_sequence_layer(module: nn.Module) -> bool:
    """Any lstmlite sequence layer: the fused LSTM/GRU, or an efficient cell (grouped
    LSTM, FastGRNN) that uses the same ``weight_ih_l{k}`` / ``weight_hh_l{k}`` names and
    reads them as attributes at every forward."""
    return is_recurrent(module) or (hasattr(module, "num_layers") and callable(getattr(module, "weight_names", None)))


def recurrent_weight_filter(prefixes: tuple[str, ...] = ("weight_ih", "weight_hh", "weight_hr")) -> Filter:
    """Filter: the sequence layers' weight matrices whose names start with ``prefixes``."""

    def accept(fqn: str, module: nn.Module, name: str) -> bool:
        return is_sequence_layer(module) and name.startswith(prefixes)

    return accept


def matrix_filter(fqn: str, module: nn.Module, name: str) -> bool:
    """Filter: the recurrent layers' weight matrices, the embedding and the head
    weight (no biases: they are few and pruning them buys nothing)."""
    if is_sequence_layer(module):
        return name.startswith(("weight_ih", "weight_hh", "weight_hr"))
    if isinstance(module, nn.Embedding):
        return name == "weight"
    return isinstance(module, nn.Linear) and name == "weight"


def nothing(fqn: str, module: nn.Module, name: str) -> bool:
    """Filter that matches no tensor."""
    return False

