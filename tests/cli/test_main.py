"""The CLI as a function: help texts, data/train/eval, one-line errors."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lstmlite.cli.common import parse_overrides
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


def test_data_list_and_show(tmp_path, capsys):
    """``data list`` names the built-ins; ``data show FILE --task T`` describes the file read
    for task T, as describe_dataset(FILE, task=T) does (catches --task ignored: a TSV file
    then shows as its default task, tagging)."""
    from lstmlite.data import describe_dataset

    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("japanese_vowels", "basic_motions", "digits", "airline"):
        assert name in out
    assert main(["data", "show", "digits", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_classes"] == 10
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("the\tDET\ncat\tNOUN\n\n" * 8)
    assert main(["data", "show", str(pairs), "--task", "seq2seq", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["task"] == "seq2seq"
    assert shown == json.loads(json.dumps(describe_dataset(str(pairs), task="seq2seq"), default=str))


def test_data_show_table_has_a_line_per_split_and_only_the_spec_keys_that_apply(tmp_path, capsys):
    """``data show``'s table (not --json): a split per row with its counts by hand, and of
    the spec only what this data uses. A CSV of 20 labelled texts: text keys (min_freq,
    its columns) shown, audio and forecast keys (sample_rate, horizon) not. It printed
    the splits and the whole spec as two lines of ~700 characters each."""
    from lstmlite.data import describe_dataset

    path = tmp_path / "reviews.csv"
    path.write_text("sentence,sentiment\n" + "".join(f"w{k} movie,{'np'[k % 2]}\n" for k in range(20)))
    assert main(["data", "show", str(path), "--text_column=sentence", "--label_column=sentiment"]) == 0
    rows = {line.split()[0]: line.split(None, 1)[1] for line in capsys.readouterr().out.splitlines()[2:]}
    info = describe_dataset(str(path), text_column="sentence", label_column="sentiment")
    n = {name: split["n"] for name, split in info["splits"].items()}
    assert sum(n.values()) == 20
    for name in ("train", "val", "test"):
        assert rows[name].startswith(f"{n[name]} sequences, x ") and "length 2" in rows[name]
    assert rows["spec.min_freq"] == "1" and rows["spec.text_column"] == "sentence"
    assert "spec.sample_rate" not in rows and "spec.horizon" not in rows and "splits" not in rows
    assert max(len(line) for line in rows.values()) < 200


def test_data_show_puts_a_forecasts_stats_a_row_each(capsys):
    """airline's normalisation stats were one raw dict with 17-digit floats; now a row per
    stat, floats to 6 digits (the values describe_dataset gives)."""
    from lstmlite.data import describe_dataset

    assert main(["data", "show", "airline"]) == 0
    rows = {line.split()[0]: line.split(None, 1)[1] for line in capsys.readouterr().out.splitlines()[2:]}
    stats = describe_dataset("airline")["stats"]
    assert rows["stats.train_end"] == "116" and rows["stats.target_mean"] == f"{stats['target_mean']:.6g}"
    assert "stats" not in rows


def test_data_without_its_subcommand_names_the_three(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data"])
    assert exit_info.value.code == 2
    assert "required: list|show|make" in capsys.readouterr().err


def test_data_show_takes_the_data_options_train_takes(tmp_path, capsys):
    """``data show FILE --data.KEY=VALUE`` loads the file with those options, as ``train``
    does: here the columns are named otherwise and every word but "movie" occurs once, so
    with min_freq=2 the vocabulary is <pad>, <unk>, movie. Catches: data show refusing the
    options ("unrecognized arguments"), so a CSV with other column names could not be
    shown at all, nor the vocabulary training would use; and a model/train option, or
    --data.source, taken silently."""
    path = tmp_path / "reviews.csv"
    path.write_text("sentence,sentiment\n" + "".join(f"w{k} movie,{'np'[k % 2]}\n" for k in range(20)))
    assert main(["data", "show", str(path), "--data.text_column=sentence", "--label_column=sentiment",
                 "--data.min_freq=2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["vocab_size"] == 3 and shown["class_names"] == ["n", "p"]
    assert shown["spec"]["min_freq"] == 2 and shown["spec"]["label_column"] == "sentiment"
    for bad in ("--train.epochs=3", f"--data.source={path}"):
        assert main(["data", "show", str(path), bad]) == 2
        assert bad.split("=")[0] in capsys.readouterr().err


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
    (["train", "--epochs=1", "--out", "{tmp}/x"], "no data given: pass --data NAME_OR_PATH (see lstmlite data list)"),
    (["train", "--data", "digits", "--bogus_key=3", "--out", "{tmp}/x"], "unknown model option"),
    (["train", "--data", "digits", "--train.epochz=3", "--out", "{tmp}/x"], "epochz"),
    (["train", "--data", "digits", "stray", "--out", "{tmp}/x"], "stray"),
    (["train", "--data", "digits", "-epochs=2", "--out", "{tmp}/x"], "unexpected argument '-epochs=2'"),  # one dash
    (["eval", "{tmp}/missing"], "not a run dir"),
    (["eval", "{tmp}/missing", "--epochs=2"], "unrecognized arguments: --epochs=2"),  # eval takes no overrides
    (["train", "--data", "digits", "--train.epochs=true", "--out", "{tmp}/x"], "train.epochs: expected a whole number"),
    (["train", "--data", "digits", "--train.amp=1", "--out", "{tmp}/x"], "train.amp: expected true or false"),
    (["train", "--data", "digits", "--model.hidden_size=8.5", "--out", "{tmp}/x"], "model.hidden_size"),
])
def test_errors_are_one_line_and_nonzero(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors (an unrecognized argument)
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_overrides_are_typed_and_go_to_the_section_that_knows_the_key() -> None:
    """``--key=value`` as train's --help documents it: a value reads as YAML (a number is a
    number), a dash in a key is an underscore, only the first ``=`` splits, and a bare key
    goes to the section defining it: train before data (``seed`` is in both), else model.

    Catches values kept as text, ``--train.batch-size`` not becoming ``batch_size``, a path
    with ``=`` cut at its second one, and a bare ``--seed`` sent to the data section."""
    assert parse_overrides(["--train.batch-size=8", "--epochs=2", "--seed=3", "--data.source=a=b.csv",
                            "--hidden_size=16", "--train.amp=true", "--max_len=40"]) == {
        "train.batch_size": 8, "train.epochs": 2, "train.seed": 3, "data.source": "a=b.csv",
        "model.hidden_size": 16, "train.amp": True, "data.max_len": 40}


def test_a_text_option_keeps_the_text_as_typed() -> None:
    """Options typed as text (column names, paths, the device) keep the command line's text:
    a CSV whose label column is named ``yes`` or ``1`` can be named; ``null`` still unsets
    an optional one (``test_path``), and other options still read as YAML.
    Catches: ``--data.label_column=yes`` read as True and refused with the advice to quote
    "True" (a column name the user never wrote)."""
    assert parse_overrides(["--data.label_column=yes", "--text_column=1", "--data.source=2024",
                            "--data.test_path=null", "--data.format=csv", "--train.device=cpu", "--seed=1"]) == {
        "data.label_column": "yes", "data.text_column": "1", "data.source": "2024", "data.test_path": None,
        "data.format": "csv", "train.device": "cpu", "train.seed": 1}


def test_the_command_line_beats_the_config_file(tmp_path, capsys) -> None:
    """--data and --task replace the config file's data.source and data.task (train's --help:
    the file gives options beyond the command line's). Catches a config file winning."""
    config = tmp_path / "c.yaml"
    config.write_text("data: {source: no_such_data, task: lm}\nmodel: {hidden_size: 4}\ntrain: {epochs: 1}\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--data", "digits", "--task", "classify", "--out", str(out),
                 "--quiet"]) == 0
    written = json.loads((out / "config.json").read_text())
    assert written["data"]["source"] == "digits" and written["data"]["task"] == "classify"
    assert written["model"]["hidden_size"] == 4 and written["train"]["epochs"] == 1  # the file's other options


