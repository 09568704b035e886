"""End to end: a few tiny trials write the outputs, the best pick respects the budget,
and a resumed study continues the same study."""

import json

import optuna
import pytest
import torch

from lstmlite import load_run
from lstmlite.cli.main import main
from lstmlite.cli.search_cmd import _duration
from lstmlite.search import search

from .conftest import TINY_SPACE


def test_three_trial_search_writes_outputs_and_respects_budget(tiny_data, tmp_path):
    out = tmp_path / "s"
    result = search(tiny_data, "classify", budget="size=3KB", trials=3, out=out, space=TINY_SPACE, seed=1)
    assert result["trials"] == 3
    for name in ("study.db", "pareto.json", "pareto.png", "trials.json"):
        assert (out / name).is_file(), name
    trials = json.loads((out / "trials.json").read_text())
    assert len(trials) == 3
    for t in trials:
        assert t["size_kind"] in ("lsl", "estimated") and t["latency_kind"] in ("measured", "mac-model")
        assert t["ram_kind"] == "mcu-export"  # LSTM and GRU: the RAM of their C project
        assert (out / "trials" / f"{t['trial']:04d}" / "metrics.json").is_file()
        if t["size_kind"] == "lsl":  # the size is the file's bytes
            assert (out / "trials" / f"{t['trial']:04d}" / "model.lsl").stat().st_size == t["size_bytes"]
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["budget"] == {"size": 3072}
    for rec in pareto["pareto"]:
        assert rec["size_bytes"] <= 3072 and rec["feasible"] and rec["ram_kind"] == "mcu-export"
    best = result["best"]
    if best is not None:
        assert best["size_bytes"] <= 3072
        run = load_run(out / "best")  # a run dir that compress/export accept
        assert run.metrics["size_bytes"] == best["size_bytes"]
    over = [t for t in trials if t["size_bytes"] > 3072]
    assert all(not t["feasible"] for t in over)


def test_resume_continues_the_same_study(tiny_data, tmp_path):
    out = tmp_path / "s"
    search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE)
    with pytest.raises(FileExistsError, match="resume"):
        search(tiny_data, "classify", trials=3, out=out, space=TINY_SPACE)
    result = search(tiny_data, "classify", trials=3, out=out, space=TINY_SPACE, resume=True)
    study = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{out / 'study.db'}")
    assert result["trials"] == 3 and len(study.trials) == 3
    assert [t.number for t in study.trials] == [0, 1, 2]


