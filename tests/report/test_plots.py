"""What the report's figures draw, read from the matplotlib Figure (axes, lines, bars,
tick labels) rather than compared as images; every expected value is worked by hand
from the inputs."""

import matplotlib.pyplot as plt
from matplotlib.colors import to_rgba
import numpy as np
import pytest

from lstmlite.report.plots import (_class_delta_figure, _confusion_figure, _curves_figure, _latency_figure,
                                   _pareto_figure)

# Four runs (name, bytes, metric); the fronts below are worked out by hand for both
# directions. Perplexity (lower is better): a is the smallest, b is better than a, c is
# larger and worse than b, d is the best: a, b, d. Accuracy on the same numbers: a has the
# highest metric at the smallest size and dominates everything else.
RUNS = [("a", 1000, 0.50), ("b", 2000, 0.40), ("c", 3000, 0.45), ("d", 4000, 0.30)]


@pytest.fixture
def close_figures():
    """Close what a test drew (the _*_figure functions leave closing to their caller)."""
    yield
    plt.close("all")


def _points(ax) -> dict[tuple[float, float], tuple[float, ...]]:
    """Each scattered point (x, y) and its face colour."""
    found = {}
    for collection in ax.collections:
        for (x, y), colour in zip(collection.get_offsets(), np.resize(collection.get_facecolors(), (1, 4))):
            found[(float(x), float(y))] = tuple(colour)
    return found


def _front_line(ax) -> tuple[list[float], list[float]]:
    lines = [line for line in ax.lines if line.get_label() == "Pareto front"]
    assert len(lines) == 1
    return list(lines[0].get_xdata()), list(lines[0].get_ydata())


def test_the_pareto_plot_has_size_on_a_log_x_axis_and_the_metric_on_y(close_figures):
    """Catches the axes swapped (size on y, metric on x) and the log scale dropped."""
    ax = _pareto_figure(RUNS, "perplexity").axes[0]
    assert "bytes" in ax.get_xlabel() and "log" in ax.get_xlabel()
    assert ax.get_ylabel() == "test perplexity"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert set(_points(ax)) == {(1000.0, 0.50), (2000.0, 0.40), (3000.0, 0.45), (4000.0, 0.30)}
    assert "lower is better" in ax.get_title()


def test_the_pareto_front_of_a_lower_is_better_metric_keeps_the_lowest(close_figures):
    """Catches the front computed as if perplexity were better higher (that front is a alone:
    no line at all) and the front's points coloured apart from the line."""
    ax = _pareto_figure(RUNS, "perplexity").axes[0]
    assert _front_line(ax) == ([1000.0, 2000.0, 4000.0], [0.50, 0.40, 0.30])
    colours = _points(ax)
    assert colours[(3000.0, 0.45)] == to_rgba("C0")
    assert all(colours[p] == to_rgba("C1") for p in [(1000.0, 0.50), (2000.0, 0.40), (4000.0, 0.30)])


def test_the_pareto_front_of_a_higher_is_better_metric_keeps_the_highest(close_figures):
    """The same numbers as accuracy: a dominates all, so only a is coloured and no line
    joins a front of one; with d made best the front is a, d (b, c are beaten by a)."""
    ax = _pareto_figure(RUNS, "accuracy").axes[0]
    assert not [line for line in ax.lines if line.get_label() == "Pareto front"]
    assert [p for p, c in _points(ax).items() if c == to_rgba("C1")] == [(1000.0, 0.50)]
    plt.close("all")
    ax = _pareto_figure(RUNS[:3] + [("d", 4000, 0.90)], "accuracy").axes[0]
    assert _front_line(ax) == ([1000.0, 4000.0], [0.50, 0.90])
    assert "higher is better" in ax.get_title()


