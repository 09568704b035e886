import pytest

from lstmlite.search import SpaceError, load_space, parse_budget, parse_space


def test_shipped_default_space_loads_and_is_valid():
    space = load_space("default")
    assert "cell" in space.params and "hidden_size" in space.params


def test_user_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("params:\n  hidden_size: {low: 8, high: 32, step: 8}\nfixed:\n  cell: gru\n")
    space = load_space(path)
    assert space.fixed == {"cell": "gru"} and space.params["hidden_size"]["high"] == 32


@pytest.mark.parametrize("raw, message", [
    ({"params": {"hiden_size": {"choices": [8]}}}, "unknown parameter 'hiden_size'"),
    ({"parms": {}}, "unknown top-level key"),
    ({"params": {"cell": {"choices": ["rnn"]}}}, "unknown cell 'rnn'"),
    ({"params": {"hidden_size": {"choices": ["big"]}}}, "hidden_size must be an integer"),
    ({"params": {"hidden_size": {"low": 32, "high": 8}}}, "low 32 is above high 8"),
    ({"params": {"hidden_size": {"low": 8}}}, "a range needs low and high"),
    ({"fixed": {"bidirectional": 1}}, "bidirectional must be true/false"),
    ({"fixed": {"sparsity": 1.5}}, r"sparsity must be in \[0, 1\)"),
    ({"params": {"cell": {"choices": ["gru"]}}, "fixed": {"cell": "lstm"}}, "both searched and fixed"),
])
def test_bad_spaces_are_one_line_errors(raw, message):
    with pytest.raises(SpaceError, match=message) as info:
        parse_space(raw)
    assert "\n" not in str(info.value)


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("params: [unclosed\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        load_space(bad)


def test_budget_parsing():
    assert parse_budget("size=8KB,latency=0.2ms,ram=16KB") == {"size": 8192, "latency": 200.0, "ram": 16384}
    assert parse_budget("size=2048") == {"size": 2048}
    with pytest.raises(ValueError, match="unknown budget 'flash'"):
        parse_budget("flash=1KB")
