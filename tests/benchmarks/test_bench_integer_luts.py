"""results/integer-luts.json (quoted in docs/integer.md) is what the integer reference's
tables give today: the exhaustive sweep is re-run and compared, and the measured worst
errors lie within the bounds the reference states."""

import json

import bench_integer_luts
import render


def test_results_file_matches_a_fresh_sweep():
    stored = json.loads((render.RESULTS / "integer-luts.json").read_text())["rows"]
    fresh = bench_integer_luts.measure()
    assert fresh == stored, "the activation tables changed: run python benchmarks/bench_integer_luts.py"
    for row in fresh:
        assert 0 < row["max_error_lsb"] <= row["bound_lsb"]
