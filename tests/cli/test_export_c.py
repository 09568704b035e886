"""``lstmlite export RUN --format c`` as a user runs it: a trained run dir to a C project
that the command builds for the host and checks before reporting success."""

from __future__ import annotations

import pytest

from lstmlite.cli.main import main
from lstmlite.io import save_run
from lstmlite.nn import SequenceClassifier


def test_integer_form_is_calibrated_built_and_checked_exactly(digits_run, tmp_path, capsys):
    """The integer form is checked exactly; --tolerance 0, the smallest that export's --help
    allows (a finite number >= 0), is accepted (catches a check refusing 0)."""
    assert main(["export", str(digits_run), "--format", "c", "--form", "integer", "--calibrate", "32",
                 "--tolerance", "0", "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "cortex-m4: flash" in out and "cortex-m3: flash" in out
    assert "host build vs the integer reference on the example: max abs difference 0" in out
    assert (tmp_path / "c" / "model.h").is_file() and (tmp_path / "c" / "lsl_int.c").is_file()


def test_float_form_is_checked_against_the_model(tmp_path, capsys):
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
                   {"task": "classify"})
    assert main(["export", str(run), "--format", "c", "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "host build vs lstmlite on the example: max abs difference" in out
    assert main(["export", str(run), "--format", "c", "--out", str(tmp_path / "c")]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err


def test_unsupported_form_is_one_line_naming_the_layer(tmp_path, capsys):
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, bidirectional=True), {})
    assert main(["export", str(run), "--format", "c", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "layer 0" in err and "nearest supported form" in err
