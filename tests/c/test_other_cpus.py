"""The C runtime on CPUs unlike the host: 32-bit Arm Linux (arm-linux-gnueabihf: an armv7
board such as a Raspberry Pi running a 32-bit OS), 32-bit x86 (i686) and a big-endian
64-bit CPU (s390x), each cross-compiled (static, warning-free) and run under QEMU's user
mode; aarch64 joins the value check (tests/c/test_aarch64.py covers the rest of it).

- test_core.c passes there on the same .lsl fixture files as the native C test: the
  loader's checks and thousands of truncated and byte-flipped copies of each file.
- run_lsl.c loads each fixture file and runs a fixed input; its outputs equal the native
  program's (portable table) within 1e-5 relative, with float and dynamic activations.

Why: pointers and `size_t` are 32 bits on the first two, so a size that only fits in 64
bits, or a cast that assumes 8-byte pointers, passes on x86-64 and aarch64 alone; and a
.lsl file is little-endian, so a field read in the host's byte order passes on every
little-endian CPU. Loading is not enough to tell: the loader once read float tensors
with memcpy, and on s390x most fixture files still loaded, with byte-swapped weights
(the low-rank one failed on a NaN scale). No SIMD table of ours is built for these three
CPUs (NEON code is aarch64's, AVX2 x86-64's): the portable kernels run, and test_core
must say so.

`make test` installs the cross compilers (scripts/system-deps-other-cpus.txt,
scripts/system-deps-aarch64.txt) and QEMU (scripts/system-deps.txt); a missing tool fails
these tests with the reason, never skips them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cross import BARE_ENV, CORE_SOURCES, ROOT, RUNTIME, STRICT, tool  # noqa: E402

# name -> (compiler, its Debian packages, the QEMU user-mode emulator, bytes in a pointer)
TARGETS = {
    "armhf": ("arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf + libc6-dev-armhf-cross", "qemu-arm-static", 4),
    "i686": ("i686-linux-gnu-gcc", "gcc-i686-linux-gnu + libc6-dev-i386-cross", "qemu-i386-static", 4),
    "s390x": ("s390x-linux-gnu-gcc", "gcc-s390x-linux-gnu + libc6-dev-s390x-cross", "qemu-s390x-static", 8),
    "aarch64": ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu + libc6-dev-arm64-cross", "qemu-aarch64-static", 8),
}
#: the CPUs test_core runs on here (aarch64's run is test_aarch64.py's)
TEST_CORE_TARGETS = ["armhf", "i686", "s390x"]


def _build(target: str, sources: list[str], exe: Path) -> Path:
    cc, packages, _, _ = TARGETS[target]
    built = subprocess.run([tool(cc, packages), *STRICT, "-O2", "-static", "-I", str(RUNTIME), *sources, "-lm",
                            "-o", str(exe)], capture_output=True, text=True, timeout=300, cwd=exe.parent)
    assert built.returncode == 0, built.stderr
    return exe


def _emulate(target: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([tool(TARGETS[target][2], "qemu-user-static"), *args], capture_output=True, text=True,
                          timeout=timeout, env=BARE_ENV)


@pytest.fixture(scope="module")
def run_lsl(tmp_path_factory):
    """run_lsl.c built for a target (cached per module), or natively for None."""
    folder = tmp_path_factory.mktemp("run_lsl")
    built: dict[str | None, Path] = {}

    def get(target: str | None) -> Path:
        if target not in built:
            sources = [str(ROOT / "tests" / "c" / "run_lsl.c"), *CORE_SOURCES]
            if target is None:
                exe = folder / "run_lsl_native"
                result = subprocess.run(["gcc", *STRICT, "-O2", "-I", str(RUNTIME), *sources, "-lm", "-pthread",
                                         "-o", str(exe)], capture_output=True, text=True, timeout=300)
                assert result.returncode == 0, result.stderr
                built[target] = exe
            else:
                built[target] = _build(target, sources, folder / f"run_lsl_{target}")
        return built[target]

    return get


def _outputs(run: subprocess.CompletedProcess) -> np.ndarray:
    assert run.returncode == 0, run.stderr[-4000:]
    count, *values = run.stdout.split()
    assert len(values) == int(count) > 0, run.stdout[:200]
    return np.array(values, np.float64)


@pytest.mark.parametrize("target", TEST_CORE_TARGETS)
def test_c_program_passes_on_the_cpu(tmp_path, lsl_files, target):
    """test_core built for the target with -Werror and run under QEMU: the pointer size
    is the target's, the portable table is the only one (and the best), and every check
    passes, the fixture files' loading and fuzzing included."""
    probe = tmp_path / "probe.c"
    probe.write_text('#include <stdio.h>\nint main(void) { printf("%u", (unsigned)sizeof(void *)); return 0; }\n')
    pointer = _emulate(target, str(_build(target, [str(probe)], tmp_path / "probe")), timeout=60)
    assert pointer.stdout == str(TARGETS[target][3]), pointer
    exe = _build(target, [str(ROOT / "tests" / "c" / "test_core.c"), *CORE_SOURCES], tmp_path / "test_core")
    run = _emulate(target, str(exe), *lsl_files)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.startswith("ok (best ISA portable; ran portable)"), run.stdout
    assert run.stderr.count("fuzz: ") == len(lsl_files), run.stderr  # each file loaded, then fuzzed


@pytest.mark.parametrize("act", ["float", "dynamic"])
@pytest.mark.parametrize("target", list(TARGETS))
def test_file_models_compute_the_native_values(run_lsl, lsl_files, target, act):
    """Every fixture file (int8 LSTM with embedding and head, int8-sparse, low-rank,
    FastGRNN with int4 and fp16 scales, bitmask-sparse GRU, the fixed-record layout)
    gives the native portable table's outputs to 1e-5 relative (measured: at most 5e-7,
    armhf bit for bit; aarch64 runs its best NEON table)."""
    native_env = {**os.environ, "LSTMLITE_ISA": "portable"}
    for path in lsl_files:
        native = subprocess.run([str(run_lsl(None)), path, act], capture_output=True, text=True, timeout=120,
                                env=native_env)
        want = _outputs(native)
        got = _outputs(_emulate(target, str(run_lsl(target)), path, act, timeout=120))
        assert got.shape == want.shape, (path, got.shape, want.shape)
        err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
        assert err <= 1e-5, (Path(path).name, act, err)
