"""Read .tflite LSTM models: float32 ones as lstmlite models, integer ones as TFLite's own layer.

* :func:`import_tflite` — a float32 file (``tf_keras`` LSTMs converted without quantization:
  fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` ops, an optional embedding ``GATHER`` before them and
  a ``FULLY_CONNECTED`` head after) → our task model, checked against LiteRT, as
  :func:`~lstmlite.importers.onnx.import_onnx` does for ONNX graphs (docs/interop.md).
* :func:`read_tflite_lstm` — a TFLite-quantized LSTM →
  :class:`~lstmlite.reference.tflite_int.TFLiteLSTMParams`, described below.

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
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import nn

from .._text import one_line
from ..reference.tflite_int import GATES, TFLiteGate, TFLiteLSTMParams
from ._common import (ModelImportError, apply_output_activation, assemble_model, check_error, per_step_kind,
                      refuse_other_format, save_imported)
from .gates import TFLITE_LSTM, TORCH_LSTM, reorder_gates

__all__ = ["TFLiteLSTMModel", "read_tflite_lstm", "quantize_multiplier_tflite", "import_tflite",
           "is_float_tflite_lstm"]

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


def _variant_error(inputs: list[int]) -> str | None:
    """Why an LSTM op with these operands (``-1``: absent) is a variant lstmlite does not compute:
    CIFG (no input gate), peephole, projection or layer norm; None for the plain LSTM."""

    def absent(pos: int) -> bool:
        return pos >= len(inputs) or inputs[pos] < 0

    if absent(_W_X[0]) or absent(_W_H[0]):
        return "CIFG LSTMs (no input gate) are not supported"
    for what, positions in (("peephole", _PEEPHOLE), ("projection", (_PROJ_W, _PROJ_B)), ("layer norm", _LAYER_NORM)):
        if not all(absent(p) for p in positions):
            return f"{what} LSTMs are not supported"
    return None


def _effective_hidden(op: Any, details: dict, scale: float, zero_point: int) -> tuple[float, int]:
    """Scale and zero point of the op's intermediate 4 (effective hidden scale), if quantized."""
    intermediates = [int(v) for v in (op.intermediates if op.intermediates is not None else [])]
    if len(intermediates) == 5:
        q = details[intermediates[4]]["quantization_parameters"]
        if len(q["scales"]) == 1 and q["scales"][0] > 0:
            return float(q["scales"][0]), int(q["zero_points"][0])
    return scale, zero_point


class _OtherFormat(Exception):
    """Bytes of another known format (an .lsl file, a Keras HDF5 file) given as a .tflite model."""


def _read_flatbuffer(model: str | Path | bytes) -> tuple[bytes, str, Any, Any, Callable[[Any], str]]:
    """A .tflite file (or its bytes) → (content, where, schema module, ModelT, op → builtin name).

    A missing file is a ``FileNotFoundError``; bytes that are no TFLite flatbuffer one
    ``ValueError`` line naming the file.
    """
    where = "the .tflite bytes" if isinstance(model, (bytes, bytearray)) else str(model)
    if not isinstance(model, (bytes, bytearray)) and not Path(model).is_file():
        raise FileNotFoundError(f"{model}: no such file; check the path")
    content = bytes(model) if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    schema = _schema()
    try:
        if len(content) < 8 or content[4:8] != b"TFL3":
            refuse_other_format(where, "TFLite", head=content[:16], error=_OtherFormat)
            raise ValueError("no TFL3 identifier")
        fb = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    except _OtherFormat as err:
        raise ValueError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - the flatbuffer reader raises struct errors on corrupt bytes
        raise ValueError(f"{where}: not a readable .tflite model, truncated or corrupt ({err}); "
                         f"re-convert it with the TFLite converter") from None
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def op_name(op: Any) -> str:
        code = fb.operatorCodes[op.opcodeIndex]
        return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")

    return content, where, schema, fb, op_name


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
    content, where, schema, fb, op_name = _read_flatbuffer(model)
    graph = fb.subgraphs[0]
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

    variant = _variant_error(inputs)
    if variant:
        raise ValueError(variant)

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

    in_dtype = qparams(inputs[_INPUT])[2]
    if in_dtype not in (np.int8, np.int16):
        command = f"lstmlite import tflite {'FILE' if isinstance(model, (bytes, bytearray)) else where} --out RUN"
        raise ValueError(f"{where}: the LSTM's input is {np.dtype(in_dtype).name}: not an integer LSTM (a float32 "
                         f"model imports as an lstmlite model: import_tflite, `{command}`); for "
                         "TFLite's integer arithmetic convert with full-integer quantization and a representative "
                         "dataset")
    x_scale, x_zp = single(inputs[_INPUT], "input")
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


