"""Honest size: storage_bytes against a plain NumPy count of each layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lstmlite.compress import MagnitudePruneConfig, Storage, compress_, finalize, size_bytes, summary
from lstmlite.compress.size import storage_bytes
from lstmlite.io import dense_size_bytes, model_state
from lstmlite.nn import LanguageModel, SequenceClassifier


def _numpy_bytes(values: np.ndarray, bits: int) -> int:
    """Independent count: dense, or values + min(bitmask, CSR) for blocks 1x1, 1x4, 4x1."""
    m = values.reshape(1, -1) if values.ndim < 2 else values.reshape(values.shape[0], -1)
    best = math.ceil(m.size * bits / 8)
    for br, bc in [(1, 1), (1, 4), (4, 1)]:
        grid_r, grid_c = -(-m.shape[0] // br), -(-m.shape[1] // bc)
        kept = 0
        for i in range(grid_r):
            for j in range(grid_c):
                if np.any(m[i * br:(i + 1) * br, j * bc:(j + 1) * bc] != 0):
                    kept += 1
        vals = math.ceil(kept * br * bc * bits / 8)
        bitmask = math.ceil(grid_r * grid_c / 8)
        csr = (grid_r + 1) * 4 + kept * 2
        best = min(best, vals + min(bitmask, csr))
    return best


@pytest.mark.parametrize("shape", [(16, 12), (7, 9), (30,), (5, 3, 4)])
@pytest.mark.parametrize("density", [1.0, 0.5, 0.1, 0.01, 0.0])
@pytest.mark.parametrize("bits", [32, 8, 4])
def test_storage_bytes_matches_numpy_count(shape, density, bits):
    rng = np.random.default_rng(abs(hash((shape, density, bits))) % 2**32)
    values = rng.normal(size=shape).astype(np.float32) * (rng.random(shape) < density)
    assert storage_bytes(Storage(torch.from_numpy(values), bits=bits)) == _numpy_bytes(values, bits)


def test_block_sparse_pattern_is_cheaper_than_scattered():
    w = torch.zeros(8, 16)
    w[:, :4] = 1.0  # one kept 1x4 block per row: 8 blocks, 32 values
    # 1x4: 32 values * 4 B + bitmask of 8 x 4 blocks (4 B); 1x1 would need a 16 B bitmask
    assert storage_bytes(Storage(w)) == 32 * 4 + 4


def test_int4_is_packed_two_per_byte_and_overheads_add():
    w = torch.randn(10, 3)
    assert storage_bytes(Storage(w, bits=4)) == 15
    assert storage_bytes(Storage(w, bits=8, overhead_bytes=40)) == 30 + 40


def test_factors_count_unless_the_product_is_smaller():
    u, v = torch.randn(40, 2), torch.randn(2, 30)
    factored = Storage(u @ v, factors=(Storage(u), Storage(v)), rank=2)
    assert storage_bytes(factored) == (80 + 60) * 4
    u, v = torch.randn(4, 3), torch.randn(3, 4)  # rank 3 of 4x4: 24 values > 16
    assert storage_bytes(Storage(u @ v, factors=(Storage(u), Storage(v)), rank=3)) == 16 * 4


@pytest.mark.parametrize("make", [
    lambda: SequenceClassifier(input_size=5, hidden_size=7, num_layers=2, bidirectional=True, n_classes=3),
    lambda: LanguageModel(vocab_size=30, embed_dim=6, hidden_size=6, tie_weights=True),
])
def test_uncompressed_models_count_each_stored_tensor_once(make):
    model = make()
    # io's model_state stores tied weights once; an embedding's zero padding row may
    # make the sparse layout a few bytes smaller, so count each tensor independently.
    expected = sum(_numpy_bytes(t.numpy(), 32) for t in model_state(model).values())
    assert size_bytes(model) == expected
    assert dense_size_bytes(model) - 8 <= expected <= dense_size_bytes(model)


def test_pruned_size_equals_count_of_survivors_and_survives_finalize():
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=16, hidden_size=32, n_classes=4)
    compress_(model, MagnitudePruneConfig(sparsity=0.9))
    expected = sum(_numpy_bytes(row_tensor.detach().numpy(), 32)
                   for row_tensor in (model.rnn.weight_ih_l0, model.rnn.weight_hh_l0, model.rnn.bias_ih_l0,
                                      model.rnn.bias_hh_l0, model.head.weight, model.head.bias))
    assert size_bytes(model) == expected < dense_size_bytes(model) / 3
    before = size_bytes(model)
    finalize(model)
    assert size_bytes(model) == before
    row = next(r for r in summary(model) if r["name"] == "rnn.weight_hh_l0")
    assert row["sparsity"] == pytest.approx(0.9, abs=1e-3) and row["bits"] == 32 and row["rank"] is None


def test_csr_counts_one_pointer_per_row_plus_one_and_16_bit_columns_up_to_65536():
    w = torch.zeros(2, 256)
    w[0, 3], w[1, 100], w[1, 200] = 1.0, 2.0, 3.0
    # 3 values * 4 B + CSR: (2 + 1) int32 row pointers + 3 uint16 columns = 12 + 18 (bitmask: 64 B)
    assert storage_bytes(Storage(w)) == 30
    wide = torch.zeros(1, 65536)
    wide[0, [0, 70, 65535]] = 1.0  # column 65535 still fits a uint16
    assert storage_bytes(Storage(wide)) == 12 + 2 * 4 + 3 * 2
    wider = torch.zeros(1, 65537)
    wider[0, [0, 70, 65536]] = 1.0  # one column more: int32 column indices
    assert storage_bytes(Storage(wider)) == 12 + 2 * 4 + 3 * 4


def test_column_blocks_win_for_whole_columns():
    """Two full columns of a 16x16 matrix, counted by hand: (4, 1) blocks keep 8 blocks = 32
    values (128 B) + an 8-byte bitmask (64 blocks) = 136 B; (1, 1) needs 128 B + a 32-byte
    bitmask = 160 B; (1, 4) keeps 2 blocks per row = 128 values = 512 B. Catches the (4, 1)
    shape left out of the layouts tried."""
    w = torch.zeros(16, 16)
    w[:, 0], w[:, 5] = 1.0, -2.0
    assert storage_bytes(Storage(w)) == 136


def test_overhead_of_a_factored_tensor_is_added_to_its_factors():
    """Storage.overhead_bytes of a factored tensor (a custom parametrization's scales, say)
    counts beside the factors: (40 + 30) * 2 values * 4 B + 12 B. Catches it dropped."""
    u, v = torch.randn(40, 2), torch.randn(2, 30)
    assert storage_bytes(Storage(u @ v, factors=(Storage(u), Storage(v)), rank=2, overhead_bytes=12)) == 560 + 12


def test_allow_sparse_false_forces_the_dense_layout():
    """A 90 %-zero 10x10 matrix: dense 400 B, though sparse would be 10 * 4 B + a 13-byte bitmask.
    Catches allow_sparse ignored."""
    w = torch.zeros(10, 10)
    w[range(10), range(10)] = 1.0
    assert storage_bytes(Storage(w)) == 40 + 13
    assert storage_bytes(Storage(w, allow_sparse=False)) == 400


@pytest.mark.parametrize("quantize_first", [False, True])
def test_a_mask_keeps_the_scales_of_the_quantizer_under_it(quantize_first):
    """Prune and int8-quantize in either order: weight_hh_l0 (24 x 6) with 10% pruned is
    stored densest as 144 one-byte codes plus 24 float32 scales = 240 bytes (a (1, 1)
    bitmask would add 18 bytes and save only 14), whichever parametrization runs last.
    Catches a mask on top of a quantizer dropping the scales it inherits."""
    from lstmlite.compress import WeightQuantConfig

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=6, n_classes=3)
    configs = [MagnitudePruneConfig(sparsity=0.1), WeightQuantConfig(bits=8)]
    for config in reversed(configs) if quantize_first else configs:
        compress_(model, config)
    rows = {r["name"]: r for r in summary(model)}
    assert rows["rnn.weight_hh_l0"]["bytes"] == 24 * 6 + 4 * 24
