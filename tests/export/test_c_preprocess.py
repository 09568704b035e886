"""preprocess.h of a C project (lstmlite.export.c.preprocess), compiled and run on the host.

A firmware reads raw sensor values; the model was trained on standardised ones. A harness
that feeds raw digits images through ``lstmlite_model_prepare`` and the model must give
what PyTorch gives on ``standardization_of(run).inputs(raw)`` (which
tests/export/test_preprocessing.py holds to the training pipeline): within float
rounding for the float form; for the integer form, the input codes of the NumPy
quantization (``round(x / LSTMLITE_MODEL_INPUT_SCALE)``, clamped) and the same classes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmlite.export.c import export_c
from lstmlite.export.preprocessing import standardization_of
from lstmlite.io import load_run
from lstmlite.train import load_run_data

from .test_preprocessing import raw_digits

ROWS = 60


def _harness(project: Path, raw: np.ndarray, integer: bool) -> tuple[np.ndarray, np.ndarray]:
    """Build and run a program that prepares each raw row step by step and runs the model;
    returns (the input codes it made, the outputs after each row's last step)."""
    if shutil.which("cc") is None:
        pytest.fail("no C compiler (cc) on PATH: the test setup installs one")
    n, steps, features = raw.shape
    values = ", ".join(f"{v:.9e}f" for v in raw.ravel())
    code_fmt = '"%ld "' if integer else '"%.9g "'
    out_fmt = '"%ld "' if integer else '"%.9g "'
    cast = "(long)" if integer else "(double)"
    (project / "harness.c").write_text(f"""
#include <stdio.h>
#include "model.h"
#include "preprocess.h"
static const float raw[{n * steps * features}] = {{{values}}};
int main(void) {{
    lstmlite_input_t x[LSTMLITE_MODEL_INPUT_SIZE];
    lstmlite_output_t out[LSTMLITE_MODEL_OUTPUT_SIZE];
    int r, t, j;
    if (lstmlite_model_init() != LSTMLITE_OK) return 1;
    for (r = 0; r < {n}; ++r) {{
        lstmlite_model_reset();
        printf("codes ");
        for (t = 0; t < {steps}; ++t) {{
            lstmlite_model_prepare(&raw[(r * {steps} + t) * {features}], x);
            for (j = 0; j < {features}; ++j) printf({code_fmt}, {cast}x[j]);
            if (lstmlite_model_step(x, out) != LSTMLITE_OK) return 2;
        }}
        printf("\\nout ");
        for (j = 0; j < LSTMLITE_MODEL_OUTPUT_SIZE; ++j) printf({out_fmt}, {cast}out[j]);
        printf("\\n");
    }}
    return 0;
}}
""")
    sources = ["harness.c", "model.c", *sorted(p.name for p in project.glob("lsl*.c"))]
    build = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-DLSL_NO_SIMD", "-O1",
                            "-o", "harness", *sources, "-lm"], cwd=project, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    ran = subprocess.run([str(project / "harness")], capture_output=True, text=True, check=True)
    lines = ran.stdout.split("\n")
    codes = np.array([line.split()[1:] for line in lines if line.startswith("codes")], dtype=np.float64)
    outs = np.array([line.split()[1:] for line in lines if line.startswith("out")], dtype=np.float64)
    return codes.reshape(n, steps, features), outs


