"""bench_runtime.py's BENCHMARKS.md tables say what each row's medians count."""

from bench_runtime import markdown_tables


def _row(case, mode, seq_len, median):
    return {"case": case, "engine": "lstmlite-int8", "mode": mode, "seq_len": seq_len, "median_us": median,
            "peak_fraction": 0.5}


def test_each_case_names_its_unit_per_step_or_per_sequence_of_t():
    """A step-mode case's median is per step (bench divides by T), a sequence-mode one's per
    call of T steps: each row's title says which, with T, as the report's latency table
    does (µs per step, µs per sequence). Catches the old "(µs)" on the sequence rows, which
    named neither the sequence nor its T."""
    payload = {"rows": [_row("seq-40x128", "sequence", 100, 120.0), _row("step-40x128", "step", 100, 2.0),
                        _row("rank32-40x128", "sequence", 50, 60.0)], "targets": []}
    lines = markdown_tables(payload).splitlines()
    assert lines[2] == "| I=40, H=128, B=1 (µs per sequence, T=100) | 120.0 (50 %) |"
    assert lines[3] == "| I=40, H=128, step from Python (µs per step) | 2.0 (50 %) |"
    assert lines[4] == "| rank 32, I=40, H=128, B=1 (µs per sequence, T=50) | 60.0 (50 %) |"


def test_the_two_thread_ratio_takes_both_times_from_the_loop_of_ours_alone():
    """The 2-thread goal's ratio is of the two medians of the loop of our engines alone (the
    ``batch32-1t-beside-2t`` row: its median and its 2-thread twin's) when the file has it,
    of batch32-2t's and batch32's (timed minutes apart) only in files written before; the
    render's summary cell does the same. Planted and failing it: batch32 the denominator,
    or batch32-2t's median the numerator, where the twin is there."""
    import render
    from bench_runtime import BESIDE_2T, evaluate_isa_targets

    def b32(case, median, **more):
        return {"case": case, "engine": "lstmlite-fp32", "mode": "sequence", "seq_len": 100, "median_us": median,
                **more}

    rows = [b32("batch32", 1000.0), b32("batch32-2t", 700.0), b32(BESIDE_2T, 1200.0, twin_median_us=600.0)]
    ratio = [t for t in evaluate_isa_targets(rows) if t["case"] == "batch32-2t"]
    assert [(t["engine"], t["value"], t["met"]) for t in ratio] == [("lstmlite-fp32", 0.5, True)]
    assert render._two_threads(rows, "lstmlite-fp32") == "0.50"
    old = rows[:2]
    assert [t["value"] for t in evaluate_isa_targets(old) if t["case"] == "batch32-2t"] == [0.7]
    assert render._two_threads(old, "lstmlite-fp32") == "0.70"
