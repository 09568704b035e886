"""Low-rank factorization against NumPy's SVD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite.compress import (
    LowRankConfig, MagnitudePruneConfig, compress_, compression_state, restore_compression, size_bytes, summary, undo,
)
from lstmlite.nn import SequenceClassifier


def _model(**kw):
    torch.manual_seed(0)
    return SequenceClassifier(**{"input_size": 10, "hidden_size": 12, "n_classes": 3, **kw})


def _numpy_truncated(w: np.ndarray, rank: int) -> np.ndarray:
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vt[:rank]


def _numpy_energy_rank(w: np.ndarray, energy: float) -> int:
    s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    kept = np.cumsum(s ** 2) / np.sum(s ** 2)
    return int(np.argmax(kept >= energy - 1e-12)) + 1


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_rank_r_product_is_the_truncated_svd(rank):
    model = _model(bidirectional=True)
    originals = {n: getattr(model.rnn, n).detach().numpy().copy()
                 for n in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse")}
    compress_(model, LowRankConfig(rank=rank))
    for name, w in originals.items():
        np.testing.assert_allclose(getattr(model.rnn, name).detach().numpy(), _numpy_truncated(w, rank),
                                   rtol=1e-4, atol=1e-5)
        u = model.rnn.parametrizations[name].original0
        v = model.rnn.parametrizations[name].original1
        assert u.shape == (w.shape[0], rank) and v.shape == (rank, w.shape[1]) and u.requires_grad
    rows = {r["name"]: r for r in summary(model)}
    assert rows["rnn.weight_hh_l0"]["rank"] == rank and rows["head.weight"]["rank"] is None
    ih = rows["rnn.weight_ih_l0"]  # (48, 10): rank r stores r * 58 floats when that is smaller
    assert ih["bytes"] == min(rank * (48 + 10), 48 * 10) * 4


def test_factors_are_balanced_square_roots_of_the_singular_values():
    # U = U_r diag(sqrt(sigma)), V = diag(sqrt(sigma)) V_r^T: column i of U and row i of V both have norm sqrt(sigma_i)
    model = _model()
    w = model.rnn.weight_hh_l0.detach().numpy().astype(np.float64)
    compress_(model, LowRankConfig(rank=4))
    root = np.sqrt(np.linalg.svd(w, compute_uv=False)[:4])
    u = model.rnn.parametrizations.weight_hh_l0.original0.detach().numpy()
    v = model.rnn.parametrizations.weight_hh_l0.original1.detach().numpy()
    np.testing.assert_allclose(np.linalg.norm(u, axis=0), root, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), root, rtol=1e-5)
    np.testing.assert_allclose(u.T @ u, v @ v.T, atol=1e-5)


@pytest.mark.parametrize("energy", [0.5, 0.9, 0.99, 1.0])
def test_energy_chooses_the_smallest_sufficient_rank(energy):
    model = _model(num_layers=2)
    expected = {n: _numpy_energy_rank(getattr(model.rnn, n).detach().numpy(), energy)
                for n in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1")}
    compress_(model, LowRankConfig(energy=energy))
    ranks = {r["name"].split(".")[1]: r["rank"] for r in summary(model) if r["rank"] is not None}
    assert ranks == expected
    if energy == 1.0:
        assert all(r == 12 or r == 10 for r in ranks.values())  # full rank: min(rows, cols)


def test_rank_is_clamped_and_size_counts_factors():
    model = _model()
    dense = size_bytes(model)
    compress_(model, LowRankConfig(rank=100))
    assert {r["rank"] for r in summary(model) if r["rank"]} == {10, 12}
    assert size_bytes(model) == dense  # full-rank factors are bigger: the dense product is stored


def test_factors_train_and_the_product_follows():
    model = _model()
    compress_(model, LowRankConfig(rank=2))
    before = model.rnn.weight_hh_l0.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 5, 10)).sum().backward()
    optimizer.step()
    after = model.rnn.weight_hh_l0.detach()
    assert not torch.equal(after, before)
    assert torch.linalg.matrix_rank(after).item() <= 2


def test_errors_and_undo_after_reload():
    model = _model()
    compress_(model, MagnitudePruneConfig(sparsity=0.5))
    with pytest.raises(ValueError, match="apply low_rank first"):
        compress_(model, LowRankConfig(rank=2))
    undo(model)
    compress_(model, LowRankConfig(rank=2))
    fresh = restore_compression(_model(), compression_state(model))
    fresh.load_state_dict(model.state_dict())
    x = torch.randn(2, 4, 10)
    assert torch.equal(fresh(x), model(x))
    with pytest.raises(ValueError, match="not kept"):
        undo(fresh)
    assert compression_state(fresh) == compression_state(model)  # refused before changing anything


def test_energy_reached_exactly_is_enough_despite_rounding():
    """Eight equal singular values √0.1: each keeps 1/8 of Σσ², so energy 0.75 needs rank 6
    and energy 1.0 rank 8 — but in floating point the cumulative shares come out as
    0.7499999999999999 and 0.9999999999999999. Catches the tolerance of choose_rank
    dropped (ranks 7 and 9, one more than the matrix has)."""
    from lstmlite.compress.lowrank import choose_rank

    sigma = torch.full((8,), 0.1, dtype=torch.float64).sqrt()
    assert choose_rank(sigma, 0.75) == 6
    assert choose_rank(sigma, 1.0) == 8
    assert choose_rank(sigma, 0.1) == 1  # 1/8 = 0.125 >= 0.1


def test_warns_exactly_when_the_factors_store_no_fewer_values(caplog):
    """rank r of a 48x12 matrix stores r (48 + 12) values: r = 9 stores 540 < 576, r = 10
    stores 600. The documented warning names the tensor at r = 10 and is silent at r = 9.
    Catches the warning's check dropped (or its bound off by one)."""
    only_hh = lambda fqn, module, name: name == "weight_hh_l0"  # noqa: E731
    with caplog.at_level("WARNING", logger="lstmlite.compress.lowrank.transform"):
        compress_(_model(), LowRankConfig(rank=9), filter=only_hh)
    assert "stores more values" not in caplog.text
    with caplog.at_level("WARNING", logger="lstmlite.compress.lowrank.transform"):
        compress_(_model(), LowRankConfig(rank=10), filter=only_hh)
    assert "rnn.weight_hh_l0: rank 10 stores more values than the dense (48, 12) matrix" in caplog.text


