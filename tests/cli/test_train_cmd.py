"""``lstmlite train`` (cli/train_cmd.py): what it says after Ctrl-C. Each test names the wrong
implementation of the command that it catches."""

from __future__ import annotations

import pytest

from lstmlite.cli.main import main


def _interrupt_in_pass(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Ctrl-C in pass ``n``'s validation (that pass's checkpoint is never written)."""
    from lstmlite.train import trainer

    evaluate, calls = trainer.evaluate, []

    def stops(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)
    monkeypatch.setattr(trainer, "evaluate", stops)


def test_ctrl_c_of_a_forced_run_does_not_offer_to_resume_the_run_it_replaces(tmp_path, monkeypatch, capsys):
    """--force starts --out over; Ctrl-C while the new run still loads its data (before the
    older run's checkpoints are removed) leaves only the older run's checkpoint, written
    before this command started, which is not this command's to resume: the line is a
    bare "interrupted", exit 130. Catches the age test of the
    checkpoint dropped (every checkpoint taken as fresh), which told the user to rerun with
    --resume and so continue the run they had asked to replace."""
    out = tmp_path / "bm"
    argv = ["train", "--data", "basic_motions", "--epochs=3", "--hidden_size=4", "--out", str(out), "--quiet"]
    _interrupt_in_pass(monkeypatch, 2)
    assert main(argv) == 130
    assert (out / "checkpoints" / "last.json").is_file()  # the premise: an older run's checkpoint
    monkeypatch.undo()
    import importlib

    train_run = importlib.import_module("lstmlite.train.run")  # the module (lstmlite.train.run is also a name)

    def interrupted(config):
        raise KeyboardInterrupt
    monkeypatch.setattr(train_run, "resolve_config", interrupted)
    capsys.readouterr()
    assert main([*argv, "--force"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "interrupted"


@pytest.mark.parametrize("extra", [["--force"], ["--resume"]])
def test_the_command_to_continue_is_the_one_given_with_one_resume_and_no_force(tmp_path, monkeypatch, capsys, extra):
    """After Ctrl-C the command printed to continue is the one the user gave, with --force
    left out (it would start over) and --resume once: a --force run interrupted after its
    first pass, and a --resume run interrupted again. Catches --force kept in the printed
    command, and a second --resume appended to one that has it."""
    import shlex

    out = tmp_path / "bm"
    argv = ["train", "--data", "basic_motions", "--epochs=3", "--hidden_size=4", "--out", str(out), "--quiet"]
    if extra == ["--resume"]:  # an interrupted run to resume: its checkpoint after pass 1
        _interrupt_in_pass(monkeypatch, 2)
        assert main(argv) == 130
        monkeypatch.undo()
        _interrupt_in_pass(monkeypatch, 1)  # the resumed run's first pass (epoch 2)
    else:
        _interrupt_in_pass(monkeypatch, 2)
    capsys.readouterr()
    assert main([*argv, *extra]) == 130
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.startswith("interrupted after epoch 1 of 3"), line
    assert shlex.split(line.split("--resume: ", 1)[1]) == ["lstmlite", *argv, "--resume"]