# ----- float models: import_tflite ------------------------------------------------------------
_BIDI_OP = "BIDIRECTIONAL_SEQUENCE_LSTM"
#: ops that only carry the model input to the first LSTM (followed, not interpreted)
_INPUT_LAYOUT_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}
#: ops between the last LSTM and the head that say how it pools the steps
_POOLING_OPS = {"MEAN": "mean", "REDUCE_MAX": "max", "STRIDED_SLICE": "last", "SLICE": "last", "GATHER": "last"}
#: ops that may follow the head on the way to the model output
_OUTPUT_OPS = {"SOFTMAX": "softmax", "LOG_SOFTMAX": "log_softmax", "LOGISTIC": "sigmoid", "RESHAPE": None,
               "SQUEEZE": None}
_NUMPY_TYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT32": np.int32,
                "INT64": np.int64, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16}


class _Flat:
    """Subgraph 0 of a .tflite model: operator names, tensor producers and consumers, constants."""

    def __init__(self, content: bytes, schema: Any, fb: Any, op_name: Callable[[Any], str]) -> None:
        self.content, self.schema, self.fb = content, schema, fb
        self.graph = fb.subgraphs[0]
        self.names = [op_name(op) for op in self.graph.operators]
        self.producer: dict[int, int] = {}
        self.consumers: dict[int, list[int]] = {}
        for k, op in enumerate(self.graph.operators):
            for t in op.outputs:
                self.producer[int(t)] = k
            for t in self.inputs_of(k):
                if t >= 0:
                    self.consumers.setdefault(t, []).append(k)
        self.inputs = [int(t) for t in self.graph.inputs]
        self.outputs = [int(t) for t in self.graph.outputs]
        self._types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

    def inputs_of(self, k: int) -> list[int]:
        op = self.graph.operators[k]
        return [int(t) for t in (op.inputs if op.inputs is not None else [])]

    def options(self, k: int) -> Any:
        return self.graph.operators[k].builtinOptions

    def type_name(self, t: int) -> str:
        return self._types.get(self.graph.tensors[t].type, "?")

    def const(self, t: int) -> np.ndarray | None:
        """A constant tensor's value (a float16 constant behind a DEQUANTIZE: as float32), else None."""
        if t < 0:
            return None
        tensor = self.graph.tensors[t]
        buffer = self.fb.buffers[tensor.buffer] if tensor.buffer < len(self.fb.buffers) else None
        data = None
        if buffer is not None and buffer.data is not None and len(buffer.data):
            data = np.asarray(buffer.data, np.uint8).tobytes()
        elif buffer is not None and getattr(buffer, "offset", 0) > 1 and getattr(buffer, "size", 0):
            data = self.content[buffer.offset: buffer.offset + buffer.size]  # a model written past 2 GB
        if data is None:
            k = self.producer.get(t)
            if k is not None and self.names[k] == "DEQUANTIZE" and self.type_name(self.inputs_of(k)[0]) == "FLOAT16":
                value = self.const(self.inputs_of(k)[0])
                return None if value is None else value.astype(np.float32)
            return None
        dtype = _NUMPY_TYPES.get(self.type_name(t))
        if dtype is None:
            return None
        shape = [int(d) for d in (tensor.shape if tensor.shape is not None else [])]
        return np.frombuffer(data, dtype).reshape(shape).copy()

    def reach(self, t: int) -> tuple[set[int], list[int]]:
        """LSTM ops reached backwards from tensor ``t`` through other ops, and those other ops."""
        lstms: set[int] = set()
        passed: list[int] = []
        stack, seen = [t], set()
        while stack:
            current = stack.pop()
            if current < 0 or current in seen:
                continue
            seen.add(current)
            k = self.producer.get(current)
            if k is None:
                continue
            if self.names[k] == _OP:
                lstms.add(k)
                continue
            if k not in passed:
                passed.append(k)
            stack.extend(self.inputs_of(k))
        return lstms, passed


