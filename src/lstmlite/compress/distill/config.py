"""DistillConfig: how a student learns from a teacher (Hinton et al. 2015).

Distillation is a training procedure, not a change to a model's tensors, so it has
no ``compress_`` handler: recipes name it in a step's ``distill_epochs`` and
:func:`lstmlite.compress.distill.distill` runs it. It still serialises as the same
versioned ``{"type", "version", "data"}`` JSON as every compression config.

Example:
    >>> c = DistillConfig(temperature=2.0)
    >>> c.to_dict()
    {'type': 'distill', 'version': 1, 'data': {'temperature': 2.0, 'alpha': 0.5, 'hidden_weight': 0.0}}
    >>> DistillConfig.from_dict(c.to_dict()) == c
    True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["DistillConfig"]


@dataclass
class DistillConfig:
    """Knowledge-distillation hyper-parameters.

    Args:
        temperature: T > 0 softening both distributions; T² rescales the soft-target
            gradients back to the size of the hard-target ones (Hinton et al. 2015).
        alpha: weight of the soft-target term in [0, 1]; ``1 - alpha`` weighs the
            task loss on the true labels.
        hidden_weight: β ≥ 0, weight of the hidden-state matching term (MSE between
            a learned linear projection of the student's head input and the
            teacher's head input); 0 turns it off (and adds no projection).

    The loss (see :func:`lstmlite.compress.distill.loss.distill_objective`) is
    ``alpha * T² * KL(softmax(t/T) ‖ softmax(s/T)) + (1 - alpha) * task + β * MSE``.
    """

    type_name: ClassVar[str] = "distill"
    version: ClassVar[int] = 1

    temperature: float = 4.0
    alpha: float = 0.5
    hidden_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in ("temperature", "alpha", "hidden_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"distill: {name} must be a finite number, got {value!r}")
            setattr(self, name, float(value))
        if self.temperature <= 0:
            raise ValueError(f"distill: temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"distill: alpha must be in [0, 1], got {self.alpha}")
        if self.hidden_weight < 0:
            raise ValueError(f"distill: hidden_weight must be non-negative, got {self.hidden_weight}")

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "distill", "version": 1, "data": {...}}``."""
        return {"type": self.type_name, "version": self.version, "data": dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DistillConfig":
        """Inverse of :meth:`to_dict`; also accepts the bare ``data`` mapping."""
        if not isinstance(d, dict):
            raise ValueError(f"distill: expected a JSON object, got {type(d).__name__}")
        if "type" in d:
            if d["type"] != cls.type_name:
                raise ValueError(f"expected a {cls.type_name!r} config, got type {d['type']!r}")
            if d.get("version") != cls.version:
                raise ValueError(f"distill: config version {d.get('version')!r} is not supported "
                                 f"(this lstmlite reads version {cls.version})")
            extra = sorted(set(d) - {"type", "version", "data"})
            if extra:
                raise ValueError(f"distill: unexpected key(s) {extra}")
            d = d.get("data", {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"distill: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**d)
