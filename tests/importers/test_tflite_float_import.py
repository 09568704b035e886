"""Float32 .tflite LSTM models, as the TFLite converter writes tf_keras models, imported with
``import_tflite`` (and ``lstmlite import tflite``): the oracles are the LiteRT interpreter
running the file (on inputs other than the importer's own check) and the tf_keras weights
the file was converted from.

Models come from tf_keras (Keras 2): Keras 3 converts its LSTM to a WHILE loop, not the
fused UNIDIRECTIONAL_SEQUENCE_LSTM. The variants the converter does not write from Keras
(peephole, projection, layer norm, CIFG, other activations, time-major,
BIDIRECTIONAL_SEQUENCE_LSTM) are made by editing a converted file's flatbuffer.
"""

from __future__ import annotations

import importlib.util as _util
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

# The dev extra installs TensorFlow and LiteRT, and `make install` tf_keras: a missing one
# fails here, never skips.
_MISSING = [m for m in ("tensorflow", "tf_keras", "ai_edge_litert") if _util.find_spec(m) is None]
if _MISSING:
    raise ImportError(f"TFLite import tests need {', '.join(_MISSING)}: run `make install`")

from lstmlite.importers import ModelImportError, import_tflite  # noqa: E402
from lstmlite.importers.tflite import read_tflite_lstm  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

B, T, I = 2, 7, 4  # the converter needs static shapes for the fused op (batch included)


def _keras(spec: str, seed: int = 0):
    """A small tf_keras model by name, with non-trivial biases (so a bias mix-up shows)."""
    import tf_keras as K

    K.utils.set_random_seed(seed)
    L = K.layers
    features = [L.InputLayer(input_shape=(T, I), batch_size=B)]
    layers = {
        "classifier": features + [L.LSTM(6), L.Dense(3, activation="softmax")],
        "lm": [L.InputLayer(input_shape=(T,), batch_size=B, dtype="int32"), L.Embedding(40, 8),
               L.LSTM(6, return_sequences=True), L.Dense(40)],
        "bidirectional": features + [L.Bidirectional(L.LSTM(5)), L.Dense(3)],
        "bistack": features + [L.Bidirectional(L.LSTM(6, return_sequences=True)), L.Bidirectional(L.LSTM(5)),
                               L.Dense(3)],
        "forecaster": features + [L.LSTM(6, return_sequences=True), L.LSTM(5), L.Dense(1)],
        "bitagger": features + [L.Bidirectional(L.LSTM(5, return_sequences=True)), L.Dense(4, activation="sigmoid")],
        "meanpool": features + [L.LSTM(6, return_sequences=True), L.GlobalAveragePooling1D(), L.Dense(3)],
        "maxpool": features + [L.LSTM(6, return_sequences=True), L.GlobalMaxPooling1D(), L.Dense(3)],
        "bilm": [L.InputLayer(input_shape=(T,), batch_size=B, dtype="int32"), L.Embedding(40, 8),
                 L.Bidirectional(L.LSTM(5, return_sequences=True)), L.Dense(40)],
        "layer": features + [L.LSTM(6)],
        "log_softmax": features + [L.LSTM(6), L.Dense(3, activation="log_softmax")],
        "hybrid": [L.InputLayer(input_shape=(T, 32), batch_size=B), L.LSTM(32), L.Dense(3)],
    }[spec]
    model = K.Sequential(layers)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:  # biases: small random values instead of Keras's zeros / unit forget bias
            layer.set_weights([w + 0.3 * rng.standard_normal(w.shape).astype(np.float32) if w.ndim == 1 else w
                               for w in weights])
    return model


