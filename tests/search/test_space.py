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
    # the edges docs/search.md states: weights are 32, 8 or 4 bits; sparsity in [0, 1); a
    # bool is not a number; a choice needs at least one value
    ({"params": {"weight_bits": {"choices": [8, 16]}}}, "weight_bits must be 4, 8 or 32, got 16"),
    ({"fixed": {"sparsity": 1.0}}, r"sparsity must be in \[0, 1\), got 1.0"),
    ({"params": {"sparsity": {"low": 0.0, "high": 1}}}, r"sparsity must be in \[0, 1\), got 1"),
    ({"fixed": {"hidden_size": True}}, "hidden_size must be an integer, got True"),
    ({"params": {"lr": {"choices": [False]}}}, "lr must be a number, got False"),
    ({"params": {"cell": {"choices": []}}}, "`choices` must be a non-empty list"),
    # values that build or train nothing, and ranges Optuna cannot sample as written: each
    # failed every trial (step 0, a log range from 0, step with log) or was changed quietly
    # (a step that does not divide high - low lowers high)
    ({"params": {"hidden_size": {"choices": [0, 8]}}}, "hidden_size must be at least 1, got 0"),
    ({"fixed": {"num_layers": 0}}, "num_layers must be at least 1, got 0"),
    ({"fixed": {"epochs": 0}}, "epochs must be at least 1, got 0"),
    ({"fixed": {"rank": -1}}, "rank must be at least 0, got -1"),
    ({"params": {"max_vocab": {"low": 2, "high": 300}}}, r"max_vocab must be at least 3 \(<pad>"),
    ({"params": {"lr": {"low": -1, "high": 0.1}}}, "lr must be more than 0, got -1"),
    ({"params": {"pooling": {"choices": ["avg"]}}}, "pooling must be last, mean or max, got 'avg'"),
    ({"params": {"hidden_size": {"low": 8, "high": 64, "step": 0}}}, "step must be a whole number above 0, got 0"),
    ({"params": {"hidden_size": {"low": 8, "high": 64, "step": 2.5}}}, "step must be a whole number above 0"),
    ({"params": {"hidden_size": {"low": 8, "high": 64, "step": 5}}}, r"step 5 does not divide high - low \(64 - 8\)"),
    ({"params": {"hidden_size": {"low": 8, "high": 64, "step": 8, "log": True}}}, "give step or log, not both"),
    ({"params": {"lr": {"low": 0.0, "high": 0.1, "log": True}}}, "lr must be more than 0, got 0.0"),
    ({"params": {"embed_dim": {"low": 8, "high": 64, "log": "yes"}}}, "log must be true or false"),
])
def test_bad_spaces_are_one_line_errors(raw, message):
    with pytest.raises(SpaceError, match=message) as info:
        parse_space(raw)
    assert "\n" not in str(info.value)


def test_every_documented_value_at_the_edges_is_accepted():
    """The values docs/search.md allows, at their edges, parse: 4-bit weights, sparsity 0 and
    just under 1, low == high. Catches a validation tightened past the documented range
    (4 bits refused, sparsity 0 refused)."""
    space = parse_space({"params": {"weight_bits": {"choices": [32, 8, 4]}, "sparsity": {"choices": [0, 0.99]},
                                    "hidden_size": {"low": 8, "high": 8}},
                         "fixed": {"cell": "fastgrnn"}})
    assert space.params["weight_bits"]["choices"] == [32, 8, 4] and space.params["sparsity"]["choices"] == [0, 0.99]
    # the least values and the ranges the checks must still let through
    parse_space({"params": {"rank": {"choices": [0, 4]}, "proj_size": {"choices": [0, 8]}, "max_vocab": {"low": 3,
                 "high": 300}, "lr": {"low": 1e-4, "high": 1e-1, "log": True}, "embed_dim": {"low": 4, "high": 64,
                 "log": True}, "hidden_size": {"low": 8, "high": 64, "step": 7},
                 "sparsity": {"low": 0.0, "high": 0.9, "step": 0.1}},
                 "fixed": {"finetune_epochs": 0, "pooling": "max", "num_layers": 1, "epochs": 1}})


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
    # KB and MB are binary (1024, 1024**2) as docs/search.md's examples (2KB = 2048); times
    # are us, ms or s, read as microseconds
    assert parse_budget("size=1.5MB,ram=2MiB") == {"size": 1572864, "ram": 2097152}
    assert parse_budget("latency=2s") == {"latency": 2e6}
    assert parse_budget("latency=1.5ms") == {"latency": 1500.0}
    assert parse_budget("latency=250") == {"latency": 250.0}
    assert parse_budget({"size": 2048.0, "latency": 1.5}) == {"size": 2048, "latency": 1.5}  # not int(1.5)
    with pytest.raises(ValueError, match="unknown budget 'flash'"):
        parse_budget("flash=1KB")


