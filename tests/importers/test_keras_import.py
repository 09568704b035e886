"""Keras import (.keras through Keras 3 on the PyTorch backend, legacy .h5 through h5py).

Oracle: Keras's own forward pass (``model.predict``) on the same input, and ONNX
Runtime for Keras → lstmlite → ONNX. Small models are built here; nothing is downloaded.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
if keras.backend.backend() != "torch":  # pragma: no cover - another test imported keras first
    pytest.skip("keras runs on another backend in this process", allow_module_level=True)

from keras import layers as L  # noqa: E402

from lstmlite.importers import GRUResetBefore, ModelImportError  # noqa: E402
from lstmlite.importers.keras import import_keras  # noqa: E402
from lstmlite.io import load_run  # noqa: E402
from lstmlite.nn import GRU, LSTM, Forecaster, LanguageModel, SequenceClassifier, SequenceTagger  # noqa: E402

VOCAB = 60
# Keras 3's torch backend trips NumPy 2's __array__(copy=...) deprecation on every call.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _tokens():
    return [keras.Input((None,), dtype="int32"), L.Embedding(VOCAB, 8)]


BUILDERS = {
    # The reference text model of DESIGN.md, at toy size.
    "reference_text": lambda: keras.Sequential(_tokens() + [L.LSTM(12), L.Dense(4, activation="softmax")]),
    "gru_reset_after": lambda: keras.Sequential(_tokens() + [L.GRU(7), L.Dense(3, activation="softmax")]),
    "gru_reset_before": lambda: keras.Sequential(_tokens() + [L.GRU(7, reset_after=False),
                                                              L.Dense(3, activation="softmax")]),
    "bidirectional_stack": lambda: keras.Sequential(_tokens() + [
        L.Bidirectional(L.LSTM(6, return_sequences=True)), L.Dropout(0.3), L.Bidirectional(L.LSTM(5)),
        L.Dense(3, activation="softmax")]),
    "features_bigru": lambda: keras.Sequential([keras.Input((None, 4)), L.Bidirectional(L.GRU(5)),
                                                L.Dense(2)]),
    "lm": lambda: keras.Sequential(_tokens() + [L.LSTM(9, return_sequences=True),
                                               L.Dense(VOCAB, activation="softmax")]),
    "simple_rnn_forecast": lambda: keras.Sequential([keras.Input((None, 4)), L.SimpleRNN(6, return_sequences=True),
                                                     L.SimpleRNN(5), L.Dense(1)]),
    # A label per token (a per-step Dense that is not a next-token LM): a tagger.
    "bi_tagger": lambda: keras.Sequential(_tokens() + [L.Bidirectional(L.LSTM(5, return_sequences=True)),
                                                      L.Dense(4, activation="softmax")]),
    # A per-step head over the vocabulary from a layer that sees the future cannot be a next-token
    # language model: a tagger (a language model of it would not even build).
    "bi_vocab_tagger": lambda: keras.Sequential(_tokens() + [L.Bidirectional(L.LSTM(5, return_sequences=True)),
                                                            L.Dense(VOCAB, activation="softmax")]),
    # No biases anywhere: a Dense without one has a single weight array (its kernel).
    "unbiased": lambda: keras.Sequential([keras.Input((None, 4)), L.LSTM(5, use_bias=False),
                                          L.Dense(3, use_bias=False)]),
}
EXPECTED = {
    "reference_text": (SequenceClassifier, LSTM), "gru_reset_after": (SequenceClassifier, GRU),
    "gru_reset_before": (SequenceClassifier, GRUResetBefore), "bidirectional_stack": (SequenceClassifier, LSTM),
    "features_bigru": (SequenceClassifier, GRU), "lm": (LanguageModel, LSTM),
    "simple_rnn_forecast": (Forecaster, None), "bi_tagger": (SequenceTagger, LSTM),
    "bi_vocab_tagger": (SequenceTagger, LSTM), "unbiased": (SequenceClassifier, LSTM),
}


def _randomised(model):
    """Keras initialises biases to zero (LSTM forget bias to one): perturb every weight so
    bias layouts and gate orders are really tested."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        layer.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras")
    files = {}
    for name, build in BUILDERS.items():
        model = _randomised(build())
        model.save(folder / f"{name}.keras")
        model.save(folder / f"{name}.h5")  # legacy HDF5 (Keras warns; that is the point)
        files[name] = (model, folder / f"{name}.keras", folder / f"{name}.h5")
    return files


