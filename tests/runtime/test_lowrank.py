"""Low-rank matrices (W = U V, from lstmlite.compress's LowRankConfig) in the runtime:
the engine computes (x V^T) U^T and must equal the PyTorch model that multiplies the
factors out, for float and int8 factors, whole sequences and streaming; .lsl files
keep the factors and refuse inconsistent ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite import runtime as rt
from lstmlite.compress import LowRankConfig, WeightQuantConfig, compress_
from lstmlite.nn import LanguageModel, SequenceClassifier
from lstmlite.runtime.lsl import LowRankTensor, QTensor, read_lsl, spec_from_module, write_lsl

from .conftest import rel_err

MODELS = {
    "lstm-classifier": lambda: SequenceClassifier(input_size=12, hidden_size=64, n_classes=4),
    "gru-2-layer-bidirectional": lambda: SequenceClassifier(input_size=10, hidden_size=48, n_classes=3, cell="gru",
                                                            num_layers=2, bidirectional=True, pooling="mean"),
    "lstm-language-model": lambda: LanguageModel(vocab_size=30, embed_dim=16, hidden_size=40),
}


def _inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    if getattr(model, "embedding", None) is not None:
        return rng.integers(0, 30, (3, 11))
    return rng.standard_normal((3, 11, model.rnn.input_size)).astype(np.float32)


def _low_rank(kind, quantized, rank=6):
    torch.manual_seed(0)
    model = MODELS[kind]().eval()
    compress_(model, LowRankConfig(rank=rank))
    if quantized:
        compress_(model, WeightQuantConfig(bits=8))
    return model


@pytest.mark.parametrize("quantized", [False, True], ids=["fp32-factors", "int8-factors"])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_low_rank_engine_matches_the_model(isa, kind, quantized):
    model = _low_rank(kind, quantized)
    spec = spec_from_module(model)
    w_hh = spec.layers[0].directions[0]["w_hh"]
    assert isinstance(w_hh, LowRankTensor) and _rank(w_hh) == 6
    assert all(isinstance(f, QTensor) == quantized for f in w_hh)
    engine = rt.Engine(write_lsl(spec, weights="int8" if quantized else "fp32"))
    assert engine.info["layers"][0]["rank_hh"] == 6 and engine.info["layers"][0]["rank_ih"] == 6
    assert engine.info["layers"][0]["weights"] == ("int8" if quantized else "fp32")
    x = _inputs(model)
    with torch.no_grad():
        ref = model(torch.as_tensor(x))
    ref = (ref[0] if isinstance(ref, tuple) else ref).numpy()  # a language model also returns its state
    assert rel_err(engine.run(x), ref) < 1e-5


def _rank(t: LowRankTensor) -> int:
    return (t.u.q if isinstance(t.u, QTensor) else t.u).shape[1]


def test_low_rank_streaming_equals_whole_sequences():
    model = _low_rank("lstm-classifier", quantized=True)
    engine = rt.Engine(spec_from_module(model))
    x = _inputs(model, seed=1)[:1]
    state = engine.new_state()
    outs = [engine.step(x[0, t], state) for t in range(x.shape[1])]
    assert rel_err(outs[-1], engine.run(x)[0]) < 1e-6


def test_low_rank_files_round_trip_and_stay_small():
    model = _low_rank("lstm-classifier", quantized=False, rank=4)
    spec = spec_from_module(model)
    low = write_lsl(spec, version=1)
    assert int.from_bytes(low[8:12], "little") == 1  # dense factors need no new version
    back = read_lsl(low).layers[0].directions[0]["w_hh"]
    original = spec.layers[0].directions[0]["w_hh"]
    np.testing.assert_array_equal(back.u, original.u)
    np.testing.assert_array_equal(back.v, original.v)
    full = spec_from_module(SequenceClassifier(input_size=12, hidden_size=64, n_classes=4))
    assert len(low) < 0.5 * len(write_lsl(full))
    # the low-rank form can be asked for int8: each factor is quantized per row
    int8 = read_lsl(write_lsl(spec, weights="int8")).layers[0].directions[0]["w_hh"]
    assert isinstance(int8.u, QTensor) and isinstance(int8.v, QTensor)


def test_a_pruned_product_is_not_factored():
    """A mask over U V is no longer a rank-r product: the engine takes the dense W."""
    from lstmlite.compress import MagnitudePruneConfig

    model = _low_rank("lstm-classifier", quantized=False)
    compress_(model, MagnitudePruneConfig(sparsity=0.5))
    spec = spec_from_module(model)
    assert not isinstance(spec.layers[0].directions[0]["w_hh"], LowRankTensor)
    x = _inputs(model)
    with torch.no_grad():
        ref = model(torch.as_tensor(x)).numpy()
    assert rel_err(rt.Engine(spec).run(x), ref) < 1e-5


def test_inconsistent_factors_are_refused():
    model = _low_rank("lstm-classifier", quantized=False)
    spec = spec_from_module(model)
    good = spec.layers[0].directions[0]["w_hh"]
    data = write_lsl(spec)
    # rename l0.0.w_hh.u so that the U factor is missing
    broken = data.replace(b"\x0bl0.0.w_hh.u", b"\x0bl0.0.w_hh.x", 1)  # length-prefixed name
    assert broken != data
    with pytest.raises(rt.RuntimeError_):
        rt.Engine(broken)
    # factors whose inner sizes disagree
    spec.layers[0].directions[0]["w_hh"] = LowRankTensor(good.u[:, :5].copy(), good.v)
    with pytest.raises(ValueError, match="factors"):
        spec.validate()
