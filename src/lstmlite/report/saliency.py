"""Saliency per time step and feature by **integrated gradients** (Sundararajan et al. 2017).

For a scalar model output f, an input x and a baseline x' (zeros: no signal; for
tokens, the zero embedding vector), the attribution of input element j is

    IG_j(x) = (x_j − x'_j) · ∫₀¹ ∂f(x' + α(x − x'))/∂x_j dα

approximated here by the midpoint rule over ``steps`` points (one batched forward
and backward pass). Integrated gradients is *complete*: the attributions sum to
f(x) − f(x'); :class:`Attribution` reports how far the approximation is from that.

Token input is attributed at the embedding output (T, E) and summed over E per token.
The scalar f: a classifier's logit of the target class (default: the predicted one),
a forecaster's first forecast value, a language model's logit of its top next token
after the last step, a tagger's (tag, CTC) logit of its top label at the last step.

Example:
    >>> import torch
    >>> from lstmlite.nn import SequenceClassifier
    >>> model = SequenceClassifier(input_size=3, hidden_size=5, n_classes=2)
    >>> att = integrated_gradients(model, torch.randn(6, 3), steps=128)
    >>> att.values.shape, abs(att.completeness_error) < 1e-3 * max(1, abs(att.f_x - att.f_baseline))
    ((6, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["Attribution", "integrated_gradients", "METHOD"]

METHOD = "integrated gradients"


@dataclass
class Attribution:
    """Integrated-gradients attributions for one sequence."""

    values: np.ndarray  # (T, F): per step and input feature (embedding dim for tokens)
    target: str  # what f is, in words
    f_x: float  # f at the input
    f_baseline: float  # f at the baseline
    steps: int  # integration points
    index: int = 0  # the explained class / output index / token id

    @property
    def per_step(self) -> np.ndarray:
        """(T,) the attributions summed over features (per token for text)."""
        return self.values.sum(axis=1)

    @property
    def completeness_error(self) -> float:
        """sum(attributions) − (f(x) − f(baseline)); 0 for exact integration."""
        return float(self.values.sum() - (self.f_x - self.f_baseline))


def _outputs(model: nn.Module, out: Tensor | tuple) -> tuple[Tensor, str, str]:
    """(B, K) the K outputs f can be, what they are called, and how one (``{}``: its
    index) is described."""
    kind = getattr(model, "kind", "")
    if kind == "lm":
        return out[0][:, -1], "next token ids", "logit of next token id {} after the last step"
    if kind == "forecaster":
        return out.reshape(out.shape[0], -1), "forecast values", "forecast value {} (normalised units)"
    if kind == "tagger":  # a label per step: the last step's, which has read the whole sequence
        return out[:, -1], "labels", "logit of label {} at the last step"
    return out, "classes", "logit of class {}"


def _scalar(model: nn.Module, out: Tensor | tuple, index: int) -> tuple[Tensor, str]:
    """(B,) the scalar f per batch row, and its description."""
    outputs, what, description = _outputs(model, out)
    if not 0 <= index < outputs.shape[1]:
        raise ValueError(f"target {index} is out of range: the model has {outputs.shape[1]} {what} "
                         f"(0..{outputs.shape[1] - 1})")
    return outputs[:, index], description.format(index)


@torch.no_grad()
def _default_target(model: nn.Module, x: Tensor) -> int:
    """The model's own prediction for ``x`` (class, top next token, a tagger's label at
    the last step), or output 0."""
    if getattr(model, "kind", "") == "forecaster":
        return 0
    return int(_outputs(model, model(x.unsqueeze(0)))[0][0].argmax())


def integrated_gradients(model: nn.Module, x: Tensor, target: int | None = None, steps: int = 64,
                         baseline: Tensor | None = None) -> Attribution:
    """Integrated gradients of one sequence ``x``: (T, F) float features or (T,) token ids.

    Args:
        model: a task model (classifier, forecaster, language model or tagger).
        x: one sequence, unpadded.
        target: the class (classifier), output index (forecaster), token id (LM) or
            label at the last step (tagger, CTC) to explain; None explains the model's
            own prediction. Out of range: ValueError.
        steps: integration points (more: smaller completeness error).
        baseline: (T, F) for features, (T, E) embeddings for tokens; zeros if None.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    was_training = model.training
    model.eval()
    tokens = getattr(model, "embedding", None) is not None
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps  # midpoint rule
    handle = None
    try:
        index = _default_target(model, x) if target is None else int(target)
        if tokens:
            with torch.no_grad():
                embedded = model.embedding(x.unsqueeze(0))[0].float()  # (T, E)
            start = torch.zeros_like(embedded) if baseline is None else baseline.float()
            end = embedded
        else:
            start = torch.zeros_like(x, dtype=torch.float32) if baseline is None else baseline.float()
            end = x.float()
        # Row 0: the baseline, row 1: the input, then the integration points.
        path = torch.cat([start[None], end[None], start[None] + alphas[:, None, None] * (end - start)[None]])
        path = path.detach().requires_grad_(True)
        if tokens:
            ids = x.unsqueeze(0).expand(path.shape[0], -1)
            handle = model.embedding.register_forward_hook(lambda module, args, output: path)
            out = model(ids)
        else:
            out = model(path)
        values, description = _scalar(model, out, index)
        grads, = torch.autograd.grad(values[2:].sum(), path)
        mean_grad = grads[2:].mean(0)  # (T, F)
        attributions = ((end - start) * mean_grad).detach().numpy().astype(np.float64)
        f_values = values.detach()
        return Attribution(attributions, description, float(f_values[1]), float(f_values[0]), steps, index)
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
