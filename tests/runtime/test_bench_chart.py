"""What ``lstmlite bench --chart`` draws, read from its matplotlib Figure rather than compared
as an image: one panel per size and mode, each engine's median as a bar next to its own
name; every expected value is written out by hand."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
import pytest  # noqa: E402

from lstmlite.runtime.bench import _bar_chart_figure  # noqa: E402


@pytest.fixture
def close_figures():
    """Close what a test drew (_bar_chart_figure leaves closing to its caller)."""
    yield
    plt.close("all")


def _case(engine: str, mode: str, median: float, p90: float, **extra) -> dict:
    return {"engine": engine, "input_size": 8, "hidden_size": 16, "seq_len": 10, "batch": 1, "mode": mode,
            "median_us": median, "p90_us": p90, **extra}


def _bars(ax) -> list[tuple[str, float]]:
    """(tick label, bar width) from the top of the panel down."""
    labels = {float(pos): t.get_text() for pos, t in zip(ax.get_yticks(), ax.get_yticklabels())}
    bars = sorted(ax.patches, key=lambda b: b.get_y(), reverse=ax.yaxis_inverted() is False)
    return [(labels[b.get_y() + b.get_height() / 2], b.get_width()) for b in bars]


CASES = [_case("torch-fp32", "sequence", 100.0, 130.0), _case("lstmlite-int8", "sequence", 20.0, 90.0),
         _case("onnxruntime-fp32", "sequence", 60.0, 61.0),
         _case("torch-fp32", "step", 10.0, 15.0), _case("lstmlite-int8", "step", 2.0, 9.0),
         _case("lstmlite-int8", "sequence", 12.0, 14.0, sparsity=0.5, rank=4)]


def test_each_panel_is_one_size_and_mode_with_each_engines_median(close_figures):
    """Three panels (sequence, step, the pruned low-rank sequence case), engines top-down in
    the order timed, each bar the engine's median (never its p90) next to its own name, and
    lstmlite's bars green. Catches the p90 drawn, names out of step with their bars (the
    axis no longer inverted: the first engine at the bottom), the modes merged into one
    panel, and the highlight on another engine."""
    axes = _bar_chart_figure(plt, CASES).axes
    assert [ax.get_title() for ax in axes] == ["I=8 H=16 T=10 B=1 sequence", "I=8 H=16 T=10 B=1 step",
                                               "I=8 H=16 T=10 B=1 sequence, 50 % blocks pruned, rank 4"]
    assert _bars(axes[0]) == [("torch-fp32", 100.0), ("lstmlite-int8", 20.0), ("onnxruntime-fp32", 60.0)]
    assert _bars(axes[1]) == [("torch-fp32", 10.0), ("lstmlite-int8", 2.0)]
    assert _bars(axes[2]) == [("lstmlite-int8", 12.0)]
    assert axes[0].yaxis_inverted()  # the first engine timed at the top
    top = sorted(axes[0].patches, key=lambda b: b.get_y())
    assert [tuple(b.get_facecolor()) for b in top] == [to_rgba("tab:gray"), to_rgba("tab:green"),
                                                       to_rgba("tab:gray")]


def test_step_panels_say_per_step_and_sequence_panels_per_sequence_of_t_steps(close_figures):
    """bench divides a step-mode time by T (per step); a sequence time is one call of T steps,
    named as the tables name it ("µs per sequence (T=10)"; the chart said "us per call").
    Catches the two units swapped, T left out and the log scale dropped."""
    cases = CASES + [_case("lstmlite-int8", "sequence", 50.0, 60.0, seq_len=100)]
    axes = _bar_chart_figure(plt, cases).axes
    assert [ax.get_xlabel() for ax in axes] == [
        "median µs per sequence (T=10), log scale (lower is better)",
        "median µs per step, log scale (lower is better)",
        "median µs per sequence (T=10), log scale (lower is better)",
        "median µs per sequence (T=100), log scale (lower is better)"]
    assert all(ax.get_xscale() == "log" for ax in axes)


def test_cases_that_differ_in_threads_block_shape_cell_or_layers_get_their_own_panels(close_figures):
    """benchmarks/bench_runtime.py --chart draws its batch32 cases on 1 and on 2 threads, and
    its sparse cases in (1, 4) and in (16, 4) blocks, all of one size and mode: each gets its
    own panel, named, so every bar is visible by its own engine name (and likewise a GRU and
    a 2-layer case of one size). Planted and failing it: the panel key without threads,
    block shape, cell and layers, as it was -- the 2-thread bars drawn at the 1-thread
    bars' labels, hidden behind them (2 bars visible of 4)."""
    base = dict(engine="lstmlite-int8", mode="sequence", median=300.0, p90=310.0)
    cases = [_case(**base, threads=1), _case("torch-fp32", "sequence", 900.0, 950.0, threads=1),
             _case(**{**base, "median": 200.0}, threads=2), _case("torch-fp32", "sequence", 500.0, 520.0, threads=2),
             _case(**{**base, "median": 90.0}, sparsity=0.8, sparse_block=[1, 4]),
             _case(**{**base, "median": 70.0}, sparsity=0.8, sparse_block=[16, 4]),
             _case(**{**base, "median": 40.0}, cell="gru"), _case(**{**base, "median": 600.0}, num_layers=2)]
    axes = _bar_chart_figure(plt, cases).axes
    assert [ax.get_title() for ax in axes] == [
        "I=8 H=16 T=10 B=1 sequence", "I=8 H=16 T=10 B=1 sequence, 2 threads",
        "I=8 H=16 T=10 B=1 sequence, 80 % 1x4 blocks pruned", "I=8 H=16 T=10 B=1 sequence, 80 % 16x4 blocks pruned",
        "I=8 H=16 T=10 B=1 sequence, GRU", "I=8 H=16 T=10 B=1 sequence, 2 layers"]
    assert [_bars(ax) for ax in axes] == [
        [("lstmlite-int8", 300.0), ("torch-fp32", 900.0)], [("lstmlite-int8", 200.0), ("torch-fp32", 500.0)],
        [("lstmlite-int8", 90.0)], [("lstmlite-int8", 70.0)], [("lstmlite-int8", 40.0)], [("lstmlite-int8", 600.0)]]


