"""Task models (classifier, language model, forecaster) in the runtime against the
lstmlite.nn models themselves, run dirs and .lsl files, compressed models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite import runtime as rt
from lstmlite.nn import Forecaster, LanguageModel, SequenceClassifier

from .conftest import rel_err
from .test_engine import dequantized


def _tokens(rng, vocab, shape):
    return rng.integers(1, vocab, size=shape).astype(np.int64)


CLASSIFIERS = [
    dict(vocab_size=50, embed_dim=8, hidden_size=12, n_classes=4, pooling="last"),
    dict(vocab_size=50, embed_dim=8, hidden_size=12, n_classes=4, pooling="mean", num_layers=2),
    dict(vocab_size=50, embed_dim=8, hidden_size=12, n_classes=4, pooling="max", bidirectional=True),
    dict(vocab_size=50, embed_dim=8, hidden_size=12, n_classes=4, pooling="last", bidirectional=True, cell="gru"),
    dict(input_size=6, hidden_size=10, n_classes=3, cell="gru", num_layers=2),
]


@pytest.mark.parametrize("weights", ["fp32", "int8"])
@pytest.mark.parametrize("cfg", CLASSIFIERS, ids=lambda c: f"{c.get('cell', 'lstm')}-{c['pooling'] if 'pooling' in c else 'last'}"
                         f"{'-bi' if c.get('bidirectional') else ''}{'-tok' if 'vocab_size' in c else '-feat'}")
def test_classifier_matches_model_with_lengths(isa, cfg, weights):
    torch.manual_seed(0)
    model = SequenceClassifier(**cfg).eval()
    oracle = model if weights == "fp32" else dequantized(model)
    rng = np.random.default_rng(0)
    lengths = np.array([7, 3, 1, 5])
    if "vocab_size" in cfg:
        x = _tokens(rng, 50, (4, 7))
    else:
        x = rng.standard_normal((4, 7, 6)).astype(np.float32)
    with torch.no_grad():
        ref = oracle(torch.from_numpy(x), lengths=torch.from_numpy(lengths)).numpy()
    engine = rt.Engine.from_torch(model, weights=weights)
    assert rel_err(engine.run(x, lengths=lengths), ref) < 1e-5
    with torch.no_grad():
        full = oracle(torch.from_numpy(x)).numpy()
    assert rel_err(engine.run(x), full) < 1e-5


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_language_model_run_and_streaming_match(isa, weights):
    torch.manual_seed(1)
    model = LanguageModel(vocab_size=30, embed_dim=10, hidden_size=10, num_layers=2, tie_weights=True).eval()
    oracle = model if weights == "fp32" else dequantized(model)
    tokens = _tokens(np.random.default_rng(1), 30, (2, 9))
    with torch.no_grad():
        ref, _ = oracle(torch.from_numpy(tokens))
    engine = rt.Engine.from_torch(model, weights=weights)
    logits = engine.run(tokens)
    assert logits.shape == (2, 9, 30)
    assert rel_err(logits, ref.numpy()) < 1e-5
    state = engine.new_state(batch=2)
    stepped = np.stack([engine.step(tokens[:, t], state) for t in range(9)], axis=1)
    assert rel_err(stepped, logits) < 1e-5
    single = engine.new_state()
    assert rel_err(engine.step(int(tokens[0, 0]), single), logits[0, 0]) < 1e-5
    with pytest.raises(ValueError, match="token id 30 is outside"):  # checked before the cast to int32
        engine.run(np.array([[1, 30]]))
    with pytest.raises(ValueError, match=r"token id -1 is outside this model's vocabulary \[0, 30\)"):
        engine.run(np.array([[1, -1]]))  # a negative id, named by the Python check (not C's bare error code)
    out = np.empty(engine._model.run_out_floats(2), np.float32)
    with pytest.raises(rt.RuntimeError_):  # and in C: an error code, not a read past the table
        engine._model.run(np.array([[1, 30]], np.int32), None, None, out, 1)
    with pytest.raises(TypeError):
        engine.run(np.zeros((1, 3), np.float32))


@pytest.mark.parametrize("targets,instance_norm", [(1, True), (2, True), (1, False)])
def test_forecaster_matches_model(isa, targets, instance_norm):
    torch.manual_seed(2)
    model = Forecaster(input_size=3, horizon=5, targets=targets, hidden_size=12, instance_norm=instance_norm).eval()
    x = (np.random.default_rng(2).standard_normal((3, 8, 3)) + 5).astype(np.float32)
    lengths = np.array([8, 6, 2])
    with torch.no_grad():
        ref = model(torch.from_numpy(x), lengths=torch.from_numpy(lengths)).numpy()
    out = rt.Engine.from_torch(model).run(x, lengths=lengths)
    assert out.shape == ref.shape
    assert rel_err(out, ref) < 1e-5


@pytest.mark.parametrize("pad", [np.nan, np.inf, 1e30])
def test_forecaster_ignores_what_the_padding_holds(pad):
    """Steps past a window's length are ignored (Engine.run's contract): with instance
    normalisation the level was a product of x and the 0/1 mask, so NaN or inf padding
    (NaN * 0 = NaN) made every forecast of the row NaN. The forecast equals the
    model's on the same window padded with zeros."""
    torch.manual_seed(3)
    model = Forecaster(input_size=3, horizon=4, targets=2, hidden_size=8).eval()
    x = (np.random.default_rng(3).standard_normal((3, 7, 3)) + 4).astype(np.float32)
    lengths = np.array([7, 4, 1])
    padded = x.copy()
    for b, n in enumerate(lengths):
        x[b, n:] = 0.0
        padded[b, n:] = pad
    with torch.no_grad():
        ref = model(torch.from_numpy(x), lengths=torch.from_numpy(lengths)).numpy()
    got = rt.Engine.from_torch(model).run(padded, lengths=lengths)
    assert np.isfinite(got).all()
    assert rel_err(got, ref) < 1e-5


