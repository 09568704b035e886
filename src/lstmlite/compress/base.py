"""The base class every compression parametrization derives from.

A compression transformation is a ``torch.nn.utils.parametrize`` parametrization
(DESIGN decision 3) on one tensor of the model. Deriving from
:class:`CompressionParametrization` (and registering the class with
:func:`lstmlite.compress.registry.register_transform`) gives it what the API needs:

* ``kind`` (class attribute): a stable name stored in run dirs;
* ``config``: the :class:`CompressionConfig` that created it (stored as JSON);
* :meth:`meta`: any extra JSON needed to rebuild an empty instance of the right
  shape (a low-rank rank, say); the tensors themselves travel in the state dict as
  buffers / originals;
* :meth:`restore`: build that empty instance on a freshly built model, so that
  ``load_state_dict`` of a saved parametrized model fills it;
* :meth:`storage`: how a deployment stores the result (bits, scales, sparsity,
  factors), so :func:`lstmlite.compress.size_bytes` stays honest;
* :meth:`undo_original`: for parametrizations whose ``right_inverse`` returns several
  tensors (low-rank), the dense tensor :func:`lstmlite.compress.undo` puts back.

Example (a parametrization that scales a tensor; buffers are saved with the model):
    >>> import torch
    >>> class Scale(CompressionParametrization):
    ...     kind = "scale_doc_example"
    ...     def __init__(self, config=None, factor=1.0):
    ...         super().__init__(config)
    ...         self.register_buffer("factor", torch.tensor(float(factor)))
    ...     def forward(self, w):
    ...         return w * self.factor
    >>> Scale(factor=2.0)(torch.ones(2)).tolist()
    [2.0, 2.0]
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from torch import Tensor, nn

from .config import CompressionConfig
from .size import Storage

__all__ = ["CompressionParametrization"]


class CompressionParametrization(nn.Module):
    """Base of lstmlite's parametrizations (see the module docstring).

    Args:
        config: the config that created this parametrization (None only for
            internal helpers that are never saved).
    """

    kind: ClassVar[str] = ""

    def __init__(self, config: CompressionConfig | None = None) -> None:
        super().__init__()
        self.config = config

    def meta(self) -> dict[str, Any]:
        """JSON-serialisable facts, besides the config, that :meth:`restore` needs."""
        return {}

    @classmethod
    def restore(cls, config: CompressionConfig | None, meta: dict[str, Any], tensor: Tensor) -> "CompressionParametrization":
        """An instance ready to be registered on ``tensor`` (the freshly built
        model's value, for shapes) whose buffers ``load_state_dict`` will fill."""
        return cls(config)  # type: ignore[call-arg]

    def storage(self, inputs: Sequence[Storage], output: Tensor) -> Storage:
        """How a deployment stores this parametrization's output.

        Args:
            inputs: the storage of each input tensor (the originals, or the previous
                parametrization's output), in ``forward``'s argument order.
            output: ``forward(*inputs)`` (no grad): the effective tensor.

        The default keeps the input's bits and overheads (a mask, say, changes only
        the zero pattern, which is read from ``output``).
        """
        if len(inputs) == 1 and not inputs[0].factors:
            base = inputs[0]
            return Storage(values=output.detach(), bits=base.bits, overhead_bytes=base.overhead_bytes,
                           allow_sparse=base.allow_sparse)
        return Storage.plain(output)

    def undo_original(self) -> Tensor | None:
        """The dense tensor to restore on undo when ``right_inverse`` returns several
        tensors (None: the single original is restored by parametrize itself)."""
        return None

    def describe(self) -> str:
        """A short label for :func:`lstmlite.compress.summary` (default: ``kind``)."""
        return self.kind
