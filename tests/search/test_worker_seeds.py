"""Workers on one study sample with their own seeds: each worker's sampler is seeded
with ``seed + worker``, so two workers started together do not propose the same points
(with one seed for all, every worker's random start-up trials are the same points,
trained twice)."""

from __future__ import annotations

import optuna
import pytest

from lstmlite.search import study as study_module

from .conftest import TINY_SPACE

#: Eight-way choices on four parameters: two seeds' first points collide by chance only rarely.
SPACE = {"params": {"hidden_size": {"low": 4, "high": 32, "step": 4}, "sparsity": {"choices": [0.0, 0.25, 0.5, 0.75]},
                    "cell": {"choices": ["lstm", "gru"]}, "weight_bits": {"choices": [32, 8]}},
         "fixed": TINY_SPACE["fixed"]}


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_two_workers_first_points_differ_and_each_is_its_seeds(tmp_path, monkeypatch, sampler):
    """Worker 0 and worker 1 of seed 7, each alone on a new study, sample their first
    point; the oracle is a bare Optuna study with the same sampler seeded 7 and 8 asked
    once on the same space. Catches every worker seeded with the study's seed."""
    points = []
    monkeypatch.setattr(study_module, "run_trial",
                        lambda point, *a, **k: points.append(dict(point)) or
                        {"val_metric": 0.5, "size_bytes": 100, "latency_us": 1.0, "ram_bytes": 10, "point": point})
    for worker in (0, 1):
        out = tmp_path / str(worker)
        out.mkdir()
        study_module.open_study(out, None, 0, True, resume=True, heartbeat=1, sampler=sampler)
        study_module._worker({"out": str(out), "storage": None, "seed": 7, "worker": worker, "higher": True,
                              "heartbeat": 1, "sampler": sampler, "space": SPACE, "data_config": {}, "budget": {},
                              "prune": False, "trials": 1, "timeout": None})
    expected = []
    for seed in (7, 8):
        bare = optuna.create_study(directions=["maximize", "minimize", "minimize", "minimize"],
                                   sampler=study_module.make_sampler(sampler, seed))
        expected.append(dict(study_module.load_space(SPACE).sample(bare.ask())))
    assert expected[0] != expected[1]  # the oracle's two seeds do differ on this space
    assert [{k: p[k] for k in SPACE["params"]} for p in points] == [{k: e[k] for k in SPACE["params"]}
                                                                    for e in expected]
