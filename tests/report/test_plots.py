"""What the report's figures draw, read from the matplotlib Figure (axes, lines, bars,
tick labels) rather than compared as images; every expected value is worked by hand
from the inputs."""

import matplotlib.pyplot as plt
from matplotlib.colors import to_rgba
import numpy as np
import pytest

from lstmlite.report.plots import (_class_delta_figure, _confusion_figure, _curves_figure, _gates_figure,
                                   _heatmap_figure, _latency_figure, _pareto_figure, _saliency_figure,
                                   _tokens_figure)

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
    """Sequence medians 30 and 10 µs drawn fastest first in their panel, the step-mode 20 µs
    in its own: each label, bar and p90 whisker stays with its engine. Catches labels left
    in the input order, whiskers not reordered, a whisker drawn to the wrong end, and the
    lstmlite bar not the one highlighted."""
    cases = [{"engine": "torch", "median_us": 30, "p90_us": 40},
             {"engine": "lstmlite", "median_us": 10, "p90_us": 12},
             {"engine": "onnxruntime", "mode": "step", "median_us": 20}]
    seq, step = _latency_figure(cases, "t").axes
    assert [t.get_text() for t in seq.get_yticklabels()] == ["lstmlite", "torch"]
    assert [t.get_text() for t in step.get_yticklabels()] == ["onnxruntime"]
    assert [b.get_width() for b in seq.patches] == pytest.approx([10.0, 30.0])
    assert [b.get_width() for b in step.patches] == pytest.approx([20.0])
    assert [b.get_y() + b.get_height() / 2 for b in seq.patches] == pytest.approx([0, 1])
    # from each median to its p90 (none given: the median itself), at the bar's height
    assert [s.tolist() for c in seq.collections for s in c.get_segments()] == [[[10, 0], [12, 0]], [[30, 1], [40, 1]]]
    assert [s.tolist() for c in step.collections for s in c.get_segments()] == [[[20, 0], [20, 0]]]
    assert tuple(seq.patches[0].get_facecolor()) == to_rgba("C2")
    assert tuple(seq.patches[1].get_facecolor()) == to_rgba("C7") == tuple(step.patches[0].get_facecolor())
    assert seq.get_xlabel() == "median µs per sequence (whisker: p90)"


def test_latency_axes_say_per_step_or_per_sequence_of_t_steps(close_figures):
    """bench's step-mode median is per step (its time divided by T) and a sequence-mode
    median per call of T steps: a 5 µs step of lstmlite and a 100 µs sequence (T=100) of
    torch are not one ranking. Each unit gets its own panel whose axis and title say what
    the number is, and sequences of another T (50) a panel of their own. Failing before:
    one panel, labels 'lstmlite (step)' ranked ahead of 'torch (sequence)' on an axis
    saying only 'median latency (µs; whisker: p90)'."""
    cases = [{"engine": "torch", "mode": "sequence", "seq_len": 100, "median_us": 100.0},
             {"engine": "lstmlite", "mode": "step", "seq_len": 100, "median_us": 5.0},
             {"engine": "lstmlite", "mode": "sequence", "seq_len": 100, "median_us": 60.0},
             {"engine": "torch", "mode": "sequence", "seq_len": 50, "median_us": 55.0}]
    axes = _latency_figure(cases, "jv").axes
    assert [ax.get_xlabel() for ax in axes] == ["median µs per sequence (T=100) (whisker: p90)",
                                                "median µs per step (whisker: p90)",
                                                "median µs per sequence (T=50) (whisker: p90)"]
    assert [ax.get_title() for ax in axes] == ["jv: per sequence (T=100)", "jv: per step", "jv: per sequence (T=50)"]
    assert [[(t.get_text(), b.get_width()) for t, b in zip(ax.get_yticklabels(), ax.patches)] for ax in axes] == [
        [("lstmlite", 60.0), ("torch", 100.0)], [("lstmlite", 5.0)], [("torch", 55.0)]]
    one = _latency_figure(cases[:1], "jv").axes
    assert len(one) == 1 and one[0].get_title() == "jv"


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


