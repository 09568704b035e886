import pytest

from lstmlite.cli.main import main
from lstmlite.search import load_space
from lstmlite.search.recommend import recommend


def test_recommendation_is_a_valid_space_within_budget():
    rec = recommend("classify", n_train=270, input_size=12, budget="size=2KB")
    space = load_space(rec["space"])
    assert space.params["weight_bits"]["choices"] == [8]
    assert rec["explanation"] and all(isinstance(line, str) for line in rec["explanation"])


def test_cli_writes_space(tiny_data, tmp_path, capsys) -> None:
    """--space-out gets the space recommend() proposes for that data and --budget (catches
    the budget not passed on: a space for an unlimited device)."""
    import yaml

    from lstmlite.data import DataSpec, load_data

    path = tmp_path / "space.yaml"
    assert main(["recommend", "--data", tiny_data, "--task", "classify", "--budget", "size=2KB",
                 "--space-out", str(path)]) == 0
    assert load_space(path).params["cell"]["choices"]
    assert "lstmlite search" in capsys.readouterr().out
    data = load_data(DataSpec.from_dict({"source": tiny_data, "task": "classify"}))
    expected = recommend("classify", n_train=len(data.train.y), input_size=int(data.input_size), budget="size=2KB")
    assert yaml.safe_load(path.read_text()) == expected["space"]


@pytest.mark.parametrize("budget, bits, fastgrnn", [
    ("size=4KB", [8], True), ("size=4097", [8], False), ("size=8KB", [8], False),
    ("size=8193", [32, 8], False), (None, [32, 8], False)])
def test_weight_bits_and_cells_follow_the_stated_thresholds(budget, bits, fastgrnn):
    """recommend's stated rules: a size budget of at most 8 KB (8192 bytes) stores every
    weight as int8, a larger one (or none) tries fp32 and int8; FastGRNN is tried up to
    4 KB (4096 bytes) inclusive. Catches a threshold moved by one byte (< for <=)."""
    rec = recommend("classify", n_train=270, input_size=12, budget=budget)
    assert rec["space"]["params"]["weight_bits"]["choices"] == bits
    assert ("fastgrnn" in rec["space"]["params"]["cell"]["choices"]) is fastgrnn
    assert rec["budget"] == ({} if budget is None else {"size": int(budget.split("=")[1].replace("KB", "")) * (
        1024 if "KB" in budget else 1)})
