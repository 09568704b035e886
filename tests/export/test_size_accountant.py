"""One size accountant: ``size_bytes`` in metrics.json, in a compressed run's metrics
and in ``eval`` is the byte count of the file ``lstmlite export --format lsl`` writes,
for every shipped recipe and every compressed form, on each cell the runtime runs.

The oracle is the exported file on disk (``stat().st_size``), written by the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lstmlite.cli.main import main
from lstmlite.compress import LowRankConfig, MagnitudePruneConfig, WeightQuantConfig, compress_, compression_state
from lstmlite.compress.recipe import RecipeError, apply_recipe, list_recipes, load_recipe
from lstmlite.io import load_run, save_run
from lstmlite.train import evaluate_run, fit
from lstmlite.train.run import model_metrics

CELLS = ["lstm", "gru", "fastgrnn"]
RECIPES = list_recipes()  # every shipped recipe, whatever ships
#: steps that only apply to token input (they run on a small text run instead of digits)
TOKEN_STEPS = {"vocab_prune", "embedding_quant", "embedding_low_rank"}


def _methods(recipe: str) -> set:
    return {step.method for step in load_recipe(recipe).steps}
FORMS = {
    "fp32": [],
    "int8": [WeightQuantConfig(bits=8)],
    "int4": [WeightQuantConfig(bits=4)],
    "sparse": [MagnitudePruneConfig(sparsity=0.8)],
    "sparse-int8": [MagnitudePruneConfig(sparsity=0.8), WeightQuantConfig(bits=8)],
    "low-rank": [LowRankConfig(rank=3)],
    "low-rank-int4": [LowRankConfig(rank=3), WeightQuantConfig(bits=4)],
}


@pytest.fixture(scope="module", params=CELLS)
def run_dir(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / request.param
    torch.manual_seed(0)
    fit({"data": {"source": "digits"}, "model": {"hidden_size": 12, "cell": request.param},
         "train": {"epochs": 1, "lr": 0.01}}, out, progress=False)
    return out


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory):
    """cell -> a token-input classifier run on a small CSV (for the token-only recipes)."""
    root = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(0)
    words = {"pos": ["good", "great", "fine", "nice", "fun"], "neg": ["bad", "awful", "poor", "sad", "dull"]}
    rows = [(" ".join(rng.choice(words[label], 4)) + " movie", label) for label in ["pos", "neg"] * 60]
    (root / "train.csv").write_text("text,label\n" + "\n".join(f"{t},{l}" for t, l in rows) + "\n")
    runs = {}
    for cell in CELLS:
        torch.manual_seed(0)
        runs[cell] = fit({"data": {"source": str(root / "train.csv"), "task": "classify"},
                          "model": {"embed_dim": 8, "hidden_size": 8, "cell": cell},
                          "train": {"epochs": 1, "batch_size": 16}}, root / cell, progress=False).path
    return runs


def _exported_bytes(run, tmp_path, capsys) -> int:
    out = tmp_path / "export" / "model.lsl"
    assert main(["export", str(run), "--format", "lsl", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "l0.0.w_hh" in printed  # the per-tensor listing: precision and bytes
    return out.stat().st_size


def test_a_trained_run_is_its_exported_file(run_dir, tmp_path, capsys):
    metrics = load_run(run_dir).metrics
    assert metrics["size_basis"] == "lsl"
    assert metrics["size_bytes"] == _exported_bytes(run_dir, tmp_path, capsys)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_shipped_recipe_reports_its_exported_file(request, run_dir, tmp_path, capsys, recipe):
    cell = run_dir.name
    if _methods(recipe) & TOKEN_STEPS:
        run_dir = request.getfixturevalue("text_runs")[cell]  # built only when a recipe needs it
    if cell == "fastgrnn" and "hidden_unit_prune" in _methods(recipe):
        # hidden-unit pruning takes LSTM / GRU layers only: refused, naming the layer kind
        with pytest.raises(RecipeError, match="hidden-unit pruning needs an lstmlite LSTM/GRU layer.*got FastGRNN"):
            apply_recipe(run_dir, recipe, tmp_path / recipe, max_epochs=0, progress=False)
        return
    shipped = load_recipe(recipe)
    if shipped.tasks and "classify" not in shipped.tasks:  # seq2seq-small: refused on a classifier run ...
        with pytest.raises(RecipeError, match=f"recipe {recipe} is for .* runs, not this classify run"):
            apply_recipe(run_dir, recipe, tmp_path / recipe, max_epochs=0, progress=False)
        shipped.tasks = []  # ... yet its steps' sizes are still files' bytes: applied without the task check
    result = apply_recipe(run_dir, shipped, tmp_path / recipe, max_epochs=0, progress=False)
    size = _exported_bytes(result.path, tmp_path, capsys)
    assert result.metrics["size_bytes"] == size
    # recipe.json's per-step sizes are files' bytes too: the last step's is this file's
    applied = json.loads((result.path / "recipe.json").read_text())["applied"]
    assert applied[-1]["size_bytes"] == size
    assert result.metrics["baseline_size_bytes"] == load_run(run_dir).metrics["size_bytes"]
    assert evaluate_run(result.path)["size_bytes"] == size
    assert result.metrics["nonzero_params"] <= result.metrics["params"]


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_form_reports_its_exported_file(run_dir, tmp_path, capsys, form):
    run = load_run(run_dir)
    model = run.model
    for config in FORMS[form]:
        compress_(model, config)
    metrics = model_metrics(model)
    out = save_run(tmp_path / form, model, {**run.config, "compression": compression_state(model)},
                   metrics=metrics)
    size = _exported_bytes(out, tmp_path, capsys)
    assert metrics["size_basis"] == "lsl" and metrics["size_bytes"] == size
    assert metrics["nonzero_params"] <= metrics["params"]
    if form.startswith("low-rank"):
        # the runtime multiplies by the two factors: r (rows + cols) per matrix, not rows * cols
        assert metrics["macs_per_step"] < model.rnn.hidden_size * (model.rnn.hidden_size + 8) * 3


def test_eval_sizes_lists_the_file_tensor_by_tensor(run_dir, capsys):
    assert main(["eval", str(run_dir), "--sizes"]) == 0
    out = capsys.readouterr().out
    size = load_run(run_dir).metrics["size_bytes"]
    assert "l0.0.w_ih" in out and f"{size:,} B" in out


def test_eval_sizes_json_lists_the_tensors_of_the_exported_file(run_dir, tmp_path, capsys) -> None:
    """``eval --sizes --json`` adds "tensors" (eval's --help): the rows the exported .lsl
    file holds (describe_lsl of the file export writes), summing to size_bytes. Catches the
    rows put under another key or left out of the JSON."""
    from lstmlite.runtime.lsl import describe_lsl

    _exported_bytes(run_dir, tmp_path, capsys)
    stored = describe_lsl((tmp_path / "export" / "model.lsl").read_bytes())
    assert main(["eval", str(run_dir), "--sizes", "--json"]) == 0
    tensors = json.loads(capsys.readouterr().out)["tensors"]
    assert [(t["name"], t["bytes"]) for t in tensors] == [(t["name"], t["bytes"]) for t in stored]
    assert sum(t["bytes"] for t in tensors) == load_run(run_dir).metrics["size_bytes"]


def test_a_model_without_a_file_says_its_size_is_an_estimate(tmp_path, capsys):
    from lstmlite.compress import size_bytes
    from lstmlite.nn import SequenceClassifier

    model = SequenceClassifier(input_size=8, hidden_size=16, n_classes=3, cell="glstm", rnn_options={"groups": 2})
    metrics = model_metrics(model)
    assert metrics["size_basis"] == "estimate" and metrics["size_bytes"] == size_bytes(model)
    run = save_run(tmp_path / "glstm", model, {"task": "classify"}, metrics=metrics)
    assert main(["export", str(run), "--format", "lsl", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GroupedLSTM" in err[0] and "nearest exportable form" in err[0]


def test_a_block_sparse_model_is_sized_as_the_file_export_writes(tmp_path, capsys):
    """Where the (1, 4)-block form is the smallest (auto picks it, fp32 would not), the size the
    accountant and the search report is still the exported file's."""
    from lstmlite.export.size import account, lsl_image
    from lstmlite.nn import SequenceClassifier
    from lstmlite.search.objectives import deployable_bytes

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=128, hidden_size=16, n_classes=4)
    compress_(model, MagnitudePruneConfig(sparsity=0.9, block=(1, 4)))
    compress_(model, WeightQuantConfig(bits=8))
    model.eval()
    run = save_run(tmp_path / "run", model, {"task": "classify", "compression": compression_state(model)})
    size = _exported_bytes(run, tmp_path, capsys)
    assert account(model).size_bytes == len(lsl_image(model)) == size
    assert any(row["dtype"] == "int8 block-sparse" for row in account(model).tensors)
    assert deployable_bytes(model, tmp_path / "trial.lsl") == (size, "lsl")


