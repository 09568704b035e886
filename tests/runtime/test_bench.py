"""lstmlite bench: every engine computes the same model (checked against torch-fp32),
the JSON follows DESIGN.md's schema, and the CLI writes it. No timing is asserted."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from lstmlite.runtime import bench as bench_mod

# Peers whose int8 error depends on their own quantizer and the CPU's kernels.
PEER_QUANTIZERS = {"torch-dynamic-int8", "onnxruntime-int8"}
SCHEMA = {"engine", "input_size", "hidden_size", "seq_len", "batch", "mode", "median_us", "p90_us"}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_all_engines_agree_with_torch_in_both_modes(cell):
    pytest.importorskip("onnxruntime")
    # LiteRT has its own tests (tests/runtime/test_bench_litert.py): its conversion takes
    # seconds, and this test also runs on an emulated CPU (test_emulated_cpu.py).
    engines = [e for e in bench_mod.default_engines()[0] if not e.startswith("litert-")]
    result = bench_mod.bench(input_size=6, hidden_size=12, seq_len=7, batch=2, cell=cell, num_layers=2,
                             modes=["sequence", "step"], reps=2, warmup=0, engines=engines)
    cases = result["cases"]
    assert {c["engine"] for c in cases} == set(engines) >= {"lstmlite-fp32", "torch-fp32", "onnxruntime-int8"}
    for case in cases:
        assert SCHEMA <= case.keys()
        assert case["median_us"] > 0 and case["p90_us"] >= case["median_us"] * 0.999
        assert np.isfinite(case["max_rel_err"]), case
        if case["engine"] in PEER_QUANTIZERS:
            continue  # a peer quantizer's error is reported in the JSON, not asserted (it varies by CPU)
        quantized = "int8" in case["engine"] or "int7" in case["engine"]
        assert case["max_rel_err"] < (0.1 if quantized else 1e-5), case
    assert result["machine"]["peak_fp32_gmacs"] > 0
    assert isinstance(result["machine"]["onnxruntime_int8_reduce_range"], bool)


def test_onnxruntime_int8_uses_reduced_range_exactly_on_x86_without_vnni(monkeypatch):
    """ONNX Runtime's u8 x s8 kernels saturate without VNNI, so the peer is built with
    7-bit weights there (its best) and with 8 bits everywhere else."""
    import lstmlite.runtime as rt

    avx2, avx2_vnni, avx512, avx512_vnni = (["portable", "avx2"], ["portable", "avx2", "avx2-vnni"],
                                            ["portable", "avx2", "avx512"], ["portable", "avx2", "avx512", "avx512-vnni"])
    for machine, isas, expected in [("x86_64", avx2, True), ("x86_64", avx512, True), ("AMD64", avx2, True),
                                    ("x86_64", avx2_vnni, False), ("x86_64", avx512_vnni, False),
                                    ("aarch64", ["portable"], False), ("arm64", ["portable"], False)]:
        monkeypatch.setattr(bench_mod.platform, "machine", lambda m=machine: m)
        monkeypatch.setattr(rt, "supported_isas", lambda v=isas: v)
        assert bench_mod.ort_reduce_range() is expected, (machine, isas)


def test_onnxruntime_preprocess_advice_is_dropped_only_while_quantizing(tmp_path, caplog, monkeypatch):
    """ONNX Runtime's quantizer logs advice to pre-process on the root logger, which
    bench's output showed to every user; it changes nothing for one LSTM node, so the
    peer's build drops it -- only it (another root warning logged meanwhile shows), and
    only while quantizing (the same advice logged afterwards shows)."""
    pytest.importorskip("onnxruntime")
    import onnx
    import onnxruntime.quantization as ort_quantization

    module = bench_mod.make_module("lstm", 4, 8)
    onnx.save(bench_mod.onnx_model(module, "lstm"), tmp_path / "m.onnx")
    with caplog.at_level(logging.WARNING):
        ort_quantization.quantize_dynamic(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"),
                                          weight_type=ort_quantization.QuantType.QInt8)
    if not any(r.getMessage().startswith(bench_mod.ORT_PREPROCESS_ADVICE) for r in caplog.records):
        pytest.skip("this onnxruntime no longer logs the pre-processing advice: nothing to drop")
    real = ort_quantization.quantize_dynamic

    def quantize_and_warn(*args, **kwargs):
        logging.warning("another root warning while quantizing")
        return real(*args, **kwargs)

    monkeypatch.setattr(ort_quantization, "quantize_dynamic", quantize_and_warn)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        bench_mod._onnxruntime(module, "lstm", batch=1, quantized=True, threads=1)
        logging.warning("%s, logged after the build", bench_mod.ORT_PREPROCESS_ADVICE)
    assert [r.getMessage() for r in caplog.records] == [
        "another root warning while quantizing", f"{bench_mod.ORT_PREPROCESS_ADVICE}, logged after the build"]


def test_onnx_graph_matches_torch_weights_and_gate_order():
    ort = pytest.importorskip("onnxruntime")
    module = bench_mod.make_module("lstm", 5, 9, num_layers=2)
    model = bench_mod.onnx_model(module, "lstm")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    feeds = {"X": x.transpose(1, 0, 2).copy()}
    feeds.update({f"initial_{s}{k}": np.zeros((1, 3, 9), np.float32) for s in "hc" for k in range(2)})
    y = session.run(["Y"], feeds)[0].transpose(1, 0, 2)
    with torch.no_grad():
        ref = module(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_cli_writes_json_in_the_design_schema(tmp_path, capsys):
    from lstmlite.cli.bench_cmd import add_parser
    import argparse

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    out = tmp_path / "bench.json"
    args = parser.parse_args(["bench", "--input-size", "4", "--hidden-size", "8", "--seq-len", "5", "--reps", "2",
                              "--warmup", "0", "--engines", "lstmlite-fp32,torch-fp32", "--mode", "both",
                              "--json", str(out)])
    assert args.func(args) == 0
    payload = json.loads(out.read_text())
    assert set(payload) == {"machine", "cases"}
    assert {(c["engine"], c["mode"]) for c in payload["cases"]} == {
        (e, m) for e in ("lstmlite-fp32", "torch-fp32") for m in ("sequence", "step")}
    assert all(SCHEMA <= c.keys() for c in payload["cases"])
    printed = capsys.readouterr().out
    assert "lstmlite-fp32" in printed
    from lstmlite import runtime

    # the kernels in use (LSTMLITE_ISA / set_isa), not only the best the CPU has
    assert payload["machine"]["lstmlite_isa"] == runtime.isa()
    assert payload["machine"]["lstmlite_best_isa"] == runtime.best_isa()
    assert f"lstmlite kernels: {runtime.isa()}" in printed
    bad = parser.parse_args(["bench", "--engines", "nope"])
    with pytest.raises(Exception, match="unknown engine"):
        bad.func(bad)


def test_bench_from_a_run_dir_uses_its_weights(tmp_path):
    from lstmlite.io import load_run, save_run
    from lstmlite.nn import SequenceClassifier

    model = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2, cell="gru", num_layers=2)
    run = save_run(tmp_path / "run", model, {"task": "classify"})
    module, cell = bench_mod.module_from_run(run)
    assert cell == "gru" and module.num_layers == 2
    torch.testing.assert_close(module.weight_hh_l1, model.rnn.weight_hh_l1)
    loaded, _ = bench_mod.module_from_run(load_run(run))  # a Run loaded once (bench RUN) gives the same
    torch.testing.assert_close(loaded.weight_hh_l1, model.rnn.weight_hh_l1)


def test_bench_of_a_low_rank_int8_run_times_its_stored_form(tmp_path):
    """bench RUN of a run storing int8 low-rank factors: lstmlite-int8 runs those codes and
    factors (as its .lsl file does) -- what the run computes, so its error against
    torch-fp32 on the effective weights is float rounding, and the note says which form --
    while lstmlite-fp32 runs the dense product. It rounded the product to int8 afresh
    (an error of ~1e-2, a dense-matrix time): neither the deployed file's error nor its
    speed."""
    from lstmlite.compress import LowRankConfig, WeightQuantConfig, compress_, compression_state
    from lstmlite.io import load_run, save_run
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=16, hidden_size=32, n_classes=3).eval()
    compress_(model, LowRankConfig(rank=6))
    compress_(model, WeightQuantConfig(bits=8))
    run = save_run(tmp_path / "run", model, {"task": "classify", "compression": compression_state(model)})
    stored = bench_mod.stored_form_of_run(run)
    assert stored is not None
    assert bench_mod._stored_kinds(bench_mod.stored_form_of_run(load_run(run))) == "low-rank factors in int8 codes"
    module, _ = bench_mod.module_from_run(run)
    result = bench_mod.bench(engines=["lstmlite-int8", "lstmlite-fp32", "torch-fp32"], module=module, stored=stored,
                             seq_len=6, reps=2, warmup=0)
    cases = {c["engine"]: c for c in result["cases"]}
    assert cases["lstmlite-int8"]["max_rel_err"] < 1e-5
    assert cases["lstmlite-int8"]["note"] == "runs the run's stored low-rank factors in int8 codes, as its .lsl file does"
    assert "note" not in cases["lstmlite-fp32"]
    dense = bench_mod.bench(engines=["lstmlite-int8", "torch-fp32"], module=module, seq_len=6, reps=2, warmup=0)
    assert dense["cases"][0]["max_rel_err"] > 1e-4  # the product rounded afresh: what the stored form avoids
    assert bench_mod.stored_form_of_run(save_run(tmp_path / "float", SequenceClassifier(
        input_size=4, hidden_size=6, n_classes=2), {"task": "classify"})) is None


def test_sparse_and_low_rank_cases_run_the_same_compressed_weights_everywhere():
    """With --sparsity every engine runs the pruned weights, with --rank the rank-r
    product (lstmlite through the factors): all agree with torch-fp32."""
    pytest.importorskip("onnxruntime")
    engines = ["lstmlite-fp32", "lstmlite-int8-sparse", "lstmlite-int8-sparse-dyn", "torch-fp32", "onnxruntime-fp32"]
    sparse = bench_mod.bench(input_size=16, hidden_size=32, seq_len=6, engines=engines, reps=2, warmup=0,
                             sparsity=0.75)
    low = bench_mod.bench(input_size=16, hidden_size=32, seq_len=6, engines=engines, reps=2, warmup=0, rank=4)
    for result in (sparse, low):
        for case in result["cases"]:
            assert case["max_rel_err"] < (0.05 if "int8" in case["engine"] else 1e-5), case
    assert {c["sparsity"] for c in sparse["cases"]} == {0.75} and {c["rank"] for c in low["cases"]} == {4}


def test_with_rank_the_engine_that_needs_full_matrices_is_left_out_or_refused(capsys):
    """``lstmlite-int7r-dyn16-h7`` cannot run low-rank factors (its 7-bit states need the
    recurrent matrices in full form): with --rank the default engines leave it out with a
    line saying why, and naming it is a one-line error. Catches every ``bench --rank R``
    without --engines failing on that engine (it did: "activations='dynamic16-h7': no
    recurrent matrix of this model takes 7-bit states")."""
    from lstmlite.cli.main import main

    kept, skipped = bench_mod.default_engines(rank=4)
    assert "lstmlite-int7r-dyn16-h7" not in kept and "lstmlite-int7r-dyn16" in kept
    assert any(line.startswith("skipping lstmlite-int7r-dyn16-h7: cannot run --rank") for line in skipped)
    assert "lstmlite-int7r-dyn16-h7" in bench_mod.default_engines(rank=0)[0]
    with pytest.raises(ValueError, match="lstmlite-int7r-dyn16-h7 cannot run --rank"):
        bench_mod.bench(input_size=8, hidden_size=16, seq_len=2, engines=["lstmlite-int7r-dyn16-h7"], reps=1,
                        warmup=0, rank=4)
    assert main(["bench", "--rank", "4", "--engines", "lstmlite-int7r-dyn16-h7", "--reps", "1"]) == 2
    assert "error: lstmlite-int7r-dyn16-h7 cannot run --rank" in capsys.readouterr().err


def test_factor_weights_gives_rank_r_factors_of_the_new_weights():
    module = bench_mod.make_module("gru", 10, 20)
    factors = bench_mod.factor_weights(module, 3)
    assert set(factors) == {"weight_ih_l0", "weight_hh_l0"}
    for name, (u, v) in factors.items():
        weight = getattr(module, name).detach().numpy()
        assert u.shape == (60, 3) and v.shape[0] == 3
        np.testing.assert_allclose(u @ v, weight, atol=1e-5)
        assert np.linalg.matrix_rank(weight, tol=1e-4) == 3
    with pytest.raises(ValueError):
        bench_mod.factor_weights(module, 0)


def test_impossible_sizes_are_refused_with_the_estimate_before_allocating(capsys, monkeypatch):
    from lstmlite.cli.main import main

    need = bench_mod.estimate_memory_bytes(40, 200_000, 100, 1, 1, "lstm", ["lstmlite-fp32"])
    assert need > 4 * 4 * 200_000 * 200_000  # at least one fp32 copy of W_hh
    assert bench_mod.estimate_memory_bytes(40, 128, 100, 1, 1) < 16 * 2**20
    monkeypatch.setattr(bench_mod, "available_memory_bytes", lambda: 8 * 2**30)
    assert main(["bench", "--hidden-size", "200000", "--engines", "lstmlite-fp32"]) == 2
    err = capsys.readouterr().err
    assert "of memory" in err and "(8.00 GiB) are available" in err and len(err.strip().splitlines()) == 1
    assert main(["bench", "--threads", "65"]) == 2
    assert "--threads must be at most 64" in capsys.readouterr().err


def test_cli_isa_option_forces_our_kernels_and_refuses_a_table_this_cpu_lacks(tmp_path, capsys):
    """lstmlite bench --isa NAME runs lstmlite's engines on that table, says so, writes
    it in the JSON and puts the previous table back; a table the CPU lacks is refused,
    naming those it has."""
    from lstmlite import runtime
    from lstmlite.cli.main import main

    lacking = next(name for name in runtime.ISAS if name not in runtime.supported_isas())
    assert main(["bench", "--isa", lacking, "--engines", "lstmlite-fp32", "--seq-len", "2", "--reps", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"lstmlite bench: error: --isa: ISA {lacking} is not available on this CPU "
        f"(it supports: {', '.join(runtime.supported_isas())})")
    before = runtime.isa()
    assert main(["bench", "--isa", "portable", "--engines", "lstmlite-fp32", "--input-size", "3",
                 "--hidden-size", "4", "--seq-len", "2", "--reps", "1", "--warmup", "0",
                 "--json", str(tmp_path / "b.json")]) == 0
    assert runtime.isa() == before  # put back for the rest of a process that called main()
    assert "lstmlite kernels: portable (best on this CPU: " in capsys.readouterr().out
    assert json.loads((tmp_path / "b.json").read_text())["machine"]["lstmlite_isa"] == "portable"


def test_cli_options_reach_the_timed_cases(tmp_path, capsys) -> None:
    """Each size and option of ``lstmlite bench`` is what bench() ran: every case of the JSON
    records it (cell, layers, batch, threads, sparsity, the pruned blocks' rows x columns).
    Catches an option dropped on the way, e.g. --threads timed on one thread or --sparse-block
    8x4 pruned as 1x4; and a zero --layers is refused in one line."""
    from lstmlite.cli.main import main

    assert main(["bench", "--engines", "lstmlite-fp32", "--input-size", "3", "--hidden-size", "8", "--seq-len", "2",
                 "--batch", "2", "--layers", "2", "--cell", "gru", "--threads", "2", "--sparsity", "0.5",
                 "--sparse-block", "8x4", "--reps", "1", "--warmup", "0", "--json", str(tmp_path / "b.json")]) == 0
    (case,) = json.loads((tmp_path / "b.json").read_text())["cases"]
    assert {k: case[k] for k in ("input_size", "hidden_size", "seq_len", "batch", "num_layers", "cell", "threads",
                                 "sparsity", "sparse_block")} == {
        "input_size": 3, "hidden_size": 8, "seq_len": 2, "batch": 2, "num_layers": 2, "cell": "gru", "threads": 2,
        "sparsity": 0.5, "sparse_block": [8, 4]}
    # two 2-step sequences are far under a thread's work (Engine.threads_for): the case says so
    assert case["note"] == "runs on 1 of 2 threads: under 4 M multiply-adds a thread"
    capsys.readouterr()
    assert main(["bench", "--layers", "0"]) == 2
    assert capsys.readouterr().err.strip() == "lstmlite bench: error: --layers must be at least 1"


def test_machine_info_names_the_kernels_in_use(restore_isa):
    """A forced table (LSTMLITE_ISA or set_isa) is what bench reports, next to the best."""
    from lstmlite import runtime

    runtime.set_isa("portable")
    info = bench_mod.machine_info()
    assert info["lstmlite_isa"] == "portable" and info["lstmlite_best_isa"] == runtime.best_isa()


def test_case_figures_follow_from_the_timed_repetitions(monkeypatch):
    """A fake clock makes the three repetitions of each call take 1, 2 and 10 us in
    sequence mode and 5, 10 and 50 us (of 5 steps) in step mode; a 2-layer GRU
    (I = 3, H = 4, B = 2) does 2 * (3*4*(3+4) + 3*4*(4+4)) = 360 MACs a step, by hand.
    So both modes report a median of 2 us and a 90th percentile of 2 + 0.8 * 8 = 8.4 us
    (step mode per step), 5 * 360 and 360 MACs, and 0.9 and 0.18 GMAC/s.
    Planted and failing it: the mean for the median, p90 as p50, step time not divided
    by the steps, the MACs of 4 gates for a GRU or of the input width for every layer,
    sequence MACs of one step, the rate inverted, and milliseconds taken for microseconds."""
    from types import SimpleNamespace

    durations = iter([1e-6, 2e-6, 10e-6, 5e-6, 10e-6, 50e-6])
    readings = iter(x for d in durations for x in (0.0, d))
    monkeypatch.setattr(bench_mod, "time", SimpleNamespace(perf_counter=lambda: next(readings)))
    result = bench_mod.bench(input_size=3, hidden_size=4, seq_len=5, batch=2, cell="gru", num_layers=2,
                             modes=["sequence", "step"], reps=3, warmup=0, engines=["lstmlite-fp32"])
    by_mode = {c["mode"]: c for c in result["cases"]}
    for mode, macs, gmacs in (("sequence", 5 * 360, 0.9), ("step", 360, 0.18)):
        case = by_mode[mode]
        assert case["median_us"] == pytest.approx(2.0, rel=1e-6), case
        assert case["p90_us"] == pytest.approx(8.4, rel=1e-6), case
        assert case["macs"] == macs, case
        assert case["gmacs_per_s"] == pytest.approx(gmacs, abs=1e-3), case


def test_max_rel_err_is_the_largest_error_over_the_largest_reference_value():
    """max_rel_err of lstmlite-int8 in sequence mode is max |engine - torch| / max |torch|,
    computed here from the module's own torch output and a separately loaded engine.
    Planted and failing it: the error left unnormalised (the outputs' largest value is
    well below 1, so the absolute error differs from the relative one)."""
    from lstmlite.runtime import Engine

    module = bench_mod.make_module("lstm", 5, 8, 1, seed=3)
    x = np.random.default_rng(3).standard_normal((2, 6, 5)).astype(np.float32)
    with torch.no_grad():
        ref = module(torch.from_numpy(x))[0].numpy().astype(np.float64)
    got = Engine.from_torch(module, weights="int8").run(x).astype(np.float64)
    expected = np.abs(got - ref).max() / np.abs(ref).max()
    assert np.abs(ref).max() < 0.8  # so that normalising matters
    result = bench_mod.bench(module=module, seq_len=6, batch=2, seed=3, reps=1, warmup=0,
                             engines=["lstmlite-int8"])
    assert result["cases"][0]["max_rel_err"] == pytest.approx(expected, rel=2e-3)


def test_one_thread_beside_times_our_engines_alone_on_one_and_n_threads(monkeypatch):
    """``one_thread_beside`` with 2 threads: every engine is timed on 2 threads as without it,
    then every lstmlite engine gets a second runner built for one thread, timed in a loop of
    lstmlite's runners alone beside its 2-thread twin (no peer's thread pool in between),
    whose median the one-thread case carries; a peer gets no second runner, and step mode
    (one thread anyway) no second loop. Planted and failing it: the one-thread runner built
    with ``threads``, the peers in the second loop, the twin's median from the first loop,
    a second loop in step mode. And the twins' errors are not checked again (their rows
    have them)."""
    built, loops, given = [], [], {}
    runner, interleaved = bench_mod._runner, bench_mod._times_interleaved
    fake = iter(range(1, 10_000))

    def recording_runner(engine, module, cell, batch, threads, *args):
        built.append((engine, threads))
        return runner(engine, module, cell, batch, threads, *args)

    def recording_loop(calls, reps, warmup):
        interleaved(calls, 1, 0)
        loops.append(sorted(calls, key=str))
        times = {key: float(next(fake)) for key in calls}  # each call its own "time"
        given.update({key: t for key, t in times.items() if isinstance(key, tuple)})
        return {key: np.full(reps, t) for key, t in times.items()}

    checked, rel_err = [], bench_mod._rel_err
    monkeypatch.setattr(bench_mod, "_runner", recording_runner)
    monkeypatch.setattr(bench_mod, "_times_interleaved", recording_loop)
    monkeypatch.setattr(bench_mod, "_rel_err", lambda got, ref: checked.append(1) or rel_err(got, ref))
    engines = ["lstmlite-fp32", "lstmlite-int8-dyn", "onnxruntime-fp32"]
    result = bench_mod.bench(input_size=3, hidden_size=8, seq_len=4, batch=4, threads=2, reps=2, warmup=0,
                             engines=engines, modes=["sequence", "step"], one_thread_beside=True)
    assert sorted(built) == [("lstmlite-fp32", 1), ("lstmlite-fp32", 2), ("lstmlite-int8-dyn", 1),
                             ("lstmlite-int8-dyn", 2), ("onnxruntime-fp32", 2)]
    pairs = [("lstmlite-fp32", 1), ("lstmlite-fp32", 2), ("lstmlite-int8-dyn", 1), ("lstmlite-int8-dyn", 2)]
    assert loops == [sorted(engines), sorted(pairs, key=str), sorted(engines)]  # sequence, beside, step
    seq = [c for c in result["cases"] if c["mode"] == "sequence"]
    assert [(c["engine"], c["threads"]) for c in seq] == [(e, 2) for e in engines] + [
        ("lstmlite-fp32", 1), ("lstmlite-int8-dyn", 1)]
    for c in seq[3:]:  # the beside loop's "times"
        assert c["median_us"] == given[(c["engine"], 1)] and c["twin_median_us"] == given[(c["engine"], 2)]
        assert c["twin_threads"] == 2
    assert seq[3]["max_rel_err"] < 1e-5 and seq[4]["max_rel_err"] == seq[1]["max_rel_err"]
    assert len(checked) == 3 + 2 + 3  # sequence, beside (the 1-thread runners only: twins have theirs), step
    assert [(c["engine"], c["threads"]) for c in result["cases"] if c["mode"] == "step"] == [(e, 2) for e in engines]
    plain = bench_mod.bench(input_size=3, hidden_size=8, seq_len=4, batch=4, threads=2, reps=1, warmup=0,
                            engines=["lstmlite-fp32"])
    assert [(c["engine"], c["threads"]) for c in plain["cases"]] == [("lstmlite-fp32", 2)]


def test_cli_one_thread_beside_adds_one_thread_cases_and_needs_several_threads(tmp_path, capsys):
    """``lstmlite bench --threads 2 --one-thread-beside``: the JSON has the engine at 2 threads
    and at 1, and the printed table tells them apart; without --threads 2 or more the option
    is refused in one line."""
    from lstmlite.cli.main import main

    assert main(["bench", "--engines", "lstmlite-fp32", "--input-size", "3", "--hidden-size", "8", "--seq-len", "2",
                 "--batch", "4", "--threads", "2", "--one-thread-beside", "--reps", "1", "--warmup", "0",
                 "--json", str(tmp_path / "b.json")]) == 0
    cases = json.loads((tmp_path / "b.json").read_text())["cases"]
    assert sorted((c["engine"], c["threads"]) for c in cases) == [("lstmlite-fp32", 1), ("lstmlite-fp32", 2)]
    out = capsys.readouterr().out
    assert "lstmlite-fp32 (2 threads)" in out and "lstmlite-fp32 (1 thread)" in out
    assert main(["bench", "--one-thread-beside"]) == 2
    assert capsys.readouterr().err.strip() == ("lstmlite bench: error: --one-thread-beside times 1 thread beside "
                                               "--threads N: give --threads 2 or more")


def test_one_thread_beside_counts_the_twins_in_the_memory_estimate(capsys, monkeypatch):
    """--one-thread-beside loads every lstmlite engine twice: sizes that fit one copy but not
    two are refused with it and timed without it (bench stubbed: nothing is allocated).
    Planted and failing it: the estimate of the engines alone."""
    from lstmlite.cli.main import main

    one = bench_mod.estimate_memory_bytes(40, 128, 100, 1, 1, "lstm", ["lstmlite-fp32"])
    two = bench_mod.estimate_memory_bytes(40, 128, 100, 1, 1, "lstm", ["lstmlite-fp32"] * 2)
    monkeypatch.setattr(bench_mod, "available_memory_bytes", lambda: int((one + two) / 2 / 0.8))
    monkeypatch.setattr(bench_mod, "bench", lambda **kwargs: {"machine": bench_mod.machine_info(), "cases": []})
    args = ["bench", "--engines", "lstmlite-fp32", "--input-size", "40", "--hidden-size", "128", "--seq-len", "100",
            "--batch", "1", "--threads", "2", "--reps", "1", "--warmup", "0"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args + ["--one-thread-beside"]) == 2
    assert "of memory" in capsys.readouterr().err