def test_resume_under_another_budget_or_space_is_refused(tiny_data, tmp_path, capsys):
    """A study's trials were judged feasible under its budget and sampled from its space:
    resuming it under another budget is one line (before, the old trials kept their
    feasibility, so best/ could be a model over the new budget -- here one slower than
    latency=0.001us; the message says the budget is per step, "us/step", as the progress
    lines do -- it said "0.001 us"), and under another space too (Optuna cannot sample a categorical
    whose choices changed: every new trial failed). The same budget and space resume.
    Planted and failing it: no check on resume (the budget's and the space's)."""
    import yaml

    out = tmp_path / "s"
    space = {"params": {"hidden_size": {"choices": [4]}}, "fixed": {"cell": "gru", "epochs": 1, "lr": 0.03}}
    search(tiny_data, "classify", trials=1, out=out, space=space)
    with pytest.raises(ValueError, match=r"the study's trials ran under --budget none, not latency=0\.001 us/step: "
                                         r"resume with the same --budget"):
        search(tiny_data, "classify", budget="latency=0.001us", trials=2, out=out, space=space, resume=True)
    wider = {**space, "params": {"hidden_size": {"choices": [4, 8]}}}
    (tmp_path / "wider.yaml").write_text(yaml.safe_dump(wider))
    code = main(["search", "--data", tiny_data, "--task", "classify", "--space", str(tmp_path / "wider.yaml"),
                 "--trials", "2", "--resume", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"lstmlite search: error: {out}: the study's trials were sampled from another "
                                 "search space (hidden_size changed): resume with the same --space, or search anew "
                                 "in another --out"]
    study = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{out / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"]
    searched_lr = {"params": {**space["params"], "lr": {"low": 0.01, "high": 0.1}},
                   "fixed": {"cell": "gru", "epochs": 1}}  # lr moved from fixed to params: named once
    with pytest.raises(ValueError, match=r"another search space \(lr changed\)"):
        search(tiny_data, "classify", trials=2, out=out, space=searched_lr, resume=True)
    assert search(tiny_data, "classify", trials=2, out=out, space=space, resume=True)["trials"] == 2


ONE_POINT = {"params": {"hidden_size": {"choices": [4]}}, "fixed": {"cell": "gru", "epochs": 1, "lr": 0.03}}


def _tree(folder):
    """Every file under ``folder`` with its bytes: what a refused search must leave as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("what", ["user_files", "run_dir", "a_file"])
def test_an_out_holding_what_search_did_not_write_is_refused_and_left_as_it_was(tiny_data, tmp_path, capsys, what):
    """--out a folder with a user's files (a best/ and trials/0000/ of theirs, a pareto.json),
    a finished run dir, or a file: refused in one line before anything is written. Before, the
    search deleted best/mywork.txt and trials/0000/notes.txt, replaced pareto.json and wrote
    study.db, trials.json and pareto.png into a run dir, exit status 0."""
    out = tmp_path / "out"
    if what == "user_files":
        (out / "best").mkdir(parents=True)
        (out / "trials" / "0000").mkdir(parents=True)
        (out / "best" / "mywork.txt").write_text("precious")
        (out / "trials" / "0000" / "notes.txt").write_text("notes")
        (out / "pareto.json").write_text('{"mine": 1}')
        (out / "README.txt").write_text("mine")
        expected = f"{out}: holds files lstmlite search did not write (README.txt); choose a new or empty --out"
    elif what == "run_dir":
        from lstmlite.io import save_run
        from lstmlite.nn import SequenceClassifier

        save_run(out, SequenceClassifier(input_size=3, hidden_size=4, n_classes=2), {"task": "classify"})
        expected = f"{out}: holds files lstmlite search did not write ("
    else:
        out.write_text("a file")
        expected = f"{out}: exists and is not a folder; --out names the folder the search writes"
    before = _tree(tmp_path)
    code = main(["search", "--data", tiny_data, "--task", "classify", "--trials", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"lstmlite search: error: {expected}"), err
    assert _tree(tmp_path) == before


def test_a_new_study_in_another_storage_does_not_replace_an_old_searchs_results(tiny_data, tmp_path, capsys):
    """A search's --out given again with --storage elsewhere (a new, empty study there) and no
    --resume: refused, the old trials.json, pareto.json and best/ kept. Before, the new study's
    one trial replaced them (trials.json went from the old study's to the new one's, best/
    to a worse model), exit status 0. With --resume it is the user's word that this is the
    same search, as for the default storage."""
    import yaml

    out = tmp_path / "s"
    search(tiny_data, "classify", trials=1, out=out, space=ONE_POINT)
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(ONE_POINT))
    before = _tree(out)
    code = main(["search", "--data", tiny_data, "--task", "classify", "--space", str(tmp_path / "space.yaml"),
                 "--trials", "1", "--storage", f"sqlite:///{tmp_path / 'other.db'}", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"lstmlite search: error: {out}: a search's results are here (best, pareto.json, "
                                 "trials, trials.json); --resume to continue its study, or choose a new or empty "
                                 "--out"], err
    assert _tree(out) == before and not (tmp_path / "other.db").exists()


def test_resuming_on_other_data_is_refused(tiny_data, tmp_path):
    """--resume with another --data (or --task): the study's trials ran on the first data
    set, and ranking them with trials on the second would put either data set's model in
    best/. Refused naming both; before, it ran and mixed them. The same data resumes."""
    from .conftest import make_tiny_npz

    out = tmp_path / "s"
    search(tiny_data, "classify", trials=1, out=out, space=ONE_POINT)
    other = str(make_tiny_npz(tmp_path / "other.npz", seed=1))
    with pytest.raises(ValueError, match=r"the study's trials ran on --data/--task source=.*tiny\.npz, task=classify, "
                                         r"not source=.*other\.npz, task=classify: resume with the same --data"):
        search(other, "classify", trials=2, out=out, space=ONE_POINT, resume=True)
    study = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 1 and study.user_attrs["data"]["source"] == tiny_data
    assert search(tiny_data, "classify", trials=2, out=out, space=ONE_POINT, resume=True)["trials"] == 2


def test_without_a_task_the_datas_own_metric_direction_is_used(tmp_path):
    """A search given no task takes the data's own (a .npy series forecasts, its MAE an
    error): the study minimises the metric, and best is the feasible trial of least
    validation MAE (the oracle: Optuna's study read back). Planted and failing it: the
    task taken as "classify" when none is given, so the worst forecaster was "best"."""
    import numpy as np

    series = tmp_path / "series.npy"
    steps = np.arange(160)
    np.save(series, (np.sin(steps / 4) + 0.1 * np.random.default_rng(0).normal(size=160)).astype(np.float32))
    space = {"params": {"lr": {"choices": [0.001, 0.03]}}, "fixed": {"cell": "gru", "hidden_size": 4, "epochs": 1}}
    out = tmp_path / "s"
    result = search(str(series), None, trials=3, out=out, space=space, sampler="random", seed=1)
    study = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{out / 'study.db'}")
    assert study.directions[0].name == "MINIMIZE"
    done = [t for t in study.trials if t.state.name == "COMPLETE" and t.user_attrs["feasible"]]
    assert len({t.values[0] for t in done}) > 1  # the trials differ: a wrong direction would show
    assert result["best"]["metric_name"] == "mae"
    assert result["best"]["val_metric"] == min(t.values[0] for t in done)


@pytest.fixture
def optuna_verbosity():
    """Optuna's log level restored after a test of the CLI, which sets it."""
    before = optuna.logging.get_verbosity()
    yield
    optuna.logging.set_verbosity(before)


def test_cli_search_prints_a_line_per_trial(tiny_data, tmp_path, capsys, optuna_verbosity):
    space = tmp_path / "space.yaml"
    import yaml

    space.write_text(yaml.safe_dump(TINY_SPACE))
    code = main(["search", "--data", tiny_data, "--task", "classify", "--budget", "size=64KB", "--trials", "2",
                 "--space", str(space), "--seed", "5", "--out", str(tmp_path / "s")])
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.count("trial ") >= 2 and "best within budget" in printed
    # Optuna's own INFO lines ("Trial 0 finished with values ...") repeat those: -v only
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING
    # --seed is the training seed too: trial N trains with seed + N (catches --seed not passed on)
    for number in (0, 1):
        config = json.loads((tmp_path / "s" / "trials" / f"{number:04d}" / "config.json").read_text())
        assert config["train"]["seed"] == 5 + number


def test_cli_search_marks_an_estimated_ram(tiny_data, tmp_path, capsys):
    """A trial's line shows which RAM it is: a bidirectional GRU has no C export, so its RAM
    is the estimate and says so; a unidirectional one's is its C project's, unmarked.
    Planted and failing it: the line printing an estimated RAM without "(estimated)", and
    every RAM marked "(estimated)"."""
    import re

    import yaml

    for bidirectional, marked in ((True, True), (False, False)):
        space = tmp_path / f"space{bidirectional}.yaml"
        space.write_text(yaml.safe_dump({"params": {"cell": {"choices": ["gru"]}, "hidden_size": {"choices": [4]},
                                                    "bidirectional": {"choices": [bidirectional]}},
                                         "fixed": {"epochs": 1, "lr": 0.02, "finetune_epochs": 0}}))
        code = main(["search", "--data", tiny_data, "--task", "classify", "--trials", "1", "--space", str(space),
                     "--out", str(tmp_path / f"s{bidirectional}")])
        assert code == 0
        line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("trial ")][0]
        ram = re.search(r"ram=([0-9,]+) B(?: \([0-9.]+ KiB\))?( \(estimated\))?", line)
        kind = json.loads((tmp_path / f"s{bidirectional}" / "trials.json").read_text())[0]["ram_kind"]
        assert (ram.group(2) is not None) == marked and kind == ("estimated" if marked else "mcu-export"), line

def test_cli_search_with_no_trial_in_budget_is_a_one_line_error(tiny_data, tmp_path, capsys) -> None:
    """A search whose trials all miss the budget (a latency no model reaches; the size and
    RAM pre-check cannot see it) ends with one line on stderr and exit status 2, as bad
    input does (docs/errors.md: status 1 is an internal error), the trials' figures kept.
    Catches: the finding printed to stdout with status 1."""
    import yaml

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(TINY_SPACE))
    code = main(["search", "--data", tiny_data, "--task", "classify", "--budget", "latency=0.001us", "--trials",
                 "1", "--space", str(space), "--out", str(tmp_path / "s")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip().splitlines() == [
        f"lstmlite search: error: no trial met the budget latency=0.001us; widen --budget or the space "
        f"({tmp_path / 's'}/trials.json lists every trial's figures)"]
    assert "over budget" in captured.out
    trials = json.loads((tmp_path / "s" / "trials.json").read_text())
    assert len(trials) == 1 and trials[0]["latency_us"] > 0.001


def test_cli_search_with_no_completed_trial_says_so_not_the_budget(tmp_path, capsys) -> None:
    """A search none of whose trials completed (here each stopped by the study's
    prune_above bar on a forecaster's MAE) ends with one line counting the trials' states,
    exit status 2, where it said "no trial met the budget None; widen --budget" with no
    budget given. Planted and failing it: the budget's message for a search with no
    completed trial."""
    import numpy as np
    import yaml

    from lstmlite.search.study import open_study

    series = tmp_path / "series.npy"
    np.save(series, np.sin(np.arange(120) / 4).astype(np.float32))
    out = tmp_path / "s"
    out.mkdir()
    open_study(out, None, 0, metric_higher=False).set_user_attr("prune_above", 1e-6)
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(
        {"params": {"lr": {"choices": [0.01, 0.03]}}, "fixed": {"cell": "gru", "hidden_size": 4, "epochs": 2}}))
    code = main(["search", "--data", str(series), "--space", str(tmp_path / "space.yaml"), "--trials", "2",
                 "--resume", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and sum(line.endswith(" pruned") for line in captured.out.splitlines()) == 2  # trial lines
    assert "2 trials, 0 trained, 0 over budget (not trained), 2 pruned (stopped early); 0 on the Pareto front" \
        in captured.out
    assert captured.err.strip().splitlines() == [
        "lstmlite search: error: no trial completed (2 pruned): failed trials say why above, pruned ones were "
        f"stopped by the study's prune_below / prune_above bar or a better trial ({out}/trials.json)"]


@pytest.mark.parametrize("argv, message", [
    (["--space", "{tmp}/space.yaml"], "unknown parameter 'colour'"),
    (["--trials", "0"], "--trials and --workers must be at least 1"),
    (["--workers", "0"], "--trials and --workers must be at least 1"),
    (["--timeout", "soon"], "--timeout 'soon': use seconds or a time like 30m or 2h"),
    (["--timeout", "1.5.5m"], "--timeout '1.5.5m': use seconds or a time like 30m or 2h"),
    (["--timeout", "."], "--timeout '.': use seconds or a time like 30m or 2h"),
])
def test_cli_bad_option_is_one_line(argv: list[str], message: str, tmp_path, capsys) -> None:
    """A bad --space, --trials, --workers or --timeout is one line, before any trial runs.
    Catches --workers 0 let through to the study, and a --timeout of digits and dots that
    is no number ("could not convert string to float: '1.5.5'", which names no option)."""
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  colour: {choices: [red]}\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = main(["search", "--data", "x.npz", *argv, "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text, seconds", [("600", 600), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1.5 H", 5400)])
def test_cli_timeout_reads_seconds_minutes_and_hours(text: str, seconds: float) -> None:
    """--timeout as search's --help gives it (30m, 2h, 600): seconds passed to search().
    Catches a unit's factor wrong (hours read as minutes)."""
    assert _duration(text) == seconds


def test_fastgrnn_trial_size_is_the_exported_files_bytes(tiny_data, tmp_path):
    from lstmlite.export.size import lsl_image
    from lstmlite.search.trial import run_trial

    record = run_trial({"cell": "fastgrnn", "hidden_size": 8, "epochs": 1, "lr": 0.02, "weight_bits": 4},
                       {"source": tiny_data, "task": "classify"}, tmp_path / "t")
    assert record["size_kind"] == "lsl" and record["latency_kind"] == "measured"
    lsl = tmp_path / "t" / "model.lsl"
    assert lsl.stat().st_size == record["size_bytes"]
    # the same bytes `lstmlite export` writes for the trial's run dir (int4 kept, not widened)
    run = load_run(tmp_path / "t")
    assert lsl_image(run.model) == lsl.read_bytes()


def test_a_seq2seq_models_size_is_its_three_exported_files(tmp_path):
    """A seq2seq model deploys as encoder.lsl + decoder.lsl + seq2seq.safetensors
    (docs/interop.md); its size_bytes is those files' bytes as `lstmlite export` writes
    them, and the .lsl kept for timing is the decoder's. Catches the size taken from the
    decoder alone (or the side file left out)."""
    from lstmlite.export.seq2seq import export_seq2seq_lsl
    from lstmlite.nn import Seq2Seq
    from lstmlite.search.objectives import deployable_bytes

    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=15, embed_dim=6, hidden_size=8, max_target_len=6).eval()
    files = export_seq2seq_lsl(model, tmp_path / "export")
    assert sorted(p.name for p in files) == ["decoder.lsl", "encoder.lsl", "seq2seq.safetensors"]
    size, kind = deployable_bytes(model, tmp_path / "trial.lsl")
    assert kind == "lsl" and size == sum(p.stat().st_size for p in files)
    assert (tmp_path / "trial.lsl").read_bytes() == (tmp_path / "export" / "decoder.lsl").read_bytes()


def test_a_file_the_runtime_refuses_is_not_deployable(tmp_path, monkeypatch):
    """deployable_bytes: a file the writer produces but the runtime's loader refuses (its
    one-line ValueError) is not deployable: the size is size_bytes(model) marked
    "estimated" and no .lsl is left for the latency to time. Catches the load check
    dropped (the refused file's bytes reported as "lsl")."""
    import lstmlite.runtime
    from lstmlite.compress import size_bytes
    from lstmlite.nn import SequenceClassifier
    from lstmlite.search.objectives import deployable_bytes

    def refuse(data, *args, **kwargs):
        raise ValueError("cannot load this file: unsupported layer")

    model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2).eval()
    monkeypatch.setattr(lstmlite.runtime, "Engine", refuse)
    assert deployable_bytes(model, tmp_path / "m.lsl") == (int(size_bytes(model)), "estimated")
    assert not (tmp_path / "m.lsl").exists()


def test_unexportable_model_is_marked_estimated_not_mixed(tmp_path):
    from lstmlite.search.trial import run_trial

    from .conftest import make_tiny_npz

    # A grouped LSTM has no .lsl form: its size and latency are marked as estimates.
    data = str(make_tiny_npz(tmp_path / "even.npz", f=4))  # two groups need an even input width
    record = run_trial({"cell": "grouped_lstm", "hidden_size": 8, "epochs": 1, "lr": 0.02},
                       {"source": data, "task": "classify"}, tmp_path / "t")
    assert record["size_kind"] == "estimated" and record["latency_kind"] == "mac-model"
    assert not (tmp_path / "t" / "model.lsl").exists()


def test_sampler_is_chosen_by_name_and_unknown_names_fail_before_any_trial(tiny_data, tmp_path):
    from lstmlite.search import make_sampler

    assert type(make_sampler("random", 0)).__name__ == "RandomSampler"
    assert type(make_sampler("tpe", 0)).__name__ == "TPESampler"
    assert type(make_sampler("nsga2", 0)).__name__ == "NSGAIISampler"
    with pytest.raises(ValueError, match="unknown sampler 'grid'"):
        search(tiny_data, "classify", trials=1, out=tmp_path / "bad", space=TINY_SPACE, sampler="grid")
    assert not (tmp_path / "bad" / "trials").exists()
    # random search: same seed, same points (the baseline bench_search.py compares against)
    points = []
    for run in ("a", "b"):
        search(tiny_data, "classify", trials=2, out=tmp_path / run, space=TINY_SPACE, seed=5, sampler="random")
        trials = json.loads((tmp_path / run / "trials.json").read_text())
        points.append([t["params"] for t in trials])
    assert points[0] == points[1] and len(points[0]) == 2


@pytest.mark.parametrize("pooling", ["last", "max"])
@pytest.mark.parametrize("vocab", [0, 40])
def test_latency_is_measured_for_token_and_pooled_models(tmp_path, pooling, vocab):
    from lstmlite.export.size import lsl_image
    from lstmlite.nn import SequenceClassifier
    from lstmlite.search.objectives import latency_us

    model = SequenceClassifier(vocab_size=vocab, input_size=0 if vocab else 5, embed_dim=8 if vocab else 0,
                               hidden_size=8, n_classes=3, pooling=pooling).eval()
    path = tmp_path / "m.lsl"
    path.write_bytes(lsl_image(model))
    value, kind = latency_us(path, model)
    assert kind == "measured" and 0 < value < 1e4


class _Clock:
    """A stand-in for time.perf_counter_ns: each timed call (start, end) lasts the next of
    ``durations`` ns, cycling -- so the figure latency_us should report is known by hand."""

    def __init__(self, durations):
        self.durations, self.now, self.calls = durations, 0, 0

    def perf_counter_ns(self):
        if self.calls % 2:
            self.now += self.durations[(self.calls // 2) % len(self.durations)]
        self.calls += 1
        return self.now


@pytest.mark.parametrize("pooling, per_step_us", [("last", 1.0), ("max", 1.0 / 64)])
def test_latency_is_the_median_step_in_microseconds(tmp_path, monkeypatch, pooling, per_step_us):
    """docs/search.md: latency_us is the median of Engine.step at B=1 in µs; a pooled
    classifier (which cannot stream) times a 64-step sequence and divides by 64. With a
    clock where two calls in three last 1000 ns and the third 50000 ns, the median is
    1000 ns = 1 µs per step (1/64 µs for the pooled model's 64-step sequence); the mean
    would be 17.3 µs. Catches the mean for the median, ns not divided by 1000, and the
    sequence's time not divided by its length."""
    from lstmlite.export.size import lsl_image
    from lstmlite.nn import SequenceClassifier
    from lstmlite.search import objectives

    model = SequenceClassifier(input_size=5, hidden_size=8, n_classes=3, pooling=pooling).eval()
    path = tmp_path / "m.lsl"
    path.write_bytes(lsl_image(model))
    clock = _Clock([1000, 1000, 50000])
    monkeypatch.setattr(objectives, "time", clock)
    value, kind = objectives.latency_us(path, model)
    assert kind == "measured" and value == pytest.approx(per_step_us)
    assert clock.calls == (2 * 300 if pooling == "last" else 2 * 30)  # 300 steps / 30 sequences timed


def test_max_vocab_and_pooling_are_searched_in_the_data_and_model_sections():
    from lstmlite.search.trial import build_config

    config = build_config({"cell": "gru", "max_vocab": 2000, "pooling": "max", "embed_dim": 8},
                          {"source": "t.txt", "max_vocab": 10000}, seed=0)
    assert config["data"]["max_vocab"] == 2000 and config["model"]["pooling"] == "max"
    assert "max_vocab" not in config["model"]


def test_best_breaks_validation_ties_by_loss_then_bytes():
    from lstmlite.search.study import best_key

    a = {"val_metric": 1.0, "val_loss": 0.20, "size_bytes": 500}
    b = {"val_metric": 1.0, "val_loss": 0.05, "size_bytes": 900}
    c = {"val_metric": 0.9, "val_loss": 0.01, "size_bytes": 100}
    assert max([a, b, c], key=best_key) is b
    assert max([a, {**b, "val_loss": 0.20}], key=best_key) is a  # same loss: fewer bytes
    assert max([a, c], key=lambda r: best_key(r, higher=False)) is c  # an error metric: lower wins
    # an unknown loss (NaN, or none recorded) ranks below any real loss at the same metric,
    # never above it (catches NaN mapped to -inf: the unknown loss then wins every tie)
    nan = {"val_metric": 1.0, "val_loss": float("nan"), "size_bytes": 100}
    missing = {"val_metric": 1.0, "size_bytes": 100}
    assert max([nan, a], key=best_key) is a and max([a, nan], key=best_key) is a
    assert max([missing, a], key=best_key) is a


def test_workers_racing_to_create_the_storage_schema_retry(monkeypatch, tmp_path):
    """Workers started together on a new database all create Optuna's tables; a loser
    of that race ("already exists") opens the storage again, any other database error
    is raised."""
    import optuna
    from sqlalchemy.exc import IntegrityError

    from lstmlite.search.study import _storage

    def race(message: str, losses: int):
        calls = []

        def fake(url, **kwargs):
            calls.append(url)
            if len(calls) <= losses:
                raise IntegrityError("CREATE TYPE studydirection", {}, Exception(message))
            return "storage"
        return calls, fake

    calls, fake = race('duplicate key value violates unique constraint "pg_type_typname_nsp_index"\n'
                       "DETAIL:  Key (typname, typnamespace)=(studydirection, 2200) already exists.", 2)
    monkeypatch.setattr(optuna.storages, "RDBStorage", fake)
    assert _storage("postgresql://x/db", tmp_path, 1) == "storage" and len(calls) == 3
    calls, fake = race("already exists", 5)  # still losing after every attempt: the error
    monkeypatch.setattr(optuna.storages, "RDBStorage", fake)
    with pytest.raises(IntegrityError):
        _storage("postgresql://x/db", tmp_path, 1)
    assert len(calls) == 5
    calls, fake = race("violates foreign key constraint", 1)  # another error: at once
    monkeypatch.setattr(optuna.storages, "RDBStorage", fake)
    with pytest.raises(IntegrityError):
        _storage("postgresql://x/db", tmp_path, 1)
    assert len(calls) == 1



@pytest.mark.filterwarnings("ignore:Argument ``heartbeat_interval``:optuna.exceptions.ExperimentalWarning")
def test_workers_creating_a_new_sqlite_study_at_once_all_open_it(tmp_path):
    """Four workers (threads) open the storage of the same new SQLite file at the same moment,
    ten times over: each opens it. SQLite's losers of the schema race fail on "table studies
    already exists" (an OperationalError, not PostgreSQL's ProgrammingError) or on "UNIQUE
    constraint failed: alembic_version.version_num" (Optuna's schema version row); before, both
    were raised (most of the 40 openings failed), not retried."""
    import threading

    from lstmlite.search.study import _storage

    errors = []
    for round_ in range(10):
        out = tmp_path / str(round_)
        out.mkdir()
        start = threading.Barrier(4)

        def open_it():
            start.wait()
            try:
                _storage(None, out, 1)
            except Exception as exc:  # noqa: BLE001 - each worker's error, checked below
                errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        workers = [threading.Thread(target=open_it) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert errors == []
    # the schema the winners made is whole: a study is created in the last file and read back
    import optuna

    url = f"sqlite:///{tmp_path / '9' / 'study.db'}"
    optuna.create_study(study_name="s", storage=url).set_user_attr("k", 1)
    assert optuna.load_study(study_name="s", storage=url).user_attrs == {"k": 1}


def test_a_worker_losing_the_schema_version_row_opens_the_storage_again(monkeypatch, tmp_path):
    """The error SQLite gives a worker whose schema version row another worker inserted first
    (made here for real: Optuna's alembic_version row inserted a second time) is retried, and the
    storage then opens on the real file; so is PostgreSQL's duplicate key of that row. Before,
    _storage retried only "already exists" and raised it."""
    import optuna
    import sqlalchemy
    from sqlalchemy.exc import IntegrityError

    from lstmlite.search.study import _storage

    real = optuna.storages.RDBStorage
    url = f"sqlite:///{tmp_path / 'study.db'}"
    real(url)
    engine = sqlalchemy.create_engine(url)
    with pytest.raises(IntegrityError) as lost, engine.begin() as db:
        (version,) = db.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).one()
        db.execute(sqlalchemy.text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": version})
    engine.dispose()
    assert "UNIQUE constraint failed: alembic_version.version_num" in str(lost.value)
    postgres = IntegrityError("INSERT INTO alembic_version", {}, Exception(
        'duplicate key value violates unique constraint "alembic_version_pkc"'))
    for error in (lost.value, postgres):
        calls = []

        def first_loses(url, **kwargs):
            calls.append(url)
            if len(calls) == 1:
                raise error
            return real(url, **kwargs)
        monkeypatch.setattr(optuna.storages, "RDBStorage", first_loses)
        storage = _storage(None, tmp_path, 1)
        assert len(calls) == 2 and isinstance(storage, real)


def _frozen(number, values, **attrs):
    from optuna.distributions import IntDistribution

    return optuna.trial.create_trial(values=values, params={"hidden_size": 4 * (number + 1)},
                                     distributions={"hidden_size": IntDistribution(4, 64)},
                                     user_attrs={"size_bytes": values[1], **attrs})


def test_pareto_front_holds_only_feasible_non_dominated_trials():
    from lstmlite.search.study import pareto_records

    study = optuna.create_study(directions=["maximize", "minimize", "minimize", "minimize"])
    study.add_trial(_frozen(0, [0.90, 2000, 50.0, 400], feasible=True))
    study.add_trial(_frozen(1, [0.99, 900, 10.0, 100], feasible=False))   # over the budget: never on the front
    study.add_trial(_frozen(2, [0.80, 1000, 40.0, 300], feasible=True))
    study.add_trial(_frozen(3, [0.80, 1000, 40.0, 350], feasible=True))   # dominated by 2 (more RAM only)
    study.add_trial(_frozen(4, [0.80, 1000, 40.0, 300], feasible=True))   # equal to 2: neither dominates
    assert [r["trial"] for r in pareto_records(study)] in ([2, 4, 0], [4, 2, 0])


def test_write_outputs_picks_the_best_of_the_feasible_front_and_copies_its_run(tmp_path):
    """write_outputs on a study of hand-made trials (docs/search.md, Output): the front is
    the feasible, non-dominated trials sorted by bytes (worked out by hand below), best is
    the highest validation metric on it and best/ is a copy of its run dir; trials.json
    lists every trial with its state (no per-epoch or constraint attributes); the count
    returned is of completed trials. Catches best chosen with min, the front unsorted,
    pruned trials counted, and best/ copied from another trial's run."""
    from optuna.distributions import IntDistribution
    from optuna.trial import TrialState

    from lstmlite.search.study import STUDY_NAME, write_outputs

    out = tmp_path / "s"
    out.mkdir()
    study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{out / 'study.db'}",
                                directions=["maximize", "minimize", "minimize", "minimize"])
    study.set_user_attr("budget", {"size": 2048})
    runs = {}
    for number, (values, feasible) in enumerate([
            ([0.95, 2000, 20.0, 200], True),   # 0: on the front, the best metric there
            ([0.90, 1000, 10.0, 100], True),   # 1: on the front, the smallest
            ([0.99, 500, 5.0, 50], False),     # 2: dominates both but is over the budget
            ([0.85, 1500, 30.0, 300], True)]): # 3: dominated by 1 (worse in every objective)
        run = tmp_path / f"run{number}"
        run.mkdir()
        (run / "which.txt").write_text(str(number))
        runs[number] = run
        study.add_trial(optuna.trial.create_trial(
            values=values, params={"hidden_size": 4 * (number + 1)},
            distributions={"hidden_size": IntDistribution(4, 64)},
            user_attrs={"val_metric": values[0], "val_loss": 0.1, "size_bytes": values[1], "latency_us": values[2],
                        "ram_bytes": values[3], "feasible": feasible, "run_dir": str(run), "val_epoch_1": 0.5,
                        "constraints": [values[1] - 2048]}))
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, params={"hidden_size": 8},
                                              distributions={"hidden_size": IntDistribution(4, 64)}))
    result = write_outputs(out, None)
    assert [r["trial"] for r in result["pareto"]] == [1, 0] and result["best"]["trial"] == 0
    assert result["trials"] == 4
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["objectives"] == ["metric", "size_bytes", "latency_us", "ram_bytes"]
    assert pareto["budget"] == {"size": 2048} and [r["trial"] for r in pareto["pareto"]] == [1, 0]
    assert pareto["best"]["trial"] == 0 and pareto["best"]["params"] == {"hidden_size": 4}
    assert (out / "best" / "which.txt").read_text() == "0"
    trials = json.loads((out / "trials.json").read_text())
    assert [(t["trial"], t["state"]) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE"),
                                                         (3, "COMPLETE"), (4, "PRUNED")]
    assert not any("val_epoch_1" in t or "constraints" in t for t in trials)


def test_best_dir_is_replaced_when_a_better_trial_comes(tmp_path):
    """write_outputs again after a better trial (as a resumed study's search ends): best/
    is a copy of the new best trial's run dir, nothing of the old one's left in it.
    Catches best/ kept once it exists (pareto.json naming trial 1, best/ still trial 0's
    model)."""
    from optuna.distributions import IntDistribution

    from lstmlite.search.study import STUDY_NAME, write_outputs

    out = tmp_path / "s"
    out.mkdir()
    study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{out / 'study.db'}",
                                directions=["maximize", "minimize", "minimize", "minimize"])

    def add(number, metric, files):
        run = tmp_path / f"run{number}"
        run.mkdir()
        for name in files:
            (run / name).write_text(str(number))
        study.add_trial(optuna.trial.create_trial(
            values=[metric, 1000, 10.0, 100], params={"hidden_size": 4},
            distributions={"hidden_size": IntDistribution(4, 64)},
            user_attrs={"val_metric": metric, "val_loss": 0.1, "size_bytes": 1000, "latency_us": 10.0,
                        "ram_bytes": 100, "feasible": True, "run_dir": str(run)}))
    add(0, 0.8, ["which.txt", "only_in_0.txt"])
    assert write_outputs(out, None)["best"]["trial"] == 0
    assert (out / "best" / "which.txt").read_text() == "0"
    add(1, 0.9, ["which.txt"])  # better in the metric, the same otherwise: trial 0 drops off the front
    assert write_outputs(out, None)["best"]["trial"] == 1
    assert json.loads((out / "pareto.json").read_text())["best"]["trial"] == 1
    assert sorted(f.name for f in (out / "best").iterdir()) == ["which.txt"]
    assert (out / "best" / "which.txt").read_text() == "1"


def test_a_trials_run_dir_left_from_before_is_cleared_before_it_trains(monkeypatch, tmp_path):
    """A trial whose run dir already exists (a retried trial's number, or a study started
    anew in an old --out) trains into an empty dir: the files there before are gone, so
    its run dir (and best/, copied from it) holds only its own run. Catches the old dir
    kept (run_trial writing over the stale files, leaving those it does not write)."""
    from lstmlite.search import study as study_module
    from lstmlite.search.space import load_space

    seen = []

    def fake_run_trial(point, data_config, run_dir, **kwargs):
        seen.append(sorted(f.name for f in run_dir.iterdir()) if run_dir.exists() else [])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "model.lsl").write_text("new")
        return {"val_metric": 0.9, "size_bytes": 100, "latency_us": 1.0, "ram_bytes": 10, "point": point,
                "run_dir": str(run_dir)}
    monkeypatch.setattr(study_module, "run_trial", fake_run_trial)
    stale = tmp_path / "trials" / "0000"
    stale.mkdir(parents=True)
    (stale / "model.lsl").write_text("old")
    (stale / "half_written.pt").write_text("old")
    objective = study_module._objective_factory(load_space(TINY_SPACE), {}, tmp_path, {}, 0, prune=False)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize", "minimize"])
    trial = study.ask()
    assert trial.number == 0
    objective(trial)
    assert seen == [[]]
    assert sorted(f.name for f in stale.iterdir()) == ["model.lsl"] and (stale / "model.lsl").read_text() == "new"


def test_a_trial_exactly_at_the_budget_is_feasible(monkeypatch, tmp_path):
    from lstmlite.search import study as study_module
    from lstmlite.search.space import load_space

    record = {"val_metric": 0.9, "size_bytes": 3072, "latency_us": 200.0, "ram_bytes": 1024, "point": {}}
    monkeypatch.setattr(study_module, "run_trial", lambda *a, **k: dict(record))
    objective = study_module._objective_factory(load_space(TINY_SPACE), {}, tmp_path, {"size": 3072, "ram": 1024,
                                                                                        "latency": 200.0}, 0)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize", "minimize"])
    trial = study.ask()
    assert objective(trial) == (0.9, 3072, 200.0, 1024)
    assert trial.user_attrs["feasible"] is True and trial.user_attrs["constraints"] == [0, 0, 0.0]
    trial = study.ask()
    monkeypatch.setattr(study_module, "run_trial", lambda *a, **k: {**record, "ram_bytes": 1025})
    objective(trial)
    assert trial.user_attrs["feasible"] is False  # one byte over



def test_two_workers_report_each_new_trial_once_in_the_parent(tiny_data, tmp_path):
    """With ``workers=2`` the progress callback (which spawned workers cannot be given: a
    closure does not pickle) is called in the parent for each trial the workers finish,
    once, and not for the trials a resumed study already had. Catches the silent
    multi-worker search (no line until the end) and trials reported twice."""
    out = tmp_path / "s"
    search(tiny_data, "classify", trials=1, out=out, space=TINY_SPACE)
    seen = []
    result = search(tiny_data, "classify", trials=3, out=out, space=TINY_SPACE, resume=True, workers=2,
                    on_trial=lambda study, trial: seen.append((trial.number, trial.state.is_finished())))
    numbers = [n for n, _ in seen]
    assert all(finished for _, finished in seen) and len(numbers) == len(set(numbers))
    trials = json.loads((out / "trials.json").read_text())
    finished = {t["trial"] for t in trials if t["state"] != "RUNNING"}
    assert set(numbers) == finished - {0}
    # --trials is the total: never one past it (test_trial_cap.py stages the race by hand)
    assert sum(t["state"] in ("COMPLETE", "PRUNED") for t in trials) == 3 and result["trials"] <= 3


def test_a_resumed_studys_earlier_trials_of_every_state_are_not_reported_again():
    """The parent's progress (workers > 1) skips every trial the resumed study already had,
    complete, pruned or failed, and reports each new one once. The study is made by hand
    (no worker process runs: _follow, given no live process, reads the storage once).
    Catches the earlier trials taken as only the complete ones (a resumed study's pruned
    and failed trials printed again as new), which the two-worker test, whose earlier
    trial completes, did not see."""
    from optuna.trial import TrialState

    from lstmlite.search.study import _finished, _follow

    study = optuna.create_study(directions=["maximize", "minimize", "minimize", "minimize"])
    for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        trial = study.ask()
        study.tell(trial, [0.5, 100.0, 1.0, 10.0] if state == TrialState.COMPLETE else None, state=state)
    study.ask()  # running when the search resumes (its worker's, or a stale one): reported once it finishes
    before = _finished(study)
    assert before == {0, 1, 2}
    new = study.ask()
    study.tell(new, state=TrialState.PRUNED)
    reported = []
    _follow([], study, lambda s, t: reported.append(t.number), before, every_s=0)
    assert reported == [new.number]


def test_best_dir_is_not_left_naming_an_older_trial_when_the_best_ran_elsewhere(tmp_path, caplog):
    """Workers on many machines share a study (--storage), each writing its own OUT: when
    the best trial ran on another machine its run dir is not here. best/ then must not
    stay the older trial's model while pareto.json names the new best: it is removed, with
    a warning naming the trial and where its run is. Before: best/ was silently kept
    (pareto.json's best trial 1, best/ trial 0's model)."""
    import logging

    from optuna.distributions import IntDistribution

    from lstmlite.search.study import STUDY_NAME, write_outputs

    out = tmp_path / "s"
    out.mkdir()
    study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{out / 'study.db'}",
                                directions=["maximize", "minimize", "minimize", "minimize"])

    def add(metric, run):
        study.add_trial(optuna.trial.create_trial(
            values=[metric, 1000, 10.0, 100], params={"hidden_size": 4},
            distributions={"hidden_size": IntDistribution(4, 64)},
            user_attrs={"val_metric": metric, "val_loss": 0.1, "size_bytes": 1000, "latency_us": 10.0,
                        "ram_bytes": 100, "feasible": True, "run_dir": str(run)}))
    here = tmp_path / "run0"
    here.mkdir()
    (here / "which.txt").write_text("0")
    add(0.8, here)
    write_outputs(out, None)
    assert (out / "best" / "which.txt").read_text() == "0"
    elsewhere = tmp_path / "other-machine" / "trials" / "0001"  # never made here
    add(0.9, elsewhere)
    with caplog.at_level(logging.WARNING, logger="lstmlite.search.study"):
        result = write_outputs(out, None)
    assert result["best"]["trial"] == 1 and result["best"]["run_dir"] == str(elsewhere)
    assert not (out / "best").exists()
    assert any("trial 1" in r.getMessage() and str(elsewhere) in r.getMessage() for r in caplog.records)


def _fake_run_trial(fail_first: bool, fail_all: bool = False):
    """A stand-in for run_trial that writes its run dir like the real one (``model.lsl``
    naming the attempt); with ``fail_first`` its first call raises after writing, with
    ``fail_all`` every call does."""
    calls = []

    def fake(point, data_config, run_dir, **kwargs):
        calls.append(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "model.lsl").write_text(f"attempt {len(calls)}")
        if fail_all or (fail_first and len(calls) == 1):
            raise RuntimeError("injected: the trial fails after writing its run dir")
        return {"val_metric": 0.9, "val_loss": 0.1, "size_bytes": 100, "latency_us": 1.0, "ram_bytes": 10,
                "point": point, "run_dir": str(run_dir)}
    return fake


def _run_dirs_agree_with_trials_json(out):
    """Each ``trials/NNNN`` dir is the run dir trials.json gives its trial, which completed."""
    trials = {t["trial"]: t for t in json.loads((out / "trials.json").read_text())}
    for path in (out / "trials").iterdir():
        if path.name.isdigit():
            record = trials[int(path.name)]
            assert record["state"] == "COMPLETE" and record["run_dir"] == str(path), (path, record)


def test_a_failed_trials_run_dir_is_set_aside_not_left_under_its_number(monkeypatch, tiny_data, tmp_path, caplog):
    """A trial that raises after writing its run dir fails (trials.json: FAIL, its error, no
    run dir); what it wrote is renamed ``trials/NNNN.failed``, with a warning, so
    ``trials/NNNN/`` never holds a model that no report counts. Before: ``trials/0000/``
    stayed, holding the failed attempt's model.lsl beside trials.json's FAIL for trial 0.
    And the failed trial is replaced: ``trials=2`` on the one (default) worker ends with 2
    complete trials. Before: optimize(n_trials=2) counted the failure and the search ended
    with 1 complete (docs/search.md says a failed trial is replaced)."""
    import logging

    from lstmlite.search import study as study_module

    monkeypatch.setattr(study_module, "run_trial", _fake_run_trial(fail_first=True))
    out = tmp_path / "s"
    with caplog.at_level(logging.WARNING, logger="lstmlite.search.study"):
        result = search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE)
    trials = json.loads((out / "trials.json").read_text())
    assert [(t["trial"], t["state"]) for t in trials] == [(0, "FAIL"), (1, "COMPLETE"), (2, "COMPLETE")]
    assert result["trials"] == 2
    assert trials[0]["error"] == "RuntimeError: injected: the trial fails after writing its run dir"
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000.failed", "0001", "0002"]
    assert (out / "trials" / "0000.failed" / "model.lsl").read_text() == "attempt 1"
    assert (out / "trials" / "0001" / "model.lsl").read_text() == "attempt 2"
    assert (out / "trials" / "0002" / "model.lsl").read_text() == "attempt 3"
    _run_dirs_agree_with_trials_json(out)
    assert sum("trial 0 failed" in r.getMessage() and "0000.failed" in r.getMessage() for r in caplog.records) == 1


