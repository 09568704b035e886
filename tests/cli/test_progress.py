"""Progress bars only on a terminal (``--progress`` forces them, ``--quiet`` hides them),
and ``data list --json`` (src/lstmlite/cli/common.py, train_cmd.py, data_cmd.py)."""

import argparse
import io
import json

import pytest

from lstmlite.cli.common import show_progress
from lstmlite.cli.main import main


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("progress, quiet, stream, expected", [
    (False, False, io.StringIO(), False),   # a pipe or a log file: no bars
    (False, False, _Terminal(), True),      # a terminal: bars
    (True, False, io.StringIO(), True),     # --progress forces them
    (False, True, _Terminal(), False),      # --quiet hides them
])
def test_show_progress(progress, quiet, stream, expected):
    assert show_progress(argparse.Namespace(progress=progress, quiet=quiet), stream) is expected


def _train(tmp_path, name, *flags):
    return main(["train", "--data", "digits", "--epochs=1", "--hidden_size=4", "--out", str(tmp_path / name),
                 *flags])


def test_no_bar_when_stderr_is_not_a_terminal_unless_forced(tmp_path, capsys):
    assert _train(tmp_path, "plain") == 0
    assert "epoch" not in capsys.readouterr().err  # pytest's capture is not a terminal
    assert _train(tmp_path, "forced", "--progress") == 0
    forced = capsys.readouterr().err
    # the bar is drawn (whether its 100 % frame is drawn before it is cleared depends on timing)
    assert "train:" in forced and "epoch" in forced
    assert _train(tmp_path, "quiet", "--quiet") == 0 and "epoch" not in capsys.readouterr().err


def test_progress_and_quiet_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _train(tmp_path, "both", "--progress", "--quiet")
    assert "not allowed with" in capsys.readouterr().err


def test_data_list_json(capsys):
    assert main(["data", "list", "--json"]) == 0
    names = {d["name"] for d in json.loads(capsys.readouterr().out)}
    assert {"japanese_vowels", "digits", "airline"} <= names


def test_train_and_compress_json(tmp_path, capsys):
    assert _train(tmp_path, "run", "--json") == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["dataset"] == "digits" and metrics["run_dir"] == str(tmp_path / "run")
    assert "best_epoch" in metrics
    assert main(["compress", str(tmp_path / "run"), "--recipe", "int8", "--out", str(tmp_path / "int8"),
                 "--json"]) == 0
    compressed = json.loads(capsys.readouterr().out)
    assert compressed["run_dir"] == str(tmp_path / "int8")
    assert compressed["baseline_metric"] == metrics["metric"] and compressed["size_bytes"] < metrics["size_bytes"]


def test_recipe_bars_say_which_step_runs(tmp_path, capsys):
    assert _train(tmp_path, "run", "--quiet") == 0
    recipe = tmp_path / "two.yaml"
    recipe.write_text("name: two\nsteps:\n  - method: magnitude_prune\n    sparsity: 0.5\n    finetune_epochs: 1\n"
                      "  - method: int8_weight\n    finetune_epochs: 1\n")
    assert main(["compress", str(tmp_path / "run"), "--recipe", str(recipe), "--out", str(tmp_path / "two"),
                 "--progress"]) == 0
    err = capsys.readouterr().err
    assert "recipe two step 1 (magnitude_prune), fine-tune" in err
    assert "recipe two step 2 (weight_quant), fine-tune" in err  # int8_weight is weight_quant, 8 bits


def test_the_summary_names_the_chosen_epoch(tmp_path, capsys):
    assert _train(tmp_path, "run", "--quiet") == 0
    assert "chosen epoch (best validation)  1" in capsys.readouterr().out


def test_quiet_says_it_hides_the_progress_bars_only(capsys):
    """--quiet is documented (README, docs/training.md) as hiding the progress bars, and
    train's line naming the data's defaults still prints under it
    (test_train_defaults.py::test_the_small_split_defaults_are_named_without_the_users_keys):
    the help says exactly that. Before, it said only "no progress bars", so --quiet read as
    quiet in general."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ("--quiet, --no-progress hide the progress bars, nothing else (notes such as train's defaults line, "
            "and warnings, still print on stderr)") in help_text
