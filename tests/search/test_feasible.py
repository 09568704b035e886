"""The budget pre-check (feasible.py): a size or RAM budget below the space's smallest
model is refused before any trial, naming that model and its bytes; a budget at that
figure is accepted. The smallest model is found by hand here (the fewest layers, the
smallest hidden size, the cell and bit width with the fewest bytes), its RAM taken from
the C project `lstmlite export --format c` writes for it and its bytes from the .lsl file a
trained trial of it writes."""

import re

import pytest

from lstmlite.search.feasible import check_feasible
from lstmlite.search.objectives import BudgetError
from lstmlite.search.space import load_space
from lstmlite.search.pruning import SIZE_SLACK

#: Choices listed largest first, ranges wide: the smallest model is GRU, 1 layer, H=4, int8.
SPACE = {"params": {"cell": {"choices": ["lstm", "gru"]}, "num_layers": {"choices": [2, 1]},
                    "hidden_size": {"low": 4, "high": 16, "step": 4}, "weight_bits": {"choices": [32, 8]}},
         "fixed": {"epochs": 1, "lr": 0.02}}
SMALLEST = "cell=gru, num_layers=1, hidden_size=4, weight_bits=8"


def _refusal(budget, data):
    with pytest.raises(BudgetError) as info:
        check_feasible(load_space(SPACE), {"source": data, "task": "classify"}, budget)
    return str(info.value)


def test_a_size_budget_below_the_smallest_model_names_it_and_its_file_bytes(tiny_data, tmp_path):
    """Catches: choices taken at their largest (num_layers=2), ranges at ``high``, the
    largest profile kept instead of the smallest (an LSTM or fp32 named), and ``>=`` for
    ``>`` (a budget exactly at the smallest model's bytes refused)."""
    from lstmlite.search.trial import run_trial

    message = _refusal({"size": 10}, tiny_data)
    assert "budget size=10 B is below the smallest model this space can build" in message
    assert f" B: {SMALLEST}); widen --budget or the space" in message
    smallest = int(re.search(r"\(([0-9,]+) B: ", message).group(1).replace(",", ""))
    # the oracle: the .lsl file `lstmlite export` writes for that point once trained (its
    # zero codes may move a bitmask by a few bytes: within SIZE_SLACK, as pruning.py relies on)
    record = run_trial({"cell": "gru", "num_layers": 1, "hidden_size": 4, "weight_bits": 8, "epochs": 1,
                        "lr": 0.02}, {"source": tiny_data, "task": "classify"}, tmp_path / "t")
    file_bytes = (tmp_path / "t" / "model.lsl").stat().st_size
    assert abs(smallest - file_bytes) <= (SIZE_SLACK - 1) * file_bytes
    # the next model up (hidden 8) is larger than the figure named
    bigger = run_trial({"cell": "gru", "num_layers": 1, "hidden_size": 8, "weight_bits": 8, "epochs": 1,
                        "lr": 0.02}, {"source": tiny_data, "task": "classify"}, tmp_path / "b")
    assert bigger["size_bytes"] > smallest * SIZE_SLACK
    # exactly at the smallest model's bytes the budget is met; one byte under it is not
    check_feasible(load_space(SPACE), {"source": tiny_data, "task": "classify"}, {"size": smallest})
    assert f"size={smallest - 1:,} B" in _refusal({"size": smallest - 1}, tiny_data)
    assert record["size_kind"] == "lsl"


