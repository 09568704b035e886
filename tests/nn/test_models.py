"""Task models: shapes, config round trips, counts, and the reference text model."""

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from lstmlite.nn import Forecaster, LanguageModel, SequenceClassifier, SequenceTagger, build_model
from lstmlite.nn.models import cell_options


def test_reference_text_model_sizes():
    model = SequenceClassifier(vocab_size=10000, embed_dim=128, hidden_size=128, n_classes=6)
    assert model.embedding.weight.numel() == 1_280_000
    assert model.params() == 1_280_000 + 4 * 128 * (128 + 128) + 2 * 4 * 128 + 128 * 6 + 6
    x = torch.randint(1, 10000, (3, 11))
    assert model(x, lengths=torch.tensor([11, 4, 1])).shape == (3, 6)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_classifier_ignores_padding(pooling, cell):
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=5, n_classes=4, cell=cell, pooling=pooling,
                               bidirectional=True, num_layers=2).eval()
    x = torch.randn(2, 6, 3)
    lengths = torch.tensor([6, 3])
    batch = model(x, lengths)
    alone = model(x[1:, :3])
    torch.testing.assert_close(batch[1], alone[0], rtol=1e-5, atol=1e-6)
    x2 = x.clone()
    x2[1, 3:] = 100.0  # garbage in the padding must not matter
    torch.testing.assert_close(model(x2, lengths), batch)


def test_language_model_state_carry_and_tying():
    torch.manual_seed(0)
    lm = LanguageModel(vocab_size=30, embed_dim=8, hidden_size=8, tie_weights=True).eval()
    assert lm.head.weight is lm.embedding.weight
    x = torch.randint(0, 30, (2, 10))
    full, _ = lm(x)
    first, state = lm(x[:, :4])
    second, _ = lm(x[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), full, rtol=1e-5, atol=1e-6)
    assert lm.macs_per_step() == 4 * 8 * 16 + 8 * 30
    with pytest.raises(ValueError, match="tie_weights"):
        LanguageModel(vocab_size=30, embed_dim=8, hidden_size=9, tie_weights=True)
    with pytest.raises(ValueError, match="bidirectional"):
        LanguageModel(vocab_size=30, bidirectional=True)


def test_forecaster_shapes():
    model = Forecaster(input_size=1, hidden_size=6, horizon=12)
    assert model(torch.randn(5, 24, 1)).shape == (5, 12)
    multi = Forecaster(input_size=3, hidden_size=6, horizon=4, targets=3)
    assert multi(torch.randn(2, 10, 3)).shape == (2, 4, 3)