def _ticks(ax) -> list[tuple[float, str]]:
    """The x ticks (position, label) of an axes."""
    return [(float(pos), label.get_text()) for pos, label in zip(ax.get_xticks(), ax.get_xticklabels())]


# One sequence of T=4 steps and H=3 units per gate, every cell a different number (gate k,
# step t, unit u: k + t / 10 + u / 100), so a panel showing another gate, the time axis
# drawn as units, or a step shifted shows other numbers.
GATE_TITLES = ["input gate i", "forget gate f", "cell candidate g (C̃)", "output gate o"]
GATES = {title: np.array([[k + t / 10 + u / 100 for u in range(3)] for t in range(4)]) / 4
         for k, title in enumerate(GATE_TITLES)}


def test_gate_panels_keep_their_order_with_units_down_and_time_across(close_figures):
    """Each panel is titled with its gate and shows that gate's (T, H) values as units down
    and time across (value of step t, unit u at row u, column t, written out by hand for
    the forget gate). Catches the gates drawn in another order than their titles, the
    heatmap not transposed (time down), and the colour scale fixed the wrong way (the
    candidate, a tanh, on -1..1 in a diverging map; the sigmoid gates on 0..1)."""
    fig = _gates_figure(GATES, "gates of layer 0", xticklabels=["the", "cat", "sat", "on"])
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == GATE_TITLES
    forget = panels[1].images[0].get_array()
    assert np.asarray(forget).shape == (3, 4)  # units down, time across
    assert np.asarray(forget)[2, 1] == pytest.approx((1 + 0.1 + 0.02) / 4)  # unit 2 at step 1
    for k, ax in enumerate(panels):
        image = ax.images[0]
        np.testing.assert_array_equal(np.asarray(image.get_array()), GATES[GATE_TITLES[k]].T)
        tanh = k == 2
        assert image.get_clim() == ((-1, 1) if tanh else (0, 1))
        assert image.get_cmap().name == ("RdBu_r" if tanh else "viridis")
        assert ax.get_ylabel() == "unit"
    assert fig.get_suptitle() == "gates of layer 0"


