"""Magnitude, block and gradual pruning against NumPy / nn.LSTM oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lstmlite.compress import (
    GradualPruneConfig, Mask, MagnitudePruneConfig, PruningScheduler, compress_, compression_state, finalize,
    restore_compression, summary,
)
from lstmlite.compress.prune.transform import block_mask
from lstmlite.nn import LanguageModel, SequenceClassifier


def _model(**kw):
    torch.manual_seed(0)
    return SequenceClassifier(**{"input_size": 8, "hidden_size": 12, "n_classes": 3, **kw})


def _numpy_unstructured_keep(w: np.ndarray, sparsity: float) -> np.ndarray:
    flat = np.abs(w).ravel()
    n_prune = int(round(sparsity * flat.size))
    keep = np.ones(flat.size, bool)
    keep[np.argsort(flat, kind="stable")[:n_prune]] = False
    return keep.reshape(w.shape)


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.75, 0.95])
def test_layer_scope_keeps_the_largest_magnitudes(sparsity):
    model = _model()
    originals = {n: getattr(model.rnn, n).detach().numpy().copy() for n in ("weight_ih_l0", "weight_hh_l0")}
    head = model.head.weight.detach().numpy().copy()
    compress_(model, MagnitudePruneConfig(sparsity=sparsity))
    for name, w in originals.items():
        keep = _numpy_unstructured_keep(w, sparsity)
        np.testing.assert_array_equal(getattr(model.rnn, name).detach().numpy(), w * keep)
    np.testing.assert_array_equal(model.head.weight.detach().numpy(), head * _numpy_unstructured_keep(head, sparsity))
    assert not any(p for p in summary(model) if "bias" in p["name"] and p["transforms"])  # biases untouched


def test_global_scope_uses_one_threshold():
    model = _model()
    tensors = {"rnn.weight_ih_l0": model.rnn.weight_ih_l0, "rnn.weight_hh_l0": model.rnn.weight_hh_l0,
               "head.weight": model.head.weight}
    values = {k: v.detach().numpy().copy() for k, v in tensors.items()}
    everything = np.concatenate([np.abs(v).ravel() for v in values.values()])
    threshold = np.sort(everything)[int(round(0.6 * everything.size)) - 1]
    compress_(model, MagnitudePruneConfig(sparsity=0.6, scope="global"))
    for fqn, w in values.items():
        module, name = fqn.rsplit(".", 1)
        got = getattr(model.get_submodule(module), name).detach().numpy()
        np.testing.assert_array_equal(got, np.where(np.abs(w) > threshold, w, 0.0))


@pytest.mark.parametrize("block", [(1, 4), (4, 1), (2, 3)])
def test_block_sparsity_prunes_whole_blocks_by_mean_magnitude(block):
    model = _model()
    w = model.rnn.weight_hh_l0.detach().numpy().copy()  # (48, 12)
    compress_(model, MagnitudePruneConfig(sparsity=0.5, block=block))
    got = model.rnn.weight_hh_l0.detach().numpy()
    br, bc = block
    scores, kept = [], []
    for i in range(0, w.shape[0], br):
        for j in range(0, w.shape[1], bc):
            scores.append(np.abs(w[i:i + br, j:j + bc]).mean())
            part = got[i:i + br, j:j + bc]
            assert np.all(part == 0) or np.array_equal(part, w[i:i + br, j:j + bc])  # all or nothing
            kept.append(bool(np.any(part != 0)))
    scores, kept = np.array(scores), np.array(kept)
    assert kept.sum() == len(kept) - round(0.5 * len(kept))
    assert scores[kept].min() >= scores[~kept].max()


def test_partial_edge_blocks_are_scored_by_the_mean_of_the_values_they_hold():
    # 1x4 blocks of a 6-column row: columns 0-3 (mean 0.3, sum 1.2) and the edge block 4-5 (mean 0.5, sum 1.0)
    w = torch.tensor([[0.3, -0.3, 0.3, -0.3, 0.5, -0.5]])
    assert block_mask(w, 0.5, (1, 4)).tolist() == [[False] * 4 + [True] * 2]
    assert block_mask(w.T, 0.5, (4, 1)).tolist() == [[False]] * 4 + [[True]] * 2


def test_masked_layer_computes_like_nn_lstm_with_the_pruned_weights_after_training():
    """pytorch#33618: pruning nn.LSTM's flat weights silently stops the masked weights
    being used or updated. Ours: train, then check the outputs against a stock nn.LSTM
    holding the effective (masked) weights, surviving weights moved, pruned are zero."""
    model = _model(num_layers=2)
    compress_(model, MagnitudePruneConfig(sparsity=0.7))
    masks = {name: model.rnn.parametrizations[name][0].mask.clone() for name in model.rnn.parametrizations}
    start = {name: getattr(model.rnn, name).detach().clone() for name in masks}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    x, y = torch.randn(6, 5, 8), torch.randint(0, 3, (6,))
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    reference = nn.LSTM(8, 12, num_layers=2, batch_first=True)
    with torch.no_grad():
        for name, param in reference.named_parameters():
            param.copy_(getattr(model.rnn, name))
    for name, mask in masks.items():
        now = getattr(model.rnn, name).detach()
        assert torch.all(now[~mask] == 0)
        assert (now[mask] != start[name][mask]).float().mean() > 0.9  # Adam moves every survivor
    torch.testing.assert_close(model.rnn(x)[0], reference(x)[0], rtol=1e-5, atol=1e-6)


def test_pruning_twice_stacks_masks():
    model = _model()
    compress_(model, MagnitudePruneConfig(sparsity=0.5))
    compress_(model, MagnitudePruneConfig(sparsity=0.8))
    assert float((model.rnn.weight_hh_l0 == 0).float().mean()) == pytest.approx(0.8, abs=0.01)
    assert len(model.rnn.parametrizations.weight_hh_l0) == 2


def test_tied_language_model_prunes_embedding_and_head_with_one_mask():
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=40, embed_dim=8, hidden_size=8, tie_weights=True)
    compress_(model, MagnitudePruneConfig(sparsity=0.5), filter=lambda fqn, m, n: fqn == "head" and n == "weight")
    assert model.embedding.parametrizations.weight[0] is model.head.parametrizations.weight[0]
    assert torch.equal(model.embedding.weight, model.head.weight)
    state = compression_state(model)
    assert [e["module"] for e in state] == ["embedding", "head"] and state[1]["shared_with"] == 0
    fresh = restore_compression(LanguageModel(vocab_size=40, embed_dim=8, hidden_size=8, tie_weights=True), state)
    assert fresh.embedding.parametrizations.weight[0] is fresh.head.parametrizations.weight[0]
    finalize(model)
    assert model.head.weight is model.embedding.weight
    assert float((model.head.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)


# ----- gradual ------------------------------------------------------------------------------
def _zhu_gupta(t, s_i, s_f, t0, n, dt):
    """The paper's formula, written out independently."""
    if t < t0:
        return 0.0
    t = min(t, t0 + n * dt)
    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3