def test_identical_cases_get_a_bar_each_labelled_apart(close_figures):
    """A bench result list concatenated with itself (the second run's medians differing) gives
    one panel per mode as before, with each engine's two times as two bars, labelled
    "#1"/"#2" in the order given and still coloured by engine; an engine timed once keeps its
    name. Failing before: both times drawn at the engine's one label, one bar hidden behind
    the other (3 tick labels for 4 bars in the sequence panel)."""
    first = [_case("torch-fp32", "sequence", 100.0, 130.0), _case("lstmlite-int8", "sequence", 20.0, 90.0),
             _case("lstmlite-int8", "step", 2.0, 9.0)]
    again = [_case("torch-fp32", "sequence", 110.0, 140.0), _case("lstmlite-int8", "sequence", 25.0, 95.0)]
    axes = _bar_chart_figure(plt, first + again).axes
    assert [ax.get_title() for ax in axes] == ["I=8 H=16 T=10 B=1 sequence", "I=8 H=16 T=10 B=1 step"]
    assert _bars(axes[0]) == [("torch-fp32 #1", 100.0), ("lstmlite-int8 #1", 20.0),
                              ("torch-fp32 #2", 110.0), ("lstmlite-int8 #2", 25.0)]
    assert _bars(axes[1]) == [("lstmlite-int8", 2.0)]
    top = sorted(axes[0].patches, key=lambda b: b.get_y())
    assert [tuple(b.get_facecolor()) for b in top] == [to_rgba("tab:gray"), to_rgba("tab:green"),
                                                       to_rgba("tab:gray"), to_rgba("tab:green")]
