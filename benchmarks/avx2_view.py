"""The AVX2 view: run a process as on an AVX2-only x86-64 CPU (AVX-512 and AVX-VNNI hidden from cpuid).

ONNX Runtime, PyTorch and LiteRT choose their kernels by cpuid, so on an AVX-512
machine they run AVX-512 (VNNI) kernels even when lstmlite's AVX2 table is forced with
``--isa avx2``. Under the AVX2 view every engine in the process, and in the processes
it starts, sees no AVX-512 and no AVX-VNNI and picks what it would pick on an
AVX2-only CPU (the speed is this core's AVX2 units'): ``c/hide_avx512.c``, preloaded,
traps cpuid through Linux's CPUID faulting and clears those bits; glibc's string
functions are switched to their AVX2 versions by its own tunable. ``--keep-avx-vnni``
(``keep_avx_vnni=True``) leaves AVX-VNNI visible where the CPU has it: the process then
sees an AVX2 + AVX-VNNI CPU without AVX-512 (Intel's client cores since Alder Lake).

    python benchmarks/avx2_view.py python -c "import torch; print(torch.backends.cpu.get_cpu_capability())"
    python benchmarks/avx2_view.py --keep-avx-vnni python -c "from lstmlite import runtime; print(runtime.info())"
    python benchmarks/bench_runtime.py --isa avx2 --avx2-view
    make test-avx2-view                       # the default test run under the view

From Python: ``hidden_env()`` for a subprocess's environment, ``plain_env()`` for one
without the view, ``reexec_hidden()`` to restart the running script under it (pytest
runs under it too: the library keeps its trap when faulthandler installs a handler).
What still sees the real CPU is listed in ``c/hide_avx512.c`` (statically linked
programs, for one). x86-64 Linux with CPUID faulting and a C compiler;
:func:`unavailable` says why not otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "c" / "hide_avx512.c"
#: set in the environment of a process started under the view
MARKER = "LSTMLITE_AVX2_VIEW"
#: set to "1" (by ``keep_avx_vnni=True``): AVX-VNNI and its 256-bit kin stay visible
KEEP_AVX_VNNI = "LSTMLITE_AVX2_VIEW_KEEP_AVX_VNNI"
#: glibc's own switch for its string functions' kernels (GLIBC_TUNABLES)
GLIBC_HWCAPS = "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD"
ASAN_LINK_ORDER = "verify_asan_link_order=0"


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """None when the view works here, else why not (one line). Builds the library and
    starts one process under it, so a sandbox that refuses CPUID faulting is caught."""
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return f"the AVX2 view needs x86-64 Linux (this is {platform.system()} {platform.machine()})"
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError as exc:
        return f"cannot read /proc/cpuinfo: {exc}"
    if "cpuid_fault" not in flags:
        return "this CPU or hypervisor has no CPUID faulting (no cpuid_fault flag in /proc/cpuinfo)"
    if compiler() is None:
        return "no C compiler (cc, gcc or clang) to build benchmarks/c/hide_avx512.c"
    probe = subprocess.run([sys.executable, "-c", ""], env=_with_view(dict(os.environ), _build()),
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit {probe.returncode}"
    return None


def compiler() -> str | None:
    """The C compiler to build with: $CC, else cc, gcc or clang on PATH."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _cache_dir() -> Path:
    """A directory only this user can write (the library is preloaded into every
    process of the view, so it must not come from a place others could plant it)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lstmlite"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = base.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise RuntimeError(f"{base}: not a private directory of this user (owner {st.st_uid}, mode {oct(st.st_mode)})")
    return base


def _build() -> Path:
    source = SOURCE.read_bytes()
    out = _cache_dir() / f"hide-avx512-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if not out.exists():
        partial = out.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run([compiler(), "-O2", "-shared", "-fPIC", "-o", str(partial), str(SOURCE), "-ldl"], check=True)
        partial.replace(out)  # atomic: two builds at once both end with a whole file
    return out


def build() -> Path:
    """Compile the preload library (cached by the source's hash) and return its path."""
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    return _build()


def _with_view(env: dict[str, str], library: Path, keep_avx_vnni: bool = False) -> dict[str, str]:
    # read by the preload at each process start, so it may differ from the parent's view
    if keep_avx_vnni:
        env[KEEP_AVX_VNNI] = "1"
    else:
        env.pop(KEEP_AVX_VNNI, None)
    if env.get(MARKER) == "1":
        return env  # already under the view: nothing to add twice
    env["LD_PRELOAD"] = f"{library} {env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else str(library)
    env[MARKER] = "1"
    # glibc picks memcpy & co. by cpuid before the preload starts: its own tunable
    # makes it choose their AVX2 versions, as on an AVX2-only CPU
    env["GLIBC_TUNABLES"] = ":".join([t for t in env.get("GLIBC_TUNABLES", "").split(":") if t] + [GLIBC_HWCAPS])
    # AddressSanitizer refuses to start unless its runtime is the first library loaded;
    # this lets sanitizer builds run under the view (a program that sets ASAN_OPTIONS
    # itself has to say so too)
    env["ASAN_OPTIONS"] = ":".join([t for t in env.get("ASAN_OPTIONS", "").split(":") if t] + [ASAN_LINK_ORDER])
    return env


def hidden_env(base: dict[str, str] | None = None, *, keep_avx_vnni: bool = False) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) that starts processes under the view
    (with AVX-VNNI left visible when ``keep_avx_vnni``)."""
    return _with_view(dict(os.environ if base is None else base), build(), keep_avx_vnni)


def plain_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) without the view (what hidden_env added)."""
    env = dict(os.environ if base is None else base)
    env.pop(KEEP_AVX_VNNI, None)
    if env.pop(MARKER, None) is None:
        return env
    env["LD_PRELOAD"] = " ".join(p for p in env.get("LD_PRELOAD", "").split() if "hide-avx512" not in p)
    for name, added in (("GLIBC_TUNABLES", GLIBC_HWCAPS), ("ASAN_OPTIONS", ASAN_LINK_ORDER)):
        env[name] = ":".join(t for t in env.get(name, "").split(":") if t and t != added)
    for name in ("LD_PRELOAD", "GLIBC_TUNABLES", "ASAN_OPTIONS"):
        if not env[name]:
            del env[name]
    return env


