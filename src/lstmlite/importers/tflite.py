"""Read a TFLite-quantized LSTM into :class:`~lstmlite.reference.tflite_int.TFLiteLSTMParams`.

The model must hold a fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` with int8 (or 16x8: int16)
activations, int8 weights and an int16 cell state: what ``tf.lite.TFLiteConverter`` makes
of a ``tf_keras`` LSTM (Keras 2; Keras 3 converts to a WHILE loop instead) with full-integer
quantization. Peephole, projection, layer-norm and CIFG variants are refused.

Tensors (data, scales, zero points) are read through the LiteRT interpreter's tensor
details; the op's wiring and options (``time_major``, ``cell_clip``) come from the
flatbuffer, through the schema module that TensorFlow ships (loaded by file path, so
TensorFlow itself is not imported).

The quantization parameters are derived as TFLite's integer LSTM kernel derives them
(``lstm.cc``, 8x8_16 / 16x8 without layer norm): gate pre-activations in Q3.12 (scale
2**-12), gate outputs in Q0.15 and::

    gate matmul scale   = float32(input_scale * weight_scale) / 2**-12     (float32 product)
    f * c scale         = s * 2**p / 2**p          s: the gate-output scale, in double
    i * g scale         = s * s / 2**p
    hidden scale        = s * s / hidden_scale

with s = float32(0.00003051757) in TFLite Micro (its literal for 2**-15; the products are
a few ULP below powers of two, which changes the f * c multiplier to (2147483136, -15))
and s = 2**-15 in desktop TFLite, whose hidden scale comes from the op's "effective hidden
scale" intermediate when present.

Example:
    >>> from lstmlite.importers.tflite import read_tflite_lstm        # doctest: +SKIP
    >>> from lstmlite.runtime import TFLiteLSTM                       # doctest: +SKIP
    >>> model = read_tflite_lstm("lstm_int8.tflite")                  # doctest: +SKIP
    >>> y_q = TFLiteLSTM(model.params, model.time_major).run(x_q)     # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..reference.tflite_int import GATES, TFLiteGate, TFLiteLSTMParams

__all__ = ["TFLiteLSTMModel", "read_tflite_lstm", "quantize_multiplier_tflite"]

log = logging.getLogger(__name__)

_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
_GATE_PREACT_SCALE = 2.0 ** -12  # Q3.12: TFLite's fixed pre-activation scale without layer norm
_MICRO_GATE_OUTPUT_SCALE = 0.00003051757  # TFLite Micro's float literal for 2**-15 (Q0.15 gate outputs)
# Operand positions of the fused op (TFLite's lstm_shared.h).
_INPUT, _W_X, _W_H, _PEEPHOLE, _BIAS = 0, (1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11), (12, 13, 14, 15)
_PROJ_W, _PROJ_B, _HIDDEN, _CELL, _LAYER_NORM = 16, 17, 18, 19, (20, 21, 22, 23)


@dataclass
class TFLiteLSTMModel:
    """What :func:`read_tflite_lstm` found.

    Attributes:
        params: the layer, ready for :func:`~lstmlite.reference.tflite_int.tflite_lstm_sequence`
            or :class:`lstmlite.runtime.TFLiteLSTM`.
        time_major: the op's ``time_major`` option (input (T, B, I) when True).
        input_index, output_index: the op's input / output tensor indices in the model.
        input_shape, output_shape: their shapes.
        op_index: which operator of subgraph 0 it is.
        operators: every operator of subgraph 0 by name, in order (the LSTM at
            ``op_index``): what the model computes besides the layer read here.
    """

    params: TFLiteLSTMParams
    time_major: bool
    input_index: int
    output_index: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    op_index: int
    operators: tuple[str, ...] = ()


def quantize_multiplier_tflite(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: real ≈ m * 2**(shift - 31), m in [2**30, 2**31).

    Rounds the Q0.31 mantissa half away from zero (``std::round``); tiny factors (shift
    below -31) become (0, 0), as in TFLite.

    >>> quantize_multiplier_tflite(2.0 ** -15)
    (1073741824, -14)
    """
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    m = int(math.floor(abs(mantissa) * (1 << 31) + 0.5)) * (1 if mantissa >= 0 else -1)
    if m == 1 << 31:
        m //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return m, shift


