"""The benchmark scripts import each other as top-level modules (``from _common import``):
put benchmarks/ on the path for these tests."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
