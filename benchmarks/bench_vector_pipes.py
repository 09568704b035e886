"""Cycles this x86-64 core takes for the AVX2 int8 kernels' instructions and inner loops.

Builds ``c/vector_pipes.c`` (GCC or Clang, ``-O2 -mavx2``), runs it and stores, per
instruction, how many of 8 independent copies issue per cycle, and per inner loop (8
weight vectors, 256 int8 products; the int16 tile: 192) its cycles and int8
multiply-adds per cycle. It is the measured reason BENCHMARKS.md gives for the AVX2
goals against ONNX Runtime's int8 that are not met: the exact 8-bit loops need a sign
step that ONNX Runtime's 7-bit loop does not, on the same two vector pipes.

    python benchmarks/bench_vector_pipes.py [--name zen4] [--iterations N]
Writes benchmarks/results/vector-pipes-<name>.json (x86-64 with AVX2 only).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import c_compiler, write_result

SOURCE = Path(__file__).resolve().parent / "c" / "vector_pipes.c"
#: int8 products per iteration of each inner loop
LOOP_PRODUCTS = {"loop_sign": 256, "loop_mask": 256, "loop_7bit": 256, "loop_int16": 192}
#: what each loop is, for the result file
LOOP_FORMS = {
    "loop_sign": "vpsignb + vpmaddubsw + vpmaddwd + vpaddd per vector; broadcast, vpxor, vpabsb per 8 "
                 "(exact; lstmlite's former one-row form)",
    "loop_mask": "vpxor + vpsubb + vpmaddubsw + vpmaddwd + vpaddd per vector; two broadcasts per 8 "
                 "(exact; lstmlite's one-row form, LSL_K_DYNM)",
    "loop_7bit": "vpmaddubsw + vpmaddwd + vpaddd per vector; a broadcast per 2 "
                 "(7-bit weights; ONNX Runtime's AVX2 loop as disassembled)",
    "loop_int16": "vpmovsxbw once, then per row vpbroadcastq + 2 x (vpmaddwd + vpaddd) (exact; several rows)",
}


def parse(stdout: str) -> tuple[float, list[dict[str, Any]]]:
    """(clock GHz, rows) from vector_pipes' output lines ``name cycles``.

    >>> ghz, rows = parse("ghz 3.7\\nvpsignb 4.0\\nloop_mask 10.0\\n")
    >>> ghz, rows[0]["per_cycle"], rows[1]["products_per_cycle"]
    (3.7, 2.0, 25.6)
    """
    ghz, rows = None, []
    for line in stdout.split("\n"):
        if not line.strip():
            continue
        name, value = line.split()
        cycles = float(value)
        if name == "ghz":
            ghz = cycles
        elif name in LOOP_PRODUCTS:
            rows.append({"name": name, "kind": "loop", "form": LOOP_FORMS[name], "cycles": cycles,
                         "products": LOOP_PRODUCTS[name],
                         "products_per_cycle": round(LOOP_PRODUCTS[name] / cycles, 2)})
        else:
            rows.append({"name": name, "kind": "instruction", "cycles_per_8": cycles,
                         "per_cycle": round(8 / cycles, 2)})
    if ghz is None or not rows:
        raise ValueError(f"vector_pipes printed no results: {stdout!r}")
    return ghz, rows


def measure(iterations: int = 20_000_000) -> tuple[float, list[dict[str, Any]]]:
    """Build and run vector_pipes here; (clock GHz, rows)."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "vector_pipes"
        subprocess.run([c_compiler("benchmarks/c/vector_pipes.c"), "-O2", "-mavx2", str(SOURCE), "-o", str(exe)], check=True)
        out = subprocess.run([str(exe), str(iterations)], capture_output=True, text=True, check=True).stdout
    return parse(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="zen4", help="the CPU's short name in the result file's name")
    ap.add_argument("--iterations", type=int, default=20_000_000, help="loop iterations per measurement")
    args = ap.parse_args(argv)
    ghz, rows = measure(args.iterations)
    for row in rows:
        if row["kind"] == "instruction":
            print(f"{row['name']:12} {row['per_cycle']:5.2f} per cycle")
        else:
            print(f"{row['name']:12} {row['cycles']:6.2f} cycles, {row['products_per_cycle']:5.1f} int8 products a cycle")
    path = write_result(f"vector-pipes-{args.name}", rows, {"clock_ghz": ghz})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
