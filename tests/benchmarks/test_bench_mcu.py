"""Issue 12's speed claim, proven on every CI run: our integer-only LSTM takes fewer
instructions per time step than CMSIS-NN's ``arm_lstm_unidirectional_s8`` on the same
emulated Cortex-M4 (mps2-an386), same shapes, compiler and flags. The instructions are
counted exactly from QEMU's single-step trace (bench_mcu.count_instructions), so this is a
deterministic count, not a timing; BENCHMARKS.md quotes the full benchmark's numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bench_mcu

TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-nm", "arm-none-eabi-size", "qemu-system-arm")


def test_integer_lstm_takes_at_most_0_9x_cmsis_nn_instructions_per_step(tmp_path: Path) -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:  # a failure, not a skip: scripts/install-system-deps.sh installs them
        pytest.fail(f"missing {', '.join(missing)}: run `sh scripts/install-system-deps.sh`")
    if not (bench_mcu.PEER / "Source" / "LSTMFunctions").is_dir():
        pytest.fail(f"CMSIS-NN's sources are not at {bench_mcu.PEER} (../shared/peers/cmsis-nn)")
    steps = 4
    ours = bench_mcu.bench_ours(32, 64, steps, tmp_path)
    peer = bench_mcu.bench_cmsis(32, 64, steps, tmp_path, tmp_path / "ours" / "mcu")
    assert ours["instructions"] > 0 and peer["instructions"] > 0
    # (that the same generated code computes lstmlite.reference's numbers bit for bit on this
    # board is tests/export/test_c_export.py's job; this test counts its instructions)
    ratio = ours["instructions"] / peer["instructions"]
    assert ratio <= 0.9, f"ours / CMSIS-NN instructions per step = {ratio:.3f} (goal <= 0.9)"