def in_view(keep_avx_vnni: bool = False) -> bool:
    """Whether this process already runs under the view of that kind."""
    return os.environ.get(MARKER) == "1" and (os.environ.get(KEEP_AVX_VNNI) == "1") == keep_avx_vnni


def reexec_hidden(keep_avx_vnni: bool = False) -> None:
    """Replace this process by the same command line (interpreter flags included)
    under the view. Does not return."""
    sys.stdout.flush()
    sys.stderr.flush()
    argv = list(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    os.execve(sys.executable, [sys.executable, *argv[1:]], hidden_env(keep_avx_vnni=keep_avx_vnni))


def check_hidden(keep_avx_vnni: bool = False) -> None:
    """Raise unless this process runs under the view and lstmlite sees no AVX-512 (and,
    unless ``keep_avx_vnni``, no AVX-VNNI)."""
    from lstmlite import runtime

    best = runtime.info()["best_isa"]
    if not in_view(keep_avx_vnni):
        kind = "the AVX2 + AVX-VNNI view" if keep_avx_vnni else "the AVX2 view"
        raise RuntimeError(f"this process does not run under {kind} ({MARKER}={os.environ.get(MARKER)!r}, "
                           f"{KEEP_AVX_VNNI}={os.environ.get(KEEP_AVX_VNNI)!r})")
    if best.startswith("avx512"):
        raise RuntimeError(f"AVX-512 is not hidden in this process (lstmlite's best kernels: {best})")
    if not keep_avx_vnni and "avx2-vnni" in runtime.supported_isas():
        raise RuntimeError("AVX-VNNI is not hidden in this process (lstmlite supports avx2-vnni)")


def main(argv: list[str]) -> int:
    """``python benchmarks/avx2_view.py [--keep-avx-vnni] COMMAND [ARGS...]``: run COMMAND
    under the view; its exit status (128 + N when signal N ended it, as a shell reports it)."""
    keep = bool(argv) and argv[0] == "--keep-avx-vnni"
    argv = argv[1:] if keep else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    reason = unavailable()
    if reason:
        print(f"avx2_view: {reason}", file=sys.stderr)
        return 2
    code = subprocess.run(argv, env=hidden_env(keep_avx_vnni=keep)).returncode
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