@dataclass
class _FloatLayer:
    """One recurrent layer of the file: its forward op and, for a Bidirectional layer, its backward op."""

    source: int  # the tensor both directions read (the backward one through REVERSE_V2)
    forward: int | None = None
    backward: int | None = None

    @property
    def ops(self) -> set[int]:
        return {k for k in (self.forward, self.backward) if k is not None}


@dataclass
class _FloatRecognised:
    """What :func:`import_tflite` found: the parts of a task model and where the file keeps them."""

    layers: list[_FloatLayer]
    directions: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]  # op → torch-layout tensors
    input_index: int
    embedding: np.ndarray | None
    kind: str
    pooling: str
    output_index: int
    head_weight: np.ndarray | None = None
    head_bias: np.ndarray | None = None
    output_activation: str | None = None
    cell_clip: float = 0.0
    weights: str = "float32"


def _float_direction(g: _Flat, k: int, where: str) -> tuple[tuple[np.ndarray, ...], float, str]:
    """One float UNIDIRECTIONAL_SEQUENCE_LSTM → (PyTorch (w_ih, w_hh, b_ih, b_hh), cell clip, weight dtype).

    Refuses, one line each, what the op computes and our LSTM does not.
    """
    inputs = g.inputs_of(k)
    label = f"{where}: operator {k} ({_OP})"
    x_type = g.type_name(inputs[_INPUT])
    weight_types = {g.type_name(inputs[p]) for p in _W_X + _W_H if p < len(inputs) and inputs[p] >= 0}
    if x_type in ("INT8", "INT16", "UINT8"):
        raise ModelImportError(f"{label} is a full-integer ({x_type.lower()}) LSTM: it computes TFLite's integer "
                               "arithmetic, which no float model reproduces; export it as it is with `lstmlite export "
                               "FILE --format c --form tflite` (read_tflite_lstm), or import the float32 conversion")
    if weight_types & {"INT8", "UINT8", "INT4"}:
        raise ModelImportError(f"{label} is a dynamic-range (hybrid) quantized LSTM: int8 weights with float "
                               "activations (Optimize.DEFAULT without a representative dataset), computed by "
                               "TFLite's hybrid kernel; convert without optimizations (float32, or float16 weights) "
                               "to import it")
    if x_type != "FLOAT32":
        raise ModelImportError(f"{label} takes {x_type.lower()} input; lstmlite imports float32 LSTMs")
    variant = _variant_error(inputs)
    if variant:
        raise ModelImportError(f"{label}: {variant} (lstmlite's LSTM has none of these terms; a Keras LSTM "
                               "converts to the plain form)")
    options = g.options(k)
    try:
        _check_options(options, g.schema, label)
    except ValueError as err:
        raise ModelImportError(str(err)) from None
    if getattr(options, "timeMajor", False):
        raise ModelImportError(f"{label} is time-major (time_major=True); lstmlite imports batch-major LSTMs, as "
                               "the converter writes a Keras LSTM")
    cell_clip = float(getattr(options, "cellClip", 0.0) or 0.0)

    def gate_stack(positions: tuple[int, ...], what: str) -> np.ndarray:
        blocks = [g.const(inputs[p]) for p in positions]
        if any(b is None for b in blocks):
            raise ModelImportError(f"{label}: its {what} weights are not constant tensors")
        return reorder_gates(np.concatenate([b.astype(np.float32) for b in blocks]), TFLITE_LSTM, TORCH_LSTM)

    w_ih, w_hh = gate_stack(_W_X, "input"), gate_stack(_W_H, "recurrent")  # (4H, I), (4H, H)
    hidden = w_hh.shape[1]
    biases = []
    for p in _BIAS:
        b = g.const(inputs[p]) if p < len(inputs) and inputs[p] >= 0 else np.zeros(hidden, np.float32)
        if b is None:
            raise ModelImportError(f"{label}: a gate bias is not a constant tensor")
        biases.append(b.astype(np.float32).reshape(hidden))
    b_ih = reorder_gates(np.concatenate(biases), TFLITE_LSTM, TORCH_LSTM)
    # TFLite has one bias per gate, PyTorch two that add up: all of it goes to bias_ih.
    stored = "float16" if any(g.producer.get(inputs[p]) is not None for p in _W_X + _W_H) else "float32"
    return (w_ih, w_hh, b_ih, np.zeros_like(b_ih)), cell_clip, stored


