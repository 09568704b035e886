"""FastGRNN in the native runtime: the .lsl layer kind and the C recurrence against the
PyTorch model (lstmlite.nn.FastGRNN, the oracle) in every form compress produces --
fp32, low-rank (its own W1 W2 / U1 U2, or compress's factors), pruned, int8 and int4
-- whole sequences with lengths, and streaming against whole sequences."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from lstmlite import runtime as rt
from lstmlite.compress import LowRankConfig, MagnitudePruneConfig, WeightQuantConfig, compress_
from lstmlite.nn import LanguageModel, SequenceClassifier
from lstmlite.runtime.lsl import LowRankTensor, describe_lsl, read_lsl, spec_from_module, write_lsl

from .conftest import rel_err

OPTIONS = {
    "full": {},
    "low-rank": {"wrank": 3, "urank": 5},
    "tanh-gate": {"gate_nonlinearity": "tanh", "update_nonlinearity": "sigmoid"},
}


def _classifier(options, hidden=20, layers=2, seed=0):
    torch.manual_seed(seed)
    model = SequenceClassifier(input_size=6, hidden_size=hidden, n_classes=3, cell="fastgrnn", num_layers=layers,
                               rnn_options=options).eval()
    with torch.no_grad():  # away from the init (zeta = 1, nu = -4) so both terms of the update matter
        for k in range(layers):
            getattr(model.rnn, f"zeta_l{k}").fill_(0.3 + k)
            getattr(model.rnn, f"nu_l{k}").fill_(-1.0 - k)
    return model


def _torch(model, x, lengths=None):
    with torch.no_grad():
        return model(torch.from_numpy(x), None if lengths is None else torch.as_tensor(lengths)).numpy()


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_fp32_fastgrnn_matches_the_torch_model(isa, kind):
    model = _classifier(OPTIONS[kind])
    engine = rt.Engine(spec_from_module(model))
    assert engine.info["layers"][0]["cell"] == "fastgrnn"
    x = np.random.default_rng(1).standard_normal((4, 11, 6)).astype(np.float32)
    assert rel_err(engine.run(x), _torch(model, x)) < 1e-5
    lengths = np.array([11, 3, 7, 1])
    assert rel_err(engine.run(x, lengths=lengths), _torch(model, x, lengths)) < 1e-5
    if kind == "low-rank":  # the runtime multiplies by the factors, never their product
        assert engine.info["layers"][0]["rank_ih"] == 3 and engine.info["layers"][0]["rank_hh"] == 5


FORMS = {
    "int8": [WeightQuantConfig(bits=8)],
    "int4": [WeightQuantConfig(bits=4)],
    "pruned": [MagnitudePruneConfig(sparsity=0.8)],
    "pruned-int8": [MagnitudePruneConfig(sparsity=0.8), WeightQuantConfig(bits=8)],
    "compress-low-rank": [LowRankConfig(rank=4)],
    "compress-low-rank-int4": [LowRankConfig(rank=4), WeightQuantConfig(bits=4)],
}


# A natively low-rank FastGRNN is not factored again: those pairs are not generated.
@pytest.mark.parametrize("form,native_low_rank", [(f, n) for f in sorted(FORMS) for n in (False, True)
                                                  if not (n and f.startswith("compress-low-rank"))])
def test_compressed_fastgrnn_files_run_as_the_compressed_torch_model(form, native_low_rank):
    model = _classifier(OPTIONS["low-rank" if native_low_rank else "full"], hidden=24, layers=1)
    for config in FORMS[form]:
        compress_(model, config)
    spec = spec_from_module(model)
    blob = write_lsl(spec, weights="int8" if "int" in form else "fp32")
    stored = {r["name"]: r["dtype"] for r in describe_lsl(blob)}
    if form.endswith("int4"):
        # dense int4, or its bitmask form where enough codes round to zero (smaller still)
        assert all(stored[n].startswith("int4") for n in stored if ".w_" in n and not n.endswith((".scale", ".mask")))
    if form.startswith("compress-low-rank"):
        assert isinstance(spec.layers[0].directions[0]["w_hh"], LowRankTensor)
    if form.startswith("pruned") and not native_low_rank:
        assert stored["l0.0.w_hh"].endswith("bitmask-sparse")
    x = np.random.default_rng(2).standard_normal((3, 8, 6)).astype(np.float32)
    assert rel_err(rt.Engine(blob).run(x), _torch(model, x)) < 1e-5


def test_block_sparse_fastgrnn_runs_the_sparse_kernels():
    model = _classifier({}, hidden=32, layers=1)
    compress_(model, MagnitudePruneConfig(sparsity=0.75, block=(1, 4)))
    compress_(model, WeightQuantConfig(bits=8))
    engine = rt.Engine(write_lsl(spec_from_module(model), weights="int8-sparse"), keep_sparse=True)
    assert engine.info["layers"][0]["weights"] == engine.info["layers"][0]["runs_hh"] == "int8-sparse"
    x = np.random.default_rng(3).standard_normal((2, 9, 6)).astype(np.float32)
    assert rel_err(engine.run(x), _torch(model, x)) < 1e-5


def test_streaming_equals_whole_sequences_and_the_torch_language_model():
    torch.manual_seed(4)
    model = LanguageModel(vocab_size=25, embed_dim=8, hidden_size=16, cell="fastgrnn", num_layers=2).eval()
    engine = rt.Engine(spec_from_module(model))
    tokens = np.random.default_rng(5).integers(0, 25, (1, 10))
    whole = engine.run(tokens)[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(tokens))[0][0].numpy()
    assert rel_err(whole, ref) < 1e-5
    state = engine.new_state()
    steps = np.stack([engine.step(tokens[:, t], state).reshape(-1) for t in range(10)])
    assert rel_err(steps, whole) < 1e-6


def test_files_round_trip_and_malformed_fastgrnn_layers_are_refused():
    model = _classifier(OPTIONS["tanh-gate"], hidden=8, layers=1)
    blob = write_lsl(spec_from_module(model), version=3)  # the fixed layer records poked below
    back = read_lsl(blob).layers[0]
    assert (back.cell, back.gate, back.update) == ("fastgrnn", "tanh", "sigmoid")
    with torch.no_grad():
        want = [torch.sigmoid(model.rnn.zeta_l0).item(), torch.sigmoid(model.rnn.nu_l0).item()]
    np.testing.assert_allclose(back.directions[0]["zn"], want, rtol=1e-7)
    layer_off = struct.unpack_from("<Q", blob, 32)[0]
    for field, value in ((24, 0), (28, 7), (16, 2)):  # nonlinearity codes, two directions
        bad = bytearray(blob)
        struct.pack_into("<i", bad, layer_off + field, value)
        with pytest.raises(rt.RuntimeError_):
            rt.Engine(bytes(bad))
        with pytest.raises(rt.LslFormatError):
            read_lsl(bytes(bad))
    old = bytearray(blob)
    old[8:12] = struct.pack("<I", 2)  # FastGRNN layers exist from version 3 on
    with pytest.raises(rt.RuntimeError_):
        rt.Engine(bytes(old))
    with pytest.raises(rt.LslFormatError):
        read_lsl(bytes(old))
