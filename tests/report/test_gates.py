"""Gate activations against an independent oracle: the NumPy reference LSTM/GRU
(src/lstmlite/reference), fed the same effective weights, records every gate."""

import numpy as np
import pytest
import torch

from lstmlite.compress import LowRankConfig, MagnitudePruneConfig, WeightQuantConfig, compress_
from lstmlite.nn import Forecaster, SequenceClassifier
from lstmlite.reference.gru import gru_forward
from lstmlite.reference.lstm import lstm_forward
from lstmlite.report.gates import describe, record_gates, rnn_input


def _effective_params(model) -> dict[str, np.ndarray]:
    rnn = model.rnn
    return {name: getattr(rnn, name).detach().double().numpy()
            for layer in range(rnn.num_layers) for name in rnn.weight_names(layer)}


def _model(cell="lstm", compress=None, **kw):
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=5, hidden_size=6, num_layers=2, n_classes=3, cell=cell, **kw)
    for config in compress or []:
        compress_(model, config)
    return model.eval()


@pytest.mark.parametrize("compress", [
    None,
    [MagnitudePruneConfig(sparsity=0.5), WeightQuantConfig(bits=8)],
    [LowRankConfig(rank=2)],
], ids=["dense", "pruned-int8", "lowrank"])
def test_lstm_gates_match_the_numpy_reference(compress):
    model = _model("lstm", compress)
    x = torch.randn(9, 5)
    layers = record_gates(model, x)
    inputs = rnn_input(model, x.unsqueeze(0)).detach().double().numpy()
    _, _, _, cache = lstm_forward(_effective_params(model), inputs)
    assert len(layers) == 2
    for k, layer in enumerate(layers):
        for gate in ("i", "f", "g", "o", "c", "h"):
            np.testing.assert_allclose(layer[gate], cache.activations(gate, layer=k)[0], atol=2e-6,
                                       err_msg=f"layer {k} gate {gate}")


def test_gru_gates_match_the_numpy_reference():
    model = _model("gru")
    x = torch.randn(7, 5)
    layers = record_gates(model, x)
    _, _, cache = gru_forward(_effective_params(model), x.unsqueeze(0).double().numpy())
    for k, layer in enumerate(layers):
        for gate in ("r", "z", "n", "h"):
            np.testing.assert_allclose(layer[gate], cache.activations(gate, layer=k)[0], atol=2e-6)


def test_compression_changes_the_recorded_gates():
    x = torch.randn(9, 5)
    dense = record_gates(_model("lstm"), x)
    pruned = record_gates(_model("lstm", [MagnitudePruneConfig(sparsity=0.8)]), x)
    assert np.abs(dense[0]["f"] - pruned[0]["f"]).max() > 1e-3


def test_token_model_gates_read_the_embedding():
    torch.manual_seed(0)
    model = SequenceClassifier(vocab_size=20, embed_dim=4, hidden_size=6, n_classes=2).eval()
    ids = torch.tensor([3, 5, 7, 1])
    layers = record_gates(model, ids)
    params = _effective_params(model)
    _, _, _, cache = lstm_forward(params, model.embedding(ids).detach().double().numpy()[None])
    np.testing.assert_allclose(layers[0]["f"], cache.activations("f")[0], atol=2e-6)


def test_forecaster_input_is_its_level_removed_over_the_valid_steps() -> None:
    """For an instance-norm forecaster, what the recurrent layer reads is each row minus its
    mean over its OWN valid steps, 0 past its length (NumPy oracle on a padded batch whose
    padding holds 100s), and the gates recorded for one row read the same input. Catches
    the level averaged over the padding too."""
    torch.manual_seed(0)
    model = Forecaster(input_size=2, horizon=3, hidden_size=6).eval()
    x = torch.randn(2, 5, 2)
    lengths = torch.tensor([5, 3])
    x[1, 3:] = 100.0
    got = rnn_input(model, x, lengths).detach().numpy()
    for k, n in enumerate(lengths.tolist()):
        valid = x[k, :n].numpy().astype(np.float64)
        np.testing.assert_allclose(got[k, :n], valid - valid.mean(0), atol=1e-6)
        assert np.all(got[k, n:] == 0)
    layers = record_gates(model, x[1, :3])
    _, _, _, cache = lstm_forward(_effective_params(model), got[1:, :3].astype(np.float64))
    np.testing.assert_allclose(layers[0]["f"], cache.activations("f")[0], atol=2e-6)


