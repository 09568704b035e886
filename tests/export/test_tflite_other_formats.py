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

