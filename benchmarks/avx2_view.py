"""Run a process as on an AVX2-only x86-64 CPU: AVX-512 hidden from cpuid.

ONNX Runtime, PyTorch and LiteRT choose their kernels by cpuid, so on an AVX-512
machine they run AVX-512 (VNNI) kernels even when lstmlite's AVX2 table is forced with
``--isa avx2``. Under this view every engine in the process, and in its children,
sees no AVX-512 and picks what it would pick on an AVX2-only CPU (its speed is this
core's AVX2 units'): ``c/hide_avx512.c``, preloaded, traps cpuid through Linux's CPUID
faulting and clears the AVX-512 bits.

    python benchmarks/avx2_view.py python -c "import torch; print(torch.backends.cpu.get_cpu_capability())"
    python benchmarks/bench_runtime.py --isa avx2 --hide-avx512

From Python: ``env = hidden_env()`` for a subprocess, ``reexec_hidden()`` to restart the
running script under the view (pytest runs under it too: the library keeps its trap
when faulthandler installs a handler). x86-64 Linux with the ``cpuid_fault`` CPU flag and
a C compiler; :func:`unavailable` says why not otherwise.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "c" / "hide_avx512.c"
#: set in the environment of a process started under the view
MARKER = "LSTMLITE_AVX512_HIDDEN"
#: glibc's own switch for its string functions' kernels (GLIBC_TUNABLES)
GLIBC_HWCAPS = "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD"


def unavailable() -> str | None:
    """None when the view can be used here, else why not (one line)."""
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return f"hiding AVX-512 needs x86-64 Linux (this is {platform.system()} {platform.machine()})"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError as exc:
        return f"cannot read /proc/cpuinfo: {exc}"
    if "cpuid_fault" not in flags.split():
        return "this CPU or hypervisor has no CPUID faulting (no cpuid_fault flag in /proc/cpuinfo)"
    if _compiler() is None:
        return "no C compiler (cc, gcc or clang) to build benchmarks/c/hide_avx512.c"
    return None


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def build() -> Path:
    """Compile the preload library (cached by the source's hash) and return its path."""
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    source = SOURCE.read_bytes()
    out = Path(tempfile.gettempdir()) / f"lstmlite-hide-avx512-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if not out.exists():
        partial = out.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run([_compiler(), "-O2", "-shared", "-fPIC", "-o", str(partial), str(SOURCE), "-ldl"], check=True)
        partial.replace(out)  # atomic: two builds at once both end with a whole file
    return out


def hidden_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) that starts processes under the view."""
    env = dict(os.environ if base is None else base)
    library = str(build())
    env["LD_PRELOAD"] = f"{library} {env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else library
    env[MARKER] = "1"
    # glibc picks memcpy & co. by cpuid before the preload starts: its own tunable makes
    # it choose their AVX2 versions, as on an AVX2-only CPU
    tunables = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t] + [GLIBC_HWCAPS]
    env["GLIBC_TUNABLES"] = ":".join(tunables)
    # AddressSanitizer refuses to start unless its runtime is the first library loaded;
    # this lets sanitizer builds run under the view (a program's own ASAN_OPTIONS=... that
    # replaces the variable still has to say so itself)
    asan = env.get("ASAN_OPTIONS")
    env["ASAN_OPTIONS"] = f"{asan}:verify_asan_link_order=0" if asan else "verify_asan_link_order=0"
    return env


def reexec_hidden() -> None:
    """Replace this process by the same command line under the view (no return)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], hidden_env())


def check_hidden() -> None:
    """Raise unless this process runs under the view and lstmlite sees no AVX-512."""
    from lstmlite import runtime

    best = runtime.info()["best_isa"]
    if os.environ.get(MARKER) != "1" or best.startswith("avx512"):
        raise RuntimeError(f"AVX-512 is not hidden in this process (lstmlite's best kernels: {best})")


def main(argv: list[str]) -> int:
    """``python benchmarks/avx2_view.py COMMAND [ARGS...]``: run COMMAND under the view."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    reason = unavailable()
    if reason:
        print(f"avx2_view: {reason}", file=sys.stderr)
        return 2
    return subprocess.run(argv, env=hidden_env()).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