@pytest.mark.parametrize("instance_norm", [False, True])
def test_forecaster_keeps_the_horizon_by_target_layout(tmp_path, instance_norm):
    """A forecaster (horizon 2, targets 3 of 4 features) whose head has zero weights and bias j on
    row j, saved as a run, exported to a .lsl file and loaded: run()'s forecast[b, h, k] is exactly h * 3 + k (plus
    feature k's mean over the valid steps with RevIN), equal to the model's output, and without
    RevIN a stream's step output is that layout flattened, horizon-major (row h * 3 + k). Catches
    the runtime's reshape to (targets, horizon), and the same swap made in model and runtime
    together (their comparison alone then passes)."""
    from lstmlite.io import save_run

    torch.manual_seed(0)
    model = Forecaster(input_size=4, hidden_size=5, horizon=2, targets=3, instance_norm=instance_norm).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.arange(6, dtype=torch.float32))
    engine = rt.load(rt.export_lsl(save_run(tmp_path / "run", model, {"task": "forecast"}), tmp_path / "f.lsl"))
    assert (engine.meta["horizon"], engine.meta["targets"]) == (2, 3)
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 6, 4)) + np.array([10.0, -20.0, 30.0, 5.0])).astype(np.float32)
    lengths = np.array([6, 3])
    level = np.stack([x[b, :n].mean(0) for b, n in enumerate(lengths)])  # (B, F) over the valid steps
    expected = np.arange(6, dtype=np.float32).reshape(1, 2, 3) + level[:, None, :3] * instance_norm
    got = engine.run(x, lengths=lengths)
    assert got.shape == (2, 2, 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    with torch.no_grad():
        assert rel_err(got, model(torch.from_numpy(x), lengths=torch.from_numpy(lengths)).numpy()) < 1e-5
    if not instance_norm:  # streaming: the head's rows as they are
        for t in range(6):
            flat = engine.step(x[0, t])
        np.testing.assert_allclose(flat.reshape(2, 3), expected[0], rtol=0, atol=1e-6)


def test_unsupported_cells_are_refused_in_one_line_naming_the_nearest_form():
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=2, cell="glstm",
                               rnn_options={"groups": 2})
    with pytest.raises(ValueError, match=r"LSTM, GRU and FastGRNN layers, not GroupedLSTM \(nearest exportable"):
        rt.Engine.from_torch(model)


def test_mean_pooled_classifier_cannot_stream():
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=2, pooling="mean")
    engine = rt.Engine.from_torch(model)
    with pytest.raises(rt.RuntimeError_):
        engine.step(np.zeros(4, np.float32))


