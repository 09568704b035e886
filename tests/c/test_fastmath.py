"""lsl_fastmath.h's tanh and sigmoid (the portable and NEON element-wise kernels) keep
the error bounds its header states, checked against double-precision libm over the
whole float line (tests/c/test_fastmath.c): natively, and cross-compiled for aarch64
under qemu-aarch64 (a sparser walk there: the emulator is ~50x slower), where the same
C gives the same bits."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "lstmlite" / "runtime"
SOURCE = ROOT / "tests" / "c" / "test_fastmath.c"
# the build's own flags (setup.py): -O3 vectorizes the functions, -ffp-contract=off
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O3", "-ffp-contract=off", "-fno-math-errno"]


def _check(run: subprocess.CompletedProcess) -> None:
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.rstrip().endswith("ok"), run.stdout


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_fastmath_bounds_native(tmp_path):
    exe = tmp_path / "test_fastmath"
    build = subprocess.run(["gcc", *FLAGS, "-I", str(RUNTIME), str(SOURCE), "-lm", "-o", str(exe)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    _check(subprocess.run([str(exe)], capture_output=True, text=True, timeout=300))


def test_fastmath_bounds_aarch64(tmp_path):
    cc, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64-static")
    assert cc, "aarch64-linux-gnu-gcc is missing: `make test` installs gcc-aarch64-linux-gnu"
    assert qemu, "qemu-aarch64-static is missing: `make test` installs qemu-user-static"
    exe = tmp_path / "test_fastmath"
    build = subprocess.run([cc, *FLAGS, "-static", "-I", str(RUNTIME), str(SOURCE), "-lm", "-o", str(exe)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    _check(subprocess.run([qemu, "-cpu", "cortex-a53", str(exe), "4099"], capture_output=True, text=True,
                          timeout=300))
