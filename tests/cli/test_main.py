"""The CLI as a function: help texts, data/train/eval, one-line errors."""

import json

import pytest

from lstmlite.cli.main import build_parser, main


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"lstmlite {command}" in out


def test_data_list_and_show(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("japanese_vowels", "basic_motions", "digits", "airline"):
        assert name in out
    assert main(["data", "show", "digits", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_classes"] == 10


def test_train_then_eval_writes_a_complete_run_dir(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--data", "digits", "--task", "classify", "--epochs=2", "--model.hidden_size=16",
                 "--train.lr=2e-3", "--out", str(out), "--no-progress"])
    assert code == 0
    for name in ("config.json", "model.safetensors", "metrics.json", "history.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"task", "dataset", "metric_name", "metric", "params", "nonzero_params", "size_bytes",
            "macs_per_step"} <= set(metrics)
    assert metrics["metric_name"] == "accuracy" and 0.2 < metrics["metric"] <= 1.0  # 10 classes: chance is 0.1
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["epochs"] == 2 and config["model"]["hidden_size"] == 16
    assert config["train"]["lr"] == 2e-3  # YAML reads 1e-3 as text; the typed layer reads it as a number
    assert f"run dir: {out}" in capsys.readouterr().out
    assert main(["eval", str(out), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["metric"] == pytest.approx(metrics["metric"])


@pytest.mark.parametrize("argv,message", [
    (["train", "--data", "no_such_data", "--out", "{tmp}/x"], "no_such_data"),
    (["train", "--data", "digits", "--bogus_key=3", "--out", "{tmp}/x"], "unknown model option"),
    (["train", "--data", "digits", "--train.epochz=3", "--out", "{tmp}/x"], "epochz"),
    (["train", "--data", "digits", "stray", "--out", "{tmp}/x"], "stray"),
    (["eval", "{tmp}/missing"], "not a run dir"),
    (["train", "--data", "digits", "--train.epochs=true", "--out", "{tmp}/x"], "train.epochs: expected a whole number"),
    (["train", "--data", "digits", "--train.amp=1", "--out", "{tmp}/x"], "train.amp: expected true or false"),
    (["train", "--data", "digits", "--model.hidden_size=8.5", "--out", "{tmp}/x"], "model.hidden_size"),
])
def test_errors_are_one_line_and_nonzero(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_train_refuses_a_folder_of_the_users_files_before_training(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "history.json").write_text("my own history")
    assert main(["train", "--data", "digits", "--epochs=1", "--out", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "holds files lstmlite did not write (history.json)" in err and len(err.strip().splitlines()) == 1
    assert (folder / "history.json").read_text() == "my own history"
    assert sorted(p.name for p in folder.iterdir()) == ["history.json"]  # no checkpoints written either
