"""Stopping hopeless trials: the pure rules (pruning.py) against hand-made cases, the
premise they rest on (a model's file size, RAM are known before training), and a study
that skips points over the budget and records them as infeasible."""

import json

import pytest

from lstmlite.search import search
from lstmlite.search.pruning import (
    LATENCY_SLACK, MARGIN, SIZE_SLACK, dominated_at_epoch, first_check_epoch, over_budget,
)
from lstmlite.search.trial import run_trial

from .conftest import TINY_SPACE

ME = {"size_bytes": 1000, "ram_bytes": 400, "latency_us": 2.0}


def _done(trial=1, size=900, ram=300, lat=1.5, val=0.9, epoch=3, feasible=True, final=None):
    return {"trial": trial, "size_bytes": size, "ram_bytes": ram, "latency_us": lat, "feasible": feasible,
            "val_epochs": {str(epoch): val}, "val_metric": val if final is None else final}


def test_dominated_only_when_smaller_leaner_faster_and_better_by_the_margin():
    assert dominated_at_epoch(0.7, 3, ME, [_done(val=0.7 + MARGIN)]) == 1
    assert dominated_at_epoch(0.7, 3, ME, [_done(val=0.7 + MARGIN / 2)]) is None  # within the margin
    assert dominated_at_epoch(0.7, 3, ME, [_done(size=1001)]) is None            # larger file
    # "as small, as lean": equal bytes and RAM count (catches <= written as <)
    assert dominated_at_epoch(0.7, 3, ME, [_done(size=1000, ram=400)]) == 1
    assert dominated_at_epoch(0.7, 3, ME, [_done(ram=401)]) is None              # more RAM
    assert dominated_at_epoch(0.7, 3, ME, [_done(lat=2.0 * LATENCY_SLACK + 0.01)]) is None  # slower
    assert dominated_at_epoch(0.7, 3, ME, [_done(lat=2.0 * LATENCY_SLACK - 0.01)]) == 1     # noise allowed
    assert dominated_at_epoch(0.7, 3, ME, [_done(epoch=4)]) is None              # not the same fidelity
    assert dominated_at_epoch(0.7, 3, ME, [_done(feasible=False)]) is None       # over budget: not a rival
    assert dominated_at_epoch(0.7, 3, ME, [_done(final=0.71)]) is None           # it ended no better
    # an error metric: lower is better
    assert dominated_at_epoch(0.30, 3, ME, [_done(val=0.25)], higher=False) == 1
    assert dominated_at_epoch(0.30, 3, ME, [_done(val=0.35)], higher=False) is None
    assert dominated_at_epoch(0.5, 3, ME, [_done(val=0.5 - MARGIN)], higher=False) == 1   # exactly the margin
    assert dominated_at_epoch(0.5, 3, ME, [_done(val=0.5 - MARGIN / 2)], higher=False) is None
    assert dominated_at_epoch(0.30, 3, ME, [_done(val=0.25, final=0.29)], higher=False) is None  # ended no better
    assert dominated_at_epoch(0.7, 3, ME, [_done(trial=4, size=2000), _done(trial=7)]) == 7


def test_over_budget_trusts_files_and_allows_latency_noise():
    measured = {"size_bytes": 3000, "size_kind": "lsl", "latency_us": 105.0, "latency_kind": "measured",
                "ram_bytes": 100}
    assert over_budget(measured, {"size": 2048}) == ["size 3000 > 2048"]
    assert over_budget(measured, {"size": 2900}) == []  # within SIZE_SLACK: training decides
    assert 3000 <= 2900 * SIZE_SLACK
    assert over_budget(measured, {"size": 4096, "ram": 64}) == ["ram 100 > 64"]
    assert over_budget(measured, {"latency": 100.0}) == []  # within the 10 % slack
    assert over_budget(measured, {"latency": 90.0}) == ["latency 105 > 90"]
    assert over_budget({**measured, "size_kind": "estimated"}, {"size": 2048}) == []  # no file: not trusted
    assert over_budget({**measured, "latency_kind": "mac-model"}, {"latency": 1.0}) == []
    assert first_check_epoch(20) == 10 and first_check_epoch(4) == 2


