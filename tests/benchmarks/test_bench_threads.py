"""benchmarks/bench_threads.py: every form is timed on 1 and 2 threads and, pinned, on
each CPU this process may use, and the bounds come from those medians (timings are not
asserted: they are the benchmark's job)."""

import json
import os

import pytest

import _common
import bench_threads
from lstmlite.export.lsl import spec_from_module
from lstmlite.runtime.bench import make_module


def test_every_cpu_is_timed_pinned_and_the_affinity_is_given_back():
    spec = spec_from_module(make_module("lstm", 6, 8))
    cpus = sorted(os.sched_getaffinity(0))
    row = bench_threads.measure_form(spec, "int8", "dynamic", batch=4, seq_len=3, reps=2, cpus=cpus)
    assert os.sched_getaffinity(0) == set(cpus)  # pinning is undone
    assert [c["cpu"] for c in row["cpus"]] == cpus
    assert all(c["half_batch_us"] > 0 and c["whole_batch_us"] > 0 for c in row["cpus"])
    assert row["two_over_one"] == pytest.approx(row["two_threads_us"] / row["one_thread_us"], abs=1e-3)
    assert row["two_threads_used"] == 1  # 4 x 3 steps of a 6 x 8 LSTM: far under a thread's work
    assert {k: row[k] for k in ("even_split_bound", "half_over_whole", "slowest_over_fastest")} == \
        bench_threads.bounds(row["cpus"])
    unpinned = bench_threads.measure_form(spec, "fp32", "float", batch=4, seq_len=3, reps=1, cpus=None)
    assert "cpus" not in unpinned and "even_split_bound" not in unpinned


def test_a_small_batch_is_timed_split_and_the_default_is_given_back():
    from lstmlite.runtime import engine as engine_module

    default = engine_module.MIN_MACS_PER_THREAD
    spec = spec_from_module(make_module("lstm", 40, 128))
    small = bench_threads.measure_small(spec, "fp32", "float", batch=4, seq_len=10, reps=2)
    assert engine_module.MIN_MACS_PER_THREAD == default
    assert small["threads_picked"] == 1  # 4 x 10 x 86,016 multiply-adds: under one thread's 4 M
    assert small["one_thread_us"] > 0 and small["two_threads_forced_us"] > 0


def test_the_bounds_take_the_slowest_half_over_the_fastest_whole():
    cpus = [{"cpu": 0, "half_batch_us": 4.2, "whole_batch_us": 8.0},
            {"cpu": 3, "half_batch_us": 3.0, "whole_batch_us": 6.1}]
    assert bench_threads.bounds(cpus) == {"even_split_bound": round(4.2 / 6.1, 3), "half_over_whole":
                                          round(3.0 / 6.1, 3), "slowest_over_fastest": 1.4}


def test_the_script_writes_every_form(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    assert bench_threads.main(["--name", "test", "--batch", "2", "--seq-len", "2", "--reps", "1"]) == 0
    result = json.loads((tmp_path / "threads-test.json").read_text())
    assert [r["form"] for r in result["rows"]] == list(bench_threads.FORMS)
    assert all(r["small"]["batch"] == 4 and r["small"]["seq_len"] == 10 for r in result["rows"])
    assert result["settings"]["batch"] == 2
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench_threads.main(["--name", "test", "--batch", "3"])