def _float_layers(g: _Flat, where: str) -> list[_FloatLayer]:
    """Group the LSTM ops into layers (a backward direction reads its input through REVERSE_V2),
    in order, each reading the one before."""
    layers: dict[int, _FloatLayer] = {}
    for k, name in enumerate(g.names):
        if name != _OP:
            continue
        x = g.inputs_of(k)[_INPUT]
        producer = g.producer.get(x)
        backward = producer is not None and g.names[producer] == "REVERSE_V2"
        if backward:
            axis = g.const(g.inputs_of(producer)[1])
            if axis is None or [int(a) for a in axis.ravel()] not in ([1], [-2]):
                raise ModelImportError(f"{where}: operator {producer} (REVERSE_V2) before LSTM operator {k} does not "
                                       "reverse the time axis")
            x = g.inputs_of(producer)[0]
        layer = layers.setdefault(x, _FloatLayer(x))
        if (layer.backward if backward else layer.forward) is not None:
            raise ModelImportError(f"{where}: two LSTM operators read the same input the same way; lstmlite imports "
                                   "a simple stack (Bidirectional: one forward, one reversed)")
        if backward:
            layer.backward = k
        else:
            layer.forward = k
    ordered = sorted(layers.values(), key=lambda layer: min(layer.ops))
    for layer in ordered:
        if layer.forward is None:
            raise ModelImportError(f"{where}: LSTM operator {layer.backward} reads its input reversed with no forward "
                                   "twin (go_backwards outside Bidirectional), which lstmlite does not import")
    for before, layer in zip(ordered, ordered[1:]):
        _check_reads(g, layer.source, before, where, f"LSTM operator {layer.forward}")
    return ordered


def _check_reads(g: _Flat, t: int, layer: _FloatLayer, where: str, reader: str) -> list[int]:
    """Check tensor ``t`` is computed from ``layer``'s outputs (both directions concatenated,
    forward first); returns the ops in between."""
    reached, passed = g.reach(t)
    if reached != layer.ops:
        raise ModelImportError(f"{where}: {reader} does not read the LSTM layer before it (operator "
                               f"{layer.forward}); lstmlite imports a simple stack")
    if layer.backward is not None:
        concats = [k for k in passed if g.names[k] == "CONCATENATION"]
        if not concats:
            merged = sorted({g.names[k] for k in passed})
            raise ModelImportError(f"{where}: {reader} reads the two directions of a Bidirectional layer merged "
                                   f"by {', '.join(merged) or 'nothing'}, not concatenated; only merge_mode='concat' "
                                   "maps onto lstmlite's bidirectional layers")
        parts = [g.reach(t_in)[0] for t_in in g.inputs_of(concats[0])]
        if [layer.forward] != sorted(parts[0]) or [layer.backward] != sorted(parts[-1]):
            raise ModelImportError(f"{where}: the CONCATENATION (operator {concats[0]}) does not put the forward "
                                   "direction first; lstmlite's bidirectional layers concatenate forward, backward")
    return passed


