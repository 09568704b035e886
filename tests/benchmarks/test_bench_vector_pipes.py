"""benchmarks/bench_vector_pipes.py: the C loops build and run on this CPU and every
measurement comes back (timings are not asserted: they are the benchmark's job), and
the output is parsed into the result file's rows."""

import shutil

import pytest

import bench_vector_pipes
from _common import x86_has

NAMES = ["vpsignb", "vpabsb", "vpmaddubsw", "vpmaddwd", "vpmovsxbw", "vpxor", "vpsubb", "vpaddd",
         "loop_sign", "loop_mask", "loop_7bit", "loop_int16"]


@pytest.mark.skipif(not x86_has("avx2"), reason="vector_pipes.c measures x86-64 AVX2 instructions; this CPU has none")
def test_every_instruction_and_loop_is_measured():
    assert shutil.which("gcc") or shutil.which("cc") or shutil.which("clang"), "no C compiler"
    ghz, rows = bench_vector_pipes.measure(iterations=20_000)
    assert ghz > 0
    assert [r["name"] for r in rows] == NAMES
    for r in rows:
        if r["kind"] == "instruction":
            assert r["cycles_per_8"] > 0 and r["per_cycle"] == round(8 / r["cycles_per_8"], 2)
        else:
            assert r["cycles"] > 0 and r["products"] in (192, 256) and r["form"]


def test_output_is_parsed_into_rows():
    ghz, rows = bench_vector_pipes.parse("ghz 3.668\nvpsignb 3.997\nloop_mask 10.150\nloop_int16 8.0\n")
    assert ghz == 3.668
    assert rows[0] == {"name": "vpsignb", "kind": "instruction", "cycles_per_8": 3.997, "per_cycle": 2.0}
    assert rows[1]["products_per_cycle"] == round(256 / 10.15, 2) and rows[2]["products"] == 192
    with pytest.raises(ValueError):
        bench_vector_pipes.parse("")
