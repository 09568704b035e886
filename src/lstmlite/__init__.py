"""lstmlite: make LSTM-family models small and fast for resource-limited devices.

The public API is re-exported here; see README.md and docs/ for a tour.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

from .nn import GRU, LSTM, Forecaster, LanguageModel, SequenceClassifier, build_model, from_torch  # noqa: E402

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "LSTM", "GRU", "from_torch", "SequenceClassifier", "LanguageModel", "Forecaster", "build_model",
]