def _convert(model, float16: bool = False, hybrid: bool = False, from_keras: bool = False) -> bytes:
    """The converter on the model's traced call (a third faster than from_keras_model, which
    goes through a SavedModel: same fused ops), or with ``from_keras`` on the model itself."""
    import tensorflow as tf

    if from_keras:
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
    else:
        spec = tf.TensorSpec(model.inputs[0].shape, model.inputs[0].dtype)
        conv = tf.lite.TFLiteConverter.from_concrete_functions(
            [tf.function(lambda x: model(x)).get_concrete_function(spec)], model)
    if float16 or hybrid:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if float16:
        conv.target_spec.supported_types = [tf.float16]
    return conv.convert()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """name → (path, tf_keras model) for the default-suite models."""
    root = tmp_path_factory.mktemp("tflite_float")
    out = {}
    for name in ("classifier", "lm", "bidirectional"):
        keras_model = _keras(name)
        path = root / f"{name}.tflite"
        path.write_bytes(_convert(keras_model, from_keras=name == "classifier"))
        out[name] = (path, keras_model)
    return out


def _litert(content: bytes, x: np.ndarray) -> np.ndarray:
    """The file run by LiteRT itself (default options, a fresh interpreter: zero LSTM state)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=content)
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interp.invoke()
    return interp.get_tensor(outp["index"]).astype(np.float64)


def _ours(model, x: np.ndarray, activation: str | None) -> np.ndarray:
    xt = torch.from_numpy(x)
    with torch.no_grad():
        y = model(xt)[0] if model.kind == "lm" else model(xt)
        y = {"softmax": torch.softmax(y, -1), "log_softmax": torch.log_softmax(y, -1), "sigmoid": torch.sigmoid(y),
             None: y}[activation]
    return y.double().numpy()


def _inputs(model, seed: int = 7, scale: float = 2.0) -> np.ndarray:
    """Inputs other than the importer's own check (seed 0, N(0, 1)): another seed, twice the spread."""
    rng = np.random.default_rng(seed)
    if getattr(model, "embedding", None) is not None:
        return rng.integers(0, model.embedding.num_embeddings, size=(B, T))
    return (scale * rng.standard_normal((B, T, I))).astype(np.float32)


def _assert_matches_litert(path, model) -> None:
    x = _inputs(model)
    expected = _litert(path.read_bytes(), x)
    ours = _ours(model, x, model.import_info["output_activation"]).reshape(expected.shape)
    assert np.max(np.abs(ours - expected)) <= 1e-5 * max(1.0, float(np.max(np.abs(expected))))


def _keras_lstms(keras_model) -> list[list[np.ndarray]]:
    """Per layer, per direction, Keras's [kernel (I, 4H), recurrent (H, 4H), bias (4H,)] (gates i, f, c, o)."""
    out = []
    for layer in keras_model.layers:
        weights = layer.get_weights()
        if type(layer).__name__ == "Bidirectional":
            out.append([weights[:3], weights[3:]])
        elif type(layer).__name__ == "LSTM":
            out.append([weights])
    return out


def _check_keras_weights(model, keras_model) -> None:
    """The imported weights are the tf_keras model's, gate for gate."""
    layers = _keras_lstms(keras_model)
    rnn = model.rnn
    assert rnn.num_layers == len(layers) and rnn.bidirectional == (len(layers[0]) == 2)
    for k, directions in enumerate(layers):
        for suffix, (kernel, recurrent, bias) in zip(("", "_reverse"), directions):
            np.testing.assert_array_equal(getattr(rnn, f"weight_ih_l{k}{suffix}").detach().numpy(), kernel.T)
            np.testing.assert_array_equal(getattr(rnn, f"weight_hh_l{k}{suffix}").detach().numpy(), recurrent.T)
            np.testing.assert_array_equal(getattr(rnn, f"bias_ih_l{k}{suffix}").detach().numpy(), bias)
            assert not getattr(rnn, f"bias_hh_l{k}{suffix}").detach().any()
    dense = keras_model.layers[-1].get_weights()
    np.testing.assert_array_equal(model.head.weight.detach().numpy(), dense[0].T)
    np.testing.assert_array_equal(model.head.bias.detach().numpy(), dense[1])