def test_a_dead_workers_trial_is_retried_and_its_run_dir_set_aside(monkeypatch, tiny_data, tmp_path, caplog):
    """A worker that dies mid-trial leaves its trial RUNNING and half a run dir. Another
    worker sees the heartbeat stale, fails the trial and Optuna re-queues its parameters as
    a trial with a new number, which runs in its own dir: the dead attempt's dir is set
    aside as ``NNNN.failed`` (the warning names the retry). Before: ``trials/0000/`` kept
    the dead attempt's half-written files while trials.json said trial 0 FAIL."""
    import logging
    import time

    from lstmlite.search import study as study_module
    from lstmlite.search.space import load_space

    out = tmp_path / "s"
    out.mkdir()
    study = study_module.open_study(out, None, 0, True, heartbeat=1)
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna: heartbeats are optimize()'s
        trial = study.ask()  # the dead worker's trial: sampled, one heartbeat, then nothing
    point = load_space(TINY_SPACE).sample(trial)
    study._storage.record_heartbeat(trial._trial_id)
    dead = out / "trials" / "0000"
    dead.mkdir(parents=True)
    (dead / "model.lsl").write_text("half")
    time.sleep(2.5)  # past the grace period (2 heartbeats)
    monkeypatch.setattr(study_module, "run_trial", _fake_run_trial(fail_first=False))
    with caplog.at_level(logging.WARNING, logger="lstmlite.search.study"):
        search(tiny_data, "classify", trials=1, out=out, space=TINY_SPACE, resume=True, heartbeat=1)
    trials = {t["trial"]: t for t in json.loads((out / "trials.json").read_text())}
    assert trials[0]["state"] == "FAIL" and trials[1]["state"] == "COMPLETE"
    assert trials[1]["params"] == {k: point[k] for k in TINY_SPACE["params"]}  # the retry: the same point
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000.failed", "0001"]
    assert (out / "trials" / "0000.failed" / "model.lsl").read_text() == "half"
    _run_dirs_agree_with_trials_json(out)
    assert any("trial 0 failed" in r.getMessage() and "retried as trial 1" in r.getMessage() for r in caplog.records)