def _trace_float_input(g: _Flat, t: int, where: str) -> tuple[int, np.ndarray | None]:
    """Follow the first LSTM's input back to the model input; returns (input tensor, embedding table)."""
    embedding = None
    while t not in g.inputs:
        k = g.producer.get(t)
        if k is None:
            raise ModelImportError(f"{where}: the first LSTM's input is not computed from the model's input")
        name, inputs = g.names[k], g.inputs_of(k)
        table = g.const(inputs[0]) if name == "GATHER" and embedding is None else None
        if table is not None:
            if table.ndim != 2 or int(getattr(g.options(k), "axis", 0)) != 0 or table.dtype.kind != "f":
                raise ModelImportError(f"{where}: the GATHER (operator {k}) before the LSTM is not an embedding "
                                       "lookup (a float (V, E) table, axis 0)")
            embedding, t = table.astype(np.float32), inputs[1]
            continue
        if name not in _INPUT_LAYOUT_OPS:
            raise ModelImportError(f"{where}: {name} (operator {k}) before the first LSTM is not supported; lstmlite "
                                   "imports [embedding (GATHER) →] LSTM layers → [one Dense head]")
        t = inputs[0]
    return t, embedding


def _pooling(g: _Flat, passed: list[int]) -> str:
    found = {_POOLING_OPS[g.names[k]] for k in passed if g.names[k] in _POOLING_OPS}
    if len(found) > 1:
        raise ModelImportError(f"the ops after the last LSTM pool its steps in several ways ({sorted(found)})")
    return found.pop() if found else "none"


