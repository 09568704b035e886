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
