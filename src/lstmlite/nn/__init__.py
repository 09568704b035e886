"""Recurrent layers, efficient cells and task models (see DESIGN.md, decision 1)."""

from .cells import FastGRNN, GroupedLSTM
from .layers import GRU, LSTM, RecurrentLayer, from_torch, stack_state
from .seq2seq import Seq2Seq
from .models import CELLS, Forecaster, LanguageModel, SequenceClassifier, SequenceTagger, build_model, build_recurrent

__all__ = [
    "LSTM", "GRU", "RecurrentLayer", "from_torch", "stack_state", "GroupedLSTM", "FastGRNN",
    "SequenceClassifier", "LanguageModel", "Forecaster", "SequenceTagger", "Seq2Seq", "build_model", "build_recurrent", "CELLS",
]
