"""Why a TFLite-quantized LSTM has no ONNX or ``.lsl`` export (the refusal both write).

What :func:`lstmlite.importers.tflite.read_tflite_lstm` reads is always a full-integer
layer: int8 (or int16, 16x8) input and hidden state requantized at every step, an int16
cell that saturates, Q3.12 pre-activations and fixed-point sigmoid / tanh. ONNX's float
``LSTM`` and the native runtime's ``.lsl`` layers (float activations) compute none of
that, so a file of the dequantized weights is another model: on the tests' converted
tf_keras LSTMs it is within 1 LSB of LiteRT on inputs like the calibration data, but
several LSB away on full-range int8 inputs and tens on a model whose cell saturates, where
the TFLite checks are bit for bit (tests/export/test_tflite_other_formats.py). The C
export's ``form="tflite"`` is the one that computes it (its other forms refuse such a
layer too, naming ``form='tflite'``: :func:`tflite_source_name` tells them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_IDENTIFIER = b"TFL3"  # the flatbuffer file identifier of a .tflite model (bytes 4..8)
_ARITHMETIC = ("TFLite's integer arithmetic (int8 activations and hidden state requantized every step, int16 "
               "cell state, fixed-point sigmoid/tanh)")
_FORMATS = {"onnx": "ONNX's float LSTM operator", "lsl": "the native runtime's .lsl format"}


def tflite_source_name(source: Any) -> str | None:
    """How to name ``source`` if it is a TFLite-quantized LSTM (a ``.tflite`` file or its
    bytes, ``TFLiteLSTMParams``, ``read_tflite_lstm``'s model); None for anything else."""
    from ..reference.tflite_int import TFLiteLSTMParams

    if isinstance(source, TFLiteLSTMParams) or isinstance(getattr(source, "params", None), TFLiteLSTMParams):
        return type(source).__name__
    if isinstance(source, (bytes, bytearray)):
        return "the .tflite bytes" if bytes(source[4:8]) == _IDENTIFIER else None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            return None
        if path.suffix == ".tflite":
            return str(path)
        with open(path, "rb") as f:
            return str(path) if f.read(8)[4:8] == _IDENTIFIER else None
    return None


def float_tflite_refusal(source: Any, fmt: str) -> str | None:
    """The one-line refusal of exporting a float32 ``.tflite`` LSTM (a path or its bytes) as it
    is, naming the import that makes it a run dir; None for anything else (or without
    TensorFlow's schema to look inside)."""
    where = tflite_source_name(source) if isinstance(source, (str, Path, bytes, bytearray)) else None
    if where is None:
        return None
    try:
        from ..importers.tflite import is_float_tflite_lstm

        if not is_float_tflite_lstm(bytes(source) if isinstance(source, bytearray) else source):
            return None
    except ImportError:
        return None
    file = where if isinstance(source, (str, Path)) else "FILE.tflite"
    return (f"{where}: a float32 .tflite LSTM is exported from the lstmlite model it imports as: "
            f"`lstmlite import tflite {file} --out RUN` (import_tflite), then `lstmlite export RUN --format {fmt}`")


def tflite_refusal(source: Any, fmt: str) -> str | None:
    """The one-line refusal of exporting ``source`` as ``fmt`` (``"onnx"`` or ``"lsl"``)
    when it is a TFLite-quantized LSTM, or None when it is not one.

    A float32 ``.tflite`` LSTM is named with the import that makes it a run dir
    (:func:`float_tflite_refusal`). A ``.tflite`` file (path or bytes) is read when LiteRT
    and TensorFlow's schema are installed: a file the C export refuses too (peephole, projection, layer norm, CIFG, a
    float or hybrid LSTM, other operators beside the layer) is named with that reason,
    since then no format takes it.

    Args:
        source: what the exporter was given (a run dir path, a model, a ``.tflite`` file, …).
        fmt: the format asked for, ``"onnx"`` or ``"lsl"``.

    Returns:
        The message (one line, naming the feature and the format that takes it), or None.
    """
    where = tflite_source_name(source)
    if where is None:
        return None
    float_model = float_tflite_refusal(source, fmt)
    if float_model is not None:
        return float_model
    head = f"{where}: a TFLite-quantized LSTM computes {_ARITHMETIC}, which {_FORMATS[fmt]} does not compute"
    if isinstance(source, (str, Path, bytes, bytearray)):
        from .c import _tflite_model_of

        try:
            _tflite_model_of(bytes(source) if isinstance(source, bytearray) else source)
        except ImportError:  # cannot look inside without LiteRT: the refusal still holds
            pass
        except ValueError as err:
            reason = str(err).removeprefix(f"{where}: ")
            return f"{head}; C (--format c --form tflite), the one format that takes such a layer, refuses this " \
                   f"file too: {reason}"
    return f"{head}; the format that takes it: C (lstmlite export FILE.tflite --format c --form tflite, or " \
           f"export_c(..., form='tflite')), bit for bit with TFLite"
