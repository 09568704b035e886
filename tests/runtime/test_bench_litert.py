"""LiteRT peers of lstmlite bench: the converted models compute the torch module's
function (fp32 asserted tight, int8 forms reported and finite), LSTM becomes TFLite's
fused UNIDIRECTIONAL_SEQUENCE_LSTM, and a missing TensorFlow / ai-edge-litert is a
skip line by default and a clear error when asked for."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from lstmlite.cli.common import CliError
from lstmlite.runtime import bench as bench_mod
from lstmlite.runtime import bench_litert

LITERT = ["litert-fp32", "litert-dynamic-int8", "litert-int8"]

# The dev extra installs LiteRT ('lstmlite[litert]'): a missing package is a failure
# of the test setup here, never a skip that reads as a pass.
def _require_litert() -> None:
    if bench_litert.missing():
        pytest.fail(f"LiteRT peers not installed: {bench_litert.missing()}")


needs_litert = pytest.mark.usefixtures("litert_installed")


@pytest.fixture
def litert_installed():
    _require_litert()


@pytest.fixture(scope="module", params=["lstm", "gru"])
def result(request):
    _require_litert()
    # H=32, I=16: every weight matrix has >= 1024 elements, so dynamic-range int8
    # really quantizes it (TFLite leaves smaller tensors in float).
    return request.param, bench_mod.bench(
        input_size=16, hidden_size=32, seq_len=6, batch=2, cell=request.param, num_layers=2,
        engines=["torch-fp32", *LITERT], modes=["sequence", "step"], reps=1, warmup=0)


def test_litert_engines_agree_with_torch_in_both_modes(result):
    cell, res = result
    cases = {(c["engine"], c["mode"]): c for c in res["cases"]}
    assert set(cases) == {(e, m) for e in ["torch-fp32", *LITERT] for m in ("sequence", "step")}
    for (engine, mode), case in cases.items():
        assert np.isfinite(case["max_rel_err"]) and case["median_us"] > 0, case
        if engine == "litert-fp32":
            assert case["max_rel_err"] < 1e-5, case  # same weights, gate order mapped right
        if engine.startswith("litert"):
            assert case["note"], case
            assert case["peak_kind"] == ("fp32" if engine == "litert-fp32" else "int8")
    # dynamic-range int8 did quantize the weights: no longer bit-close to fp32, and not noted as float
    assert cases[("litert-dynamic-int8", "sequence")]["max_rel_err"] > 1e-6
    assert "NO weight quantized" not in cases[("litert-dynamic-int8", "sequence")]["note"]
    assert res["machine"]["tensorflow"] and res["machine"]["ai_edge_litert"]


def test_lstm_is_fused_and_gru_is_noted(result):
    cell, res = result
    for case in res["cases"]:
        if not case["engine"].startswith("litert"):
            continue
        if cell == "lstm":
            assert "fused UNIDIRECTIONAL_SEQUENCE_LSTM" in case["note"], case["note"]
            assert "WHILE" not in case["note"]
        else:
            assert "no fused GRU op" in case["note"], case["note"]


@needs_litert
def test_lstm_step_state_lives_in_variables_and_resets():
    """Step mode keeps the LSTM state in the fused op's variable tensors: two passes
    over the same steps, with a reset between, give the same outputs."""
    # the fixture's module and shapes: the conversion is cached, not redone
    module = bench_mod.make_module("lstm", 16, 32, num_layers=2)
    run, step, reset, note = bench_litert.runner("litert-fp32", module, "lstm", 2, 6)
    xs = np.random.default_rng(0).standard_normal((2, 6, 16)).astype(np.float32)
    first = np.stack([step(xs[:, t]) for t in range(6)], axis=1)
    reset()
    second = np.stack([step(xs[:, t]) for t in range(6)], axis=1)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, run(xs), atol=1e-6)
    np.testing.assert_allclose(run(xs), run(xs))  # a sequence call starts from zero state
    assert "variable tensors" in bench_litert.convert(module, "lstm", 2, 6, ["fp32"])["fp32.step"]["note"]


def test_making_a_runner_prints_no_delegate_line_but_keeps_other_native_output(capfd):
    """LiteRT's C++ printed "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on
    stderr (beside bench's table) when a runner allocated its interpreters; the line is
    dropped there, and any other line the native code writes meanwhile still reaches stderr
    (a warning must not vanish with it)."""
    import os

    _require_litert()
    module = bench_mod.make_module("lstm", 16, 32, num_layers=2)
    capfd.readouterr()
    bench_litert.runner("litert-fp32", module, "lstm", 2, 6)
    assert "XNNPACK delegate" not in capfd.readouterr().err
    with bench_litert._without_native_lines(bench_litert.DELEGATE_INFO):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\nWARNING: kept\n")
    assert capfd.readouterr().err == "WARNING: kept\n"


@needs_litert
def test_a_dynamic_int8_model_left_float_by_the_converter_says_so():
    """At I=4, H=8 the converter quantizes no weight tensor (they are under its 1,024
    values): the litert-dynamic-int8 row then times a float model, and its note says so
    (the row showed fp32's error under an int8 name, with nothing to tell why)."""
    module = bench_mod.make_module("lstm", 4, 8)
    note = bench_litert.convert(module, "lstm", 1, 5, ["dynamic-int8"])["dynamic-int8.sequence"]["note"]
    assert "NO weight quantized" in note and "runs float" in note


def _absent(monkeypatch):
    real = bench_litert.importlib.util.find_spec
    monkeypatch.setattr(bench_litert.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("tensorflow", "ai_edge_litert") else real(name, *a))


def test_missing_packages_skip_by_default_and_fail_when_asked(monkeypatch, caplog):
    _absent(monkeypatch)
    kept, skipped = bench_mod.default_engines()
    assert not set(LITERT) & set(kept)
    assert len(skipped) == 1 and all(e in skipped[0] for e in LITERT)
    assert "pip install 'lstmlite[litert]'" in skipped[0] and "tensorflow-cpu" in skipped[0]
    with pytest.raises(RuntimeError, match=r"ai-edge-litert.*pip install"):
        bench_mod.bench(input_size=4, hidden_size=8, seq_len=3, engines=["litert-fp32"], reps=1, warmup=0)


def test_cli_names_the_skipped_engines_and_the_package(monkeypatch, capsys):
    from lstmlite.cli.bench_cmd import add_parser

    _absent(monkeypatch)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["bench", "--input-size", "4", "--hidden-size", "8", "--seq-len", "3", "--reps", "1",
                              "--warmup", "0", "--engines", "lstmlite-fp32,litert-int8"])
    with pytest.raises(CliError, match=r"litert.*pip install 'lstmlite\[litert\]'"):
        args.func(args)
    monkeypatch.setattr(bench_mod, "ENGINES", ("lstmlite-fp32", "torch-fp32", *LITERT))
    args = parser.parse_args(["bench", "--input-size", "4", "--hidden-size", "8", "--seq-len", "3", "--reps", "1",
                              "--warmup", "0"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "skipping litert-fp32, litert-dynamic-int8, litert-int8:" in out and "tensorflow-cpu" in out