def test_schedule_formula():
    config = GradualPruneConfig(0.1, 0.85, start_step=20, end_step=120, frequency=10)
    for t in range(0, 200, 7):
        assert config.sparsity_at(t) == pytest.approx(_zhu_gupta(t, 0.1, 0.85, 20, 10, 10), abs=1e-12)
    assert [t for t in range(200) if config.due(t)] == list(range(20, 121, 10))


def test_scheduler_prunes_on_schedule_and_never_regrows():
    model = _model()
    config = GradualPruneConfig(0.2, 0.8, start_step=4, end_step=16, frequency=4)
    compress_(model, config)
    mask = model.rnn.parametrizations.weight_hh_l0[0]
    assert isinstance(mask, Mask) and bool(mask.mask.all())  # start_step > 0: nothing pruned yet
    scheduler = PruningScheduler(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(4, 5, 8)
    previous = mask.mask.clone()
    for step in range(1, 21):
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
        scheduler.on_step(step)
        expected = int(round(config.sparsity_at(step) * mask.mask.numel())) if config.due(step) else None
        if expected is not None:
            assert int((~mask.mask).sum()) == expected
        else:
            assert torch.equal(mask.mask, previous)  # between updates the mask is fixed
        assert not torch.any(mask.mask & ~previous)  # a pruned weight never comes back
        previous = mask.mask.clone()
    assert scheduler.current_sparsity() == pytest.approx(0.8, abs=0.01)
    assert scheduler.complete
    scheduler.step_count = 15
    assert not scheduler.complete


def test_global_gradual_pruning_counts_a_tied_mask_once():
    """A tied language model's embedding and head share one mask, which two modules read.
    Ranked globally, its weights must count once: the distinct masks together reach the
    schedule's sparsity exactly (counted here over the masks by identity), and
    current_sparsity reports that. Counted twice, the tied weights would be cut too
    often (0.715 instead of 0.6 in a planted version) while current_sparsity, counting
    twice as well, still said 0.6."""
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=50, embed_dim=16, hidden_size=16, tie_weights=True)
    compress_(model, GradualPruneConfig(0.0, 0.6, start_step=0, end_step=4, frequency=1, scope="global"))
    scheduler = PruningScheduler(model)
    for step in range(1, 5):
        scheduler.on_step(step)
    masks = {}
    for module in model.modules():
        if isinstance(module, nn.utils.parametrize.ParametrizationList):
            masks.update({id(p): p for p in module if isinstance(p, Mask)})
    assert model.embedding.parametrizations.weight[0] is model.head.parametrizations.weight[0]
    total = sum(m.mask.numel() for m in masks.values())
    zeros = sum(int((~m.mask).sum()) for m in masks.values())
    assert zeros == round(0.6 * total)
    assert scheduler.current_sparsity() == pytest.approx(zeros / total, abs=1e-9)


