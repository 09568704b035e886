"""What a search's pareto.png draws, read from its matplotlib Figure rather than compared
as an image: every trial grey, the feasible Pareto front in colour, bytes on x and the
validation metric on y; the fronts below are worked out by hand."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
import optuna  # noqa: E402
import pytest  # noqa: E402

from lstmlite.search import study as study_module  # noqa: E402


@pytest.fixture
def close_figures():
    """Close what a test drew (_pareto_figure leaves closing to its caller)."""
    yield
    plt.close("all")


def _scatters(ax) -> dict[str, list[tuple[float, float]]]:
    """The points of each scatter, by its legend label."""
    return {c.get_label(): [(float(x), float(y)) for x, y in c.get_offsets()] for c in ax.collections}


def test_the_search_plot_has_bytes_on_x_and_the_front_in_colour(close_figures):
    """Catches the axes swapped (points or labels), all trials drawn as the front, and a
    trial that never finished (no size or metric) drawn at all."""
    trials = [{"size_bytes": 1000, "val_metric": 0.9}, {"size_bytes": 3000, "val_metric": 0.7},
              {"state": "FAIL"}]
    fig = study_module._pareto_figure(plt, trials, [trials[0]])
    ax = fig.axes[0]
    assert "bytes" in ax.get_xlabel() and "metric" in ax.get_ylabel()
    assert _scatters(ax) == {"trials": [(1000.0, 0.9), (3000.0, 0.7)], "Pareto (feasible)": [(1000.0, 0.9)]}
    assert tuple(ax.collections[1].get_facecolors()[0]) == to_rgba("C3")


def test_pareto_png_draws_the_feasible_front_of_a_lower_is_better_metric(tmp_path, monkeypatch, close_figures):
    """write_outputs on hand-made trials of a perplexity-like metric (the study minimizes it):
    0 (50 at 1000 B) is the smallest, 1 (40 at 2000 B) is better, 2 (45 at 3000 B) is beaten
    by 1, and 3 (30 at 500 B) beats all but is over the budget. Front: 0, 1. Catches the
    front taken as if the metric were better higher (0 alone), an infeasible trial drawn on
    the front, and every trial passed to the plot as the front."""
    from optuna.distributions import IntDistribution

    out = tmp_path / "s"
    out.mkdir()
    study = optuna.create_study(study_name=study_module.STUDY_NAME, storage=f"sqlite:///{out / 'study.db'}",
                                directions=["minimize", "minimize", "minimize", "minimize"])
    for number, (metric, size, feasible) in enumerate([(50.0, 1000, True), (40.0, 2000, True),
                                                       (45.0, 3000, True), (30.0, 500, False)]):
        study.add_trial(optuna.trial.create_trial(
            values=[metric, size, 10.0, 100], params={"hidden_size": 4 * (number + 1)},
            distributions={"hidden_size": IntDistribution(4, 64)},
            user_attrs={"val_metric": metric, "size_bytes": size, "latency_us": 10.0, "ram_bytes": 100,
                        "feasible": feasible, "run_dir": str(tmp_path / "absent")}))
    drawn = []
    real = study_module._pareto_figure
    monkeypatch.setattr(study_module, "_pareto_figure", lambda *args: drawn.append(real(*args)) or drawn[-1])
    study_module.write_outputs(out, None, higher=False)
    assert (out / "pareto.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    points = _scatters(drawn[0].axes[0])
    assert sorted(points["trials"]) == [(500.0, 30.0), (1000.0, 50.0), (2000.0, 40.0), (3000.0, 45.0)]
    assert points["Pareto (feasible)"] == [(1000.0, 50.0), (2000.0, 40.0)]


def test_an_untrained_trial_has_no_metric_in_trials_json_nor_the_plot(tmp_path, monkeypatch, close_figures):
    """A point over the budget before training is stored with the untrained model's
    figures (the objective value the sampler needs); trials.json gives it a null
    val_metric and val_loss and pareto.png does not draw it, while the storage keeps the
    figure. Before, trials.json read "val_metric": 0.111 beside "skipped", and the plot drew
    it among the trials, as if measured."""
    from optuna.distributions import IntDistribution

    out = tmp_path / "s"
    out.mkdir()
    run = tmp_path / "run1"  # the trained trial's run dir, copied to best/
    run.mkdir()
    storage = f"sqlite:///{out / 'study.db'}"
    study = optuna.create_study(study_name=study_module.STUDY_NAME, storage=storage,
                                directions=["maximize", "minimize", "minimize", "minimize"])
    for number, (metric, size, skipped) in enumerate([(0.11, 9000, "over budget before training (size)"),
                                                      (0.95, 1000, None)]):
        study.add_trial(optuna.trial.create_trial(
            values=[metric, size, 10.0, 100], params={"hidden_size": 4 * (number + 1)},
            distributions={"hidden_size": IntDistribution(4, 64)},
            user_attrs={"val_metric": metric, "val_loss": 2.3, "size_bytes": size, "latency_us": 10.0,
                        "ram_bytes": 100, "feasible": skipped is None, "run_dir": None if skipped else str(run),
                        **({"skipped": skipped} if skipped else {})}))
    drawn = []
    real = study_module._pareto_figure
    monkeypatch.setattr(study_module, "_pareto_figure", lambda *args: drawn.append(real(*args)) or drawn[-1])
    study_module.write_outputs(out, None)
    trials = json.loads((out / "trials.json").read_text())
    assert trials[0]["val_metric"] is None and trials[0]["val_loss"] is None and trials[0]["skipped"]
    assert trials[1]["val_metric"] == 0.95 and trials[1]["val_loss"] == 2.3
    assert _scatters(drawn[0].axes[0])["trials"] == [(1000.0, 0.95)]
    stored = optuna.load_study(study_name=study_module.STUDY_NAME, storage=storage).trials[0]
    assert stored.values[0] == 0.11 and stored.user_attrs["val_metric"] == 0.11