@pytest.mark.parametrize("name, kind, activation", [("classifier", "classifier", "softmax"), ("lm", "lm", None),
                                                    ("bidirectional", "classifier", None)])
def test_a_float_tflite_lstm_imports_as_the_model_litert_runs(files, name, kind, activation):
    """Each imported model gives what LiteRT gives on the file, on inputs the importer's
    check did not use, and holds the tf_keras weights the file came from, gate for gate
    (Keras's i, f, c, o is PyTorch's order: weight_ih = kernel.T, the one bias in bias_ih).
    Catches a gate permutation (TFLite's per-gate tensors stacked out of order), a
    transposed matrix, a dropped bias, an unreversed backward direction, a concatenation
    read backward first, or a head read from the wrong step."""
    path, keras_model = files[name]
    model = import_tflite(path)
    assert model.kind == kind
    info = model.import_info
    assert info["source"] == "tflite" and info["file"] == str(path) and info["output_activation"] == activation
    assert info["weights"] == "float32" and info["verified_max_error"] < 1e-5
    _assert_matches_litert(path, model)
    _check_keras_weights(model, keras_model)
    if name == "lm":
        np.testing.assert_array_equal(model.embedding.weight.detach().numpy(),
                                      keras_model.layers[0].get_weights()[0])


def test_the_cli_writes_a_run_dir_that_runs_as_litert_and_says_what_it_did_not_keep(files, tmp_path, capsys):
    """`lstmlite import tflite FILE --out RUN` writes a run dir whose model gives LiteRT's
    outputs, and its table names the dropped softmax and the cell clip the file applies
    (10, the converter's for every Keras LSTM) that lstmlite's LSTM does not."""
    from lstmlite.cli.main import main
    from lstmlite.io import load_run, read_json

    path = files["classifier"][0]
    out = tmp_path / "run"
    assert main(["import", "tflite", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"output activation dropped\s+softmax", printed)
    assert re.search(r"cell clip \(not kept\)\s+±10\b", printed)
    model = load_run(out).model.eval()
    model.import_info = {"output_activation": "softmax"}
    _assert_matches_litert(path, model)
    config = read_json(out / "config.json")
    assert config["task"] == "classify" and config["import"]["source"] == "tflite"
    assert config["import"]["cell_clip"] == 10.0
    assert read_json(out / "metrics.json")["params"] == sum(p.numel() for p in model.parameters())


def test_kind_overrides_the_reading_and_a_wrong_model_fails_the_litert_check(files, monkeypatch):
    """--kind / kind= makes the per-step LM a tagger (same numbers), and kind='layer', which
    would drop the head, is refused (it gave a shape mismatch); the check against
    LiteRT is the arbiter: with TFLite's gate order mis-stated (forget and input swapped)
    the import fails rather than returning a wrong model."""
    path = files["lm"][0]
    tagger = import_tflite(path, kind="tagger")
    assert tagger.kind == "tagger"
    x = _inputs(tagger)
    np.testing.assert_allclose(_ours(tagger, x, None).reshape(B, T, -1), _litert(path.read_bytes(), x),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelImportError, match=r"kind='layer' would drop the file's FULLY_CONNECTED head"):
        import_tflite(path, kind="layer")
    import lstmlite.importers.tflite as tflite_module

    monkeypatch.setattr(tflite_module, "TFLITE_LSTM", "figo")
    with pytest.raises(ModelImportError, match="does not reproduce the .tflite model in LiteRT"):
        import_tflite(path)
    assert import_tflite(path, verify=False).kind == "lm"  # unchecked, it would have gone through


# ----- refusals -------------------------------------------------------------------------------
def _edit(content: bytes, change) -> bytes:
    """Re-serialise ``content`` after ``change(model_t, schema, lstm_op)`` edits the first LSTM op."""
    import flatbuffers

    from lstmlite.importers.tflite import _schema

    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    graph = model.subgraphs[0]
    lstm = next(op for op in graph.operators
                if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM)
    change(model, schema, lstm)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _set_input(pos: int, like: int):
    def change(model, schema, op):
        inputs = [int(t) for t in op.inputs]
        inputs[pos] = inputs[like]
        op.inputs = inputs
    return change


def _cifg(model, schema, op):
    op.inputs = [-1 if k in (1, 5, 12) else int(t) for k, t in enumerate(op.inputs)]


def _option(field, value):
    def change(model, schema, op):
        setattr(op.builtinOptions, field, value(schema) if callable(value) else value)
    return change


def _head_relu(model, schema, op):
    """The Dense head's FULLY_CONNECTED given a fused RELU (what Dense(activation="relu") converts to)."""
    head = next(o for o in model.subgraphs[0].operators
                if model.operatorCodes[o.opcodeIndex].builtinCode == schema.BuiltinOperator.FULLY_CONNECTED)
    head.builtinOptions.fusedActivationFunction = schema.ActivationFunctionType.RELU


def _softmax_beta(model, schema, op):
    """The head's SOFTMAX given beta=2 (softmax(2x), which no Keras layer converts to)."""
    softmax = next(o for o in model.subgraphs[0].operators
                   if model.operatorCodes[o.opcodeIndex].builtinCode == schema.BuiltinOperator.SOFTMAX)
    softmax.builtinOptions.beta = 2.0


def _head_int8(model, schema, op):
    """The head's weights stored as int8 with a scale (a dynamic-range quantized Dense, which LiteRT
    runs as a hybrid FULLY_CONNECTED on float activations)."""
    graph = model.subgraphs[0]
    head = next(o for o in graph.operators
                if model.operatorCodes[o.opcodeIndex].builtinCode == schema.BuiltinOperator.FULLY_CONNECTED)
    tensor = graph.tensors[head.inputs[1]]
    weight = np.frombuffer(np.asarray(model.buffers[tensor.buffer].data, np.uint8).tobytes(), np.float32)
    scale = float(np.abs(weight).max()) / 127
    model.buffers.append(schema.BufferT())
    model.buffers[-1].data = np.round(weight / scale).astype(np.int8).view(np.uint8)
    tensor.buffer, tensor.type = len(model.buffers) - 1, schema.TensorType.INT8
    tensor.quantization = schema.QuantizationParametersT()
    tensor.quantization.scale, tensor.quantization.zeroPoint = [scale], [0]


def _bidirectional_op(model, schema, op):
    code = model.operatorCodes[op.opcodeIndex]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.BIDIRECTIONAL_SEQUENCE_LSTM


@pytest.mark.parametrize("change, message", [
    (_set_input(9, 13), r"operator 0 \(UNIDIRECTIONAL_SEQUENCE_LSTM\): peephole LSTMs are not supported"),
    (_set_input(16, 6), r"projection LSTMs are not supported"),
    (_set_input(20, 13), r"layer norm LSTMs are not supported"),
    (_cifg, r"CIFG LSTMs \(no input gate\) are not supported"),
    (_option("fusedActivationFunction", lambda s: s.ActivationFunctionType.RELU),
     r"fused_activation_function is RELU; only TANH"),
    (_option("timeMajor", True), r"is time-major \(time_major=True\)"),
    (_option("cellClip", -1.0), r"cell_clip is -1.0"),
    (_bidirectional_op, r"holds a BIDIRECTIONAL_SEQUENCE_LSTM operator"),
    (_head_relu, r"the FULLY_CONNECTED \(operator \d+\) applies RELU; lstmlite's head is linear"),
    (_softmax_beta, r"the SOFTMAX \(operator \d+\) has beta=2.0; only 1"),
    (_head_int8, r"the FULLY_CONNECTED \(operator \d+\) has int8 weights: a dynamic-range \(hybrid\) quantized head"),
], ids=["peephole", "projection", "layer-norm", "cifg", "relu", "time-major", "negative-clip", "bidi-op", "head-relu",
        "softmax-beta", "head-int8"])
def test_what_lstmlite_does_not_compute_is_refused_in_one_line_before_writing(files, tmp_path, change, message):
    """Each variant the float LSTM op can hold and lstmlite's LSTM cannot compute is refused
    with one line naming it (the file and the operator), and --out is not created."""
    path = tmp_path / "edited.tflite"
    path.write_bytes(_edit(files["classifier"][0].read_bytes(), change))
    out = tmp_path / "run"
    with pytest.raises(ModelImportError, match=message) as err:
        import_tflite(path, out=out)
    assert "\n" not in str(err.value) and str(err.value).startswith(str(path))
    assert not out.exists()


def _reverse_batch_axis(model, schema, op):
    """The REVERSE_V2 before the backward LSTM made to reverse axis 0 (the batch), not time."""
    graph = model.subgraphs[0]
    reverse = next(o for o in graph.operators
                   if model.operatorCodes[o.opcodeIndex].builtinCode == schema.BuiltinOperator.REVERSE_V2)
    model.buffers[graph.tensors[reverse.inputs[1]].buffer].data = np.array([0], np.int32).view(np.uint8)


def _second_head(model, schema, op):
    """A second FULLY_CONNECTED beside the head, on the same features, as a second model output
    (what a two-headed Keras model converts to)."""
    import copy

    graph = model.subgraphs[0]
    head = next(o for o in graph.operators
                if model.operatorCodes[o.opcodeIndex].builtinCode == schema.BuiltinOperator.FULLY_CONNECTED)
    twin, out = copy.deepcopy(head), copy.deepcopy(graph.tensors[head.outputs[0]])
    out.name = b"second_head"
    model.buffers.append(schema.BufferT())
    out.buffer = len(model.buffers) - 1
    graph.tensors.append(out)
    twin.outputs = [len(graph.tensors) - 1]
    graph.operators.append(twin)
    graph.outputs = [int(t) for t in graph.outputs] + [len(graph.tensors) - 1]


@pytest.mark.parametrize("name, change, message", [
    ("bidirectional", _reverse_batch_axis, r"operator \d+ \(REVERSE_V2\) before LSTM operator \d+ does not reverse the "
                                           r"time axis"),
    ("classifier", _second_head, r"holds 2 FULLY_CONNECTED operators; lstmlite imports one Dense head"),
], ids=["reverse-batch", "two-heads"])
def test_a_file_that_is_not_a_simple_stack_is_refused_naming_why(files, tmp_path, name, change, message):
    """Files LiteRT runs (both edits keep the model valid) that lstmlite would import as something
    else: a REVERSE_V2 over the batch before the second LSTM is no backward direction, and a model
    with a second head beside the first has an output the import would drop (its check compares
    the first output only, so it would pass). Catches the axis check widened and the count of
    heads loosened."""
    path = tmp_path / "edited.tflite"
    path.write_bytes(_edit(files[name][0].read_bytes(), change))
    with pytest.raises(ModelImportError, match=message):
        import_tflite(path)


def test_a_hybrid_file_is_refused_naming_its_form_and_the_integer_reader_points_here(tmp_path):
    """A dynamic-range (hybrid) model gets one line saying so and what to convert instead;
    the integer reader, given a float-activation file, points to import_tflite (it said
    "input must have one (per-tensor) scale, has 0")."""
    hybrid = tmp_path / "hybrid.tflite"
    hybrid.write_bytes(_convert(_keras("hybrid"), hybrid=True))
    with pytest.raises(ModelImportError, match=r"hybrid.tflite: operator 0 \(UNIDIRECTIONAL_SEQUENCE_LSTM\) is a "
                                               r"dynamic-range \(hybrid\) quantized LSTM: int8 weights with float "
                                               r"activations .*convert without optimizations"):
        import_tflite(hybrid)
    with pytest.raises(ValueError, match=r"input is float32: not an integer LSTM \(a float32 model imports as an "
                                         r"lstmlite model: import_tflite"):
        read_tflite_lstm(hybrid)


def test_missing_and_corrupt_files_are_one_line(tmp_path):
    from lstmlite.importers._common import ModelFileNotFoundError

    with pytest.raises(ModelFileNotFoundError, match="nope.tflite: no such file"):
        import_tflite(tmp_path / "nope.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\xff" * 40)
    with pytest.raises(ModelImportError, match=r"bad.tflite: not a readable .tflite model"):
        import_tflite(bad)


@pytest.mark.slow
def test_a_full_integer_file_and_one_without_the_fused_op_are_refused(tmp_path):
    """A full-integer LSTM (the integer tests' converter) is named so, with the export that
    takes it; a converted model without the fused op says it has none."""
    spec = _util.spec_from_file_location("_test_tflite_import", Path(__file__).with_name("test_tflite_import.py"))
    integer = _util.module_from_spec(spec)  # its full-integer converter (the tests are not a package)
    spec.loader.exec_module(integer)
    full = tmp_path / "int8.tflite"
    full.write_bytes(integer._convert(*integer.MODELS["small"]))
    with pytest.raises(ModelImportError, match=r"full-integer \(int8\) LSTM.*--format c --form tflite"):
        import_tflite(full)
    import tf_keras as K

    dense = K.Sequential([K.layers.InputLayer(input_shape=(T, I), batch_size=B), K.layers.Flatten(),
                          K.layers.Dense(3)])
    path = tmp_path / "dense.tflite"
    path.write_bytes(_convert(dense))
    with pytest.raises(ModelImportError, match=r"dense.tflite: has no UNIDIRECTIONAL_SEQUENCE_LSTM operator$"):
        import_tflite(path)


# ----- more forms (slow: each converts another model) -------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name, kind, activation", [("forecaster", "forecaster", None),
                                                    ("bistack", "classifier", None),
                                                    ("bitagger", "tagger", "sigmoid"),
                                                    ("meanpool", "classifier", None),
                                                    ("maxpool", "classifier", None),
                                                    ("bilm", "tagger", None),
                                                    ("log_softmax", "classifier", "log_softmax")])