def test_scheduler_works_with_the_trainer_and_reloaded_models():
    from types import SimpleNamespace

    from lstmlite.data.containers import Split, TaskData
    from lstmlite.train import TrainConfig, train

    rng = np.random.default_rng(0)

    def split(n):
        x = rng.normal(size=(n, 6, 8)).astype(np.float32)
        return Split(x, (x[:, :, 0].sum(1) > 0).astype(np.int64), np.full(n, 6, np.int64))

    data = TaskData(train=split(64), val=split(16), test=split(16), name="toy", task="classify", input_size=8,
                    n_classes=3, class_names=["a", "b", "c"], vocab=None,
                    spec=SimpleNamespace(level="word", to_dict=lambda: {}), stats={})
    model = _model()
    compress_(model, GradualPruneConfig(0.0, 0.6, start_step=1, end_step=8, frequency=1))
    scheduler = PruningScheduler(model)
    # 64 rows / batch 8 = 8 steps per epoch: the schedule ends inside the first epoch.
    train(model, data, TrainConfig(epochs=2, batch_size=8, lr=1e-2, device="cpu"), callbacks=[scheduler],
          progress=False)
    assert scheduler.step_count == 16
    assert float((model.rnn.weight_ih_l0 == 0).float().mean()) == pytest.approx(0.6, abs=0.01)
    fresh = restore_compression(_model(), compression_state(model))
    fresh.load_state_dict(model.state_dict())
    assert PruningScheduler(fresh).current_sparsity() == pytest.approx(0.6, abs=0.01)


def test_end_step_off_the_frequency_grid_is_due_and_reaches_the_final_sparsity():
    config = GradualPruneConfig(0.0, 0.8, start_step=0, end_step=10, frequency=6)
    assert [t for t in range(20) if config.due(t)] == [0, 6, 10]
    model = _model()
    compress_(model, config)
    scheduler = PruningScheduler(model)
    for step in range(1, 11):
        scheduler.step(step)
    mask = model.rnn.parametrizations.weight_hh_l0[0].mask
    assert int((~mask).sum()) == round(_zhu_gupta(10, 0.0, 0.8, 0, 10, 1) * mask.numel())  # s_f = 0.8
    assert scheduler.complete


def test_scheduler_ranks_the_masked_weights_so_pruned_ones_never_return():
    model = _model()
    only_hh = lambda fqn, module, name: fqn == "rnn" and name == "weight_hh_l0"  # noqa: E731
    compress_(model, GradualPruneConfig(0.5, 0.75, start_step=0, end_step=4, frequency=4), filter=only_hh)
    mask = model.rnn.parametrizations.weight_hh_l0[0]
    first = mask.mask.clone()
    with torch.no_grad():  # the survivors shrink below every pruned weight (as training may do)
        model.rnn.parametrizations.weight_hh_l0.original[first] *= 1e-3
    effective = model.rnn.weight_hh_l0.detach().numpy().copy()
    PruningScheduler(model).step(4)
    np.testing.assert_array_equal(mask.mask.numpy(), _numpy_unstructured_keep(effective, 0.75))
    assert not torch.any(mask.mask & ~first)


def test_each_gradual_call_keeps_its_own_schedule():
    """Two compress_ calls are two groups: the scheduler must prune each on its own config.
    Catches every call getting the same group id (the head then follows the recurrent
    layer's schedule and stops at its final sparsity)."""
    model = _model()
    compress_(model, GradualPruneConfig(0.0, 0.5, start_step=0, end_step=4, frequency=1),
              filter=lambda fqn, module, name: fqn == "rnn")
    compress_(model, GradualPruneConfig(0.0, 0.9, start_step=0, end_step=8, frequency=2),
              filter=lambda fqn, module, name: fqn == "head" and name == "weight")
    rnn_mask = model.rnn.parametrizations.weight_hh_l0[0].mask   # 48 x 12 = 576
    head_mask = model.head.parametrizations.weight[0].mask       # 3 x 12 = 36
    scheduler = PruningScheduler(model)
    for step in range(1, 5):
        scheduler.step(step)
    # step 4: the rnn is at its s_f = 0.5; the head at s_4 = 0.9 - 0.9 (1 - 4/8)^3 = 0.7875 -> round(28.35) = 28
    assert int((~rnn_mask).sum()) == round(_zhu_gupta(4, 0.0, 0.5, 0, 4, 1) * 576) == 288
    assert int((~head_mask).sum()) == round(_zhu_gupta(4, 0.0, 0.9, 0, 4, 2) * 36) == 28
    for step in range(5, 9):
        scheduler.step(step)
    assert int((~rnn_mask).sum()) == 288  # past its end_step: unchanged
    assert int((~head_mask).sum()) == round(0.9 * 36) == 32
    assert scheduler.complete


