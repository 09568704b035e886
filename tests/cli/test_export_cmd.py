"""``lstmlite export`` (cli/export_cmd.py) as a user runs it: where each format writes, what
it refuses before writing, and the options each format passes on to the library's writer.
Every test names the wrong implementation of the command that it catches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lstmlite.cli.main import main
from lstmlite.io import save_run
from lstmlite.nn import SequenceClassifier


@pytest.fixture(scope="module")
def seq2seq_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seq2seq run (string reversal pairs) trained for one epoch, hidden size 8."""
    tmp = tmp_path_factory.mktemp("s2s")
    pairs = tmp / "p.tsv"
    pairs.write_text("abc\tcba\nbca\tacb\ncab\tbac\nab\tba\n" * 10, encoding="utf-8")
    assert main(["train", "--data", str(pairs), "--task", "seq2seq", "--out", str(tmp / "run"), "--quiet",
                 "--train.epochs=1", "--model.hidden_size=8", "--model.embed_dim=4"]) == 0
    return tmp / "run"


@pytest.fixture()
def float_run(tmp_path: Path) -> Path:
    """A small float classifier of features (4 inputs, 3 classes) saved as a run dir."""
    torch.manual_seed(0)
    return save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
                    {"task": "classify"})


def _one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lstmlite export: error: "), err
    return err


@pytest.mark.parametrize("fmt", ["onnx", "lsl"])
def test_a_seq2seq_out_named_as_one_file_is_refused_and_nothing_written(seq2seq_run, tmp_path, capsys, fmt):
    """A seq2seq run exports as a folder of files: ``--out pair.onnx`` (or ``pair.lsl``) is
    refused in one line, exit 2, and no folder of that name is made. Catches the refusal in
    ``_seq2seq_folder`` dropped, which wrote a folder named ``pair.onnx`` holding
    encoder.onnx + decoder_step.onnx."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    out = tmp_path / f"pair.{fmt}"
    capsys.readouterr()
    assert main(["export", str(seq2seq_run), "--format", fmt, "--out", str(out)]) == 2
    err = _one_error_line(capsys)
    assert "a seq2seq model exports as a folder" in err and f"--out {tmp_path / 'pair'}/" in err
    assert not out.exists()


@pytest.mark.parametrize("fmt, name", [("onnx", "encoder.onnx"), ("lsl", "encoder.lsl")])
def test_a_seq2seq_export_into_a_folder_holding_files_is_refused_and_keeps_them(seq2seq_run, tmp_path, capsys,
                                                                                  fmt, name):
    """--out a folder that already holds files (here a user's own file named as the export's
    first one): refused, exit 2, the user's bytes untouched and none of the export's files
    added. Catches the "exists and is not empty" guard of a seq2seq export dropped, which
    overwrote the user's file and added the others beside it."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    out = tmp_path / "deploy"
    out.mkdir()
    (out / name).write_bytes(b"mine")
    capsys.readouterr()
    assert main(["export", str(seq2seq_run), "--format", fmt, "--out", str(out)]) == 2
    assert "exists and is not empty" in _one_error_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == [name] and (out / name).read_bytes() == b"mine"


def test_a_seq2seq_onnx_pair_is_held_to_the_tolerance_the_user_gives(seq2seq_run, tmp_path, capsys, monkeypatch):
    """The seq2seq ONNX pair's check is held to --tolerance as a single file's is: a check
    measuring 0.01 fails the default 1e-3 (both files removed, exit 2) and passes
    ``--tolerance 0.1`` (both kept). Catches the pair held to the default tolerance whatever
    --tolerance says."""
    pytest.importorskip("onnxruntime")
    import lstmlite.export.onnx_seq2seq as onnx_s2s

    monkeypatch.setattr(onnx_s2s, "check_seq2seq_onnx", lambda *a, **k: 0.01)
    capsys.readouterr()
    assert main(["export", str(seq2seq_run), "--format", "onnx", "--out", str(tmp_path / "strict")]) == 2
    assert "differ from the model by 1.00e-02 (> --tolerance 0.001)" in _one_error_line(capsys)
    assert not list((tmp_path / "strict").iterdir())
    assert main(["export", str(seq2seq_run), "--format", "onnx", "--tolerance", "0.1",
                 "--out", str(tmp_path / "loose")]) == 0
    assert sorted(p.name for p in (tmp_path / "loose").iterdir()) == ["decoder_step.onnx", "encoder.onnx"]


def test_no_check_skips_the_seq2seq_onnx_check(seq2seq_run, tmp_path, capsys, monkeypatch):
    """--no-check writes a seq2seq model's ONNX pair without running it in ONNX Runtime
    (export's --help): a check that would fail (it measures 1.0) is never reached, the pair
    is kept and no comparison is printed. Catches --no-check ignored for a seq2seq run."""
    pytest.importorskip("onnxruntime")
    import lstmlite.export.onnx_seq2seq as onnx_s2s

    monkeypatch.setattr(onnx_s2s, "check_seq2seq_onnx", lambda *a, **k: 1.0)
    capsys.readouterr()
    assert main(["export", str(seq2seq_run), "--format", "onnx", "--no-check", "--out", str(tmp_path / "o")]) == 0
    assert "ONNX Runtime vs" not in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["decoder_step.onnx", "encoder.onnx"]