def test_a_retried_trial_holds_none_of_the_dead_attempts_figures(monkeypatch, tiny_data, tmp_path):
    """Optuna re-queues a dead worker's trial with the dead attempt's user attributes. The
    attempt here died after two epochs and after its figures were recorded (``val_epoch_1``,
    ``val_epoch_2``, ``val_metric``, bytes, its run dir); the retry is pruned after epoch 1.
    Its record must hold only what it measured: epoch 1's score, no epoch 2 (which it never
    ran) and no final figures. Before: the retry kept ``val_epoch_2`` = 0.95 in the study,
    and trials.json showed the dead attempt's val_metric, size and run dir beside PRUNED."""
    import time

    from lstmlite.search import study as study_module
    from lstmlite.search.space import load_space

    out = tmp_path / "s"
    out.mkdir()
    study = study_module.open_study(out, None, 0, True, heartbeat=1)
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna: heartbeats are optimize()'s
        dead = study.ask()
    load_space(TINY_SPACE).sample(dead)
    dead_figures = {"val_epoch_1": 0.9, "val_epoch_2": 0.95, "val_metric": 0.95, "size_bytes": 123,
                    "run_dir": str(out / "trials" / "0000"), "feasible": True}
    for key, value in dead_figures.items():
        dead.set_user_attr(key, value)
    study._storage.record_heartbeat(dead._trial_id)
    time.sleep(2.5)  # past the grace period (2 heartbeats)

    def pruned_after_epoch_1(point, data_config, run_dir, report=None, **kwargs):
        report(1, 0.5)
        raise study_module.Pruned("stopped here after epoch 1")
    monkeypatch.setattr(study_module, "run_trial", pruned_after_epoch_1)
    search(tiny_data, "classify", trials=1, out=out, space=TINY_SPACE, resume=True, heartbeat=1)
    after = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{out / 'study.db'}")
    retry = after.trials[1]
    assert [t.state.name for t in after.trials] == ["FAIL", "PRUNED"]
    assert retry.system_attrs.get("retry_history") == [0]  # it is the dead trial's retry
    assert retry.user_attrs == {"val_epoch_1": 0.5}
    trials = {t["trial"]: t for t in json.loads((out / "trials.json").read_text())}
    assert trials[1] == {"trial": 1, "params": trials[0]["params"], "state": "PRUNED"}
    assert json.loads((out / "pareto.json").read_text())["pareto"] == []