def test_gate_panels_put_each_token_under_its_own_step(close_figures):
    """Token k labels column k (the step the gates read it): catches tick labels shifted by
    one and the time axis' label on a panel other than the bottom one."""
    fig = _gates_figure(GATES, "t", xticklabels=["the", "cat", "sat", "on"])
    bottom = [ax for ax in fig.axes if ax.images][-1]
    assert _ticks(bottom) == [(0.0, "the"), (1.0, "cat"), (2.0, "sat"), (3.0, "on")]
    assert bottom.get_xlabel() == "time step"
    gru = _gates_figure({"reset gate r": np.zeros((2, 5)), "candidate n": np.zeros((2, 5))}, "t")
    panels = [ax for ax in gru.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["reset gate r", "candidate n"]
    assert panels[1].images[0].get_clim() == (-1, 1) and panels[0].images[0].get_clim() == (0, 1)


# Integrated-gradients values of T=4 steps and F=3 features, mixed signs. Summed over the
# features, by hand: 0.1 + 0.2 − 0.4 = −0.1, 0.5, 0.0 + 0.0 + 0.3 = 0.3, −0.6 + 0.1 + 0.1 = −0.4.
SALIENCY = np.array([[0.1, 0.2, -0.4], [0.5, 0.0, 0.0], [0.0, 0.0, 0.3], [-0.6, 0.1, 0.1]])
PER_STEP = [-0.1, 0.5, 0.3, -0.4]


def test_saliency_bars_are_the_signed_sum_over_features_per_step(close_figures):
    """The top panel's bar at step t is the sum of step t's attributions (signed, worked by
    hand), red where it raises f and blue where it lowers it; the heatmap below shows
    features down and time across on a colour scale symmetric about 0 (max |value| 0.6).
    Catches the sum taken over steps instead, a mean or a sum of magnitudes drawn, the
    colours inverted, the heatmap not transposed and an asymmetric colour scale."""
    fig = _saliency_figure(SALIENCY, "sal", feature_label="embedding dim")
    top, bottom = fig.axes[:2]
    bars = top.patches
    assert [b.get_height() for b in bars] == pytest.approx(PER_STEP)
    assert [b.get_x() + b.get_width() / 2 for b in bars] == pytest.approx([0, 1, 2, 3])
    red, blue = to_rgba("#d62728"), to_rgba("#1f77b4")
    assert [tuple(b.get_facecolor()) for b in bars] == [blue, red, red, blue]
    image = bottom.images[0]
    np.testing.assert_array_equal(np.asarray(image.get_array()), SALIENCY.T)
    assert image.get_clim() == pytest.approx((-0.6, 0.6))
    negated = _saliency_figure(-SALIENCY, "sal").axes[1].images[0]  # min -0.5, max 0.6: still ±0.6
    assert negated.get_clim() == pytest.approx((-0.6, 0.6))
    assert (bottom.get_ylabel(), bottom.get_xlabel()) == ("embedding dim", "time step")
    assert top.get_title() == "sal" and top.get_ylabel() == "per step"


def test_saliency_tokens_sit_under_their_own_scores(close_figures):
    """Token k labels column k of the heatmap and bar k: catches tick labels shifted by one
    step or reversed."""
    fig = _saliency_figure(SALIENCY, "sal", xticklabels=["w0", "w1", "w2", "w3"])
    top, bottom = fig.axes[:2]
    assert _ticks(bottom) == [(0.0, "w0"), (1.0, "w1"), (2.0, "w2"), (3.0, "w3")]
    ticks = dict((label, pos) for pos, label in _ticks(bottom))
    heights = {b.get_x() + b.get_width() / 2: b.get_height() for b in top.patches}
    assert heights[ticks["w1"]] == pytest.approx(0.5) and heights[ticks["w3"]] == pytest.approx(-0.4)
    assert fig.axes[0].get_xlim() == pytest.approx(fig.axes[1].get_xlim())  # bars over their columns


def test_tokens_are_written_in_reading_order_on_their_scores_colour(close_figures):
    """13 tokens, 12 to a line: token k at column k mod 12, line k // 12 (the 13th starts the
    second line); scores 2, −1, 0, −2, … on a scale of max |score| = 2 give the colour map
    at 1.0 (reddest), 0.25, 0.5 (white) and 0.0 (bluest). Catches tokens paired with the
    next token's score, lines not wrapped, and the colours inverted."""
    tokens = [f"t{k}" for k in range(13)]
    scores = np.array([2.0, -1.0, 0.0, -2.0] + [0.5] * 9)
    ax = _tokens_figure(tokens, scores, "tok").axes[0]
    texts = [t for t in ax.texts]
    assert [t.get_text() for t in texts] == tokens
    assert [t.get_position() for t in texts[:2]] == [(0.05, 0.3), (1.05, 0.3)]
    assert texts[12].get_position() == pytest.approx((0.05, 1.3))
    cmap = plt.get_cmap("RdBu_r")
    for k, at in ((0, 1.0), (1, 0.25), (2, 0.5), (3, 0.0)):
        assert texts[k].get_bbox_patch().get_facecolor() == pytest.approx(cmap(at)), k
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # line 0 at the top


def test_the_heatmap_keeps_rows_and_columns_and_its_labels(close_figures):
    """A (2, 3) array is drawn as 2 rows and 3 columns with its axis names, tick labels,
    colour limits and colour-bar label; catches the array drawn transposed and the axis
    names swapped."""
    values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    fig = _heatmap_figure(values, "h", "time step", "feature", vmin=-1, vmax=7, xticklabels=["a", "b", "c"],
                          colorbar_label="attribution")
    ax = fig.axes[0]
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), values)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("time step", "feature")
    assert _ticks(ax) == [(0.0, "a"), (1.0, "b"), (2.0, "c")]
    assert ax.images[0].get_clim() == (-1, 7)
    assert fig.axes[1].get_ylabel() == "attribution"