@pytest.mark.parametrize("point", [
    {"cell": "lstm", "hidden_size": 12, "weight_bits": 8, "sparsity": 0.5},
    {"cell": "fastgrnn", "hidden_size": 8, "weight_bits": 4, "qat": True},
    {"cell": "gru", "hidden_size": 8},
])
def test_the_size_known_before_training_is_the_trained_files(tiny_data, tmp_path, point):
    seen = {}

    def keep(profile):
        seen.update(profile)
        return None  # train it

    record = run_trial({**point, "epochs": 2, "lr": 0.02}, {"source": tiny_data, "task": "classify"},
                       tmp_path / "t", skip_if=keep)
    assert seen["size_kind"] == record["size_kind"] == "lsl"
    assert record["size_bytes"] == (tmp_path / "t" / "model.lsl").stat().st_size
    # zero codes of the trained weights may change a bitmask by a few bytes: within SIZE_SLACK
    assert abs(seen["size_bytes"] - record["size_bytes"]) <= (SIZE_SLACK - 1) * record["size_bytes"]
    # RAM: the C project's (weights do not change it), the same number before and after training
    assert seen["ram_bytes"] == record["ram_bytes"] and seen["ram_kind"] == record["ram_kind"] == "mcu-export"


def test_points_over_the_size_budget_are_not_trained_and_count_as_infeasible(tiny_data, tmp_path):
    space = {**TINY_SPACE, "params": {**TINY_SPACE["params"], "hidden_size": {"low": 4, "high": 32, "step": 4}}}
    out = tmp_path / "s"
    search(tiny_data, "classify", budget="size=900", trials=8, out=out, space=space, seed=3)
    trials = json.loads((out / "trials.json").read_text())
    skipped = [t for t in trials if t.get("skipped")]
    trained = [t for t in trials if not t.get("skipped") and t["state"] == "COMPLETE"]
    assert skipped and trained  # the space straddles the budget
    for t in skipped:
        assert t["size_bytes"] > 900 * SIZE_SLACK and not t["feasible"] and "size" in t["skipped"]
        assert not (out / "trials" / f"{t['trial']:04d}").exists() and t["test_metric"] is None
    for t in trained:
        assert (out / "trials" / f"{t['trial']:04d}" / "model.lsl").stat().st_size == t["size_bytes"]
    pareto = json.loads((out / "pareto.json").read_text())
    assert all(not r.get("skipped") for r in pareto["pareto"])
    # without pruning every point is trained
    search(tiny_data, "classify", budget="size=900", trials=3, out=tmp_path / "full", space=space, seed=3,
           prune=False)
    assert not any(t.get("skipped") for t in json.loads((tmp_path / "full" / "trials.json").read_text()))


def test_a_study_feeds_the_rule_every_completed_trials_epochs(tiny_data, tmp_path):
    import optuna

    from lstmlite.search.study import _completed_records

    space = {"params": {"cell": {"choices": ["lstm", "gru"]}, "hidden_size": {"low": 4, "high": 16, "step": 4}},
             "fixed": {"epochs": 6, "lr": 0.03}}
    out = tmp_path / "s"
    search(tiny_data, "classify", trials=5, out=out, space=space, seed=0)
    study = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{out / 'study.db'}")
    records = _completed_records(study)
    assert records and all(set(r["val_epochs"]) == {str(e) for e in range(1, 7)} for r in records)
    states = {t["state"] for t in json.loads((out / "trials.json").read_text())}
    assert states <= {"COMPLETE", "PRUNED"}


def test_over_budget_only_past_the_limit():
    at = {"size_bytes": 2048, "size_kind": "lsl", "latency_us": 100.0, "latency_kind": "measured", "ram_bytes": 64}
    assert over_budget(at, {"size": 2048, "ram": 64, "latency": 100.0}) == []  # at the limit is within it
    assert over_budget({**at, "ram_bytes": 65}, {"ram": 64}) == ["ram 65 > 64"]
    # an estimated RAM (no C export) is what the record's budget check holds too: it counts
    assert over_budget({**at, "ram_bytes": 65, "ram_kind": "estimated"}, {"ram": 64}) == ["ram 65 > 64"]


@pytest.mark.parametrize("epochs, first", [(1, 2), (3, 2), (4, 2), (5, 2), (6, 3), (7, 3), (20, 10)])
def test_first_check_epoch_is_half_the_epochs_and_never_before_epoch_two(epochs, first):
    """docs/search.md: a trial may be stopped "from half of the epochs on", and never on its
    first epoch's curve alone (max(2, epochs // 2)). Catches the floor of 2 lowered to 1
    (a 3-epoch trial judged after epoch 1) and half rounded up."""
    assert first_check_epoch(epochs) == first