def _recognise_float(g: _Flat, kind: str | None, where: str) -> _FloatRecognised:
    if any(name == _BIDI_OP for name in g.names):
        raise ModelImportError(f"{where}: holds a {_BIDI_OP} operator, which lstmlite does not import; the TFLite "
                               f"converter writes a Keras Bidirectional LSTM as two {_OP} operators, which import")
    if _OP not in g.names:
        hint = (" (its recurrence is a WHILE loop: Keras 3 converts an LSTM so; convert a tf_keras (Keras 2) "
                "model, whose LSTM becomes the fused op)") if "WHILE" in g.names else ""
        raise ModelImportError(f"{where}: has no {_OP} operator{hint}")
    if len(g.inputs) != 1:
        raise ModelImportError(f"{where}: the model has {len(g.inputs)} inputs; lstmlite imports models with one "
                               "(the sequence)")
    layers = _float_layers(g, where)
    directions, clips, stored = {}, set(), set()
    for layer in layers:
        for k in layer.ops:
            directions[k], clip, weights = _float_direction(g, k, where)
            clips.add(clip)
            stored.add(weights)
    input_index, embedding = _trace_float_input(g, layers[0].source, where)
    if embedding is None and g.type_name(input_index) != "FLOAT32":
        raise ModelImportError(f"{where}: the model input is {g.type_name(input_index).lower()}; lstmlite imports "
                               "float32 features or integer token ids through an embedding")
    heads = [k for k, name in enumerate(g.names) if name == "FULLY_CONNECTED"]
    if len(heads) > 1:
        raise ModelImportError(f"{where}: holds {len(heads)} FULLY_CONNECTED operators; lstmlite imports one Dense "
                               "head after the LSTM layers")
    last = layers[-1]
    common = dict(layers=layers, directions=directions, input_index=input_index, embedding=embedding,
                  cell_clip=max(clips), weights="float16" if "float16" in stored else "float32")
    if not heads:
        if kind not in (None, "layer"):
            raise ModelImportError(f"{where}: kind={kind!r} needs an output layer, but no FULLY_CONNECTED follows "
                                   "the LSTM")
        outputs = [t for t in g.outputs if g.reach(t)[0] == last.ops]
        if len(outputs) != 1:
            raise ModelImportError(f"{where}: no single model output reads the last LSTM layer")
        passed = _check_reads(g, outputs[0], last, where, "the model output")
        return _FloatRecognised(**common, kind="layer", pooling=_pooling(g, passed), output_index=outputs[0])
    head = heads[0]
    if kind == "layer":
        raise ModelImportError(f"{where}: kind='layer' would drop the file's FULLY_CONNECTED head (operator {head}), "
                               "so the import would not compute what the file does; import the whole model (kind "
                               "unset) and use its .rnn")
    inputs = g.inputs_of(head)
    passed = _check_reads(g, inputs[0], last, where, f"the FULLY_CONNECTED (operator {head})")
    pooling = _pooling(g, passed)
    weight = g.const(inputs[1])
    if weight is None or weight.ndim != 2:
        raise ModelImportError(f"{where}: the FULLY_CONNECTED (operator {head}) has no constant 2-D weight")
    if weight.dtype.kind != "f":
        raise ModelImportError(f"{where}: the FULLY_CONNECTED (operator {head}) has {weight.dtype} weights: a "
                               "dynamic-range (hybrid) quantized head; convert without optimizations to import it")
    bias = g.const(inputs[2]) if len(inputs) > 2 and inputs[2] >= 0 else None
    if len(inputs) > 2 and inputs[2] >= 0 and bias is None:
        raise ModelImportError(f"{where}: the FULLY_CONNECTED (operator {head})'s bias is not constant")
    fused = getattr(g.options(head), "fusedActivationFunction", 0)
    if fused:
        names = {v: k for k, v in vars(g.schema.ActivationFunctionType).items() if not k.startswith("_")}
        raise ModelImportError(f"{where}: the FULLY_CONNECTED (operator {head}) applies {names.get(fused, fused)}; "
                               "lstmlite's head is linear (Dense with softmax, sigmoid or no activation)")
    activation, t = None, int(g.graph.operators[head].outputs[0])
    while t not in g.outputs:
        users = g.consumers.get(t, [])
        if len(users) != 1 or g.names[users[0]] not in _OUTPUT_OPS or (
                _OUTPUT_OPS[g.names[users[0]]] and activation is not None):
            what = "nothing" if not users else ", ".join(g.names[k] for k in users)
            raise ModelImportError(f"{where}: the head's result feeds {what}; lstmlite imports a Dense head with "
                                   "an optional softmax / sigmoid as the model's output")
        k = users[0]
        if g.names[k] == "SOFTMAX" and float(getattr(g.options(k), "beta", 1.0)) != 1.0:
            raise ModelImportError(f"{where}: the SOFTMAX (operator {k}) has beta={g.options(k).beta}; only 1 "
                                   "(a plain softmax) is supported")
        activation = activation or _OUTPUT_OPS[g.names[k]]
        t = int(g.graph.operators[k].outputs[0])
    out_features = weight.shape[0]
    bidirectional = last.backward is not None
    if kind is None:
        if pooling == "none":
            kind = per_step_kind(None if embedding is None else embedding.shape[0], out_features, bidirectional)
        else:
            kind = "forecaster" if out_features == 1 else "classifier"
    return _FloatRecognised(**common, kind=kind, pooling=pooling, output_index=t,
                            head_weight=np.ascontiguousarray(weight, np.float32),
                            head_bias=None if bias is None else bias.astype(np.float32).reshape(out_features),
                            output_activation=activation)


def _build_float(rec: _FloatRecognised) -> nn.Module:
    from .keras import _RecurrentSpec, _stack  # the same stacking as a Keras file's layers

    specs = []
    for layer in rec.layers:
        tensors = [rec.directions[k] for k in (layer.forward, layer.backward) if k is not None]
        specs.append(_RecurrentSpec("LSTM", ("LSTM", None, "tanh", len(tensors), True), int(tensors[0][1].shape[1]),
                                    tensors, True, True))
    input_size = int(rec.directions[rec.layers[0].forward][0].shape[1])
    rnn = _stack(specs, input_size)

    def tensor(value: np.ndarray | None) -> torch.Tensor | None:
        return None if value is None else torch.from_numpy(np.ascontiguousarray(value))

    return assemble_model(rnn, rec.kind, embedding=tensor(rec.embedding), head_weight=tensor(rec.head_weight),
                          head_bias=tensor(rec.head_bias), pooling=rec.pooling)