@pytest.mark.parametrize("cell, gates", [("lstm", "ifgo"), ("gru", "rzn")])
def test_describe_is_each_gates_mean_over_all_steps_and_units(cell: str, gates: str) -> None:
    """``describe`` gives, per layer, every gate's mean over all steps and units (NumPy mean of
    the recorded (T, H) array) and leaves out the states c and h. Catches a mean of the last
    step only."""
    layers = record_gates(_model(cell), torch.randn(8, 5))
    summary = describe(layers)
    assert list(summary) == ["layer 0", "layer 1"]
    for k, layer in enumerate(layers):
        assert sorted(summary[f"layer {k}"]) == sorted(gates)
        for g in gates:
            assert summary[f"layer {k}"][g] == pytest.approx(float(np.mean(layer[g])), abs=1e-7)


def test_cells_without_gates_and_bidirectional_are_refused():
    with pytest.raises(ValueError, match="LSTM or GRU"):
        record_gates(SequenceClassifier(input_size=3, hidden_size=4, n_classes=2, cell="fastgrnn"), torch.randn(3, 3))
    with pytest.raises(ValueError, match="bidirectional"):
        record_gates(SequenceClassifier(input_size=3, hidden_size=4, n_classes=2, bidirectional=True),
                     torch.randn(3, 3))


def test_the_replay_is_checked_against_the_fused_kernel(monkeypatch) -> None:
    """A replay 1e-3 off the fused LSTM's output is refused (the heatmaps would show another
    model), one 1e-6 off is not; catches the 1e-4 tolerance loosened or the check skipped."""
    import lstmlite.report.gates as gates_mod

    model = _model()
    x = torch.randn(6, model.rnn.input_size)
    real = gates_mod._lstm_steps
    for offset, refused in ((1e-3, True), (1e-6, False)):
        monkeypatch.setattr(gates_mod, "_lstm_steps",
                            lambda w, xs, d=offset: (lambda r: (r[0], r[1] + d))(real(w, xs)))
        if refused:
            with pytest.raises(RuntimeError, match="replayed gates disagree with the fused kernel"):
                record_gates(model, x)
        else:
            record_gates(model, x)


@pytest.mark.parametrize("training", [True, False])
def test_record_gates_leaves_the_models_mode_as_it_was(training) -> None:
    """Recording runs in eval mode and gives the mode back; catches a training model left in
    eval (its dropout silently off for the rest of training)."""
    model = _model().train(training)
    record_gates(model, torch.randn(4, model.rnn.input_size))
    assert model.training is training


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")  # torch's notice
def test_projected_lstm_gates_by_hand_from_its_weights() -> None:
    """An LSTM with proj_size (h = W_hr (o ⊙ tanh c), 2 layers): every gate, c and the
    projected h, against a NumPy loop written out here from the layer's own weights in
    PyTorch's order i, f, g, o, whose last h is also nn.LSTM's output. Planted and failing
    it: the projection dropped from the replay (h of width H fed back through W_hh, whose
    width is the projection's), which no other test's model has."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=6, num_layers=2, n_classes=2,
                               rnn_options={"proj_size": 2}).eval()
    x = torch.randn(5, 3)
    layers = record_gates(model, x)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    current = x.double().numpy()
    for k, layer in enumerate(layers):
        w = {name: getattr(model.rnn, f"{name}_l{k}").detach().double().numpy()
             for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")}
        h, c, outputs = np.zeros(2), np.zeros(6), []
        for t, x_t in enumerate(current):
            a = w["weight_ih"] @ x_t + w["bias_ih"] + w["weight_hh"] @ h + w["bias_hh"]
            i, f, g, o = sigmoid(a[:6]), sigmoid(a[6:12]), np.tanh(a[12:18]), sigmoid(a[18:])
            c = f * c + i * g
            h = w["weight_hr"] @ (o * np.tanh(c))
            for name, value in zip("ifgoch", (i, f, g, o, c, h)):
                np.testing.assert_allclose(layer[name][t], value, atol=2e-6, err_msg=f"layer {k} {name} step {t}")
            outputs.append(h)
        current = np.stack(outputs)
    with torch.no_grad():
        fused, _ = model.rnn(x.unsqueeze(0))
    np.testing.assert_allclose(current, fused[0].double().numpy(), atol=2e-6)