def test_tagger_outputs_every_step_and_ignores_padding():
    torch.manual_seed(0)
    model = SequenceTagger(input_size=3, hidden_size=5, n_classes=4).eval()
    x = torch.randn(2, 9, 3)
    padded = x.clone()
    padded[1, 6:] = 7.0
    out = model(padded, lengths=torch.tensor([9, 6]))
    assert out.shape == (2, 9, 4)
    # a causal tagger's first 6 steps do not depend on what follows
    torch.testing.assert_close(out[1, :6], model(x[1:, :6])[0])
    # the head runs per step: its MACs count in macs_per_step
    assert model.macs_per_step() == model.rnn.macs_per_step() + 5 * 4
    with pytest.raises(ValueError, match="cannot stream"):
        SequenceTagger(input_size=3, hidden_size=5, n_classes=4, bidirectional=True).forward_stream(x)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tagger_stream_in_chunks_equals_torch_on_the_whole_sequence(cell):
    """forward_stream chunk by chunk, state carried, against torch.nn.LSTM/GRU over the
    whole sequence plus the head. Catches: the state not carried between chunks."""
    torch.manual_seed(0)
    model = SequenceTagger(input_size=3, hidden_size=5, num_layers=2, n_classes=4, cell=cell).double().eval()
    ref = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(3, 5, num_layers=2, batch_first=True).double()
    ref.load_state_dict(model.rnn.state_dict())
    x = torch.randn(2, 9, 3, dtype=torch.double)
    state, chunks = None, []
    for start in (0, 4, 5):  # chunks of 4, 1 and 4 steps
        logits, state = model.forward_stream(x[:, start:start + (1 if start == 4 else 4)], state)
        chunks.append(logits)
    expected = torch.nn.functional.linear(ref(x)[0], model.head.weight, model.head.bias)
    torch.testing.assert_close(torch.cat(chunks, dim=1), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("model", [
    SequenceClassifier(input_size=4, hidden_size=[6, 3], num_layers=2, n_classes=3),
    SequenceClassifier(vocab_size=50, embed_dim=4, cell="gru", hidden_size=5, n_classes=2, bidirectional=True),
    LanguageModel(vocab_size=20, embed_dim=6, hidden_size=6, num_layers=2, dropout=0.1, tie_weights=True),
    Forecaster(input_size=2, hidden_size=4, horizon=3, rnn_options={"proj_size": 2}),
    SequenceTagger(input_size=5, hidden_size=7, n_classes=12),
    SequenceTagger(vocab_size=30, embed_dim=4, hidden_size=6, n_classes=3, bidirectional=True, cell="gru"),
])
def test_config_round_trip_rebuilds_same_architecture(model):
    rebuilt = build_model(model.config())
    assert rebuilt.config() == model.config()
    assert [(n, p.shape) for n, p in rebuilt.named_parameters()] == [(n, p.shape) for n, p in model.named_parameters()]


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match="exactly one"):
        SequenceClassifier(input_size=3, vocab_size=10, embed_dim=2)
    with pytest.raises(ValueError, match="unknown cell"):
        SequenceClassifier(input_size=3, cell="transformer")
    with pytest.raises(ValueError, match="unknown model kind"):
        build_model({"kind": "nope"})
    with pytest.raises(ValueError, match="token input"):
        SequenceClassifier(vocab_size=10, embed_dim=4, hidden_size=3)(torch.randn(2, 3, 4))
    # the model names its own input contract (not the recurrent layer's error from further in)
    with pytest.raises(ValueError, match=r"feature input must be \(B, T, F\)"):
        SequenceClassifier(input_size=3, hidden_size=4)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="token input needs embed_dim > 0"):
        SequenceClassifier(vocab_size=10, embed_dim=0, hidden_size=3)