def test_scheduler_resumes_from_its_start_step():
    """PruningScheduler(model, start=5): the next step() is step 6, due for frequency 6, where
    s_6 = 0.8 - 0.8 (1 - 6/12)^3 = 0.7 of the 576 weights: round(403.2) = 403 pruned.
    Catches the start count ignored (step 1 is not due: nothing pruned)."""
    model = _model()
    compress_(model, GradualPruneConfig(0.0, 0.8, start_step=0, end_step=12, frequency=6))
    scheduler = PruningScheduler(model, start=5)
    scheduler.step()
    assert scheduler.step_count == 6
    mask = model.rnn.parametrizations.weight_hh_l0[0].mask
    assert int((~mask).sum()) == round(_zhu_gupta(6, 0.0, 0.8, 0, 2, 6) * 576) == 403


def test_one_dimensional_tensors_prune_as_one_row():
    """A 1-D tensor is one row, so block (1, 4) prunes 4 consecutive entries together: a
    bias of 48 in 12 blocks, the 6 with the smallest mean |b| zeroed (NumPy by hand).
    Catches 1-D tensors viewed as a column (the blocks then single entries)."""
    model = _model()
    b = model.rnn.bias_ih_l0.detach().numpy().copy()
    compress_(model, MagnitudePruneConfig(sparsity=0.5, block=(1, 4)),
              filter=lambda fqn, module, name: name == "bias_ih_l0")
    scores = np.abs(b).reshape(12, 4).mean(1)
    keep = np.ones(12, bool)
    keep[np.argsort(scores, kind="stable")[:6]] = False
    np.testing.assert_array_equal(model.rnn.bias_ih_l0.detach().numpy(), b * np.repeat(keep, 4))


def test_masks_change_only_on_the_grid_counted_from_start_step():
    """start_step 2, frequency 4, end_step 10: the masks are recomputed at steps 2, 6 and 10
    only (s_2 = 0, s_6 = 0.7 -> 403 of 576, s_10 = 0.8 -> 461), not at steps 4 and 8, which
    are multiples of the frequency off that grid. Catches updates counted from step 0."""
    model = _model()
    compress_(model, GradualPruneConfig(0.0, 0.8, start_step=2, end_step=10, frequency=4))
    mask = model.rnn.parametrizations.weight_hh_l0[0].mask
    scheduler = PruningScheduler(model)
    counts = []
    for step in range(1, 11):
        scheduler.step(step)
        counts.append(int((~mask).sum()))
    s6, s10 = (round(_zhu_gupta(t, 0.0, 0.8, 2, 2, 4) * 576) for t in (6, 10))
    assert (s6, s10) == (403, 461)
    assert counts == [0, 0, 0, 0, 0, s6, s6, s6, s6, s10]


def test_pruning_a_low_rank_product_warns_that_the_file_keeps_it_dense(tmp_path, caplog):
    """A mask over low-rank factors makes the product a dense matrix again: the .lsl file then
    stores the masked product in float (bigger than the factors, here than the low-rank
    model's own file), which a recipe ordered low-rank → prune did without a word. The
    warning names the matrices; pruning a plain model gives none."""
    import logging

    from lstmlite.compress import LowRankConfig, MagnitudePruneConfig, compress_
    from lstmlite.export.size import lsl_image
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=16, hidden_size=24, n_classes=3).eval()
    compress_(model, LowRankConfig(rank=4))
    factors_bytes = len(lsl_image(model))
    with caplog.at_level(logging.WARNING, logger="lstmlite"):
        compress_(model, MagnitudePruneConfig(sparsity=0.5))
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and "rnn.weight_hh_l0, rnn.weight_ih_l0 are low-rank" in said[0], said
    assert len(lsl_image(model)) > factors_bytes  # what the warning says: the file grew
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lstmlite"):
        compress_(SequenceClassifier(input_size=16, hidden_size=24, n_classes=3), MagnitudePruneConfig(sparsity=0.5))
    assert not caplog.records
