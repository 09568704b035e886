"""From a float model to the integer-only form (DESIGN 5b) of its recurrent layer.

:func:`integer_params_from_model` calibrates the model on some batches, reads the
layer's effective weights (any pruning or weight quantization applied) and builds
the :class:`lstmlite.reference.integer.IntegerRecurrentParams` that the integer
reference, the C runtime and the generated C all run.

Example:
    >>> import torch
    >>> from lstmlite.nn import SequenceClassifier
    >>> from lstmlite.reference.integer import integer_lstm_forward, quantize_input
    >>> model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)
    >>> x = torch.randn(4, 6, 3)
    >>> q = integer_params_from_model(model, [x])
    >>> integer_lstm_forward(q, quantize_input(q, x.numpy())).shape
    (4, 6, 8)
"""

from __future__ import annotations

from typing import Any, Iterable

from torch import nn

from ...nn.layers import LSTM
from ...reference.integer import IntegerRecurrentParams, quantize_lstm_integer
from ...reference.integer_gru import quantize_gru_integer
from .calibrate import calibrate, effective_params, find_recurrent

__all__ = ["integer_params_from_model"]


def integer_params_from_model(
    model: nn.Module,
    batches: Iterable[Any],
    input_bits: int = 8,
    per_channel: bool = True,
    input_percentile: float | None = None,
    calibration: dict[str, Any] | None = None,
) -> IntegerRecurrentParams:
    """Calibrate ``model`` on ``batches`` and quantize its LSTM/GRU to the integer form.

    Args:
        model: a task model with an lstmlite LSTM (no projection) or GRU as ``model.rnn``.
        batches: calibration inputs (see :func:`calibrate`); ignored when
            ``calibration`` is given.
        input_bits: 8 or 16, the first layer's input width.
        per_channel: per-output-row weight scales (else per tensor).
        input_percentile: clip the input range at this percentile of |x| (e.g. 99.99)
            instead of its maximum.
        calibration: a dict from :func:`calibrate` to reuse.

    Only the recurrent layer becomes integer; the embedding and head stay as they are.
    """
    rnn = find_recurrent(model)
    cal = calibration if calibration is not None else calibrate(model, batches)
    quantize = quantize_lstm_integer if isinstance(rnn, LSTM) else quantize_gru_integer
    return quantize(effective_params(rnn), cal, input_bits=input_bits, per_channel=per_channel,
                    input_percentile=input_percentile)
