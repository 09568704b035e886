"""Typed config values (lstmlite.typed): numbers in every YAML/JSON spelling, booleans
only where booleans belong, whole numbers never silently rounded; and the config
classes (train, data, model, compression) that use it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import yaml

from lstmlite.typed import ConfigValueError, coerce, coerce_fields


@pytest.mark.parametrize("value,expected", [
    ("1e-3", 1e-3), ("1E-3", 1e-3), (".5", 0.5), ("2.", 2.0), (3, 3.0), (2.5, 2.5), ("1_000.5", 1000.5),
    (yaml.safe_load("1e-3"), 1e-3),  # YAML 1.1 reads 1e-3 as a string
])
def test_floats_in_any_spelling(value, expected):
    got = coerce(value, float, "train.lr")
    assert type(got) is float and got == pytest.approx(expected)


@pytest.mark.parametrize("value,expected", [(5, 5), (5.0, 5), ("1e3", 1000), ("12", 12), (1e2, 100)])
def test_whole_numbers_in_any_spelling(value, expected):
    got = coerce(value, int, "train.epochs")
    assert type(got) is int and got == expected


@pytest.mark.parametrize("annotation,value", [
    (int, True), (int, 2.5), (int, "2.5"), (int, "ten"), (int, None), (int, float("inf")),
    (float, True), (float, "nan"), (float, "inf"), (float, "fast"), (float, [1]),
    (bool, 1), (bool, "true"), (bool, "yes"), (bool, 0.0),
    (str, 3), (str, True),
])
def test_wrong_types_are_refused_naming_the_key(annotation, value):
    with pytest.raises(ConfigValueError, match="train.key"):
        coerce(value, annotation, "train.key")


def test_optional_fields_take_none_or_the_type():
    assert coerce(None, int | None, "k") is None
    assert coerce("7", int | None, "k") == 7
    with pytest.raises(ConfigValueError):
        coerce("x", int | None, "k")


def test_fields_of_a_dataclass_leave_unknown_keys_to_the_caller():
    @dataclass
    class Opt:
        lr: float = 0.1
        amp: bool = True

    assert coerce_fields(Opt, {"lr": "1e-2", "amp": False, "other": "x"}, "train") == \
        {"lr": 0.01, "amp": False, "other": "x"}


def test_train_config_reads_yaml_spellings_and_refuses_booleans_as_numbers():
    from lstmlite.train import TrainConfig

    cfg = TrainConfig.from_dict(yaml.safe_load("lr: 1e-3\nepochs: 1e1\namp: false"))
    assert cfg.lr == 1e-3 and cfg.epochs == 10 and cfg.amp is False
    with pytest.raises(ValueError, match="train.epochs: expected a whole number"):
        TrainConfig.from_dict({"epochs": True})
    with pytest.raises(ValueError, match="train.amp: expected true or false"):
        TrainConfig.from_dict({"amp": "no"})


def test_data_spec_and_model_config_are_typed():
    from lstmlite.data import DataSpec
    from lstmlite.data.errors import DataError
    from lstmlite.nn.models import build_model

    assert DataSpec.from_dict({"source": "digits", "val_fraction": "2e-1"}).val_fraction == 0.2
    with pytest.raises(DataError, match="data.seed"):
        DataSpec.from_dict({"source": "digits", "seed": "one"})
    model = build_model({"kind": "classifier", "input_size": 4, "hidden_size": "16", "n_classes": 3.0})
    assert model.config()["hidden_size"] == 16 and model.config()["n_classes"] == 3
    with pytest.raises(ValueError, match="model.hidden_size"):
        build_model({"kind": "classifier", "input_size": 4, "hidden_size": 16.5, "n_classes": 3})


def test_compression_configs_are_typed():
    from lstmlite.compress import config_from_dict

    cfg = config_from_dict({"type": "magnitude_prune", "version": 1, "data": {"sparsity": "8e-1"}})
    assert cfg.sparsity == pytest.approx(0.8)
    with pytest.raises(ValueError, match="sparsity"):
        config_from_dict({"type": "magnitude_prune", "version": 1, "data": {"sparsity": True}})


def test_a_yaml_boolean_where_text_belongs_is_refused_with_advice_that_keeps_the_word() -> None:
    """``label_column: yes`` in a YAML config reads as True. Catches: the advice to quote
    "True", a column name the user never wrote (and one that does not exist)."""
    with pytest.raises(ConfigValueError, match=r'data\.label_column: .*quote the word you meant, e\.g\. "yes"') as info:
        coerce(yaml.safe_load("yes"), str, "data.label_column")
    assert '"True"' not in str(info.value)
    with pytest.raises(ConfigValueError, match=r'quote it in YAML: "12"'):  # a number: its text is the hint
        coerce(12, str, "data.text_column")


def test_a_union_takes_the_first_scalar_type_that_fits() -> None:
    """int | str: "12" is the int 12 (the first option), "x" falls through to the text; catches
    the options tried in another order ("12" kept as text)."""
    assert coerce("12", int | str, "k") == 12
    assert coerce("x", int | str, "k") == "x"
    assert coerce([1, 2], int | list[int], "k") == [1, 2]  # lists are the constructor's


def test_coerce_kwargs_takes_the_first_function_that_annotates_a_key() -> None:
    """A subclass's ``__init__`` annotating a key as int wins over its base's str; catches
    the last function's annotation winning ("5" left as text)."""
    from lstmlite.typed import coerce_kwargs

    class Base:
        def __init__(self, size: str = "", name: str = "") -> None: ...

    class Sub(Base):
        def __init__(self, size: int = 0, **kw: object) -> None: ...

    assert coerce_kwargs([Sub.__init__, Base.__init__], {"size": "5", "name": "a"}, "m") == {"size": 5, "name": "a"}
    with pytest.raises(ConfigValueError, match=r"^m\.size: expected a whole number"):
        coerce_kwargs([Sub.__init__, Base.__init__], {"size": "five"}, "m")
