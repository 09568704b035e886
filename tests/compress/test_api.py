"""The API plumbing: summary, state save/restore (chains, nesting, ties), finalize/undo."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from lstmlite.compress import (
    CompressionParametrization, LowRankConfig, MagnitudePruneConfig, Storage, compress_, compression_state, finalize,
    WeightQuantConfig, format_summary, register_transform, restore_compression, size_bytes, summary, undo,
)
from lstmlite.io import load_run, save_run
from lstmlite.nn import LanguageModel, SequenceClassifier


@register_transform
class HalfBits(CompressionParametrization):
    """Test stand-in for a quantizer: scales by a saved buffer and claims 8-bit storage."""

    kind = "test_half_bits"

    def __init__(self, config=None, shape=(1,)):
        super().__init__(config)
        self.register_buffer("scale", torch.full(shape[:1] + (1,) * (len(shape) - 1), 0.5))

    def forward(self, w):
        return w * self.scale

    @classmethod
    def restore(cls, config, meta, tensor):
        return cls(config, tuple(tensor.shape))

    def storage(self, inputs, output):
        return Storage(values=output.detach(), bits=8, overhead_bytes=4 * output.shape[0])


def _model():
    torch.manual_seed(0)
    return SequenceClassifier(input_size=5, hidden_size=6, num_layers=2, n_classes=3).eval()


def test_summary_rows_and_table():
    model = _model()
    compress_(model, LowRankConfig(rank=2), filter=lambda f, m, n: n == "weight_ih_l1")
    compress_(model, MagnitudePruneConfig(sparsity=0.5), filter=lambda f, m, n: n == "weight_hh_l0")
    rows = {r["name"]: r for r in summary(model)}
    assert list(rows)[:4] == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"]
    assert rows["rnn.weight_ih_l1"]["rank"] == 2 and rows["rnn.weight_ih_l1"]["transforms"] == ["low-rank r=2"]
    assert rows["rnn.weight_hh_l0"]["sparsity"] == pytest.approx(0.5)
    assert rows["rnn.weight_hh_l0"]["transforms"] == ["mask 50%"]
    assert rows["head.weight"]["shape"] == [3, 6] and rows["head.weight"]["bytes"] == 72
    assert size_bytes(model) == sum(r["bytes"] for r in rows.values())
    table = format_summary(list(rows.values()))
    assert "low-rank r=2" in table and table.splitlines()[-1].split()[0] == "total"
    assert str(size_bytes(model)) in table.splitlines()[-1]


def test_chained_and_nested_parametrizations_save_and_load(tmp_path):
    model = _model()
    x = torch.randn(2, 4, 5)
    compress_(model, LowRankConfig(rank=3), filter=lambda f, m, n: n == "weight_hh_l0")
    # a quantizer may parametrize a factor (nested) or the product (chained)
    compress_(model, MagnitudePruneConfig(sparsity=0.25), filter=lambda f, m, n: n == "weight_hh_l0")
    plist = model.rnn.parametrizations.weight_hh_l0
    parametrize.register_parametrization(plist, "original0", HalfBits(shape=tuple(plist.original0.shape)))
    with pytest.raises(ValueError, match="already parametrized"):  # torch would silently skip it
        compress_(model, MagnitudePruneConfig(sparsity=0.5), filter=lambda f, m, n: n == "weight_hh_l0")
    expected = model(x)
    assert float((model.rnn.weight_hh_l0 == 0).float().mean()) == pytest.approx(0.25, abs=0.01)
    state = compression_state(model)
    assert [(e["module"], e["kind"]) for e in state] == [
        ("rnn", "low_rank"), ("rnn", "mask"), ("rnn.parametrizations.weight_hh_l0", "test_half_bits")]
    row = next(r for r in summary(model) if r["name"] == "rnn.weight_hh_l0")
    assert row["transforms"] == ["original0:test_half_bits", "low-rank r=3", "mask 25%"]
    save_run(tmp_path / "run", model, {"task": "classify", "compression": json.loads(json.dumps(state))})
    loaded = load_run(tmp_path / "run").model
    assert torch.equal(loaded(x), expected) and compression_state(loaded) == state
    finalize(loaded)
    assert not any(parametrize.is_parametrized(m) for m in loaded.modules())
    assert torch.equal(loaded(x), expected)


def test_storage_of_a_nested_quantized_factor():
    model = _model()
    compress_(model, LowRankConfig(rank=1), filter=lambda f, m, n: n == "weight_ih_l1")  # (24, 6)
    plist = model.rnn.parametrizations.weight_ih_l1
    for name in ("original0", "original1"):
        parametrize.register_parametrization(plist, name, HalfBits(shape=tuple(getattr(plist, name).shape)))
    row = next(r for r in summary(model) if r["name"] == "rnn.weight_ih_l1")
    # U (24, 1) int8 + 24 scales, V (1, 6) int8 + 1 scale
    assert row["bytes"] == 24 + 4 * 24 + 6 + 4 and row["bits"] == 8 and row["rank"] == 1


def test_undo_handles_nesting_and_restores_exactly():
    model = _model()
    x = torch.randn(2, 4, 5)
    expected = model(x)
    compress_(model, LowRankConfig(rank=2))
    plist = model.rnn.parametrizations.weight_hh_l1
    parametrize.register_parametrization(plist, "original1", HalfBits(shape=tuple(plist.original1.shape)))
    undo(model)
    assert torch.equal(model(x), expected)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())


def test_finalize_forgets_structural_undo():
    from lstmlite.compress import HiddenUnitPruneConfig

    model = _model()
    compress_(model, HiddenUnitPruneConfig(keep=3))
    finalize(model)
    undo(model)  # nothing left to undo
    assert model.rnn.hidden_sizes == [3, 3]


@pytest.mark.parametrize("state,match", [
    ([{"module": "rnn", "tensor": "weight_hh_l0", "kind": "pickle"}], "unknown compression parametrization"),
    ([{"module": "nope", "tensor": "weight", "kind": "mask", "config": None, "meta": {}}], "no module"),
    ([{"module": "rnn", "tensor": "weight_zz", "kind": "mask", "config": None, "meta": {}}], "no tensor"),
    ([{"module": "rnn", "tensor": "weight_hh_l0", "kind": "mask", "evil": 1}], "malformed"),
    ([{"module": "rnn", "tensor": "weight_hh_l0", "kind": "mask", "meta": {}, "shared_with": 0}], "shared_with"),
    ({"module": "rnn"}, "must be a list"),
    ([{"module": "rnn", "tensor": "weight_hh_l0", "kind": "low_rank", "meta": {},
       "config": {"type": "low_rank", "version": 1, "data": {"rank": 2}}}], "meta.rank"),
])
def test_restore_refuses_bad_state(state, match):
    with pytest.raises(ValueError, match=match):
        restore_compression(_model(), state)


def test_foreign_parametrizations_cannot_be_saved():
    class Double(nn.Module):
        def forward(self, w):
            return 2 * w

    model = _model()
    parametrize.register_parametrization(model.head, "weight", Double())
    with pytest.raises(ValueError, match="cannot be saved"):
        compression_state(model)
    assert summary(model)[-2]["transforms"] == ["Double"]


def test_tied_weights_count_once_and_list_aliases():
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=12, embed_dim=4, hidden_size=4, tie_weights=True)
    rows = summary(model)
    tied = next(r for r in rows if r["name"] == "embedding.weight")
    assert tied["aliases"] == ["head.weight"]
    assert "head.weight" not in [r["name"] for r in rows]
    compress_(model, MagnitudePruneConfig(sparsity=0.5))
    assert next(r for r in summary(model) if r["name"] == "embedding.weight")["aliases"] == ["head.weight"]


def test_undo_reverts_every_structural_change_newest_first():
    """Two hidden-unit prunings (6 -> 4 -> 2 units per layer): undo gives back the original
    layer and head, config and outputs exactly. Catches the structural records replayed
    oldest first (the model is left with the intermediate 4-unit layer)."""
    from lstmlite.compress import HiddenUnitPruneConfig

    model = _model()
    x = torch.randn(2, 4, 5)
    expected, config = model(x), model.config()
    compress_(model, HiddenUnitPruneConfig(keep=4))
    compress_(model, HiddenUnitPruneConfig(keep=2))
    assert model.rnn.hidden_sizes == [2, 2] and model.head.in_features == 2
    undo(model)
    assert model.config() == config and model.head.in_features == 6
    assert torch.equal(model(x), expected)


def test_summary_total_sparsity_is_weighted_by_size():
    """The table's total sparsity is zeros over all values: rows of 100 values at 0.5 and
    400 values at 0.0 give 50 / 500 = 0.10 (not the mean of the rows' sparsities, 0.25).
    Catches an unweighted mean."""
    rows = [{"name": "a", "shape": [10, 10], "numel": 100, "sparsity": 0.5, "bits": 32, "rank": None, "bytes": 1,
             "transforms": [], "aliases": []},
            {"name": "b", "shape": [400], "numel": 400, "sparsity": 0.0, "bits": 32, "rank": None, "bytes": 2,
             "transforms": [], "aliases": []}]
    assert format_summary(rows).splitlines()[-1].split() == ["total", "-", "0.10", "-", "-", "3", "-"]


def test_summary_lists_persistent_buffers_only():
    """Persistent buffers are stored with the model and counted; non-persistent ones are
    not stored, so they are not listed. Catches the persistence check dropped."""
    model = _model()
    model.head.register_buffer("kept", torch.ones(3))
    model.head.register_buffer("scratch", torch.ones(50), persistent=False)
    rows = {r["name"]: r for r in summary(model)}
    assert rows["head.kept"]["bytes"] == 12 and rows["head.kept"]["transforms"] == ["buffer"]
    assert "head.scratch" not in rows
    # and size_bytes, the sum of the rows, counts the stored buffer (catches buffers left out of the total)
    assert size_bytes(model) == size_bytes(_model()) + 12


def test_undo_restores_a_low_rank_tensor_with_a_mask_after_it():
    """low_rank then a mask on the same tensor: undo puts back the dense original exactly
    (the low-rank parametrization, first in the chain, keeps it). Catches undo asking the
    last parametrization (the mask, which keeps nothing) and refusing."""
    model = _model()
    x = torch.randn(2, 4, 5)
    expected = model(x)
    only = lambda f, m, n: n == "weight_hh_l0"  # noqa: E731
    compress_(model, LowRankConfig(rank=2), filter=only)
    compress_(model, MagnitudePruneConfig(sparsity=0.5), filter=only)
    undo(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert torch.equal(model(x), expected)


@pytest.mark.parametrize("end", [undo, finalize])
def test_undo_and_finalize_give_the_state_dict_its_original_order(end):
    """torch re-registers a parametrized tensor last; undo and finalize put every
    parameter back in the module's own order, so the state dict reads as an uncompressed
    model's (weights before biases, ih before hh). Catches the reordering left out."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=6, n_classes=3)
    before = list(model.state_dict())
    compress_(model, MagnitudePruneConfig(sparsity=0.5))
    compress_(model, WeightQuantConfig(bits=8))
    end(model)
    assert list(model.state_dict()) == before == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0",
                                                  "rnn.bias_hh_l0", "head.weight", "head.bias"]
