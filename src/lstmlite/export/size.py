"""The one size accountant: a model's size is the bytes of the ``.lsl`` file that
``lstmlite export RUN --format lsl`` writes for it -- header, tables, metadata,
scales, indices and padding included, equal to the byte.

It serialises the model in memory through the same writer and the same default
weight form as the export (so nothing here estimates), and reads the per-tensor
breakdown and the multiply-accumulates per step back from that image:

* ``size_bytes``: ``len(image)``;
* ``tensors``: :func:`lstmlite.runtime.lsl.describe_lsl` rows (name, stored dtype,
  shape, bytes; their ``bytes`` sum to ``size_bytes``);
* ``macs_per_step``: what the runtime executes per step and sequence: every recurrent
  matrix (a low-rank one as its two factors, a block-sparse one as its kept blocks),
  plus the head when it runs at every step (a language model). Bitmask-sparse
  matrices are expanded to dense at load time, so they count dense.

A model the runtime cannot run (a grouped LSTM) has no file; it gets the storage
estimate of :func:`lstmlite.compress.size_bytes` instead, ``basis`` says
``"estimate"`` and ``reason`` why (the export's own one-line error).

Example:
    >>> import torch
    >>> from lstmlite.nn import SequenceClassifier
    >>> model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)
    >>> acc = account(model)
    >>> acc.basis, acc.size_bytes == len(lsl_image(model)), acc.macs_per_step
    ('lsl', True, 352)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .._text import one_line
from ..runtime.lsl import macs_from_image  # the format's reader owns it; named here too

__all__ = ["Account", "account", "lsl_image", "macs_from_image"]

log = logging.getLogger(__name__)


@dataclass
class Account:
    """What a model costs deployed (see the module docstring)."""

    size_bytes: int
    macs_per_step: int
    basis: str  # "lsl": the exported file's bytes; "estimate": no file possible
    tensors: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None


def lsl_image(model: nn.Module, weights: str | None = None) -> bytes:
    """The bytes ``export --format lsl`` writes for ``model`` (``weights`` as its
    ``--weights``; default: int8 codes for a quantized model, else fp32).

    Raises:
        ValueError: a model the native runtime cannot run (one line, naming why).
    """
    from .lsl import default_weights, spec_from_module, write_lsl

    spec = spec_from_module(model)
    return write_lsl(spec, weights=default_weights(spec, weights))


def account(model: nn.Module, weights: str | None = None) -> Account:
    """The deployable size, MACs per step and per-tensor bytes of ``model``.

    A seq2seq model deploys as three files (:mod:`lstmlite.export.seq2seq`): its size is
    their bytes together, its tensors those of both ``.lsl`` files (names prefixed
    ``encoder:`` / ``decoder:``) plus one row for ``seq2seq.safetensors``.
    """
    if getattr(model, "kind", None) == "seq2seq":
        return _seq2seq_account(model, weights)
    try:
        blob = lsl_image(model, weights)
    except ValueError as err:
        from ..compress import size_bytes

        reason = one_line(err, limit=None)  # our own message: whole
        log.warning("size is an estimate, not a file's bytes: %s", reason)
        macs = int(model.macs_per_step()) if hasattr(model, "macs_per_step") else 0
        return Account(int(size_bytes(model)), macs, "estimate", [], reason)
    from ..runtime.lsl import describe_lsl

    return Account(len(blob), macs_from_image(blob), "lsl", describe_lsl(blob))


def _seq2seq_account(model: nn.Module, weights: str | None) -> Account:
    from ..runtime.lsl import describe_lsl
    from .seq2seq import SIDE_FILE, bundle_images

    images = bundle_images(model, weights)
    tensors = []
    for file, blob in images.items():
        if file.endswith(".lsl"):
            prefix = file.split(".")[0]
            tensors += [{**row, "name": f"{prefix}:{row['name']}"} for row in describe_lsl(blob)]
    tensors.append({"name": SIDE_FILE, "dtype": "embedding, bridge, attention, output", "shape": [],
                    "bytes": len(images[SIDE_FILE])})
    return Account(sum(len(b) for b in images.values()), int(model.macs_per_step()), "lsl", tensors)
