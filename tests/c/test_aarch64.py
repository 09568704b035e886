"""The C runtime on aarch64: tests/c/test_core.c and the core sources cross-compiled
(aarch64-linux-gnu-gcc, static) and run under qemu-aarch64 on the same .lsl fixture
files as the native C test, on two emulated CPUs: a Cortex-A53 (Armv8.0: NEON, no
dot product) and QEMU's `max` (every extension, SDOT included). Each run forces, through
LSTMLITE_ISA, the best table that CPU has and the output names the table chosen; the
program itself runs every table the CPU supports (dynamic int8 bit for bit against the
portable kernels, float within 1e-5 of a double-precision reference). And the Python
extension as `pip install` builds it on aarch64 (setup.py's sources and flags), compiled
and linked, not run: there is no aarch64 Python here.

`make test` installs the cross compiler and the emulator (scripts/system-deps-aarch64.txt,
scripts/system-deps.txt); a missing tool fails this test with the reason, never skips it.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import setuptools

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cross import BARE_ENV, CORE_SOURCES, ROOT, RUNTIME, STRICT, tool  # noqa: E402

CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64-static"
# (qemu -cpu, the table LSTMLITE_ISA forces, the tables test_core must report having run)
CPUS = [
    ("cortex-a53", "neon", ["portable", "neon"]),
    ("max", "neon-dotprod", ["portable", "neon", "neon-dotprod"]),
]


def _cc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([tool(CC, "gcc-aarch64-linux-gnu + libc6-dev-arm64-cross"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def test_core_aarch64(tmp_path_factory) -> Path:
    """test_core.c built for aarch64, warning-free (-Werror): every x86-only file and
    block compiles out there."""
    folder = tmp_path_factory.mktemp("aarch64")
    exe = folder / "test_core"
    result = _cc([*STRICT, "-O2", "-static", "-I", str(RUNTIME), str(ROOT / "tests" / "c" / "test_core.c"),
                  *CORE_SOURCES, "-lm", "-o", str(exe)], folder)
    assert result.returncode == 0, result.stderr
    return exe


def test_extension_builds_for_aarch64(tmp_path, monkeypatch):
    """What `pip install` builds on aarch64: setup.py's own sources and flags (read by
    running it with setuptools.setup captured), compiled and linked as an aarch64 shared
    object against this Python's headers (same ABI sizes on both 64-bit Linuxes),
    warning-free; the module's init and both NEON tables are in it."""
    captured: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"))
    (ext,) = captured["ext_modules"]
    assert ext.name == "lstmlite.runtime._lsl"
    so = tmp_path / "_lsl.so"
    includes = [f"-I{ROOT / d}" for d in ext.include_dirs] + [f"-I{sysconfig.get_paths()['include']}"]
    result = _cc([*ext.extra_compile_args, "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", *includes,
                  *[str(ROOT / s) for s in ext.sources], *ext.extra_link_args, "-o", str(so)], tmp_path)
    assert result.returncode == 0, result.stderr
    nm = subprocess.run([tool("aarch64-linux-gnu-nm", "binutils-aarch64-linux-gnu"), "--defined-only", str(so)],
                        capture_output=True, text=True, check=True).stdout.split()
    for symbol in ("PyInit__lsl", "lsl_kernels_neon", "lsl_kernels_neon_dotprod", "lsl_kernels_portable"):
        assert symbol in nm, symbol


@pytest.mark.parametrize("header", ["lsl.h", "lsl_internal.h"])
def test_header_compiles_standalone_on_aarch64(tmp_path, header):
    src = tmp_path / "use.c"
    src.write_text(f'#include "{header}"\n#include "{header}"\nint main(void) {{ return 0; }}\n')
    result = _cc([*STRICT, "-pedantic", "-I", str(RUNTIME), "-c", str(src), "-o", str(tmp_path / "use.o")], tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("cpu,forced,tables", CPUS, ids=[c[0] for c in CPUS])
def test_c_program_passes_under_qemu_aarch64(test_core_aarch64, lsl_files, cpu, forced, tables):
    """HWCAP detection finds exactly the tables the emulated CPU has, LSTMLITE_ISA forces
    the best of them, and test_core passes on every one."""
    qemu = tool(QEMU, "qemu-user-static")
    env = {**BARE_ENV, "LSTMLITE_ISA": forced}
    run = subprocess.run([qemu, "-cpu", cpu, str(test_core_aarch64), *lsl_files], capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.startswith("ok"), run.stdout
    assert f"LSTMLITE_ISA chose {forced};" in run.stdout, run.stdout
    ran = run.stdout.split(" ran", 1)[1].rstrip(")\n").split()
    assert ran == tables, run.stdout
    assert f"best ISA {tables[-1]};" in run.stdout, run.stdout


def test_unsupported_table_is_refused_naming_the_cpu_s(test_core_aarch64):
    """A Cortex-A53 has no SDOT: LSTMLITE_ISA=neon-dotprod fails there (test_core's check
    that the environment's table was applied), as an unknown name does."""
    qemu = tool(QEMU, "qemu-user-static")
    for value in ("neon-dotprod", "avx2", "sse9"):
        run = subprocess.run([qemu, "-cpu", "cortex-a53", str(test_core_aarch64)], capture_output=True, text=True,
                             timeout=300, env={**BARE_ENV, "LSTMLITE_ISA": value})
        assert run.returncode != 0 and "lsl_isa_from_env() == LSL_OK" in run.stderr, (value, run.stderr)


# (QEMU CPU, the tables its HWCAP bits must give). Cortex-A53: Armv8.0, no dot product;
# Cortex-A76: Armv8.2 with the dot product (and, unlike `max`, no SHA-512, whose HWCAP
# bit is the dot product's neighbour).
HWCAP_CPUS = [("cortex-a53", ["portable", "neon"]), ("cortex-a76", ["portable", "neon", "neon-dotprod"]),
              ("max", ["portable", "neon", "neon-dotprod"])]


@pytest.mark.parametrize("cpu,tables", HWCAP_CPUS, ids=[c for c, _ in HWCAP_CPUS])
def test_hwcap_detection_finds_exactly_the_cpu_s_tables(tmp_path, cpu, tables):
    """tests/c/isa_probe.c (lsl_isa.c alone, the kernel tables stubbed) under qemu-aarch64:
    AT_HWCAP's ASIMD (bit 1) and ASIMDDP (bit 20, the kernel's uapi hwcap.h) give exactly
    the tables the CPU has; the best is the last."""
    qemu = tool(QEMU, "qemu-user-static")
    exe = tmp_path / "isa_probe"
    built = _cc([*STRICT, "-O1", "-static", "-I", str(RUNTIME), str(ROOT / "tests" / "c" / "isa_probe.c"),
                 str(RUNTIME / "lsl_isa.c"), "-o", str(exe)], tmp_path)
    assert built.returncode == 0, built.stderr
    run = subprocess.run([qemu, "-cpu", cpu, str(exe)], capture_output=True, text=True, timeout=60,
                         env=BARE_ENV)
    assert run.returncode == 0, run.stderr
    supported, best = run.stdout.split(" | ")[:2]
    assert supported.split()[1:] == tables and best == f"best: {tables[-1]}", run.stdout
