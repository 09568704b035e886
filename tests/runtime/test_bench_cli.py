"""``lstmlite bench``'s command layer: what reaches bench() (engines, repetitions, the run
dir's weights, the rank), what is refused before anything runs, and what is written.
Most tests replace bench() by a recorder (what the CLI passed is the question there);
the repetition counts are counted on the real timing loop. No timing is asserted."""

from __future__ import annotations

import json

import pytest

from lstmlite.cli.main import main
from lstmlite.runtime import bench as bench_mod

TINY = ["--input-size", "3", "--hidden-size", "4", "--seq-len", "2"]


@pytest.fixture
def recorded(monkeypatch):
    """bench() replaced: the keyword arguments of each call, and a result of one case."""
    calls = []

    def fake_bench(**kwargs):
        calls.append(kwargs)
        case = {"engine": kwargs["engines"][0], "input_size": 3, "hidden_size": 4, "seq_len": 2, "batch": 1,
                "mode": "sequence", "median_us": 2.0, "p90_us": 3.0, "peak_fraction": 0.5, "max_rel_err": 0.0,
                "sparsity": 0.0, "note": "a note of this engine's"}
        return {"machine": {"lstmlite_isa": "portable", "lstmlite_best_isa": "portable"}, "cases": [case]}
    monkeypatch.setattr(bench_mod, "bench", fake_bench)
    return calls


def test_repetitions_and_warmup_are_counted_as_given_and_default_to_30_and_5(monkeypatch):
    """Each engine's call runs ``--warmup`` untimed times then ``--reps`` timed ones (plus
    one call that measures its error), counted on the real timing loop; without the
    options 5 and 30 (--help: "medians of >= 30 are quotable"), and the JSON's ``reps`` is
    what was timed. Catches the defaults changed, --warmup read from --reps or the other
    way round, and a warm-up or timed repetition dropped or added."""
    counts = []
    real = bench_mod._times_interleaved

    def counting(calls, reps, warmup):
        n = {name: 0 for name in calls}

        def counted(name, fn):
            def call():
                n[name] += 1
                return fn()
            return call
        times = real({name: counted(name, fn) for name, fn in calls.items()}, reps, warmup)
        counts.append((n, {name: len(t) for name, t in times.items()}))
        return times
    monkeypatch.setattr(bench_mod, "_times_interleaved", counting)
    for extra, warmup, reps in (([], 5, 30), (["--reps", "7", "--warmup", "2"], 2, 7),
                                (["--reps", "3", "--warmup", "0"], 0, 3)):
        counts.clear()
        assert main(["bench", "--engines", "lstmlite-fp32,torch-fp32", *TINY, *extra]) == 0
        ((called, timed),) = counts
        assert called == {"lstmlite-fp32": warmup + reps, "torch-fp32": warmup + reps}, extra
        assert timed == {"lstmlite-fp32": reps, "torch-fp32": reps}