def test_a_trial_that_fails_every_time_stops_the_search_with_its_error(monkeypatch, tiny_data, tmp_path, capsys):
    """Failed trials are replaced, but not for ever: when every trial raises, the search
    stops after MAX_FAILURES_IN_A_ROW (10) of them with TrialsFailed naming the first one's
    error and where its run dir went, the outputs written. Catches an endless loop (the cap
    counts complete and pruned trials only: an 11th trial fails the test) and a guard that
    stops early or says nothing of the cause."""
    from lstmlite.search import TrialsFailed
    from lstmlite.search import study as study_module

    def failing_ten_times():
        fake = _fake_run_trial(fail_first=False, fail_all=True)
        calls = []

        def at_most_ten(point, data_config, run_dir, **kwargs):
            calls.append(run_dir)
            if len(calls) > 10:  # pytest's Failed is no Exception: optimize() does not catch it
                pytest.fail("an 11th trial: the search did not stop")
            return fake(point, data_config, run_dir, **kwargs)
        return at_most_ten
    monkeypatch.setattr(study_module, "run_trial", failing_ten_times())
    out = tmp_path / "s"
    with pytest.raises(TrialsFailed) as caught:
        search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE)
    first = out / "trials" / "0000.failed"
    assert str(caught.value) == (
        f"search stopped: 10 trials in a row failed (trials 0 to 9); trial 0 failed with RuntimeError: injected: "
        f"the trial fails after writing its run dir; what it wrote is in {first}; the log above has each "
        f"failure's traceback and {out / 'trials.json'} each trial's error")
    assert (first / "model.lsl").read_text() == "attempt 1"
    trials = json.loads((out / "trials.json").read_text())
    assert [t["state"] for t in trials] == ["FAIL"] * 10
    # through the CLI: one line, the same words
    monkeypatch.setattr(study_module, "run_trial", failing_ten_times())
    capsys.readouterr()
    code = main(["search", "--data", tiny_data, "--task", "classify", "--trials", "2", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("lstmlite search: error: search stopped: 10 trials "
                                            "in a row failed (trials 0 to 9); trial 0 failed with RuntimeError: ")


def test_a_trial_that_fails_sometimes_is_replaced_and_the_count_starts_again(monkeypatch, tiny_data, tmp_path):
    """Failures that a completed trial interrupts do not stop the search: 9 failures, a
    success, 9 failures, a success (18 failed trials, never 10 in a row) end with the 2
    complete trials asked for. Catches a guard counting all failures, not those in a row."""
    from lstmlite.search import study as study_module

    calls = []

    def fake(point, data_config, run_dir, **kwargs):
        calls.append(run_dir.name)
        if len(calls) % 10:
            raise RuntimeError(f"injected failure {len(calls)}")
        return {"val_metric": 0.9, "val_loss": 0.1, "size_bytes": 100, "latency_us": 1.0, "ram_bytes": 10,
                "point": point, "run_dir": str(run_dir)}
    monkeypatch.setattr(study_module, "run_trial", fake)
    out = tmp_path / "s"
    assert search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE)["trials"] == 2
    states = [t["state"] for t in json.loads((out / "trials.json").read_text())]
    assert states == (["FAIL"] * 9 + ["COMPLETE"]) * 2


@pytest.mark.parametrize("error", [KeyError("size_bytes"), TypeError("unsupported operand"),
                                   OSError(28, "No space left on device")], ids=lambda e: type(e).__name__)
def test_a_trial_raising_any_exception_fails_and_is_replaced(monkeypatch, tiny_data, tmp_path, error):
    """A trial that raises something other than ValueError/RuntimeError (a bug's KeyError or
    TypeError, a full disk's OSError) is a failed trial like any other: recorded with its error
    and replaced, the search ending with the trials asked for. Before, optimize() caught only
    ValueError and RuntimeError, so the error ended a one-worker search at once."""
    from lstmlite.search import study as study_module

    calls = []

    def fails_once(point, data_config, run_dir, **kwargs):
        calls.append(run_dir.name)
        if len(calls) == 1:
            raise error
        return {"val_metric": 0.9, "val_loss": 0.1, "size_bytes": 100, "latency_us": 1.0, "ram_bytes": 10,
                "point": point, "run_dir": str(run_dir)}
    monkeypatch.setattr(study_module, "run_trial", fails_once)
    out = tmp_path / "s"
    assert search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE)["trials"] == 2
    trials = json.loads((out / "trials.json").read_text())
    assert [t["state"] for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[0]["error"] == f"{type(error).__name__}: {error}"
    assert calls == ["0000", "0001", "0002"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_in_a_trial_stops_the_search_at_once(monkeypatch, tiny_data, tmp_path, stop):
    """Ctrl-C (KeyboardInterrupt) or sys.exit (SystemExit) in a trial is no failed trial to
    replace: it leaves search() at once, with no second trial run; and each worker of a
    several-worker search (study._worker, what every worker process runs) stops the same way."""
    from lstmlite.search import study as study_module

    calls = []

    def interrupted(point, data_config, run_dir, **kwargs):
        calls.append(run_dir.name)
        raise stop()
    monkeypatch.setattr(study_module, "run_trial", interrupted)
    with pytest.raises(stop):
        search(tiny_data, "classify", trials=3, out=tmp_path / "s", space=TINY_SPACE)
    assert calls == ["0000"]
    (tmp_path / "w").mkdir()
    study_module.open_study(tmp_path / "w", None, 0, True, resume=True, heartbeat=1, sampler="random")
    args = {"out": str(tmp_path / "w"), "storage": None, "seed": 0, "worker": 1, "higher": True, "heartbeat": 1,
            "sampler": "random", "space": TINY_SPACE, "data_config": {}, "budget": {}, "prune": False,
            "trials": 3, "timeout": 60.0}
    with pytest.raises(stop):
        study_module._worker(args)
    assert calls == ["0000", "0000"]


def test_a_search_resumed_after_failures_stopped_it_counts_only_its_own(monkeypatch, tiny_data, tmp_path):
    """A search stopped by 10 failed trials in a row, resumed once the cause is fixed, runs:
    the 10 failures before it are the earlier search's, not the resumed one's, so the resumed
    search trains the 2 trials asked for (trials 10 and 11) instead of stopping at once on
    the old failures with the same TrialsFailed."""
    from lstmlite.search import TrialsFailed
    from lstmlite.search import study as study_module

    out = tmp_path / "s"
    monkeypatch.setattr(study_module, "run_trial", _fake_run_trial(fail_first=False, fail_all=True))
    with pytest.raises(TrialsFailed):
        search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE)
    monkeypatch.setattr(study_module, "run_trial", _fake_run_trial(fail_first=False))
    assert search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE, resume=True)["trials"] == 2
    trials = json.loads((out / "trials.json").read_text())
    assert [t["state"] for t in trials] == ["FAIL"] * 10 + ["COMPLETE"] * 2
    assert sorted(p.name for p in (out / "trials").iterdir()) == [f"{n:04d}.failed" for n in range(10)] + ["0010",
                                                                                                       "0011"]