def test_bidirectional_last_pooling_reads_both_directions_final_states():
    """'last' features are [forward h at the last valid step, backward h at step 0]:
    nn.LSTM's h_n of the top layer, run packed."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=5, n_classes=4, num_layers=2, bidirectional=True).eval()
    ref = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    ref.load_state_dict(model.rnn.state_dict())
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])
    _, (h_n, _) = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    torch.testing.assert_close(model.features(x, lengths), torch.cat([h_n[-2], h_n[-1]], dim=-1))


def test_forecaster_instance_norm_follows_the_level_of_the_valid_steps():
    torch.manual_seed(0)
    model = Forecaster(input_size=2, hidden_size=6, horizon=3).eval()
    x, lengths = torch.randn(4, 8, 2), torch.tensor([8, 5, 3, 6])
    base = model(x, lengths)
    # RevIN: shifting a window's level shifts its forecast of the target (feature 0) by as much
    torch.testing.assert_close(model(x + torch.tensor([10.0, -3.0]), lengths), base + 10.0, rtol=0, atol=1e-4)
    # the level is the mean of the valid steps only: padding values change nothing
    garbage = x.clone()
    garbage[1, 5:], garbage[2, 3:] = 50.0, -7.0
    torch.testing.assert_close(model(garbage, lengths), base, rtol=0, atol=1e-5)
    torch.testing.assert_close(model(x[2:3, :3])[0], base[2], rtol=0, atol=1e-5)
    # NaN or inf padding too (NaN * 0 is NaN: a level taken as sum(x * mask) was NaN), in the
    # forecast and in the gradient the model trains with
    for fill in (float("nan"), float("inf")):
        garbage[1, 5:], garbage[2, 3:] = fill, -fill
        torch.testing.assert_close(model(garbage, lengths), base, rtol=0, atol=1e-5)
    garbage.requires_grad_(True)
    model(garbage, lengths).sum().backward()
    assert torch.isfinite(garbage.grad).all() and not garbage.grad[1, 5:].any()


@pytest.mark.parametrize("make,match", [
    (lambda: SequenceClassifier(input_size=3, hidden_size=4, n_classes=1), "n_classes must be at least 2"),
    (lambda: SequenceClassifier(input_size=3, hidden_size=4, pooling="sum"), "pooling must be"),
    (lambda: SequenceTagger(input_size=3, hidden_size=4, n_classes=1), "n_classes must be at least 2"),
    (lambda: Forecaster(input_size=2, hidden_size=4, targets=3), "targets between 1 and input_size"),
    (lambda: Forecaster(input_size=2, hidden_size=4, horizon=0), "horizon must be at least 1"),
    # batch_first=False ran the recurrence over the batch axis (no error without lengths), and
    # it and a dropout given here were missing from config(), so the rebuilt model differed
    (lambda: SequenceClassifier(input_size=3, hidden_size=4, rnn_options={"batch_first": False}),
     r"^rnn_options cannot set batch_first: the task model sets it \(inputs are \(B, T, F\)\)"),
    (lambda: SequenceTagger(input_size=3, hidden_size=4, num_layers=2, rnn_options={"dropout": 0.5, "bias": False}),
     r"^rnn_options cannot set dropout: .* dropout as model options$"),
    # one layer: only the head's nn.Dropout saw it, and p=1 zeroed every feature in training
    (lambda: SequenceClassifier(input_size=3, hidden_size=4, dropout=1.0), r"^dropout must be in \[0, 1\), got 1.0$"),
    (lambda: LanguageModel(vocab_size=9, embed_dim=4, hidden_size=4, dropout=-0.1),
     r"^dropout must be in \[0, 1\), got -0.1$"),
])
def test_bad_model_arguments_are_clear_errors(make, match):
    """Catches dropped argument checks: a 1-class head (softmax of one logit is always 1),
    an unknown pooling (it would silently max-pool), more forecast targets than input
    features (the targets are the first input features; with one feature RevIN's level
    would silently be broadcast to every target)."""
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make", [
    lambda: SequenceClassifier(vocab_size=12, embed_dim=4, hidden_size=5, n_classes=3),
    lambda: LanguageModel(vocab_size=12, embed_dim=4, hidden_size=5),
    lambda: SequenceTagger(vocab_size=12, embed_dim=4, hidden_size=5, n_classes=3),
])
def test_token_id_0_is_padding_a_zero_vector_that_never_trains(make):
    """Token 0 is <pad> (nn.Embedding's padding_idx semantics): its embedding starts at
    zero and gets no gradient, so an unmasked pad token feeds exactly zeros. Catches an
    embedding built without padding_idx=0."""
    torch.manual_seed(0)
    model = make()
    assert torch.equal(model.embedding.weight[0], torch.zeros(4))
    x = torch.tensor([[5, 3, 0, 0], [0, 7, 2, 0]])
    out = model(x)
    (out[0] if isinstance(out, tuple) else out).square().sum().backward()
    grad = model.embedding.weight.grad
    assert torch.equal(grad[0], torch.zeros(4))
    assert bool((grad[[2, 3, 5, 7]].abs().sum(1) > 0).all())  # the real tokens do train


def test_heads_read_the_projected_output():
    """With an LSTMP (proj_size P) every head reads P features per direction, not H, and
    per-step heads count P·out MACs. Catches a head sized from rnn.hidden_size."""
    torch.manual_seed(0)
    P, H = 3, 6
    ids, feats = torch.randint(1, 20, (2, 5)), torch.randn(2, 5, 4)
    lm = LanguageModel(vocab_size=20, embed_dim=4, hidden_size=H, rnn_options={"proj_size": P})
    assert lm(ids)[0].shape == (2, 5, 20) and lm.head.in_features == P
    assert lm.macs_per_step() == 4 * H * (4 + P) + P * H + P * 20
    tagger = SequenceTagger(input_size=4, hidden_size=H, n_classes=5, rnn_options={"proj_size": P})
    assert tagger(feats).shape == (2, 5, 5) and tagger.head.in_features == P
    assert tagger.macs_per_step() == 4 * H * (4 + P) + P * H + P * 5
    clf = SequenceClassifier(input_size=4, hidden_size=H, n_classes=3, bidirectional=True,
                             rnn_options={"proj_size": P})
    assert clf(feats, torch.tensor([5, 2])).shape == (2, 3) and clf.head.in_features == 2 * P
    fc = Forecaster(input_size=4, hidden_size=H, horizon=2, rnn_options={"proj_size": P})
    assert fc(feats).shape == (2, 2) and fc.head.in_features == P


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_config_keeps_a_non_default_pooling(pooling):
    """build_model(config()) rebuilds the same computation, not only the same weights:
    catches the classifier's pooling left out of its config (the rebuilt model then
    pools 'last')."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=5, n_classes=4, pooling=pooling).eval()
    rebuilt = build_model(model.config()).eval()
    rebuilt.load_state_dict(model.state_dict())
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])
    torch.testing.assert_close(rebuilt(x, lengths), model(x, lengths), rtol=0, atol=0)
    output, _ = model.rnn(x, lengths=lengths)  # the pooling written out over the valid steps
    pooled = torch.stack([output[b, :n].mean(0) if pooling == "mean" else output[b, :n].amax(0)
                          for b, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(rebuilt.features(x, lengths), pooled)


@pytest.mark.parametrize("cls,kwargs", [
    (Forecaster, dict(input_size=2, hidden_size=4, horizon=3, targets=2, instance_norm=False, num_layers=2,
                      dropout=0.25)),
    (SequenceTagger, dict(input_size=3, hidden_size=[6, 4], num_layers=2, n_classes=5, dropout=0.5, cell="gru",
                          bidirectional=True)),
    (LanguageModel, dict(vocab_size=20, embed_dim=6, hidden_size=6, num_layers=2, dropout=0.1, tie_weights=True)),
])
def test_config_records_every_argument_and_rebuilds_the_same_model(cls, kwargs, rebuilt_from_config):
    """config() holds each constructor argument as given, and build_model(config()) with the
    same weights computes the same thing. Catches an argument dropped from the config
    (instance_norm, dropout: the config still agrees with itself after a round trip)."""
    torch.manual_seed(0)
    model = cls(**kwargs)
    rebuilt = rebuilt_from_config(model, kwargs)
    assert rebuilt.rnn.dropout == model.rnn.dropout == kwargs["dropout"]
    x = torch.randint(1, 20, (2, 5)) if cls is LanguageModel else torch.randn(2, 5, kwargs["input_size"])
    first, again = model.eval()(x), rebuilt(x)
    first, again = (first[0], again[0]) if cls is LanguageModel else (first, again)
    torch.testing.assert_close(again, first, rtol=0, atol=0)


@pytest.mark.parametrize("make", [
    lambda: SequenceTagger(input_size=3, hidden_size=5, n_classes=4, bidirectional=True, num_layers=2),
    lambda: Forecaster(input_size=3, hidden_size=5, horizon=2, bidirectional=True),
])
def test_bidirectional_models_give_each_row_what_it_gives_alone(make):
    """A bidirectional tagger or forecaster hands lengths to its recurrent layer: the
    reverse direction starts at each row's last valid step, so garbage in the padding
    changes nothing and each row's valid steps equal the row run alone. Catches lengths
    not passed on (the reverse direction then reads the padding)."""
    torch.manual_seed(0)
    model = make().eval()
    x, lengths = torch.randn(3, 7, 3), torch.tensor([7, 3, 5])
    x[1, 3:], x[2, 5:] = 40.0, -9.0
    out = model(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = model(x[b:b + 1, :n])
        torch.testing.assert_close(out[b, :n] if out.dim() == 3 else out[b], alone[0], rtol=1e-5, atol=1e-6)


def test_forecaster_instance_norm_shifts_each_target_by_its_own_level():
    """RevIN with several targets: shifting the window's level of feature k shifts the
    forecast of target k (only) by as much; a non-target feature's level moves nothing.
    Catches every target getting feature 0's level back."""
    torch.manual_seed(0)
    model = Forecaster(input_size=3, hidden_size=6, horizon=4, targets=2).eval()
    x, lengths = torch.randn(3, 8, 3), torch.tensor([8, 5, 3])
    base = model(x, lengths)  # (B, horizon, targets)
    shift = torch.tensor([10.0, -3.0, 7.0])
    expected = base + shift[:2]
    torch.testing.assert_close(model(x + shift, lengths), expected, rtol=0, atol=1e-4)


def _hand_set_forecaster(horizon: int, targets: int, instance_norm: bool, weight: str) -> Forecaster:
    """A forecaster whose head row j is set by hand: ``weight="bias"`` zero weights and bias j
    (row j outputs the number j), ``"identity"`` row j = hidden unit j and no bias."""
    torch.manual_seed(0)
    model = Forecaster(input_size=3, hidden_size=horizon * targets, horizon=horizon, targets=targets,
                       instance_norm=instance_norm).eval()
    with torch.no_grad():
        rows = horizon * targets
        model.head.weight.copy_(torch.eye(rows) if weight == "identity" else torch.zeros(rows, rows))
        model.head.bias.copy_(torch.zeros(rows) if weight == "identity" else torch.arange(rows, dtype=torch.float32))
    return model


@pytest.mark.parametrize("instance_norm", [False, True])
@pytest.mark.parametrize("horizon, targets", [(2, 3), (3, 2), (4, 1)])
def test_forecaster_head_rows_are_horizon_major(horizon, targets, instance_norm):
    """output[b, h, k], the forecast h + 1 steps ahead of target feature k (the docstring's
    (B, horizon, targets)), is head row h * targets + k: with bias j on row j it reads exactly
    h * targets + k (+ the window's mean of feature k with RevIN), and with the identity head it
    reads hidden unit h * targets + k of the last step (the LSTM run on its own). Catches the head
    read target-major (row k * horizon + h), which every shape test and a model trained from
    scratch accept, and disagrees with the ONNX / .lsl / C exports' reading of the same rows."""
    x = torch.randn(2, 5, 3) + torch.tensor([10.0, -20.0, 30.0])  # each feature its own level
    level = x.mean(1) if instance_norm else torch.zeros(2, 3)  # (B, F)
    with torch.no_grad():
        by_bias = _hand_set_forecaster(horizon, targets, instance_norm, "bias")(x)
        identity = _hand_set_forecaster(horizon, targets, instance_norm, "identity")
        by_unit = identity(x)
        rnn_in = x - x.mean(1, keepdim=True) if instance_norm else x
        last = identity.rnn(rnn_in)[0][:, -1]  # (B, horizon * targets): the hidden units the head reads
    assert by_bias.shape == ((2, horizon, targets) if targets > 1 else (2, horizon))
    by_bias, by_unit = by_bias.reshape(2, horizon, targets), by_unit.reshape(2, horizon, targets)
    for b in range(2):
        for h in range(horizon):
            for k in range(targets):
                assert float(by_bias[b, h, k]) == pytest.approx(h * targets + k + float(level[b, k]), abs=1e-4)
                assert float(by_unit[b, h, k]) == pytest.approx(float(last[b, h * targets + k] + level[b, k]),
                                                                abs=1e-5)


def test_forecaster_output_agrees_with_the_forecast_windows_targets():
    """On a straight-line series (feature 0 = t, feature 1 a zigzag), every window's targets
    from lstmlite.data.forecast are y[n, h] = z[origin + h, 0] (normalised), which is the
    window's mean of feature 0 plus slope · (h + (W + 1) / 2). A RevIN forecaster whose head
    has zero weights and that bias on row h forecasts each window exactly: the training loss
    is 0 and evaluate's MAE in the series' units is ~0 on every split, while the same head
    with its rows reversed is off. So output[:, h] is the target h + 1 steps ahead, as the
    data lays it out and the loss compares it."""
    from lstmlite.data import DataSpec
    from lstmlite.data.forecast import build_forecast
    from lstmlite.train import evaluate
    from lstmlite.train.trainer import _loss

    W, H, L = 4, 3, 40
    t = np.arange(L, dtype=np.float64)
    series = np.stack([t, 3.0 * (-1.0) ** t], axis=1)
    data = build_forecast("line", DataSpec("line.npy", seq_len=W, horizon=H, season=1), series)
    mean, std = data.stats["mean"][0], data.stats["std"][0]
    zn = (t - mean) / std
    origins = np.arange(W, data.stats["train_end"] - H + 1)  # by hand: every target before train_end
    np.testing.assert_allclose(data.train.y, zn[origins[:, None] + np.arange(H)], rtol=0, atol=1e-6)
    np.testing.assert_allclose(data.train.x[:, :, 0], zn[origins[:, None] - W + np.arange(W)], rtol=0, atol=1e-6)
    slope = 1.0 / std
    model = Forecaster(input_size=2, hidden_size=5, horizon=H).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor(slope * (np.arange(H) + (W + 1) / 2), dtype=torch.float32))
        forecast = model(torch.as_tensor(data.train.x), torch.as_tensor(data.train.lengths))
        assert float(_loss("forecast", forecast, torch.as_tensor(data.train.y))) < 1e-10
        for split in (data.train, data.val, data.test):
            assert evaluate(model, data, split)["mae"] < 1e-4  # in the series' units (one step = 1)
        model.head.bias.copy_(model.head.bias.flip(0))
        assert evaluate(model, data, data.test)["mae"] > 0.5


@pytest.mark.parametrize("make", [
    lambda: SequenceClassifier(input_size=4, hidden_size=32, n_classes=3, dropout=0.5),
    lambda: LanguageModel(vocab_size=20, embed_dim=4, hidden_size=32, dropout=0.5),
    lambda: SequenceTagger(input_size=4, hidden_size=32, n_classes=3, dropout=0.5),
])
def test_dropout_reaches_the_head_input_of_a_one_layer_model(make):
    """A one-layer model's recurrent stack has no between-layer dropout, so `dropout` acts
    on what the head reads: in training about p of it is zeroed and the rest scaled by
    1/(1-p), in eval it is untouched. Catches the head-input dropout left out (dropout
    would then do nothing at all for one layer)."""
    torch.manual_seed(0)
    model = make()
    seen = []
    model.head.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    x = torch.randint(1, 20, (6, 8)) if isinstance(model, LanguageModel) else torch.randn(6, 8, 4)
    model.eval()(x)
    clean = seen.pop()
    assert not bool((clean == 0).any())
    model.train()(x)
    got = seen.pop()
    dropped = got == 0
    assert float(dropped.float().mean()) == pytest.approx(0.5, abs=0.1)
    torch.testing.assert_close(got[~dropped], clean[~dropped] * 2.0)


def test_cell_options_name_only_what_the_cell_accepts():
    """rnn_options a cell takes, by the layers' signatures: an LSTM has proj_size, a GRU
    does not (its shared constructor refuses proj_size > 0); the task model's own options
    are not listed. Catches proj_size offered for a GRU."""
    assert {"proj_size", "bias"} <= cell_options("lstm")
    assert "proj_size" not in cell_options("gru") and "bias" in cell_options("gru")
    assert {"groups", "shuffle"} <= cell_options("glstm") and {"wrank", "urank"} <= cell_options("fastgrnn")
    for cell in ("lstm", "gru", "glstm", "fastgrnn"):
        assert not {"input_size", "hidden_size", "num_layers"} & cell_options(cell)


@pytest.mark.parametrize("cls", [SequenceClassifier, SequenceTagger, Forecaster])
def test_dropout_acts_between_the_layers_of_a_two_layer_model(cls):
    """`dropout` with two layers also drops what the first layer hands the second (as
    torch's `dropout=`): in training the recurrent stack's own output changes from one
    call to the next, in eval it does not. Catches the between-layer dropout left out
    (the head's dropout alone would still make the model's outputs differ)."""
    torch.manual_seed(0)
    kwargs = {"input_size": 4, "hidden_size": 16, "num_layers": 2, "dropout": 0.5}
    model = cls(**kwargs, **({"horizon": 2} if cls is Forecaster else {"n_classes": 3}))
    x = torch.randn(3, 6, 4)
    first, again = model.train().rnn(x)[0], model.rnn(x)[0]
    assert not torch.equal(first, again)
    first, again = model.eval().rnn(x)[0], model.rnn(x)[0]
    torch.testing.assert_close(again, first, rtol=0, atol=0)
