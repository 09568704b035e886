"""Calibration traces against the fused kernel, statistics against NumPy, and the
integer export of a whole model against the float model.

Oracles: the layer's own fused forward (``torch._VF.lstm`` / ``gru``: outputs and
final states), the gate equations recomputed from the traced pre-activations,
``np.percentile`` on the traced values, and the float model for the integer export.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lstmlite.compress import MagnitudePruneConfig, WeightQuantConfig, compress_
from lstmlite.compress.quantize import calibrate, effective_params, integer_params_from_model, trace_recurrent
from lstmlite.compress.quantize.calibrate import value_stats
from lstmlite.nn import GRU, LSTM, Forecaster, LanguageModel, SequenceClassifier
from lstmlite.reference.integer import dequantize_hidden, integer_lstm_forward, quantize_input
from lstmlite.reference.integer_gru import integer_gru_forward

LAYERS = {
    "lstm": lambda: LSTM(4, 6),
    "lstm-stacked-bi": lambda: LSTM(4, [6, 5], num_layers=2, bidirectional=True),
    "lstm-proj": lambda: LSTM(4, 6, proj_size=3),
    "gru": lambda: GRU(4, 6),
    "gru-stacked-bi": lambda: GRU(4, 5, num_layers=2, bidirectional=True),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("with_lengths", [False, True])
def test_trace_reproduces_the_fused_kernel(kind, with_lengths):
    torch.manual_seed(0)
    rnn = LAYERS[kind]()
    x = torch.randn(3, 7, 4)
    lengths = torch.tensor([7, 3, 5]) if with_lengths else None
    with torch.no_grad():
        out, state = rnn(x, lengths=lengths)
    trace = trace_recurrent(rnn, x, lengths)
    mask = trace[0][0]["mask"]
    last = trace[-1]
    got = torch.cat([torch.where(mask[..., None], r["hidden"], 0.0) for r in last], dim=2)
    torch.testing.assert_close(got, out, atol=1e-5, rtol=0)
    for k, dirs in enumerate(trace):
        for d, rec in enumerate(dirs):
            h_n = state[k][0][d] if isinstance(rnn, LSTM) else state[k][d]
            # the final state is the state after each sequence's last step (forward) / t = 0 (reverse)
            t_last = (lengths - 1) if (with_lengths and d == 0) else torch.full((3,), 6 if d == 0 else 0)
            torch.testing.assert_close(rec["hidden"][torch.arange(3), t_last], h_n, atol=1e-5, rtol=0)
            if isinstance(rnn, LSTM):
                torch.testing.assert_close(rec["cell"][torch.arange(3), t_last], state[k][1][d], atol=1e-5, rtol=0)


def test_traced_gates_satisfy_the_lstm_equations():
    torch.manual_seed(1)
    rnn = LSTM(3, 5)
    trace = trace_recurrent(rnn, torch.randn(2, 6, 3))[0][0]
    i, f, g, o = trace["gates"].chunk(4, dim=2)
    c, h = trace["cell"], trace["hidden"]
    c_prev = torch.cat([torch.zeros_like(c[:, :1]), c[:, :-1]], dim=1)
    torch.testing.assert_close(c, torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g))
    torch.testing.assert_close(h, torch.sigmoid(o) * torch.tanh(c))


def test_traced_gru_candidate_uses_reset_times_hn():
    torch.manual_seed(2)
    rnn = GRU(3, 4)
    x = torch.randn(2, 5, 3)
    tr = trace_recurrent(rnn, x)[0][0]
    r, z, n_pre = tr["gates"].chunk(3, dim=2)
    xn = (x @ rnn.weight_ih_l0.T + rnn.bias_ih_l0)[..., 8:]
    torch.testing.assert_close(n_pre, xn + torch.sigmoid(r) * tr["hn"])
    h_prev = torch.cat([torch.zeros_like(tr["hidden"][:, :1]), tr["hidden"][:, :-1]], dim=1)
    torch.testing.assert_close(tr["hidden"], (1 - torch.sigmoid(z)) * torch.tanh(n_pre) + torch.sigmoid(z) * h_prev)


def test_calibration_stats_match_numpy_on_valid_steps():
    torch.manual_seed(3)
    model = SequenceClassifier(input_size=4, hidden_size=6, n_classes=3, bidirectional=True)
    g = torch.Generator().manual_seed(0)
    batches = [{"x": torch.randn(5, 9, 4, generator=g), "lengths": torch.tensor([9, 2, 5, 7, 1])},
               {"x": torch.randn(4, 6, 4, generator=g), "lengths": torch.tensor([6, 6, 3, 4])}]
    cal = calibrate(model, batches)
    assert json.loads(json.dumps(cal)) == cal
    assert (cal["cell"], cal["num_layers"], cal["num_directions"], cal["sequences"]) == ("lstm", 1, 2, 9)
    assert cal["steps"] == 24 + 19
    cells, forget, hidden, xs = [], [], [], []
    for b in batches:
        tr = trace_recurrent(model.rnn, b["x"], b["lengths"])[0][1]  # reverse direction
        m = tr["mask"]
        cells.append(tr["cell"][m].numpy().ravel())
        forget.append(tr["gates"][..., 6:12][m].numpy().ravel())
        hidden.append(tr["hidden"][m].numpy().ravel())
        xs.append(b["x"][m].numpy().ravel())
    for stats, values in ((cal["layers"][0][1]["cell"], cells), (cal["layers"][0][1]["gates"]["f"], forget),
                          (cal["layers"][0][1]["hidden"], hidden), (cal["input"], xs)):
        v = np.concatenate(values).astype(np.float64)
        assert stats["count"] == v.size
        assert stats["min"] == pytest.approx(v.min(), abs=1e-6) and stats["max"] == pytest.approx(v.max(), abs=1e-6)
        assert stats["absmax"] == pytest.approx(np.abs(v).max(), abs=1e-6)
        assert stats["mean"] == pytest.approx(v.mean(), abs=1e-6) and stats["std"] == pytest.approx(v.std(), abs=1e-5)
        for p in ("0.1", "50", "99.9"):
            assert stats["percentiles"][p] == pytest.approx(np.percentile(v, float(p)), abs=1e-6)
        assert stats["abs_percentiles"]["99"] == pytest.approx(np.percentile(np.abs(v), 99), abs=1e-6)
    assert cal["layers"][0][0]["hidden"]["absmax"] < 1.0


def test_calibrate_sees_what_the_layer_sees():
    """Embedding output for a language model; instance-normalised input for a forecaster."""
    torch.manual_seed(4)
    lm = LanguageModel(vocab_size=20, embed_dim=5, hidden_size=6)
    tokens = torch.randint(1, 20, (3, 8))
    cal = calibrate(lm, [tokens])
    emb = lm.embedding(tokens).detach().numpy()
    assert cal["input"]["absmax"] == pytest.approx(np.abs(emb).max(), abs=1e-6)
    fc = Forecaster(input_size=2, horizon=3, hidden_size=4)
    x = torch.randn(4, 10, 2) + 100.0  # a far-off level that instance normalisation removes
    assert calibrate(fc, [(x, torch.zeros(4))])["input"]["absmax"] < 10


def test_percentiles_from_a_bounded_sample_stay_close():
    v = torch.from_numpy(np.random.default_rng(0).normal(size=200_000))
    stats = value_stats(v, max_samples=20_000)
    assert stats["count"] == 200_000 and stats["absmax"] == pytest.approx(float(v.abs().max()))
    assert stats["percentiles"]["99"] == pytest.approx(np.percentile(v.numpy(), 99), abs=0.05)


def test_calibrate_rejects_other_layers_and_empty_input():
    with pytest.raises(TypeError):
        calibrate(torch.nn.Linear(2, 2), [torch.randn(2, 2)])
    with pytest.raises(ValueError):
        calibrate(SequenceClassifier(input_size=2, hidden_size=3, n_classes=2), [])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_integer_export_of_a_model_tracks_the_float_layer(cell, layers, bidirectional):
    torch.manual_seed(5)
    model = SequenceClassifier(input_size=4, cell=cell, hidden_size=8, num_layers=layers,
                               bidirectional=bidirectional, n_classes=3)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 10, 4, generator=g)
    q = integer_params_from_model(model, [x], input_bits=16)
    assert (q.cell, q.num_layers, q.num_directions) == (cell, layers, 2 if bidirectional else 1)
    forward = integer_lstm_forward if cell == "lstm" else integer_gru_forward
    h = dequantize_hidden(forward(q, quantize_input(q, x.numpy())))
    with torch.no_grad():
        want = model.rnn(x)[0].numpy()
    # weight quantization (int8) dominates; the per-step bound is derived in tests/reference
    assert np.abs(h - want).max() < 0.03
    assert np.abs(h - want).mean() < 0.005


def test_integer_export_reads_effective_weights():
    """Pruned or weight-quantized layers export what the model computes with."""
    torch.manual_seed(6)
    model = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2)
    compress_(model, MagnitudePruneConfig(sparsity=0.5))
    compress_(model, WeightQuantConfig(bits=8))
    params = effective_params(model.rnn)
    np.testing.assert_array_equal(params["weight_hh_l0"], model.rnn.weight_hh_l0.detach().double().numpy())
    q = integer_params_from_model(model, [torch.randn(2, 5, 3)])
    zeros = params["weight_hh_l0"] == 0
    assert zeros.mean() >= 0.5 and np.all(q.layers[0][0].w_hh[zeros] == 0)
    # the exported codes are the weight-only quantizer's codes (same per-row absmax scales)
    from lstmlite.compress import quantized_tensors

    codes = quantized_tensors(model)["rnn.weight_hh_l0"].codes.numpy()
    np.testing.assert_array_equal(q.layers[0][0].w_hh, codes)


def test_tuple_batches_warn_that_their_lengths_are_not_read(caplog):
    model = SequenceClassifier(input_size=4, hidden_size=6, n_classes=3)
    x = torch.randn(2, 5, 4)
    with caplog.at_level("WARNING", logger="lstmlite.compress.quantize.calibrate"):
        from_tuple = calibrate(model, [(x, torch.tensor([5, 2]))] * 3)
    assert caplog.text.count("only their first item") == 1  # once per call, not per batch
    assert from_tuple["steps"] == 30  # every step, padding included, as the warning says
    assert calibrate(model, [{"x": x, "lengths": torch.tensor([5, 2])}])["steps"] == 7


def test_a_language_model_calibrates_on_dict_batches_with_lengths():
    """A language model's forward takes (x, state), no lengths: a dict batch {"x", "lengths"}
    (what `lstmlite export --form integer` passes for every run) calibrates it on every step,
    as the plain tensor does, where the lengths were passed as its state and the export of
    any language-model run failed with "a stacked state must be (2, B, H)"."""
    torch.manual_seed(3)
    model = LanguageModel(vocab_size=20, embed_dim=4, hidden_size=6, num_layers=2)
    x = torch.randint(0, 20, (3, 7))
    from_dict = calibrate(model, [{"x": x, "lengths": torch.full((3,), 7)}])
    assert json.dumps(from_dict, sort_keys=True) == json.dumps(calibrate(model, [x]), sort_keys=True)
    assert from_dict["steps"] == 21


def test_integer_export_passes_its_options_on():
    """per_channel=False gives every row of a matrix the one scale max|W| / 127 of the whole
    matrix; input_percentile=99 takes the input scale from the 99th percentile of |x|
    (np.percentile / 127) instead of its max. Catches any option not passed on to the
    quantizer."""
    torch.manual_seed(7)
    model = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2)
    x = torch.randn(4, 20, 3)
    w_ih = np.abs(model.rnn.weight_ih_l0.detach().numpy()).max()
    w_hh = model.rnn.weight_hh_l0.detach().numpy()
    per_tensor = integer_params_from_model(model, [x], per_channel=False).layers[0][0]
    np.testing.assert_allclose(per_tensor.w_ih_scale, np.full(24, w_ih / 127), rtol=1e-6)
    per_row = integer_params_from_model(model, [x]).layers[0][0]
    np.testing.assert_allclose(per_row.w_hh_scale, np.abs(w_hh).max(1) / 127, rtol=1e-6)
    q = integer_params_from_model(model, [x], input_percentile=99.0)
    assert q.input_scale == pytest.approx(np.percentile(np.abs(x.numpy()), 99) / 127, rel=1e-6)
    assert integer_params_from_model(model, [x]).input_scale == pytest.approx(float(x.abs().max()) / 127, rel=1e-6)
    # input_bits=16: the input's LSB is max|x| / 32767; a given calibration is used instead of
    # the batches (one of 3x the range: its max / 127). Catches either not passed on.
    wide = integer_params_from_model(model, [x], input_bits=16)
    assert wide.layers[0][0].input_bits == 16
    assert wide.input_scale == pytest.approx(float(x.abs().max()) / 32767, rel=1e-6)
    reused = integer_params_from_model(model, [x], calibration=calibrate(model, [3 * x]))
    assert reused.input_scale == pytest.approx(3 * float(x.abs().max()) / 127, rel=1e-6)


def test_calibration_gives_the_model_its_mode_back():
    """calibrate runs the model in eval mode and then restores the mode it came in
    (a model being trained stays in training mode). Catches the restore dropped."""
    model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2).train()
    calibrate(model, [torch.randn(2, 5, 3)])
    assert model.training and model.rnn.training
    model.eval()
    calibrate(model, [torch.randn(2, 5, 3)])
    assert not model.training


def test_bounded_sample_stays_spread_over_every_batch():
    """20 batches of a 1-input LSTM, batch k's inputs all near k, 400 values each, at most
    1000 kept: the kept sample must stay an even thinning of all batches, so its median is
    that of all 8000 values (9.5), not one leaning to the last batches. Catches the kept
    count not reset after thinning (every later batch then halves the earlier ones again)."""
    torch.manual_seed(8)
    model = SequenceClassifier(input_size=1, hidden_size=2, n_classes=2)
    g = torch.Generator().manual_seed(0)
    batches = [k + 0.01 * torch.randn(4, 100, 1, generator=g) for k in range(20)]
    cal = calibrate(model, batches, max_samples=1000)
    assert cal["input"]["count"] == 8000
    assert cal["input"]["percentiles"]["50"] == pytest.approx(9.5, abs=1.0)
    assert cal["input"]["percentiles"]["1"] == pytest.approx(0.0, abs=1.0)


def test_bounded_sample_keeps_every_stride_th_value_across_batch_boundaries():
    """Values 0, 1, 2, ... added in batches of 7 with at most 8 kept: the sample must be
    exactly the values at the positions that are multiples of the final stride, counted
    over all batches (so each batch's first kept value depends on where the previous one
    ended). Catches starting every batch's thinning at its own first value."""
    from lstmlite.compress.quantize.calibrate import _Summary

    s = _Summary(max_samples=8)
    for start in range(0, 70, 7):
        s.add(torch.arange(start, start + 7, dtype=torch.float64))
    kept = np.concatenate(s.samples)
    assert s.stride == 8  # 70 values at <= 16 kept: the stride doubled three times
    np.testing.assert_array_equal(kept, np.arange(0, 70, 8))


class _PositionalLengths(torch.nn.Module):
    """A user's model that hands its layer the lengths positionally: rnn(x, None, lengths)."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = LSTM(3, 5)

    def forward(self, x, lengths=None):
        return self.rnn(x, None, lengths)[0]


def test_lengths_handed_to_the_layer_positionally_still_leave_the_padding_out():
    """The calibration hook reads the layer's lengths whether its caller passed them by
    keyword (lstmlite's models) or by position (a user's own model): the padding, set far
    off here, must not reach the statistics. Catches a hook that reads the keyword only."""
    torch.manual_seed(5)
    x = torch.randn(2, 5, 3)
    x[0, 2:] = 100.0  # the first row's padding
    cal = calibrate(_PositionalLengths(), [{"x": x, "lengths": torch.tensor([2, 5])}])
    assert cal["steps"] == 2 + 5
    valid = np.concatenate([x[0, :2].numpy().ravel(), x[1].numpy().ravel()])
    assert cal["input"]["count"] == valid.size
    assert cal["input"]["absmax"] == pytest.approx(np.abs(valid).max(), abs=1e-6)