def test_trials_failing_before_they_write_anything_stop_the_search_saying_so(monkeypatch, tiny_data, tmp_path):
    """When the trials that stop the search fail before writing their run dir (a bad data
    config, say), TrialsFailed says the first one wrote none rather than pointing to a
    ``trials/0000.failed`` that does not exist."""
    from lstmlite.search import TrialsFailed
    from lstmlite.search import study as study_module

    def fails_at_once(point, data_config, run_dir, **kwargs):
        raise ValueError("injected: no data")
    monkeypatch.setattr(study_module, "run_trial", fails_at_once)
    out = tmp_path / "s"
    with pytest.raises(TrialsFailed) as caught:
        search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE)
    assert str(caught.value) == (
        f"search stopped: 10 trials in a row failed (trials 0 to 9); trial 0 failed with ValueError: injected: "
        f"no data; it wrote no run dir; the log above has each failure's traceback and {out / 'trials.json'} each "
        f"trial's error")
    assert not (out / "trials").exists() or list((out / "trials").iterdir()) == []


def test_a_failed_trials_run_dir_replaces_one_set_aside_by_an_older_study(monkeypatch, tiny_data, tmp_path):
    """A study started anew in an old --out (its study.db removed; --resume, since the folder
    holds a search's results) whose trial 0 fails again:
    the older ``trials/0000.failed`` is replaced by this attempt's, so ``trials/0000/`` is
    left holding no failed run. Without the replacement the rename fails on the existing dir
    and ``trials/0000/`` keeps the failed attempt's model beside trials.json's FAIL."""
    from lstmlite.search import study as study_module

    out = tmp_path / "s"
    older = out / "trials" / "0000.failed"
    older.mkdir(parents=True)
    (older / "model.lsl").write_text("an older study's attempt")
    monkeypatch.setattr(study_module, "run_trial", _fake_run_trial(fail_first=True))
    assert search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE, resume=True)["trials"] == 2
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000.failed", "0001", "0002"]
    assert (older / "model.lsl").read_text() == "attempt 1"
    _run_dirs_agree_with_trials_json(out)


