"""``lstmlite demo``'s timing and bench.json helpers (src/lstmlite/cli/demo_cmd.py), on
fake clocks and made-up timings, so every number is known by hand."""

from __future__ import annotations

import importlib

import pytest

from lstmlite.cli import demo_cmd


def test_latency_is_the_median_and_p90_of_the_sorted_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """20 calls lasting 1..20 µs in shuffled order: the median is the 11th smallest
    (times[10] = 11 µs) and the p90 the 19th (times[int(0.9 * 20)] = 19 µs). Catches the
    times left unsorted (the median of the call order, 7 µs here) and the p90 taken as
    the median."""
    durations = [3, 17, 8, 1, 20, 12, 5, 14, 9, 2, 7, 19, 11, 4, 16, 6, 13, 18, 10, 15]  # µs, each once
    clock = {"t": 0.0, "k": 0}

    def perf_counter() -> float:
        return clock["t"]

    def call() -> None:
        clock["t"] += durations[clock["k"]] * 1e-6
        clock["k"] += 1

    monkeypatch.setattr(demo_cmd.time, "perf_counter", perf_counter)
    median, p90 = demo_cmd._latency_us(call, len(durations))
    assert clock["k"] == 20
    assert median == pytest.approx(11.0) and p90 == pytest.approx(19.0)


def test_bench_json_gives_each_engine_its_own_timings() -> None:
    """Step 3's timings as ``lstmlite bench --json`` writes them: torch-fp32 carries the
    PyTorch (median, p90), lstmlite-int8 the native runtime's, both for the sizes given.
    Catches the two engines' timings swapped, and input and hidden sizes swapped."""
    bench = demo_cmd._bench_json((300.0, 450.0), (20.0, 25.0), input_size=12, hidden=64, steps=7)
    cases = {case["engine"]: case for case in bench["cases"]}
    assert set(cases) == {"torch-fp32", "lstmlite-int8"}
    assert (cases["torch-fp32"]["median_us"], cases["torch-fp32"]["p90_us"]) == (300.0, 450.0)
    assert (cases["lstmlite-int8"]["median_us"], cases["lstmlite-int8"]["p90_us"]) == (20.0, 25.0)
    for case in cases.values():
        assert (case["input_size"], case["hidden_size"], case["seq_len"], case["batch"], case["threads"],
                case["mode"]) == (12, 64, 7, 1, 1, "sequence")
    assert "machine" in bench


def test_an_earlier_demo_is_refused_before_training_and_replaced_with_force(tmp_path, monkeypatch, capsys) -> None:
    """A second ``demo --out D`` finds D/baseline (a finished run dir) and stops with exit
    2 before any training, naming ``--force``, which demo takes: with it, the check lets
    the run dirs be replaced. Catches the check done only when the baseline is saved
    (after minutes of training), and a fix that names ``--force`` without demo having it."""
    from lstmlite.cli.main import main
    from lstmlite.io import MANIFEST_FILE

    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / MANIFEST_FILE).write_text("{}")
    (tmp_path / "baseline" / "config.json").write_text("{}")
    trained = []

    def no_training(config, out, **kwargs):
        trained.append(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(importlib.import_module("lstmlite.train"), "fit", no_training)  # the package, not lstmlite.train()
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "a run dir already exists" in err and "--force" in err and not trained
    main(["demo", "--quick", "--out", str(tmp_path), "--force"])  # on to training (stopped there)
    assert len(trained) == 1 and trained[0]["overwrite"] is True
