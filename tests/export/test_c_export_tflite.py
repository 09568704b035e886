"""The TFLite-compatible C export (``export_c(..., form="tflite")``) built and run on the
host (``-std=c99 -Wall -Wextra -Werror -pedantic``, model.h included twice), on emulated
Cortex-M4 (QEMU mps2-an386) and Cortex-M3 (mps2-an385): every step's output must equal
TensorFlow Lite Micro's own outputs in the CMSIS-NN LSTM vector sets
(../shared/peers/tflm-lstm-testdata, read by tests/_tflm_vectors.py; int8 and 16x8).

The oracle is TFLite Micro (the vectors' expected outputs), not our reference. Each batch
row of a vector set is an independent sequence from TFLite's reset state, so each runs as
one generated project's example. The cross compiler and QEMU come from
scripts/system-deps-mcu.txt; a missing tool fails these tests (never skips them).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstmlite.export.c import UnsupportedForm, export_c
from lstmlite.export.c.check import expected_outputs
from lstmlite.nn import SequenceClassifier


def _load(name: str, path: Path):
    """A helper module of the suite by file path (the tests are not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules.setdefault(name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


vectors = _load("_tflm_vectors", Path(__file__).resolve().parents[1] / "_tflm_vectors.py")

# building and running a generated project: the C export tests' own helpers
c_export = _load("_test_c_export", Path(__file__).resolve().parent / "test_c_export.py")
BOARDS, require_tools, _make = c_export.BOARDS, c_export.require_tools, c_export._make


def require_vectors() -> None:
    if not vectors.available():
        pytest.fail(f"the TFLite Micro vectors are not at {vectors.VECTOR_ROOT} (set LSTMLITE_TFLM_VECTORS)")


def run_project(project: Path, target: str) -> np.ndarray:
    """Build the example for ``target``, run it; every step's outputs (T, H) as integers."""
    return c_export.as_ints(c_export.run_example(project, target))


def _check_case(case_name: str, target: str, tmp_path: Path, rows: slice = slice(None)) -> int:
    require_vectors()
    case = vectors.load_case(case_name)
    checked = 0
    for b in range(case.x.shape[0])[rows]:
        project = export_c(case.params, tmp_path / f"{case_name}-{b}", form="tflite", example=case.x[b])
        got = run_project(project.path, target)
        np.testing.assert_array_equal(got, case.expected[b], err_msg=f"{case_name} row {b} on {target}")
        checked += 1
    return checked


@pytest.mark.parametrize("case", vectors.ALL_CASES)
def test_host_build_equals_tflite_micro_vectors(tmp_path, case):
    """Every row of every vector set, int8 and 16x8, on the host (strict C99 build)."""
    assert _check_case(case, "host", tmp_path) >= 1


@pytest.mark.parametrize("case", vectors.ALL_CASES)
def test_cortex_m4_equals_tflite_micro_vectors(tmp_path, case):
    """The first row of every vector set on the Cortex-M4 (the other rows: the slow test)."""
    assert _check_case(case, "cortex-m4", tmp_path, slice(0, 1)) == 1


@pytest.mark.parametrize("case", ["lstm_2", "lstm_1_s16"])
def test_cortex_m3_equals_tflite_micro_vectors(tmp_path, case):
    assert _check_case(case, "cortex-m3", tmp_path, slice(0, 1)) == 1


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3"])
def test_every_vector_row_on_cortex_m(tmp_path, target):
    assert sum(_check_case(c, target, tmp_path) for c in vectors.ALL_CASES) == 14


def test_the_reference_check_agrees_with_the_vectors(tmp_path):
    """check.expected_outputs (what the CLI compares the C with) is TFLite Micro's answer."""
    require_vectors()
    case = vectors.load_case("lstm_stateful_batch_major_multibatch")
    project = export_c(case.params, tmp_path / "p", form="tflite", example=case.x[1])
    np.testing.assert_array_equal(expected_outputs(project, None, project.example), case.expected[1])


def test_project_needs_no_libm_and_no_other_runtime(tmp_path):
    require_tools()
    require_vectors()
    project = export_c(vectors.load_case("lstm_2").params, tmp_path / "p", form="tflite")
    names = sorted(p.name for p in project.files if p.parent == project.path)
    assert [n for n in names if n.startswith("lsl")] == ["lsl_tflite.c", "lsl_tflite.h"]
    makefile = (project.path / "Makefile").read_text()
    assert re.search(r"^LIBM = *$", makefile, re.M), "the tflite form links no libm"
    _make(project.path, "CPU=cortex-m4", "size")
    undefined = set()
    for obj in ("model.o", "lsl_tflite.o"):
        nm = subprocess.run(["arm-none-eabi-nm", "-u", str(project.path / "build" / "cortex-m4" / obj)],
                            capture_output=True, text=True, check=True).stdout
        undefined |= {line.split()[-1] for line in nm.splitlines() if line.strip()}
    # only the kernel's own entry points: no libm, no float or 64-bit division helpers
    assert undefined <= {"lsl_tflite_check", "lsl_tflite_reset", "lsl_tflite_step"}, undefined
    header = (project.path / "model.h").read_text()
    assert "typedef int8_t lstmlite_input_t;" in header and "#define LSTMLITE_MODEL_INPUT_ZERO_POINT -128" in header
    assert "const int8_t g0_wx" in (project.path / "model.c").read_text()  # weights stay in flash


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m3"])
def test_memory_report_within_5_percent(tmp_path, cpu):
    require_tools()
    require_vectors()
    project = export_c(vectors.load_case("lstm_1").params, tmp_path / "p", form="tflite")
    lines = _make(project.path, f"CPU={cpu}", "size").strip().splitlines()
    text, data, bss = (int(v) for v in lines[-1].split()[:3])
    report = project.memory[cpu]
    assert abs(report.flash - (text + data)) <= 0.05 * (text + data), (report, text, data)
    assert abs(report.ram_static - (data + bss)) <= 0.05 * (data + bss), (report, data, bss)


def test_refuses_a_model_that_is_not_tflite_quantized(tmp_path):
    with pytest.raises(UnsupportedForm, match="nearest supported form: --form integer") as err:
        export_c(SequenceClassifier(input_size=3, hidden_size=4), tmp_path / "p", form="tflite")
    assert "\n" not in str(err.value)
    require_vectors()
    with pytest.raises(ValueError, match=r"\(T, 6\) integers in \[-128, 127\]"):
        export_c(vectors.load_case("lstm_2").params, tmp_path / "q", form="tflite", example=np.full((3, 6), 300))


def test_cli_refuses_a_run_dir_for_form_tflite(tmp_path, capsys):
    from lstmlite.cli.main import main

    assert main(["export", str(tmp_path), "--format", "c", "--form", "tflite", "--out", str(tmp_path / "c")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ".tflite file" in err and "--form integer" in err


_TF = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tf_keras", "ai_edge_litert"))


@pytest.mark.parametrize("kernel", ["lite", pytest.param("micro", marks=pytest.mark.slow)])
def test_cli_exports_a_tflite_file_equal_to_litert(tmp_path, capsys, kernel):
    """A converted tf_keras LSTM through ``lstmlite export FILE.tflite --format c --form
    tflite``: with the lite kernel, the host build's outputs are LiteRT's integers."""
    if not _TF:  # the dev extra installs them; missing is a failure
        pytest.fail("tensorflow, tf_keras and ai_edge_litert are needed: run `make install`")
    importer_tests = _load("_test_tflite_import", Path(__file__).resolve().parents[1] / "importers" / "test_tflite_import.py")
    _convert, _litert = importer_tests._convert, importer_tests._litert

    content = _convert(6, 4, 5, 1, 1.0, 0.0, 1.0)
    path = tmp_path / "lstm.tflite"
    path.write_bytes(content)
    from lstmlite.cli.main import main

    out = tmp_path / "c"
    assert main(["export", str(path), "--format", "c", "--form", "tflite", "--tflite-kernel", kernel,
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "host build vs TFLite's arithmetic (lstmlite.reference.tflite_int) on the example: max abs difference 0" \
        in printed
    # the kernel asked for is the one written: model.c as the library writes it with that kernel, not the
    # other's (the option dropped on its way to export_c passed its own check, which reads the project)
    other = "micro" if kernel == "lite" else "lite"
    asked, not_asked = (export_c(path, tmp_path / k, form="tflite", tflite_kernel=k).path / "model.c"
                        for k in (kernel, other))
    assert asked.read_text() != not_asked.read_text()
    assert (out / "model.c").read_text() == asked.read_text()
    if kernel == "lite":
        x = np.random.default_rng(1).integers(-128, 128, (6, 4)).astype(np.int8)
        project = export_c(path, tmp_path / "c2", form="tflite", tflite_kernel="lite", example=x)
        interp, inp, outp = _litert(content)
        interp.set_tensor(inp["index"], x[None])
        interp.invoke()
        np.testing.assert_array_equal(run_project(project.path, "host"), interp.get_tensor(outp["index"])[0])


def _convert_layers(layers, steps: int = 5, features: int = 4) -> bytes:
    """A tf_keras Sequential of ``layers`` converted with full-integer int8 quantization."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(steps, features), batch_size=1), *layers])
    rng = np.random.default_rng(0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.normal(size=(1, steps, features)).astype(np.float32)]
                                           for _ in range(20))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


def test_a_tflite_model_with_a_head_after_its_lstm_is_refused(tmp_path, capsys):
    """A converted LSTM -> Dense(softmax) classifier: form tflite exports the LSTM layer alone,
    so the file is refused in one line naming the operators it would drop, through export_c and
    the CLI, with nothing written (the last-step STRIDED_SLICE of return_sequences=False is not
    named: the project's last step is that output); the layer read on purpose still exports.
    Catches the head silently dropped: a project that printed h where the model gives class
    probabilities."""
    if not _TF:  # the dev extra installs them; missing is a failure
        pytest.fail("tensorflow, tf_keras and ai_edge_litert are needed: run `make install`")
    import tf_keras

    from lstmlite.cli.main import main
    from lstmlite.importers.tflite import read_tflite_lstm

    path = tmp_path / "clf.tflite"
    path.write_bytes(_convert_layers([tf_keras.layers.LSTM(6), tf_keras.layers.Dense(3, activation="softmax")]))
    with pytest.raises(UnsupportedForm, match=r"computes FULLY_CONNECTED, SOFTMAX besides its LSTM.*nearest "
                                              r"supported form: convert the LSTM layer alone") as err:
        export_c(path, tmp_path / "p", form="tflite")
    assert "\n" not in str(err.value) and not (tmp_path / "p").exists()
    assert main(["export", str(path), "--format", "c", "--form", "tflite", "--out", str(tmp_path / "c")]) == 2
    assert "FULLY_CONNECTED, SOFTMAX" in capsys.readouterr().err and not (tmp_path / "c").exists()
    layer = read_tflite_lstm(path)  # the layer on purpose: exported as it is
    assert layer.operators == ("UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "FULLY_CONNECTED", "SOFTMAX")
    assert export_c(layer, tmp_path / "layer", form="tflite").tflite is layer.params


def test_a_tflite_project_that_fails_its_check_is_removed(tmp_path, capsys, monkeypatch):
    """A generated TFLite-form project that differs from TFLite's arithmetic fails the command and
    is removed, as every other C form's is (nothing half-checked left in --out). Catches the
    project left in place beside the error."""
    import lstmlite.export.c.check as check
    from lstmlite.cli.main import main

    require_vectors()
    path = tmp_path / "lstm.tflite"
    path.write_bytes(b"")  # read_tflite_lstm is replaced below: the name is what the CLI checks
    params = vectors.load_case("lstm_2").params
    monkeypatch.setattr("lstmlite.export.c._tflite_model_of", lambda source, kernel="micro": (params, None, None))
    monkeypatch.setattr(check, "check_on_host", lambda project, model, example: (1.0, 1.0))
    assert main(["export", str(path), "--format", "c", "--form", "tflite", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "differs from TFLite's arithmetic" in err and "removed" in err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("kernel", ["micro", "lite"])
def test_a_hidden_zero_point_apart_from_the_outputs_reaches_the_c(tmp_path, kernel):
    """Desktop TFLite may calibrate the hidden zero point apart from the output's (the
    vectors never do): the host build of such a layer prints, at every step, what the
    NumPy TFLite reference (lstmlite.reference.tflite_int) computes. Planted and failing
    it: model.c writing the output and hidden zero points in each other's struct fields."""
    from lstmlite.export.c.check import check_on_host
    from lstmlite.reference.tflite_int import TFLiteGate, TFLiteLSTMParams

    require_tools()
    rng = np.random.default_rng(5)
    H, I = 5, 3

    def gate():
        return TFLiteGate(rng.integers(-127, 128, (H, I)), rng.integers(-127, 128, (H, H)),
                          rng.integers(-2000, 2000, H), 1 << 30, -8, 1 << 30, -8)

    params = TFLiteLSTMParams(gate(), gate(), gate(), gate(), input_zero_point=-5, output_zero_point=7,
                              cell_scale_power=-12, forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
                              input_cell_multiplier=1 << 30, input_cell_shift=-17, output_multiplier=1 << 30,
                              output_shift=-22, kernel=kernel, hidden_zero_point=-40)
    example = rng.integers(-128, 128, (9, I))
    project = export_c(params, tmp_path / "p", form="tflite", example=example)
    error, scale = check_on_host(project, None, project.example)
    assert error == 0 and scale > 0


def test_a_time_major_tflite_model_exports_one_sequence_at_a_time_equal_to_litert(tmp_path, capsys):
    """A time-major .tflite LSTM (input (T, B, I), batch 3; the converted file edited so, as
    tests/importers does) through export_c and the CLI: the project runs one sequence step by
    step, so the op's time_major only says where sequence b lies in the tensor (input[:, b, :]).
    The oracle is LiteRT run on the whole (T, B, I) tensor: each sequence's host-build outputs
    are its (T, H) slice output[:, b, :], bit for bit, so nothing of the op is lost. The
    project says so: model.h and the README carry the layout note and
    LSTMLITE_MODEL_TFLITE_TIME_MAJOR 1, the CLI prints it. Before, time_major was dropped
    without a word (the note, the define and the printed line are what fail)."""
    if not _TF:  # the dev extra installs them; missing is a failure
        pytest.fail("tensorflow, tf_keras and ai_edge_litert are needed: run `make install`")
    from lstmlite.cli.main import main
    from lstmlite.importers.tflite import read_tflite_lstm

    require_tools()
    importer_tests = _load("_test_tflite_import", Path(__file__).resolve().parents[1] / "importers" / "test_tflite_import.py")
    T, I, H, B = 6, 3, 5, 3
    content = importer_tests._with_lstm_options(importer_tests._convert(T, I, H, B, 1.0, 0.0, 1.0),
                                                swap_time_axes=True, timeMajor=True)
    x, want = importer_tests._litert_once(content)  # (T, B, I) in, (T, B, H) out
    assert x.shape == (T, B, I) and want.shape == (T, B, H)
    path = tmp_path / "tm.tflite"
    path.write_bytes(content)
    model = read_tflite_lstm(path, kernel="lite")
    assert model.time_major
    for b in range(B):
        project = export_c(model, tmp_path / f"p{b}", form="tflite", example=x[:, b, :])
        assert project.info["time_major"] is True and project.info["tflite_input_shape"] == (T, B, I)
        np.testing.assert_array_equal(run_project(project.path, "host"), want[:, b, :], err_msg=f"sequence {b}")
    header = (project.path / "model.h").read_text()
    assert "#define LSTMLITE_MODEL_TFLITE_TIME_MAJOR 1" in header
    assert f"time-major: its input tensor is (T, B, I) = {(T, B, I)}, so sequence b" in header
    assert "is input[:, b, :]" in header and "is input[:, b, :]" in (project.path / "README.md").read_text()
    assert main(["export", str(path), "--format", "c", "--form", "tflite", "--tflite-kernel", "lite",
                 "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert f"time-major (input {(T, B, I)} = (T, B, I))" in printed and "input[:, b, :]" in printed
    # a batch-major file says its own layout; bare params (no op to read) only how a sequence is fed
    batch_major = export_c(read_tflite_lstm(importer_tests._convert(T, I, H, B, 1.0, 0.0, 1.0)), tmp_path / "bm",
                           form="tflite")
    header = (batch_major.path / "model.h").read_text()
    assert "#define LSTMLITE_MODEL_TFLITE_TIME_MAJOR 0" in header and "so sequence b\n * is input[b]" in header
    bare = (export_c(model.params, tmp_path / "bare", form="tflite").path / "model.h").read_text()
    assert "TIME_MAJOR" not in bare and "Feeding: one sequence, step by step" in bare


@pytest.mark.parametrize("kernel", ["micro", "lite"])
def test_a_cell_clip_reaches_the_c(tmp_path, kernel):
    """TFLite's cell_clip option (the vectors never set it): a layer with a small quantized
    clip, whose cell state reaches it, prints at every step what the NumPy TFLite reference
    (lstmlite.reference.tflite_int) computes, and that is not what the same layer without the
    clip computes. Catches model.c writing the clip as 0 (none)."""
    from dataclasses import replace
    from types import SimpleNamespace

    from lstmlite.export.c.check import check_on_host, expected_outputs
    from lstmlite.reference.tflite_int import TFLiteGate, TFLiteLSTMParams

    require_tools()
    rng = np.random.default_rng(8)
    H, I = 4, 3

    def gate():
        return TFLiteGate(rng.integers(-127, 128, (H, I)), rng.integers(-127, 128, (H, H)),
                          rng.integers(-3000, 3000, H), 1 << 30, -5, 1 << 30, -5)

    params = TFLiteLSTMParams(gate(), gate(), gate(), gate(), input_zero_point=3, output_zero_point=-2,
                              cell_scale_power=-11, forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
                              input_cell_multiplier=1 << 30, input_cell_shift=-17, output_multiplier=1 << 30,
                              output_shift=-18, kernel=kernel, cell_clip=50)
    example = rng.integers(-128, 128, (10, I))
    project = export_c(params, tmp_path / "p", form="tflite", example=example)
    error, scale = check_on_host(project, None, project.example)
    assert error == 0 and scale > 0
    unclipped = expected_outputs(SimpleNamespace(tflite=replace(params, cell_clip=0)), None, project.example)
    assert (unclipped != expected_outputs(project, None, project.example)).any()