def test_class_change_bars_are_after_minus_before_in_points(close_figures):
    """Before 0.9, 0.5, 0.7, NaN and after 0.8, 0.6, 0.7, 0.4: changes −10, +10, 0 points and
    0 for the class the source never saw. Catches before − after, a fraction drawn as
    points, bars in another order than their labels, and the colours inverted."""
    before, after = np.array([0.9, 0.5, 0.7, np.nan]), np.array([0.8, 0.6, 0.7, 0.4])
    ax = _class_delta_figure(before, after, ["cat", "dog", "owl", "eel"], "t").axes[0]
    bars = ax.patches
    assert [b.get_height() for b in bars] == pytest.approx([-10.0, 10.0, 0.0, 0.0])
    assert [b.get_x() + b.get_width() / 2 for b in bars] == pytest.approx([0, 1, 2, 3])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "owl", "eel"]
    assert [tuple(b.get_facecolor()) for b in bars[:2]] == [to_rgba("#c0392b"), to_rgba("#27ae60")]
    assert "change" in ax.get_ylabel() and "points" in ax.get_ylabel()


def test_latency_bars_are_sorted_with_their_labels_and_whiskers(close_figures):
    """Medians 30, 10, 20 µs drawn fastest first: each label, bar and p90 whisker stays with
    its engine. Catches labels left in the input order, whiskers not reordered, a whisker
    drawn to the wrong end, and the lstmlite bar not the one highlighted."""
    cases = [{"engine": "torch", "median_us": 30, "p90_us": 40},
             {"engine": "lstmlite", "median_us": 10, "p90_us": 12},
             {"engine": "onnxruntime", "mode": "step", "median_us": 20}]
    ax = _latency_figure(cases, "t").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["lstmlite (sequence)", "onnxruntime (step)",
                                                            "torch (sequence)"]
    assert [b.get_width() for b in ax.patches] == pytest.approx([10.0, 20.0, 30.0])
    assert [b.get_y() + b.get_height() / 2 for b in ax.patches] == pytest.approx([0, 1, 2])
    whiskers = [segments for c in ax.collections for segments in c.get_segments()]
    # from each median to its p90 (none given: the median itself), at the bar's height
    assert [s.tolist() for s in whiskers] == [[[10, 0], [12, 0]], [[20, 1], [20, 1]], [[30, 2], [40, 2]]]
    assert tuple(ax.patches[0].get_facecolor()) == to_rgba("C2")
    assert all(tuple(b.get_facecolor()) == to_rgba("C7") for b in ax.patches[1:])
    assert "median latency" in ax.get_xlabel()


def test_the_confusion_matrix_has_true_classes_as_rows(close_figures):
    """Catches the matrix drawn transposed (rows: predicted) or its axes' names swapped, and
    cell counts written at the wrong cell."""
    cm = np.array([[3, 1, 0], [0, 2, 5], [1, 0, 4]])
    ax = _confusion_figure(cm, ["cat", "dog", "owl"], "t").axes[0]
    assert ax.images[0].get_array().tolist() == [[3, 1, 0], [0, 2, 5], [1, 0, 4]]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "owl"]
    # dog (row 1) predicted as owl (column 2) five times: written at x=2, y=1
    assert {(t.get_position(), t.get_text()) for t in ax.texts} >= {((2, 1), "5"), ((1, 0), "1"), ((0, 2), "1")}


def test_training_curves_put_the_loss_left_and_the_validation_metric_right(close_figures):
    """Epochs counted from 1; a recipe's second step marked between its epochs. Catches the
    panels swapped, epochs counted from 0, and the step boundary drawn at the wrong epoch."""
    history = [{"train_loss": 1.0, "val_accuracy": 0.5, "step": 0}, {"train_loss": 0.6, "val_accuracy": 0.7, "step": 0},
               {"train_loss": 0.4, "val_accuracy": 0.8, "step": 1}]
    left, right = _curves_figure([("run", history)], "accuracy").axes
    assert (left.get_ylabel(), right.get_ylabel()) == ("training loss", "validation accuracy")
    loss = [line for line in left.lines if line.get_label() == "run"][0]
    val = [line for line in right.lines if line.get_label() == "run"][0]
    assert list(loss.get_xdata()) == [1, 2, 3] and list(loss.get_ydata()) == [1.0, 0.6, 0.4]
    assert list(val.get_xdata()) == [1, 2, 3] and list(val.get_ydata()) == [0.5, 0.7, 0.8]
    for ax in (left, right):  # the step starting at epoch 3 is marked at 2.5
        assert [list(line.get_xdata()) for line in ax.lines if line.get_label() != "run"] == [[2.5, 2.5]]
