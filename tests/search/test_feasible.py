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


def _tiny_text(path, kind):
    import random

    rng = random.Random(0)
    words = "the cat sat on a mat and dog ran".split()
    if kind == "lm":
        path.write_text(" ".join(rng.choice(words) for _ in range(400)))
    elif kind == "seq2seq":
        path.write_text("".join(f"{s}\t{s[::-1]}\n" for s in ("".join(rng.choice("0123") for _ in range(3))
                                                             for _ in range(60))))
    else:  # a forecast series
        import numpy as np

        np.save(path, np.sin(np.arange(120) / 4).astype(np.float32))
    return str(path)


@pytest.mark.parametrize("file, task, params, message", [
    ("t.txt", "lm", {"bidirectional": {"choices": [False, True]}},
     "bidirectional=True builds no model for the lm data (a language model cannot be bidirectional"),
    ("s.npy", None, {"pooling": {"choices": ["last", "max"]}},
     "pooling builds no model for the forecast data (unknown model option(s) ['pooling'] for forecaster)"),
    ("p.tsv", "seq2seq", {"cell": {"choices": ["lstm"]}, "proj_size": {"choices": [0, 4]}},
     "proj_size=4 builds no model for the seq2seq data (unknown model option(s) ['proj_size'] for seq2seq)"),
    ("p.tsv", "seq2seq", {"cell": {"choices": ["fastgrnn", "gru"]}},
     "cell='fastgrnn' builds no model for the seq2seq data (a seq2seq model's cell must be lstm or gru"),
    ("tiny", "classify", {"cell": {"choices": ["gru", "grouped_lstm"]}},
     "cell='grouped_lstm' builds no model for the classify data (input_size=3 is not divisible by groups=2)"),
    ("s.npy", "forecast", {"embed_dim": {"choices": [4, 8]}},
     "embed_dim is for token input, and the forecast data's input is features (no vocabulary, no embedding)"),
    ("tiny", "classify", {"max_vocab": {"choices": [50, 100]}},
     "max_vocab is for token input, and the classify data's input is features"),
    ("t.txt", "lm", {"max_vocab": {"choices": [5, 12]}},
     "max_vocab is not searched for lm: the words it drops become <unk> in the targets too"),
    ("p.tsv", "seq2seq", {"max_vocab": {"choices": [5, 12]}},
     "max_vocab is not searched for seq2seq: the words it drops become <unk> in the targets too"),
])
def test_a_value_that_fits_no_model_of_the_task_is_refused_before_any_trial(tiny_data, tmp_path, capsys, file,
                                                                             task, params, message):
    """A space value that builds no model of the data's task whatever the rest of the
    point is (a bidirectional language model, pooling for a forecaster, an LSTM
    projection or a FastGRNN for seq2seq, a grouped LSTM on 3 features) is one line before
    any trial, naming it, where every trial holding it failed (Optuna's FAIL, trials lost
    from the count) and a search whose trials all failed ended with "no trial met the
    budget None". Planted and failing it: check_buildable not called by search()."""
    from lstmlite.cli.main import main
    from lstmlite.search import search
    from lstmlite.search.space import SpaceError

    data = tiny_data if file == "tiny" else _tiny_text(tmp_path / file, task or "forecast")
    space = {"params": params, "fixed": {"epochs": 1, "hidden_size": 4}}
    with pytest.raises(SpaceError, match=re.escape(message)):
        search(data, task, trials=1, out=tmp_path / "s", space=space)
    assert not (tmp_path / "s").exists()
    import yaml

    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    code = main(["search", "--data", data, *(["--task", task] if task else []), "--space", str(tmp_path / "space.yaml"),
                 "--trials", "1", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0] and err[0].endswith("take it out of the space (--space)")


def test_values_that_build_only_apart_are_left_to_their_trials(tiny_data):
    """FastGRNN and bidirectional each build with the space's other values; only their
    pairing does not, which the space cannot express away: the space is searched (that
    trial fails alone), not refused."""
    from lstmlite.search.feasible import check_buildable

    space = {"params": {"cell": {"choices": ["gru", "fastgrnn"]}, "bidirectional": {"choices": [False, True]}},
             "fixed": {"epochs": 1, "hidden_size": 4}}
    check_buildable(load_space(space), {"source": tiny_data, "task": "classify"})


def test_a_range_whose_high_end_builds_nothing_is_refused_before_the_search(tmp_path):
    """proj_size 0..16 with hidden_size 8: the low end builds, the high end cannot (a
    projection must be smaller than the hidden size), so every trial sampled past 7 would
    fail. The pre-check tries both ends of a range; it tried the low one alone under the
    planted bug."""
    from lstmlite.search.feasible import check_buildable
    from lstmlite.search.space import SpaceError

    from .conftest import make_tiny_npz

    data = {"source": str(make_tiny_npz(tmp_path / "t.npz")), "task": "classify"}
    space = load_space({"params": {"proj_size": {"low": 0, "high": 16}}, "fixed": {"cell": "lstm", "hidden_size": 8}})
    with pytest.raises(SpaceError, match="proj_size=16 builds no model"):
        check_buildable(space, data)
