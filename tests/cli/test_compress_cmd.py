"""``lstmlite compress`` as a user runs it, through ``lstmlite.cli.main.main``."""

import json

import numpy as np
import pytest

from lstmlite.cli.compress_cmd import comparison_table
from lstmlite.cli.main import main
from lstmlite.io import load_run
from lstmlite.train import evaluate_run, fit, load_run_data


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "digits"
    fit({"data": {"source": "digits"}, "model": {"hidden_size": 8}, "train": {"epochs": 1}}, out, progress=False)
    return out


def test_compress_writes_run_and_prints_before_after(run_dir, tmp_path, capsys):
    out = tmp_path / "int8"
    assert main(["compress", str(run_dir), "--recipe", "int8", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "recipe int8: 1 step(s) on digits"  # int8.yaml has one step
    metrics = json.loads((out / "metrics.json").read_text())
    header = next(line for line in printed.splitlines() if "before" in line)
    assert header.split() == ["before", "after", "change"]
    for label in ("test accuracy", "params", "non-zero params", "size", "MACs / step"):
        assert any(line.startswith(label) for line in printed.splitlines()), label
    size_line = next(line for line in printed.splitlines() if line.startswith("size"))
    ratio = metrics["baseline_size_bytes"] / metrics["size_bytes"]
    assert f"{ratio:.1f}x smaller" in size_line
    assert f"run dir: {out}" in printed


def test_recipe_file_and_train_overrides(run_dir, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps:\n  - method: prune\n    sparsity: 0.5\n    finetune_epochs: 1\n")
    out = tmp_path / "pruned"
    assert main(["compress", str(run_dir), "--recipe", str(recipe), "--out", str(out), "--no-progress",
                 "--train.lr=0.0001", "--train.batch_size=64"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert history[0]["lr"] == pytest.approx(0.0001)
    stored = json.loads((out / "recipe.json").read_text())
    assert stored["recipe"]["steps"][0] == {"method": "magnitude_prune", "sparsity": 0.5, "finetune_epochs": 1}


def test_max_epochs_caps_every_step(run_dir, tmp_path, capsys) -> None:
    """--max-epochs N fine-tunes each step for at most N epochs (compress's --help), whatever
    the recipe asks. Catches the option not passed to apply_recipe."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps:\n  - method: int8_weight\n    finetune_epochs: 3\n")
    out = tmp_path / "capped"
    assert main(["compress", str(run_dir), "--recipe", str(recipe), "--max-epochs", "1", "--out", str(out),
                 "--quiet"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and history[0]["step"] == 1


def test_data_option_measures_on_that_data(run_dir, tmp_path, capsys) -> None:
    """--data FILE: the compressed run is measured on FILE's test split (what evaluate_run
    gives on that file) and names it as its data set. Catches --data ignored (the run's own
    digits measured instead)."""
    test = load_run_data(load_run(run_dir)).test
    np.savez(tmp_path / "sub.npz", x=test.x[:40], y=test.y[:40])
    out = tmp_path / "on-sub"
    assert main(["compress", str(run_dir), "--recipe", "int8", "--data", str(tmp_path / "sub.npz"), "--max-epochs",
                 "0", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == str(tmp_path / "sub.npz")
    assert metrics["metric"] == pytest.approx(evaluate_run(out, source=str(tmp_path / "sub.npz"))["metric"])


def test_the_change_column_is_after_minus_before() -> None:
    """The table's change: the metric after minus before (a drop is negative), a count as
    "Nx smaller", "Nx larger" (after / before) or "same"; the numbers are made up, so the
    change is known. Catches the metric's change as before minus after, and a growth
    shown as before / after."""
    metrics = {"metric_name": "accuracy", "metric": 0.5, "size_bytes": 1024, "params": 90, "macs_per_step": 150,
               "baseline": {"metric": 0.75, "size_bytes": 4096, "params": 90, "macs_per_step": 100}}
    rows = {line.split("  ")[0]: line.split() for line in comparison_table(metrics).splitlines()}
    assert rows["test accuracy"][-1] == "-0.2500"
    assert rows["size"][-2:] == ["4.0x", "smaller"]
    assert rows["MACs / step"][-2:] == ["1.50x", "larger"] and rows["params"][-1] == "same"


def test_an_estimated_size_is_labelled_as_one() -> None:
    """A model the runtime cannot run (a grouped LSTM) has no .lsl file: its metrics carry
    size_basis "estimate", and the table's size row says so, as eval's does. Planted and
    failing it: the bare "size" row of the estimate, as it was."""
    metrics = {"metric_name": "accuracy", "metric": 0.5, "size_bytes": 688, "size_basis": "estimate",
               "baseline": {"metric": 0.5, "size_bytes": 1640}}
    labels = [line.split("  ")[0] for line in comparison_table(metrics).splitlines()]
    assert "size (estimate: no .lsl file)" in labels and "size" not in labels


@pytest.mark.parametrize("argv,message", [
    (["--recipe", "nope", "--out", "X"], "not a shipped recipe"),
    (["--out", "X"], "missing --recipe"),
    (["--recipe", "int8"], "missing --out: lstmlite compress RUN --recipe FILE_OR_NAME --out DIR"),
    (["--recipe", "int8", "--out", "X", "--model.hidden_size=4"], "only training overrides"),
])
def test_errors_are_one_line_and_exit_2(run_dir, tmp_path, capsys, argv, message):
    argv = [a.replace("X", str(tmp_path / "x")) for a in argv]
    assert main(["compress", str(run_dir), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lstmlite compress: error:") and message in err and "\n" not in err


def test_existing_output_is_refused(run_dir, capsys):
    assert main(["compress", str(run_dir), "--recipe", "int8", "--out", str(run_dir)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_list_recipes(capsys):
    assert main(["compress", "--list-recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split(":")[0] for line in lines if not line.startswith(" ")]
    assert names == ["fastgrnn-tiny", "int8", "prune-agp-80", "seq2seq-small", "shrink", "shrink-int8", "text-tiny",
                     "tiny"]
    fits = [line for line in lines if line.startswith("  fits: ")]
    assert len(fits) == len(names)  # every recipe says for which models it fits
    assert "token" in fits[names.index("text-tiny")] and "real-valued" in fits[names.index("fastgrnn-tiny")]


def test_help_names_every_shipped_recipe(capsys):
    """compress --help lists the shipped recipes by name, all of them (it named six of the
    eight by hand: seq2seq-small and shrink-int8 were missing)."""
    from lstmlite.compress.recipe import list_recipes

    with pytest.raises(SystemExit):
        main(["compress", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"name of a shipped recipe: {', '.join(list_recipes())};" in text


def test_compressing_a_quantized_run_again_says_what_a_cli_user_can_do(run_dir, tmp_path, capsys):
    """int8 of a run already int8: the one line says to compress the float run it came from
    (which recipe.json names); it only said to undo() it or call freeze_quantization, Python
    calls a CLI user cannot make."""
    first = tmp_path / "int8"
    assert main(["compress", str(run_dir), "--recipe", "int8", "--out", str(first), "--no-progress"]) == 0
    capsys.readouterr()
    assert json.loads((first / "recipe.json").read_text())["source_run"] == str(run_dir)
    assert main(["compress", str(first), "--recipe", "int8", "--out", str(tmp_path / "again"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is already quantized: compress the float run it came from (a compressed run's " \
        "recipe.json names it)" in err[0], err
    assert not (tmp_path / "again").exists()
