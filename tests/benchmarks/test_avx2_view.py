"""benchmarks/avx2_view.py (the AVX2 view): a process, its threads and its children see
an x86-64 CPU without AVX-512 and AVX-VNNI, so the peers pick their AVX2 kernels (with
--keep-avx-vnni, AVX-VNNI stays: the peers pick their AVX-VNNI kernels); every other
CPU feature stays as the CPU has it; real crashes still crash, through the process's
own handlers; and pytest (faulthandler on) runs the suite's peer check under it."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import avx2_view

REASON = avx2_view.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"the AVX2 view cannot run here: {REASON}")
ROOT = Path(__file__).resolve().parents[2]

# cpuid leaf 7 (subleaf 0 EBX, ECX, EDX; subleaf 1 EAX, EDX), executed by the calling thread
CPUID_C = """
#include <cpuid.h>
void leaf7(unsigned *out) {
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d); out[0] = b; out[1] = c; out[2] = d;
    __cpuid_count(7, 1, a, b, c, d); out[3] = a; out[4] = d;
}
"""
LEAF7_PY = """
import ctypes
def leaf7(path):
    out = (ctypes.c_uint * 5)()
    ctypes.CDLL(path).leaf7(out)
    return list(out)
"""
# The AVX-512 (and AMX, AVX10) bits by name, from Intel's SDM (CPUID leaf 07H), written
# here independently of hide_avx512.c: (register, bit) -> name
HIDDEN = {("ebx", 16): "AVX512F", ("ebx", 17): "AVX512DQ", ("ebx", 21): "AVX512_IFMA", ("ebx", 26): "AVX512PF",
          ("ebx", 27): "AVX512ER", ("ebx", 28): "AVX512CD", ("ebx", 30): "AVX512BW", ("ebx", 31): "AVX512VL",
          ("ecx", 1): "AVX512_VBMI", ("ecx", 6): "AVX512_VBMI2", ("ecx", 11): "AVX512_VNNI",
          ("ecx", 12): "AVX512_BITALG", ("ecx", 14): "AVX512_VPOPCNTDQ", ("edx", 2): "AVX512_4VNNIW",
          ("edx", 3): "AVX512_4FMAPS", ("edx", 8): "AVX512_VP2INTERSECT", ("edx", 22): "AMX-BF16",
          ("edx", 23): "AVX512_FP16", ("edx", 24): "AMX-TILE", ("edx", 25): "AMX-INT8",
          ("eax.1", 5): "AVX512_BF16", ("edx.1", 19): "AVX10"}
# the 256-bit extensions after AVX2 (leaf 7 subleaf 1), hidden unless keep_avx_vnni
AFTER_AVX2 = {("eax.1", 4): "AVX-VNNI", ("eax.1", 23): "AVX-IFMA", ("edx.1", 4): "AVX-VNNI-INT8",
              ("edx.1", 5): "AVX-NE-CONVERT", ("edx.1", 10): "AVX-VNNI-INT16"}
REGISTERS = ["ebx", "ecx", "edx", "eax.1", "edx.1"]


def _env(hidden: bool = True, keep_avx_vnni: bool = False) -> dict[str, str]:
    """The environment of a child under the view (or without it), without a user's
    override of a library's kernel choice: under the view each picks by cpuid, and a
    forced table the view hides (the suite run with LSTMLITE_ISA=avx512, say) is an error."""
    env = avx2_view.hidden_env(keep_avx_vnni=keep_avx_vnni) if hidden else avx2_view.plain_env()
    env.pop("ATEN_CPU_CAPABILITY", None)  # PyTorch's
    env.pop("LSTMLITE_ISA", None)  # ours
    return env


def _run(code: str, *, hidden: bool = True, keep_avx_vnni: bool = False,
         timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=_env(hidden, keep_avx_vnni),
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _json(res: subprocess.CompletedProcess) -> dict:
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def leaf7(tmp_path_factory) -> str:
    """A library whose leaf7() runs cpuid itself (not a cached answer)."""
    d = tmp_path_factory.mktemp("cpuid")
    (d / "leaf7.c").write_text(CPUID_C)
    subprocess.run([avx2_view.compiler(), "-O1", "-shared", "-fPIC", "-o", str(d / "leaf7.so"), str(d / "leaf7.c")],
                   check=True)
    return str(d / "leaf7.so")


def test_every_engine_sees_an_avx2_only_cpu():
    probe = """
        import json, torch
        from lstmlite import runtime
        from lstmlite.runtime.bench import machine_info
        m = machine_info()
        print(json.dumps({"torch": torch.backends.cpu.get_cpu_capability(), "supported": runtime.supported_isas(),
                          "reduce_range": m["onnxruntime_int8_reduce_range"], "peak_int8": m["peak_int8_gmacs"],
                          "peak_fp32": m["peak_fp32_gmacs"]}))
    """
    full, seen = _json(_run(probe, hidden=False)), _json(_run(probe))
    assert not any(isa.startswith("avx512") for isa in seen["supported"]), seen
    assert "avx2" in seen["supported"] and seen["torch"] == "AVX2", seen
    # no VNNI of either kind: ONNX Runtime is built with 7-bit weights, as on a real
    # AVX2-only CPU
    assert "avx2-vnni" not in seen["supported"] and seen["reduce_range"] is True, seen
    # the int8 peak is then AVX2's (vpmaddubsw: 32 products an instruction against 8
    # for an fp32 FMA): several times the fp32 peak, not 0 or a spill-bound loop
    assert seen["peak_int8"] >= 2.5 * seen["peak_fp32"], seen
    if any(isa.startswith("avx512") for isa in full["supported"]):  # the view changed what they see
        assert full["torch"] != seen["torch"] and full["supported"] != seen["supported"], (full, seen)
        assert full["peak_int8"] >= 2.5 * full["peak_fp32"], full


def test_onnxruntime_runs_its_avx2_int8_kernels_under_the_view():
    """ONNX Runtime's own kernel choice, not our reading of cpuid: its AVX2 u8 x s8
    product saturates with full 8-bit weights (why the bench builds it with reduce_range
    there), its AVX-512 VNNI one does not."""
    probe = """
        import json
        from lstmlite import runtime
        from lstmlite.runtime import bench
        bench.ort_reduce_range = lambda: False  # full 8-bit weights whatever the CPU
        case = bench.bench(input_size=40, hidden_size=128, seq_len=50, batch=1, engines=["onnxruntime-int8"],
                           reps=1, warmup=0)["cases"][0]
        print(json.dumps({"err": case["max_rel_err"], "supported": runtime.supported_isas()}))
    """
    seen = _json(_run(probe, timeout=300))
    assert "avx2-vnni" not in seen["supported"], seen
    assert seen["err"] > 0.1, seen  # saturated: the AVX2 kernel ran
    full = _json(_run(probe, hidden=False, timeout=300))
    if "avx512-vnni" in full["supported"]:
        assert full["err"] < 0.05, full  # the same model without the view: the VNNI kernel


def test_keep_avx_vnni_shows_an_avx2_vnni_cpu_whose_peers_run_their_vnni_kernels():
    """--keep-avx-vnni: AVX-512 hidden, AVX-VNNI visible; lstmlite's best table is then
    avx2-vnni, ONNX Runtime keeps 8-bit weights, and its int8 product does not saturate
    (its AVX-VNNI kernel ran, not the AVX2 one)."""
    full = _json(_run("import json; from lstmlite import runtime; print(json.dumps(runtime.supported_isas()))",
                      hidden=False))
    if "avx2-vnni" not in full:
        pytest.skip(f"this CPU has no AVX-VNNI (lstmlite supports {full})")
    probe = """
        import json
        from lstmlite import runtime
        from lstmlite.runtime import bench
        case = bench.bench(input_size=40, hidden_size=128, seq_len=50, batch=1, engines=["onnxruntime-int8"],
                           reps=1, warmup=0)["cases"][0]
        print(json.dumps({"err": case["max_rel_err"], "info": runtime.info(),
                          "reduce_range": bench.ort_reduce_range()}))
    """
    seen = _json(_run(probe, keep_avx_vnni=True, timeout=300))
    assert seen["info"]["best_isa"] == "avx2-vnni" and seen["reduce_range"] is False, seen
    assert seen["err"] < 0.05, seen


@pytest.mark.parametrize("keep_avx_vnni", [False, True], ids=["avx2-only", "keep-avx-vnni"])
def test_threads_and_child_processes_see_only_the_view_s_bits_cleared(leaf7, keep_avx_vnni):
    """The AVX-512 bits, and unless keep_avx_vnni the post-AVX2 256-bit extensions', read
    as clear in every thread and in a child process; every other bit as the CPU has it
    (with LSTMLITE_AVX2_VIEW_KEEP_AVX_VNNI=1 AVX-VNNI and its kin among them)."""
    code = LEAF7_PY + f"""
