"""Compression configs of the conformance suite.

EXTENDING: every compression method adds its configs here by appending
``ConfigCase`` entries to ``CONFIGS`` (for instance the quantization engineer adds
``ConfigCase("int8-weight", lambda: Int8WeightConfig(...))``). Every entry is then
checked against every model kind in ``models.py`` by ``test_conformance.py``:
save → load round trip, apply → undo restores outputs exactly, apply → finalize →
save → load gives the same outputs, a filter matching nothing changes nothing, and
training after compression still changes the surviving weights.

Fields of ConfigCase:
    id:       the test id.
    make:     zero-argument factory returning a fresh config.
    train_lr: SGD learning rate of the "training still works" check; large enough
              that a fake-quantized effective weight crosses a quantization step.
    finalize_exact: finalize keeps outputs bit-identical (False only for methods
              whose finalized form is recomputed differently; give the tolerance
              in ``finalize_atol``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from lstmlite.compress.quantize import FakeQuantConfig, WeightQuantConfig  # quantization engineer
from lstmlite.compress import (
    CompressionConfig, GradualPruneConfig, HiddenUnitPruneConfig, LowRankConfig, MagnitudePruneConfig,
)


@dataclass
class ConfigCase:
    id: str
    make: Callable[[], CompressionConfig]
    train_lr: float = 0.5
    finalize_exact: bool = True
    finalize_atol: float = 0.0


CONFIGS: list[ConfigCase] = [
    # --- pruning (compression core) ---
    ConfigCase("magnitude-layer-50", lambda: MagnitudePruneConfig(sparsity=0.5)),
    ConfigCase("magnitude-global-50-block1x4", lambda: MagnitudePruneConfig(sparsity=0.5, scope="global", block=(1, 4))),
    ConfigCase("magnitude-layer-60-block4x1", lambda: MagnitudePruneConfig(sparsity=0.6, block=(4, 1))),
    ConfigCase("gradual-30-to-80", lambda: GradualPruneConfig(
        initial_sparsity=0.3, final_sparsity=0.8, start_step=0, end_step=10, frequency=2)),
    ConfigCase("hidden-units-l2-half", lambda: HiddenUnitPruneConfig(fraction=0.5)),
    ConfigCase("hidden-units-group-lasso-keep4", lambda: HiddenUnitPruneConfig(keep=4, criterion="group_lasso")),
    # --- low-rank (compression core) ---
    ConfigCase("low-rank-2", lambda: LowRankConfig(rank=2)),
    ConfigCase("low-rank-energy-90", lambda: LowRankConfig(energy=0.9)),
    # --- quantization: append ConfigCase entries below ---
    ConfigCase("int8-weight", lambda: WeightQuantConfig(bits=8)),
    ConfigCase("int4-weight-mse-fp16-scales", lambda: WeightQuantConfig(bits=4, scale_method="mse", scale_bits=16),
               train_lr=5.0),
    ConfigCase("int8-weight-per-tensor", lambda: WeightQuantConfig(bits=8, granularity="per_tensor"), train_lr=5.0),
    ConfigCase("qat-int4", lambda: FakeQuantConfig(bits=4), train_lr=5.0),
]