def test_a_budget_as_the_errors_print_it_reads_back():
    """The resume errors print a budget as ``size=8192 B,latency=200 us/step``; pasted back as
    --budget it reads as the same budget (it was refused: "use a time like 200us")."""
    from lstmlite.search.study import _budget_text

    budget = {"size": 8192, "latency": 200.0}
    assert parse_budget(_budget_text(budget)) == budget
    assert parse_budget("latency=1.5ms/step") == {"latency": 1500.0}


@pytest.mark.parametrize("text, message", [
    ("size=0", r"budget size='0': must be more than 0"),  # every trial over: a search that cannot succeed
    ("latency=0us", r"budget latency='0us': must be more than 0"),
    ("size=8KB,size=4KB", r"budget size given twice"),  # the last one silently won
    ("size=1.2.3KB", r"budget size='1.2.3kb': use a byte count"),  # float('1.2.3'): a bare ValueError
    ("latency=1..5ms", r"budget latency='1..5ms': use a time"),
])
def test_a_budget_no_search_can_meet_or_that_says_two_things_is_refused(text, message):
    """A zero budget, a key given twice and a malformed number are one-line BudgetErrors
    naming the part, rather than a search of trials all over budget, the last value taken
    silently, or Python's float() error."""
    from lstmlite.search.objectives import BudgetError

    with pytest.raises(BudgetError, match=message):
        parse_budget(text)


class _RecordingTrial:
    """Stands in for an optuna.Trial: records each suggest_* call and returns ``low`` or the
    first choice."""

    def __init__(self):
        self.calls = []

    def suggest_categorical(self, name, choices):
        self.calls.append(("categorical", name, list(choices)))
        return choices[0]

    def suggest_int(self, name, low, high, step=1, log=False):
        self.calls.append(("int", name, low, high, step, log))
        return low

    def suggest_float(self, name, low, high, *, step=None, log=False):
        self.calls.append(("float", name, low, high, step, log))
        return low


def test_sample_asks_optuna_for_each_parameter_as_the_space_declares_it():
    """A range of integers is an Optuna int distribution with its step (and log), a range
    with a float end a float distribution with its log flag (lr: log-uniform as the
    shipped spaces ask), a choice a categorical; fixed values are passed through. Catches
    the step or the log flag not passed on, and an integer range sampled as floats."""
    space = parse_space({"params": {"cell": {"choices": ["lstm", "gru"]},
                                    "hidden_size": {"low": 8, "high": 64, "step": 8},
                                    "num_layers": {"low": 1, "high": 4, "log": True},
                                    "lr": {"low": 0.003, "high": 0.03, "log": True},
                                    "sparsity": {"low": 0.0, "high": 0.5, "step": 0.25}},
                         "fixed": {"epochs": 3}})
    trial = _RecordingTrial()
    point = space.sample(trial)
    assert trial.calls == [("categorical", "cell", ["lstm", "gru"]), ("int", "hidden_size", 8, 64, 8, False),
                           ("int", "num_layers", 1, 4, 1, True), ("float", "lr", 0.003, 0.03, None, True),
                           ("float", "sparsity", 0.0, 0.5, 0.25, False)]
    assert point == {"epochs": 3, "cell": "lstm", "hidden_size": 8, "num_layers": 1, "lr": 0.003, "sparsity": 0.0}


@pytest.mark.parametrize("name, spec", [("rank", {"low": 0, "high": 8, "log": True}),
                                        ("sparsity", {"low": 0.0, "high": 0.9, "log": True})])
def test_a_log_range_from_zero_is_refused_for_every_parameter(name, spec):
    """A log range needs low > 0: rank 0..8 or sparsity 0..0.9 on a log scale were taken,
    and Optuna then raised in every trial until the search stopped. (The existing case, lr
    from 0, is refused by lr's own > 0 check first.) Catches `<= 0` made `< 0`."""
    with pytest.raises(SpaceError, match="a log range needs low above 0"):
        parse_space({"params": {name: spec}})