def test_more_float_forms_match_litert(tmp_path, name, kind, activation):
    """Stacked layers of two sizes with one output (a forecaster), stacked bidirectional
    layers (the second reads the first's concatenated sequences), a bidirectional per-step
    head with sigmoid (a tagger: the backward sequence reversed back before the concat),
    mean pooling (MEAN), max pooling (REDUCE_MAX), a bidirectional per-step head over the
    embedding's vocabulary (a tagger: a language model cannot see the future), and a final
    LOG_SOFTMAX (dropped; the import's check re-applies it) each give LiteRT's outputs and hold
    the tf_keras weights."""
    keras_model = _keras(name)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(_convert(keras_model))
    model = import_tflite(path)
    assert model.kind == kind and model.import_info["output_activation"] == activation
    if name in ("meanpool", "maxpool"):
        assert model.pooling == name[:-4]
    _assert_matches_litert(path, model)
    _check_keras_weights(model, keras_model)


@pytest.mark.slow
def test_float16_weights_import_exactly_and_a_bare_layer_is_checked_too(tmp_path):
    """Float16 weights (DEQUANTIZE of float16 constants) are read as the float32 values LiteRT
    computes with, and a file with no head imports as the bare layer, checked against
    LiteRT's last-step output; a kind that needs a head is refused for it (not imported as
    the bare layer)."""
    keras_model = _keras("classifier")
    path = tmp_path / "f16.tflite"
    path.write_bytes(_convert(keras_model, float16=True))
    model = import_tflite(path)
    assert model.import_info["weights"] == "float16"
    kernel = keras_model.layers[0].get_weights()[0]
    np.testing.assert_array_equal(model.rnn.weight_ih_l0.detach().numpy(), kernel.T.astype(np.float16))
    _assert_matches_litert(path, model)
    bare = tmp_path / "layer.tflite"
    bare.write_bytes(_convert(_keras("layer")))
    layer = import_tflite(bare)
    x = _inputs(layer)
    with torch.no_grad():
        ours = layer(torch.from_numpy(x))[0][:, -1].double().numpy()
    np.testing.assert_allclose(ours, _litert(bare.read_bytes(), x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelImportError, match="cannot be saved as a run dir"):
        import_tflite(bare, out=tmp_path / "run")
    with pytest.raises(ModelImportError, match=r"kind='classifier' needs an output layer, but no FULLY_CONNECTED"):
        import_tflite(bare, kind="classifier")


@pytest.mark.parametrize("args", [("--format", "onnx"), ("--format", "lsl"), ("--format", "c"),
                                  ("--format", "c", "--form", "tflite")], ids=["onnx", "lsl", "c", "c-tflite"])
def test_exporting_a_float_file_as_it_is_names_the_import(files, tmp_path, capsys, args):
    """lstmlite export given a float32 .tflite refuses in one line that names `lstmlite
    import tflite` (not "a TFLite-quantized LSTM computes TFLite's integer arithmetic", which
    it does not) with the file's own path in the command to run (--form tflite too, which
    reads the file as an integer LSTM), and writes nothing; the run dir it imports as then
    exports."""
    from lstmlite.cli.main import main

    path = files["classifier"][0]
    out = tmp_path / "out"
    assert main(["export", str(path), *args, "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "import_tflite" in err and "lstmlite import tflite" in err
    # the command to run names the file, also where --form tflite reads it as an integer LSTM
    assert f"lstmlite import tflite {path} --out RUN" in err
    assert "integer arithmetic" not in err.split(";")[0]
    assert not out.exists()
    if args == ("--format", "onnx"):
        run = tmp_path / "run"
        import_tflite(path, out=run)
        assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
        assert list(out.glob("*.onnx"))


def _make_litert_fail(monkeypatch, error: Exception) -> None:
    """Make the import's LiteRT interpreter raise ``error`` when the check invokes it (the
    file is still read by a real interpreter)."""
    from lstmlite.importers import tflite as tflite_module

    real = tflite_module._interpreter

    class Failing:
        def __init__(self, content):
            self._real = real(content)

        def __getattr__(self, name):
            return getattr(self._real, name)

        def invoke(self):
            raise error

    monkeypatch.setattr(tflite_module, "_interpreter", Failing)


def test_a_file_litert_cannot_run_is_one_line_naming_the_way_on(files, monkeypatch, tmp_path):
    """LiteRT failing on the check's input (its RuntimeError spans lines, with its C++
    source locations) is one ModelImportError line that says to skip the check, and nothing
    is written; before, the raw RuntimeError escaped (an "internal error" in the CLI)."""
    _make_litert_fail(monkeypatch, RuntimeError("tensorflow/lite/kernels/lstm.cc:123 something failed.\nNode "
                                                "number 3 (UNIDIRECTIONAL_SEQUENCE_LSTM) failed to invoke.\n"))
    out = tmp_path / "run"
    with pytest.raises(ModelImportError) as caught:
        import_tflite(files["classifier"][0], out=out)
    text = str(caught.value)
    assert "\n" not in text and text.startswith("LiteRT cannot run the .tflite model for the check (")
    assert "Node number 3 (UNIDIRECTIONAL_SEQUENCE_LSTM) failed to invoke." in text
    assert text.endswith("skip the check (verify=False, CLI --no-verify) to import it unchecked")
    assert not out.exists()
    import_tflite(files["classifier"][0], verify=False)  # the way on works: no LiteRT run


def test_a_litert_failure_with_no_message_names_its_type(files, monkeypatch):
    """LiteRT's error quoted by the rule of lstmlite._text.one_line: an empty message gives
    the error's type name rather than "()"."""
    _make_litert_fail(monkeypatch, RuntimeError())
    with pytest.raises(ModelImportError, match=r"^LiteRT cannot run the \.tflite model for the check "
                                               r"\(RuntimeError\); "):
        import_tflite(files["classifier"][0])