def test_grouped_lstm_blocks_are_left_alone():
    """A G-LSTM's per-group weights are 3-D blocks (groups, 4H/G, I/G): low_rank's default
    leaves them (and so the whole model) unchanged instead of refusing the model. Catches
    the default filter taking every recurrent weight whatever its rank."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=8, cell="glstm", hidden_size=8, rnn_options={"groups": 2}, n_classes=3)
    x = torch.randn(2, 5, 8)
    before = model(x)
    compress_(model, LowRankConfig(rank=2))
    assert compression_state(model) == [] and torch.equal(model(x), before)


def test_a_fastgrnns_own_factors_are_not_factored_again():
    """A FastGRNN with urank stores U as its own two factors; low_rank leaves them alone by default
    (it factors W) and refuses them when a filter names one, nothing changed: every export stores
    U as those two factors, so factors of factors would reach the files as floats, their codes lost."""
    from lstmlite.compress import WeightQuantConfig
    from lstmlite.export.lsl import spec_from_module, write_lsl
    from lstmlite.runtime.lsl import describe_lsl

    model = _model(cell="fastgrnn", rnn_options={"urank": 3})
    compress_(model, LowRankConfig(rank=2))
    assert {row["name"] for row in summary(model) if row["rank"]} == {"rnn.weight_ih_l0"}
    compress_(model, WeightQuantConfig(bits=4))
    dtypes = {row["name"]: row["dtype"] for row in describe_lsl(write_lsl(spec_from_module(model), "auto"))}
    assert all(dtypes[f"l0.0.{w}.{f}"].startswith("int4") for w in ("w_ih", "w_hh") for f in "uv")
    fresh = _model(cell="fastgrnn", rnn_options={"urank": 3})
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(ValueError, match="weight_hh_l0_left is a factor of the FastGRNN's own low-rank .* urank"):
        compress_(fresh, LowRankConfig(rank=1), filter=lambda fqn, module, name: name.startswith("weight_hh"))
    assert fresh.state_dict().keys() == before.keys()
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in before.items())