def _objective_with_curve(monkeypatch, tmp_path, curve, rival_epochs, prune_below=None, prune=True, higher=True,
                          bars=None):
    """The study's objective on a fake trial reporting ``curve`` (epoch -> val metric) for a
    point larger, hungrier and slower than a completed, feasible rival whose per-epoch
    metric is ``rival_epochs``; ``higher``: the metric's direction; ``bars``: study
    attributes to set. Returns (epochs reported without being stopped, outcome)."""
    import optuna
    from optuna.distributions import IntDistribution

    from lstmlite.search import study as study_module
    from lstmlite.search.space import load_space

    seen = []

    def fake_run_trial(point, data_config, out, seed=0, report=None, skip_if=None):
        if skip_if is not None:
            assert skip_if({"size_bytes": 1000, "size_kind": "lsl", "latency_us": 5.0, "latency_kind": "measured",
                            "ram_bytes": 400}) is None
        for epoch, value in curve.items():
            report(epoch, value)
            seen.append(epoch)
        return {"val_metric": curve[max(curve)], "size_bytes": 1000, "latency_us": 5.0, "ram_bytes": 400,
                "point": point}

    monkeypatch.setattr(study_module, "run_trial", fake_run_trial)
    space = load_space({"params": {"hidden_size": {"low": 4, "high": 8, "step": 4}},
                        "fixed": {"epochs": len(curve)}})
    objective = study_module._objective_factory(space, {}, tmp_path, {}, 0, prune=prune)
    study = optuna.create_study(directions=["maximize" if higher else "minimize", "minimize", "minimize", "minimize"])
    if prune_below is not None:
        study.set_user_attr("prune_below", prune_below)
    for name, value in (bars or {}).items():
        study.set_user_attr(name, value)
    study.add_trial(optuna.trial.create_trial(
        values=[max(rival_epochs.values()), 100, 1.0, 40], params={"hidden_size": 4},
        distributions={"hidden_size": IntDistribution(4, 8, step=4)},
        user_attrs={"size_bytes": 100, "ram_bytes": 40, "latency_us": 1.0, "feasible": True,
                    "val_metric": max(rival_epochs.values()),
                    **{f"val_epoch_{e}": v for e, v in rival_epochs.items()}}))
    try:
        objective(study.ask())
    except optuna.TrialPruned as why:
        return seen, str(why)
    return seen, "complete"


def test_a_dominated_trial_is_stopped_from_half_its_epochs_but_never_after_its_last(monkeypatch, tmp_path):
    """docs/search.md, multi-fidelity stopping: from half of the epochs on (epoch 2 of 4),
    a trial that a completed, feasible, smaller, leaner, faster trial beat by MARGIN at the
    same epoch is stopped; a trial whose only loss is at its final epoch has been trained
    fully and completes (nothing is saved by stopping it). Catches ``epoch <= epochs``
    for ``<`` and the first check moved to epoch 1."""
    seen, outcome = _objective_with_curve(monkeypatch, tmp_path, {1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5},
                                          {1: 0.9, 2: 0.9, 3: 0.9, 4: 0.9})
    assert seen == [1] and outcome.startswith("dominated at epoch 2 by trial 0")
    seen, outcome = _objective_with_curve(monkeypatch, tmp_path, {1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5},
                                          {1: 0.5, 2: 0.5, 3: 0.5, 4: 0.9})
    assert seen == [1, 2, 3, 4] and outcome == "complete"
    # --no-prune: the same dominated curve trains to the end
    seen, outcome = _objective_with_curve(monkeypatch, tmp_path, {1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5},
                                          {1: 0.9, 2: 0.9, 3: 0.9, 4: 0.9}, prune=False)
    assert seen == [1, 2, 3, 4] and outcome == "complete"


def test_the_prune_below_floor_applies_from_half_the_epochs(monkeypatch, tmp_path):
    """docs/search.md: the study's prune_below is a floor on the metric after half the
    epochs: below it at epoch 1 of 4 the trial goes on, at epoch 2 it stops; a value at the
    floor passes. Catches the floor applied from epoch 1, and ``<=`` for ``<``."""
    rival = {1: 0.1, 2: 0.1, 3: 0.1, 4: 0.1}  # no rival beats it: only the floor can stop it
    seen, outcome = _objective_with_curve(monkeypatch, tmp_path, {1: 0.2, 2: 0.2, 3: 0.9, 4: 0.9}, rival,
                                          prune_below=0.5)
    assert seen == [1] and outcome == "val metric 0.200 below 0.500 at epoch 2"
    seen, outcome = _objective_with_curve(monkeypatch, tmp_path, {1: 0.2, 2: 0.5, 3: 0.5, 4: 0.5}, rival,
                                          prune_below=0.5)
    assert seen == [1, 2, 3, 4] and outcome == "complete"


