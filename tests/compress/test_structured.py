"""Hidden-unit pruning against an independent oracle, and the group-lasso penalty.

Oracle: removing unit j must give the outputs of the *original* model with every
weight that reads unit j set to zero (its column in weight_hh, or in weight_hr for a
projected LSTM, and its input column in the next layer / head). Zeroing only the
unit's own rows would not do: an LSTM unit with zero weights still emits
h = σ(b_o)·tanh(c) ≠ 0.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lstmlite.compress import (
    HiddenUnitPruneConfig, MagnitudePruneConfig, compress_, group_lasso_penalty, prune_hidden_units, undo,
)
from lstmlite.nn import Forecaster, LanguageModel, SequenceClassifier, build_model

MODELS = {
    "lstm": (lambda: SequenceClassifier(input_size=3, hidden_size=8, n_classes=3), False),
    "gru-stacked-bidirectional": (lambda: SequenceClassifier(
        input_size=3, cell="gru", hidden_size=7, num_layers=2, bidirectional=True, n_classes=3), False),
    "lstm-bidirectional-embedding-mean": (lambda: SequenceClassifier(
        vocab_size=15, embed_dim=4, hidden_size=6, bidirectional=True, pooling="mean", n_classes=2), True),
    "lstm-projected-stacked": (lambda: SequenceClassifier(
        input_size=3, hidden_size=8, num_layers=2, rnn_options={"proj_size": 3}, n_classes=3), False),
    "lstm-lm-stacked": (lambda: LanguageModel(vocab_size=15, embed_dim=4, hidden_size=6, num_layers=3), True),
    "gru-forecaster": (lambda: Forecaster(input_size=2, horizon=3, cell="gru", hidden_size=6), False),
}


def _build(name):
    torch.manual_seed(0)
    make, tokens = MODELS[name]
    return make().eval(), tokens


def _inputs(model, tokens):
    g = torch.Generator().manual_seed(1)
    if tokens:
        return torch.randint(1, 15, (3, 6), generator=g)
    return torch.randn(3, 6, model.rnn.input_size, generator=g)


def _out(model, x):
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


def _zero_outgoing(model, removed):
    """The oracle: in a copy of the original, cut every connection that reads the removed units."""
    rnn, head = model.rnn, model.head
    with torch.no_grad():
        for layer, per_direction in enumerate(removed):
            h, p = rnn.hidden_sizes[layer], rnn.proj_sizes[layer]
            for d, idx in enumerate(per_direction):
                sfx = "_reverse" if d else ""
                if p:
                    getattr(rnn, f"weight_hr_l{layer}{sfx}")[:, idx] = 0
                    continue
                getattr(rnn, f"weight_hh_l{layer}{sfx}")[:, idx] = 0
                cols = d * h + idx
                if layer + 1 < rnn.num_layers:
                    for nsfx in ["", "_reverse"][: rnn.num_directions]:
                        getattr(rnn, f"weight_ih_l{layer + 1}{nsfx}")[:, cols] = 0
                else:
                    head.weight[:, cols] = 0


@pytest.mark.parametrize("name", list(MODELS))
def test_removing_units_equals_cutting_their_outgoing_weights(name):
    model, tokens = _build(name)
    x = _inputs(model, tokens)
    rng = np.random.default_rng(0)
    rnn = model.rnn
    keep, removed = [], []
    for layer in range(rnn.num_layers):
        h, p = rnn.hidden_sizes[layer], rnn.proj_sizes[layer]
        n_keep = max(p + 1, h // 2)
        ks, rs = [], []
        for _ in range(rnn.num_directions):  # each direction removes its own units
            perm = rng.permutation(h)
            ks.append(torch.as_tensor(np.sort(perm[:n_keep])))
            rs.append(torch.as_tensor(np.sort(perm[n_keep:])))
        keep.append(ks)
        removed.append(rs)
    oracle = copy.deepcopy(model)
    _zero_outgoing(oracle, removed)
    prune_hidden_units(model, keep)
    assert model.rnn.hidden_sizes == [len(k[0]) for k in keep]
    torch.testing.assert_close(_out(model, x), _out(oracle, x), rtol=1e-5, atol=1e-6)
    # The smaller model is what its config says: rebuild and load gives the same outputs.
    rebuilt = build_model(model.config()).eval()
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(_out(rebuilt, x), _out(model, x))
    assert rebuilt.macs_per_step() < oracle.macs_per_step()


def _numpy_scores(model, criterion):
    """Group norms written out in NumPy from the module docstring's definition."""
    rnn, head = model.rnn, model.head
    w = {n: p.detach().numpy() for n, p in rnn.named_parameters()}
    scores = []
    for layer in range(rnn.num_layers):
        h, p, g = rnn.hidden_sizes[layer], rnn.proj_sizes[layer], rnn.gates
        per_direction = []
        for d, sfx in enumerate(["", "_reverse"][: rnn.num_directions]):
            s = np.zeros(h)
            for j in range(h):
                rows = [k * h + j for k in range(g)]
                total = (w[f"weight_ih_l{layer}{sfx}"][rows] ** 2).sum() + (w[f"weight_hh_l{layer}{sfx}"][rows] ** 2).sum()
                if criterion == "group_lasso":
                    if p:
                        total += (w[f"weight_hr_l{layer}{sfx}"][:, j] ** 2).sum()
                    else:
                        total += (w[f"weight_hh_l{layer}{sfx}"][:, j] ** 2).sum()
                        if layer + 1 < rnn.num_layers:
                            for nsfx in ["", "_reverse"][: rnn.num_directions]:
                                total += (w[f"weight_ih_l{layer + 1}{nsfx}"][:, d * h + j] ** 2).sum()
                        else:
                            total += (head.weight.detach().numpy()[:, d * h + j] ** 2).sum()
                s[j] = np.sqrt(total)
            per_direction.append(s)
        scores.append(per_direction)
    return scores


