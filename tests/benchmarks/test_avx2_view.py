"""benchmarks/avx2_view.py: a process (its threads and children too) sees an x86-64 CPU
without AVX-512, so the peers pick their AVX2 kernels; real crashes still crash; and the
suite's ONNX Runtime check, which once failed on AVX2-only CPUs, passes under it."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import avx2_view

REASON = avx2_view.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"AVX-512 cannot be hidden here: {REASON}")
ROOT = Path(__file__).resolve().parents[2]

# cpuid leaf 7 EBX, executed by the calling thread (not a cached answer): AVX512F is bit 16
CPUID_C = """
#include <cpuid.h>
unsigned leaf7_ebx(void) { unsigned a, b, c, d; __cpuid_count(7, 0, a, b, c, d); return b; }
"""


def _run(code: str, *, hidden: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    env = avx2_view.hidden_env() if hidden else None
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def leaf7(tmp_path_factory):
    """A library whose leaf7_ebx() runs cpuid itself."""
    d = tmp_path_factory.mktemp("cpuid")
    (d / "leaf7.c").write_text(CPUID_C)
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(d / "leaf7.so"), str(d / "leaf7.c")], check=True)
    return d / "leaf7.so"


def test_every_engine_sees_an_avx2_only_cpu():
    probe = """
        import json, torch
        from lstmlite import runtime
        from lstmlite.runtime.bench import machine_info
        info, machine = runtime.info(), machine_info()
        print(json.dumps({"torch": torch.backends.cpu.get_cpu_capability(), "supported": info["supported_isas"],
                          "reduce_range": machine["onnxruntime_int8_reduce_range"],
                          "peak_int8": machine["peak_int8_gmacs"]}))
    """
    full = json.loads(_run(probe, hidden=False).stdout.splitlines()[-1])
    res = _run(probe)
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout.splitlines()[-1])
    assert not any(isa.startswith("avx512") for isa in seen["supported"]), seen
    assert "avx2" in seen["supported"] and seen["torch"] == "AVX2", seen
    # without VNNI (AVX-VNNI is left visible where the CPU has it) ONNX Runtime is built
    # with 7-bit weights, as on a real AVX2-only CPU
    assert seen["reduce_range"] is ("avx2-vnni" not in seen["supported"]), seen
    assert seen["peak_int8"] > 0  # AVX2's vpmaddubsw (or AVX-VNNI) rate, not 0
    if any(isa.startswith("avx512") for isa in full["supported"]):  # the view changed what they see
        assert full["torch"] != seen["torch"] and full["supported"] != seen["supported"], (full, seen)


def test_threads_and_child_processes_see_the_same_cpu(leaf7):
    code = f"""
        import ctypes, subprocess, sys, threading
        lib = ctypes.CDLL({str(leaf7)!r})
        lib.leaf7_ebx.restype = ctypes.c_uint
        seen = []
        threads = [threading.Thread(target=lambda: seen.append(lib.leaf7_ebx())) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        seen.append(lib.leaf7_ebx())
        child = subprocess.run([sys.executable, "-c", "import ctypes; print(ctypes.CDLL({str(leaf7)!r}).leaf7_ebx() & 0xFFFFFFFF)"],
                               capture_output=True, text=True, check=True)
        seen.append(int(child.stdout))
        print(*seen)
    """
    full = int(_run(f"import ctypes; print(ctypes.CDLL({str(leaf7)!r}).leaf7_ebx() & 0xFFFFFFFF)", hidden=False).stdout)
    res = _run(code)
    assert res.returncode == 0, res.stderr
    seen = [int(v) for v in res.stdout.split()]
    assert len(seen) == 6 and all(v & (1 << 16) == 0 for v in seen), seen  # no AVX512F anywhere
    # only AVX-512 bits are cleared: AVX2 (bit 5) and BMI2 (bit 8) stay as the CPU has them
    assert all(v == full & ~0xDC230000 for v in seen), (hex(full), [hex(v) for v in seen])


def test_a_real_crash_still_crashes_through_faulthandler():
    """The view keeps its trap when faulthandler installs a handler, and hands every
    other fault on: a null read is reported by faulthandler and kills the process."""
    res = _run("import faulthandler, ctypes; faulthandler.enable(); ctypes.string_at(0)", timeout=60)
    assert res.returncode == -11, (res.returncode, res.stderr)
    assert "Segmentation fault" in res.stderr
    quiet = _run("import ctypes; ctypes.string_at(0)", timeout=60)
    assert quiet.returncode == -11, (quiet.returncode, quiet.stderr)


def test_the_peer_agreement_tests_pass_as_on_an_avx2_only_cpu():
    """The check that once failed on AVX2-only CPUs (ONNX Runtime int8 without
    reduce_range saturates there) runs here under the view, in pytest (faulthandler on)."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/runtime/test_bench.py::test_all_engines_agree_with_torch_in_both_modes"],
                         env=avx2_view.hidden_env(), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "2 passed" in res.stdout


def test_bench_runtime_restarts_itself_under_the_view(tmp_path):
    """--hide-avx512 re-executes the script under the view and checks it took effect
    before measuring (here with --tables, which only prints from a results file)."""
    out = ROOT / "benchmarks" / "results" / "runtime-zen4-avx2.json"
    res = subprocess.run([sys.executable, "benchmarks/bench_runtime.py", "--hide-avx512", "--tables", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "| case |" in res.stdout