def test_a_ram_budget_below_the_smallest_model_is_refused_too(tiny_data, tmp_path):
    """The RAM is the trials' own figure: the Cortex-M4 RAM of the C project `lstmlite
    export --format c` writes, the oracle here for GRU(H=4) on 3 features with 2 classes
    and fp32 weights (int8 weights need the int8 kernels' scratch, so fp32 is the leaner).
    Catches the RAM budget dropped from the pre-check, the largest model's RAM taken for
    the smallest, and (planted and failing it) the pre-check measuring RAM by the old
    float32 estimate while the trials use the C project's."""
    import torch

    from lstmlite.export.c import export_c
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(0)
    smallest = export_c(SequenceClassifier(input_size=3, cell="gru", hidden_size=4, n_classes=2), tmp_path / "c",
                        form="auto").memory["cortex-m4"].ram
    message = _refusal({"ram": smallest - 1}, tiny_data)
    assert message.startswith(f"budget ram={smallest - 1:,} B is below the smallest model this space can build "
                              f"({smallest:,} B of RAM in its C project on a Cortex-M4 (state, scratch and stack): "
                              "cell=gru, num_layers=1, hidden_size=4, weight_bits=32)")
    check_feasible(load_space(SPACE), {"source": tiny_data, "task": "classify"}, {"ram": smallest})
    # a size budget that fits leaves the RAM one to refuse the space
    assert f"ram={smallest - 1:,} B" in _refusal({"size": 1 << 20, "ram": smallest - 1}, tiny_data)


def test_a_sparsity_range_is_tried_at_both_ends(tiny_data, tmp_path):
    """A sparsity range is measured at low and high (feasible.py: pruned weights are stored
    as a bitmask, so the sparsest point is usually the smallest but not always): here the
    0.9-sparse GRU's file is smaller than the dense one, so the smallest model named is the
    sparse one. Catches the range taken at ``low`` only, which names the dense model."""
    from lstmlite.search.trial import run_trial

    space = {"params": {"cell": {"choices": ["gru"]}, "hidden_size": {"low": 16, "high": 32, "step": 16},
                        "sparsity": {"low": 0.0, "high": 0.9}}, "fixed": {"epochs": 1, "lr": 0.02}}
    with pytest.raises(BudgetError) as info:
        check_feasible(load_space(space), {"source": tiny_data, "task": "classify"}, {"size": 10})
    assert "B: cell=gru, hidden_size=16, sparsity=0.9)" in str(info.value)
    # the oracle: the files trained trials of both ends write
    sizes = {s: run_trial({"cell": "gru", "hidden_size": 16, "sparsity": s, "epochs": 1, "lr": 0.02},
                          {"source": tiny_data, "task": "classify"}, tmp_path / str(s))["size_bytes"]
             for s in (0.0, 0.9)}
    assert sizes[0.9] < sizes[0.0]


@pytest.mark.parametrize("proj, named", [({"choices": [0, 4]}, "proj_size=4"), ({"low": 0, "high": 8}, "proj_size=1")])
def test_an_lstm_projection_is_tried_on_as_well_as_off(tiny_data, tmp_path, proj, named):
    """proj_size 0 is "no projection", the LSTM's full and largest form: the pre-check
    tries the projected points too (a range at its smallest projection, 1), so a budget
    only a projected LSTM meets is searched, and the refusal names the projected model.
    Oracle: the .lsl file a trained trial of the projected point writes fits 3 KB, the
    unprojected one's does not. Planted and failing it: proj_size taken at its low end as
    a growing key (0: the refusal of a budget the space meets, naming proj_size=0)."""
    from lstmlite.search.trial import run_trial

    space = {"params": {"proj_size": proj}, "fixed": {"cell": "lstm", "hidden_size": 16, "epochs": 1, "lr": 0.02}}
    data = {"source": tiny_data, "task": "classify"}
    check_feasible(load_space(space), data, {"size": 3072})
    with pytest.raises(BudgetError, match=rf"B: {named}\); widen"):
        check_feasible(load_space(space), data, {"size": 10})
    sizes = {p: run_trial({"cell": "lstm", "hidden_size": 16, "proj_size": p, "epochs": 1, "lr": 0.02}, data,
                          tmp_path / str(p))["size_bytes"] for p in (0, 4)}
    assert sizes[4] <= 3072 < sizes[0]
