"""The compression API: compress_, finalize, undo, summary, size_bytes, and the
state that lets a parametrized model be saved and loaded.

* :func:`compress_` ``(model, config, filter=None) -> model`` applies one config in
  place through the registry's handler for ``type(config)``.
* :func:`finalize` bakes every parametrization in (``leave_parametrized=True``):
  plain dense tensors holding the effective values remain.
* :func:`undo` removes every parametrization and restores the original tensors;
  structural changes (hidden-unit pruning) made in this session are reverted too.
  After a save/load round trip the originals of low-rank factorizations are gone,
  and undo refuses (before changing anything) rather than guess.
* :func:`summary` / :func:`format_summary`: one row per stored tensor (name, shape,
  sparsity, bits, rank, bytes, transforms); :func:`size_bytes` sums the bytes a
  deployment stores (see :mod:`lstmlite.compress.size`).
* :func:`compression_state` describes the attached parametrizations as JSON (put it
  under ``config["compression"]`` of :func:`lstmlite.io.save_run`);
  :func:`restore_compression` re-attaches them to a freshly built model so that
  ``load_state_dict`` of the saved weights works (``lstmlite.io.load_run`` does it).

Example:
    >>> import torch
    >>> from lstmlite.nn import SequenceClassifier
    >>> from lstmlite.compress import MagnitudePruneConfig
    >>> model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3)
    >>> _ = compress_(model, MagnitudePruneConfig(sparsity=0.5))
    >>> state = compression_state(model)
    >>> fresh = restore_compression(SequenceClassifier(input_size=4, hidden_size=8, n_classes=3), state)
    >>> _ = fresh.load_state_dict(model.state_dict())
    >>> x = torch.randn(2, 5, 4)
    >>> torch.equal(fresh(x), model(x))
    True
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from .base import CompressionParametrization
from .config import CompressionConfig, config_from_dict
from .registry import Filter, get_handler, get_transform
from .size import Storage, storage_bytes
from .targets import canonical_order, chain, iter_tensors, tensor_key

__all__ = [
    "compress_", "finalize", "undo", "summary", "format_summary", "size_bytes",
    "compression_state", "restore_compression", "push_undo", "STATE_VERSION",
]

log = logging.getLogger(__name__)

STATE_VERSION = 1
_UNDO_ATTR = "_lstmlite_structural_undo"


# ----- apply ---------------------------------------------------------------------------
def compress_(
    model: nn.Module, config: CompressionConfig | dict[str, Any], filter: Optional[Filter] = None
) -> nn.Module:
    """Apply one compression config to ``model`` in place and return it.

    Args:
        model: a task model (or any module holding lstmlite recurrent layers).
        config: a config instance, or its ``to_dict()`` form.
        filter: ``filter(fqn, module, param_name) -> bool`` choosing the tensors;
            None uses the method's default (see each config's docstring). A filter
            matching nothing changes nothing.

    Create the optimizer *after* compressing: methods such as low-rank replace the
    trainable tensors.

    Example:
        >>> from lstmlite.nn import SequenceClassifier
        >>> from lstmlite.compress import LowRankConfig
        >>> m = compress_(SequenceClassifier(input_size=4, hidden_size=8, n_classes=3), LowRankConfig(rank=2))
        >>> [r["rank"] for r in summary(m) if r["name"] == "rnn.weight_hh_l0"]
        [2]
    """
    if isinstance(config, dict):
        config = config_from_dict(config)
    handler = get_handler(config)
    handler(model, config, filter)
    return model


def push_undo(model: nn.Module, restore: Callable[[], None]) -> None:
    """Record how to revert a structural change (used by hidden-unit pruning).

    The record lives only in memory (it is not saved); :func:`finalize` drops it.
    """
    stack = model.__dict__.setdefault(_UNDO_ATTR, [])
    stack.append(restore)


# ----- the parametrized modules --------------------------------------------------------
def _parametrized_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(fqn, module) of every parametrized module, parents before the parametrization
    lists nested inside them (a quantizer may parametrize a low-rank factor)."""
    return [(fqn, m) for fqn, m in model.named_modules(remove_duplicate=False) if parametrize.is_parametrized(m)]


def finalize(model: nn.Module) -> nn.Module:
    """Bake every parametrization in: each tensor becomes a plain parameter holding its
    effective value (``remove_parametrizations(..., leave_parametrized=True)``).

    Nested parametrizations go first so a parent sees its final inputs. Tied tensors
    stay tied. The result saves and loads with no compression state. Hidden-unit
    pruning already made the model smaller; finalize just forgets how to undo it.
    """
    for _, module in reversed(_parametrized_modules(model)):
        for name in list(module.parametrizations.keys()):
            parametrize.remove_parametrizations(module, name, leave_parametrized=True)
        _reorder(module)
    model.__dict__.pop(_UNDO_ATTR, None)
    return model


def _reorder(module: nn.Module) -> None:
    """Put re-registered parameters back in the module's usual order, so the state
    dict reads as it did before compression."""
    names = canonical_order(module, list(module._parameters))
    module._parameters = {n: module._parameters[n] for n in names}