def _verify_float(content: bytes, rec: _FloatRecognised, model: nn.Module, rtol: float, atol: float) -> float:
    """Run the file in LiteRT and the imported model on the same random input; raise if they differ."""
    from ..nn.models import _final_features

    interp = _interpreter(content)
    rng = np.random.default_rng(0)
    try:
        interp.allocate_tensors()  # fresh: the LSTM's state variables start at zero
        detail = next(d for d in interp.get_input_details() if d["index"] == rec.input_index)
        shape = tuple(int(d) for d in detail["shape"])
        if rec.embedding is not None:
            x = rng.integers(0, rec.embedding.shape[0], size=shape)
        else:
            x = rng.standard_normal(shape)
        interp.set_tensor(rec.input_index, x.astype(detail["dtype"]))
        interp.invoke()
        expected = np.asarray(interp.get_tensor(rec.output_index), np.float64)
    except (RuntimeError, ValueError) as err:  # LiteRT's errors span lines: one, and the way on
        raise ModelImportError(f"LiteRT cannot run the .tflite model for the check ({one_line(err)}); skip the "
                               "check (verify=False, CLI --no-verify) to import it unchecked") from None
    xt = torch.from_numpy(x.astype(np.int64 if rec.embedding is not None else np.float32))
    with torch.no_grad():
        if rec.kind == "layer":
            out, state = model(xt)
            ours = {"last": lambda: _final_features(model, out, state, None), "mean": lambda: out.mean(1),
                    "max": lambda: out.amax(1), "none": lambda: out}[rec.pooling]()
        else:
            ours = apply_output_activation(model(xt)[0] if rec.kind == "lm" else model(xt), rec.output_activation)
    ours_np = ours.double().numpy()
    if expected.size != ours_np.size:
        raise ModelImportError(f"the .tflite model's output has shape {expected.shape}, the imported model gives "
                               f"{ours_np.shape}: the file does not have the structure lstmlite imports")
    expected = expected.reshape(ours_np.shape)
    error, agree = check_error(expected, ours_np, rtol, atol)
    if not agree:
        clip = (f"; where the cell state passes ±{rec.cell_clip:g} TFLite clips it and lstmlite's LSTM does "
                "not") if rec.cell_clip > 0 else ""
        raise ModelImportError(f"the imported model does not reproduce the .tflite model in LiteRT (max error "
                               f"{error:.3g} on a random input, pooling read as {rec.pooling!r}){clip}")
    return error


def is_float_tflite_lstm(model: str | Path | bytes) -> bool:
    """True when ``model`` (a .tflite path or its bytes) holds a fused LSTM with float32 input
    and float weights: a file :func:`import_tflite` takes (an int8 or hybrid one, an
    unreadable file or one without the op: False).

    Example:
        >>> is_float_tflite_lstm("lstm_float.tflite")      # doctest: +SKIP
        True
    """
    try:
        content, _, schema, fb, op_name = _read_flatbuffer(model)
    except (OSError, ValueError):
        return False
    g = _Flat(content, schema, fb, op_name)
    for k, name in enumerate(g.names):
        if name == _OP:
            inputs = g.inputs_of(k)
            weights = {g.type_name(inputs[p]) for p in _W_X + _W_H if p < len(inputs) and inputs[p] >= 0}
            return g.type_name(inputs[_INPUT]) == "FLOAT32" and weights <= {"FLOAT32", "FLOAT16"}
    return False


