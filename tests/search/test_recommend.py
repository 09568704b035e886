import pytest

from lstmlite.cli.main import main
from lstmlite.search import load_space
from lstmlite.search.recommend import recommend


def test_recommendation_is_a_valid_space_within_budget():
    rec = recommend("classify", n_train=270, input_size=12, budget="size=2KB")
    space = load_space(rec["space"])
    assert space.params["weight_bits"]["choices"] == [8]
    assert rec["explanation"] and all(isinstance(line, str) for line in rec["explanation"])


def test_space_out_replaces_a_file_only_with_force(tiny_data, tmp_path, capsys) -> None:
    """--space-out over an existing file (a user's hand-tuned space) is refused and the file kept
    (it was replaced without a word); with --force it is replaced by the proposed space."""
    path = tmp_path / "space.yaml"
    path.write_text("my hand-tuned space")
    argv = ["recommend", "--data", tiny_data, "--task", "classify", "--budget", "size=2KB", "--space-out", str(path)]
    assert main(argv) == 2
    assert "exists; choose another --space-out, or add --force" in capsys.readouterr().err
    assert path.read_text() == "my hand-tuned space"
    assert main(argv + ["--force"]) == 0
    assert load_space(path).params["cell"]["choices"]


def test_cli_writes_space(tiny_data, tmp_path, capsys) -> None:
    """--space-out gets the space recommend() proposes for that data and --budget, and the
    explanation and the search command printed are that proposal's. Catches the budget not
    passed on (a space for an unlimited device), the test split's size taken for the
    training set's, and a printed command without the budget or with another trial count."""
    import yaml

    from lstmlite.data import DataSpec, load_data

    path = tmp_path / "space.yaml"
    assert main(["recommend", "--data", tiny_data, "--task", "classify", "--budget", "size=2KB",
                 "--space-out", str(path)]) == 0
    assert load_space(path).params["cell"]["choices"]
    printed = capsys.readouterr().out.splitlines()
    data = load_data(DataSpec.from_dict({"source": tiny_data, "task": "classify"}))
    expected = recommend("classify", n_train=len(data.train.y), input_size=int(data.input_size), budget="size=2KB",
                         data=data)
    assert yaml.safe_load(path.read_text()) == expected["space"]
    # the explanation for the training split's size, and a search command that runs the same study
    assert printed[0] == f"For {data.name} (classify, {len(data.train.y):,} training examples):"
    assert printed[1:1 + len(expected["explanation"])] == [f"  - {line}" for line in expected["explanation"]]
    assert printed[-1] == (f"  lstmlite search --data {tiny_data} --task classify --budget size=2KB --space {path} "
                           f"--trials {expected['trials']} --out runs/search")
    assert expected["trials"] == 40  # recommend's stated start for a size budget



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


def _gru_int8_file_bytes(data, hidden, tmp_path, embed_dim=0) -> int:
    """The bytes of the .lsl file that ``lstmlite export`` writes for an int8 GRU classifier
    of ``hidden`` units on ``data`` (text: an embedding ``embed_dim`` wide over its whole
    vocabulary; weights perturbed off their initial round values, as trained ones are)."""
    import torch

    from lstmlite.compress import compress_
    from lstmlite.compress.quantize.config import WeightQuantConfig
    from lstmlite.export.lsl import default_weights, spec_from_module, write_lsl
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(1)
    text = {"vocab_size": len(data.vocab), "embed_dim": embed_dim, "input_size": 0} if embed_dim else \
        {"input_size": int(data.input_size)}
    model = SequenceClassifier(hidden_size=hidden, n_classes=data.n_classes, cell="gru", **text)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape) * 0.01)
    compress_(model, WeightQuantConfig(bits=8))
    spec = spec_from_module(model)
    path = tmp_path / f"gru{hidden}-{embed_dim}.lsl"
    path.write_bytes(write_lsl(spec, weights=default_weights(spec, None)))
    return path.stat().st_size