@pytest.mark.parametrize("criterion", ["l2", "group_lasso"])
@pytest.mark.parametrize("name", ["gru-stacked-bidirectional", "lstm-projected-stacked", "lstm-lm-stacked"])
def test_compress_removes_the_lowest_scoring_units(name, criterion):
    model, tokens = _build(name)
    x = _inputs(model, tokens)
    scores = _numpy_scores(model, criterion)
    original = copy.deepcopy(model)
    compress_(model, HiddenUnitPruneConfig(fraction=0.4, criterion=criterion))
    removed = []
    for layer, per_direction in enumerate(scores):
        h, p = original.rnn.hidden_sizes[layer], original.rnn.proj_sizes[layer]
        n_keep = max(1, p + 1, h - round(0.4 * h))
        assert model.rnn.hidden_sizes[layer] == n_keep
        removed.append([torch.as_tensor(np.sort(np.argsort(-s, kind="stable")[n_keep:])) for s in per_direction])
    _zero_outgoing(original, removed)
    torch.testing.assert_close(_out(model, x), _out(original, x), rtol=1e-5, atol=1e-6)


def test_group_lasso_penalty_matches_numpy_and_has_finite_gradients_at_zero():
    model, _ = _build("gru-stacked-bidirectional")
    expected = sum(s.sum() for per in _numpy_scores(model, "group_lasso") for s in per)
    assert float(group_lasso_penalty(model).detach()) == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():  # a unit whose whole group is zero: the penalty's kink
        h = model.rnn.hidden_sizes[0]
        for k in range(3):
            model.rnn.weight_ih_l0[k * h + 2] = 0
            model.rnn.weight_hh_l0[k * h + 2] = 0
        model.rnn.weight_hh_l0[:, 2] = 0
        model.rnn.weight_ih_l1[:, 2] = 0
        model.rnn.weight_ih_l1_reverse[:, 2] = 0
    group_lasso_penalty(model).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_penalty_training_then_group_lasso_pruning_removes_the_collapsed_units():
    model, _ = _build("lstm")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(8, 5, 3), torch.randint(0, 3, (8,))
    start = float(group_lasso_penalty(model).detach())
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y) + 1.0 * group_lasso_penalty(model)
        loss.backward()
        optimizer.step()
    assert float(group_lasso_penalty(model).detach()) < 0.6 * start  # the groups shrink
    with torch.no_grad():  # collapse units 1 and 5 entirely: their groups are zero
        for j in (1, 5):
            model.rnn.weight_ih_l0[j::8] = 0
            model.rnn.weight_hh_l0[j::8] = 0
            model.rnn.weight_hh_l0[:, j] = 0
            model.head.weight[:, j] = 0
    compress_(model, HiddenUnitPruneConfig(keep=6, criterion="group_lasso"))
    assert model.rnn.hidden_sizes == [6]
    kept_head = model.head.weight.detach()
    assert torch.all(kept_head.abs().sum(0) > 0)  # the two zero columns are the ones removed


