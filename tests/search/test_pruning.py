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
    assert dominated_at_epoch(0.7, 3, ME, [_done(ram=401)]) is None              # more RAM
    assert dominated_at_epoch(0.7, 3, ME, [_done(lat=2.0 * LATENCY_SLACK + 0.01)]) is None  # slower
    assert dominated_at_epoch(0.7, 3, ME, [_done(lat=2.0 * LATENCY_SLACK - 0.01)]) == 1     # noise allowed
    assert dominated_at_epoch(0.7, 3, ME, [_done(epoch=4)]) is None              # not the same fidelity
    assert dominated_at_epoch(0.7, 3, ME, [_done(feasible=False)]) is None       # over budget: not a rival
    assert dominated_at_epoch(0.7, 3, ME, [_done(final=0.71)]) is None           # it ended no better
    # an error metric: lower is better
    assert dominated_at_epoch(0.30, 3, ME, [_done(val=0.25)], higher=False) == 1
    assert dominated_at_epoch(0.30, 3, ME, [_done(val=0.35)], higher=False) is None
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
    assert seen["ram_bytes"] == record["ram_bytes"]


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