def _input(model, batch: int = 3, steps: int = 9):
    rng = np.random.default_rng(5)
    if getattr(model, "embedding", None) is not None:
        return rng.integers(0, VOCAB, size=(batch, steps))
    return rng.normal(size=(batch, steps, model.rnn.input_size)).astype(np.float32)


def _ours(model, x, activation):
    with torch.no_grad():
        out = model(torch.from_numpy(x))
        out = out[0] if isinstance(model, LanguageModel) else out
        return (torch.softmax(out, -1) if activation == "softmax" else out).numpy()


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_keras_and_h5_match_keras(name: str, saved) -> None:
    keras_model, keras_path, h5_path = saved[name]
    model = import_keras(keras_path)
    model_h5 = import_keras(h5_path)
    kind, cell = EXPECTED[name]
    assert isinstance(model, kind) and isinstance(model_h5, kind)
    if cell is not None:
        assert isinstance(model.rnn, cell)
    for key, value in model.state_dict().items():
        assert torch.equal(value, model_h5.state_dict()[key]), key
    x = _input(model)
    expected = keras_model.predict(x, verbose=0)
    activation = model.import_info["output_activation"]
    np.testing.assert_allclose(_ours(model, x, activation), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_ours(model_h5, x, activation), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["reference_text", "gru_reset_before", "bidirectional_stack", "lm"])