def test_no_subcommand_prints_the_help_and_exits_2(capsys) -> None:
    """``lstmlite`` alone is a usage error (status 2, as argparse's own) that shows the help.
    Catches it reported as a success."""
    assert main([]) == 2
    assert "usage: lstmlite" in capsys.readouterr().out


def test_train_refuses_a_folder_of_the_users_files_before_training(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "history.json").write_text("my own history")
    assert main(["train", "--data", "digits", "--epochs=1", "--out", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "holds files lstmlite did not write (history.json)" in err and len(err.strip().splitlines()) == 1
    assert (folder / "history.json").read_text() == "my own history"
    assert sorted(p.name for p in folder.iterdir()) == ["history.json"]  # no checkpoints written either


def test_vv_logs_debug() -> None:
    """-vv sets the debug level (main's --help: -v info, -vv debug), read off the root logger
    of a fresh process (pytest's own log handler keeps ``logging.basicConfig`` from acting
    in this one). Catches the level list indexed with -v's cap, so -vv logs info only."""
    import lstmlite

    code = ("import logging; from lstmlite.cli.main import main; main(['-vv', 'data', 'list']); "
            "print(logging.getLogger().level)")
    env = {**os.environ, "PYTHONPATH": str(Path(lstmlite.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.splitlines()[-1]) == logging.DEBUG


def test_data_list_puts_each_value_under_its_column(capsys) -> None:
    """``data list``'s table: the digits row reads classify, 10 classes and 1797 samples
    (scikit-learn's digits: 1,797 8x8 images of 10 digits) under the header's task,
    classes and size columns. Catches two columns' values swapped."""
    assert main(["data", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    starts = [header.index(name) for name in ("name", "task", "classes", "size", "description")]
    row = next(line for line in lines if line.startswith("digits "))
    cells = [row[a:b].strip() for a, b in zip(starts, starts[1:] + [len(row)])]
    assert cells[:4] == ["digits", "classify", "10", "1,797"]


def _interrupt_in_pass_2(monkeypatch) -> None:
    """Ctrl-C in the second pass's validation (its checkpoint is never written)."""
    from lstmlite.train import trainer

    evaluate, calls = trainer.evaluate, []

    def stops_in_pass_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)
    monkeypatch.setattr(trainer, "evaluate", stops_in_pass_2)


def test_ctrl_c_in_train_says_how_to_continue_on_a_line_of_its_own(tmp_path, monkeypatch, capsys) -> None:
    """Ctrl-C after a run's first of 3 passes exits 130 and says, on a line of its own
    (the bar's line cleared first), what was saved and the command that continues: the
    same one with --resume, which then finishes the run.
    Catches: a bare "interrupted" glued to the end of the progress bar's line, with no hint."""
    import re
    import shlex

    out = tmp_path / "bm"
    argv = ["train", "--data", "basic_motions", "--epochs=3", "--hidden_size=4", "--out", str(out), "--progress"]
    _interrupt_in_pass_2(monkeypatch)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "/15 [" in err  # the premise: a bar was drawn (5 steps a pass)
    # after the bar: a carriage return or newline, then the message at the line's start
    found = re.search(r"[\r\n]interrupted after epoch 1 of 3 \(saved in (.*)\); to continue, run the same command "
                      r"with --resume: (.*)\n\Z", err)
    assert found, err[-400:]
    assert found[1] == str(out / "checkpoints")
    command = shlex.split(found[2])
    assert command == ["lstmlite", *argv, "--resume"]
    monkeypatch.undo()
    assert main(command[1:]) == 0
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2, 3]


def test_ctrl_c_before_any_checkpoint_says_only_interrupted(tmp_path, monkeypatch, capsys) -> None:
    """Ctrl-C in the first pass leaves nothing to resume: just "interrupted", exit 130."""
    from lstmlite.train import trainer

    def stops(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(trainer, "evaluate", stops)
    assert main(["train", "--data", "basic_motions", "--epochs=3", "--hidden_size=4", "--out",
                 str(tmp_path / "bm"), "--quiet"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "interrupted"


def test_commands_given_an_interrupted_training_run_say_to_resume_it(tmp_path, monkeypatch, capsys) -> None:
    """eval, export, report and lstmlite.runtime.load of a folder holding an interrupted
    training run (checkpoints/last.json, no config.json) say so and name `lstmlite train
    ... --resume`; a folder without checkpoints is still "not a run dir (no config.json)".
    Catches: "not a run dir (no config.json)" of a run that only needs --resume."""
    from lstmlite import runtime
    from lstmlite.io import RunDirError, load_run

    run = tmp_path / "bm"
    _interrupt_in_pass_2(monkeypatch)
    assert main(["train", "--data", "basic_motions", "--epochs=3", "--hidden_size=4", "--out", str(run),
                 "--quiet"]) == 130
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints"]
    said = (f"{run}: not a run dir yet: it holds an interrupted training run (checkpoints/last.json, no "
            f"config.json); finish it with the command that started it plus --resume (lstmlite train ... --out "
            f"{run} --resume)")
    for argv in (["eval", str(run)], ["export", str(run), "--format", "lsl", "--out", str(tmp_path / "m.lsl")],
                 ["report", str(run), "--out", str(tmp_path / "report.html")]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        assert capsys.readouterr().err == f"lstmlite {argv[0]}: error: {said}\n"
    for load in (load_run, runtime.load):
        with pytest.raises(RunDirError) as refused:
            load(run)
        assert str(refused.value) == said
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match=r"not a run dir \(no config.json\)$"):
        load_run(tmp_path / "empty")