def import_tflite(
    source: str | Path | bytes,
    out: str | Path | None = None,
    *,
    kind: str | None = None,
    verify: bool = True,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    overwrite: bool = False,
) -> nn.Module:
    """Import a float32 .tflite LSTM model as an lstmlite model.

    The file must hold fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` operators (what the TFLite
    converter makes of a ``tf_keras`` LSTM; two of them around ``REVERSE_V2`` for a
    Bidirectional layer, one per stacked layer), optionally after an embedding lookup
    (``GATHER`` on a constant table) and before one Dense head (``FULLY_CONNECTED``,
    optional ``SOFTMAX`` / ``LOGISTIC``). TFLite's per-gate tensors (i, f, c, o, PyTorch's
    order) are stacked into our ``weight_ih`` / ``weight_hh``; the gate biases go to
    ``bias_ih`` (``bias_hh`` = 0). Float16 weights (a ``DEQUANTIZE`` of a float16 constant)
    are read exactly.

    Args:
        source: a ``.tflite`` path or its bytes.
        out: when given, also write the model as a run dir there (``overwrite``: replacing a
            run dir of ours already there).
        kind: ``classifier`` | ``lm`` | ``forecaster`` | ``tagger`` | ``layer``; default as
            :func:`~lstmlite.importers.onnx.import_onnx` reads a graph: a head on every step
            → ``lm`` when it predicts the embedding's vocabulary from a unidirectional
            layer, else ``tagger``; a pooled head (the last step: ``STRIDED_SLICE``;
            ``MEAN``; ``REDUCE_MAX``) with one output → ``forecaster``, else
            ``classifier``; no head → the bare layer.
        verify: run the file in the LiteRT interpreter (builtin kernels, fresh state) and
            the imported model on the same random input of the file's input shape and
            fail unless every element agrees within ``atol`` + ``rtol`` × |expected|.

    Returns:
        The model (eval mode, batch-first input, logits out); ``model.import_info``
        records ``source`` (``"tflite"``), ``file``, ``producer``, ``input_layout``,
        ``output_activation``, ``weights`` (``float32`` / ``float16``), ``cell_clip``
        (TFLite's clip of the cell state, which our LSTM does not apply; 10 for every
        converted Keras LSTM) and ``verified_max_error``.

    Raises:
        ModelImportError: one line naming what the file holds that lstmlite does not map:
            a full-integer or dynamic-range (hybrid) quantized LSTM, peephole, projection,
            layer norm, CIFG, a fused activation other than tanh, time-major or
            ``BIDIRECTIONAL_SEQUENCE_LSTM`` operators, a Keras 3 WHILE loop, other ops.

    Example:
        >>> model = import_tflite("sentiment.tflite", out="runs/sentiment")   # doctest: +SKIP
        >>> model.import_info["verified_max_error"] < 1e-5                     # doctest: +SKIP
        True
    """
    from ._common import ModelFileNotFoundError

    if out is not None:
        from ..io import check_out_dir

        check_out_dir(out, overwrite=overwrite)  # before the import's work, not after it
    try:
        content, where, schema, fb, op_name = _read_flatbuffer(source)
    except FileNotFoundError as err:
        raise ModelFileNotFoundError(str(err)) from None
    except ValueError as err:
        raise ModelImportError(str(err)) from None
    g = _Flat(content, schema, fb, op_name)
    rec = _recognise_float(g, kind, where)
    model = _build_float(rec)
    description = fb.description.decode() if isinstance(fb.description, bytes) else (fb.description or "")
    info: dict[str, Any] = {
        "source": "tflite",
        "file": None if isinstance(source, (bytes, bytearray)) else str(source),
        "producer": description.strip(),
        "input_layout": "batch_first",
        "output_activation": rec.output_activation,
        "weights": rec.weights,
    }
    if rec.cell_clip > 0:
        info["cell_clip"] = rec.cell_clip
        log.info("%s: TFLite clips the LSTM cell state at ±%g; the imported LSTM does not (the two agree while "
                 "|c| stays within it)", where, rec.cell_clip)
    if verify:
        info["verified_max_error"] = _verify_float(content, rec, model, rtol, atol)
    model.import_info = info
    if out is not None:
        save_imported(out, model, info, overwrite=overwrite)
    return model
