"""The .lsl writer: a compressed model's file computes what the model computes.

Oracle: the PyTorch model itself (its effective, compressed weights), run beside the
native runtime on the written file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite.compress import MagnitudePruneConfig, WeightQuantConfig, compress_
from lstmlite.compress.quantize import quantized_tensors
from lstmlite.export.lsl import spec_from_module, write_lsl
from lstmlite.export.size import account
from lstmlite.nn import LanguageModel, SequenceClassifier
from lstmlite.runtime import Engine
from lstmlite.runtime.lsl import QTensor, describe_lsl, read_lsl


def test_codes_one_step_off_the_pruned_weights_are_not_stored_as_they_are():
    """Pruning 1 % after quantizing zeroes weights whose codes are +-1: codes within one scale
    step of the model's weights are still not its weights, so the file must hold the codes with
    the mask applied (or floats), and compute exactly what the model computes."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=12, hidden_size=32, n_classes=4).eval()
    compress_(model, WeightQuantConfig(bits=8))
    compress_(model, MagnitudePruneConfig(sparsity=0.01), filter=lambda fqn, module, name: name == "weight_hh_l0")
    codes = quantized_tensors(model)["rnn.weight_hh_l0"].codes
    stale = (model.rnn.weight_hh_l0.detach() == 0) & (codes != 0)
    assert stale.any() and int(codes[stale].abs().max()) == 1  # the premise: off by one step only
    x = 3 * np.random.default_rng(0).standard_normal((3, 9, 12)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = Engine(write_lsl(spec_from_module(model), weights="auto")).run(x)
    # the same codes and scales on both sides: float rounding only (one stale code moves it ~1e-5)
    assert np.max(np.abs(got - expected)) <= 2e-6 * max(1.0, float(np.max(np.abs(expected))))


@pytest.mark.parametrize("bits", [8, 4])
def test_a_tied_language_models_head_is_stored_as_its_embeddings_codes(bits):
    """A language model whose head is its embedding, quantized: quantized_tensors names the tied
    tensor once (embedding.weight), but the file stores the head as a matrix of its own, which must
    hold those same codes and scales -- not the dequantized floats at four bytes a weight."""
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=60, embed_dim=8, hidden_size=8, tie_weights=True).eval()
    compress_(model, WeightQuantConfig(bits=bits))
    blob = write_lsl(spec_from_module(model), weights="auto")
    dtypes = {row["name"]: row["dtype"] for row in describe_lsl(blob)}
    assert dtypes["head.w"] == dtypes["emb"] == f"int{bits}"
    codes = quantized_tensors(model)["embedding.weight"]
    back = read_lsl(blob)
    assert isinstance(back.head_weight, QTensor)
    assert np.array_equal(back.head_weight.q, codes.codes.numpy())
    assert np.array_equal(back.head_weight.scale, codes.scales.numpy())
    tokens = np.random.default_rng(0).integers(0, 60, (2, 7))
    with torch.no_grad():
        expected = model(torch.from_numpy(tokens))[0].numpy()
    assert np.max(np.abs(Engine(blob).run(tokens) - expected)) <= 1e-5 * max(1.0, float(np.max(np.abs(expected))))
    assert account(model).size_bytes == len(blob)


@pytest.mark.parametrize("weights", ["int8", "int4", "int7", "int7r"])
def test_rounded_reference_computes_what_the_rounded_file_computes(weights):
    """rounded_reference(model, weights) is the oracle of a file the export rounds: the model with
    every float matrix carrying the codes write_lsl gives it (int7: 7-bit matrices, 8-bit
    embedding; int7r: 7 bits for w_hh only) and its own codes elsewhere (here the head, int4)."""
    from lstmlite.export.lsl import rounded_reference

    torch.manual_seed(0)
    model = SequenceClassifier(vocab_size=40, embed_dim=6, hidden_size=12, n_classes=3, cell="gru").eval()
    compress_(model, WeightQuantConfig(bits=4), filter=lambda fqn, module, name: fqn == "head" and name == "weight")
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(4)  # rounding it moves the logits well past the check's bound
    reference = rounded_reference(model, weights)
    assert quantized_tensors(reference)["head.weight"].codes.equal(quantized_tensors(model)["head.weight"].codes)
    tokens = np.random.default_rng(0).integers(0, 40, (3, 8))
    with torch.no_grad():
        expected = reference(torch.from_numpy(tokens)).numpy()
        unrounded = model(torch.from_numpy(tokens)).numpy()
    got = Engine(write_lsl(spec_from_module(model), weights=weights)).run(tokens)
    assert np.max(np.abs(got - expected)) <= 1e-5 * max(1.0, float(np.max(np.abs(expected))))
    assert np.max(np.abs(got - unrounded)) > 1e-4  # the premise: the file is not the float model


def test_rounded_reference_refuses_a_tied_model_the_form_rounds_at_two_widths():
    from lstmlite.export.lsl import rounded_reference

    model = LanguageModel(vocab_size=30, embed_dim=8, hidden_size=8, tie_weights=True).eval()
    with pytest.raises(ValueError, match="tied embedding.weight, head.weight at different widths"):
        rounded_reference(model, "int7")
    assert rounded_reference(model, "int8") is not model


@pytest.mark.parametrize("wrank", [None, 3])
def test_a_trained_fastgrnn_file_computes_what_the_model_computes(wrank):
    """A FastGRNN initialises its gate and update biases alike (all ones) and ζ, ν to constants,
    so a file that swapped the two biases (or ζ and ν) ran like the model on every untrained
    layer in the tests. With every parameter moved apart, as training does, the native runtime
    must give the model's logits (catches bias_gate / bias_update stored in each other's slot)."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=5, cell="fastgrnn", hidden_size=[8, 6], num_layers=2, n_classes=3,
                               rnn_options={} if wrank is None else {"wrank": wrank}).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=generator))
    assert not torch.equal(model.rnn.bias_gate_l0, model.rnn.bias_update_l0)
    x = np.random.default_rng(2).standard_normal((3, 9, 5)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = Engine(write_lsl(spec_from_module(model), weights="fp32")).run(x)
    assert np.max(np.abs(got - expected)) <= 1e-5 * max(1.0, float(np.max(np.abs(expected))))


@pytest.mark.parametrize("weights", ["int4", "int7", "int7r"])
def test_export_lsl_refuses_fewer_bits_than_the_runs_codes(tmp_path, weights):
    """The library's export_lsl(run, weights="int4" / "int7" / "int7r") of an int8 run raises
    naming the int8 matrices and the source run to export instead, and writes nothing: it
    wrote the int8 file (bigger than asked) without a word; only the CLI refused. int8 of
    that run is written."""
    from lstmlite.export.lsl import export_lsl
    from lstmlite.io import save_run

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=16, n_classes=3).eval()
    compress_(model, WeightQuantConfig(bits=8))
    from lstmlite.compress import compression_state

    run = save_run(tmp_path / "int8", model, {"task": "classify", "compression": compression_state(model)})
    (run / "recipe.json").write_text('{"source_run": "runs/float"}')
    with pytest.raises(ValueError) as caught:
        export_lsl(run, tmp_path / "x.lsl", weights=weights)
    message = str(caught.value)
    first = "l0.0.w_hh" if weights == "int7r" else "l0.0.w_ih"  # int7r rounds the recurrent matrices only
    assert message.startswith(f"weights={weights}: this run's weights are already int8 codes ({first}")
    assert f"export the float run (runs/float) with weights={weights}" in message
    assert not (tmp_path / "x.lsl").exists()
    assert export_lsl(run, tmp_path / "8.lsl", weights="int8").stat().st_size > 0
