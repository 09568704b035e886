"""Configs: validation, versioned JSON, the allow-list, the registry."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from lstmlite.compress import (
    CompressionConfig, GradualPruneConfig, HiddenUnitPruneConfig, LowRankConfig, MagnitudePruneConfig,
    compress_, config_from_dict, get_handler, register_handler, registered_configs,
)
from lstmlite.nn import SequenceClassifier

CONFIGS = [
    MagnitudePruneConfig(sparsity=0.3),
    MagnitudePruneConfig(sparsity=0.9, scope="global", block=(1, 4)),
    GradualPruneConfig(0.1, 0.9, start_step=5, end_step=50, frequency=5, block=(4, 1)),
    HiddenUnitPruneConfig(fraction=0.25),
    HiddenUnitPruneConfig(keep=[3, 2], criterion="group_lasso"),
    LowRankConfig(rank=3),
    LowRankConfig(energy=0.95),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.type_name)
def test_json_round_trip(config):
    d = config.to_dict()
    assert set(d) == {"type", "version", "data"} and d["type"] == config.type_name
    back = config_from_dict(json.loads(json.dumps(d)))
    assert back == config and type(back) is type(config)


def test_every_builtin_type_is_on_the_allow_list_with_a_handler():
    known = registered_configs()
    for config in CONFIGS:
        assert known[config.type_name] is type(config)
        assert callable(get_handler(config))


@pytest.mark.parametrize("bad,match", [
    ({"type": "pickle", "version": 1, "data": {}}, "unknown compression config type"),
    ({"type": "magnitude_prune", "version": 2, "data": {"sparsity": 0.5}}, "version 2 is not supported"),
    ({"type": "magnitude_prune", "version": True, "data": {"sparsity": 0.5}}, "version must be a whole number, got True"),
    ({"type": "magnitude_prune", "version": 1, "data": {"sparsity": 0.5, "evil": 1}}, "unknown key"),
    ({"type": "magnitude_prune", "version": 1, "data": {}}, "missing key"),
    ({"type": "magnitude_prune", "version": 1, "data": {"sparsity": 1.5}}, r"sparsity must be in \[0, 1\)"),
    ({"type": "magnitude_prune", "data": {"sparsity": 0.5}}, "version None"),
    ({"type": "magnitude_prune", "version": 1, "data": {"sparsity": 0.5}, "x": 1}, "got keys"),
    (["magnitude_prune"], "JSON object"),
])
def test_loading_fails_loudly(bad, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(bad)


@pytest.mark.parametrize("make,match", [
    (lambda: MagnitudePruneConfig(sparsity=-0.1), "sparsity"),
    # 1.0 would prune every weight (the interval is [0, 1)): catches `<=` for `<` in the range check
    (lambda: MagnitudePruneConfig(sparsity=1.0), r"sparsity must be in \[0, 1\)"),
    (lambda: GradualPruneConfig(0.0, 1.0, start_step=0, end_step=10), r"final_sparsity must be in \[0, 1\)"),
    (lambda: HiddenUnitPruneConfig(fraction=1.0), r"fraction must be in \[0, 1\)"),
    (lambda: MagnitudePruneConfig(sparsity=0.5, scope="model"), "scope"),
    (lambda: MagnitudePruneConfig(sparsity=0.5, block=(0, 4)), "block"),
    (lambda: MagnitudePruneConfig(sparsity=0.5, block=(4,)), "block"),
    (lambda: GradualPruneConfig(0.5, 0.2, start_step=0, end_step=10), "at least initial"),
    (lambda: GradualPruneConfig(0.0, 0.5, start_step=10, end_step=10), "end_step"),
    (lambda: GradualPruneConfig(0.0, 0.5, start_step=0, end_step=10, frequency=0), "frequency"),
    (lambda: GradualPruneConfig(0.0, 0.5, start_step=0.5, end_step=10), "start_step must be an int"),
    (lambda: HiddenUnitPruneConfig(), "exactly one"),
    (lambda: HiddenUnitPruneConfig(fraction=0.5, keep=2), "exactly one"),
    (lambda: HiddenUnitPruneConfig(keep=[2, 0]), "keep"),
    (lambda: HiddenUnitPruneConfig(fraction=0.5, criterion="l1"), "criterion"),
    (lambda: LowRankConfig(), "exactly one"),
    (lambda: LowRankConfig(rank=0), "rank"),
    (lambda: LowRankConfig(energy=1.5), "energy"),
    # a bool is not a count (YAML's yes/no): catches the bool checks dropped (True would act as 1)
    (lambda: GradualPruneConfig(0.0, 0.5, start_step=True, end_step=10), "start_step must be an int"),
    (lambda: HiddenUnitPruneConfig(keep=True), "keep must be a positive int"),
    (lambda: HiddenUnitPruneConfig(keep=[4, True]), "keep must be a positive int"),
    (lambda: LowRankConfig(rank=True), "rank must be a positive int"),
])
def test_validation(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_block_lists_from_json_become_tuples():
    config = config_from_dict({"type": "magnitude_prune", "version": 1,
                               "data": {"sparsity": 0.5, "block": [1, 4]}})
    assert config.block == (1, 4)


def test_old_versions_load_through_migrate_only():
    with pytest.raises(TypeError, match="CompressionConfig subclass"):
        register_handler(lambda model, config, filter: None)  # forgot the config class

    @dataclass
    class Versioned(CompressionConfig):
        type_name = "versioned_test_config"
        version = 2
        strength: float = 0.5

        @classmethod
        def migrate(cls, version, data):
            assert version == 1
            return {"strength": data.pop("amount")}

    register_handler(Versioned)(lambda model, config, filter: None)
    assert config_from_dict({"type": "versioned_test_config", "version": 1, "data": {"amount": 0.2}}) == Versioned(0.2)
    with pytest.raises(ValueError, match="version 3"):
        config_from_dict({"type": "versioned_test_config", "version": 3, "data": {}})


def test_compress_accepts_dicts_and_refuses_classes():
    model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2)
    assert compress_(model, {"type": "magnitude_prune", "version": 1, "data": {"sparsity": 0.5}}) is model
    assert model.rnn.weight_hh_l0.eq(0).float().mean() == pytest.approx(0.5)
    with pytest.raises(TypeError, match="instance"):
        compress_(model, MagnitudePruneConfig)
    with pytest.raises(TypeError):
        compress_(model, "magnitude_prune")