def test_keras_to_lstmlite_to_onnx_matches_keras(name: str, saved, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from lstmlite.export.onnx import export_onnx

    keras_model, keras_path, _ = saved[name]
    model = import_keras(keras_path)
    path = export_onnx(model, tmp_path / "m.onnx", lengths=False, probabilities=True)
    x = _input(model, batch=2, steps=6)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, keras_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_mask_zero_equals_lengths_with_post_padding(tmp_path) -> None:
    keras_model = _randomised(keras.Sequential([
        keras.Input((None,), dtype="int32"), L.Embedding(VOCAB, 8, mask_zero=True),
        L.Bidirectional(L.GRU(6)), L.Dense(3, activation="softmax")]))
    keras_model.save(tmp_path / "mask.keras")
    model = import_keras(tmp_path / "mask.keras")
    assert model.import_info["mask_zero"] is True
    lengths = np.array([9, 4, 1])
    x = np.random.default_rng(2).integers(1, VOCAB, size=(3, 9))
    x[np.arange(9)[None, :] >= lengths[:, None]] = 0  # padding="post"
    with torch.no_grad():
        ours = torch.softmax(model(torch.from_numpy(x), lengths=torch.from_numpy(lengths)), -1).numpy()
    np.testing.assert_allclose(ours, keras_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)



@pytest.mark.parametrize("head", [
    lambda: [L.Dense(4, activation="log_softmax")],
    lambda: [L.Dense(4), L.Activation("log_softmax")],
], ids=["dense_log_softmax", "dense_then_activation"])
def test_a_log_softmax_head_imports_and_its_log_probabilities_match_keras(head, tmp_path) -> None:
    """A final log_softmax is recorded as the output activation, and log_softmax of our logits is
    what Keras predicts. Before, the .keras import's own check compared Keras's log-probabilities
    with our logits (max error ~1) and refused the model; the .h5 (not run) is held to Keras here."""
    keras_model = _randomised(keras.Sequential(_tokens() + [L.LSTM(6)] + head()))
    keras_model.save(tmp_path / "m.keras")
    keras_model.save(tmp_path / "m.h5")
    x = _input(import_keras(tmp_path / "m.h5"))
    expected = keras_model.predict(x, verbose=0)
    assert np.all(expected <= 0) and np.allclose(np.exp(expected).sum(-1), 1, atol=1e-5)  # log-probabilities
    for path in (tmp_path / "m.keras", tmp_path / "m.h5"):
        model = import_keras(path)
        assert model.import_info["output_activation"] == "log_softmax"
        with torch.no_grad():
            ours = torch.log_softmax(model(torch.from_numpy(x)), -1).numpy()
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_run_dir_and_unsaveable_cells(saved, tmp_path) -> None:
    keras_model, keras_path, _ = saved["reference_text"]
    import_keras(keras_path, out=tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert run.config["import"]["source"] == "keras" and run.metrics["task"] == "classify"
    x = _input(run.model)
    np.testing.assert_allclose(_ours(run.model, x, "softmax"), keras_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    # reset_after=False imports exactly, but lstmlite.nn has no such cell to rebuild from a run dir.
    with pytest.raises(ModelImportError, match="run dir"):
        import_keras(saved["gru_reset_before"][1], out=tmp_path / "run2")


@pytest.mark.parametrize("build, match", [
    (lambda: keras.Sequential(_tokens() + [L.LSTM(5, recurrent_activation="hard_sigmoid"), L.Dense(2)]),
     "recurrent_activation"),
    (lambda: keras.Sequential(_tokens() + [L.GRU(5, recurrent_activation="hard_sigmoid"), L.Dense(2)]),
     "recurrent_activation='hard_sigmoid'"),
    (lambda: keras.Sequential(_tokens() + [L.LSTM(5, activation="relu"), L.Dense(2)]), "activation='relu'"),
    (lambda: keras.Sequential(_tokens() + [L.GRU(5, return_sequences=True), L.LSTM(4), L.Dense(2)]),
     "one kind of layer"),
    (lambda: keras.Sequential(_tokens() + [L.Conv1D(4, 3), L.LSTM(4), L.Dense(2)]), "Conv1D"),
    (lambda: keras.Sequential(_tokens() + [L.Bidirectional(L.LSTM(4), merge_mode="sum"), L.Dense(2)]),
     "merge_mode"),
    (lambda: keras.Sequential(_tokens() + [L.LSTM(4, go_backwards=True), L.Dense(2)]), "go_backwards"),
    # Keras allows a backward layer of another width; ours has one hidden size for both directions.
    (lambda: keras.Sequential(_tokens() + [L.Bidirectional(L.LSTM(4), backward_layer=L.LSTM(3, go_backwards=True)),
                                           L.Dense(2)]), "different forward/backward sizes"),
])
def test_unsupported_keras_models(build, match: str, tmp_path) -> None:
    build().save(tmp_path / "m.keras")
    with pytest.raises(ModelImportError, match=match):
        import_keras(tmp_path / "m.keras")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_functional_model_reading_an_lstm_state_is_refused(suffix: str, tmp_path) -> None:
    """``LSTM(return_state=True)`` with the head on its final cell state c: the importer reads the
    layers as a chain (the head on the LSTM's output), which computes something else, and an .h5
    import is not run to notice. Refused naming the flag (catches return_state dropped from the
    refused flags: the .h5 then imports silently, the head reading h instead of c)."""
    inputs = keras.Input((None, 4))
    _, _, cell = L.LSTM(5, return_state=True)(inputs)
    model = _randomised(keras.Model(inputs, L.Dense(2)(cell)))
    model.save(tmp_path / f"m{suffix}")
    with pytest.raises(ModelImportError, match="return_state=True"):
        import_keras(tmp_path / f"m{suffix}")


def test_verification_refuses_a_model_a_little_off_keras(saved) -> None:
    """The import check against Keras itself: a head bias moved by 1e-2 (probabilities off by
    ~1e-3, ten times the tolerance) must fail it; the unmoved model passes."""
    from lstmlite.importers.keras import _verify

    keras_model, keras_path, _ = saved["reference_text"]
    info = {"output_activation": "softmax"}
    model = import_keras(keras_path)
    assert _verify(keras_model, model, info, atol=1e-5) <= 1e-4
    with torch.no_grad():
        model.head.bias[0] += 1e-2
    with pytest.raises(ModelImportError, match="does not reproduce"):
        _verify(keras_model, model, info, atol=1e-5)


def test_stacking_on_a_layer_without_return_sequences_is_refused() -> None:
    """A layer list (as read from a hand-edited .h5 config, which is not run) with an LSTM stacked
    on one that returns only its last state: Keras could not run it, and stacking it as two layers
    would silently compute something else, so it is refused (catches the return_sequences check
    dropped). model_from_keras_layers needs no Keras."""
    from lstmlite.importers.keras import KerasLayer, model_from_keras_layers

    rng = np.random.default_rng(0)

    def lstm(units: int, inputs: int, return_sequences: bool) -> KerasLayer:
        return KerasLayer("LSTM", {"units": units, "return_sequences": return_sequences},
                          [rng.normal(size=(inputs, 4 * units)), rng.normal(size=(units, 4 * units)),
                           rng.normal(size=4 * units)])

    dense = KerasLayer("Dense", {"activation": "linear"}, [rng.normal(size=(4, 2)), rng.normal(size=2)])
    model, _ = model_from_keras_layers([lstm(4, 3, True), lstm(4, 4, False), dense])
    assert model.rnn.num_layers == 2
    with pytest.raises(ModelImportError, match="return_sequences=False"):
        model_from_keras_layers([lstm(4, 3, False), lstm(4, 4, False), dense])


def test_a_gru_config_without_reset_after_is_read_by_its_bias_shape() -> None:
    """A GRU saved before Keras 2.1.3 has no reset_after in its config and computes the
    reset-before form (one (3H,) bias). Its weights, taken from Keras's GRU(reset_after=False),
    must reproduce that layer as Keras runs it; catches the missing key read as Keras 3's
    default True (a reset-after GRU with the bias all in bias_ih: outputs off by ~1e-1)."""
    from lstmlite.importers.keras import KerasLayer, model_from_keras_layers

    source = _randomised(keras.Sequential([keras.Input((None, 4)), L.GRU(5, reset_after=False), L.Dense(3)]))
    gru, dense = source.layers
    config = {k: v for k, v in gru.get_config().items() if k != "reset_after"}
    model, info = model_from_keras_layers([KerasLayer("GRU", config, gru.get_weights()),
                                           KerasLayer("Dense", dense.get_config(), dense.get_weights())])
    assert isinstance(model.rnn, GRUResetBefore) and "reset_after=False" in info["cell"]
    x = np.random.default_rng(1).normal(size=(3, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(_ours(model, x, None), source.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backward, match", [
    (lambda: L.GRU(5, reset_after=False, go_backwards=True), r"forward/backward reset_after \(True vs False\)"),
    (lambda: L.GRU(5, use_bias=False, go_backwards=True), r"forward/backward use_bias \(True vs False\)"),
])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_bidirectional_whose_backward_layer_has_another_form_is_refused(backward, match: str, suffix: str,
                                                                          tmp_path) -> None:
    """Keras's backward_layer may be a reset-before GRU beside a reset-after forward one, or have no
    bias; our bidirectional layer has one form. Before, the .h5 of the first imported as a
    reset-after GRU in both directions and ran 0.08 off Keras, silently (.h5 files are not run),
    and the second failed with 'expected 3 weight arrays, found 2'."""
    model = _randomised(keras.Sequential([keras.Input((None, 4)), L.Bidirectional(L.GRU(5), backward_layer=backward()),
                                          L.Dense(3)]))
    model.save(tmp_path / f"m{suffix}")
    with pytest.raises(ModelImportError, match=match):
        import_keras(tmp_path / f"m{suffix}")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_bidirectional_simple_rnn_with_a_relu_backward_layer_is_refused(suffix: str, tmp_path) -> None:
    """A SimpleRNN may be tanh forward and relu backward in Keras; our SimpleRNN has one
    nonlinearity for both directions, so the form is refused naming the two activations, not
    imported with the forward one (the .h5, which is not run, then computes tanh backward too)."""
    model = _randomised(keras.Sequential([keras.Input((None, 4)), L.Bidirectional(
        L.SimpleRNN(5), backward_layer=L.SimpleRNN(5, activation="relu", go_backwards=True)), L.Dense(3)]))
    model.save(tmp_path / f"m{suffix}")
    with pytest.raises(ModelImportError, match=r"forward/backward activations \('tanh' vs 'relu'\)"):
        import_keras(tmp_path / f"m{suffix}")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_second_activation_after_the_head_is_refused(suffix: str, tmp_path) -> None:
    """Dense(softmax) then Activation("sigmoid"): our model re-applies one activation to its logits,
    so a second one is refused, not recorded in place of the first (the .h5, not run, would then
    say its outputs are sigmoid(logits), which is not what Keras computes)."""
    model = _randomised(keras.Sequential([keras.Input((None, 4)), L.LSTM(5), L.Dense(3, activation="softmax"),
                                          L.Activation("sigmoid")]))
    model.save(tmp_path / f"m{suffix}")
    with pytest.raises(ModelImportError, match="Keras layer Activation is not supported"):
        import_keras(tmp_path / f"m{suffix}")


TF_KERAS_BUILDERS = {
    "lstm_tokens": lambda K: K.Sequential([K.layers.Embedding(VOCAB, 6), K.layers.LSTM(5),
                                           K.layers.Dense(3, activation="softmax")]),
    "bigru_stack": lambda K: K.Sequential([K.layers.InputLayer(input_shape=(None, 4)),
                                           K.layers.Bidirectional(K.layers.GRU(5, return_sequences=True)),
                                           K.layers.Bidirectional(K.layers.GRU(4)), K.layers.Dense(2)]),
    "gru_reset_before": lambda K: K.Sequential([K.layers.InputLayer(input_shape=(None, 4)),
                                                K.layers.GRU(5, reset_after=False), K.layers.Dense(2)]),
}


@pytest.mark.parametrize("name", sorted(TF_KERAS_BUILDERS))
def test_h5_written_by_keras_2_matches_keras_2(name: str, tmp_path) -> None:
    """Legacy .h5 files mostly come from Keras 2 (tf.keras / tf_keras), whose configs and weight
    names differ from Keras 3's, and an .h5 import is not run: hold it to tf_keras's own predict."""
    K = pytest.importorskip("tf_keras")
    source = TF_KERAS_BUILDERS[name](K)
    tokens = name == "lstm_tokens"
    source.build((None, None) if tokens else (None, None, 4))
    rng = np.random.default_rng(0)
    for layer in source.layers:
        layer.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in layer.get_weights()])
    source.save(tmp_path / "m.h5")
    model = import_keras(tmp_path / "m.h5")
    x = rng.integers(0, VOCAB, (3, 7)) if tokens else rng.normal(size=(3, 7, 4)).astype(np.float32)
    np.testing.assert_allclose(_ours(model, x, model.import_info["output_activation"]),
                               source.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_a_softmax_layer_over_time_is_refused_not_recorded_as_over_the_classes(tmp_path) -> None:
    """A ``Softmax(axis=1)`` after a per-step head normalizes over time, not over the classes:
    the .h5 import (not run against Keras) recorded it as the usual softmax, silently, and
    the .keras one failed its check with a bare max error. Both now refuse it naming the
    axis; ``axis=-1`` and ``axis=2`` (the classes) still import as softmax, matching Keras."""
    for axis in (1, -2):
        keras_model = _randomised(keras.Sequential([keras.Input((None, 3)), L.LSTM(4, return_sequences=True),
                                                    L.Dense(5), L.Softmax(axis=axis)]))
        for suffix in ("keras", "h5"):
            path = tmp_path / f"over-time{axis}.{suffix}"
            keras_model.save(path)
            with pytest.raises(ModelImportError, match=rf"Softmax over axis {axis} of the \(B, T, C\) output is "
                                                       r"not supported"):
                import_keras(path)
    keras_model = _randomised(keras.Sequential([keras.Input((None, 3)), L.LSTM(4, return_sequences=True),
                                                L.Dense(5), L.Softmax(axis=2)]))
    keras_model.save(tmp_path / "classes.h5")
    model = import_keras(tmp_path / "classes.h5")
    assert model.import_info["output_activation"] == "softmax"
    x = np.random.default_rng(0).standard_normal((2, 7, 3)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
        ours = torch.softmax(logits[0] if isinstance(logits, tuple) else logits, -1).numpy()
    np.testing.assert_allclose(ours, keras_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