def test_tied_language_model_keeps_its_last_layer():
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=15, embed_dim=6, hidden_size=6, num_layers=2, tie_weights=True)
    compress_(model, HiddenUnitPruneConfig(fraction=0.5))
    assert model.rnn.hidden_sizes == [3, 6] and model.head.weight is model.embedding.weight
    with pytest.raises(ValueError, match="fixed"):
        compress_(model, HiddenUnitPruneConfig(keep=[2, 4]))
    # the penalty leaves the fixed layer out: only layer 0's groups count
    full = group_lasso_penalty(model)
    assert float(full.detach()) == pytest.approx(float(_numpy_scores_layer0(model)), rel=1e-5)


def _numpy_scores_layer0(model):
    rnn = model.rnn
    h, g = rnn.hidden_sizes[0], rnn.gates
    w_ih, w_hh = rnn.weight_ih_l0.detach().numpy(), rnn.weight_hh_l0.detach().numpy()
    w_next = rnn.weight_ih_l1.detach().numpy()
    return sum(np.sqrt((w_ih[[k * h + j for k in range(g)]] ** 2).sum() + (w_hh[[k * h + j for k in range(g)]] ** 2).sum()
                       + (w_hh[:, j] ** 2).sum() + (w_next[:, j] ** 2).sum()) for j in range(h))


def test_refuses_parametrized_layers_and_undo_restores():
    model, tokens = _build("lstm")
    x = _inputs(model, tokens)
    expected, config = _out(model, x), model.config()
    compress_(model, MagnitudePruneConfig(sparsity=0.5))
    with pytest.raises(ValueError, match="other compression"):
        compress_(model, HiddenUnitPruneConfig(fraction=0.5))
    undo(model)
    compress_(model, HiddenUnitPruneConfig(keep=3))
    assert model.rnn.hidden_sizes == [3] and model.head.in_features == 3
    undo(model)
    assert model.config() == config and torch.equal(_out(model, x), expected)


def test_keep_errors():
    model, _ = _build("lstm-projected-stacked")
    with pytest.raises(ValueError, match="projects to 3"):
        compress_(model, HiddenUnitPruneConfig(keep=3))
    with pytest.raises(ValueError, match="2 layers"):
        compress_(model, HiddenUnitPruneConfig(keep=[5]))
    with pytest.raises(ValueError, match="more than"):
        compress_(model, HiddenUnitPruneConfig(keep=[9, 5]))