@pytest.mark.parametrize("budget", [2048, 4096])
def test_with_the_data_the_hidden_bound_is_the_largest_gru_whose_export_fits(tiny_data, tmp_path, budget):
    """Given the data, recommend's top hidden size is exact in exported bytes: the int8 GRU
    of that width writes a .lsl file within the budget, and the next width (+ 4) does not.
    Catches the parameter-count estimate, which overshot (a 4 KB budget gave a 24-unit GRU
    of 4,166 bytes on japanese_vowels), and a bisection that stops one step short."""
    from lstmlite.data import DataSpec, load_data

    data = load_data(DataSpec.from_dict({"source": tiny_data, "task": "classify"}))
    rec = recommend("classify", n_train=len(data.train.y), input_size=int(data.input_size),
                    budget=f"size={budget}", data=data)
    top = rec["space"]["params"]["hidden_size"]["high"]
    assert _gru_int8_file_bytes(data, top, tmp_path) <= budget < _gru_int8_file_bytes(data, top + 4, tmp_path)
    assert f"a GRU of {top} units exports" in rec["explanation"][1]
    # the budget, not the data, stops the hidden size here (top < the data's cap of 64): said so;
    # it said "a larger model would need more data than you have"
    assert top < 64 and rec["explanation"][1].endswith("a larger one would not fit the budget.")
    unbounded = recommend("classify", n_train=len(data.train.y), input_size=int(data.input_size),
                          budget="size=1MB", data=data)
    assert unbounded["space"]["params"]["hidden_size"]["high"] == 64
    assert unbounded["explanation"][1].endswith("a larger model would need more data than you have.")


def test_a_budget_no_model_fits_is_said_in_plain_words(tiny_data, tmp_path):
    """A budget below the smallest model's file: the explanation says so with that file's
    bytes (rather than proposing a range none of which fits)."""
    from lstmlite.data import DataSpec, load_data

    data = load_data(DataSpec.from_dict({"source": tiny_data, "task": "classify"}))
    smallest = _gru_int8_file_bytes(data, 4, tmp_path)
    rec = recommend("classify", n_train=len(data.train.y), input_size=int(data.input_size),
                    budget=f"size={smallest - 1}", data=data)
    # FastGRNN (tried under 4 KB) is smaller than any GRU: the explanation says only that no GRU or LSTM fits
    assert f"No GRU or LSTM fits the budget: an int8 GRU of 4 units exports {smallest} bytes" \
        in rec["explanation"][1] and "only a FastGRNN might, else raise the budget" in rec["explanation"][1]


def test_with_room_to_spare_the_bound_is_the_data_size_cap(tiny_data):
    """A budget every width fits: the bound is the stated cap for a small data set (64),
    not one step below it. Catches a bisection whose upper end starts short of the cap."""
    from lstmlite.data import DataSpec, load_data

    data = load_data(DataSpec.from_dict({"source": tiny_data, "task": "classify"}))
    rec = recommend("classify", n_train=len(data.train.y), input_size=int(data.input_size), budget="size=1MB",
                    data=data)
    assert rec["space"]["params"]["hidden_size"]["high"] == 64



