"""Each row of ``lstmlite bench`` is its engine's: the times timed for it, the weights
that engine is named for (a peer's int8 row runs int8, not fp32), and the table's ratio to
torch-fp32 computed the right way up. No timing is asserted: a fake clock gives the times."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lstmlite.runtime import bench as bench_mod


def test_each_engines_row_has_the_times_timed_for_it(monkeypatch):
    """The engines take turns, repetition by repetition: a fake clock makes every call
    of lstmlite-fp32 take 1 us and every call of torch-fp32 9 us, so their medians are 1
    and 9. Catches a row given another engine's times (the first's, or the engines' order
    reversed), and the warm-up counted in the recorded repetitions."""
    durations = iter([1e-6, 9e-6] * 3)
    readings = iter(x for d in durations for x in (0.0, d))
    monkeypatch.setattr(bench_mod, "time", SimpleNamespace(perf_counter=lambda: next(readings)))
    result = bench_mod.bench(input_size=3, hidden_size=4, seq_len=2, reps=3, warmup=2,  # warm-up is not timed
                             engines=["lstmlite-fp32", "torch-fp32"])
    assert {c["engine"]: c["median_us"] for c in result["cases"]} == pytest.approx({"lstmlite-fp32": 1.0,
                                                                                   "torch-fp32": 9.0})
    assert {c["reps"] for c in result["cases"]} == {3}


@pytest.mark.parametrize("engine", ["torch-dynamic-int8", "onnxruntime-int8"])
def test_a_peers_int8_row_runs_int8_weights(engine):
    """A peer's int8 engine quantizes the weights: its output differs from torch's fp32
    by more than float rounding (here > 1e-4 of the largest output; the fp32 engines'
    differ by < 1e-5). Catches the int8 row running the fp32 model under the int8 name."""
    from lstmlite.runtime.bench import engine_missing

    if engine_missing(engine):
        pytest.skip(engine_missing(engine))
    result = bench_mod.bench(input_size=16, hidden_size=32, seq_len=6, reps=1, warmup=0,
                             engines=["torch-fp32", engine])
    err = {c["engine"]: c["max_rel_err"] for c in result["cases"]}
    assert err["torch-fp32"] < 1e-5 and err[engine] > 1e-4, err


def test_the_table_gives_each_engines_time_over_torch_fp32s():
    """torch-fp32 4 us, lstmlite-fp32 2 us at the same size and mode: lstmlite's row says
    0.500 (half torch's time), torch's 1.000; another size has no torch row: "-".
    Catches the ratio inverted and a ratio taken against another size's torch row."""
    def case(engine, median, hidden=8):
        return {"engine": engine, "input_size": 3, "hidden_size": hidden, "seq_len": 2, "batch": 1,
                "mode": "sequence", "median_us": median, "p90_us": median, "peak_fraction": None,
                "max_rel_err": 0.0}
    table = bench_mod.format_table([case("torch-fp32", 4.0), case("lstmlite-fp32", 2.0),
                                    case("lstmlite-fp32", 3.0, hidden=16)]).splitlines()
    ratio = {(row.split()[0], row.split()[2]): row.split()[9] for row in table[1:]}
    assert ratio == {("torch-fp32", "8"): "1.000", ("lstmlite-fp32", "8"): "0.500", ("lstmlite-fp32", "16"): "-"}


def test_the_tables_times_name_their_unit_per_row():
    """A step-mode case (bench divides its time by T: µs per step) and a sequence-mode one
    (µs per call of T steps) in one table: each row's unit column says which, the header
    names no unit of its own. Catches the one "median_us" header over both kinds of rows,
    which read as the same unit."""
    def case(mode, median):
        return {"engine": "lstmlite-fp32", "input_size": 3, "hidden_size": 8, "seq_len": 50, "batch": 1,
                "mode": mode, "median_us": median, "p90_us": median, "peak_fraction": None, "max_rel_err": 0.0}
    lines = bench_mod.format_table([case("step", 2.0), case("sequence", 100.0)]).splitlines()
    assert lines[0].split()[:9] == ["engine", "I", "H", "T", "B", "mode", "median", "p90", "unit"]
    assert [row.split()[5:9] for row in lines[1:]] == [["step", "2.0", "2.0", "us/step"],
                                                       ["sequence", "100.0", "100.0", "us/sequence"]]