def test_keep_equal_to_a_layers_width_leaves_that_layer_whole():
    """keep[k] == H_k is valid (a fixed-width layer must list all its units): layer 0 keeps
    its 7 units, layer 1 drops its 4 lowest. Catches `>=` for `>` in the keep check."""
    model, tokens = _build("gru-stacked-bidirectional")
    x = _inputs(model, tokens)
    scores = _numpy_scores(model, "l2")
    original = copy.deepcopy(model)
    compress_(model, HiddenUnitPruneConfig(keep=[7, 3]))
    assert model.rnn.hidden_sizes == [7, 3]
    removed = [[torch.tensor([], dtype=torch.int64)] * 2,
               [torch.as_tensor(np.sort(np.argsort(-s, kind="stable")[3:])) for s in scores[1]]]
    _zero_outgoing(original, removed)
    torch.testing.assert_close(_out(model, x), _out(original, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_pruning_keeps_the_models_train_or_eval_mode(training):
    """The rebuilt layer and head keep the mode of the modules they replace: an eval model
    with inter-layer dropout stays deterministic and equal to the oracle. Catches the new
    modules left in their default (training) mode."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=8, num_layers=2, dropout=0.5, n_classes=3)
    model.train(training)
    scores = _numpy_scores(model, "l2")
    original = copy.deepcopy(model)
    compress_(model, HiddenUnitPruneConfig(keep=4))
    assert model.rnn.hidden_sizes == [4, 4]
    assert (model.rnn.training, model.head.training) == (training, training)
    if not training:
        x = _inputs(model, False)
        removed = [[torch.as_tensor(np.sort(np.argsort(-s, kind="stable")[4:])) for s in per] for per in scores]
        _zero_outgoing(original, removed)
        torch.testing.assert_close(_out(model, x), _out(original.eval(), x), rtol=1e-5, atol=1e-6)


def test_fraction_keeps_more_units_than_the_projection():
    """A projected LSTM (H = 8, P = 3) needs more units than P: fraction 0.75 would keep
    8 - 6 = 2, so each layer keeps P + 1 = 4, and the outputs equal the original's with
    the removed (lowest-L2) units' outgoing weights cut. Catches the P + 1 floor dropped."""
    model, tokens = _build("lstm-projected-stacked")
    x = _inputs(model, tokens)
    scores = _numpy_scores(model, "l2")
    original = copy.deepcopy(model)
    compress_(model, HiddenUnitPruneConfig(fraction=0.75))
    assert model.rnn.hidden_sizes == [4, 4]
    removed = [[torch.as_tensor(np.sort(np.argsort(-s, kind="stable")[4:])) for s in per] for per in scores]
    _zero_outgoing(original, removed)
    torch.testing.assert_close(_out(model, x), _out(original, x), rtol=1e-5, atol=1e-6)


def test_tied_language_model_with_a_projection_prunes_its_last_layer():
    """A tied LM whose last layer projects to the embedding width (P = E) may drop that
    layer's units: its output width is P, which pruning keeps. The result equals the
    original with the removed units' weight_hr columns cut. Catches treating a tied LM's
    last layer as fixed whether or not it projects."""
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=15, embed_dim=4, hidden_size=8, tie_weights=True,
                          rnn_options={"proj_size": 4}).eval()
    x = _inputs(model, tokens=True)
    scores = _numpy_scores(model, "l2")[0][0]
    removed = torch.as_tensor(np.sort(np.argsort(-scores, kind="stable")[5:]))
    oracle = copy.deepcopy(model)
    _zero_outgoing(oracle, [[removed]])
    compress_(model, HiddenUnitPruneConfig(keep=5))
    assert model.rnn.hidden_sizes == [5] and model.head.weight is model.embedding.weight
    torch.testing.assert_close(_out(model, x), _out(oracle, x), rtol=1e-5, atol=1e-6)


def test_the_kept_units_stay_in_their_original_order():
    """Unit j's rows in every gate block scaled by f_j = (5, 1, 6, 2, 4, 3) over equal
    weights rank the units 2, 0, 4, 5, 3, 1; keeping 3 must keep units 0, 2 and 4 in that
    order (the documented sorted indices), sliced here with plain indexing from the
    original weights. Catches the kept units left in score order (2, 0, 4): the same
    outputs, but unit k of the pruned model would no longer be the k-th kept unit."""
    model = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2).eval()
    factor = torch.tensor([5.0, 1.0, 6.0, 2.0, 4.0, 3.0]).repeat(4)  # rows: 4 gate blocks of 6 units
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.fill_(0.1)
            if name.startswith("rnn."):
                param.mul_(factor.view(-1, *[1] * (param.dim() - 1)))
    original = {k: v.clone() for k, v in model.state_dict().items()}
    compress_(model, HiddenUnitPruneConfig(keep=[3]))
    units = [0, 2, 4]
    rows = [gate * 6 + j for gate in range(4) for j in units]
    torch.testing.assert_close(model.rnn.weight_ih_l0, original["rnn.weight_ih_l0"][rows], rtol=0, atol=0)
    torch.testing.assert_close(model.rnn.weight_hh_l0, original["rnn.weight_hh_l0"][rows][:, units], rtol=0, atol=0)
    torch.testing.assert_close(model.rnn.bias_hh_l0, original["rnn.bias_hh_l0"][rows], rtol=0, atol=0)
    torch.testing.assert_close(model.head.weight, original["head.weight"][:, units], rtol=0, atol=0)