def test_an_error_metric_takes_a_ceiling_prune_above(monkeypatch, tmp_path):
    """docs/search.md: for a metric where lower is better (MSE), the bar is ``prune_above``:
    above it from half the epochs on the trial stops, at it the trial goes on; trials with
    the least error are never stopped by it. Catches the floor's comparison applied to an
    error (``value < limit``: it would stop the 0.2 curve, the best, and keep the 0.9 one)."""
    rival = {1: 9.0, 2: 9.0, 3: 9.0, 4: 9.0}  # a worse rival: only the bar can stop the trial
    seen, outcome = _objective_with_curve(monkeypatch, tmp_path, {1: 0.9, 2: 0.9, 3: 0.1, 4: 0.1}, rival,
                                          higher=False, bars={"prune_above": 0.5})
    assert seen == [1] and outcome == "val metric 0.900 above 0.500 at epoch 2"
    seen, outcome = _objective_with_curve(monkeypatch, tmp_path, {1: 0.9, 2: 0.5, 3: 0.2, 4: 0.2}, rival,
                                          higher=False, bars={"prune_above": 0.5})
    assert seen == [1, 2, 3, 4] and outcome == "complete"
    # and a ceiling does nothing to an accuracy's trials below it, nor a floor to an error's
    seen, outcome = _objective_with_curve(monkeypatch, tmp_path, {1: 0.2, 2: 0.2, 3: 0.2, 4: 0.2}, rival,
                                          higher=False, bars={"prune_above": 0.5})
    assert seen == [1, 2, 3, 4] and outcome == "complete"


@pytest.mark.parametrize("higher, wrong, right", [(True, "prune_above", "prune_below"),
                                                  (False, "prune_below", "prune_above")])
def test_a_bar_that_does_not_fit_the_metric_stops_the_search_naming_the_right_one(monkeypatch, tmp_path, higher,
                                                                                  wrong, right):
    """A floor on an error (or a ceiling on an accuracy) would stop the best trials: the
    study refuses it with a ValueError naming the attribute that fits. Catches the wrong
    attribute ignored (the trial then completes) or applied."""
    rival = {1: 0.5, 2: 0.5}
    with pytest.raises(ValueError, match=f"{wrong}.*set '{right}' instead"):
        _objective_with_curve(monkeypatch, tmp_path, {1: 0.4, 2: 0.4}, rival, higher=higher, bars={wrong: 0.5})


def test_a_bar_that_does_not_fit_the_metric_stops_a_real_search(tmp_path):
    """docs/search.md: the bar that does not fit the metric "stops the search with an
    error". Set before the search (a floor, prune_below, on a forecaster's MAE), the search
    is refused before any trial; set while it runs (after trial 0), the trial that meets it
    fails and no further trial starts, and search() raises naming the bar to set. Oracle:
    the study read back. Planted and failing it: the error left to Optuna's catch (each
    trial trained half its epochs and failed, the search going on to its end and
    returning no best)."""
    import numpy as np
    import optuna

    from lstmlite.search import search
    from lstmlite.search.study import open_study

    series = tmp_path / "series.npy"
    np.save(series, np.sin(np.arange(120) / 4).astype(np.float32))
    space = {"params": {"lr": {"choices": [0.01, 0.03]}}, "fixed": {"cell": "gru", "hidden_size": 4, "epochs": 2}}
    storage = f"sqlite:///{tmp_path / 'a' / 'study.db'}"
    (tmp_path / "a").mkdir()
    open_study(tmp_path / "a", None, 0, metric_higher=False).set_user_attr("prune_below", 0.3)
    with pytest.raises(ValueError, match="'prune_below' does not fit its metric .*set 'prune_above' instead"):
        search(str(series), None, trials=2, out=tmp_path / "a", space=space, resume=True)
    assert optuna.load_study(study_name="lstmlite-search", storage=storage).trials == []

    def set_wrong_bar(study, trial):
        study.set_user_attr("prune_below", 0.3)

    with pytest.raises(ValueError, match="set 'prune_above' instead"):
        search(str(series), None, trials=4, out=tmp_path / "b", space=space, on_trial=set_wrong_bar)
    study = optuna.load_study(study_name="lstmlite-search", storage=f"sqlite:///{tmp_path / 'b' / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL"]