def undo(model: nn.Module) -> nn.Module:
    """Remove every parametrization, restoring the original tensors, then revert
    this session's structural changes (newest first).

    Raises:
        ValueError: a parametrization keeps several tensors (low-rank factors) and
            no longer knows the dense original (the model was reloaded); nothing is
            changed in that case.
    """
    modules = _parametrized_modules(model)
    plans = []
    for fqn, module in modules:
        for name, plist in module.parametrizations.items():
            if plist.is_tensor:
                plans.append((module, name, None))
                continue
            first = chain(plist)[0]
            original = first.undo_original() if isinstance(first, CompressionParametrization) else None
            if original is None:
                raise ValueError(
                    f"cannot undo {fqn}.{name}: its original dense tensor is not kept (was the model reloaded?); "
                    "rebuild the model from the uncompressed run instead"
                )
            plans.append((module, name, original))
    for module, name, original in reversed(plans):
        if original is None:
            parametrize.remove_parametrizations(module, name, leave_parametrized=False)
        else:
            parametrize.remove_parametrizations(module, name, leave_parametrized=True)
            with torch.no_grad():
                getattr(module, name).copy_(original)
    for _, module in modules:
        if not parametrize.is_parametrized(module):
            _reorder(module)
    stack = model.__dict__.pop(_UNDO_ATTR, [])
    for restore in reversed(stack):
        restore()
    return model


# ----- inspection ----------------------------------------------------------------------
def tensor_storage(module: nn.Module, name: str) -> Storage:
    """How a deployment stores ``module.name`` (through its parametrizations)."""
    if not parametrize.is_parametrized(module, name):
        return Storage.plain(getattr(module, name))
    plist = module.parametrizations[name]
    if plist.is_tensor:
        inputs = [tensor_storage(plist, "original")]
    else:
        inputs = [tensor_storage(plist, f"original{i}") for i in range(plist.ntensors)]
    with torch.no_grad():
        for p in chain(plist):
            output = p(*[s.values for s in inputs])
            if isinstance(p, CompressionParametrization):
                inputs = [p.storage(inputs, output)]
            else:  # a parametrization we know nothing about: stored as computed
                inputs = [Storage.plain(output)]
    return inputs[0]


def _transforms(module: nn.Module, name: str) -> list[str]:
    if not parametrize.is_parametrized(module, name):
        return []
    plist = module.parametrizations[name]
    labels: list[str] = []
    originals = ["original"] if plist.is_tensor else [f"original{i}" for i in range(plist.ntensors)]
    for original in originals:  # nested parametrizations of the inputs (e.g. quantized factors)
        labels += [f"{original}:{label}" for label in _transforms(plist, original)]
    for p in chain(plist):
        labels.append(p.describe() if isinstance(p, CompressionParametrization) else type(p).__name__)
    return labels


def summary(model: nn.Module) -> list[dict[str, Any]]:
    """One row per stored tensor (tied aliases once, listed under ``aliases``).

    Row keys: ``name`` (``"rnn.weight_ih_l0"``), ``shape``, ``numel``, ``sparsity``
    (fraction of exact zeros in the effective tensor), ``bits`` (per stored value),
    ``rank`` (low-rank factorizations, else None), ``bytes`` (deployable, see
    :mod:`lstmlite.compress.size`), ``transforms`` (attached parametrizations),
    ``aliases``. Plain persistent buffers are listed too (``transforms`` ["buffer"]).
    """
    rows: list[dict[str, Any]] = []
    seen: dict[int, dict[str, Any]] = {}
    for fqn, module, name in iter_tensors(model):
        full = f"{fqn}.{name}" if fqn else name
        key = tensor_key(module, name)
        if key in seen:
            seen[key]["aliases"].append(full)
            continue
        storage = tensor_storage(module, name)
        with torch.no_grad():
            value = getattr(module, name).detach()
        row = {
            "name": full,
            "shape": list(value.shape),
            "numel": int(value.numel()),
            "sparsity": float((value == 0).sum()) / max(value.numel(), 1),
            "bits": int(storage.value_bits),
            "rank": storage.rank,
            "bytes": storage_bytes(storage),
            "transforms": _transforms(module, name),
            "aliases": [],
        }
        seen[key] = row
        rows.append(row)
    for fqn, module in model.named_modules():
        if ".parametrizations" in f".{fqn}" or isinstance(module, CompressionParametrization):
            continue
        for bname, buf in module.named_buffers(recurse=False):
            if buf is None or bname in module._non_persistent_buffers_set:
                continue
            rows.append({
                "name": f"{fqn}.{bname}" if fqn else bname, "shape": list(buf.shape), "numel": int(buf.numel()),
                "sparsity": float((buf == 0).sum()) / max(buf.numel(), 1), "bits": buf.element_size() * 8,
                "rank": None, "bytes": storage_bytes(Storage.plain(buf)), "transforms": ["buffer"], "aliases": [],
            })
    return rows