def test_macs_per_step_count_what_the_runtime_multiplies():
    """MACs per step, by hand: a low-rank matrix costs r (rows + cols), a language model's
    head runs at every step, a (1, 4)-block-sparse matrix costs 4 per kept block (counted
    from the weights) and a bitmask-sparse one its dense size (it is expanded at load).
    Catches the factors, the per-step head or the kept blocks left out of the count."""
    from lstmlite.export.size import account
    from lstmlite.nn import LanguageModel, SequenceClassifier

    torch.manual_seed(0)
    low_rank = SequenceClassifier(input_size=8, hidden_size=12, n_classes=3)
    compress_(low_rank, LowRankConfig(rank=3))
    assert account(low_rank).macs_per_step == 3 * (48 + 8) + 3 * (48 + 12)  # w_ih, w_hh as U V
    lm = LanguageModel(vocab_size=40, embed_dim=8, hidden_size=12)
    assert account(lm).macs_per_step == 4 * 12 * (8 + 12) + 40 * 12  # the head reads every step
    sparse = SequenceClassifier(input_size=128, hidden_size=16, n_classes=4)
    compress_(sparse, MagnitudePruneConfig(sparsity=0.9, block=(1, 4)))
    compress_(sparse, WeightQuantConfig(bits=8))
    forms = {row["name"]: row["dtype"] for row in account(sparse).tensors}
    assert forms["l0.0.w_ih"] == "int8 block-sparse" and forms["l0.0.w_hh"] == "int8 bitmask-sparse"
    kept_blocks = int((sparse.rnn.weight_ih_l0.detach().reshape(64, 32, 4) != 0).any(-1).sum())
    assert account(sparse).macs_per_step == 4 * kept_blocks + 64 * 16