import json, subprocess, sys, threading
seen = []
threads = [threading.Thread(target=lambda: seen.append(leaf7({leaf7!r}))) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
seen.append(leaf7({leaf7!r}))
child = subprocess.run([sys.executable, "-c", {(LEAF7_PY + f"print(leaf7({leaf7!r}))")!r}],
                       capture_output=True, text=True, check=True)
seen.append(json.loads(child.stdout))
print(json.dumps(seen))
"""
    cleared = HIDDEN if keep_avx_vnni else {**HIDDEN, **AFTER_AVX2}
    full = _json(_run(LEAF7_PY + f"import json; print(json.dumps(leaf7({leaf7!r})))", hidden=False))
    seen = _json(_run(code, keep_avx_vnni=keep_avx_vnni))
    assert len(seen) == 6, seen
    for words in seen:  # 4 threads, the main thread, a child process
        for reg, got, real in zip(REGISTERS, words, full):
            for bit in range(32):
                if (reg, bit) in cleared:
                    assert not got >> bit & 1, f"{cleared[reg, bit]} visible under the view"
                else:
                    assert got >> bit & 1 == real >> bit & 1, f"{reg} bit {bit} changed by the view"


def test_cpuid_works_after_faulthandler_and_real_crashes_still_crash(leaf7):
    """faulthandler installs its SIGSEGV handler after the view's: cpuid still answers,
    and a null read is reported by faulthandler and kills the process as it would."""
    code = LEAF7_PY + f"""
import ctypes, faulthandler
faulthandler.enable()
print(leaf7({leaf7!r})[0], flush=True)
ctypes.string_at(0)
"""
    res = _run(code, timeout=60)
    assert res.returncode == -11, (res.returncode, res.stderr[-2000:])
    assert res.stdout.strip().isdigit() and "Segmentation fault" in res.stderr, (res.stdout, res.stderr[-2000:])
    quiet = _run("import ctypes; ctypes.string_at(0)", timeout=60)
    assert quiet.returncode == -11, (quiet.returncode, quiet.stderr[-2000:])


def test_the_peer_agreement_test_passes_under_the_view_in_pytest():
    """The bench check that once failed on AVX2-only CPUs, in pytest under the view."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/runtime/test_bench.py::test_all_engines_agree_with_torch_in_both_modes"],
                         env=_env(), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]


