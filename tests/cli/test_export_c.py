"""``lstmlite export RUN --format c`` as a user runs it: a trained run dir to a C project
that the command builds for the host and checks before reporting success."""

from __future__ import annotations

import re

import pytest
import torch

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


def test_the_project_keeps_the_output_a_board_must_print(digits_run, tmp_path):
    """A checked project holds example_expected.txt, the host example's output, and the
    README says to compare a board's with it; the integer example on the emulated
    Cortex-M4 prints exactly that file. Without it a board had nothing to be checked against
    but a Python call."""
    import shutil
    import subprocess

    assert main(["export", str(digits_run), "--format", "c", "--form", "integer", "--calibrate", "16",
                 "--out", str(tmp_path / "c")]) == 0
    expected = (tmp_path / "c" / "example_expected.txt").read_text()
    assert expected.startswith("step 0: ") and expected.rstrip().endswith("done")
    assert "example_expected.txt" in (tmp_path / "c" / "README.md").read_text()
    for tool in ("make", "arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.fail(f"missing {tool}: the test setup installs it (scripts/system-deps-mcu.txt)")
    board = subprocess.run(["make", "-s", "mcu", "run-mcu"], cwd=tmp_path / "c", capture_output=True, text=True,
                           timeout=300)
    assert board.returncode == 0, board.stderr[-2000:]
    assert board.stdout == expected


def test_the_ram_line_groups_every_byte_count_by_thousands(tmp_path, capsys):
    """Each CPU's line prints state, scratch and stack bytes as the flash and RAM totals are
    printed, grouped by thousands (catches "scratch 2728 B" beside "RAM 4,608 B"): an LSTM-64
    over 12 inputs has a scratch over a thousand bytes."""
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=12, hidden_size=64, n_classes=9).eval(),
                   {"task": "classify"})
    assert main(["export", str(run), "--format", "c", "--out", str(tmp_path / "c")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if ": flash " in line]
    assert len(lines) == 2
    grouped = r"\d{1,3}(?:,\d{3})*"
    for line in lines:
        parts = re.search(rf"\(state ({grouped}) B, scratch ({grouped}) B, stack ({grouped}) B\)", line)
        assert parts is not None, line
        assert int(parts.group(2).replace(",", "")) >= 1000, line


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


def test_int8_form_of_a_float_run_is_checked_against_the_same_codes(tmp_path, capsys):
    """--form int8 rounds a float run's matrices to int8 codes; the check compares the C with the
    model carrying those codes (docs/mcu.md), so the rounding -- here about 6e-3, above the default
    --tolerance -- does not fail an honest export, and the difference printed is the C's own."""
    import torch

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=6, hidden_size=16, n_classes=3).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # weights large enough that rounding them moves the logits past 1e-3
    run = save_run(tmp_path / "run", model, {"task": "classify"})
    assert main(["export", str(run), "--format", "c", "--form", "int8", "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("host build vs"))
    assert "same int8 codes" in line and float(line.rsplit(" ", 1)[1]) <= 1e-5


def test_a_project_that_fails_its_check_is_removed(tmp_path, capsys, monkeypatch):
    """A generated project that differs from its model fails the command and is removed, as a
    .lsl or ONNX file that fails its check is: nothing half-checked is left in --out."""
    import lstmlite.export.c.check as check

    run = save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
                   {"task": "classify"})
    monkeypatch.setattr(check, "check_on_host", lambda project, model, example: (1.0, 1.0))
    assert main(["export", str(run), "--format", "c", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "differs from the model" in err and "removed" in err
    assert not (tmp_path / "c").exists()


def test_a_forecaster_with_several_targets_is_checked_against_its_whole_forecast(tmp_path, capsys):
    """A forecaster's step output is its whole forecast, flat and horizon-major (horizon x targets
    values): the check reads the model's (B, horizon, targets) forecast the same way, where it took
    the last horizon row as if it were a per-step model's last step, and the command failed with an
    internal error on every multi-target forecaster."""
    import torch

    from lstmlite.nn import Forecaster

    torch.manual_seed(0)
    model = Forecaster(input_size=3, hidden_size=8, horizon=3, targets=2, instance_norm=False).eval()
    run = save_run(tmp_path / "run", model, {"task": "forecast"})
    assert main(["export", str(run), "--format", "c", "--out", str(tmp_path / "c")]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("host build vs"))
    assert float(line.rsplit(" ", 1)[1]) <= 1e-5


def test_integer_form_of_an_imported_run_calibrates_on_data(tmp_path, capsys):
    """An imported run records no data, so the integer form cannot take its calibration from the
    run: the command says to pass --data (one line, nothing written), and with --data the project
    is calibrated on that file, built and checked exactly; --data with a float form is refused
    (it would be ignored). Catches export having no --data at all, which the message advised."""
    import numpy as np
    import torch

    from lstmlite.importers import import_torch

    torch.manual_seed(0)
    lstm, fc = torch.nn.LSTM(5, 6, batch_first=True), torch.nn.Linear(6, 3)
    state = {**{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
             **{f"fc.{k}": v for k, v in fc.state_dict().items()}}
    import_torch(state, out=tmp_path / "run")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.standard_normal((40, 8, 5)).astype(np.float32), y=rng.integers(0, 3, 40))
    argv = ["export", str(tmp_path / "run"), "--format", "c", "--form", "integer", "--out", str(tmp_path / "c")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "records no data" in err and "--data" in err
    assert not (tmp_path / "c").exists()
    assert main([*argv, "--data", str(tmp_path / "data.npz")]) == 0
    assert "host build vs the integer reference on the example: max abs difference 0" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "run"), "--format", "c", "--data", str(tmp_path / "data.npz"),
                 "--out", str(tmp_path / "f")]) == 2
    assert "--data is for --form integer" in capsys.readouterr().err and not (tmp_path / "f").exists()


@pytest.mark.parametrize("case,advice", [("revin", "nearest supported form: --form auto with instance_norm=false"),
                                         ("bidirectional", "nearest supported form: --form integer with a "
                                                           "unidirectional layer")])
def test_form_tflite_of_a_run_advises_a_form_that_takes_it(tmp_path, capsys, case, advice):
    """--form tflite of a run dir is refused (a run holds no TFLite quantization) naming the form
    to use instead; for a run the integer form refuses as well (a forecaster with instance
    normalisation, a bidirectional classifier) that is the integer form's own advice, where the
    command sent every run to --form integer, which then refused it."""
    from lstmlite.nn import Forecaster

    model = (Forecaster(input_size=3, hidden_size=6, horizon=2) if case == "revin"
             else SequenceClassifier(input_size=4, hidden_size=6, bidirectional=True))
    run = save_run(tmp_path / "run", model.eval(), {"task": "forecast" if case == "revin" else "classify"})
    assert main(["export", str(run), "--format", "c", "--form", "tflite", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith(advice), err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("argv,named", [
    (["--weights", "int8"], "--weights is for --format lsl"),
    (["--quantize", "qdq"], "--quantize: for --format onnx"),
    (["--stateful", "--no-lengths"], "--no-lengths, --stateful: for --format onnx"),
    (["--no-check"], "--no-check: for --format onnx"),
    (["--calibrate", "5"], "--calibrate is for --form integer"),
    (["--tflite-kernel", "lite"], "--tflite-kernel is for --form tflite"),
])
def test_an_option_the_c_export_would_ignore_is_refused(tmp_path, capsys, argv, named):
    """Another format's option (or another form's) given with --format c is one line naming where
    it belongs, nothing written, where the project was made without it: --weights int8 gave the
    run's fp32 weights and --no-check still built and checked the project."""
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
                   {"task": "classify"})
    assert main(["export", str(run), "--format", "c", *argv, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("quantized", [False, True])
def test_int8_form_of_a_masked_low_rank_run_is_not_held_to_the_rounding(tmp_path, capsys, quantized):
    """A low-rank product under a pruning mask is one dense float matrix in the project, which
    --form int8 rounds per row; no PyTorch model carries those codes, so the check cannot tell
    the C's own error from the rounding and says so instead of holding it to --tolerance. Where
    the command compared with the unrounded model, claimed "the same int8 codes" (the factors
    int8-quantized) or not, and with --tolerance 0 removed an honest project and failed."""
    import torch

    from lstmlite.compress import LowRankConfig, MagnitudePruneConfig, WeightQuantConfig, compress_
    from lstmlite.compress.api import compression_state

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3)
    compress_(model, LowRankConfig(rank=2))
    compress_(model, MagnitudePruneConfig(sparsity=0.5))
    if quantized:  # the factors' own int8 codes: still a dense product under the mask in the project
        compress_(model, WeightQuantConfig(bits=8))
    run = save_run(tmp_path / "run", model.eval(), {"task": "classify", "compression": compression_state(model)})
    assert main(["export", str(run), "--format", "c", "--form", "int8", "--tolerance", "0",
                 "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "same int8 codes" not in out and "not held to --tolerance" in out and "--form auto" in out
    assert (tmp_path / "c" / "model.c").is_file()


@pytest.mark.parametrize("flags, n", [([], 64), (["--calibrate", "5"], 5)])
def test_integer_form_calibrates_on_the_sequences_asked_for(digits_run, tmp_path, monkeypatch, flags, n):
    """--calibrate N takes the value ranges from the first N training sequences, 64 when not
    given (export's --help): export_c receives exactly those, compared with the run's
    training split read through load_run_data. Catches one sequence fewer (an off-by-one
    in the count) and another default."""
    import lstmlite.export.c as c_export
    from lstmlite.io import load_run
    from lstmlite.train.run import load_run_data

    real, seen = c_export.export_c, []

    def record(model, out, **kwargs):
        seen.append(kwargs["calibration"])
        return real(model, out, **kwargs)

    monkeypatch.setattr(c_export, "export_c", record)
    assert main(["export", str(digits_run), "--format", "c", "--form", "integer", *flags,
                 "--out", str(tmp_path / "c")]) == 0
    train = load_run_data(load_run(digits_run)).train
    assert len(train.x) > 64
    (batch,) = seen[0]
    assert torch.equal(batch["x"], torch.as_tensor(train.x[:n]))
    assert torch.equal(batch["lengths"], torch.as_tensor(train.lengths[:n]))



def test_every_format_says_inputs_are_standardised_and_c_gets_the_header(tmp_path, capsys):
    """A run trained on standardised features: each export names the step a raw input needs
    and where the statistics are (the file holds the weights only; a raw input gives wrong
    answers and no error, which no export said), and the C project holds preprocess.h with
    the run's numbers. A run without statistics prints no such line."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=2, hidden_size=6, n_classes=3).eval()
    run = save_run(tmp_path / "run", model, {"task": "classify", "stats": {"mean": [3.5, -1.0], "std": [2.0, 0.25]}})
    bare = save_run(tmp_path / "bare", model, {"task": "classify"})
    for fmt, out in (("lsl", "m.lsl"), ("onnx", "m.onnx"), ("c", "c")):
        assert main(["export", str(run), "--format", fmt, "--out", str(tmp_path / out)]) == 0
        printed = capsys.readouterr().out
        assert "inputs: the model reads standardised features, (x - mean) / std per feature with the training " \
               f"split's statistics ({run / 'config.json'} \"stats\"); raw values give wrong answers" in printed, fmt
        assert ("preprocess.h" in printed) == (fmt == "c")
        assert main(["export", str(bare), "--format", fmt, "--out", str(tmp_path / f"bare-{out}")]) == 0
        assert "inputs:" not in capsys.readouterr().out
    header = (tmp_path / "c" / "preprocess.h").read_text()
    assert "static const float mean[2] = {3.5f, -1.0f};" in header and "static const float std[2] = {2.0f, 0.25f};" \
        in header
    assert not (tmp_path / "bare-c" / "preprocess.h").exists()


def test_a_tolerance_the_user_gives_holds_the_float_c_project_too(tmp_path, capsys):
    """--tolerance 1e-12 (below float32's rounding of the C's outputs) removes the project
    and fails, as it does a .lsl or ONNX file; the C check allowed 1e-5 of the outputs'
    scale whatever --tolerance said, so the export passed. Without --tolerance that allowance
    stays (float32 differs from PyTorch by rounding)."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=16, n_classes=3).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4)  # outputs of some magnitude: the C's float32 rounding is not 0
    run = save_run(tmp_path / "run", model, {"task": "classify"})
    assert main(["export", str(run), "--format", "c", "--out", str(tmp_path / "ok")]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("host build vs"))
    assert float(line.rsplit(" ", 1)[1]) > 1e-12
    assert main(["export", str(run), "--format", "c", "--tolerance", "1e-12", "--out", str(tmp_path / "c")]) == 2
    assert "> --tolerance 1e-12" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
