"""Recipes: parsing (good and bad files), the shipped recipes end to end, run-dir contents.

Oracles: the source run's own stored metric (the baseline is re-measured on the same
test split), ``evaluate_run`` on the written run dir (save → load → evaluate must give
the stored metric), ``load_data`` with a smaller ``max_vocab`` (vocabulary pruning),
and counts of zeros in the stored tensors.
"""

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from lstmlite.compress import summary
from lstmlite.compress.recipe import (RecipeError, apply_recipe, find_recipe, list_recipes, load_recipe,
                                      parse_recipe)
from lstmlite.io import RunDirError, load_run
from lstmlite.train import evaluate_run, fit

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ["fastgrnn-tiny", "int8", "prune-agp-80", "seq2seq-small", "shrink", "shrink-int8", "text-tiny", "tiny"]


# ----- parsing ------------------------------------------------------------------------------------
GOOD_YAML = """
name: mixed
description: every form a step can take
train: {lr: 0.002, batch_size: 16}
distill: {temperature: 3.0}
steps:
  - student: {width: 0.5}
    distill_epochs: 4
  - method: int8_weight
    bits: 8
    targets: ["rnn.weight_*"]
  - config: {type: low_rank, version: 1, data: {rank: 2, energy: null}}
    finetune_epochs: 1
    train: {weight_decay: 0.01}
  - method: gradual_prune
    final_sparsity: 0.5
    end_epoch: 2
    updates: 4
    distill_epochs: 3
    distill: {alpha: 0.9}
"""


def test_good_yaml_parses_into_steps(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD_YAML)
    recipe = load_recipe(path)
    assert recipe.name == "mixed" and recipe.train == {"lr": 0.002, "batch_size": 16}
    s = recipe.steps
    assert s[0].method is None and s[0].student == {"width": 0.5} and s[0].distill_epochs == 4
    assert s[1].method == "weight_quant" and s[1].params == {"bits": 8} and s[1].epochs == 0
    assert s[2].config().to_dict() == {"type": "low_rank", "version": 1, "data": {"rank": 2, "energy": None}}
    assert s[2].train == {"weight_decay": 0.01}
    assert recipe.distill_config(s[3]).to_dict()["data"] == {"temperature": 3.0, "alpha": 0.9, "hidden_weight": 0.0}
    # canonical to_dict reads back as the same recipe; the JSON form of it too
    assert parse_recipe(recipe.to_dict()) == recipe
    json_path = tmp_path / "r.json"
    json_path.write_text(json.dumps(recipe.to_dict()))
    assert load_recipe(json_path) == recipe


def test_gradual_epochs_become_steps():
    step = parse_recipe([{"method": "agp", "final_sparsity": 0.8, "end_epoch": 10, "updates": 20,
                          "finetune_epochs": 15}]).steps[0]
    config = step.config(steps_per_epoch=10)
    assert (config.start_step, config.end_step, config.frequency) == (0, 100, 5)
    assert config.initial_sparsity == 0.0 and config.final_sparsity == 0.8
    assert step.ramp_epochs(10, 15) == 10
    # capped epochs (max_epochs) shrink the schedule in proportion
    assert step.config(steps_per_epoch=10, epochs=3).end_step == 20
    default = parse_recipe([{"method": "gradual_prune", "final_sparsity": 0.5, "finetune_epochs": 9}]).steps[0]
    assert default.config(steps_per_epoch=4).end_step == 6 * 4  # two thirds of the epochs


def test_capped_gradual_schedule_scales_its_start_too_and_ramps_over_partial_epochs():
    """start_epoch 3 .. end_epoch 9 of 12 epochs, 4 updates: by hand, 10 steps per epoch give
    steps 30..90 every (90 - 30) / 4 = 15; capped to 4 epochs the whole window shrinks by
    4/12 to epochs 1..3, steps 10..30 every 5. A ramp ending at epoch 2.5 runs 3 epochs.
    Catches the start left unscaled, the frequency counted from step 0, and the ramp's
    epochs rounded down (the masks still change in the third epoch)."""
    step = parse_recipe([{"method": "agp", "final_sparsity": 0.8, "start_epoch": 3, "end_epoch": 9,
                          "updates": 4, "finetune_epochs": 12}]).steps[0]
    full = step.config(steps_per_epoch=10)
    assert (full.start_step, full.end_step, full.frequency) == (30, 90, 15)
    capped = step.config(steps_per_epoch=10, epochs=4)
    assert (capped.start_step, capped.end_step, capped.frequency) == (10, 30, 5)
    partial = parse_recipe([{"method": "agp", "final_sparsity": 0.5, "end_epoch": 2.5,
                             "finetune_epochs": 6}]).steps[0]
    assert partial.config(steps_per_epoch=10).end_step == 25
    assert partial.ramp_epochs(10, 6) == 3


def test_targets_filter_globs_tensor_names():
    accept = parse_recipe([{"method": "int8", "targets": ["rnn.weight_hh_*", "head.weight"]}]).steps[0].filter()
    assert accept("rnn", None, "weight_hh_l0") and accept("head", None, "weight")
    assert not accept("rnn", None, "weight_ih_l0") and not accept("embedding", None, "weight")


