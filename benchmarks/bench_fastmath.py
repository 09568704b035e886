"""lsl_fastmath.h's scalar tanh and sigmoid: the worst errors against double-precision libm.

Builds tests/c/test_fastmath.c with the extension's flags (setup.py: ``-O3
-ffp-contract=off``), runs it natively (every 64th float of the whole line plus every
float of [-1, 1] at step 2^-20) and stores the worst errors it prints; docs/runtime.md
quotes them beside the bounds the test holds. ``tests/c/test_fastmath.py`` checks that a
fresh native run prints the same worst errors, so this file cannot go stale.

    python benchmarks/bench_fastmath.py
Writes benchmarks/results/fastmath.json.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import write_result

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "src" / "lstmlite" / "runtime"
SOURCE = ROOT / "tests" / "c" / "test_fastmath.c"
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O3", "-ffp-contract=off", "-fno-math-errno"]
LINE = re.compile(r"tanh: max (?P<ulp>[\d.]+) ulp \(x = (?P<tx>[-\d.e+]+)\), max relative (?P<rel>[-\d.e+]+); "
                  r"sigmoid: max absolute (?P<abs>[-\d.e+]+) \(x = (?P<sx>[-\d.e+]+)\)")


def parse(stdout: str) -> list[dict[str, Any]]:
    """The rows of results/fastmath.json from test_fastmath's output line.

    >>> parse("tanh: max 6.01 ulp (x = 5.7), max relative 3.58e-07; sigmoid: max absolute 2.04e-07 (x = 11.7)")[0]["max_ulp"]
    6.01
    """
    m = LINE.search(stdout)
    if m is None:
        raise ValueError(f"test_fastmath printed no error line: {stdout!r}")
    return [{"function": "tanh", "max_ulp": float(m["ulp"]), "max_relative": float(m["rel"]), "at_x": float(m["tx"])},
            {"function": "sigmoid", "max_absolute": float(m["abs"]), "at_x": float(m["sx"])}]


def measure(cc: str = "gcc") -> tuple[list[dict[str, Any]], str]:
    """Build and run the test natively; (rows, the compiler's version line)."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "test_fastmath"
        subprocess.run([cc, *FLAGS, "-I", str(RUNTIME), str(SOURCE), "-lm", "-o", str(exe)], check=True)
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return parse(out), version


def main() -> int:
    rows, version = measure()
    path = write_result("fastmath", rows, {"settings": {"compiler": version, "flags": FLAGS}})
    for r in rows:
        print(r)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