def _text_file(tmp_path):
    """A text classification file whose 400 words occur with distinct frequencies (word k
    in 400 - k of the lines' slots), so that every cut of the vocabulary is well defined."""
    import random

    rng = random.Random(0)
    words = [f"w{k}" for k in range(400) for _ in range(400 - k)]
    rng.shuffle(words)
    lines = ["text,label"] + [f"{' '.join(words[i:i + 8])},{'ab'[(i // 8) % 2]}" for i in range(0, len(words), 8)]
    path = tmp_path / "text.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_vocabulary_too_large_for_the_budget_is_cut_to_what_fits(tmp_path):
    """Text whose whole vocabulary does not fit: recommend searches max_vocab at k and k / 2,
    k the most entries with which the smallest model (a GRU of 4 units, embedding 8 wide)
    takes at most 3/4 of the budget. The oracle reloads the data with max_vocab = k (and
    k + 1) as a trial does and measures the exported file. Catches the budget share, the
    bisection, and the cut vocabulary left out of the hidden-size bound (that bound is
    then measured with the whole vocabulary: nothing fits, and the explanation says so)."""
    from lstmlite.data import DataSpec, load_data

    source = _text_file(tmp_path)
    data = load_data(DataSpec.from_dict({"source": source, "task": "classify"}))
    budget = _gru_int8_file_bytes(data, 4, tmp_path, embed_dim=8) // 2
    rec = recommend("classify", n_train=len(data.train.y), input_size=0, budget=f"size={budget}", text=True,
                    data=data)
    choices = rec["space"]["params"]["max_vocab"]["choices"]
    k = choices[-1]
    assert choices == [k // 2, k]

    def smallest_bytes(max_vocab):
        cut = load_data(DataSpec.from_dict({"source": source, "task": "classify", "max_vocab": max_vocab}))
        assert len(cut.vocab) == max_vocab
        return _gru_int8_file_bytes(cut, 4, tmp_path, embed_dim=8)

    assert smallest_bytes(k) <= 3 * budget // 4 < smallest_bytes(k + 1)
    assert f"max_vocab {k // 2} or {k}" in " ".join(rec["explanation"])
    assert not any(line.startswith("No model fits") for line in rec["explanation"])
    top = rec["space"]["params"]["hidden_size"]["high"]
    assert top >= 8 and f"a GRU of {top} units exports" in " ".join(rec["explanation"])


def test_a_vocabulary_that_fits_is_not_cut(tmp_path):
    """A budget the whole vocabulary's smallest model fits: no max_vocab in the space."""
    from lstmlite.data import DataSpec, load_data

    data = load_data(DataSpec.from_dict({"source": _text_file(tmp_path), "task": "classify"}))
    budget = 2 * _gru_int8_file_bytes(data, 4, tmp_path, embed_dim=8)
    rec = recommend("classify", n_train=len(data.train.y), input_size=0, budget=f"size={budget}", text=True,
                    data=data)
    assert "max_vocab" not in rec["space"]["params"]


def _gru_int8_project_ram(data, hidden, tmp_path) -> int:
    """The Cortex-M4 RAM of the C project ``lstmlite export --format c`` writes for an int8
    GRU classifier of ``hidden`` units on ``data`` (its generated README's figure)."""
    import torch

    from lstmlite.compress import compress_
    from lstmlite.compress.quantize.config import WeightQuantConfig
    from lstmlite.export.c import export_c
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(1)
    model = SequenceClassifier(input_size=int(data.input_size), hidden_size=hidden, n_classes=data.n_classes,
                               cell="gru")
    compress_(model, WeightQuantConfig(bits=8))
    return export_c(model.eval(), tmp_path / f"c{hidden}", form="auto").memory["cortex-m4"].ram


def test_a_ram_budget_bounds_the_hidden_size_by_the_c_projects_ram(tiny_data, tmp_path):
    """With a RAM budget (and no size budget), the bound is the largest GRU whose C project
    needs at most that RAM on a Cortex-M4 (the figure the search charges): the bound's
    project fits, the next width's does not, and the explanation gives both figures.
    Catches the RAM budget ignored (the bound then the data-size cap, 64)."""
    from lstmlite.data import DataSpec, load_data

    data = load_data(DataSpec.from_dict({"source": tiny_data, "task": "classify"}))
    budget = (_gru_int8_project_ram(data, 16, tmp_path) + _gru_int8_project_ram(data, 20, tmp_path)) // 2
    rec = recommend("classify", n_train=len(data.train.y), input_size=int(data.input_size),
                    budget=f"ram={budget}", data=data)
    top = rec["space"]["params"]["hidden_size"]["high"]
    assert top == 16
    assert _gru_int8_project_ram(data, top, tmp_path) <= budget < _gru_int8_project_ram(data, top + 4, tmp_path)
    assert f"needs {_gru_int8_project_ram(data, top, tmp_path):,} bytes of RAM" in " ".join(rec["explanation"])
    rec = recommend("classify", n_train=len(data.train.y), input_size=int(data.input_size), budget="ram=100",
                    data=data)
    assert "No model fits the budget" in rec["explanation"][1] and "over the ram budget (100 bytes)" in \
        rec["explanation"][1]


def test_a_seq2seq_space_has_no_fastgrnn_and_search_takes_it(tmp_path, capsys):
    """A seq2seq model's encoder and decoder are LSTMs or GRUs: under a budget of at most
    4 KB, where a classifier's space gets FastGRNN, the seq2seq space does not, and the
    space --space-out writes passes search's check that each value builds a model of the
    task. Planted and failing it: FastGRNN proposed for seq2seq (search refused the space
    recommend wrote; before that check, every FastGRNN trial failed)."""
    from lstmlite.search.feasible import check_buildable

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{a}{b}{c}\t{c}{b}{a}\n" for a in "0123" for b in "012" for c in "0123"))
    assert "fastgrnn" not in recommend("seq2seq", n_train=40, input_size=0, budget="size=2KB")["space"]["params"][
        "cell"]["choices"]
    path = tmp_path / "space.yaml"
    assert main(["recommend", "--data", str(pairs), "--task", "seq2seq", "--budget", "size=4KB",
                 "--space-out", str(path)]) == 0
    out = capsys.readouterr().out
    assert "FastGRNN" not in out and "encoder and decoder are LSTMs or GRUs" in out
    assert load_space(path).params["cell"]["choices"] == ["gru", "lstm"]
    check_buildable(load_space(path), {"source": str(pairs), "task": "seq2seq"})


def test_a_language_models_vocabulary_is_cut_once_not_searched(tmp_path):
    """A word-level language model whose whole vocabulary does not fit: max_vocab is fixed
    at k, the most words that fit, not searched at k / 2 and k -- its targets are the same
    words, so a search would pick the fewest words (easier targets, lower perplexity) --
    and search takes the space (check_buildable refuses a searched max_vocab for lm).
    Planted and failing it: max_vocab searched for a language model."""
    import random

    from lstmlite.data import DataSpec, load_data
    from lstmlite.search.feasible import check_buildable
    from lstmlite.search.recommend import _exported_bytes

    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)]
    path = tmp_path / "text.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(4000)))
    config = {"source": str(path), "task": "lm", "level": "word", "seq_len": 10}
    data = load_data(DataSpec.from_dict(config))
    budget = _exported_bytes(data, "gru", 4, 8, 8) // 2
    rec = recommend("lm", n_train=len(data.train.y), input_size=0, budget=f"size={budget}", text=True, data=data)
    assert "max_vocab" not in rec["space"]["params"]
    k = rec["space"]["fixed"]["max_vocab"]
    assert 3 <= k < len(data.vocab) and f"max_vocab {k} (" in " ".join(rec["explanation"])
    check_buildable(load_space(rec["space"]), config)


