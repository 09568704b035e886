"""What the cross-compiled C tests share (test_aarch64.py, test_other_cpus.py): the
runtime's sources, the strict C flags, the bare environment an emulated program runs in,
and a tool lookup that fails with the Debian package to install."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "lstmlite" / "runtime"
CORE_SOURCES = sorted(str(p) for p in RUNTIME.glob("lsl_*.c"))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
#: for programs under QEMU: no LSTMLITE_ISA from the outer run (it may name an x86-64
#: table), and no LD_PRELOAD of the AVX2 view (its cpuid trap cannot work in the guest)
BARE_ENV = {"PATH": "/usr/bin:/bin"}


def tool(name: str, package: str) -> str:
    """The path of `name`; a missing tool fails the test (never skips it), naming the package."""
    path = shutil.which(name)
    assert path, f"{name} is missing: `make test` installs Debian's {package} (scripts/install-system-deps.sh)"
    return path