def test_a_pruned_trials_run_dir_is_set_aside_as_pruned_not_failed(monkeypatch, tiny_data, tmp_path, caplog):
    """A pruned trial is no failure (trials.json: PRUNED, counted towards --trials): what it
    wrote before it was pruned is not renamed ``NNNN.failed`` and no warning calls it
    failed; it is renamed ``NNNN.pruned``, so ``trials/NNNN/`` holds only completed trials,
    each the run dir trials.json names. Before: ``trials/0000/`` stayed, holding the pruned
    attempt's model.lsl while trials.json named no run dir for trial 0."""
    import logging

    from lstmlite.search import study as study_module

    calls = []

    def pruned_first(point, data_config, run_dir, **kwargs):
        calls.append(run_dir.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "model.lsl").write_text(f"attempt {len(calls)}")
        if len(calls) == 1:
            raise study_module.Pruned("stopped after epoch 1")
        return {"val_metric": 0.9, "val_loss": 0.1, "size_bytes": 100, "latency_us": 1.0, "ram_bytes": 10,
                "point": point, "run_dir": str(run_dir)}
    monkeypatch.setattr(study_module, "run_trial", pruned_first)
    out = tmp_path / "s"
    with caplog.at_level(logging.WARNING, logger="lstmlite.search.study"):
        search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE)
    assert [t["state"] for t in json.loads((out / "trials.json").read_text())] == ["PRUNED", "COMPLETE"]
    assert not any("failed" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000.pruned", "0001"]
    assert (out / "trials" / "0000.pruned" / "model.lsl").read_text() == "attempt 1"
    _run_dirs_agree_with_trials_json(out)


def test_a_trial_whose_worker_keeps_dying_is_retried_twice_then_left(tmp_path):
    """The retry of a dead worker's trial drops the dead attempt's user attributes but keeps
    its retry history, so a point that kills its worker every time (out of memory, say) is
    retried twice (max_retry=2) and then left, not retried for ever: trial 0 dies, its retry
    1 (history [0]) dies, its retry 2 (history [0, 1]) dies, and no trial 3 is queued. The
    callback is the one the study's storage calls on a stale trial; the queued trials are
    read back from Optuna's storage."""
    from optuna.trial import TrialState

    from lstmlite.search import study as study_module

    study = study_module.open_study(tmp_path, None, 0, True, heartbeat=1)
    retry = study._storage.get_heartbeat_stale_trial_callback()
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, params={"x": 1.0},
                                              distributions={"x": optuna.distributions.FloatDistribution(0, 2)},
                                              user_attrs={"val_epoch_1": 0.9}))
    for number in range(3):
        retry(study, study.trials[number])  # trial `number`'s worker died
    trials = study.trials
    assert len(trials) == 3, [t.system_attrs for t in trials]
    assert [t.system_attrs.get("retry_history") for t in trials] == [None, [0], [0, 1]]
    assert [t.user_attrs for t in trials] == [{"val_epoch_1": 0.9}, {}, {}]
    assert [t.params for t in trials] == [{"x": 1.0}] * 3