def test_the_bisection_finds_every_largest_value():
    """recommend's bounds (hidden size, vocabulary) are the largest n whose model fits, by
    bisection: for every threshold k in [1, 64] it returns k, and it asks each n at most once
    per step. Catches a bisection that skips values (``hi = mid - 2``) or stops short."""
    from lstmlite.search.recommend import _largest

    for k in range(1, 65):
        asked = []
        assert _largest(1, 64, lambda n, k=k: asked.append(n) or n <= k) == k
        assert len(asked) <= 7


def test_an_estimated_ram_is_said_as_an_estimate(tiny_data, monkeypatch):
    """Where the C export does not take the model, the RAM the search charges is an estimate
    (``ram_kind: "estimated"``), and the explanation says so rather than giving it as the
    Cortex-M4 project's figure."""
    from lstmlite.data import DataSpec, load_data
    from lstmlite.search import trial

    data = load_data(DataSpec.from_dict({"source": tiny_data, "task": "classify"}))
    monkeypatch.setattr(trial, "ram_bytes", lambda model: (1234, "estimated"))
    rec = recommend("classify", n_train=len(data.train.y), input_size=int(data.input_size), budget="ram=2000",
                    data=data)
    text = " ".join(rec["explanation"])
    assert "needs about 1,234 bytes of RAM (estimated: the C export does not take it)" in text
    assert "Cortex-M4" not in text


def _smallest_file(space, data_config) -> int:
    """The smallest .lsl bytes among ``space``'s models, as search's pre-check measures them."""
    from lstmlite.search.feasible import smallest_models

    return int(smallest_models(load_space(space), data_config, ("size",))["size"][0])


def test_a_budget_no_model_fits_is_an_error_with_the_smallest_size_and_no_command(tiny_data, tmp_path, capsys):
    """A size budget below every model of the proposed space: exit status 2 (as search's
    own refusal of such a budget), one error line naming the smallest model's bytes and the
    --budget that fits, no search command printed and no space written; that budget is one
    search takes for the proposed space. Before, "No model fits the budget", exit 0, and a
    printed "lstmlite search ... --budget size=10B ..." that search refused (exit 2)."""
    from lstmlite.search.feasible import check_feasible

    data_config = {"source": tiny_data, "task": "classify"}
    path = tmp_path / "space.yaml"
    code = main(["recommend", "--data", tiny_data, "--task", "classify", "--budget", "size=10B",
                 "--space-out", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and "lstmlite search" not in captured.out and not path.exists()
    rec = recommend("classify", n_train=154, input_size=3, budget="size=10B")
    smallest = _smallest_file(rec["space"], data_config)
    assert captured.err.strip() == (
        f"lstmlite recommend: error: no model of the proposed space fits --budget size=10B: its smallest model's "
        f"file is {smallest:,} B (cell=fastgrnn, hidden_size=4, weight_bits=8, sparsity=0.0); "
        f"use --budget size={smallest}B or more")
    assert main(["recommend", "--data", tiny_data, "--task", "classify", "--budget", f"size={smallest}B",
                 "--space-out", str(path)]) == 0
    check_feasible(load_space(path), data_config, {"size": smallest})  # search takes it


def test_a_budget_only_the_proposed_space_meets_prints_a_command_that_searches_it(tiny_data, capsys):
    """A size budget the proposed space meets but the shipped default space does not
    (without --space-out the printed command searched the default space, which search
    refused): the commands printed write the proposed space and search it."""
    from lstmlite.search.feasible import check_feasible
    from lstmlite.search.objectives import BudgetError

    data_config = {"source": tiny_data, "task": "classify"}
    budget = _smallest_file(recommend("classify", n_train=154, input_size=3, budget="size=1KB")["space"], data_config)
    with pytest.raises(BudgetError):
        check_feasible(load_space("default"), data_config, {"size": budget})
    assert main(["recommend", "--data", tiny_data, "--task", "classify", "--budget", f"size={budget}"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"  lstmlite recommend --data {tiny_data} --task classify --budget size={budget} --space-out space.yaml",
        f"  lstmlite search --data {tiny_data} --task classify --budget size={budget} --space space.yaml "
        f"--trials 40 --out runs/search"]


def test_without_a_size_budget_the_lines_say_so_and_a_latency_budget_keeps_its_decimals():
    """No size budget: the lines say none was given rather than "the size budget leaves
    room ... fit the budget"; a latency budget under 1 us is printed as given, not
    rounded to "0 us". Before: "The size budget leaves room", "hidden sizes up to 64 fit
    the budget" with no budget, and "Latency (0 us per step)" for latency=0.1us."""
    text = "\n".join(recommend("classify", n_train=270, input_size=12, budget="latency=0.1us")["explanation"])
    assert "No size budget was given, so both float32 and int8 weights are tried." in text
    assert "hidden sizes up to 64 are tried (no size budget bounds them)" in text
    assert "size budget leaves room" not in text and "fit the budget" not in text
    assert "Latency (0.1 us per step)" in text
    assert "Latency (1,500 us per step)" in " ".join(
        recommend("classify", n_train=270, input_size=12, budget="latency=1.5ms")["explanation"])
    assert "The size budget (16,384 bytes) leaves room" in " ".join(
        recommend("classify", n_train=270, input_size=12, budget="size=16KB")["explanation"])


@pytest.mark.parametrize("size, high, sparsity", [(2943, 16, [0.0, 0.5]), (2944, 20, [0.0, 0.5]),
                                                  (2367, 12, [0.0]), (1024, 8, [0.0])])
def test_the_hidden_bound_without_data_is_the_hand_computed_one(size, high, sparsity):
    """A GRU on 12 int8 features: the bound grows h by 4 while its weights 3·(h+4)·(16+h)
    bytes fit size - 1024 (the file's fixed part). size 2943: 1919 < 1920 (h 16 -> 20), so
    16; 2944: 20; 2367: 1343 < 1344 (12 -> 16), so 12; 1024: nothing past 4 fits, and the
    space still offers 4..8. Sparsity is offered from a bound of 16 on. Catches the fixed
    part taken as 1000 B, the sparsity threshold made `> 16`, and a 4..4 space."""
    params = recommend("classify", n_train=270, input_size=12, budget=f"size={size}")["space"]["params"]
    assert (params["hidden_size"]["high"], params["sparsity"]["choices"]) == (high, sparsity)