def _schema() -> Any:
    """TensorFlow's generated flatbuffer schema module, loaded without importing TensorFlow."""
    for package, rel in (("tensorflow", "lite/python/schema_py_generated.py"),
                         ("tflite_runtime", "schema_py_generated.py")):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(list(spec.submodule_search_locations)[0]) / rel
        if path.is_file():
            mod_spec = importlib.util.spec_from_file_location("_lstmlite_tflite_schema", path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)  # type: ignore[union-attr]
            return module
    raise ImportError("reading a .tflite file needs TensorFlow's schema (pip install tensorflow-cpu)")


def _interpreter(content: bytes) -> Any:
    """A LiteRT interpreter that reads ``content``'s tensors. Without the default delegate:
    the reader never invokes the model, and applying XNNPACK prints "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU." on stderr, beside a CLI's one-line answer."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # pragma: no cover - depends on what is installed
        import tensorflow as tf

        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    return Interpreter(model_content=content,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def _power_of_two(scale: float, what: str) -> int:
    p = math.log2(scale)
    if p != round(p):
        raise ValueError(f"{what} scale {scale} is not a power of two (TFLite requires it)")
    return int(round(p))


def _check_options(options: Any, schema: Any, where: str) -> None:
    """Refuse op options whose maths the integer kernels here do not compute (one line each).

    ``cell_clip`` and ``time_major`` are honoured; ``proj_clip`` (projection only, refused
    above) and ``asymmetric_quantize_inputs`` (hybrid kernels only) do not change a
    full-integer LSTM's integers (checked against LiteRT). A fused activation other than
    TANH, a negative clip (which TFLite itself refuses) and diagonal recurrent tensors are
    refused: desktop LiteRT ignores the activation in its integer kernel while TFLite Micro
    passes it to the cell gate, so such a file means different numbers on the two.
    """
    if options is None:
        return
    activation = getattr(options, "fusedActivationFunction", schema.ActivationFunctionType.TANH)
    if activation != schema.ActivationFunctionType.TANH:
        names = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
        raise ValueError(f"{where}: the LSTM's fused_activation_function is {names.get(activation, activation)}; "
                         "only TANH (TFLite's default, a Keras LSTM's activation='tanh') is supported")
    for field, option in (("cellClip", "cell_clip"), ("projClip", "proj_clip")):
        value = float(getattr(options, field, 0.0) or 0.0)
        if value < 0 or math.isnan(value):  # TFLite's Prepare refuses these (lstm.cc: clip >= 0)
            raise ValueError(f"{where}: the LSTM's {option} is {value}; TFLite requires {option} >= 0 (0: no clip)")
    if getattr(options, "diagonalRecurrentTensors", False):
        raise ValueError(f"{where}: the LSTM's diagonal_recurrent_tensors is True (diagonal recurrent weights); "
                         "only full recurrent weight matrices are supported")


def _effective_hidden(op: Any, details: dict, scale: float, zero_point: int) -> tuple[float, int]:
    """Scale and zero point of the op's intermediate 4 (effective hidden scale), if quantized."""
    intermediates = [int(v) for v in (op.intermediates if op.intermediates is not None else [])]
    if len(intermediates) == 5:
        q = details[intermediates[4]]["quantization_parameters"]
        if len(q["scales"]) == 1 and q["scales"][0] > 0:
            return float(q["scales"][0]), int(q["zero_points"][0])
    return scale, zero_point


