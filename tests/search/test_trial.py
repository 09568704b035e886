"""One trial (trial.py) against docs/search.md's "One trial": it trains for ``epochs``,
compresses as the point says (low rank when the rank is below the hidden size, magnitude
pruning, int weights -- fake-quantized training when ``qat``), then fine-tunes
``finetune_epochs`` (default 1) at 0.3x the learning rate, only when something was applied."""

import json

import pytest

from lstmlite.search import trial as trial_module


@pytest.mark.parametrize("extra, compression, finetune", [
    ({"rank": 4, "sparsity": 0.5, "weight_bits": 4, "qat": True, "finetune_epochs": 2},
     [("low_rank", {"rank": 4}), ("magnitude_prune", {"sparsity": 0.5}), ("fake_quant", {"bits": 4})], [2]),
    ({"rank": 8, "weight_bits": 8}, [("weight_quant", {"bits": 8})], [1]),  # rank = hidden: nothing to factor
    ({"rank": 0, "sparsity": 0.0, "weight_bits": 32, "finetune_epochs": 3}, [], []),
])
def test_a_trial_compresses_as_its_point_says_then_fine_tunes_at_a_third_of_the_rate(
        tiny_data, tmp_path, monkeypatch, extra, compression, finetune):
    """Catches: qat ignored (weight-only quantization instead of fake-quant), low rank
    applied at rank = hidden size, the fine-tune's rate not 0.3x (or its epochs not
    ``finetune_epochs``, default 1), a fine-tune run with nothing applied."""
    calls = []
    real_train = trial_module.train

    def spy(model, data, config, **kwargs):
        calls.append((config.epochs, config.lr))
        return real_train(model, data, config, **kwargs)

    monkeypatch.setattr(trial_module, "train", spy)
    point = {"cell": "gru", "hidden_size": 8, "epochs": 1, "lr": 0.02, **extra}
    trial_module.run_trial(point, {"source": tiny_data, "task": "classify"}, tmp_path / "t")
    assert calls[0] == (1, 0.02)
    assert [e for e, _ in calls[1:]] == finetune
    assert all(lr == pytest.approx(0.3 * 0.02) for _, lr in calls[1:])
    applied = json.loads((tmp_path / "t" / "config.json").read_text())["search_compression"]
    assert [c["type"] for c in applied] == [kind for kind, _ in compression]
    assert [{k: c["data"][k] for k in expected} for c, (_, expected) in zip(applied, compression)] \
        == [expected for _, expected in compression]


def test_a_searched_projection_reaches_the_lstm(tiny_data, tmp_path):
    """docs/search.md's example space searches ``proj_size: {choices: [0, 8]}``: a point with
    proj_size P > 0 trains an LSTMP (the model builder takes it under ``rnn_options``), so
    the head reads P features and the trial's size is its exported file's bytes; 0 means
    no projection. Catches proj_size handed to the model at top level (every such trial
    failed with "unknown model option(s) ['proj_size']")."""
    from lstmlite import load_run
    from lstmlite.search.trial import build_config

    config = build_config({"cell": "lstm", "hidden_size": 8, "proj_size": 4}, {"source": tiny_data}, seed=0)
    assert config["model"]["rnn_options"] == {"proj_size": 4} and "proj_size" not in config["model"]
    assert "rnn_options" not in build_config({"cell": "lstm", "hidden_size": 8, "proj_size": 0}, {}, 0)["model"]
    # a projection is an LSTM's only: a GRU point with proj_size builds a plain GRU
    assert build_config({"cell": "gru", "hidden_size": 8, "proj_size": 4}, {}, 0)["model"] == {"cell": "gru",
                                                                                             "hidden_size": 8}
    record = trial_module.run_trial({"cell": "lstm", "hidden_size": 8, "proj_size": 4, "epochs": 1, "lr": 0.02},
                                    {"source": tiny_data, "task": "classify"}, tmp_path / "t")
    model = load_run(tmp_path / "t").model
    assert model.rnn.proj_size == 4 and model.head.in_features == 4
    # LSTMP weights: 4H x I, 4H x P, 2 x 4H biases, P x H projection, head 2 x P + 2
    assert record["params"] == 32 * 3 + 32 * 4 + 2 * 32 + 4 * 8 + 2 * 4 + 2
    if record["size_kind"] == "lsl":
        assert (tmp_path / "t" / "model.lsl").stat().st_size == record["size_bytes"]
