"""The C runtime as C: headers and sources compile cleanly as C99, and the C test
program (tests/c/test_core.c) passes, also under AddressSanitizer + UBSan with the
.lsl loader fed thousands of corrupted files."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "lstmlite" / "runtime"
CORE_SOURCES = sorted(p for p in RUNTIME.glob("lsl_*.c"))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror"]

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def _gcc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["gcc", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("header", ["lsl.h", "lsl_internal.h"])
def test_header_compiles_standalone(tmp_path, header):
    """Each header includes what it needs and nothing warns, even pedantically
    (EdgeML's had a broken include guard; ours is compiled twice on purpose)."""
    src = tmp_path / "use.c"
    src.write_text(f'#include "{header}"\n#include "{header}"\nint main(void) {{ return 0; }}\n')
    result = _gcc([*STRICT, "-pedantic", "-I", str(RUNTIME), "-c", str(src), "-o", str(tmp_path / "use.o")],
                  tmp_path)
    assert result.returncode == 0, result.stderr


def _build_and_run(tmp_path: Path, flags: list[str], lsl_files: list[str]) -> subprocess.CompletedProcess:
    exe = tmp_path / "test_core"
    sources = [str(ROOT / "tests" / "c" / "test_core.c"), *map(str, CORE_SOURCES)]
    result = _gcc([*STRICT, *flags, "-I", str(RUNTIME), *sources, "-lm", "-o", str(exe)], tmp_path)
    assert result.returncode == 0, result.stderr
    env = dict(os.environ)
    if "-DLSL_NO_SIMD" in flags and env.get("LSTMLITE_ISA"):
        env["LSTMLITE_ISA"] = "portable"  # the only table of a build without SIMD kernels
    return subprocess.run([str(exe), *lsl_files], capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("flags", [["-O2"], ["-O2", "-DLSL_NO_SIMD"]], ids=["simd", "portable-only"])
def test_c_program_passes(tmp_path, lsl_files, flags):
    """Every core source compiles warning-free as C99 (-Werror), with and without the
    SIMD kernels, and the C tests pass."""
    run = _build_and_run(tmp_path, flags, lsl_files)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok")


def test_c_program_passes_built_for_an_avx2_target(tmp_path, lsl_files):
    """Built with -mavx2 -mfma, the portable kernels take the forms chosen for that target
    (lsl_kern_portable.c's DYN_EXACT_FLOATS: dynamic int8 sums through exact floats),
    which a build for the baseline x86-64 leaves out; their sums must still equal the
    integer tables' bit for bit (test_core.c's check_dyn8_long_sums)."""
    from lstmlite import runtime as rt

    if "avx2" not in rt.supported_isas():
        pytest.skip(f"this CPU runs no AVX2 code (it runs {', '.join(rt.supported_isas())})")
    run = _build_and_run(tmp_path, ["-O2", "-mavx2", "-mfma"], lsl_files)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok") and " avx2" in run.stdout


def test_avx2_vnni_table_runs_with_evex_encoding(tmp_path, lsl_files):
    """The AVX-VNNI table needs VEX vpdpbusd, which this CPU may lack; built with
    LSL_TEST_AVX2_VNNI_AS_EVEX it encodes the instruction as EVEX, so an AVX-512 VNNI CPU
    runs that table's code through the C tests (bit-exact dynamic int8, fused step)."""
    from lstmlite import runtime as rt

    if "avx2-vnni" in rt.supported_isas():
        pytest.skip("this CPU has AVX-VNNI: the avx2-vnni table runs in every test")
    if "avx512-vnni" not in rt.supported_isas():
        pytest.skip(f"this CPU has neither AVX-VNNI nor AVX-512 VNNI (it runs {', '.join(rt.supported_isas())})")
    version = _gcc(["-dumpversion"], tmp_path).stdout.strip()
    if int(version.split(".")[0]) < 11:
        pytest.skip(f"gcc {version} does not know AVX-VNNI (the table needs gcc 11)")
    run = _build_and_run(tmp_path, ["-O2", "-DLSL_TEST_AVX2_VNNI_AS_EVEX"], lsl_files)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok") and " avx2-vnni" in run.stdout


def _isa_probe(tmp_path: Path) -> Path:
    """tests/c/isa_probe.c: lsl_isa.c alone, kernel tables stubbed (compiles in a blink)."""
    exe = tmp_path / "isa_probe"
    result = _gcc([*STRICT, "-O1", "-I", str(RUNTIME), str(ROOT / "tests" / "c" / "isa_probe.c"),
                   str(RUNTIME / "lsl_isa.c"), "-o", str(exe)], tmp_path)
    assert result.returncode == 0, result.stderr
    return exe


def _probe_fields(stdout: str) -> tuple[list[str], str, str, str]:
    """(supported tables, best, lsl_isa_from_env's code, table in use) from its line."""
    supported, best, env = stdout.strip().split(" | ")
    code, current = env.removeprefix("env: ").split(" current: ")
    return supported.split()[1:], best.removeprefix("best: "), code, current


# (QEMU CPU, the tables it must be found to run). lsl.h: "avx2" is AVX2 + FMA, and any
# AVX code needs the OS to save YMM state (OSXSAVE, then XCR0 bits 1 and 2). EPYC-Rome
# is Zen 2 (AVX2, FMA, BMI1/2, no AVX-512 -- nor does QEMU emulate AVX-512); each "-x"
# takes one feature away, the rest of the CPU kept.
EMULATED_X86 = [
    ("EPYC-Rome", ["portable", "avx2"]),
    ("EPYC-Rome,-fma", ["portable"]),
    ("EPYC-Rome,-avx2", ["portable"]),
    ("EPYC-Rome,-avx", ["portable"]),
    ("EPYC-Rome,-xsave", ["portable"]),
    ("qemu64", ["portable"]),
]


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="emulates x86-64 CPUs")
@pytest.mark.parametrize("cpu,tables", EMULATED_X86, ids=[c for c, _ in EMULATED_X86])
def test_x86_detection_finds_exactly_the_emulated_cpu_s_tables(tmp_path, cpu, tables):
    """cpuid + XCR0 detection on CPUs this machine is not (qemu-x86_64): a CPU that lacks
    one feature a table needs (FMA, AVX2, AVX, the OS's XSAVE) is not given the table,
    and the best table is the last one it runs."""
    qemu = shutil.which("qemu-x86_64-static")
    assert qemu, "qemu-x86_64-static is missing: `make test` installs Debian's qemu-user-static"
    # a bare environment: no LSTMLITE_ISA, and no LD_PRELOAD of the AVX2 view's cpuid
    # trap (benchmarks/avx2_view.py), which cannot trap an emulated CPU's cpuid
    run = subprocess.run([qemu, "-cpu", cpu, str(_isa_probe(tmp_path))], capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    supported, best, code, current = _probe_fields(run.stdout)
    assert supported == tables, run.stdout
    assert best == current == tables[-1] and code == "0", run.stdout


@pytest.mark.parametrize("value,ok", [("", True), ("auto", True), ("portable", True), ("AVX2", False),
                                      ("sse9", False)])
def test_lstmlite_isa_values_in_c(tmp_path, value, ok):
    """lsl.h: LSTMLITE_ISA is a table's name or "auto", and "unset or empty = auto";
    anything else (names are case-sensitive) is LSL_ERR_ISA, and the best table is used
    all the same."""
    run = subprocess.run([str(_isa_probe(tmp_path))], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, LSTMLITE_ISA=value))
    assert run.returncode == 0, run.stderr
    supported, best, code, current = _probe_fields(run.stdout)
    assert (code == "0") == ok, run.stdout
    assert current == ("portable" if value == "portable" else best), run.stdout


@pytest.mark.slow
def test_c_program_passes_under_sanitizers(tmp_path, lsl_files):
    probe = _gcc(["-fsanitize=address,undefined", "-x", "c", "-", "-o", str(tmp_path / "probe")], tmp_path)
    if "sanitize" in probe.stderr and probe.returncode != 0 and "main" not in probe.stderr:
        pytest.skip("compiler without sanitizers")
    run = _build_and_run(tmp_path, ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
                         lsl_files)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.startswith("ok")