def test_the_environment_helpers_add_and_remove_only_the_view():
    base = {"LD_PRELOAD": "/x/other.so", "GLIBC_TUNABLES": "glibc.malloc.check=1", "PATH": "/bin"}
    hidden = avx2_view.hidden_env(base)
    assert hidden["LD_PRELOAD"].split()[1:] == ["/x/other.so"] and hidden[avx2_view.MARKER] == "1"
    assert avx2_view.hidden_env(hidden) == hidden  # idempotent
    assert avx2_view.plain_env(hidden) == base
    assert avx2_view.KEEP_AVX_VNNI not in hidden
    kept = avx2_view.hidden_env(base, keep_avx_vnni=True)
    assert kept[avx2_view.KEEP_AVX_VNNI] == "1" and kept["LD_PRELOAD"] == hidden["LD_PRELOAD"]
    assert avx2_view.hidden_env(kept) == hidden  # the kind of view follows the argument
    assert avx2_view.plain_env(kept) == base


def test_bench_runtime_restarts_itself_under_the_view():
    """--avx2-view re-executes the script under the view and checks it took effect
    before measuring (here with --tables, which only prints from a results file)."""
    out = ROOT / "benchmarks" / "results" / "runtime-zen4-avx2-view.json"
    res = subprocess.run([sys.executable, "benchmarks/bench_runtime.py", "--avx2-view", "--tables", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, env=_env(hidden=False))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "| case |" in res.stdout


def test_bench_runtime_keep_avx_vnni_restarts_under_that_view_and_needs_avx2_view():
    out = ROOT / "benchmarks" / "results" / "runtime-zen4-avx2-view.json"
    res = subprocess.run([sys.executable, "benchmarks/bench_runtime.py", "--avx2-view", "--keep-avx-vnni", "--tables",
                          "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env=_env())  # started under the other view: it restarts
    assert res.returncode == 0, res.stderr[-2000:]
    assert "| case |" in res.stdout
    alone = subprocess.run([sys.executable, "benchmarks/bench_runtime.py", "--keep-avx-vnni", "--tables"],
                           capture_output=True, text=True, timeout=300, cwd=ROOT, env=_env(hidden=False))
    assert alone.returncode == 2 and "give it with --avx2-view" in alone.stderr, alone.stderr[-2000:]