def test_macs_per_step_count_an_lstm_projection():
    """A projected LSTM multiplies W_ih (4H x I), W_hh (4H x P) and its projection W_hr
    (P x H) every step: 4·16·8 + 4·16·4 + 4·16 = 832 by hand for I=8, H=16, P=4.
    Catches W_hr left out of the count (search's MAC objective would then favour
    projections for nothing)."""
    from lstmlite.export.lsl import spec_from_module, write_lsl
    from lstmlite.export.size import macs_from_image

    layer = torch.nn.LSTM(8, 16, proj_size=4, batch_first=True)
    assert macs_from_image(write_lsl(spec_from_module(layer))) == 4 * 16 * 8 + 4 * 16 * 4 + 4 * 16


@pytest.mark.parametrize("weights", [None, "int8"])
def test_a_seq2seq_model_is_sized_as_its_three_files(tmp_path, weights):
    """A seq2seq model deploys as encoder.lsl, decoder.lsl and seq2seq.safetensors: the account's
    size is their bytes on disk together (os.path.getsize of what export_seq2seq_lsl writes with
    the same ``weights``), its rows are each .lsl file's tensors under that file's prefix, summing
    to that file's bytes, plus one row holding the side file's bytes, and its MACs per step are
    the decoder's matrices plus combine and head, counted from their shapes. Catches the side
    file's row or bytes left out, every row named encoder:, ``weights`` ignored (int8 files
    sized as fp32) and the MACs dropped to 0."""
    import os

    from lstmlite.export.seq2seq import export_seq2seq_lsl
    from lstmlite.export.size import account
    from lstmlite.nn import Seq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=15, embed_dim=6, hidden_size=8, attention="luong", score="general").eval()
    paths = {p.name: os.path.getsize(p) for p in export_seq2seq_lsl(model, tmp_path, weights=weights)}
    acc = account(model, weights)
    assert acc.basis == "lsl" and acc.size_bytes == sum(paths.values())
    for prefix in ("encoder", "decoder"):
        rows = [row for row in acc.tensors if row["name"].startswith(f"{prefix}:")]
        assert rows and sum(row["bytes"] for row in rows) == paths[f"{prefix}.lsl"]
    assert [row["bytes"] for row in acc.tensors if row["name"] == "seq2seq.safetensors"] == \
        [paths["seq2seq.safetensors"]]
    recurrent = sum(p.numel() for name, p in model.decoder.named_parameters() if "weight" in name)
    assert acc.macs_per_step == recurrent + model.combine.weight.numel() + model.head.weight.numel()


def test_a_model_without_a_file_still_counts_its_macs_and_says_why(tmp_path):
    """A grouped LSTM (no .lsl file) is sized by the storage estimate, with basis "estimate", the
    export's one-line reason, and the MACs its block-diagonal gates take per step, by hand:
    2 groups of 4 * 8 * (4 + 8) for I=8, H=16 (not 0). Catches the reason or the MACs dropped
    and the estimate reported as a file's bytes."""
    from lstmlite.compress import size_bytes
    from lstmlite.export.size import account
    from lstmlite.nn import SequenceClassifier

    model = SequenceClassifier(input_size=8, hidden_size=16, n_classes=3, cell="glstm", rnn_options={"groups": 2})
    acc = account(model)
    assert acc.basis == "estimate" and acc.size_bytes == size_bytes(model) and acc.tensors == []
    assert acc.reason and "GroupedLSTM" in acc.reason and "\n" not in acc.reason
    assert acc.macs_per_step == 2 * 4 * 8 * (4 + 8)


@pytest.mark.parametrize("weights", ["fp32", "int8", "int4"])
def test_the_weight_form_asked_for_is_the_file_sized(tmp_path, capsys, weights):
    """account(model, weights) and lsl_image(model, weights) size the file ``lstmlite export
    --format lsl --weights WEIGHTS`` writes for a float run, to the byte (the file on disk),
    and int8 / int4 files come out smaller than fp32. Catches ``weights`` ignored (every form
    sized as the model's default, fp32)."""
    from lstmlite.export.size import account, lsl_image
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=8, hidden_size=16, n_classes=3).eval()
    run = save_run(tmp_path / "run", model, {"task": "classify"})
    out = tmp_path / f"{weights}.lsl"
    assert main(["export", str(run), "--format", "lsl", "--weights", weights, "--out", str(out)]) == 0
    capsys.readouterr()
    assert account(model, weights).size_bytes == len(lsl_image(model, weights)) == out.stat().st_size
    if weights != "fp32":
        assert out.stat().st_size < account(model, "fp32").size_bytes