@pytest.mark.parametrize("text,message", [
    ("steps: [\n  - method: int8\n", "cannot parse recipe"),
    ("- 1\n- 2\n", "step 1 (?): a step must be a mapping"),
    ("42\n", "a recipe is a mapping"),
    ("steps: []\n", "'steps' must be a non-empty list"),
    ("stepz: [{method: int8}]\n", "unknown key(s) ['stepz']"),
    ("version: 2\nsteps: [{method: int8}]\n", "recipe version 2 is not supported"),
    ("version: true\nsteps: [{method: int8}]\n", "recipe version True is not supported"),  # True == 1 in Python
    ("steps: [{method: int9}]\n", "step 1 (int9): unknown method 'int9'; known:"),
    ("steps: [{method: weight_quant, bitz: 8}]\n", "step 1 (weight_quant): unknown key(s) ['bitz'] for method "
                                                 "'weight_quant'; its keys: bits, "),
    # a step key misspelt: the list names the step keys too (it listed the method's own alone)
    ("steps: [{method: prune, sparsity: 0.5, finetune_epoch: 1}]\n",
     "unknown key(s) ['finetune_epoch'] for method 'prune'; its keys: block, scope, sparsity; step keys: distill, "
     "distill_epochs, finetune_epochs, method, student, targets, train"),
    # a gradual schedule's epoch keys are its keys too
    ("steps: [{method: gradual_prune, final_sparsty: 0.5}]\n",
     "its keys: block, end_epoch, end_step, final_sparsity, frequency, initial_sparsity, scope, start_epoch, "
     "start_step, updates; step keys"),
    ("steps: [{method: weight_quant, bits: 12}]\n", "bits must be an int in 2..8"),
    ("steps: [{method: int8_weight, bits: 4}]\n", "method 'int8_weight' means bits=8"),
    ("steps: [{method: int8}, {method: low_rank, rank: 2, finetune_epochs: 1, distill_epochs: 1}]\n",
     "step 2 (low_rank): give finetune_epochs or distill_epochs, not both"),
    ("steps: [{student: {width: 0.5}, finetune_epochs: 2}]\n", "a student is trained by distillation"),
    ("steps: [{method: int8, finetune_epochs: 1, train: {epochs: 3}}]\n", "not train.epochs"),
    ("train: {learning_rate: 0.1}\nsteps: [{method: int8}]\n", "unknown train option(s) ['learning_rate']"),
    ("steps: [{method: gradual_prune, final_sparsity: 0.8}]\n", "give finetune_epochs or distill_epochs"),
    ("steps: [{method: gradual_prune, final_sparsity: 1.5, finetune_epochs: 2}]\n", "final_sparsity"),
    ("steps: [{config: {type: magic, version: 1, data: {}}}]\n", "unknown compression config type 'magic'"),
    ("steps: [{finetune_epochs: 0}]\n", "an empty step"),
    ("steps: [{method: int8, distill: {temperature: 0}}]\n", "temperature must be positive"),
    ("steps: [{bits: 8}]\n", "unknown step key(s) ['bits']"),
    ("steps: [{method: vocab_prune, coverage: 1.5}]\n", "coverage must be a fraction in (0, 1]"),
    ("steps: [{method: vocab_prune, coverage: 0.9, keep: 100}]\n", "give keep (a vocabulary size) or coverage"),
    ("steps: [{method: int8, coverage: 0.9}]\n", "unknown key(s) ['coverage']"),
    ("fits: [1]\nsteps: [{method: int8}]\n", "fits must be a string"),
    ("tasks: classify\nsteps: [{method: int8}]\n", "tasks must be a list of task names"),
    ("tasks: [classify, tagging]\nsteps: [{method: int8}]\n", "unknown task(s) ['tagging'] in tasks"),
    # valid distill settings on a fine-tuning step, and a zero-width student: both refused
    ("steps: [{method: int8, finetune_epochs: 1, distill: {alpha: 0.9}}]\n", "distill settings need distill_epochs"),
    ("steps: [{student: {width: 0}, distill_epochs: 2}]\n", "student width must be a positive number, got 0"),
    # start/end_step made the epoch keys vanish (frequency 100 then outran end_step 30); frequency
    # replaced updates
    ("steps: [{method: agp, final_sparsity: 0.5, start_step: 0, end_step: 30, end_epoch: 2, updates: 3, "
     "finetune_epochs: 3}]\n", "give the schedule in epochs (end_epoch, updates) or in steps (end_step, start_step), "
     "not both"),
    ("steps: [{method: agp, final_sparsity: 0.5, updates: 3, frequency: 7, finetune_epochs: 3}]\n",
     "give the schedule in epochs (updates) or in steps (frequency), not both"),
    # the explicit hidden_size replaced the scaled one: width was ignored without a word
    ("steps: [{student: {width: 0.5, hidden_size: 32}, distill_epochs: 2}]\n",
     "student: give width (a scale of the current sizes) or hidden_size, not both"),
    # a ramp that ends before it starts (or starts after the step's training) used to collapse
    # silently into one jump to the final sparsity at start_epoch
    ("steps: [{method: agp, final_sparsity: 0.5, start_epoch: 5, end_epoch: 2, finetune_epochs: 6}]\n",
     "start_epoch (5) must be before end_epoch (2, within the step's 6 epochs)"),
    ("steps: [{method: agp, final_sparsity: 0.5, start_epoch: 8, finetune_epochs: 6}]\n",
     "start_epoch (8) must be before end_epoch (4, within the step's 6 epochs)"),
    # a count of mask updates: 0 used to run as 1 update and 2.5 as 2, silently
    ("steps: [{method: agp, final_sparsity: 0.5, updates: 0, finetune_epochs: 6}]\n",
     "updates (mask updates over the ramp) must be at least 1, got 0"),
    ("steps: [{method: agp, final_sparsity: 0.5, updates: 2.5, finetune_epochs: 6}]\n",
     "updates: expected a whole number, got 2.5"),
])
def test_bad_recipes_give_one_clear_line(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert message in str(err.value)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_the_module_doc_names_every_shipped_recipe():
    """The module doc's list of shipped recipes had left out shrink-int8 and seq2seq-small."""
    from lstmlite.compress import recipe

    assert sorted(list_recipes()) == SHIPPED
    named = recipe.__doc__[recipe.__doc__.index("Shipped recipes"):]
    assert [n for n in SHIPPED if f"``{n}``" not in named] == []


def test_int8_does_not_promise_to_run_without_data(tmp_path, digits_run):
    """int8's fits line said "no training, so no data needed", but a recipe measures the model
    on its data before and after (docs/tutorials/bring-your-model.md: "even int8 ... pass it
    with --data"); a run that records no data is refused, naming --data."""
    import shutil

    from lstmlite.io import load_run, save_run

    fits = load_recipe("int8").fits
    assert "no data needed" not in fits and "--data" in fits
    source = load_run(digits_run)
    config = {k: v for k, v in source.config.items() if k != "data"}  # as an imported run records it
    save_run(tmp_path / "imported", source.model, config, metrics=source.metrics)
    with pytest.raises(RunDirError, match="pass --data"):
        apply_recipe(tmp_path / "imported", "int8", tmp_path / "out", progress=False)
    shutil.rmtree(tmp_path / "imported")


def test_unknown_recipe_name_lists_shipped():
    with pytest.raises(RecipeError, match="shipped: fastgrnn-tiny, int8, prune-agp-80, seq2seq-small, shrink, shrink-int8, text-tiny, tiny"):
        load_recipe("no-such-recipe")


def test_shipped_recipes_are_found_by_name_and_match_the_repo_copies():
    assert list_recipes() == SHIPPED
    for name in SHIPPED:
        packaged = find_recipe(name)
        assert packaged.read_bytes() == (REPO / "recipes" / f"{name}.yaml").read_bytes(), name
        recipe = load_recipe(name)
        assert recipe.name == name and recipe.description and recipe.fits
    text = load_recipe("text-tiny")
    assert [s.method for s in text.steps] == ["vocab_prune", "hidden_unit_prune", "embedding_quant", "fake_quant"]
    assert text.steps[0].derived == {"coverage": 0.85}  # measured on the data, not a fixed size
    fast = load_recipe("fastgrnn-tiny")
    assert fast.steps[0].student["cell"] == "fastgrnn"
    assert [s.method for s in fast.steps] == [None, "gradual_prune", "fake_quant"]
    assert all(s.distill_epochs > 0 for s in fast.steps)
    tiny = load_recipe("tiny")
    assert [s.method for s in tiny.steps] == [None, "hidden_unit_prune", "low_rank", "fake_quant"]
    assert all(s.distill_epochs > 0 for s in tiny.steps)
    assert load_recipe("prune-agp-80").steps[0].config(10).final_sparsity == 0.8


# ----- applying ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    fit({"data": {"source": "digits"}, "model": {"hidden_size": 16}, "train": {"epochs": 2, "lr": 0.01}},
        out, progress=False)
    return out


