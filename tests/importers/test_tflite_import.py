"""A TFLite-quantized Keras LSTM, read with lstmlite.importers.tflite and run in our
TFLite-compatible mode, gives the LiteRT interpreter's integers exactly (the oracle here
is LiteRT itself): with kernel='lite', in the NumPy reference and in C, including
batches, state carried across invocations, and inputs far outside the calibration range
that drive the gates, the cell state and the output into saturation.

Models come from tf_keras (Keras 2; Keras 3 converts its LSTM to a WHILE loop, not the
fused op) converted with full-integer int8 quantization.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

# The dev extra installs TensorFlow and LiteRT, and `make install` tf_keras (without its
# dependency on the full tensorflow wheel): a missing one fails here, never skips.
import importlib.util as _util  # noqa: E402

_MISSING = [m for m in ("tensorflow", "tf_keras", "ai_edge_litert") if _util.find_spec(m) is None]
if _MISSING:
    raise ImportError(f"TFLite import tests need {', '.join(_MISSING)}: run `make install`")

from lstmlite.importers.tflite import quantize_multiplier_tflite, read_tflite_lstm  # noqa: E402
from lstmlite.reference.tflite_int import tflite_lstm_sequence  # noqa: E402
from lstmlite.runtime import TFLiteLSTM  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# name: (T, I, H, B, weight gain, bias, calibration input scale)
MODELS = {
    "small": (5, 4, 6, 1, 1.0, 0.0, 1.0),
    "batch": (8, 3, 10, 3, 1.0, 0.0, 1.0),
    # big weights calibrated on tiny inputs, run on full-range inputs, and gate biases that
    # make the cell grow every step past its int16 range: the output and cell clamps are hit
    "saturating": (40, 4, 8, 1, 4.0, 8.0, 0.05),
}


def _convert(T: int, I: int, H: int, B: int, gain: float, bias: float, calib: float, seed: int = 0) -> bytes:
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    model = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(T, I), batch_size=B),
                                 tf_keras.layers.LSTM(H, return_sequences=True)])
    layer = model.layers[-1]
    kernel, recurrent, b = layer.get_weights()
    layer.set_weights([kernel * gain, recurrent * gain, b + bias])
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(40):
            yield [(calib * rng.normal(size=(B, T, I))).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    return {name: _convert(*spec) for name, spec in MODELS.items()}


def _litert(content: bytes):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=content)
    interp.allocate_tensors()
    return interp, interp.get_input_details()[0], interp.get_output_details()[0]


@pytest.mark.parametrize("name", list(MODELS))
def test_equal_to_litert(models, name):
    content = models[name]
    model = read_tflite_lstm(content, kernel="lite")
    p = model.params
    assert (p.input_size, p.hidden_size) == MODELS[name][1:3] and not model.time_major
    assert model.input_shape == (MODELS[name][3], MODELS[name][0], MODELS[name][1])
    interp, inp, out = _litert(content)
    rng = np.random.default_rng(1)
    engine = TFLiteLSTM(p)
    saturated_out = saturated_cell = 0
    for _ in range(25):
        x = rng.integers(-128, 128, inp["shape"]).astype(np.int8)
        interp.reset_all_variables()
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        want = interp.get_tensor(out["index"])
        ref, state = tflite_lstm_sequence(p, x)
        np.testing.assert_array_equal(ref, want)
        engine.reset()
        np.testing.assert_array_equal(engine.run(x), want)
        saturated_out += int(np.count_nonzero((want == -128) | (want == 127)))
        saturated_cell += int(np.count_nonzero(np.abs(state.cell) >= (p.cell_clip or 32767)))
    if name == "saturating":  # the clamps were exercised, so LiteRT checked them too
        assert saturated_out > 0 and saturated_cell > 0


def test_state_carries_across_invocations_as_in_litert(models):
    """LiteRT keeps its variable tensors between invoke() calls; so does TFLiteLSTM."""
    content = models["batch"]
    p = read_tflite_lstm(content, kernel="lite").params
    interp, inp, out = _litert(content)
    interp.reset_all_variables()
    engine = TFLiteLSTM(p)
    rng = np.random.default_rng(2)
    for _ in range(4):
        x = rng.integers(-128, 128, inp["shape"]).astype(np.int8)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        np.testing.assert_array_equal(engine.run(x), interp.get_tensor(out["index"]))


def test_micro_kernel_is_within_a_few_lsb_of_litert(models):
    """kernel='micro' (TFLite Micro's arithmetic) differs from desktop LiteRT only by last-bit
    differences of the activations; measured here so the gap stays documented."""
    content = models["small"]
    micro = read_tflite_lstm(content).params
    interp, inp, out = _litert(content)
    rng = np.random.default_rng(3)
    diffs = []
    for _ in range(25):
        x = rng.integers(-128, 128, inp["shape"]).astype(np.int8)
        interp.reset_all_variables()
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        diffs.append(tflite_lstm_sequence(micro, x)[0].astype(int) - interp.get_tensor(out["index"]))
    d = np.abs(np.concatenate([v.reshape(-1) for v in diffs]))
    assert d.max() <= 3 and d.mean() < 0.1


def test_params_read_from_the_model(models):
    model = read_tflite_lstm(models["small"])
    p = model.params
    assert p.kernel == "micro" and p.activation_bits == 8
    # TFLite Micro's float32 literal for 2**-15 makes its f * c multiplier slightly below 2**-15
    assert (p.forget_cell_multiplier, p.forget_cell_shift) == (2147483136, -15)
    nl = float(np.float32(0.00003051757))
    assert (p.input_cell_multiplier, p.input_cell_shift) == quantize_multiplier_tflite(nl * nl / 2.0 ** p.cell_scale_power)
    lite = read_tflite_lstm(models["small"], kernel="lite").params
    assert (lite.forget_cell_multiplier, lite.forget_cell_shift) == (1 << 30, -14)
    assert p.input_scale is not None and p.output_scale is not None
    assert replace(p, kernel="lite").kernel == "lite"


def test_refuses_models_without_the_fused_op(tmp_path):
    import tensorflow as tf
    import tf_keras  # tf.keras may be Keras 3, whose models this converter call rejects

    dense = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(4,), batch_size=1),
                                 tf_keras.layers.Dense(2)])
    content = tf.lite.TFLiteConverter.from_keras_model(dense).convert()
    with pytest.raises(ValueError, match="UNIDIRECTIONAL_SEQUENCE_LSTM"):
        read_tflite_lstm(content)


def test_stacked_lstms_are_refused_naming_the_file_and_how_to_read_one(tmp_path):
    """A converted two-layer tf_keras LSTM holds two fused ops: reading it without op_index is
    refused naming the file, where the ops are and the call that reads one (a `lstmlite export`
    user has no op_index option, which the message told them to pass); op_index=1 reads the
    second layer (6 -> 4). Catches the old 'found 2; pass op_index' line."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(5, 3), batch_size=1),
                                 tf_keras.layers.LSTM(6, return_sequences=True),
                                 tf_keras.layers.LSTM(4, return_sequences=True)])
    rng = np.random.default_rng(0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.normal(size=(1, 5, 3)).astype(np.float32)] for _ in range(20))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    path = tmp_path / "two.tflite"
    path.write_bytes(conv.convert())
    with pytest.raises(ValueError, match=rf"^{path}: holds 2 UNIDIRECTIONAL_SEQUENCE_LSTM operators \(at 0, 1: "
                                         r"stacked layers\).*read_tflite_lstm\(path, op_index=K\)"):
        read_tflite_lstm(path)
    second = read_tflite_lstm(path, op_index=1)
    assert (second.params.input_size, second.params.hidden_size) == (6, 4)


