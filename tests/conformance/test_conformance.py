"""Conformance: every compression config × every model kind (tables in configs.py, models.py).

Checks, for each pair:
  * save → load round trip (lstmlite.io with compression_state) gives identical outputs;
  * apply → undo restores the outputs and the state dict exactly;
  * apply → finalize → save → load gives the outputs of the compressed model;
  * a filter matching nothing changes nothing;
  * training after compression changes the surviving weights and never the pruned ones
    (the nn.LSTM flat-weights trap, pytorch#33618).
The reference for "exact" is the model itself before compression (or as compressed),
run through the same forward; each method's own oracle tests live in tests/compress/.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.utils import parametrize

from lstmlite.compress import Mask, compress_, compression_state, finalize, size_bytes, summary, undo
from lstmlite.compress.targets import chain
from lstmlite.io import load_run, save_run


def _load(name: str):
    """Import a sibling table module under a unique name (pytest runs in importlib mode)."""
    spec = importlib.util.spec_from_file_location(f"lstmlite_conformance_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


_configs = _load("configs")
_models = _load("models")
CONFIGS, MODELS, run = _configs.CONFIGS, _models.MODELS, _models.run

# Pairs where the config legitimately leaves the model as it is (checked, not skipped).
NO_CHANGE = {
    ("gru-embedding-bidirectional", "hidden-units-group-lasso-keep4"),  # already 4 units
    ("grouped-lstm-classifier", "low-rank-2"),  # per-group 3-D blocks are not factored by default
    ("grouped-lstm-classifier", "low-rank-energy-90"),
}

PAIRS = [pytest.param(m, c, id=f"{m.id}-{c.id}") for m in MODELS for c in CONFIGS]


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_state(a, b):
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _parametrized(model):
    return [m for m in model.modules() if parametrize.is_parametrized(m)]


def _compress(model_case, config_case, model, **kw):
    """compress_, or — for a pair the model must refuse — check the refusal is a
    ValueError that leaves the model untouched, and return False."""
    config = config_case.make()
    if config.type_name not in model_case.refuses:
        compress_(model, config, **kw)
        return True
    state, before = _state(model), model.config()
    with pytest.raises(ValueError):
        compress_(model, config, **kw)
    assert model.config() == before and not _parametrized(model)
    _assert_same_state(_state(model), state)
    return False


@pytest.mark.parametrize("model_case,config_case", PAIRS)
def test_compress_changes_the_model(model_case, config_case):
    model = model_case.build()
    before = model.config()
    if not _compress(model_case, config_case, model):
        return
    changed = bool(compression_state(model)) or model.config() != before
    assert changed == ((model_case.id, config_case.id) not in NO_CHANGE)


@pytest.mark.parametrize("model_case,config_case", PAIRS)
def test_save_load_round_trip(model_case, config_case, tmp_path):
    model, batch = model_case.build(), model_case.batch()
    if not _compress(model_case, config_case, model):
        return
    expected = run(model, batch)
    state = compression_state(model)
    assert json.loads(json.dumps(state)) == state  # JSON, as config.json stores it
    save_run(tmp_path / "run", model, {"task": model_case.task, "compression": state})
    loaded = load_run(tmp_path / "run").model
    assert loaded.config() == model.config()
    assert compression_state(loaded) == state
    # the same memory layouts: a BLAS may sum a transposed operand in another order (MKL's
    # AVX2 kernels on Intel do), so equal values alone do not give equal outputs everywhere
    strides = {n: p.stride() for n, p in model.named_parameters()}
    assert {n: p.stride() for n, p in loaded.named_parameters()} == strides
    assert torch.equal(run(loaded, batch), expected)
    assert size_bytes(loaded) == size_bytes(model)


@pytest.mark.parametrize("model_case,config_case", PAIRS)
def test_undo_restores_exactly(model_case, config_case):
    model, batch = model_case.build(), model_case.batch()
    expected, state, config = run(model, batch), _state(model), model.config()
    _compress(model_case, config_case, model)
    undo(model)
    assert not _parametrized(model)
    assert model.config() == config
    _assert_same_state(_state(model), state)
    assert torch.equal(run(model, batch), expected)


@pytest.mark.parametrize("model_case,config_case", PAIRS)
def test_finalize_save_load(model_case, config_case, tmp_path):
    model, batch = model_case.build(), model_case.batch()
    if not _compress(model_case, config_case, model):
        return
    expected = run(model, batch)
    finalize(model)
    assert not _parametrized(model) and compression_state(model) == []
    if config_case.finalize_exact:
        assert torch.equal(run(model, batch), expected)
    else:
        torch.testing.assert_close(run(model, batch), expected, atol=config_case.finalize_atol, rtol=0)
    save_run(tmp_path / "run", model, {"task": model_case.task, "compression": compression_state(model)})
    loaded = load_run(tmp_path / "run").model
    assert torch.equal(run(loaded, batch), run(model, batch))
    if getattr(model, "tie_weights", False):  # the tie survives finalize and reload
        assert loaded.head.weight is loaded.embedding.weight and model.head.weight is model.embedding.weight


@pytest.mark.parametrize("model_case,config_case", PAIRS)
def test_filter_matching_nothing_changes_nothing(model_case, config_case):
    model, batch = model_case.build(), model_case.batch()
    expected, state, config = run(model, batch), _state(model), model.config()
    compression = config_case.make()
    if compression.type_name in model_case.refuses:  # refused whatever the filter
        _compress(model_case, config_case, model, filter=lambda fqn, module, name: False)
        return
    compress_(model, compression, filter=lambda fqn, module, name: False)
    assert not _parametrized(model) and compression_state(model) == []
    assert model.config() == config
    _assert_same_state(_state(model), state)
    assert torch.equal(run(model, batch), expected)


def _masks(model):
    """Effective-tensor name → combined keep mask, for every masked tensor."""
    out = {}
    for fqn, module in model.named_modules():
        if not parametrize.is_parametrized(module) or "parametrizations" in fqn.split("."):
            continue
        for name, plist in module.parametrizations.items():
            masks = [p.mask for p in chain(plist) if isinstance(p, Mask)]
            if masks:
                out[f"{fqn}.{name}"] = torch.stack(masks).all(0)
    return out


def _effective(model):
    return {row["name"]: _get(model, row["name"]).detach().clone() for row in summary(model) if row["transforms"]}


def _get(model, dotted):
    fqn, _, name = dotted.rpartition(".")
    return getattr(model.get_submodule(fqn), name)


@pytest.mark.parametrize("model_case,config_case", PAIRS)
def test_training_updates_surviving_weights(model_case, config_case):
    model, batch = model_case.build(), model_case.batch()
    if not _compress(model_case, config_case, model):
        return
    model.train()
    before_params = {n: p.detach().clone() for n, p in model.named_parameters()}
    before = _effective(model)
    masks = _masks(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=config_case.train_lr)  # made after compress_
    out = run(model, batch)
    loss = (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum()
    loss.backward()
    optimizer.step()
    trained = 0
    for name, param in model.named_parameters():  # every stored trainable with a gradient moves
        if param.grad is not None and param.grad.abs().sum() > 0:
            assert not torch.equal(param.detach(), before_params[name]), name
            trained += 1
    assert trained, "no parameter received a gradient"
    after = _effective(model)
    assert list(after) == list(before)
    moved = 0
    for name in before:  # compressed tensors move on surviving entries only
        keep = masks.get(name, torch.ones_like(before[name], dtype=torch.bool))
        assert torch.all(after[name][~keep] == 0), f"{name}: a pruned weight came back"
        if _has_gradient(model, name):  # (heavy pruning can cut a tensor off the output)
            assert not torch.equal(after[name][keep], before[name][keep]), f"{name}: surviving weights did not train"
            moved += 1
    # Global pruning of a tiny random model may cut every compressed tensor off the
    # output (the head pruned entirely); otherwise some compressed tensor must train.
    assert moved or not before or _head_cut(masks), "no compressed tensor received a gradient"


def _head_cut(masks):
    return "head.weight" in masks and not bool(masks["head.weight"].any())


def _has_gradient(model, dotted):
    """Whether any stored original behind a parametrized tensor got a non-zero gradient."""
    fqn, _, name = dotted.rpartition(".")
    plist = model.get_submodule(fqn).parametrizations[name]
    return any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in plist.parameters())