def _digest(path):
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def _check_common(src, out, result):
    source = load_run(src)
    for name in ("config.json", "model.safetensors", "metrics.json", "recipe.json", "history.json"):
        assert (out / name).exists(), name
    m = result.metrics
    assert m["baseline_metric"] == pytest.approx(source.metrics["metric"])
    assert m["baseline_size_bytes"] == source.metrics["size_bytes"]
    assert m["size_bytes"] < m["baseline_size_bytes"]
    # what was stored is what loads back: re-evaluating the written run gives the stored metric
    assert evaluate_run(out)["metric"] == pytest.approx(m["metric"])
    assert evaluate_run(out)["size_bytes"] == m["size_bytes"]
    assert result.config["source_run"] == str(src)


@pytest.mark.parametrize("name", ["int8", "prune-agp-80", "shrink", "tiny"])  # text/fastgrnn-tiny: below
def test_shipped_recipe_applies_end_to_end(digits_run, tmp_path, name):
    before = _digest(digits_run)
    out = tmp_path / name
    result = apply_recipe(digits_run, name, out, max_epochs=3 if name == "prune-agp-80" else 2, progress=False)
    assert _digest(digits_run) == before  # the source run is never modified
    _check_common(digits_run, out, result)
    rows = {r["name"]: r for r in summary(result.model)}
    applied = json.loads((out / "recipe.json").read_text())["applied"]
    assert len(applied) == len(load_recipe(name).steps)
    if name == "int8":
        assert all(rows[n]["bits"] == 8 for n in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"))
        # int8 codes + one fp32 scale per output row for each matrix; biases stay fp32
        model = result.model
        expected = sum(w.numel() + 4 * w.shape[0] for w in (model.rnn.weight_ih_l0, model.rnn.weight_hh_l0,
                                                             model.head.weight))
        expected += 4 * sum(b.numel() for b in (model.rnn.bias_ih_l0, model.rnn.bias_hh_l0, model.head.bias))
        assert expected < result.metrics["size_bytes"] < expected + 2048  # + header, tables, metadata
    if name == "prune-agp-80":
        # 15 epochs capped to 3: pruning over the first 2 (10/15 of them), then one at 80 %, which holds
        # whatever epoch validation chose
        for n in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"):
            assert rows[n]["sparsity"] >= 0.8 - 1e-3, n
        assert applied[0]["sparsity"] == pytest.approx(0.8, abs=1e-2)
        assert {h["phase"] for h in json.loads((out / "history.json").read_text())} == {0, 1}
    if name == "shrink":
        assert result.model.rnn.hidden_sizes == [8]
        assert result.metrics["macs_per_step"] == 4 * 8 * (8 + 8)  # LSTM: 4H(I + H), digits rows have I = 8
        assert result.metrics["baseline"]["macs_per_step"] == 4 * 16 * (8 + 16)
    if name == "tiny":
        assert result.model.rnn.hidden_sizes[0] < 8
        assert rows["rnn.weight_hh_l0"]["rank"] is not None and rows["rnn.weight_hh_l0"]["bits"] == 8
        assert applied[0]["mode"] == "distill" and applied[0]["student"]["hidden_size"] == 8


def test_a_step_whose_default_targets_choose_nothing_says_so(digits_run, tmp_path, caplog):
    """embedding_int8 on a model without an embedding changes nothing: a WARNING names the step
    (it wrote a "compressed" run of the same bytes without a word), while a step that does
    change the model (int8) gives none."""
    import logging

    with caplog.at_level(logging.WARNING, logger="lstmlite"):
        apply_recipe(digits_run, [{"method": "embedding_int8"}], tmp_path / "noop", progress=False)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("step embedding_quant changes nothing in this model" in line for line in said), said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lstmlite"):
        apply_recipe(digits_run, "int8", tmp_path / "int8", progress=False)
    assert not [r for r in caplog.records if "changes nothing" in r.getMessage()]


def test_existing_output_and_failing_step_are_clear_errors(digits_run, tmp_path):
    with pytest.raises(RunDirError, match="already exists"):
        apply_recipe(digits_run, "int8", digits_run, progress=False)
    bad = [{"method": "prune", "sparsity": 0.5}, {"method": "hidden_unit_prune", "fraction": 0.5}]
    with pytest.raises(RecipeError, match=r"step 2 \(hidden_unit_prune\): .*apply hidden-unit pruning first"):
        apply_recipe(digits_run, bad, tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad" / "config.json").exists()


def test_train_epochs_override_is_refused_not_ignored(digits_run, tmp_path):
    """Every step's own epochs replaced train_overrides' epochs, so `lstmlite compress ...
    --train.epochs=1` trained each step its full count without a word; it is refused (pointing
    to max_epochs) before anything runs, as are bad override values."""
    with pytest.raises(ValueError, match=r"^train.epochs does not apply to a recipe .*max_epochs \(--max-epochs\)"):
        apply_recipe(digits_run, "int8", tmp_path / "a", train_overrides={"epochs": 1}, progress=False)
    with pytest.raises(ValueError, match=r"unknown train option\(s\) \['lrr'\]"):
        apply_recipe(digits_run, "int8", tmp_path / "b", train_overrides={"lrr": 0.1}, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_targets_that_name_no_tensor_are_refused(digits_run, tmp_path):
    """A step whose targets matched nothing (a typo: rnn.weights_*) changed nothing and wrote
    the run as if it had quantized, saying so only in an INFO log line."""
    bad = [{"method": "int8", "targets": ["rnn.weights_*", "head.weights"]}]
    with pytest.raises(RecipeError, match=r"step 1 \(weight_quant\): targets \['rnn.weights_\*', 'head.weights'\] "
                                          r"match no tensor of the model \(its tensors: rnn.weight_ih_l0, "):
        apply_recipe(digits_run, bad, tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad" / "config.json").exists()


def test_a_steps_warning_is_logged_once_not_again_by_the_check_before_training(digits_run, tmp_path, caplog):
    """The check before training applies every step to a copy; its notes would repeat the
    real run's (each partly unmatched target twice). Catches the check logging at all."""
    import logging

    recipe = [{"method": "int8", "targets": ["rnn.weight_hh_l0", "embedding.weight"]}]
    with caplog.at_level(logging.WARNING, logger="lstmlite"):
        apply_recipe(digits_run, recipe, tmp_path / "out", progress=False)
    assert caplog.text.count("['embedding.weight'] match no tensor") == 1
    assert logging.getLogger("lstmlite").level == logging.NOTSET  # the package's level is put back


def test_gradual_step_with_no_epochs_still_reaches_its_final_sparsity(digits_run, tmp_path):
    """max_epochs=0 (no training) left a gradual_prune step's masks at initial_sparsity:
    prune-agp-80 wrote an unpruned model (sparsity 0, the baseline's size) while a
    magnitude_prune step did prune; it now prunes to the final sparsity at once."""
    result = apply_recipe(digits_run, "prune-agp-80", tmp_path / "out", max_epochs=0, progress=False)
    rows = {r["name"]: r for r in summary(result.model)}
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"):
        assert rows[name]["sparsity"] >= 0.8 - 1e-3, name
    applied = json.loads((tmp_path / "out" / "recipe.json").read_text())["applied"][0]
    assert applied["mode"] == "none" and applied["sparsity"] == pytest.approx(0.8, abs=1e-2)
    assert result.metrics["size_bytes"] < result.metrics["baseline_size_bytes"]


def test_a_later_gradual_step_leaves_an_earlier_ones_masks_alone(digits_run, tmp_path):
    """The second gradual step's scheduler, counting from step 0 again, drove every gradual
    mask of the model: it replayed the first step's ramp on head.weight and left it at that
    ramp's sparsity at the second step's end (0.56 instead of 0.8 by the cubic schedule),
    bringing pruned weights back; the step's recorded sparsity averaged both steps' masks."""
    steps = [{"method": "agp", "final_sparsity": 0.8, "end_epoch": 2, "updates": 2, "finetune_epochs": 2,
              "targets": ["head.weight"]},
             {"method": "agp", "final_sparsity": 0.5, "end_epoch": 1, "updates": 2, "finetune_epochs": 1,
              "targets": ["rnn.weight_*"]}]
    result = apply_recipe(digits_run, {"steps": steps, "train": {"batch_size": 128}}, tmp_path / "out",
                          progress=False)
    rows = {r["name"]: r for r in summary(result.model)}
    assert rows["head.weight"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert rows["rnn.weight_ih_l0"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    applied = json.loads((tmp_path / "out" / "recipe.json").read_text())["applied"]
    assert [a["sparsity"] for a in applied] == [pytest.approx(0.8, abs=0.01), pytest.approx(0.5, abs=0.01)]


def _write_texts(path, rng):
    words = [f"w{i}" for i in range(30)]
    p = 1.0 / np.arange(1, 31)
    p /= p.sum()
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for _ in range(160):
            tokens = rng.choice(words, size=rng.integers(3, 8), p=p)
            writer.writerow([" ".join(tokens), "a" if "w1" in tokens else "b"])


def test_vocab_prune_recipe_rewrites_vocab_and_data_spec(tmp_path):
    path = tmp_path / "texts.csv"
    _write_texts(path, np.random.default_rng(0))
    src = tmp_path / "src"
    fit({"data": {"source": str(path)}, "model": {"embed_dim": 8, "hidden_size": 8}, "train": {"epochs": 1}},
        src, progress=False)
    recipe = [{"method": "vocab_prune", "keep": 10, "finetune_epochs": 1}, {"method": "embedding_int4"}]
    out = tmp_path / "out"
    result = apply_recipe(src, recipe, out, progress=False)
    vocab = json.loads((out / "vocab.json").read_text())["tokens"]
    assert vocab == json.loads((src / "vocab.json").read_text())["tokens"][:10]
    assert result.config["data"]["max_vocab"] == 10
    assert result.model.embedding.num_embeddings == 10
    assert next(r for r in summary(result.model) if r["name"] == "embedding.weight")["bits"] == 4
    # evaluate_run rebuilds the data from the rewritten spec: same arrays as used in apply_recipe
    _check_common(src, out, result)


def test_language_model_recipe_with_vocab_prune_and_distillation(tmp_path):
    path = tmp_path / "text.txt"
    rng = np.random.default_rng(1)
    path.write_text("".join(rng.choice(list("eeeeaaatttoinsrhldqz "), size=4000)))
    src = tmp_path / "lm"
    fit({"data": {"source": str(path), "seq_len": 32}, "model": {"embed_dim": 8, "hidden_size": 16, "num_layers": 1},
         "train": {"epochs": 1}}, src, progress=False)
    recipe = {"distill": {"temperature": 2.0}, "steps": [
        {"method": "vocab_prune", "keep": 8},
        {"method": "int8_qat", "distill_epochs": 1},
    ]}
    result = apply_recipe(src, recipe, tmp_path / "out", progress=False)
    assert result.model.head.out_features == 8
    assert result.metrics["metric_name"] == "bits_per_char" and np.isfinite(result.metrics["metric"])
    kinds = {t for r in summary(result.model) for t in r["transforms"]}
    assert any(t.startswith("weight_quant int8") for t in kinds)  # QAT frozen to fixed scales
    assert evaluate_run(tmp_path / "out")["metric"] == pytest.approx(result.metrics["metric"])


# ----- derived defaults and the tiny recipes --------------------------------------------------
def _text_run(tmp_path, hidden=8):
    path = tmp_path / "texts.csv"
    _write_texts(path, np.random.default_rng(0))
    src = tmp_path / "src"
    fit({"data": {"source": str(path)}, "model": {"embed_dim": 8, "hidden_size": hidden}, "train": {"epochs": 1}},
        src, progress=False)
    return src


def _coverage_oracle(tokens_per_row, vocab, coverage):
    """Count words in the raw training rows, most frequent first (ids follow frequency)."""
    from collections import Counter

    counts = Counter(t for row in tokens_per_row for t in row)
    total = sum(counts.values())
    covered, keep = counts.get("<unk>", 0), 2
    for token in vocab[2:]:
        if covered / total >= coverage - 1e-12:
            break
        covered += counts[token]
        keep += 1
    return keep


def test_vocab_coverage_is_measured_on_the_training_tokens(tmp_path):
    from lstmlite.compress.embedding.vocab import keep_for_coverage
    from lstmlite.train import load_run_data

    src = _text_run(tmp_path)
    data = load_run_data(load_run(src))
    vocab = data.vocab.tokens
    rows = [[vocab[i] for i in x[:n]] for x, n in zip(data.train.x, data.train.lengths)]
    for coverage in (0.5, 0.8, 0.95, 1.0):
        assert keep_for_coverage(data, coverage) == _coverage_oracle(rows, vocab, coverage), coverage
    assert keep_for_coverage(data, 0.5) < keep_for_coverage(data, 0.95)
    # the recipe resolves coverage into the keep it stores
    step = parse_recipe([{"method": "vocab_prune", "coverage": 0.8}]).steps[0]
    assert step.config(data=data).keep == keep_for_coverage(data, 0.8)
    assert parse_recipe(parse_recipe([{"method": "vocab_prune", "coverage": 0.8}]).to_dict()).steps[0] == step


def test_student_ranks_as_fractions_of_its_width():
    from lstmlite.compress.recipe import _student_config

    config = {"input_size": 12, "hidden_size": 64, "cell": "lstm", "rnn_options": {}}
    student = _student_config(config, {"cell": "fastgrnn", "width": 0.5, "rnn_options": {"urank": 0.25, "wrank": 0.5}})
    assert student["hidden_size"] == 32
    assert student["rnn_options"] == {"urank": 8, "wrank": 6}  # 0.25 * 32, 0.5 * min(12, 32)
    assert _student_config(config, {"rnn_options": {"urank": 3}})["rnn_options"] == {"urank": 3}
    # layers of several widths: urank is a fraction of the smallest (0.5 of 8, not of 16)
    stacked = {**config, "hidden_size": [16, 8], "num_layers": 2}
    assert _student_config(stacked, {"cell": "fastgrnn", "rnn_options": {"urank": 0.5}})["rnn_options"] == {"urank": 4}


def test_text_tiny_applies_to_a_token_model(tmp_path):
    from lstmlite.compress.embedding.vocab import keep_for_coverage
    from lstmlite.train import load_run_data

    src = _text_run(tmp_path)
    keep = keep_for_coverage(load_run_data(load_run(src)), 0.85)
    result = apply_recipe(src, "text-tiny", tmp_path / "out", max_epochs=1, progress=False)
    model = result.model
    assert model.embedding.num_embeddings == keep and result.config["data"]["max_vocab"] == keep
    assert model.rnn.hidden_sizes == [2]  # a quarter of 8
    rows = {r["name"]: r for r in summary(model)}
    assert rows["embedding.weight"]["bits"] == 4
    assert rows["rnn.weight_ih_l0"]["bits"] == 8 and rows["head.weight"]["bits"] == 8
    applied = json.loads((tmp_path / "out" / "recipe.json").read_text())["applied"]
    assert applied[0]["config"]["data"]["keep"] == keep
    assert [a["mode"] for a in applied] == ["distill", "distill", "none", "distill"]
    _check_common(src, tmp_path / "out", result)


def test_text_tiny_refuses_real_valued_input_in_one_line(digits_run, tmp_path):
    with pytest.raises(RecipeError, match=r"step 1 \(vocab_prune\): vocabulary coverage needs token data"):
        apply_recipe(digits_run, "text-tiny", tmp_path / "out", max_epochs=1, progress=False)


def test_a_step_that_cannot_apply_is_refused_before_any_training(tmp_path, monkeypatch):
    """text-tiny on a language model whose head is its embedding: step 3 quantizes the
    embedding to int4, so step 4's QAT finds head.weight quantized already. That was found
    only at step 4, after steps 1 and 2 had distilled for minutes (4 min 22 s on a
    200 KB text). Every step's compression is now tried, untrained, on a copy first."""
    import lstmlite.compress.recipe as recipe_module

    path = tmp_path / "text.txt"
    path.write_text("".join(np.random.default_rng(1).choice(list("eeaattoinsrhl "), size=3000)))
    src = tmp_path / "lm"
    fit({"data": {"source": str(path), "seq_len": 16}, "model": {"embed_dim": 8, "hidden_size": 8,
                                                                 "tie_weights": True},
         "train": {"epochs": 1}}, src, progress=False)

    def no_training(*args, **kwargs):
        raise AssertionError("a step trained before the recipe was refused")

    monkeypatch.setattr(recipe_module, "_train_step", no_training)
    text_tiny = load_recipe("text-tiny")
    text_tiny.tasks = []  # its tasks (classify) would refuse the lm run first: this is about the steps' check
    with pytest.raises(RecipeError) as err:
        apply_recipe(src, text_tiny, tmp_path / "out", progress=False)
    message = str(err.value)
    assert message.startswith("recipe text-tiny step 4 (fake_quant): embedding.weight (one tensor with head.weight) "
                              "is already quantized")
    assert "Found before any training" in message and "not language models with a tied head" in message
    assert not (tmp_path / "out").exists()


def test_fastgrnn_tiny_applies_to_a_sensor_model(digits_run, tmp_path):
    from lstmlite.nn.cells import FastGRNN

    result = apply_recipe(digits_run, "fastgrnn-tiny", tmp_path / "out", max_epochs=2, progress=False)
    rnn = result.model.rnn
    assert isinstance(rnn, FastGRNN) and rnn.hidden_sizes == [8] and rnn.urank == 2  # 16 * 0.5, 8 * 0.25
    rows = {r["name"]: r for r in summary(result.model)}
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0_left", "rnn.weight_hh_l0_right", "head.weight"):
        assert rows[name]["sparsity"] >= 0.5 - 1e-3 and rows[name]["bits"] == 8, name
    _check_common(digits_run, tmp_path / "out", result)


def test_fastgrnn_tiny_student_of_a_bidirectional_model_runs_one_way():
    """fastgrnn-tiny fits classifiers and forecasters "from any lstmlite cell"; a bidirectional
    source used to pass bidirectional=True on to the FastGRNN student, and the recipe died in its
    first step ("FastGRNN is unidirectional")."""
    import torch

    from lstmlite.compress.recipe import _build_student
    from lstmlite.nn import SequenceClassifier
    from lstmlite.nn.cells import FastGRNN

    source = SequenceClassifier(input_size=8, hidden_size=16, n_classes=3, cell="gru", bidirectional=True)
    student = _build_student(source, load_recipe("fastgrnn-tiny").steps[0].student, seed=0)
    assert isinstance(student.rnn, FastGRNN) and student.rnn.hidden_sizes == [8] and student.rnn.urank == 2
    assert student(torch.randn(2, 5, 8)).shape == (2, 3)


def test_a_recipe_for_other_tasks_is_refused_before_any_training(digits_run, tmp_path, monkeypatch):
    """seq2seq-small on a classifier ran (a half-width student, int8) although its fits line
    says seq2seq runs; its ``tasks`` now refuse the classify run in one line naming the
    fits and --list-recipes, before the baseline is measured or a step trains. A recipe
    with the run's task among its tasks, or with none, applies; tasks survive recipe.json's
    round trip."""
    import lstmlite.compress.recipe as recipe_mod

    measured = []
    monkeypatch.setattr(recipe_mod, "_preflight", lambda *a, **k: measured.append(1))
    with pytest.raises(RecipeError, match=r"^recipe seq2seq-small is for seq2seq runs, not this classify run\. "
                                          r"It fits seq2seq runs .*--list-recipes"):
        apply_recipe(digits_run, "seq2seq-small", tmp_path / "out", max_epochs=0, progress=False)
    assert not measured and not (tmp_path / "out").exists()
    assert load_recipe("text-tiny").tasks == ["classify"] and load_recipe("int8").tasks == []
    mine = parse_recipe({"tasks": ["forecast", "classify"], "steps": [{"method": "int8"}]})
    assert parse_recipe(mine.to_dict()).tasks == ["forecast", "classify"]
    recipe_mod.check_recipe_task(mine, "classify")
    with pytest.raises(RecipeError, match="is for forecast / classify runs, not this lm run"):
        recipe_mod.check_recipe_task(mine, "lm")


def test_recipes_with_hidden_unit_pruning_say_they_do_not_fit_seq2seq():
    """shrink, shrink-int8 and tiny said they fit "LSTM or GRU models of any task", yet their
    hidden_unit_prune step refuses a seq2seq model; their fits lines, and the refusal, now name
    what does fit one (seq2seq-small, a narrower student)."""
    from lstmlite.compress import compress_
    from lstmlite.compress.prune.config import HiddenUnitPruneConfig
    from lstmlite.nn import Seq2Seq

    for name in ("shrink", "shrink-int8", "tiny"):  # text-tiny fits token classifiers only
        assert any(s.method == "hidden_unit_prune" for s in load_recipe(name).steps)
        fits = load_recipe(name).fits
        assert "but seq2seq" in fits and "seq2seq-small" in fits, name
    with pytest.raises(ValueError, match=r"^hidden-unit pruning needs .*seq2seq-small recipe does\)$"):
        compress_(Seq2Seq(vocab_size=9, embed_dim=4, hidden_size=4), HiddenUnitPruneConfig(fraction=0.5))


@pytest.mark.parametrize("source_cell, options, student_cell, kept", [
    ("lstm", {"bias": False, "proj_size": 4}, "fastgrnn", {}),
    ("lstm", {"bias": False, "proj_size": 4}, "gru", {"bias": False}),
    ("glstm", {"groups": 4, "bias": False}, "lstm", {"bias": False}),
    ("fastgrnn", {"wrank": 3, "impl": "loop"}, "glstm", {"impl": "loop"}),
])
def test_student_with_another_cell_keeps_only_the_options_that_cell_takes(source_cell, options, student_cell, kept):
    """student: {cell: X} (docs: "any model key such as cell: gru") used to carry the source
    cell's own rnn_options over, so an LSTM distilled into a FastGRNN died with "FastGRNN.__init__()
    got an unexpected keyword argument 'bias'" (G-LSTM -> LSTM: 'groups', FastGRNN -> any: 'wrank')."""
    import torch

    from lstmlite.compress.recipe import _build_student
    from lstmlite.nn import SequenceClassifier

    source = SequenceClassifier(input_size=8, hidden_size=16, n_classes=3, cell=source_cell, rnn_options=options)
    student = _build_student(source, {"cell": student_cell, "width": 0.5}, seed=0)
    assert student.cell == student_cell and student.rnn.hidden_sizes == [8]
    assert {k: student.config()["rnn_options"][k] for k in kept} == kept
    assert student(torch.randn(2, 5, 8)).shape == (2, 3)
    # options the student names itself are taken as given
    named = _build_student(source, {"cell": "fastgrnn", "rnn_options": {"urank": 2}}, seed=0)
    assert named.rnn.urank == 2


def test_student_width_scales_an_lstms_projection_too():
    """width scaled the hidden size but not proj_size, so a projection LSTM with P >= H * width
    (H 16, P 12, width 0.5) could not get a student: "proj_size must be 0 or smaller than
    hidden_size, got [12] for [8]" (the tiny recipe's first step). A tied language model's
    last projection is the embedding's width and stays."""
    import torch

    from lstmlite.compress.recipe import _build_student
    from lstmlite.nn import LanguageModel, SequenceClassifier

    source = SequenceClassifier(input_size=8, hidden_size=16, num_layers=2, n_classes=3, rnn_options={"proj_size": 12})
    student = _build_student(source, {"width": 0.5}, seed=0)
    assert student.rnn.hidden_sizes == [8, 8] and student.rnn.proj_sizes == [6, 6]
    assert student(torch.randn(2, 5, 8)).shape == (2, 3)
    tied = LanguageModel(vocab_size=20, embed_dim=4, hidden_size=16, num_layers=2, tie_weights=True,
                         rnn_options={"proj_size": 4})
    student = _build_student(tied, {"width": 0.5}, seed=0)
    assert student.rnn.hidden_sizes == [8, 8] and student.rnn.proj_sizes == [2, 4]
    assert student.head.weight is student.embedding.weight
    # a projection that rounds to the scaled width or past it stays below it (H 4, P 3 at
    # 0.5: H 2, P round(1.5) = 2 -> 1), and a 1-unit layer has none (H 3, P 2 at 0.3: H 1, P 0)
    from lstmlite.compress.recipe import _student_config

    narrow = _student_config({"hidden_size": [4, 3], "num_layers": 2, "rnn_options": {"proj_size": [3, 2]}},
                             {"width": 0.5})
    assert narrow["hidden_size"] == 2 and narrow["rnn_options"]["proj_size"] == 1
    thin = _student_config({"hidden_size": 3, "rnn_options": {"proj_size": 2}}, {"width": 0.3})
    assert thin["hidden_size"] == 1 and thin["rnn_options"]["proj_size"] == 0


def test_student_width_keeps_a_tied_language_models_last_layer():
    from lstmlite.compress.recipe import _student_config
    from lstmlite.nn import LanguageModel, build_model

    config = LanguageModel(vocab_size=30, embed_dim=8, hidden_size=8, num_layers=2, tie_weights=True).config()
    student = _student_config(config, {"width": 0.5})
    assert student["hidden_size"] == [4, 8]  # the last layer feeds the tied 8-wide embedding matrix
    assert build_model(student).rnn.hidden_sizes == [4, 8]
    untied = _student_config({**config, "tie_weights": False}, {"width": 0.5})
    assert untied["hidden_size"] == 4


def test_gradual_step_counts_every_batch_and_ends_within_its_epochs(digits_run, tmp_path):
    """The trainer runs ceil(rows / batch) steps per epoch (the last batch may be short), so a
    gradual step whose end_epoch (3) lies past its one epoch ends at step ceil(rows / 100)
    and still reaches its final sparsity. Catches the steps per epoch rounded down, and
    end_epoch not clamped to the step's epochs (end_step three epochs away)."""
    from lstmlite.train import load_run_data

    rows = len(load_run_data(load_run(digits_run)).train.y)
    assert rows % 100  # a short last batch
    recipe = {"name": "agp-short", "train": {"batch_size": 100},
              "steps": [{"method": "agp", "final_sparsity": 0.5, "end_epoch": 3, "updates": 2, "finetune_epochs": 1,
                         "targets": ["head.weight"]}]}
    apply_recipe(digits_run, recipe, tmp_path / "out", progress=False)
    applied = json.loads((tmp_path / "out" / "recipe.json").read_text())["applied"][0]
    assert applied["config"]["data"]["end_step"] == -(-rows // 100)
    assert applied["sparsity"] == pytest.approx(0.5, abs=0.01)


def test_targets_partly_unmatched_are_a_warning_not_an_error(caplog):
    """A recipe written for several kinds of model may name a tensor this one lacks
    (``embedding.weight`` on a model without an embedding): as long as some pattern
    matches, the step runs and the unmatched pattern is a warning. Catches refusing
    every step with an unmatched pattern."""
    import logging

    import torch

    from lstmlite.compress.recipe import _check_targets
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2)
    with caplog.at_level(logging.WARNING, logger="lstmlite.compress.recipe"):
        _check_targets(model, ["rnn.weight_hh_l0", "embedding.weight"])
    assert "['embedding.weight'] match no tensor" in caplog.text
    with pytest.raises(ValueError, match="match no tensor of the model"):
        _check_targets(model, ["embedding.weight"])
