"""The installed ``lstmlite`` command, run as a user runs it."""

import json
import shutil
import subprocess
import sys

import pytest


def _lstmlite():
    exe = shutil.which("lstmlite")
    return [exe] if exe else [sys.executable, "-m", "lstmlite.cli.main"]


def test_demo_quick_runs_end_to_end(tmp_path):
    result = subprocess.run(_lstmlite() + ["demo", "--quick", "--out", str(tmp_path / "demo")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout and "run dirs:" in result.stdout
    metrics = json.loads((tmp_path / "demo" / "baseline" / "metrics.json").read_text())
    assert metrics["dataset"] == "japanese_vowels" and metrics["metric_name"] == "accuracy"
    int8 = json.loads((tmp_path / "demo" / "int8" / "metrics.json").read_text())
    assert int8["size_bytes"] < metrics["size_bytes"] / 3  # int8 weights + scales vs fp32
    assert int8["baseline_metric"] == metrics["metric"]
    assert abs(int8["metric"] - metrics["metric"]) <= 0.02  # int8 PTQ keeps accuracy
    # the native runtime agreed with PyTorch on every test sequence
    diff = float(result.stdout.split("max |logit difference|")[1].split()[0])
    assert diff < 1e-4
    # the report is written at the end and its path printed
    report = tmp_path / "demo" / "report.html"
    assert f"report: {report}" in result.stdout
    html = report.read_text(encoding="utf-8")
    assert "<h2>Comparison</h2>" in html and "Explanation: int8" in html
    bench = json.loads((tmp_path / "demo" / "bench.json").read_text())
    assert {c["engine"] for c in bench["cases"]} == {"torch-fp32", "lstmlite-int8"}
    assert int8["source_run"] == str(tmp_path / "demo" / "baseline") and "best_epoch" not in int8
    # step 3's timings are for the model it ran: JapaneseVowels' 12 features, the demo's LSTM-64, test
    # sample 0's steps, one sequence; a p90 is never below its median
    from lstmlite.io import load_run
    from lstmlite.train import evaluate_run, load_run_data

    steps = int(load_run_data(load_run(tmp_path / "demo" / "baseline")).test.lengths[0])
    for case in bench["cases"]:
        assert (case["input_size"], case["hidden_size"], case["seq_len"], case["batch"]) == (12, 64, steps, 1)
        assert 0 < case["median_us"] <= case["p90_us"]
    # the int8 run's metric is its test split's, as lstmlite eval measures it (not the validation split's)
    assert int8["metric"] == pytest.approx(evaluate_run(tmp_path / "demo" / "int8")["metric"])
    assert int8["test"]["accuracy"] == int8["metric"]


def test_no_subcommand_prints_help_and_fails():
    result = subprocess.run(_lstmlite(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "SUBCOMMAND" in result.stdout


@pytest.mark.slow
def test_full_demo(tmp_path):
    result = subprocess.run(_lstmlite() + ["demo", "--out", str(tmp_path / "demo")],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr
