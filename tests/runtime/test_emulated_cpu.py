"""The suite on a CPU this machine is not: an x86-64 with AVX2 and no AVX-512 (and the
extension on one without AVX at all).

Most users' x86 CPUs (AMD before Zen 4, most Intel desktops) have AVX2 and FMA but no
AVX-512, and on them ONNX Runtime's int8 kernels, our kernel choice and the tests
that compare both behave differently (the int8 peer's error once broke `make test`
there). QEMU's user-mode emulator runs this interpreter with cpuid reporting an AVX2
CPU (EPYC-Rome: Zen 2), so the runtime's detection, the peers' kernel choice and the
bench test run as they would on one. Slow (emulated), so only the tests that depend
on the CPU run here; ``make test`` installs qemu-user-static, and a missing emulator
fails this test rather than skipping it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import avx2_view  # noqa: E402  (benchmarks/ is not a package)
QEMU = "qemu-x86_64-static"
# The CPU-dependent tests: the bench (peers' int8 kernels), ISA detection and the kernels.
TESTS = [
    "tests/runtime/test_bench.py::test_all_engines_agree_with_torch_in_both_modes",
    "tests/runtime/test_engine.py::test_isa_forcing_reports_levels",
    "tests/runtime/test_kernels.py",
]

pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                                reason="emulates an x86-64 CPU on an x86-64 host")


def _guest_env(pythonpath: str) -> dict[str, str]:
    """The emulated interpreter's environment: it picks its own kernel table (a forced
    one may not exist there), and the AVX2 view's preload (benchmarks/avx2_view.py,
    under `make test-avx2-view`) stays out: it hides AVX-512 by CPUID faulting, which
    QEMU does not emulate, and the guest CPU has no AVX-512 anyway."""
    env = dict(avx2_view.plain_env(), PYTHONPATH=pythonpath)
    env.pop("LSTMLITE_ISA", None)
    return env


def _emulated(cpu: str, *args: str) -> subprocess.CompletedProcess:
    qemu = shutil.which(QEMU)
    assert qemu, f"{QEMU} is missing: `make test` installs Debian's qemu-user-static"
    env = _guest_env(os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    cmd = [qemu, "-cpu", cpu, sys.executable, str(ROOT / "tests" / "runtime" / "emulated_cpu_main.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_the_emulated_cpu_has_avx2_and_no_avx512():
    """The emulation is what it claims: our detection sees AVX2 as the best level."""
    probe = "import lstmlite.runtime as rt; print(rt.best_isa(), rt.has_vnni())"
    qemu = shutil.which(QEMU)
    assert qemu, f"{QEMU} is missing: `make test` installs Debian's qemu-user-static"
    env = _guest_env(str(ROOT / "src"))
    out = subprocess.run([qemu, "-cpu", "EPYC-Rome", sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    best, vnni = out.stdout.split()
    assert best.startswith("avx2") and vnni == "False", out.stdout


def test_cpu_dependent_tests_pass_on_an_avx2_only_cpu():
    result = _emulated("EPYC-Rome", "-q", "-p", "no:cacheprovider", "-n", "0", *TESTS)
    tail = result.stdout[-3000:]
    assert result.returncode == 0, tail + result.stderr[-2000:]
    assert " passed" in tail and "failed" not in tail, tail


# An LSTM from numpy weights, run in three forms; prints the kernel tables and outputs.
NO_AVX_PROBE = """
import json, sys
import numpy as np
import lstmlite.runtime as rt
from lstmlite.runtime.lsl import spec_from_state_dict
rng = np.random.default_rng(0)
i, h = 6, 16
sd = {"weight_ih_l0": rng.normal(0, .3, (4 * h, i)), "weight_hh_l0": rng.normal(0, .3, (4 * h, h)),
      "bias_ih_l0": rng.normal(0, .1, 4 * h), "bias_hh_l0": rng.normal(0, .1, 4 * h)}
spec = spec_from_state_dict({k: v.astype(np.float32) for k, v in sd.items()})
x = rng.normal(0, 1, (2, 7, i)).astype(np.float32)
if len(sys.argv) > 1:
    rt.set_isa(sys.argv[1])
outs = {f"{w}-{a}": rt.Engine(spec, weights=w, activations=a).run(x).tolist()
        for w, a in [("fp32", "float"), ("int8", "float"), ("int8", "dynamic")]}
print(json.dumps({"best": rt.best_isa(), "supported": rt.supported_isas(), "outs": outs}))
"""


def test_the_extension_runs_on_an_x86_64_without_avx():
    """Celeron, Pentium Silver and Atom parts (Jasper Lake, Elkhart Lake) have SSE4.2 and
    no AVX. On an emulated Nehalem (the same instruction set) the extension as built
    here loads, finds only the portable table, and runs fp32, int8 and dynamic int8 to
    the bit of this machine's portable table: no AVX instruction escaped the kernels
    that carry their own target attributes (SIGILL there), and detection does not offer
    an AVX table the CPU lacks."""
    qemu = shutil.which(QEMU)
    assert qemu, f"{QEMU} is missing: `make test` installs Debian's qemu-user-static"
    guest = subprocess.run([qemu, "-cpu", "Nehalem", sys.executable, "-c", NO_AVX_PROBE],
                           env=_guest_env(str(ROOT / "src")), capture_output=True, text=True, timeout=600)
    assert guest.returncode == 0, guest.stderr[-3000:]
    emulated = json.loads(guest.stdout.strip().splitlines()[-1])
    assert emulated["best"] == "portable" and emulated["supported"] == ["portable"], emulated["supported"]
    native = subprocess.run([sys.executable, "-c", NO_AVX_PROBE, "portable"], env=_guest_env(str(ROOT / "src")),
                            capture_output=True, text=True, timeout=300)
    assert native.returncode == 0, native.stderr[-3000:]
    here = json.loads(native.stdout.strip().splitlines()[-1])["outs"]
    assert emulated["outs"].keys() == here.keys()
    for form, values in here.items():
        np.testing.assert_array_equal(np.array(emulated["outs"][form]), np.array(values), err_msg=form)