def test_each_set_aside_warning_names_that_trials_own_retry(tmp_path, caplog):
    """Trial 0's worker died, its retry 1 died too, retry 2 completed: trial 0's warning
    names retry 1 and trial 1's names retry 2 (each retry's ``retry_history`` ends with the
    trial it retries), and both dead attempts' dirs are set aside."""
    import logging

    from optuna.trial import TrialState

    from lstmlite.search import study as study_module

    study = study_module.open_study(tmp_path, None, 0, True, heartbeat=1)
    x = {"x": optuna.distributions.FloatDistribution(0, 2)}
    for state, history in [(TrialState.FAIL, None), (TrialState.FAIL, [0]), (TrialState.COMPLETE, [0, 1])]:
        attrs = {} if history is None else {"retry_history": history, "failed_trial": 0}
        study.add_trial(optuna.trial.create_trial(state=state, params={"x": 1.0}, distributions=x,
                                                  values=None if state == TrialState.FAIL else [0.5, 1, 1, 1],
                                                  system_attrs=attrs))
    for number in range(3):
        (tmp_path / "trials" / f"{number:04d}").mkdir(parents=True)
    with caplog.at_level(logging.WARNING, logger="lstmlite.search.study"):
        study_module._set_aside_runs(tmp_path, study.get_trials(deepcopy=False))
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["0000.failed", "0001.failed", "0002"]
    warnings = sorted(r.getMessage() for r in caplog.records)
    assert len(warnings) == 2 and warnings[0].startswith("trial 0 failed") and warnings[1].startswith("trial 1 failed")
    assert warnings[0].endswith("retried as trial 1") and warnings[1].endswith("retried as trial 2"), warnings


def test_a_failed_trials_run_dir_is_set_aside_before_a_later_interrupt(monkeypatch, tiny_data, tmp_path):
    """Trial 0 fails after writing its run dir, then Ctrl-C stops trial 1: search() raises
    without writing its outputs, yet trial 0's dir is already ``trials/0000.failed`` (set
    aside as soon as the worker looks for room for the next trial), not left under its number."""
    from lstmlite.search import study as study_module

    fake = _fake_run_trial(fail_first=True)
    calls = []

    def fails_then_interrupted(point, data_config, run_dir, **kwargs):
        calls.append(run_dir.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fake(point, data_config, run_dir, **kwargs)
    monkeypatch.setattr(study_module, "run_trial", fails_then_interrupted)
    out = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        search(tiny_data, "classify", trials=2, out=out, space=TINY_SPACE)
    assert calls == ["0000", "0001"]
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000.failed"]
    assert (out / "trials" / "0000.failed" / "model.lsl").read_text() == "attempt 1"


def test_a_worker_process_logs_as_the_process_that_started_the_search() -> None:
    """A spawned worker starts with no logging handler, and lstmlite's NullHandler keeps
    Python's last-resort one quiet, so a worker's lstmlite warnings were lost. The parent's
    setup (the CLI's basicConfig: level and format) goes to each worker, which logs with it;
    both halves run in fresh interpreters, as the parent and a spawned worker are. Catches
    the setup not passed on, or passed and not applied by _worker_process."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import lstmlite

    env = {**os.environ, "PYTHONPATH": str(Path(lstmlite.__file__).parents[1])}
    parent = ("import json, logging; from lstmlite.search.study import _logging_setup; "
              "logging.basicConfig(level=logging.INFO, format='W %(levelname)s %(name)s: %(message)s'); "
              "print(json.dumps(_logging_setup()))")
    setup = json.loads(subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, env=env,
                                      timeout=120, check=True).stdout.splitlines()[-1])
    assert setup == {"level": 20, "format": "W %(levelname)s %(name)s: %(message)s"}
    worker = ("import json, logging, sys; import lstmlite.search.study as S; "
              "log = logging.getLogger('lstmlite.search.study'); "
              "S._worker = lambda args: (log.warning('from the worker'), log.debug('not shown')); "
              "S._worker_process({'logging': json.loads(sys.argv[1])})")
    err = subprocess.run([sys.executable, "-c", worker, json.dumps(setup)], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stderr
    assert "W WARNING lstmlite.search.study: from the worker" in err and "not shown" not in err


def test_the_best_of_an_error_metric_is_the_least_error(tmp_path):
    """Two feasible trials both on the front (one more accurate, one smaller) of a
    lower-is-better metric (MAE): best/ is the one with the least error, trial 0. Only a
    whole search on noisy latencies could notice the direction dropped (2 runs in 6)."""
    from optuna.distributions import CategoricalDistribution

    from lstmlite.search.study import open_study, write_outputs

    study = open_study(tmp_path, None, 0, metric_higher=False)
    for mae, size in ((0.2, 2000), (0.5, 1000)):
        attrs = {"val_metric": mae, "size_bytes": size, "latency_us": 5.0, "ram_bytes": 100, "feasible": True,
                 "run_dir": str(tmp_path / "none"), "metric_name": "mae"}
        study.add_trial(optuna.trial.create_trial(values=[mae, size, 5.0, 100], user_attrs=attrs,
                                                  params={"lr": 0.01},
                                                  distributions={"lr": CategoricalDistribution([0.01])}))
    result = write_outputs(tmp_path, None, 0, higher=False)
    assert len(result["pareto"]) == 2
    assert result["best"]["trial"] == 0 and result["best"]["val_metric"] == 0.2
