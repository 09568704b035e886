"""Weight quantization as parametrizations, their handlers, and reading the codes back.

Two parametrizations, both ``W → codes * scale`` with the straight-through gradient
of :func:`lstmlite.compress.quantize.ops.fake_quantize`:

* :class:`QuantizedWeight` (kind ``weight_quant``): the scales are a buffer, fixed
  when attached (post-training quantization, :class:`WeightQuantConfig`), saved
  with the model;
* :class:`FakeQuantWeight` (kind ``fake_quant``): the scales are recomputed from the
  current weights at every forward (quantization-aware training,
  :class:`FakeQuantConfig`); :func:`freeze_quantization` turns each into a
  :class:`QuantizedWeight` with the scales of the weights as trained.

The original fp32 tensor stays the stored parameter, so ``undo`` restores it
exactly and fine-tuning keeps updating it. What a deployment stores is read with
:func:`quantized_tensors` (int codes + fp32 scales per tensor) and counted by
:meth:`QuantizedWeight.storage` for :func:`lstmlite.compress.size_bytes`: packed
codes (int4: two per byte, rows padded to whole bytes) plus 4 bytes per scale (2
with ``scale_bits=16``).

When the selected tensor is a low-rank product (its parametrization keeps several
tensors), each factor is quantized instead (a nested parametrization), so the
deployment stores quantized factors.

Example:
    >>> import torch
    >>> from lstmlite.nn import SequenceClassifier
    >>> from lstmlite.compress import compress_, size_bytes
    >>> model = SequenceClassifier(input_size=4, hidden_size=32, n_classes=3)
    >>> fp32 = size_bytes(model)
    >>> _ = compress_(model, WeightQuantConfig(bits=4))
    >>> codes, scales, bits = quantized_tensors(model)["rnn.weight_hh_l0"]
    >>> codes.dtype, tuple(scales.shape), bits
    (torch.int8, (128,), 4)
    >>> size_bytes(model) < fp32 / 4
    True
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..base import CompressionParametrization
from ..config import CompressionConfig
from ..registry import Filter, register_handler, register_transform
from ..size import Storage
from ..targets import attach, iter_tensors, matrix_filter, select_targets, tensor_key
from .config import FakeQuantConfig, WeightQuantConfig
from .ops import (
    as_rows, channel_scales, dequantize, fake_quantize, pack_int4, packed_bytes, quantize_codes, storage_bits,
)

__all__ = [
    "QuantizedWeight", "FakeQuantWeight", "QuantizedTensor", "quantized_tensors", "freeze_quantization",
    "stored_bytes", "is_quantizer", "chain",
]

log = logging.getLogger(__name__)


def stored_bytes(shape: Sequence[int], bits: int, granularity: str = "per_channel", scale_bits: int = 32) -> int:
    """Deployable bytes of one quantized tensor: packed codes + scales (float32, or float16).

    Example:
        >>> stored_bytes((64, 12), bits=4)     # 64 rows * 6 bytes + 64 scales * 4
        640
    """
    shape = tuple(int(s) for s in shape)
    n_scales = (shape[0] if len(shape) >= 2 else 1) if granularity == "per_channel" else 1
    return packed_bytes(shape, bits) + (scale_bits // 8) * n_scales


class _Quantizer(CompressionParametrization):
    """Shared parts: bits, granularity, scale method; storage and codes."""

    def __init__(self, config: CompressionConfig | None, bits: int, granularity: str, scale_method: str,
                 scale_bits: int = 32) -> None:
        super().__init__(config)
        self.bits = int(bits)
        self.granularity = granularity
        self.scale_method = scale_method
        self.scale_bits = int(scale_bits)

    def scales_for(self, w: Tensor) -> Tensor:
        """The scales this quantizer applies to input ``w``: (rows,) or (1,)."""
        raise NotImplementedError

    def forward(self, w: Tensor) -> Tensor:
        return fake_quantize(w, self.scales_for(w), self.bits)

    def codes(self, w: Tensor) -> Tensor:
        """int8 codes of input ``w`` (w's shape)."""
        return quantize_codes(w, self.scales_for(w), self.bits)

    def meta(self) -> dict[str, Any]:
        return {"bits": self.bits, "granularity": self.granularity, "scale_method": self.scale_method,
                "scale_bits": self.scale_bits}

    def storage(self, inputs: Sequence[Storage], output: Tensor) -> Storage:
        shape = tuple(output.shape)
        bits = storage_bits(self.bits)
        codes = packed_bytes(shape, self.bits)
        n_scales = stored_bytes(shape, self.bits, self.granularity, self.scale_bits) - codes
        # Packed int4 rows are padded to whole bytes; the size module counts the codes
        # at ``bits`` each without padding, so the padding goes in the overhead.
        pad = codes - -(-output.numel() * bits // 8)
        base = inputs[0] if inputs else None
        return Storage(values=output.detach(), bits=bits,
                       overhead_bytes=n_scales + pad + (base.overhead_bytes if base is not None else 0),
                       allow_sparse=base.allow_sparse if base is not None else True)

    def describe(self) -> str:
        g = "ch" if self.granularity == "per_channel" else "tensor"
        return f"{self.kind} int{self.bits}/{g}"


@register_transform
class QuantizedWeight(_Quantizer):
    """``W → clamp(round(W / s), -qmax, qmax) * s`` with fixed per-row (or per-tensor) scales.

    Args:
        config: the config that made it.
        scale: (rows,) or (1,) float32 scales (a buffer, saved with the model).
        bits, granularity, scale_method: how the scales were made.
    """

    kind = "weight_quant"

    def __init__(self, config: CompressionConfig | None, scale: Tensor, bits: int, granularity: str = "per_channel",
                 scale_method: str = "absmax", scale_bits: int = 32) -> None:
        super().__init__(config, bits, granularity, scale_method, scale_bits)
        self.register_buffer("scale", scale.detach().to(torch.float32).clone())

    @classmethod
    def from_weight(cls, config: CompressionConfig | None, w: Tensor, bits: int, granularity: str,
                    scale_method: str, scale_bits: int = 32) -> "QuantizedWeight":
        return cls(config, channel_scales(w, bits, granularity, scale_method, scale_bits), bits, granularity,
                   scale_method, scale_bits)

    def scales_for(self, w: Tensor) -> Tensor:
        return self.scale

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "n_scales": int(self.scale.numel())}

    @classmethod
    def restore(cls, config: CompressionConfig | None, meta: dict[str, Any], tensor: Tensor) -> "QuantizedWeight":
        n = int(meta.get("n_scales", as_rows(tensor).shape[0]))
        return cls(config, torch.ones(n), int(meta["bits"]), meta.get("granularity", "per_channel"),
                   meta.get("scale_method", "absmax"), int(meta.get("scale_bits", 32)))


@register_transform
class FakeQuantWeight(_Quantizer):
    """Quantization-aware training: scales recomputed (no gradient) from W at every forward."""

    kind = "fake_quant"

    def scales_for(self, w: Tensor) -> Tensor:
        return channel_scales(w, self.bits, self.granularity, self.scale_method, self.scale_bits).to(w.device)

    @classmethod
    def restore(cls, config: CompressionConfig | None, meta: dict[str, Any], tensor: Tensor) -> "FakeQuantWeight":
        return cls(config, int(meta["bits"]), meta.get("granularity", "per_channel"),
                   meta.get("scale_method", "absmax"), int(meta.get("scale_bits", 32)))

    def frozen(self, w: Tensor) -> QuantizedWeight:
        """The post-training form with the scales of input ``w``."""
        return QuantizedWeight(self.config, self.scales_for(w.detach()), self.bits, self.granularity,
                               self.scale_method, self.scale_bits)


def is_quantizer(p: nn.Module) -> bool:
    return isinstance(p, _Quantizer)


# ----- handlers ------------------------------------------------------------------------------
def _has_quantizer(module: nn.Module, name: str) -> bool:
    return parametrize.is_parametrized(module, name) and any(is_quantizer(p) for p in chain(module.parametrizations[name]))


def _make(config: WeightQuantConfig | FakeQuantConfig, w: Tensor) -> _Quantizer:
    if isinstance(config, WeightQuantConfig):
        return QuantizedWeight.from_weight(config, w, config.bits, config.granularity, config.scale_method,
                                           config.scale_bits)
    return FakeQuantWeight(config, config.bits, config.granularity, config.scale_method, config.scale_bits)


def _quantize(model: nn.Module, config: WeightQuantConfig | FakeQuantConfig, filter: Optional[Filter]) -> None:
    groups = select_targets(model, filter, matrix_filter)
    if not groups:
        log.info("%s: the filter selects no tensor; nothing changed", config.type_name)
        return
    for group in groups:
        fqn, module, name = group[0]
        if _has_quantizer(module, name):
            # a tied head's weight is the embedding's tensor: name both, or "head.weight" is a mystery
            shared = [f"{f}.{n}" for f, _, n in group[1:]]
            also = f" (one tensor with {', '.join(shared)})" if shared else ""
            raise ValueError(f"{fqn}.{name}{also} is already quantized: compress the float run it came from "
                             "(a compressed run's recipe.json names it), or in Python undo() the quantization, "
                             "or freeze_quantization() after QAT")
        plist = module.parametrizations[name] if parametrize.is_parametrized(module, name) else None
        if plist is not None and not plist.is_tensor:
            # A product of several stored tensors (low-rank factors): quantize each factor.
            for i in range(plist.ntensors):
                factor = f"original{i}"
                if _has_quantizer(plist, factor):
                    raise ValueError(f"{fqn}.{name}.{factor} is already quantized")
                with torch.no_grad():
                    value = getattr(plist, factor).detach()
                parametrize.register_parametrization(plist, factor, _make(config, value))
            continue
        with torch.no_grad():
            value = getattr(module, name).detach()
        attach(group, _make(config, value))


@register_handler(WeightQuantConfig)
def _weight_quant(model: nn.Module, config: WeightQuantConfig, filter: Optional[Filter]) -> None:
    _quantize(model, config, filter)


@register_handler(FakeQuantConfig)
def _fake_quant(model: nn.Module, config: FakeQuantConfig, filter: Optional[Filter]) -> None:
    _quantize(model, config, filter)


# ----- reading the quantized form back --------------------------------------------------------
class QuantizedTensor(NamedTuple):
    """One quantized tensor as a deployment stores it.

    ``codes``: int8 tensor of the weight's shape (values in [-qmax, qmax]);
    ``scales``: float32 (rows,) per channel or (1,) per tensor, so that the weight
    is ``codes * scales[:, None]``; ``bits``: 8 or 4 (:meth:`packed` gives the bytes).
    """

    codes: Tensor
    scales: Tensor
    bits: int

    def dequantized(self) -> Tensor:
        return dequantize(self.codes, self.scales)

    def packed(self) -> Tensor:
        """The codes as stored: 5..8-bit codes one int8 per byte (as uint8), 2..4-bit codes
        two per byte (:func:`pack_int4`)."""
        if storage_bits(self.bits) == 4:
            return pack_int4(self.codes)
        return self.codes.view(torch.uint8)


def chain(plist: nn.Module) -> list[nn.Module]:
    """The parametrizations of a ParametrizationList in order.

    Iterating the list itself is wrong once one of its originals is parametrized
    (a quantized low-rank factor): the nested ``parametrizations`` ModuleDict is then
    one of its children. torch's own forward walks the numbered children, as here.
    """
    out, i = [], 0
    while str(i) in plist._modules:
        out.append(plist._modules[str(i)])
        i += 1
    return out


def _quantizer_inputs(plist: nn.Module) -> list[tuple[_Quantizer, Tensor]]:
    """Each quantizer in a parametrization list with the tensor it receives."""
    originals = ["original"] if plist.is_tensor else [f"original{i}" for i in range(plist.ntensors)]
    inputs = [getattr(plist, o) for o in originals]
    found = []
    for p in chain(plist):
        if is_quantizer(p):
            found.append((p, inputs[0]))
        inputs = [p(*inputs)]
    return found


def _walk_quantizers(model: nn.Module):
    """(public name, ParametrizationList, quantizer, its input) for every quantizer, tied tensors once."""
    seen: set[int] = set()
    for fqn, module, name in iter_tensors(model):
        key = tensor_key(module, name)
        if key in seen or not parametrize.is_parametrized(module, name):
            continue
        seen.add(key)
        full = f"{fqn}.{name}" if fqn else name
        plist = module.parametrizations[name]
        if not plist.is_tensor:  # quantized factors of a low-rank product
            for i in range(plist.ntensors):
                factor = f"original{i}"
                if parametrize.is_parametrized(plist, factor):
                    for q, x in _quantizer_inputs(plist.parametrizations[factor]):
                        yield f"{full}.{factor}", plist.parametrizations[factor], q, x
        for q, x in _quantizer_inputs(plist):
            yield full, plist, q, x


def quantized_tensors(model: nn.Module) -> dict[str, QuantizedTensor]:
    """Every quantized tensor's int codes and scales, by public name.

    Names are ``"rnn.weight_ih_l0"``, ``"head.weight"``, ``"embedding.weight"`` (a
    tied tensor appears once, under its first name), and
    ``"rnn.weight_ih_l0.original0"`` for a quantized low-rank factor.
    ``dequantized()`` equals the effective tensor the model computes with.
    """
    out: dict[str, QuantizedTensor] = {}
    with torch.no_grad():
        for name, _, q, x in _walk_quantizers(model):
            out[name] = QuantizedTensor(q.codes(x), q.scales_for(x).detach().float().clone(), q.bits)
    return out


def freeze_quantization(model: nn.Module) -> nn.Module:
    """Replace every :class:`FakeQuantWeight` by the :class:`QuantizedWeight` with the
    scales of the weights as they are now (QAT → the post-training form), in place.

    Outputs do not change. Tied tensors keep one shared quantizer.
    """
    replaced: dict[int, QuantizedWeight] = {}
    with torch.no_grad():
        for _, plist, q, x in list(_walk_quantizers(model)):
            if isinstance(q, FakeQuantWeight) and id(q) not in replaced:
                replaced[id(q)] = q.frozen(x)
        for module in model.modules():
            if isinstance(module, parametrize.ParametrizationList):
                for i, p in enumerate(chain(module)):
                    if id(p) in replaced:
                        module._modules[str(i)] = replaced[id(p)]
    return model