def size_bytes(model: nn.Module) -> int:
    """Deployable bytes of the whole model: the sum of :func:`summary`'s ``bytes``.

    Dense fp32 tensors count 4 bytes per value; sparse ones their values plus the
    smaller index (bitmask or CSR); quantized ones their packed values plus scales
    and zero points; low-rank ones their factors. Tied tensors count once.
    """
    return int(sum(row["bytes"] for row in summary(model)))


def format_summary(rows: list[dict[str, Any]]) -> str:
    """A text table of :func:`summary` rows with a total line.

    Example:
        >>> from lstmlite.nn import SequenceClassifier
        >>> print(format_summary(summary(SequenceClassifier(input_size=2, hidden_size=2, n_classes=2))))
        ... # doctest: +NORMALIZE_WHITESPACE
        tensor            shape   sparsity  bits  rank  bytes  transforms
        rnn.weight_ih_l0  8x2     0.00      32    -     64     -
        rnn.weight_hh_l0  8x2     0.00      32    -     64     -
        rnn.bias_ih_l0    8       0.00      32    -     32     -
        rnn.bias_hh_l0    8       0.00      32    -     32     -
        head.weight       2x2     0.00      32    -     16     -
        head.bias         2       0.00      32    -     8      -
        total             -       0.00      -     -     216    -
    """
    header = ["tensor", "shape", "sparsity", "bits", "rank", "bytes", "transforms"]
    table = [header]
    for r in rows:
        table.append([
            r["name"] + (f" (= {', '.join(r['aliases'])})" if r.get("aliases") else ""),
            "x".join(str(s) for s in r["shape"]) or "scalar",
            f"{r['sparsity']:.2f}",
            str(r["bits"]),
            "-" if r["rank"] is None else str(r["rank"]),
            str(r["bytes"]),
            ", ".join(r["transforms"]) or "-",
        ])
    numel = sum(r["numel"] for r in rows)
    zeros = sum(r["sparsity"] * r["numel"] for r in rows)
    table.append(["total", "-", f"{zeros / max(numel, 1):.2f}", "-", "-", str(sum(r["bytes"] for r in rows)), "-"])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)


# ----- save / load -----------------------------------------------------------------------
def compression_state(model: nn.Module) -> list[dict[str, Any]]:
    """JSON description of every attached parametrization, in the order to re-attach.

    Each entry: ``{"module": fqn, "tensor": name, "kind": kind, "config":
    config.to_dict() or None, "meta": {...}}`` plus ``"shared_with": i`` when the
    parametrization object is the one of entry ``i`` (tied tensors). Empty list:
    nothing attached. Raises ValueError for a parametrization that is not an
    lstmlite one (it could not be rebuilt).
    """
    entries: list[dict[str, Any]] = []
    index_of: dict[int, int] = {}
    for fqn, module in _parametrized_modules(model):
        for name, plist in module.parametrizations.items():
            for p in chain(plist):
                if not isinstance(p, CompressionParametrization):
                    raise ValueError(f"{fqn}.{name}: parametrization {type(p).__name__} is not an lstmlite "
                                     "compression parametrization and cannot be saved")
                entry: dict[str, Any] = {
                    "module": fqn, "tensor": name, "kind": p.kind,
                    "config": p.config.to_dict() if p.config is not None else None,
                    "meta": p.meta(),
                }
                if id(p) in index_of:
                    entry["shared_with"] = index_of[id(p)]
                else:
                    index_of[id(p)] = len(entries)
                entries.append(entry)
    return entries


_ENTRY_KEYS = {"module", "tensor", "kind", "config", "meta", "shared_with"}


def restore_compression(model: nn.Module, state: list[dict[str, Any]]) -> nn.Module:
    """Re-attach the parametrizations described by :func:`compression_state` to a
    freshly built model (same architecture), ready for ``load_state_dict``.

    Only registered parametrization kinds and config types are accepted.

    Raises:
        ValueError: malformed state, unknown kind/config, or a tensor that is not there.
    """
    if not isinstance(state, list):
        raise ValueError(f"compression state must be a list, got {type(state).__name__}")
    built: list[nn.Module] = []
    for i, entry in enumerate(state):
        if not isinstance(entry, dict) or not {"module", "tensor", "kind"} <= set(entry) or set(entry) - _ENTRY_KEYS:
            raise ValueError(f"compression state entry {i} is malformed: {entry!r}")
        cls = get_transform(entry["kind"])
        try:
            module = model.get_submodule(entry["module"])
        except AttributeError:
            raise ValueError(f"compression state entry {i}: the model has no module {entry['module']!r}") from None
        name = entry["tensor"]
        if not hasattr(module, name):
            raise ValueError(f"compression state entry {i}: {entry['module']!r} has no tensor {name!r}")
        shared = entry.get("shared_with")
        if shared is not None:
            if not isinstance(shared, int) or not 0 <= shared < i:
                raise ValueError(f"compression state entry {i}: bad shared_with {shared!r}")
            p = built[shared]
        else:
            config = config_from_dict(entry["config"]) if entry.get("config") is not None else None
            with torch.no_grad():
                current = getattr(module, name).detach()
            p = cls.restore(config, dict(entry.get("meta") or {}), current)
        parametrize.register_parametrization(module, name, p)
        built.append(p)
    return model
