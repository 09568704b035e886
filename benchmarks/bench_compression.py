"""Compression benchmarks of issue 3: runs the per-dataset scripts, or prints their tables.

    python benchmarks/bench_compression.py                    # jv, trec, lm in turn (~30 min on 2 cores)
    python benchmarks/bench_compression.py --cases jv,trec
    python benchmarks/bench_compression.py --table            # markdown from results/compression-*.json

Scripts (each writes ``benchmarks/results/compression-<case>.json``):
    bench_compression_jv.py     JapaneseVowels: PTQ, quantize_dynamic, ISS unit pruning, shrink, FastGRNN tiny
    bench_compression_trec.py   TREC-6 reference text model: PTQ, quantize_dynamic, vocabulary pruning + int4 QAT
    bench_compression_lm.py     tiny-shakespeare char LM: int8 PTQ, gradual 80 % pruning, int4 QAT (equal budget)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import RESULTS
from bench_compression_common import markdown_table

HERE = Path(__file__).resolve().parent
CASES = {"jv": "bench_compression_jv.py", "trec": "bench_compression_trec.py", "lm": "bench_compression_lm.py"}


def table(cases: list[str]) -> str:
    parts = []
    for case in cases:
        # compression-<case>.json, then variants such as compression-lm-6000w-2+2e.json
        paths = sorted(RESULTS.glob(f"compression-{case}*.json"), key=lambda p: (p.stem != f"compression-{case}", p))
        if not paths:
            parts.append(f"(no compression-{case}.json yet)")
        for path in paths:
            payload = json.loads(path.read_text())
            parts.append(f"**{path.stem}** ({payload['date']}, {payload['machine']['cpu']}, "
                         f"{payload['machine']['cores']} cores)\n\n{markdown_table(payload['rows'])}")
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--table", action="store_true", help="only print the tables of the results files")
    args = parser.parse_args()
    cases = args.cases.split(",")
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; choose from {sorted(CASES)}")
    if not args.table:
        for case in cases:
            subprocess.run([sys.executable, str(HERE / CASES[case])], check=True)
    print(table(cases))


if __name__ == "__main__":
    main()