def test_calibrate_zero_is_refused_in_one_line_before_anything_is_written(digits_run, tmp_path, capsys):
    """``--form integer --calibrate 0`` (no sequence to take value ranges from) is the user's
    error: exit 2, one line naming the smallest count, no project folder. Catches the check
    written ``< 0``, which let 0 through to an internal error (exit 1) from an empty
    calibration batch."""
    capsys.readouterr()
    assert main(["export", str(digits_run), "--format", "c", "--form", "integer", "--calibrate", "0",
                 "--out", str(tmp_path / "c")]) == 2
    assert "--calibrate must be at least 1" in _one_error_line(capsys)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("tolerance", ["inf", "nan", "-0.5"])
def test_a_tolerance_that_holds_nothing_is_refused(float_run, tmp_path, capsys, tolerance):
    """--tolerance must be a finite number >= 0 (export's --help, docs/errors.md): ``inf``
    would accept any file, NaN and negatives none; each is refused in one line (exit 2)
    before a file is written. Catches the finiteness check dropped (``inf`` accepted and the
    file written)."""
    capsys.readouterr()
    assert main(["export", str(float_run), "--format", "lsl", "--tolerance", tolerance,
                 "--out", str(tmp_path / "m.lsl")]) == 2
    assert "--tolerance must be a finite number >= 0" in _one_error_line(capsys)
    assert not (tmp_path / "m.lsl").exists()


def test_an_integer_project_off_its_reference_by_one_code_is_removed_and_fails(digits_run, tmp_path, capsys,
                                                                               monkeypatch):
    """The integer form is checked exactly: a host build whose outputs differ from the integer
    reference at all (here by one code, which any --tolerance would let through) fails the
    command, exit 2, and the project is removed. Catches the ``error != 0`` check of the
    integer form dropped (a wrong project kept and reported as written)."""
    import lstmlite.export.c.check as check

    monkeypatch.setattr(check, "check_on_host", lambda project, model, example: (1.0, 1.0))
    capsys.readouterr()
    assert main(["export", str(digits_run), "--format", "c", "--form", "integer", "--calibrate", "4",
                 "--tolerance", "10", "--out", str(tmp_path / "c")]) == 2
    assert "differs from the integer reference by 1; removed" in _one_error_line(capsys)
    assert not (tmp_path / "c").exists()


def test_a_c_check_that_measures_nan_fails_and_removes_the_project(float_run, tmp_path, capsys, monkeypatch):
    """A float C project whose host build gives NaN where the model does not fails as one
    beyond --tolerance does, however large the tolerance (NaN compares false with every
    number): exit 2, project removed. Catches the C check written ``error > tolerance``,
    which let NaN through and kept the project."""
    import lstmlite.export.c.check as check

    monkeypatch.setattr(check, "check_on_host", lambda project, model, example: (float("nan"), 1.0))
    capsys.readouterr()
    assert main(["export", str(float_run), "--format", "c", "--tolerance", "1e9", "--out", str(tmp_path / "c")]) == 2
    assert "C project differs from the model by nan (> --tolerance 1e+09)" in _one_error_line(capsys)
    assert not (tmp_path / "c").exists()


def test_a_seq2seq_run_has_no_c_export_and_says_which_formats_it_has(seq2seq_run, tmp_path, capsys):
    """``--format c`` of a seq2seq run is refused in one line naming the formats it does
    export to (lsl, onnx), exit 2, no project folder. Catches the seq2seq refusal dropped
    (the run handed to export_c, which fails in its own words or writes a project without
    the attention)."""
    capsys.readouterr()
    assert main(["export", str(seq2seq_run), "--format", "c", "--out", str(tmp_path / "c")]) == 2
    err = _one_error_line(capsys)
    assert "a seq2seq model has no C export" in err and "--format lsl or --format onnx" in err
    assert not (tmp_path / "c").exists()


def test_a_tflite_file_without_form_tflite_is_told_the_form_that_takes_it(tmp_path, capsys):
    """A .tflite file given to ``--format c`` with another --form (auto here) is refused in
    one line naming ``--form tflite``, exit 2, nothing written. Catches the .tflite check
    dropped: the file was then read as a run dir and refused as "not a run dir", with no
    word of the form that exports it."""
    model = tmp_path / "lstm.tflite"
    model.write_bytes(b"not a flatbuffer")
    capsys.readouterr()
    assert main(["export", str(model), "--format", "c", "--out", str(tmp_path / "c")]) == 2
    assert f"{model}: a .tflite file exports with --form tflite" in _one_error_line(capsys)
    assert not (tmp_path / "c").exists() and model.read_bytes() == b"not a flatbuffer"


@pytest.mark.parametrize("fmt", ["lsl", "onnx"])
def test_data_alone_is_refused_by_the_formats_that_do_not_read_it(float_run, tmp_path, capsys, fmt):
    """``--data`` is the integer C form's calibration data: ``--format lsl`` or ``onnx`` with
    it (and no other foreign option) is refused in one line, exit 2, nothing written.
    Catches --data missing from the table of format-only options (the file written without
    a word that --data did nothing)."""
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    capsys.readouterr()
    assert main(["export", str(float_run), "--format", fmt, "--data", "digits", "--out", str(tmp_path / "o")]) == 2
    assert f"--data: for --format c, not --format {fmt}" in _one_error_line(capsys)
    assert not (tmp_path / "o").exists()
