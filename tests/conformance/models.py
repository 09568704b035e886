"""Model kinds of the conformance suite: every cell, depth, direction, input and head.

Each :class:`ModelCase` builds a tiny model and a batch for it; ``run(model, batch)``
returns the output tensor to compare (a language model's logits). Sizes are tiny so
that the whole table (models × configs × checks) runs in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from lstmlite.nn import Forecaster, LanguageModel, SequenceClassifier


@dataclass
class ModelCase:
    id: str
    make: Callable[[], nn.Module]
    task: str                       # what io's config["task"] says: classify | lm | forecast
    tokens: bool = False            # integer token input (embedding) instead of features
    features: int = 3
    vocab: int = 20
    extra: dict[str, Any] = field(default_factory=dict)
    # config type_names this model must refuse with a clear ValueError, leaving it
    # unchanged (hidden-unit pruning knows only the LSTM/GRU gate layout)
    refuses: tuple[str, ...] = ()

    def batch(self, seed: int = 0) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(seed)
        if self.tokens:
            x = torch.randint(1, self.vocab, (3, 7), generator=g)
        else:
            x = torch.randn(3, 7, self.features, generator=g)
        batch = {"x": x}
        if self.task != "lm":
            batch["lengths"] = torch.tensor([7, 5, 2])
        return batch

    def build(self, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        model = self.make()
        model.eval()
        return model


def run(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    out = model(batch["x"], lengths=batch["lengths"]) if "lengths" in batch else model(batch["x"])
    return out[0] if isinstance(out, tuple) else out


MODELS: list[ModelCase] = [
    ModelCase("lstm-classifier", lambda: SequenceClassifier(input_size=3, hidden_size=6, n_classes=3), "classify"),
    ModelCase("gru-classifier", lambda: SequenceClassifier(input_size=3, cell="gru", hidden_size=6, n_classes=3),
              "classify"),
    ModelCase("lstm-stacked", lambda: SequenceClassifier(input_size=3, hidden_size=6, num_layers=2, n_classes=3),
              "classify"),
    ModelCase("lstm-bidirectional-mean", lambda: SequenceClassifier(
        input_size=3, hidden_size=5, bidirectional=True, pooling="mean", n_classes=3), "classify"),
    ModelCase("gru-stacked-bidirectional", lambda: SequenceClassifier(
        input_size=3, cell="gru", hidden_size=6, num_layers=2, bidirectional=True, n_classes=4), "classify"),
    ModelCase("lstm-projected-stacked", lambda: SequenceClassifier(
        input_size=3, hidden_size=6, num_layers=2, rnn_options={"proj_size": 3}, n_classes=3), "classify"),
    ModelCase("lstm-embedding-classifier", lambda: SequenceClassifier(
        vocab_size=20, embed_dim=5, hidden_size=6, n_classes=3), "classify", tokens=True),
    ModelCase("gru-embedding-bidirectional", lambda: SequenceClassifier(
        vocab_size=20, embed_dim=5, cell="gru", hidden_size=4, bidirectional=True, n_classes=2),
        "classify", tokens=True),
    ModelCase("lstm-lm", lambda: LanguageModel(vocab_size=20, embed_dim=5, hidden_size=6), "lm", tokens=True),
    ModelCase("gru-lm-tied-stacked", lambda: LanguageModel(
        vocab_size=20, embed_dim=6, cell="gru", hidden_size=6, num_layers=2, tie_weights=True), "lm", tokens=True),
    ModelCase("lstm-forecaster", lambda: Forecaster(input_size=2, horizon=3, hidden_size=6), "forecast", features=2),
    ModelCase("gru-forecaster-stacked", lambda: Forecaster(
        input_size=2, horizon=2, targets=2, cell="gru", hidden_size=5, num_layers=2), "forecast", features=2),
    ModelCase("grouped-lstm-classifier", lambda: SequenceClassifier(input_size=4, cell="glstm", hidden_size=8,
                                                                    n_classes=3), "classify", features=4,
              refuses=("hidden_unit_prune",)),
    ModelCase("fastgrnn-forecaster", lambda: Forecaster(input_size=2, horizon=2, cell="fastgrnn", hidden_size=6),
              "forecast", features=2, refuses=("hidden_unit_prune",)),
]
