"""benchmarks/bench_portable.py: bench_isa.c builds with every runtime source for this
host and times every kernel table the CPU has in each form (timings are not asserted:
they are the benchmark's job), and its output becomes rows and portable / avx2 ratios."""

import shutil

import pytest

import bench_portable
from _common import x86_has

FORMS = ["fp32", "int8", "int8-dyn"]


def test_every_form_runs_on_every_table_of_this_cpu():
    assert shutil.which("gcc") or shutil.which("cc") or shutil.which("clang"), "no C compiler"
    version, rows = bench_portable.measure([(8, 16)], seq_len=3, runs=3)
    assert version
    tables = sorted({r["table"] for r in rows})
    assert "portable" in tables
    if x86_has("avx2"):
        assert "avx2" in tables
    assert sorted((r["form"], r["table"]) for r in rows) == sorted((f, t) for f in FORMS for t in tables)
    assert all(r["median_us"] > 0 and (r["input_size"], r["hidden_size"], r["seq_len"]) == (8, 16, 3) for r in rows)
    if x86_has("avx2"):
        assert [t["form"] for t in bench_portable.ratios(rows)] == FORMS


def test_output_is_parsed_into_rows_and_ratios():
    rows = bench_portable.parse("fp32      portable      I=40 H=128 T=100 B=1:    404.0 us\n"
                                "fp32      avx2          I=40 H=128 T=100 B=1:    202.0 us\n"
                                "int8-dyn  portable      I=40 H=128 T=100 B=1:    700.0 us\n"
                                "int8-dyn  avx2          I=40 H=128 T=100 B=1:    140.0 us\n")
    assert rows[0] == {"form": "fp32", "table": "portable", "input_size": 40, "hidden_size": 128, "seq_len": 100,
                       "median_us": 404.0}
    assert bench_portable.ratios(rows) == [
        {"form": "fp32", "shape": "40x128", "portable_over_avx2": 2.0, "goal": "<= 2", "met": True},
        {"form": "int8-dyn", "shape": "40x128", "portable_over_avx2": 5.0, "goal": "<= 2", "met": False}]
    with pytest.raises(ValueError):
        bench_portable.parse("")
    with pytest.raises(ValueError):
        bench_portable.parse("fp32 portable 404 us\n")