@pytest.mark.parametrize("cfg,words", [
    (dict(pooling="max"), "cannot stream a max-pooled classifier"),
    (dict(pooling="last", bidirectional=True), "layer 0 is bidirectional"),
    (dict(pooling="last", num_layers=2, bidirectional=True, cell="gru"), "layer 0 is bidirectional"),
], ids=["max-pooled", "bidirectional", "bidirectional-gru-stack"])
def test_models_that_cannot_stream_say_why_and_what_to_use(cfg, words):
    """step() of a model the C step cannot run (a bidirectional layer, a mean/max-pooled
    head) answered with the bare code "lstmlite runtime error -4: not supported for this
    model"; it names the reason and run() instead, still as the runtime's error, and
    run() of the same model gives the PyTorch model's output."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3, **cfg).eval()
    engine = rt.Engine.from_torch(model)
    with pytest.raises(rt.RuntimeError_, match=words + r".*run\(\)") as err:
        engine.step(np.zeros(4, np.float32))
    assert "error -4" not in str(err.value)
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    with torch.no_grad():
        assert rel_err(engine.run(x), model(torch.from_numpy(x)).numpy()) < 1e-5


def test_run_dir_load_and_lsl_export_round_trip(tmp_path):
    from lstmlite.io import save_run

    torch.manual_seed(3)
    model = SequenceClassifier(vocab_size=40, embed_dim=6, hidden_size=9, n_classes=3, num_layers=2).eval()
    run = save_run(tmp_path / "run", model, {"task": "classify"})
    tokens = _tokens(np.random.default_rng(3), 40, (2, 5))
    with torch.no_grad():
        ref = model(torch.from_numpy(tokens)).numpy()
    assert rel_err(rt.load(run).run(tokens), ref) < 1e-5
    path = rt.export_lsl(run, tmp_path / "out" / "model.lsl")
    engine = rt.load(path)
    assert rel_err(engine.run(tokens), ref) < 1e-5
    assert engine.meta["kind"] == "classifier"
    spec = rt.read_lsl(path)
    assert spec.layers[1].input_size == 9 and spec.embedding.shape == (40, 6)
    np.testing.assert_array_equal(spec.head_weight, model.head.weight.detach().numpy())
    int8 = rt.load(rt.export_lsl(run, tmp_path / "int8.lsl", weights="int8"))
    assert int8.info["layers"][0]["weights"] == "int8"
    with pytest.raises(FileNotFoundError):
        rt.load(tmp_path / "missing.lsl")


def test_quantized_run_uses_its_own_codes_exactly(tmp_path):
    """A model compressed with weight-only int8 runs from its stored codes and scales:
    the runtime equals the compressed model itself (per-tensor scales included)."""
    compress = pytest.importorskip("lstmlite.compress")
    if not hasattr(compress, "WeightQuantConfig"):
        pytest.skip("weight quantization not available")
    torch.manual_seed(4)
    model = SequenceClassifier(input_size=5, hidden_size=16, n_classes=3, num_layers=2).eval()
    compress.compress_(model, compress.WeightQuantConfig(bits=8, granularity="per_tensor"))
    x = np.random.default_rng(4).standard_normal((3, 6, 5)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    spec = rt.spec_from_module(model)
    assert rt.lsl.has_int8(spec)
    engine = rt.Engine(spec, weights="fp32")  # int8 tensors stay int8 either way
    assert engine.info["layers"][0]["weights"] == "int8"
    assert rel_err(engine.run(x), ref) < 1e-5


@pytest.mark.parametrize("order", ["prune-then-quantize", "quantize-then-prune"])
def test_compressed_models_run_what_the_model_computes_in_either_order(order):
    """Codes quantized before a pruning mask no longer hold the model's weights; the
    codes with the mask applied do (same scales), so the engine gets int8 codes in
    either order and computes what the model computes."""
    from lstmlite.compress import MagnitudePruneConfig, WeightQuantConfig, compress_

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=12, hidden_size=32, n_classes=4).eval()
    steps = [MagnitudePruneConfig(sparsity=0.5), WeightQuantConfig(bits=8)]
    for config in (steps if order == "prune-then-quantize" else steps[::-1]):
        compress_(model, config)
    spec = rt.spec_from_module(model)
    codes_used = isinstance(spec.layers[0].directions[0]["w_hh"], rt.QTensor)
    assert codes_used
    x = np.random.default_rng(0).standard_normal((3, 9, 12)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert rel_err(rt.Engine(spec).run(x), ref) < 1e-5
