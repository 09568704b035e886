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
    assert "test accuracy" in result.stdout and "run dir:" in result.stdout
    metrics = json.loads((tmp_path / "demo" / "baseline" / "metrics.json").read_text())
    assert metrics["dataset"] == "japanese_vowels" and metrics["metric_name"] == "accuracy"


def test_no_subcommand_prints_help_and_fails():
    result = subprocess.run(_lstmlite(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "SUBCOMMAND" in result.stdout


@pytest.mark.slow
def test_full_demo(tmp_path):
    result = subprocess.run(_lstmlite() + ["demo", "--out", str(tmp_path / "demo")],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr
