"""Property-based tests (hypothesis; issue 15, item 5): configs, recipes, run dirs and
text readers hold their contracts on generated inputs, not only on the cases we thought
of -- any valid value round-trips, any invalid one is refused with one clear line (a
ValueError subclass naming the key or file, never another exception), a flipped byte
anywhere in a run dir is caught, arbitrary bytes never crash a reader.

Kept fast: a few dozen examples each, no deadline (the machine is shared)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmlite.compress.recipe import Recipe, RecipeError, load_recipe, parse_recipe
from lstmlite.data.errors import DataError
from lstmlite.data.readers import read_csv, read_text
from lstmlite.data.tokenizer import tokenize
from lstmlite.data.vocab import Vocabulary
from lstmlite.io import RunDirError, load_run, save_run, verify_manifest
from lstmlite.typed import ConfigValueError, coerce

ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOWER = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _one_line(err: BaseException) -> str:
    msg = str(err)
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    return msg


# ----- typed configs --------------------------------------------------------------------
finite = st.floats(allow_nan=False, allow_infinity=False)


@FAST
@given(x=finite, spelling=st.sampled_from(["value", "repr", "e-notation", "yaml"]))
def test_any_finite_float_round_trips_in_every_spelling(x, spelling):
    raw = {"value": x, "repr": repr(x), "e-notation": f"{x:.17e}",
           "yaml": yaml.safe_load(yaml.safe_dump({"k": x}))["k"]}[spelling]
    assert coerce(raw, float, "train.lr") == x


@FAST
@given(n=st.integers(min_value=-(2**53), max_value=2**53), spelling=st.sampled_from(["int", "float", "str", "e"]))
def test_any_whole_number_round_trips_as_int(n, spelling):
    raw = {"int": n, "float": float(n), "str": str(n), "e": f"{float(n):e}"}[spelling]
    if spelling == "e" and float(f"{float(n):e}") != n:
        return  # %e keeps 7 digits: that spelling is not this number
    assert coerce(raw, int, "train.epochs") == n


@FAST
@given(raw=st.one_of(st.text(), st.integers(), finite, st.booleans(), st.none(), st.lists(st.integers(), max_size=2),
                     st.just(math.inf), st.just(math.nan), st.integers(min_value=10**308, max_value=10**400),
                     st.sampled_from(["1e400", "-1e400", "9" * 400, " 1_000 ", "0x10", "1e-400"])),
       kind=st.sampled_from([int, float, bool, str]))
def test_an_invalid_value_is_refused_with_one_line_naming_the_key(raw, kind):
    try:
        out = coerce(raw, kind, "train.some_key")
    except ConfigValueError as err:
        assert _one_line(err).startswith("train.some_key: ")
        return
    # accepted: then it is exactly a value of that type, never a silent conversion of a bool
    assert type(out) is kind
    if kind is bool:
        assert raw is out
    if kind is int:
        assert not isinstance(raw, bool)
        assert out == raw if isinstance(raw, int) else float(out) == float(raw if not isinstance(raw, str) else
                                                                           raw.strip().replace("_", ""))
    if kind is float:
        assert math.isfinite(out) and not isinstance(raw, bool)
    if kind is str:
        assert raw is out


# ----- recipes --------------------------------------------------------------------------
json_values = st.recursive(st.none() | st.booleans() | st.integers() | finite | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3),
                           max_leaves=12)


@FAST
@given(obj=st.one_of(json_values, st.fixed_dictionaries({"steps": st.lists(json_values, max_size=3)}),
                     st.lists(st.fixed_dictionaries({"method": st.sampled_from(["int8_weight", "prune", "nope"])},
                                                    optional={"epochs": json_values, "sparsity": json_values}),
                              max_size=3)))
def test_any_recipe_document_parses_or_is_refused_with_one_line(obj):
    try:
        recipe = parse_recipe(obj, "r.yaml")
    except RecipeError as err:
        assert _one_line(err).startswith("r.yaml")
        return
    assert isinstance(recipe, Recipe) and recipe.steps
    assert parse_recipe(recipe.to_dict(), "again") == recipe  # what parses, round-trips


def _spell(value):
    """A number in one of the spellings a YAML or JSON file may give it."""
    if isinstance(value, bool):
        return st.just(value)
    if isinstance(value, int):
        return st.sampled_from([value, float(value), str(value), f"{float(value):e}"])
    if isinstance(value, float):
        return st.sampled_from([value, repr(value), f"{value:.17e}"])
    return st.just(value)


def _valid_recipes():
    """Recipes built from the shipped ones' steps, in any order and number, every number
    re-spelled: all of them valid."""
    steps = [step for path in sorted((ROOT / "recipes").glob("*.yaml"))
             for step in yaml.safe_load(path.read_text())["steps"]]

    def respelled(step):
        return st.fixed_dictionaries({k: (_spell(v) if not isinstance(v, dict) else
                                          st.fixed_dictionaries({kk: _spell(vv) for kk, vv in v.items()}))
                                      for k, v in step.items()})

    return st.lists(st.sampled_from(steps).flatmap(respelled), min_size=1, max_size=4)


@FAST
@given(steps=_valid_recipes())
def test_any_valid_recipe_in_any_number_spelling_parses_and_round_trips(steps):
    recipe = parse_recipe({"steps": steps}, "generated.yaml")
    assert len(recipe.steps) == len(steps)
    assert parse_recipe(yaml.safe_load(yaml.safe_dump(recipe.to_dict())), "again") == recipe


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_round_trip_through_yaml(path):
    recipe = load_recipe(path)
    assert parse_recipe(yaml.safe_load(yaml.safe_dump(recipe.to_dict())), str(path)) == recipe


# ----- run dirs -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    import torch

    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2).eval()
    path = tmp_path_factory.mktemp("runs") / "run"
    save_run(path, model, {"task": "classify"}, metrics={"metric": 0.5}, history=[{"epoch": 1}])
    return path


@SLOWER
@given(data=st.data())
def test_save_load_round_trip_and_any_flipped_byte_is_detected(run_dir, tmp_path, data):
    import torch

    copy = tmp_path / f"copy{data.draw(st.integers(0, 10**9))}"
    shutil.copytree(run_dir, copy)
    verify_manifest(copy)
    run = load_run(copy)
    original = load_run(run_dir)
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        assert torch.equal(run.model(x), original.model(x))
    names = sorted(p.name for p in copy.iterdir() if p.is_file())  # manifest.json included
    name = data.draw(st.sampled_from(names))
    raw = bytearray((copy / name).read_bytes())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= 1 << data.draw(st.integers(0, 7))
    (copy / name).write_bytes(bytes(raw))
    with pytest.raises(RunDirError) as err:
        load_run(copy)
    assert name in _one_line(err.value)
    shutil.rmtree(copy)


@FAST
@given(data=st.data())
def test_any_flipped_bit_of_the_manifest_itself_is_refused_naming_it(run_dir, tmp_path, data):
    raw = bytearray((run_dir / "manifest.json").read_bytes())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= 1 << data.draw(st.integers(0, 7))
    copy = tmp_path / f"m{data.draw(st.integers(0, 10**9))}"
    shutil.copytree(run_dir, copy)
    (copy / "manifest.json").write_bytes(bytes(raw))
    with pytest.raises(RunDirError) as err:
        load_run(copy)
    assert "manifest.json" in _one_line(err.value)
    shutil.rmtree(copy)


# ----- text readers, tokenizer, vocabulary ----------------------------------------------
@FAST
@given(raw=st.binary(max_size=200))
def test_any_bytes_are_read_as_utf8_or_refused_naming_the_line(tmp_path, raw):
    path = tmp_path / "t.txt"
    path.write_bytes(raw)
    try:
        want = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        with pytest.raises(DataError, match=r"line \d+ is not valid UTF-8"):
            read_text(path)
        return
    assert read_text(path) == want


@FAST
@given(rows=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=6)), min_size=0, max_size=5),
       junk=st.binary(max_size=8))
def test_csv_reader_reads_or_refuses_with_one_line(tmp_path, rows, junk):
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    path = tmp_path / "d.csv"
    path.write_bytes(buf.getvalue().encode() + junk)
    try:
        records = read_csv(path)
    except DataError as err:
        assert str(path) in _one_line(err)
        return
    assert all(label.strip() for label in records.labels) and len(records.texts) == len(records.labels)


@FAST
@given(text=st.text(), level=st.sampled_from(["word", "char"]))
def test_tokenizer_and_vocabulary_take_any_unicode(text, level):
    tokens = tokenize(text, level)
    assert all(isinstance(t, str) and t for t in tokens)
    vocab = Vocabulary.build([tokens])
    ids = vocab.encode(tokens)
    assert all(0 <= i < len(vocab) for i in ids)
    assert vocab.decode(ids) == tokens  # every token was seen, so none is unknown
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
