"""Quantization configs: post-training weight quantization and quantization-aware training.

Default tensors (``filter=None``): every weight matrix of the recurrent layers
(``weight_ih``, ``weight_hh``, ``weight_hr``), the embedding matrix (one scale per
token row) and the head's weight (one scale per output unit). Biases stay fp32: they
are few, and the integer form (``lstmlite.reference.integer``) quantizes them to
int32 in the accumulator scale on its own. Tied tensors (a language model's head and
embedding) share one quantizer.

Example:
    >>> WeightQuantConfig(bits=4).to_dict()["data"]
    {'bits': 4, 'granularity': 'per_channel', 'scale_method': 'absmax', 'scale_bits': 32}
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import CompressionConfig
from .ops import GRANULARITIES, SCALE_METHODS

__all__ = ["WeightQuantConfig", "FakeQuantConfig"]


def _check(bits: int, granularity: str, scale_method: str, scale_bits: int = 32) -> int:
    if scale_bits not in (16, 32) or isinstance(scale_bits, bool):
        raise ValueError(f"scale_bits must be 32 (float32 scales) or 16 (float16), got {scale_bits!r}")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an int in 2..8 (8 = int8, 4 = packed int4), got {bits!r}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if scale_method not in SCALE_METHODS:
        raise ValueError(f"scale_method must be one of {SCALE_METHODS}, got {scale_method!r}")
    return bits


@dataclass
class WeightQuantConfig(CompressionConfig):
    """Post-training weight-only quantization (DESIGN 5a): symmetric ``bits``-bit codes.

    The scales are computed once, from the weights as they are when the config is
    applied, and kept (a buffer saved with the model). The effective weight is
    ``codes * scale``; fine-tuning afterwards still reaches the stored weights
    through the straight-through estimator.

    Args:
        bits: 8 (int8) or 4 (int4, stored two per byte); 2..8 accepted.
        granularity: ``"per_channel"`` (one scale per output row) or ``"per_tensor"``.
        scale_method: ``"absmax"`` (no clipping) or ``"mse"`` (per row, the clip
            ratio in 0.5..1 with the smallest squared error; helps int4).
        scale_bits: 32 stores each scale as float32, 16 rounds the scales to
            float16 and stores 2 bytes each (per-channel scales of a small model
            are a noticeable share of its bytes).
    """

    type_name = "weight_quant"
    version = 1

    bits: int = 8
    granularity: str = "per_channel"
    scale_method: str = "absmax"
    scale_bits: int = 32

    def __post_init__(self) -> None:
        self.bits = _check(self.bits, self.granularity, self.scale_method, self.scale_bits)


@dataclass
class FakeQuantConfig(CompressionConfig):
    """Quantization-aware training: fake-quantize the weights at every forward.

    The scales follow the weights (recomputed, without gradient, from the current
    weights at every forward); the forward sees ``codes * scale`` and the gradient
    passes straight through inside the clip range. After training,
    :func:`lstmlite.compress.quantize.freeze_quantization` fixes the scales, giving
    the same form as :class:`WeightQuantConfig`.

    Args: as :class:`WeightQuantConfig`.
    """

    type_name = "fake_quant"
    version = 1

    bits: int = 8
    granularity: str = "per_channel"
    scale_method: str = "absmax"
    scale_bits: int = 32

    def __post_init__(self) -> None:
        self.bits = _check(self.bits, self.granularity, self.scale_method, self.scale_bits)