def read_tflite_lstm(model: str | Path | bytes, op_index: int | None = None,
                     kernel: Literal["micro", "lite"] = "micro") -> TFLiteLSTMModel:
    """Find the fused integer LSTM in a .tflite model and build its parameters.

    Args:
        model: path to a .tflite file, or its bytes.
        op_index: which operator of subgraph 0; None: the only UNIDIRECTIONAL_SEQUENCE_LSTM
            (an error if there are several).
        kernel: whose numbers to reproduce: ``"micro"`` (TensorFlow Lite Micro, what a
            microcontroller runs) or ``"lite"`` (desktop TFLite, the LiteRT interpreter).

    Returns:
        :class:`TFLiteLSTMModel`. Raises ``ValueError`` for float or hybrid LSTMs, peephole,
        projection, layer-norm or CIFG variants, a fused activation other than TANH, diagonal
        recurrent tensors, per-channel weights, or a model without the fused op (e.g. a
        Keras 3 LSTM, which converts to a WHILE loop).
    """
    where = "the .tflite bytes" if isinstance(model, (bytes, bytearray)) else str(model)
    if not isinstance(model, (bytes, bytearray)) and not Path(model).is_file():
        raise FileNotFoundError(f"{model}: no such file; check the path")
    content = bytes(model) if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    schema = _schema()
    try:
        if len(content) < 8 or content[4:8] != b"TFL3":
            raise ValueError("no TFL3 identifier")
        fb = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    except Exception as err:  # noqa: BLE001 - the flatbuffer reader raises struct errors on corrupt bytes
        raise ValueError(f"{where}: not a readable .tflite model, truncated or corrupt ({err}); "
                         f"re-convert it with the TFLite converter") from None
    graph = fb.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def op_name(op: Any) -> str:
        code = fb.operatorCodes[op.opcodeIndex]
        return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")

    found = [k for k, op in enumerate(graph.operators) if op_name(op) == _OP]
    if op_index is None:
        if not found:
            raise ValueError(f"{where}: expected one {_OP} operator, found none (a Keras 3 LSTM converts to a "
                             "WHILE loop: use tf_keras)")
        if len(found) > 1:  # stacked layers: each is read (and exported) on its own
            raise ValueError(f"{where}: holds {len(found)} {_OP} operators (at {', '.join(map(str, found))}: "
                             "stacked layers), and form tflite runs one layer; read one with "
                             "read_tflite_lstm(path, op_index=K) and pass that model to export_c to export it alone")
        op_index = found[0]
    elif op_index not in found:
        raise ValueError(f"operator {op_index} is not a {_OP}")
    op = graph.operators[op_index]
    inputs = [int(v) for v in op.inputs]
    options = op.builtinOptions
    _check_options(options, schema, where)

    def absent(pos: int) -> bool:
        return pos >= len(inputs) or inputs[pos] < 0

    if absent(_W_X[0]) or absent(_W_H[0]):
        raise ValueError("CIFG LSTMs (no input gate) are not supported")
    for what, positions in (("peephole", _PEEPHOLE), ("projection", (_PROJ_W, _PROJ_B)), ("layer norm", _LAYER_NORM)):
        if not all(absent(p) for p in positions):
            raise ValueError(f"{what} LSTMs are not supported")

    interp = _interpreter(content)
    interp.allocate_tensors()
    details = {d["index"]: d for d in interp.get_tensor_details()}

    def qparams(index: int) -> tuple[np.ndarray, np.ndarray, Any]:
        d = details[index]
        q = d["quantization_parameters"]
        return np.asarray(q["scales"], np.float32), np.asarray(q["zero_points"], np.int64), d["dtype"]

    def single(index: int, what: str) -> tuple[float, int]:
        scales, zps, _ = qparams(index)
        if scales.size != 1:
            raise ValueError(f"{what} must have one (per-tensor) scale, has {scales.size}")
        return float(scales[0]), int(zps[0])

    x_scale, x_zp = single(inputs[_INPUT], "input")
    in_dtype = qparams(inputs[_INPUT])[2]
    if in_dtype not in (np.int8, np.int16):
        raise ValueError(f"the LSTM's input is {np.dtype(in_dtype).name}: not an integer LSTM "
                         "(convert with full-integer quantization and a representative dataset)")
    bits = 8 if in_dtype == np.int8 else 16
    h_scale, h_zp = single(inputs[_HIDDEN], "output state")
    y_index = int(op.outputs[0])
    y_scale, y_zp = single(y_index, "output")
    if (y_scale, y_zp) != (h_scale, h_zp):
        raise ValueError("output and output-state tensors have different quantization (projection-like)")
    c_scale, _ = single(inputs[_CELL], "cell state")
    if qparams(inputs[_CELL])[2] != np.int16:
        raise ValueError("the cell state must be int16")
    p = _power_of_two(c_scale, "cell state")

    f32 = np.float32
    gates = {}
    for k, name in enumerate(GATES):
        wx_idx, wh_idx, b_idx = inputs[_W_X[k]], inputs[_W_H[k]], inputs[_BIAS[k]]
        wx_scale, _ = single(wx_idx, f"{name} input weights")
        wh_scale, _ = single(wh_idx, f"{name} recurrent weights")
        if qparams(wx_idx)[2] != np.int8 or qparams(wh_idx)[2] != np.int8:
            raise ValueError("weights must be int8")
        # float32 products, as the kernel computes them from the tensors' float scales.
        mx = quantize_multiplier_tflite(float(f32(x_scale) * f32(wx_scale) / f32(_GATE_PREACT_SCALE)))
        mh = quantize_multiplier_tflite(float(f32(h_scale) * f32(wh_scale) / f32(_GATE_PREACT_SCALE)))
        bias = interp.get_tensor(b_idx) if b_idx >= 0 else np.zeros(details[wx_idx]["shape"][0], np.int64)
        gates[name] = TFLiteGate(interp.get_tensor(wx_idx), interp.get_tensor(wh_idx), bias, *mx, *mh)

    if kernel == "micro":
        # TFLite Micro (unidirectional_sequence_lstm.cc) writes the gate-output scale as the
        # float32 literal 0.00003051757, a few ULP below 2**-15, and forms each product scale
        # in double: its multipliers are 2147483136 * 2**-46 for f * c, not 2**30 * 2**-45.
        nl = float(f32(_MICRO_GATE_OUTPUT_SCALE))
        fm, fs = quantize_multiplier_tflite(nl * c_scale / c_scale)
        im, is_ = quantize_multiplier_tflite(nl * nl / c_scale)
        om, os_ = quantize_multiplier_tflite(nl * nl / h_scale)
        hid_zp = h_zp
    else:
        # Desktop TFLite (lstm.cc): exact powers of two; f * c and i * g are rounded shifts
        # (the multipliers below are only informative). The hidden value is requantized to
        # the op's 5th intermediate ("effective hidden scale") when the model has one, which
        # the converter may calibrate to another scale than the output's.
        fm, fs = quantize_multiplier_tflite(2.0 ** -15)
        im, is_ = quantize_multiplier_tflite(2.0 ** -15 * 2.0 ** -15 / 2.0 ** p)
        hid_scale, hid_zp = _effective_hidden(op, details, h_scale, h_zp)
        om, os_ = quantize_multiplier_tflite(2.0 ** -15 / float(f32(hid_scale)) * 2.0 ** -15)
    cell_clip = float(getattr(options, "cellClip", 0.0) or 0.0)
    clip_q = 0 if cell_clip <= 0 else int(min(max(cell_clip / c_scale, -32768.0), 32767.0))
    params = TFLiteLSTMParams(
        gates["input"], gates["forget"], gates["cell"], gates["output"],
        input_zero_point=x_zp, output_zero_point=h_zp, hidden_zero_point=hid_zp, cell_scale_power=p,
        forget_cell_multiplier=fm, forget_cell_shift=fs, input_cell_multiplier=im, input_cell_shift=is_,
        output_multiplier=om, output_shift=os_, cell_clip=clip_q, activation_bits=bits,
        input_scale=x_scale, output_scale=y_scale, kernel=kernel)
    time_major = bool(getattr(options, "timeMajor", False))
    log.info("read %s (op %d): I=%d H=%d, int%d activations, cell 2**%d, time_major=%s", _OP, op_index,
             params.input_size, params.hidden_size, bits, p, time_major)
    return TFLiteLSTMModel(params, time_major, inputs[_INPUT], y_index,
                           tuple(int(v) for v in details[inputs[_INPUT]]["shape"]),
                           tuple(int(v) for v in details[y_index]["shape"]), op_index,
                           tuple(op_name(o) for o in graph.operators))
