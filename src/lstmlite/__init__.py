"""lstmlite: make LSTM-family models small and fast for resource-limited devices.

The public API, re-exported from the sub-packages (each documented in README.md and
docs/):

    models      LSTM, GRU, GroupedLSTM, FastGRNN, from_torch, SequenceClassifier,
                LanguageModel, Forecaster, SequenceTagger, Seq2Seq, build_model
    seq2seq     beam_search, greedy_search, decode_seq2seq, make_text_norm
    data        load_data, DataSpec, list_datasets, describe_dataset
    training    train, TrainConfig, evaluate, fit, evaluate_run
    run dirs    save_run, load_run
    compression compress_, finalize, undo, summary, size_bytes, apply_recipe, load_recipe
    interop     export_onnx, OnnxStream, export_c, import_torch, import_keras, import_onnx,
                import_tflite (lazy: need extras)
    runtime     lstmlite.runtime.load (native C engine)
    search      search (Optuna, multi-objective under a device budget; needs the search extra)
    report      write_report (HTML report of run dirs), explain (gates, integrated gradients)

Example:
    >>> import lstmlite
    >>> model = lstmlite.SequenceClassifier(input_size=12, hidden_size=32, n_classes=9)
    >>> model.macs_per_step()
    5632
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0"

from . import reference  # noqa: E402
from .compress import compress_, finalize, size_bytes, summary, undo  # noqa: E402
from .data import DataSpec, describe_dataset, list_datasets, load_data  # noqa: E402
from .io import load_run, save_run  # noqa: E402
from .nn import (  # noqa: E402
    GRU, LSTM, FastGRNN, Forecaster, GroupedLSTM, LanguageModel, SequenceClassifier, SequenceTagger, Seq2Seq,
    build_model, from_torch,
)
from .train import TrainConfig, evaluate, evaluate_run, fit, train  # noqa: E402

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Loaded on first use: they import optional extras (onnx, keras) or the C extension.
_LAZY = {
    "export_onnx": "lstmlite.export",
    "OnnxStream": "lstmlite.export",
    "export_c": "lstmlite.export",
    "import_torch": "lstmlite.importers",
    "import_keras": "lstmlite.importers",
    "import_onnx": "lstmlite.importers",
    "import_tflite": "lstmlite.importers",
    "apply_recipe": "lstmlite.compress.recipe",
    "load_recipe": "lstmlite.compress.recipe",
    "distill": "lstmlite.compress",
    "runtime": "lstmlite.runtime",
    "search": "lstmlite.search",
    "write_report": "lstmlite.report",
    "explain": "lstmlite.report",
    "beam_search": "lstmlite.seq2seq",
    "greedy_search": "lstmlite.seq2seq",
    "decode_seq2seq": "lstmlite.seq2seq",
    "make_text_norm": "lstmlite.data.textnorm",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return module if name == "runtime" else getattr(module, name)
    raise AttributeError(f"module 'lstmlite' has no attribute {name!r}")


__all__ = [
    "__version__", "reference",
    "LSTM", "GRU", "GroupedLSTM", "FastGRNN", "from_torch",
    "SequenceClassifier", "LanguageModel", "Forecaster", "SequenceTagger", "Seq2Seq", "build_model",
    "beam_search", "greedy_search", "decode_seq2seq", "make_text_norm",
    "load_data", "DataSpec", "list_datasets", "describe_dataset",
    "train", "TrainConfig", "evaluate", "fit", "evaluate_run",
    "save_run", "load_run",
    "compress_", "finalize", "undo", "summary", "size_bytes", "apply_recipe", "load_recipe", "distill",
    "export_onnx", "OnnxStream", "export_c", "import_torch", "import_keras", "import_onnx", "import_tflite", "runtime",
    "search",
]
