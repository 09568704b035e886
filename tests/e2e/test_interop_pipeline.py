"""A Keras user's path through lstmlite, every step checked numerically:
Keras .keras → `lstmlite import keras` → int8 weights → saved run dir →
`lstmlite export --format onnx --quantize qdq` → ONNX Runtime."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
ort = pytest.importorskip("onnxruntime")
if keras.backend.backend() != "torch":  # pragma: no cover
    pytest.skip("keras runs on another backend in this process", allow_module_level=True)

from lstmlite.cli.main import main  # noqa: E402
from lstmlite.compress import WeightQuantConfig, compress_, compression_state  # noqa: E402
from lstmlite.io import load_run, save_run  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_keras_import_compress_onnx_round_trip(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    vocab = 50
    keras_model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(vocab, 16),
                                    keras.layers.LSTM(24), keras.layers.Dense(4, activation="softmax")])
    keras_model.save(tmp_path / "text.keras")
    x = np.random.default_rng(0).integers(1, vocab, size=(5, 11))
    keras_probs = keras_model.predict(x, verbose=0)

    assert main(["import", "keras", str(tmp_path / "text.keras"), "--out", str(tmp_path / "imported")]) == 0
    run = load_run(tmp_path / "imported")
    with torch.no_grad():
        probs = torch.softmax(run.model(torch.from_numpy(x)), -1).numpy()
    np.testing.assert_allclose(probs, keras_probs, rtol=1e-5, atol=1e-6)

    model = run.model
    compress_(model, WeightQuantConfig(bits=8))
    with torch.no_grad():
        int8_probs = torch.softmax(model(torch.from_numpy(x)), -1).numpy()
    assert np.abs(int8_probs - keras_probs).max() < 0.02  # int8 weights move outputs a little
    config = {k: v for k, v in run.config.items() if k not in ("model", "format_version")}
    save_run(tmp_path / "int8", model, {**config, "compression": compression_state(model)})

    assert main(["export", str(tmp_path / "int8"), "--format", "onnx", "--quantize", "qdq", "--no-lengths",
                 "--probabilities", "--out", str(tmp_path / "deploy")]) == 0
    session = ort.InferenceSession(str(tmp_path / "deploy" / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_probs = session.run(None, {"input": x.astype(np.int64)})[0]
    np.testing.assert_allclose(onnx_probs, int8_probs, rtol=1e-5, atol=1e-6)
    assert (tmp_path / "deploy" / "model.onnx").stat().st_size < 0.5 * (16 * vocab + 4 * 24 * 40 + 100) * 4
