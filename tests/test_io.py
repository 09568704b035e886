"""Run dirs: round trip, atomic writes, clear errors."""

import json

import pytest
import torch

from lstmlite.io import RunDirError, load_run, save_run
from lstmlite.nn import LanguageModel, SequenceClassifier


def test_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=6, n_classes=3, cell="gru").eval()
    save_run(tmp_path / "run", model, {"task": "classify"}, metrics={"metric": 0.5}, history=[{"epoch": 1}])
    run = load_run(tmp_path / "run")
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(run.model(x), model(x), rtol=0, atol=0)
    assert run.metrics == {"metric": 0.5} and run.history == [{"epoch": 1}]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["format_version"] == 1
    assert not list((tmp_path / "run").glob(".*tmp")), "no temp files left behind"


def test_tied_language_model_round_trip(tmp_path):
    model = LanguageModel(vocab_size=12, embed_dim=5, hidden_size=5, tie_weights=True).eval()
    save_run(tmp_path / "lm", model, {"task": "lm"})
    loaded = load_run(tmp_path / "lm").model
    assert loaded.head.weight is loaded.embedding.weight
    x = torch.randint(0, 12, (2, 4))
    torch.testing.assert_close(loaded(x)[0], model(x)[0], rtol=0, atol=0)


def test_errors(tmp_path):
    with pytest.raises(RunDirError, match="not a run dir"):
        load_run(tmp_path / "missing")
    model = SequenceClassifier(input_size=2, hidden_size=3, n_classes=2)
    run = save_run(tmp_path / "r", model, {"task": "classify"})
    with pytest.raises(RunDirError, match="already exists"):
        save_run(run, model, {"task": "classify"})
    config = json.loads((run / "config.json").read_text())
    config["format_version"] = 99
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunDirError, match="format_version 99"):
        load_run(run)
    config["format_version"] = 1
    (run / "config.json").write_text(json.dumps(config))
    (run / "model.safetensors").unlink()
    with pytest.raises(RunDirError, match="model.safetensors: file not found"):
        load_run(run)
