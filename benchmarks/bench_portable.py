"""The portable C kernels against the SIMD ones, with the whole runtime built for the host.

Issue 11 asks the portable C (the table a CPU without AVX2 or NEON runs, and a
microcontroller build's only one) to be within 2x of the AVX2 path when a compiler
builds it with ``-O3`` for the host. This builds ``c/bench_isa.c`` with every runtime
source (``-O3 -march=native``, the runtime's own float flags), runs one LSTM layer
(B = 1, T = 100) on every kernel table the CPU has, in fp32, int8 with float
activations and dynamic int8 (the tables of a form take turns, run by run, so that a
shared host's slow spells slow them alike), and stores the medians and each form's
portable / avx2 ratio.

    python benchmarks/bench_portable.py --name zen4
Writes benchmarks/results/portable-<name>.json (name the CPU: the file is per machine).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import c_compiler, write_result

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "c" / "bench_isa.c"
RUNTIME = HERE.parent / "src" / "lstmlite" / "runtime"
#: the runtime's C flags (setup.py), plus the host's instruction set
FLAGS = ["-std=c99", "-O3", "-march=native", "-fno-strict-aliasing", "-ffp-contract=off", "-fno-math-errno",
         "-pthread"]
#: bench_isa.c keeps at most this many timings per (table, form)
MAX_RUNS = 1000
LINE = re.compile(r"^(?P<form>\S+)\s+(?P<table>\S+)\s+I=(?P<I>\d+) H=(?P<H>\d+) T=(?P<T>\d+) B=1:\s+(?P<us>[\d.]+) us$")


def parse(stdout: str) -> list[dict[str, Any]]:
    """bench_isa's lines (``form table I=.. H=.. T=.. B=1: us``) as result rows.

    >>> parse("int8-dyn  portable      I=40 H=128 T=100 B=1:    653.3 us\\n")
    [{'form': 'int8-dyn', 'table': 'portable', 'input_size': 40, 'hidden_size': 128, 'seq_len': 100, 'median_us': 653.3}]
    """
    rows = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        m = LINE.match(line.strip())
        if not m:
            raise ValueError(f"bench_isa printed a line this script does not read: {line!r}")
        rows.append({"form": m["form"], "table": m["table"], "input_size": int(m["I"]), "hidden_size": int(m["H"]),
                     "seq_len": int(m["T"]), "median_us": float(m["us"])})
    if not rows:
        raise ValueError(f"bench_isa printed no results: {stdout!r}")
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per form and shape, the portable table's time over the avx2 table's (issue 11: <= 2).

    >>> r = ratios([{"form": "fp32", "table": "portable", "input_size": 1, "hidden_size": 2, "median_us": 3.0},
    ...             {"form": "fp32", "table": "avx2", "input_size": 1, "hidden_size": 2, "median_us": 2.0}])
    >>> r[0]["portable_over_avx2"], r[0]["met"]
    (1.5, True)
    """
    out = []
    times = {(r["form"], r["input_size"], r["hidden_size"], r["table"]): r["median_us"] for r in rows}
    for (form, i, h, table), us in times.items():
        avx2 = times.get((form, i, h, "avx2"))
        if table != "portable" or avx2 is None:
            continue
        out.append({"form": form, "shape": f"{i}x{h}", "portable_over_avx2": round(us / avx2, 2), "goal": "<= 2",
                    "met": us / avx2 <= 2})
    return out


def _run(cmd: list[str]) -> str:
    """stdout of cmd; on failure, SystemExit with its stderr (a compiler's messages)."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{Path(cmd[0]).name} failed ({done.returncode}):\n{done.stderr.strip()}")
    return done.stdout


def _runs(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_RUNS:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_RUNS}, got {value}")
    return value


def measure(shapes: list[tuple[int, int]], seq_len: int = 100, runs: int = 200) -> tuple[str, list[dict[str, Any]]]:
    """Build bench_isa for this host and run it on each (input, hidden) shape: (compiler, rows)."""
    cc = c_compiler("benchmarks/c/bench_isa.c")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    sources = sorted(str(p) for p in RUNTIME.glob("lsl_*.c"))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "bench_isa"
        _run([cc, *FLAGS, f"-I{RUNTIME}", str(SOURCE), *sources, "-lm", "-o", str(exe)])
        for i, h in shapes:
            rows += parse(_run([str(exe), str(i), str(h), str(seq_len), str(runs)]))
    return version, rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="the CPU's short name in the result file's name (zen4, xeon, ...)")
    ap.add_argument("--shapes", default="40x128,128x256", help="input x hidden sizes, comma-separated")
    ap.add_argument("--seq-len", type=int, default=100, help="time steps of the sequence (B = 1)")
    ap.add_argument("--runs", type=_runs, default=200, help=f"runs per (table, form), 1..{MAX_RUNS}; the median is kept")
    args = ap.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    version, rows = measure(shapes, seq_len=args.seq_len, runs=args.runs)  # type: ignore[arg-type]
    for row in rows:
        print(f"{row['form']:9} {row['table']:12} I={row['input_size']} H={row['hidden_size']}: "
              f"{row['median_us']:9.1f} us")
    targets = ratios(rows)
    for t in targets:
        print(f"{t['form']:9} {t['shape']:8} portable / avx2 = {t['portable_over_avx2']:.2f} "
              f"({'met' if t['met'] else 'not met'}, goal <= 2)")
    path = write_result(f"portable-{args.name}", rows,
                        {"settings": {"compiler": version, "flags": FLAGS, "seq_len": args.seq_len, "batch": 1,
                                      "runs": args.runs},
                         "targets": targets})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
