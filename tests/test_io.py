"""Run dirs: round trip, atomic writes, a manifest that catches corrupt or unfinished
run dirs, never writing over the user's files, clear errors."""

import json

import pytest
import torch

from lstmlite.io import RunDirError, load_run, save_run, write_manifest
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
    with pytest.raises(RunDirError, match="config.json: contents do not match manifest.json"):
        load_run(run)
    write_manifest(run)  # as if a future lstmlite had written it
    with pytest.raises(RunDirError, match="format_version 99"):
        load_run(run)
    config["format_version"] = 1
    (run / "config.json").write_text(json.dumps(config))
    write_manifest(run)
    (run / "model.safetensors").unlink()
    with pytest.raises(RunDirError, match="model.safetensors: listed in manifest.json but missing"):
        load_run(run)
    write_manifest(run, ["config.json"])
    with pytest.raises(RunDirError, match="model.safetensors: file not found"):
        load_run(run)


def _classifier():
    torch.manual_seed(0)
    return SequenceClassifier(input_size=2, hidden_size=3, n_classes=2)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_flipped_byte_anywhere_in_the_weights_is_refused(tmp_path, where):
    run = save_run(tmp_path / "r", _classifier(), {"task": "classify"}, metrics={"metric": 0.5})
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    at = {"first": 0, "middle": len(data) // 2, "last": len(data) - 1}[where]
    data[at] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(RunDirError, match="model.safetensors: contents do not match"):
        load_run(run)


def test_a_truncated_metrics_file_is_refused(tmp_path):
    run = save_run(tmp_path / "r", _classifier(), {"task": "classify"}, metrics={"metric": 0.5})
    (run / "metrics.json").write_text('{"metric": 0.')
    with pytest.raises(RunDirError, match="metrics.json: contents do not match"):
        load_run(run)


def test_a_save_interrupted_before_the_manifest_reads_as_unfinished(tmp_path, monkeypatch):
    import lstmlite.io as io_mod

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(io_mod, "write_manifest", crash)
    with pytest.raises(OSError, match="disk full"):
        save_run(tmp_path / "r", _classifier(), {"task": "classify"}, metrics={"metric": 0.5})
    monkeypatch.undo()
    assert (tmp_path / "r" / "config.json").exists()  # looks finished, but:
    with pytest.raises(RunDirError, match="unfinished run dir"):
        load_run(tmp_path / "r")
    with pytest.raises(RunDirError, match="unfinished run dir is here"):
        save_run(tmp_path / "r", _classifier(), {"task": "classify"})


def test_a_folder_of_the_users_files_is_never_written_into(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    (folder / "metrics.json").write_text('{"mine": true}')
    for overwrite in (False, True):
        with pytest.raises(RunDirError, match="holds files lstmlite did not write"):
            save_run(folder, _classifier(), {"task": "classify"}, metrics={"metric": 0.5}, overwrite=overwrite)
    assert (folder / "metrics.json").read_text() == '{"mine": true}' and sorted(p.name for p in folder.iterdir()) == \
        ["metrics.json", "notes.txt"]


def test_replacing_a_run_dir_of_ours_leaves_none_of_the_old_files(tmp_path):
    run = save_run(tmp_path / "r", _classifier(), {"task": "classify"}, metrics={"metric": 0.5},
                   history=[{"epoch": 1}])
    (run / ".metrics.json.abc123.tmp").write_text("left by a killed write")
    save_run(run, _classifier(), {"task": "classify"}, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "manifest.json", "model.safetensors"]
    assert load_run(run).metrics == {}


def test_run_files_follow_the_umask_not_0600(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        run = save_run(tmp_path / "r", _classifier(), {"task": "classify"}, metrics={"metric": 0.5})
    finally:
        os.umask(old)
    for name in ("config.json", "model.safetensors", "metrics.json", "manifest.json"):
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o644, name
