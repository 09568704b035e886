"""The report's numbers: confusion matrix, per-class accuracy, Pareto front, bench matching."""

import numpy as np
import pytest

from lstmlite.report.metrics import (HIGHER_IS_BETTER, bench_cases_for, confusion_matrix, pareto_front,
                                     per_class_accuracy)
from lstmlite.train import metrics as train_metrics


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.sum() == 6
    np.testing.assert_allclose(per_class_accuracy(cm), [0.5, 1.0, 2 / 3])


def test_per_class_accuracy_of_an_absent_class_is_nan():
    acc = per_class_accuracy(confusion_matrix(np.array([0, 0]), np.array([0, 1]), 3))
    assert acc[0] == 0.5 and np.isnan(acc[1]) and np.isnan(acc[2])  # no true rows of 1 or 2


def test_confusion_matrix_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="differ"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 2)


@pytest.mark.parametrize("points, higher, front", [
    ([(100, 0.90), (50, 0.80), (120, 0.85)], True, [1, 0]),          # 120 is beaten by 100 on both
    ([(100, 0.90), (100, 0.90)], True, [0, 1]),                      # ties dominate nobody
    ([(10, 5.0), (20, 4.0), (30, 4.5)], False, [0, 1]),              # perplexity: lower is better
    ([(10, 0.5), (20, 0.5)], True, [0]),                             # same metric, larger: dominated
    ([(100, 0.9), (100, 0.8)], True, [0]),                           # same size, worse: dominated
])
def test_pareto_front(points, higher, front):
    assert pareto_front(points, higher_is_better=higher) == front


def test_metric_directions_are_the_trainers() -> None:
    """The report's Pareto front and plot title take each metric's direction from the set
    the trainer selects epochs by (whose every entry tests/train/test_metrics checks).
    Catches a report-side list of its own, which knew only accuracy and macro_f1, so a
    seq2seq run's exact_match front was computed as if lower were better."""
    assert set(HIGHER_IS_BETTER) == set(train_metrics.HIGHER_IS_BETTER)


def test_bench_cases_match_the_architecture_only() -> None:
    """A run's cards list the bench cases of its own input AND hidden size (and only timed
    ones), by hand-written cases; catches a match on the hidden size alone, which lists a
    16-input layer's timings on a 12-input run."""
    bench = {"cases": [
        {"engine": "torch-fp32", "input_size": 12, "hidden_size": 8, "median_us": 10.0},
        {"engine": "lstmlite-int8", "input_size": 12, "hidden_size": 8, "median_us": 4.0},
        {"engine": "torch-fp32", "input_size": 12, "hidden_size": 64, "median_us": 50.0},
        {"engine": "onnxruntime", "input_size": 16, "hidden_size": 8, "median_us": 7.0},
        {"engine": "tflite", "input_size": 12, "hidden_size": 8},  # not timed (no median)
    ]}
    assert [c["engine"] for c in bench_cases_for(bench, {"input_size": 12, "hidden_size": 8})] == \
        ["torch-fp32", "lstmlite-int8"]
    assert [c["median_us"] for c in bench_cases_for(bench, {"input_size": 12, "hidden_size": [64]})] == [50.0]
    assert bench_cases_for(bench, {"input_size": 12, "hidden_size": [8, 4]}) == []  # uneven layers
    assert bench_cases_for(bench, {"vocab_size": 100, "embed_dim": 12, "hidden_size": 8})  # token model


def test_a_per_layer_hidden_list_of_one_size_matches_that_size() -> None:
    """A stack whose config lists the hidden size per layer (a structurally pruned stack
    writes a list) with every layer of one size, [8, 8], is timed by bench's hidden-8,
    2-layer cases like hidden_size=8 would be (hand-written cases); only a list of
    different sizes has no match. Catches a test of the list's length (one entry) instead
    of its distinct values, which left a uniform 2-layer run's card with no latency."""
    bench = {"cases": [
        {"engine": "lstmlite-int8", "input_size": 12, "hidden_size": 8, "num_layers": 2, "median_us": 9.0},
        {"engine": "lstmlite-int8", "input_size": 12, "hidden_size": 8, "num_layers": 1, "median_us": 4.0},
        {"engine": "torch-fp32", "input_size": 12, "hidden_size": 4, "num_layers": 2, "median_us": 5.0}]}
    assert [c["median_us"] for c in bench_cases_for(bench, {"input_size": 12, "hidden_size": [8, 8],
                                                            "num_layers": 2})] == [9.0]
    assert bench_cases_for(bench, {"input_size": 12, "hidden_size": [8, 4], "num_layers": 2}) == []


def test_bench_cases_of_another_cell_or_layer_count_are_not_a_runs() -> None:
    """``lstmlite bench`` records each case's cell and layer count; a run's card lists only
    the cases of its own (hand-written cases of one size: an LSTM-1, a GRU-1 and an LSTM-2),
    and no case for a bidirectional run (bench times one direction). Cases that record
    neither still match by size. Planted and failing it: the match on the two sizes alone,
    as it was -- a GRU run's card showed the LSTM's and the GRU's median side by side."""
    bench = {"cases": [
        {"engine": "lstmlite-int8", "input_size": 12, "hidden_size": 8, "cell": "lstm", "num_layers": 1,
         "median_us": 4.0},
        {"engine": "lstmlite-int8", "input_size": 12, "hidden_size": 8, "cell": "gru", "num_layers": 1,
         "median_us": 3.0},
        {"engine": "lstmlite-int8", "input_size": 12, "hidden_size": 8, "cell": "lstm", "num_layers": 2,
         "median_us": 9.0},
        {"engine": "torch-fp32", "input_size": 12, "hidden_size": 8, "median_us": 20.0}]}

    def medians(**model):
        return [c["median_us"] for c in bench_cases_for(bench, {"input_size": 12, "hidden_size": 8, **model})]

    assert medians(cell="lstm", num_layers=1) == [4.0, 20.0]
    assert medians(cell="gru", num_layers=1) == [3.0, 20.0]
    assert medians(cell="lstm", num_layers=2) == [9.0, 20.0]
    assert medians(cell="fastgrnn", num_layers=1) == [20.0]
    assert medians() == [4.0, 20.0]  # a model config without them: the model's defaults, LSTM × 1
    assert medians(cell="lstm", num_layers=1, bidirectional=True) == []
