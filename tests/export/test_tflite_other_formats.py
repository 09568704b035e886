"""A .tflite LSTM given to lstmlite export: what comes out on the command line.

Models come from tf_keras converted with full-integer int8 quantization, as in
tests/importers/test_tflite_import.py (whose converter is reused). stderr is read at the
file-descriptor level (capfd), so a line LiteRT's C++ code prints counts too.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from lstmlite.cli.main import main

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _load(name: str, path: Path):
    """A helper module of the suite by file path (the tests are not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules.setdefault(name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


tflite_import = _load("_test_tflite_import", Path(__file__).resolve().parents[1] / "importers" / "test_tflite_import.py")


def _convert_with_head(T: int = 5, I: int = 4, H: int = 6, classes: int = 3, seed: int = 0) -> bytes:
    """tf_keras LSTM(H) -> Dense(classes), full-integer int8: a FULLY_CONNECTED beside the LSTM."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    model = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(T, I), batch_size=1),
                                 tf_keras.layers.LSTM(H), tf_keras.layers.Dense(classes)])
    rng = np.random.default_rng(seed)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.normal(size=(1, T, I)).astype(np.float32)] for _ in range(40))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """'plain': the import tests' small LSTM (what form tflite exports); 'head': an LSTM
    with a Dense head (what form tflite refuses)."""
    folder = tmp_path_factory.mktemp("tflite")
    contents = {"plain": tflite_import._convert(*tflite_import.MODELS["small"]), "head": _convert_with_head()}
    paths = {}
    for name, content in contents.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(content)
    return paths


def test_a_refused_c_export_of_a_tflite_file_prints_one_line(files, tmp_path, capfd):
    """Reading the file printed LiteRT's 'INFO: Created TensorFlow Lite XNNPACK delegate for
    CPU.' on stderr (the interpreter applies its default delegate, which a reader that never
    invokes does not need) before the refusal's one line."""
    out = tmp_path / "c"
    assert main(["export", str(files["head"]), "--format", "c", "--form", "tflite", "--out", str(out)]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lstmlite export: error: "), err
    assert "FULLY_CONNECTED" in err
    assert not out.exists() or not any(out.iterdir())


# A TFLite-quantized LSTM is integer arithmetic (int8 h requantized every step, an int16 cell
# that saturates, fixed-point sigmoid/tanh): ONNX's float LSTM and the .lsl format compute
# none of it, so asking for them is refused, in one line naming C (--form tflite), the format
# that takes it, before anything is written. Before: `lstmlite export F.tflite --format onnx`
# said "F.tflite: not a run dir (no such directory)" of a file that is there, and
# export_onnx / export_lsl of read_tflite_lstm's model raised "TypeError: expected str,
# bytes or os.PathLike object, not TFLiteLSTMModel".
_FEATURE = "TFLite's integer arithmetic"
_NAMED_C = "the format that takes it: C (lstmlite export FILE.tflite --format c --form tflite"


@pytest.mark.parametrize("fmt,out_name", [("onnx", "deploy"), ("onnx", "m.onnx"), ("lsl", "deploy"),
                                          ("lsl", "m.lsl")])
def test_onnx_and_lsl_exports_of_a_tflite_file_are_refused_naming_c(files, tmp_path, capfd, fmt, out_name):
    out = tmp_path / out_name
    assert main(["export", str(files["plain"]), "--format", fmt, "--out", str(out)]) == 2
    captured = capfd.readouterr()
    assert captured.out == ""
    err = captured.err
    assert err.count("\n") == 1 and err.startswith(f"lstmlite export: error: {files['plain']}: "), err
    assert _FEATURE in err and _NAMED_C in err
    assert {"onnx": "ONNX's float LSTM operator", "lsl": ".lsl format"}[fmt] in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["onnx", "lsl"])
def test_a_tflite_file_that_c_refuses_too_is_refused_with_cs_reason(files, tmp_path, capfd, fmt):
    """A file form tflite refuses as well (a Dense head beside the LSTM) is not sent to C:
    the line says C refuses it, and why."""
    assert main(["export", str(files["head"]), "--format", fmt, "--out", str(tmp_path / "out")]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and _FEATURE in err, err
    assert "C (--format c --form tflite), the one format that takes such a layer, refuses this file too: " \
           "computes FULLY_CONNECTED besides its LSTM" in err
    assert _NAMED_C not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("what", ["path", "bytes", "model", "params"])
@pytest.mark.parametrize("fmt", ["onnx", "lsl"])
def test_the_python_exporters_refuse_a_tflite_lstm_with_the_same_line(files, tmp_path, what, fmt):
    from lstmlite.export.lsl import export_lsl
    from lstmlite.export.onnx import export_onnx
    from lstmlite.importers.tflite import read_tflite_lstm

    path = files["plain"]
    source = {"path": lambda: path, "bytes": path.read_bytes, "model": lambda: read_tflite_lstm(path),
              "params": lambda: read_tflite_lstm(path).params}[what]()
    out = tmp_path / f"m.{fmt}"
    with pytest.raises(ValueError) as err:
        (export_onnx if fmt == "onnx" else export_lsl)(source, out)
    message = str(err.value)
    assert "\n" not in message and _FEATURE in message and _NAMED_C in message, message
    assert list(tmp_path.iterdir()) == []


def test_a_run_dir_still_exports(tmp_path):
    """The check reads the source only to tell a .tflite from a run dir: a run dir exports."""
    from lstmlite.io import save_run
    from lstmlite.nn import SequenceClassifier

    run = save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
                   {"task": "classify"})
    assert main(["export", str(run), "--format", "lsl", "--out", str(tmp_path / "m.lsl")]) == 0
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.lsl").is_file() and (tmp_path / "m.onnx").is_file()


def _dequantized_float_lstm(content: bytes):
    """torch.nn.LSTM holding the .tflite op's weights and biases dequantized (TFLite's i, f,
    c, o order is PyTorch's i, f, g, o; no recurrent bias), read through LiteRT alone."""
    import torch
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=content)
    interp.allocate_tensors()
    (op,) = [o for o in interp._get_ops_details() if o["op_name"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    inputs = [int(v) for v in op["inputs"]]
    details = {d["index"]: d for d in interp.get_tensor_details()}

    def real(index: int) -> np.ndarray:
        scale = float(details[index]["quantization_parameters"]["scales"][0])
        return interp.get_tensor(index).astype(np.float64) * scale

    w_ih = np.concatenate([real(inputs[k]) for k in (1, 2, 3, 4)])
    w_hh = np.concatenate([real(inputs[k]) for k in (5, 6, 7, 8)])
    bias = np.concatenate([real(inputs[k]) for k in (12, 13, 14, 15)])
    lstm = torch.nn.LSTM(w_ih.shape[1], w_hh.shape[1], batch_first=True).double()
    with torch.no_grad():
        for name, value in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", bias),
                            ("bias_hh_l0", np.zeros_like(bias))):
            getattr(lstm, name).copy_(torch.as_tensor(value))
    return lstm


def _largest_gap(content: bytes, draw) -> float:
    """Largest |float LSTM - LiteRT| over 25 input batches from ``draw(shape, x_scale, x_zp)``,
    in LSB of the int8 output (the float outputs rounded and clamped to int8 codes)."""
    import torch
    from ai_edge_litert.interpreter import Interpreter

    lstm = _dequantized_float_lstm(content)
    interp = Interpreter(model_content=content)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    (x_scale, x_zp), (y_scale, y_zp) = inp["quantization"], out["quantization"]
    worst = 0.0
    for _ in range(25):
        x = draw(inp["shape"], x_scale, x_zp).astype(np.int8)
        interp.reset_all_variables()
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        with torch.no_grad():
            y = lstm(torch.as_tensor((x.astype(np.float64) - x_zp) * x_scale))[0].numpy()
        y_q = np.clip(np.round(y / y_scale + y_zp), -128, 127)
        worst = max(worst, float(np.abs(y_q - interp.get_tensor(out["index"])).max()))
    return worst


def test_a_float_lstm_of_the_dequantized_weights_is_not_the_tflite_model():
    """Why ONNX and .lsl refuse rather than export the dequantized layer as a float LSTM.
    The float LSTM is the file's layer (on the small model's calibration-like inputs it is
    within 1 LSB of LiteRT), yet where the int16 cell saturates it leaves LiteRT's outputs
    by far more than the 3 LSB the micro kernel is held to (tests/importers/
    test_tflite_import.py), while every TFLite artefact here is held to LiteRT or TFLite
    Micro bit for bit (measured: 61 LSB on the saturating model; 6 on the small one with
    full-range inputs)."""
    rng = np.random.default_rng(1)

    def like_calibration(shape, scale, zp):  # N(0, 1), what the small model was calibrated on
        return np.clip(np.round(rng.normal(size=shape) / scale) + zp, -128, 127)

    def full_range(shape, scale, zp):
        return rng.integers(-128, 128, shape)

    small = tflite_import._convert(*tflite_import.MODELS["small"])
    assert _largest_gap(small, like_calibration) <= 1
    saturating = tflite_import._convert(*tflite_import.MODELS["saturating"])
    assert _largest_gap(saturating, full_range) > 30  # ten times the micro kernel's 3 LSB


@pytest.mark.parametrize("what", ["path", "model"])
def test_export_c_in_another_form_names_form_tflite(files, tmp_path, what):
    """export_c of a .tflite file in a form other than tflite looked for a run dir at the
    file's path ("not a run dir (no such directory)"); of read_tflite_lstm's model it named
    lstmlite.nn models as the nearest form. Both now point at form='tflite'."""
    from lstmlite.export.c import UnsupportedForm, export_c
    from lstmlite.importers.tflite import read_tflite_lstm

    source = files["plain"] if what == "path" else read_tflite_lstm(files["plain"])
    with pytest.raises(UnsupportedForm) as err:
        export_c(source, tmp_path / "c", form="auto")
    assert err.value.nearest == "form='tflite'" and "TFLite's own integer arithmetic" in str(err.value)
    assert list(tmp_path.iterdir()) == []