def test_default_engines_take_the_sparse_ones_only_with_sparsity_and_leave_out_what_rank_rules_out(
        recorded, capsys, monkeypatch):
    """Without --engines: the *-sparse engines only with --sparsity (--help), and with
    --rank the engine that cannot run factors is left out with a line saying so. Catches
    the sparse engines always or never in the default set and --rank not given to the
    default set (which then fails on lstmlite-int7r-dyn16-h7)."""
    monkeypatch.setattr(bench_mod, "engine_missing", lambda engine: None)  # as if every peer were installed
    assert main(["bench", *TINY]) == 0
    engines = recorded[-1]["engines"]
    assert not any("sparse" in e for e in engines) and "lstmlite-int7r-dyn16-h7" in engines
    assert set(engines) == {e for e in bench_mod.ENGINES if "sparse" not in e}
    assert main(["bench", *TINY, "--sparsity", "0.5"]) == 0
    assert set(recorded[-1]["engines"]) == set(bench_mod.ENGINES)
    capsys.readouterr()
    assert main(["bench", *TINY, "--rank", "2"]) == 0
    assert "lstmlite-int7r-dyn16-h7" not in recorded[-1]["engines"] and recorded[-1]["rank"] == 2
    assert "skipping lstmlite-int7r-dyn16-h7: cannot run --rank" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--reps", "0"], "--reps must be at least 1"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--sparsity", "1"], "--sparsity must be in [0, 1)"),
    (["--sparsity", "-0.1"], "--sparsity must be in [0, 1)"),
    (["--rank", "-1"], "--rank must be 0 (full rank) or more"),
    (["--engines", "lstmlite-fp32,nope"], "unknown engine(s) nope; choose from"),
    (["no-such-run"], "no-such-run: not a run dir"),
    (["--engines", ","], "--engines names no engine; choose from"),
    (["--warmup", "-1"], "--warmup must be 0 or more"),
])
def test_bad_options_are_one_line_before_anything_runs(recorded, capsys, argv, message):
    """Catches --reps 0 let through (no timed repetition: a median of nothing),
    --engines naming no engine (it printed an empty table and exited 0), a negative
    --warmup taken as none,
    --sparsity 1 (every weight zeroed), a negative --rank, an unknown engine, and a
    missing run dir reported as whatever module_from_run raises."""
    assert main(["bench", "--engines", "lstmlite-fp32", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and recorded == []


def test_a_missing_peer_is_refused_and_the_largest_thread_count_accepted(recorded, capsys, monkeypatch):
    """A named engine that is not installed is a one-line error naming the fix, not a
    skipped row; --threads 64 (MAX_THREADS, the most the runtime takes) runs. Catches the
    missing engine printed and dropped, and --threads MAX refused."""
    from lstmlite.runtime.engine import MAX_THREADS

    monkeypatch.setattr(bench_mod, "engine_missing",
                        lambda engine: "onnxruntime-fp32 needs pip install onnxruntime" if "onnx" in engine else None)
    assert main(["bench", "--engines", "lstmlite-fp32,onnxruntime-fp32", *TINY]) == 2
    assert capsys.readouterr().err.strip() == "lstmlite bench: error: onnxruntime-fp32 needs pip install onnxruntime"
    assert recorded == []
    assert main(["bench", "--engines", "lstmlite-fp32", *TINY, "--threads", str(MAX_THREADS)]) == 0
    assert recorded[-1]["threads"] == MAX_THREADS


def test_sizes_needing_most_of_the_free_memory_are_refused(recorded, capsys, monkeypatch):
    """Sizes whose estimate is over 80 % of the available memory are refused before any
    engine allocates; 70 % runs. Catches the check skipped or its bar moved past it."""
    need = bench_mod.estimate_memory_bytes(3, 4, 2, 1, 1, "lstm", ["lstmlite-fp32"])
    for have, code in ((int(need / 0.9), 2), (int(need / 0.7), 0)):
        monkeypatch.setattr(bench_mod, "available_memory_bytes", lambda have=have: have)
        assert main(["bench", "--engines", "lstmlite-fp32", *TINY]) == code, have
    assert "of memory" in capsys.readouterr().err and len(recorded) == 1


def test_a_run_dirs_weights_and_sizes_are_what_is_timed(tmp_path):
    """``lstmlite bench RUN`` times RUN's recurrent layers: the cases record its cell,
    widths and layers (a 2-layer GRU of I = 3, H = 6), not the options' defaults (an
    LSTM of I = 40, H = 128), and every engine agrees with torch on them. Catches the
    run's module dropped on the way to bench()."""
    import torch

    from lstmlite.io import save_run
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(0)
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=3, hidden_size=6, n_classes=2, cell="gru",
                                                        num_layers=2), {"task": "classify"})
    assert main(["bench", str(run), "--engines", "lstmlite-fp32,torch-fp32", "--seq-len", "3", "--reps", "1",
                 "--warmup", "0", "--json", str(tmp_path / "b.json")]) == 0
    cases = json.loads((tmp_path / "b.json").read_text())["cases"]
    assert {(c["cell"], c["input_size"], c["hidden_size"], c["num_layers"]) for c in cases} == {("gru", 3, 6, 2)}
    assert max(c["max_rel_err"] for c in cases) < 1e-5


def test_rank_notes_and_the_outputs_reach_the_user(recorded, tmp_path, capsys):
    """--rank reaches bench(); an engine's note is printed beside its row; --json and
    --chart are written into folders that do not exist yet, the JSON being bench()'s
    result and the chart a PNG. Catches --rank dropped, notes not printed, --chart
    ignored and --json into a new folder failing."""
    out = tmp_path / "new" / "dir"
    assert main(["bench", "--engines", "lstmlite-fp32", *TINY, "--rank", "2", "--json", str(out / "b.json"),
                 "--chart", str(out / "b.png")]) == 0
    assert recorded[-1]["rank"] == 2
    printed = capsys.readouterr().out
    assert "lstmlite-fp32 (sequence): a note of this engine's" in printed
    payload = json.loads((out / "b.json").read_text())
    assert payload["cases"][0]["median_us"] == 2.0 and payload["machine"]["lstmlite_isa"] == "portable"
    assert (out / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
