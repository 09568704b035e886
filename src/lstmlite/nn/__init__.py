"""Recurrent layers, efficient cells and task models (see DESIGN.md, decision 1)."""

from .layers import GRU, LSTM, RecurrentLayer, from_torch, stack_state
from .models import CELLS, Forecaster, LanguageModel, SequenceClassifier, build_model, build_recurrent

__all__ = [
    "LSTM", "GRU", "RecurrentLayer", "from_torch", "stack_state",
    "SequenceClassifier", "LanguageModel", "Forecaster", "build_model", "build_recurrent", "CELLS",
]
try:  # efficient cells (grouped LSTM, FastGRNN)
    from .cells import FastGRNN, GroupedLSTM  # noqa: F401

    __all__ += ["GroupedLSTM", "FastGRNN"]
except ImportError:  # pragma: no cover - while cells.py is being written
    pass