def _with_lstm_output_quantization(content: bytes, scale_factor: float, zero_point_shift: int) -> bytes:
    """The .tflite bytes again, with the LSTM op's output tensor's scale multiplied and its
    zero point shifted (a model whose output and output state differ, as a projection would
    make them; the converter never writes one for a plain LSTM)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    fb = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    graph = fb.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def name(op) -> str:
        code = fb.operatorCodes[op.opcodeIndex]
        return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")

    (lstm,) = [op for op in graph.operators if name(op) == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    q = graph.tensors[lstm.outputs[0]].quantization
    q.scale = [float(q.scale[0]) * scale_factor]
    q.zeroPoint = [int(q.zeroPoint[0]) + zero_point_shift]
    builder = flatbuffers.Builder(0)
    builder.Finish(fb.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.parametrize("scale_factor, zero_point_shift", [(2.0, 0), (1.0, 3)])
def test_refuses_an_output_quantized_unlike_the_output_state(models, scale_factor, zero_point_shift):
    # the same bytes packed again unchanged still read, so the refusal is the patch's
    read_tflite_lstm(_with_lstm_output_quantization(models["small"], 1.0, 0))
    patched = _with_lstm_output_quantization(models["small"], scale_factor, zero_point_shift)
    with pytest.raises(ValueError, match="output and output-state tensors have different quantization"):
        read_tflite_lstm(patched)


def test_refuses_a_cell_state_that_is_not_int16(models):
    """TFLite's integer LSTM keeps its cell state in int16 (the 8x8_16 kernel this reader's
    parameters reproduce); a file whose cell-state tensor is int8 is refused, not read with
    int16 arithmetic (catches the type check widened)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    fb = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(models["small"], 0))
    graph = fb.subgraphs[0]
    (lstm,) = [op for op in graph.operators
               if isinstance(op.builtinOptions, schema.UnidirectionalSequenceLSTMOptionsT)]
    assert graph.tensors[lstm.inputs[19]].type == schema.TensorType.INT16  # operand 19: the cell state
    graph.tensors[lstm.inputs[19]].type = schema.TensorType.INT8
    builder = flatbuffers.Builder(0)
    builder.Finish(fb.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(ValueError, match="the cell state must be int16"):
        read_tflite_lstm(bytes(builder.Output()))


def test_quantize_multiplier_edges_follow_tflite_quantize_multiplier():
    """TFLite's QuantizeMultiplier worked by hand at its edges: the Q0.31 mantissa is rounded
    with std::round (a tie goes away from zero: 0.5 + 2**-32 is 2**30 + 0.5 in Q0.31 -> 2**30 + 1,
    also for the negative), a mantissa rounding up to 2**31 is halved with the shift raised
    (1 - 2**-40 -> (2**30, 1)), and a shift below -31 flushes to (0, 0) (2**-33) while -31 is kept
    (2**-32); catches half-even rounding, the shift not raised, and the flush bound moved."""
    assert quantize_multiplier_tflite(0.5 + 2.0 ** -32) == (2 ** 30 + 1, 0)
    assert quantize_multiplier_tflite(-(0.5 + 2.0 ** -32)) == (-(2 ** 30 + 1), 0)
    assert quantize_multiplier_tflite(1.0 - 2.0 ** -40) == (2 ** 30, 1)
    assert quantize_multiplier_tflite(2.0 ** -32) == (2 ** 30, -31)
    assert quantize_multiplier_tflite(2.0 ** -33) == (0, 0)


def _with_lstm_options(content: bytes, swap_time_axes: bool = False, **options) -> bytes:
    """The .tflite bytes again with the LSTM op's options set (flatbuffer field names, e.g.
    fusedActivationFunction=1 for RELU); with ``swap_time_axes`` the op's input and output
    shapes swap their first two axes, as a time-major model holds them. The converter
    segfaults on Keras LSTMs with such options, so the converted file is edited instead."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    fb = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    graph = fb.subgraphs[0]
    (lstm,) = [op for op in graph.operators
               if isinstance(op.builtinOptions, schema.UnidirectionalSequenceLSTMOptionsT)]
    for key, value in options.items():
        assert hasattr(lstm.builtinOptions, key), key
        setattr(lstm.builtinOptions, key, value)
    if swap_time_axes:
        for t in (lstm.inputs[0], lstm.outputs[0]):
            for attr in ("shape", "shapeSignature"):
                s = getattr(graph.tensors[t], attr)
                if s is not None and len(s) == 3:
                    setattr(graph.tensors[t], attr, np.array([s[1], s[0], s[2]], np.int32))
    builder = flatbuffers.Builder(0)
    builder.Finish(fb.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _litert_once(content: bytes, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    interp, inp, out = _litert(content)
    x = np.random.default_rng(seed).integers(-128, 128, inp["shape"]).astype(np.int8)
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return x, interp.get_tensor(out["index"])


@pytest.mark.parametrize("activation, name", [(1, "RELU"), (0, "NONE"), (3, "RELU6"), (5, "SIGN_BIT")])
def test_refuses_a_fused_activation_other_than_tanh(models, activation, name):
    """An LSTM whose fused activation is RELU read as tanh before (LiteRT ignores the option
    in its integer kernel, TFLite Micro passes it to the cell gate): refused in one line
    naming the option and its value. TANH (4, the converter's) packed again still reads."""
    read_tflite_lstm(_with_lstm_options(models["small"], fusedActivationFunction=4))
    with pytest.raises(ValueError, match=rf"^the \.tflite bytes: the LSTM's fused_activation_function is {name}; "
                                         r"only TANH \(TFLite's default.*\)[^\n]*$"):
        read_tflite_lstm(_with_lstm_options(models["small"], fusedActivationFunction=activation))


def test_refuses_diagonal_recurrent_tensors(models):
    with pytest.raises(ValueError, match="diagonal_recurrent_tensors is True"):
        read_tflite_lstm(_with_lstm_options(models["small"], diagonalRecurrentTensors=True))


@pytest.mark.parametrize("option, field", [("cell_clip", "cellClip"), ("proj_clip", "projClip")])
def test_refuses_a_negative_clip_as_tflite_does(models, option, field):
    """LiteRT's Prepare fails on cell_clip or proj_clip below 0; the reader read -1 as no clip."""
    content = _with_lstm_options(models["small"], **{field: -1.0})
    with pytest.raises(RuntimeError, match=f"{option} >= 0"):
        _litert(content)
    with pytest.raises(ValueError, match=rf"the LSTM's {option} is -1\.0; TFLite requires {option} >= 0"):
        read_tflite_lstm(content)


@pytest.mark.parametrize("options", [{"cellClip": 0.05}, {"projClip": 0.5},
                                     {"asymmetricQuantizeInputs": True}])
def test_options_that_change_or_keep_the_integers_are_honoured_as_litert(models, options):
    """cell_clip (tight: LiteRT's output differs from the converter's clip of 10) is applied,
    proj_clip (no projection) and asymmetric_quantize_inputs (hybrid kernels only) change nothing:
    in each case the reader's layer gives LiteRT's integers. Catches the clip ignored or
    quantized without the cell scale."""
    content = _with_lstm_options(models["saturating"], **options)
    x, want = _litert_once(content)
    if options.get("cellClip") == 0.05:
        assert not np.array_equal(want, _litert_once(models["saturating"])[1])  # the clip bites
    model = read_tflite_lstm(content, kernel="lite")
    np.testing.assert_array_equal(tflite_lstm_sequence(model.params, x)[0], want)


def test_time_major_models_are_read_time_major_as_litert(models):
    """A time-major op (input (T, B, I)) is reported time_major and, run so, gives LiteRT's
    integers; read batch-major the same codes give other numbers."""
    content = _with_lstm_options(models["batch"], swap_time_axes=True, timeMajor=True)
    x, want = _litert_once(content)
    model = read_tflite_lstm(content, kernel="lite")
    assert model.time_major and model.input_shape == (8, 3, 3)
    np.testing.assert_array_equal(tflite_lstm_sequence(model.params, x, time_major=True)[0], want)
    np.testing.assert_array_equal(TFLiteLSTM(model.params, model.time_major).run(x), want)
    assert not np.array_equal(tflite_lstm_sequence(model.params, x)[0], want)
