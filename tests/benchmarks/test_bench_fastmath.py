"""results/fastmath.json (quoted in docs/runtime.md) is what lsl_fastmath.h gives today: the
C test is built and run again (about 3 s) and its worst errors compared with the file's,
which must also lie within the bounds the C test holds (tanh ≤ 7 ulp and 4e-7 relative,
sigmoid ≤ 2.5e-7 absolute)."""

import json
import shutil

import bench_fastmath
import render


def test_results_file_matches_a_fresh_native_run():
    assert shutil.which("gcc"), "gcc is missing: the C runtime's tests need it (scripts/system-deps-*.txt)"
    stored = json.loads((render.RESULTS / "fastmath.json").read_text())["rows"]
    fresh, _ = bench_fastmath.measure()
    assert fresh == stored, "lsl_fastmath.h's errors changed: run python benchmarks/bench_fastmath.py"
    tanh, sigmoid = (next(r for r in fresh if r["function"] == f) for f in ("tanh", "sigmoid"))
    assert 0 < tanh["max_ulp"] <= 7 and 0 < tanh["max_relative"] <= 4e-7 and 0 < sigmoid["max_absolute"] <= 2.5e-7


def test_the_output_line_is_parsed():
    rows = bench_fastmath.parse("tanh: max 6.01 ulp (x = 5.77859497), max relative 3.58e-07; "
                                "sigmoid: max absolute 2.04e-07 (x = 11.7419434)\nok\n")
    assert rows[0]["max_ulp"] == 6.01 and rows[0]["max_relative"] == 3.58e-07 and rows[1]["max_absolute"] == 2.04e-07