def test_the_float_form_prepares_raw_values_as_the_run_was_trained(digits_run: Path, tmp_path: Path) -> None:
    raw = raw_digits()[0][:ROWS]
    project = export_c(digits_run, tmp_path / "f")
    assert (project.path / "preprocess.h").is_file() and "Standardise the inputs first" in (
        project.path / "README.md").read_text()
    x = standardization_of(digits_run).inputs(raw)
    codes, outs = _harness(project.path, raw, integer=False)
    np.testing.assert_allclose(codes, x, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        expected = load_run(digits_run).model(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(outs, expected, rtol=1e-4, atol=1e-4)


def test_the_integer_form_prepares_the_input_codes(digits_run: Path, tmp_path: Path) -> None:
    """The integer project's prepare gives round(x / INPUT_SCALE) clamped to int8 of the
    standardised row (at most one code off, where float32 and float64 round a value near
    a half apart), and the model then picks PyTorch's class on nearly every row."""
    raw = raw_digits()[0][:ROWS]
    run = load_run(digits_run)
    train = load_run_data(run).train
    project = export_c(digits_run, tmp_path / "i", form="integer",
                       calibration=[{"x": torch.as_tensor(train.x[:64]), "lengths": torch.as_tensor(train.lengths[:64])}])
    x = standardization_of(digits_run).inputs(raw)
    expected_codes = np.clip(np.rint(x.astype(np.float64) / project.info["input_scale"]), -127, 127)
    codes, outs = _harness(project.path, raw, integer=True)
    assert np.abs(codes - expected_codes).max() <= 1 and np.mean(codes == expected_codes) > 0.99
    with torch.no_grad():
        predicted = run.model(torch.as_tensor(x)).argmax(-1).numpy()
    assert np.mean(outs.argmax(-1) == predicted) >= 0.95


def test_a_model_object_or_a_text_run_gets_no_preprocess_header(tmp_path: Path) -> None:
    """Only a run with input statistics gets the header (a model object carries none; token
    ids are not standardised), and a Standardization given to export_c is written."""
    from lstmlite.export.preprocessing import Standardization
    from lstmlite.nn import LanguageModel, SequenceClassifier

    model = SequenceClassifier(input_size=2, hidden_size=4, n_classes=2).eval()
    assert not (export_c(model, tmp_path / "m").path / "preprocess.h").exists()
    given = export_c(model, tmp_path / "g", standardization=Standardization((1.0, 2.0), (3.0, 4.0)))
    assert "static const float mean[2] = {1.0f, 2.0f};" in (given.path / "preprocess.h").read_text()
    lm = LanguageModel(vocab_size=9, embed_dim=3, hidden_size=4).eval()
    assert export_c(lm, tmp_path / "t", standardization=Standardization((1.0,), (1.0,))).standardization is None


def test_a_forecasters_header_gives_forecasts_in_the_series_units(tmp_path: Path) -> None:
    """A float forecaster's preprocess.h: raw steps through lstmlite_model_prepare and the
    model, each output through lstmlite_model_forecast_value, equal the PyTorch forecast
    of the standardised inputs turned back by forecast_units (y * target std + target
    mean), within float32 rounding."""
    from lstmlite.export.preprocessing import Standardization
    from lstmlite.nn import Forecaster

    if shutil.which("cc") is None:
        pytest.fail("no C compiler (cc) on PATH: the test setup installs one")
    torch.manual_seed(0)
    model = Forecaster(input_size=2, hidden_size=6, horizon=3, instance_norm=False).eval()
    s = Standardization(mean=(250.0, 10.0), std=(90.0, 2.0), target_mean=250.0, target_std=90.0)
    project = export_c(model, tmp_path / "fc", standardization=s)
    raw = np.random.default_rng(0).normal([250.0, 10.0], [90.0, 2.0], size=(5, 2))
    values = ", ".join(f"{v:.9e}f" for v in raw.ravel())
    (project.path / "fc.c").write_text(f"""
#include <stdio.h>
#include "model.h"
#include "preprocess.h"
static const float raw[10] = {{{values}}};
int main(void) {{
    lstmlite_input_t x[2];
    lstmlite_output_t out[LSTMLITE_MODEL_OUTPUT_SIZE];
    int t, j;
    if (lstmlite_model_init() != LSTMLITE_OK) return 1;
    for (t = 0; t < 5; ++t) {{
        lstmlite_model_prepare(&raw[t * 2], x);
        if (lstmlite_model_step(x, out) != LSTMLITE_OK) return 2;
    }}
    for (j = 0; j < LSTMLITE_MODEL_OUTPUT_SIZE; ++j) printf("%.9g ", (double)lstmlite_model_forecast_value(out[j]));
    return 0;
}}
""")
    sources = ["fc.c", "model.c", *sorted(p.name for p in project.path.glob("lsl*.c"))]
    build = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-DLSL_NO_SIMD", "-o", "fc",
                            *sources, "-lm"], cwd=project.path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    got = np.array(subprocess.run([str(project.path / "fc")], capture_output=True, text=True, check=True).stdout.split(),
                   dtype=np.float64)
    with torch.no_grad():
        expected = s.forecast_units(model(torch.as_tensor(s.inputs(raw)[None])).numpy().ravel())
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_the_integer_prepare_clamps_to_the_symmetric_code_range(tmp_path):
    """preprocess.h's integer prepare clamps the codes to [-qmax, qmax] (what model.h's
    INPUT_SCALE comment and the NumPy quantization round(x / scale) clipped to +-127 do):
    raw values far past either end, and values in range, give exactly the NumPy codes. Catches
    the lower clamp at -128, the upper at 128, and negative values rounded as positive ones
    (v + 0.5 truncated: toward +inf)."""
    from lstmlite.export.preprocessing import Standardization
    from lstmlite.nn import SequenceClassifier

    if shutil.which("cc") is None:
        pytest.fail("no C compiler (cc) on PATH: the test setup installs one")
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2).eval()
    s = Standardization(mean=(10.0, -4.0, 0.0), std=(2.0, 0.5, 1.0))
    project = export_c(model, tmp_path / "p", form="integer", calibration=[torch.randn(4, 5, 3)], standardization=s)
    scale = project.info["input_scale"]
    # -1e6, 1e6: far past both ends; codes -2.6, 2.6, -3.3: to the nearest on both sides of 0
    raw = np.array([[-1e6, 1e6, 0.0], [10.0 - 2.0 * 2.6 * scale, -4.0 + 0.5 * 2.6 * scale, -3.3 * scale],
                    [10.0 + 2.0 * 126.4 * scale, -4.0 - 0.5 * 126.6 * scale, 0.49 * scale]], np.float32)
    values = ", ".join(f"{v:.9e}f" for v in raw.ravel())
    (project.path / "prep.c").write_text(f"""
#include <stdio.h>
#include "model.h"
#include "preprocess.h"
static const float raw[9] = {{{values}}};
int main(void) {{
    lstmlite_input_t x[3];
    int t, j;
    for (t = 0; t < 3; ++t) {{
        lstmlite_model_prepare(&raw[t * 3], x);
        for (j = 0; j < 3; ++j) printf("%ld ", (long)x[j]);
    }}
    return 0;
}}
""")
    subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-o", "prep", "prep.c"], cwd=project.path, check=True,
                   capture_output=True)
    got = [int(v) for v in subprocess.run([str(project.path / "prep")], check=True, capture_output=True,
                                          text=True).stdout.split()]
    assert got == [-127, 127, 0, -3, 3, -3, 126, -127, 0], got
