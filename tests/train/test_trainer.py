"""The training loop: learning, determinism, resume, early stopping, hooks, each task."""

import copy
import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from lstmlite.data.containers import Split, TaskData
from lstmlite.nn import Forecaster, LanguageModel, SequenceClassifier, SequenceTagger
from lstmlite.train import TrainConfig, evaluate, train
from lstmlite.train.trainer import predict


def _classifier():
    torch.manual_seed(0)
    return SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)


def test_learns_and_keeps_best_validation_weights(toy_classify):
    model = _classifier()
    before = evaluate(model, toy_classify, toy_classify.val)["accuracy"]
    result = train(model, toy_classify, TrainConfig(epochs=8, lr=1e-2), progress=False)
    after = evaluate(model, toy_classify, toy_classify.val)["accuracy"]
    assert after > max(before, 0.75)
    assert after == pytest.approx(result.best_val)
    assert result.best_val == max(h["val_accuracy"] for h in result.history)
    assert {"train_loss", "lr", "val_accuracy", "val_macro_f1", "val_loss"} <= set(result.history[0])


def test_cpu_training_is_deterministic(toy_classify):
    a, b = _classifier(), _classifier()
    train(a, toy_classify, TrainConfig(epochs=2, seed=3), progress=False)
    train(b, toy_classify, TrainConfig(epochs=2, seed=3), progress=False)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("lr, patience, stop_at", [(1e-2, 10, 3), (1e-30, 3, 3)])
def test_resume_after_interruption_equals_uninterrupted(toy_classify, tmp_path, lr: float, patience: int,
                                                         stop_at: int) -> None:
    """A run interrupted in epoch ``stop_at`` and resumed (from the epoch before's
    checkpoint) ends with the uninterrupted run's weights, history, best epoch and early
    stop. lr 1e-30 freezes the model, so the resumed epochs tie the best epoch exactly:
    its early stop needs the stale count and the best epoch's val loss (the tie-break)
    restored, not restarted."""
    class Interrupt:
        def on_epoch_end(self, epoch, metrics):
            if epoch == stop_at:
                raise KeyboardInterrupt

    config = TrainConfig(epochs=5, lr=lr, seed=1, patience=patience)
    reference = _classifier()
    expected = train(reference, toy_classify, config, progress=False)
    interrupted = _classifier()
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, toy_classify, config, out_dir=tmp_path, callbacks=[Interrupt()], progress=False)
    assert (tmp_path / "checkpoints" / "last.json").exists()
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))
    resumed = _classifier()
    result = train(resumed, toy_classify, config, out_dir=tmp_path, resume=True, progress=False)
    assert [h["epoch"] for h in result.history] == [h["epoch"] for h in expected.history]
    assert result.history == expected.history
    assert (result.best_epoch, result.stopped_early) == (expected.best_epoch, expected.stopped_early)
    for x, y in zip(resumed.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(x, y)
    if lr == 1e-30:
        assert expected.stopped_early and len(expected.history) == 1 + patience  # the premise


def test_early_stopping_and_callbacks(toy_classify):
    calls = {"step": 0, "epoch": 0}
    steps = []

    class Count:
        def on_step(self, step):
            calls["step"] += 1
            steps.append(step)

        def on_epoch_end(self, epoch, metrics):
            calls["epoch"] += 1
            assert "accuracy" in metrics

    # lr so small nothing improves after epoch 1 → stops after 1 + patience epochs
    result = train(_classifier(), toy_classify, TrainConfig(epochs=50, lr=1e-9, patience=2, schedule="none"),
                   callbacks=[Count()], progress=False)
    assert result.stopped_early and len(result.history) <= 4
    assert calls["epoch"] == len(result.history)
    assert calls["step"] == len(result.history) * 8  # 256 rows / batch 32
    assert steps == list(range(1, calls["step"] + 1))  # the optimizer steps taken so far, from 1


def test_extra_loss_is_added(toy_classify):
    seen = []

    def penalty(model, batch, output):
        seen.append(output.shape)
        return 100.0 * sum(p.square().sum() for p in model.head.parameters())

    config = TrainConfig(epochs=2, lr=1e-2, weight_decay=0)
    plain, penalised = _classifier(), _classifier()
    train(plain, toy_classify, config, progress=False)
    train(penalised, toy_classify, config, extra_loss=penalty, progress=False)
    assert seen and seen[0][1] == 2
    # the penalty pulls the head towards 0: its norm ends well below the unpenalised run's
    assert penalised.head.weight.norm() < 0.7 * plain.head.weight.norm()


def test_language_model_task(toy_lm):
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=10, embed_dim=8, hidden_size=16)
    result = train(model, toy_lm, TrainConfig(epochs=15, lr=2e-2, batch_size=16), progress=False)
    metrics = evaluate(model, toy_lm, toy_lm.test)
    assert result.metric_name == "bits_per_char"
    assert metrics["bits_per_char"] < 0.5  # periodic text is nearly deterministic (log2(8) = 3 at chance)
    assert metrics["perplexity"] == pytest.approx(2 ** metrics["bits_per_char"], rel=1e-6)


def test_language_model_metrics_are_per_token_over_the_whole_split(toy_lm):
    """An untrained model evaluated in uneven batches (5, 5, 5, 1 rows): the loss is the
    mean cross-entropy over every token of the split, perplexity its exp, bits its log2.
    Catches: per-batch means averaged (the 1-row batch weighed as much as a 5-row one)."""
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=10, embed_dim=8, hidden_size=16).eval()
    metrics = evaluate(model, toy_lm, toy_lm.test, batch_size=5)
    with torch.no_grad():
        logits = model(torch.as_tensor(toy_lm.test.x))[0]
    nll = float(torch.nn.functional.cross_entropy(logits.reshape(-1, 10), torch.as_tensor(toy_lm.test.y).reshape(-1)))
    assert metrics["loss"] == pytest.approx(nll, rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(nll), rel=1e-5)
    assert metrics["bits_per_char"] == pytest.approx(nll / math.log(2.0), rel=1e-5)


def test_forecast_task_reports_original_units_and_naive_baseline(toy_forecast):
    torch.manual_seed(0)
    model = Forecaster(input_size=1, hidden_size=16, horizon=4)
    train(model, toy_forecast, TrainConfig(epochs=20, lr=1e-2), progress=False)
    metrics = evaluate(model, toy_forecast, toy_forecast.test)
    # the toy series is exactly periodic, so seasonal naive is perfect (0): compare scales instead
    assert metrics["naive_mae"] == pytest.approx(0.0, abs=1e-4)
    assert metrics["mae"] < 0.3 * 2.0  # de-normalised by target_std = 2


def test_bad_train_config():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match="unknown train option"):
        TrainConfig.from_dict({"epochz": 3})
    # each out-of-range value names its own option ("batch sizes must be at least 1" and
    # "patience, clip_grad_norm and weight_decay must be non-negative" named none or three)
    for key, value, message in [("batch_size", 0, "batch_size must be at least 1, got 0"),
                                ("eval_batch_size", 0, "eval_batch_size must be at least 1, got 0"),
                                ("patience", -1, "patience must be non-negative, got -1"),
                                ("clip_grad_norm", -0.5, "clip_grad_norm must be non-negative, got -0.5"),
                                ("weight_decay", -1e-4, "weight_decay must be non-negative, got -0.0001")]:
        with pytest.raises(ValueError) as err:
            TrainConfig(**{key: value})
        assert str(err.value) == message
    # accepted here, then refused by NumPy when training started, in words naming no option
    for seed in (-1, 2**32):
        with pytest.raises(ValueError, match=r"^seed must be in \[0, 2\*\*32 - 1\], got"):
            TrainConfig(seed=seed)


def test_epochs_before_a_callback_completes_are_not_selected(toy_classify):
    class Schedule:  # like a pruning schedule that reaches its target at epoch 3
        complete = False

        def on_epoch_end(self, epoch, metrics):
            self.complete = epoch >= 2  # read by the trainer after epoch 3's validation

    result = train(_classifier(), toy_classify, TrainConfig(epochs=5, lr=1e-2), callbacks=[Schedule()],
                   progress=False)
    assert result.best_epoch >= 3


# ----- exact checks against independent oracles (torch's own optimizer, schedulers, losses) -----
def _frozen_config(**kw: Any) -> TrainConfig:
    """lr 1e-30: Adam moves each weight by about 1e-30, far below float32's resolution at
    the weights' scale, so the model is bit for bit the same every epoch (the validation
    metrics repeat exactly and nothing ever improves after epoch 1)."""
    return TrainConfig(lr=1e-30, schedule="none", **kw)


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_early_stopping_stops_exactly_patience_epochs_after_the_best(toy_classify: Any, patience: int) -> None:
    """With validation frozen after epoch 1, training stops at epoch 1 + patience, not later.

    Catches: ``stale > patience`` (one epoch too many), a tie with an equal loss counted
    as an improvement."""
    before = copy.deepcopy(_classifier().state_dict())
    result = train(_classifier(), toy_classify, _frozen_config(epochs=20, patience=patience), progress=False)
    assert result.stopped_early
    assert [h["epoch"] for h in result.history] == list(range(1, patience + 2))
    assert result.best_epoch == 1
    assert len({h["val_loss"] for h in result.history}) == 1  # the premise: the model did not move
    assert all(torch.equal(before[k], v) for k, v in _classifier().state_dict().items())


def _selection_oracle(history: list[dict[str, Any]], patience: int) -> tuple[int, int, bool, bool]:
    """(best epoch, last epoch run, whether it stopped early, whether an improvement
    followed a non-improving epoch) as the trainer's documented rule says: an epoch is
    better with a higher val accuracy, or an equal one and a lower val loss; stop once
    ``patience`` epochs in a row were not better."""
    best, best_key, stale, recovered = 0, None, 0, False
    for h in history:
        key = (h["val_accuracy"], -h["val_loss"])
        if best_key is None or key > best_key:
            recovered = recovered or stale > 0
            best, best_key, stale = h["epoch"], key, 0
        else:
            stale += 1
            if stale >= patience:
                return best, h["epoch"], True, recovered
    return best, history[-1]["epoch"], False, recovered


@pytest.mark.parametrize("seed, premise", [(0, "recovery"), (2, "tie")])
def test_best_epoch_and_early_stop_follow_the_documented_rule(toy_classify: Any, seed: int, premise: str) -> None:
    """The best epoch is the highest val accuracy, ties broken by the lower val loss, and
    the run stops once ``patience`` epochs in a row were not better (the stale count
    restarts at every improvement); the model ends with that epoch's weights. Seed 0's
    run improves after a worse epoch; seed 2's best epoch ties an earlier one.

    Catches: ties going to the higher loss, the stale count not reset on improvement,
    the best weights aliased to the live ones instead of copied."""
    patience = 3
    model = _classifier()
    result = train(model, toy_classify, TrainConfig(epochs=25, lr=1e-2, patience=patience, seed=seed),
                   progress=False)
    best, last, stopped, recovered = _selection_oracle(result.history, patience)
    assert (result.best_epoch, result.history[-1]["epoch"], result.stopped_early) == (best, last, stopped)
    assert stopped and best != last  # the final weights are not the best ones
    record = result.history[best - 1]
    assert result.best_val == record["val_accuracy"]
    final = evaluate(model, toy_classify, toy_classify.val)
    assert final["accuracy"] == record["val_accuracy"]
    assert final["loss"] == pytest.approx(record["val_loss"], rel=1e-6)
    # the premise that makes the rule's branch matter in this run
    if premise == "recovery":
        assert recovered  # the stale count had to restart
    else:
        assert record["val_accuracy"] in [h["val_accuracy"] for h in result.history[:best - 1]]


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_learning_rate_follows_torchs_scheduler_per_epoch(toy_classify: Any, schedule: str) -> None:
    """The lr recorded for each epoch is the one torch's scheduler gives, stepped once per
    epoch (plateau: on the val accuracy, mode max).

    Catches: cosine over epochs - 1, plateau in mode min for a higher-is-better metric,
    the schedule stepped per batch."""
    config = TrainConfig(epochs=8, lr=3e-2, schedule=schedule, patience=0)
    result = train(_classifier(), toy_classify, config, progress=False)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    if schedule == "cosine":
        scheduler: Any = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=2)
    expected = []
    for h in result.history:
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: only keeps torch's step-order check quiet
        scheduler.step(h["val_accuracy"]) if schedule == "plateau" else scheduler.step()
    assert [h["lr"] for h in result.history] == pytest.approx(expected, rel=1e-12)
    if schedule == "cosine":  # the closed form, independently of torch
        assert expected == pytest.approx([config.lr * (1 + math.cos(math.pi * e / 8)) / 2 for e in range(8)])
    else:
        assert len(set(expected)) > 1  # the premise: the plateau rule acted in this run


class _Snapshots:
    """Records the weights after every optimizer step (an ``on_step`` callback)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.states = model, []

    def on_step(self, step: int) -> None:
        self.states.append({k: v.clone() for k, v in self.model.state_dict().items()})


@pytest.mark.parametrize("clip, weight_decay", [(0.0, 0.0), (0.05, 0.1)])
def test_each_step_is_adamw_on_the_clipped_gradient_of_the_mean_loss(toy_classify: Any, clip: float,
                                                                     weight_decay: float) -> None:
    """Batch = the whole split, so every epoch is one step on the same rows: the weights
    after each step equal torch's AdamW fed the gradient of the mean cross-entropy,
    clipped to ``clip`` by global norm (0: not clipped), with the configured weight decay
    (neither 0.0 nor 0.1 is AdamW's own default of 0.01).

    Catches: a summed loss, clipping skipped (or applied when disabled), gradients not
    zeroed between steps, ``weight_decay`` not passed to AdamW."""
    split = toy_classify.train
    config = TrainConfig(epochs=3, batch_size=len(split.y), lr=1e-2, weight_decay=weight_decay, clip_grad_norm=clip,
                         schedule="none", patience=0)
    model = _classifier()
    snapshots = _Snapshots(model)
    train(model, toy_classify, config, callbacks=[snapshots], progress=False)
    oracle = _classifier()
    optimizer = torch.optim.AdamW(oracle.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x, y, lengths = torch.as_tensor(split.x), torch.as_tensor(split.y), torch.as_tensor(split.lengths)
    assert len(snapshots.states) == config.epochs
    for state in snapshots.states:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(oracle(x, lengths), y).backward()
        if clip:
            norm = torch.sqrt(sum(p.grad.square().sum() for p in oracle.parameters()))
            assert norm > clip  # the premise: clipping changes this step
            for p in oracle.parameters():
                p.grad.mul_(clip / (norm + 1e-6))
        optimizer.step()
        for name, value in oracle.state_dict().items():
            torch.testing.assert_close(state[name], value, rtol=1e-4, atol=1e-6, msg=name)


def test_cpu_training_steps_one_fused_adamw(toy_classify: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """On CPU the trainer steps torch's fused AdamW (one kernel over all parameters): the
    same update as the per-tensor one (the test above checks the numbers against it), a
    seventh of its time on the reference text model's 1.15 M parameters.

    Catches: the per-tensor AdamW, 7.4 ms a step against 1.0 ms fused there, a fifth of a
    TREC epoch on one core."""
    made: list[torch.optim.Optimizer] = []

    class Recording(torch.optim.AdamW):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(torch.optim, "AdamW", Recording)
    train(_classifier(), toy_classify, TrainConfig(epochs=1, device="cpu"), progress=False)
    assert [optimizer.defaults["fused"] for optimizer in made] == [True]


@pytest.mark.parametrize("load, threads, warned", [
    (6.2, 2, True),    # three times the 2 cores, 2 torch threads: warned
    (4.0, 2, True),    # twice the cores: busy already
    (3.9, 2, False),   # under twice the 2 cores: not busy (2 threads still beat one just above 2)
    (6.2, 1, False),   # busy, but one thread has no one to wait for
])
def test_a_busy_cpu_is_named_once_with_the_way_out(toy_classify: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any,
                                                   load: float, threads: int, warned: bool) -> None:
    """Training on a CPU whose 1-minute load average is twice its cores or more, with more than one
    torch thread, logs one warning naming the load, the cores and OMP_NUM_THREADS=1 (on 2
    shared cores at load 7, TREC's default epoch took 8 times as long with torch's 2
    threads as with one); a second train() in the same process does not repeat it.

    Catches: the silent crawl (no warning at all), a warning on an idle machine or with one
    thread, and one warning per train() call (a search trains dozens of times)."""
    from lstmlite.train import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "_busy_warned", False)
    monkeypatch.setattr(trainer_module.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(trainer_module.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with caplog.at_level("WARNING", logger="lstmlite.train.trainer"):
            for _ in range(2):
                train(_classifier(), toy_classify, TrainConfig(epochs=1, device="cpu"), progress=False)
    finally:
        torch.set_num_threads(before)
    notes = [r.getMessage() for r in caplog.records if "busy" in r.getMessage()]
    if not warned:
        assert notes == []
        return
    assert len(notes) == 1, notes
    assert f"load average {load:.1f} on 2 cores" in notes[0] and f"torch runs {threads} threads" in notes[0]
    assert "OMP_NUM_THREADS=1" in notes[0]


def test_epochs_shuffle_every_row_once_and_report_the_mean_batch_loss(toy_classify: Any) -> None:
    """Each epoch's batches cover every training row exactly once, in a different order
    each epoch; with frozen weights the recorded train_loss is the mean cross-entropy of
    the split (4 equal batches: the mean of the batch means).

    Catches: train_loss summed over batches, the same order every epoch, no shuffle."""
    orders: list[list[int]] = []

    def record(model: torch.nn.Module, batch: Any, output: torch.Tensor) -> torch.Tensor:
        orders.append(batch.index.tolist())
        return output.sum() * 0.0

    split = toy_classify.train
    result = train(_classifier(), toy_classify, _frozen_config(epochs=3, batch_size=64, patience=0),
                   extra_loss=record, progress=False)
    epochs = [sum(orders[i:i + 4], []) for i in range(0, 12, 4)]
    assert all(sorted(rows) == list(range(len(split.y))) for rows in epochs)
    assert epochs[0] != list(range(len(split.y))) and epochs[0] != epochs[1] != epochs[2]
    with torch.no_grad():
        expected = float(torch.nn.functional.cross_entropy(
            _classifier()(torch.as_tensor(split.x), torch.as_tensor(split.lengths)), torch.as_tensor(split.y)))
    assert [h["train_loss"] for h in result.history] == pytest.approx([expected] * 3, rel=1e-5)


def test_classify_metrics_equal_sklearn_and_torch_on_the_models_logits(toy_classify: Any) -> None:
    """evaluate's accuracy, macro-F1 and loss are scikit-learn's and torch's mean
    cross-entropy over the model's own logits (small eval batches: 64 rows in 5).

    Catches: a summed loss, per-batch means averaged unweighted."""
    from sklearn.metrics import accuracy_score, f1_score

    model = _classifier().eval()
    split = toy_classify.val
    with torch.no_grad():
        logits = model(torch.as_tensor(split.x), torch.as_tensor(split.lengths))
    pred = logits.argmax(-1).numpy()
    metrics = evaluate(model, toy_classify, split, batch_size=15)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(split.y, pred))
    assert metrics["macro_f1"] == pytest.approx(f1_score(split.y, pred, average="macro"))
    expected_loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(split.y))
    assert metrics["loss"] == pytest.approx(float(expected_loss), rel=1e-5)


def test_forecast_metrics_are_in_original_units_against_the_naive_forecast(toy_forecast: Any) -> None:
    """mae, rmse, the naive forecast's and ``mae_vs_naive`` (model mae / naive mae),
    all after undoing the target normalisation, against NumPy on the model's outputs.
    The naive forecast is made imperfect here so the ratio is finite and not 1.

    Catches: the ratio inverted, the mean or std left out when de-normalising."""
    import numpy as np

    torch.manual_seed(0)
    model = Forecaster(input_size=1, hidden_size=4, horizon=4).eval()
    split = toy_forecast.test
    split.naive = split.y + np.random.default_rng(0).normal(0, 0.3, split.y.shape).astype(np.float32)
    with torch.no_grad():
        out = model(torch.as_tensor(split.x), torch.as_tensor(split.lengths)).double().numpy()
    mean, std = 10.0, 2.0
    truth, pred, naive = split.y * std + mean, out * std + mean, split.naive * std + mean
    metrics = evaluate(model, toy_forecast, split)
    mae, naive_mae = np.abs(truth - pred).mean(), np.abs(truth - naive).mean()
    assert metrics["mae"] == pytest.approx(mae, rel=1e-5)
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.square(truth - pred).mean()), rel=1e-5)
    assert metrics["naive_mae"] == pytest.approx(naive_mae, rel=1e-5)
    assert metrics["naive_rmse"] == pytest.approx(np.sqrt(np.square(truth - naive).mean()), rel=1e-5)
    assert metrics["mae_vs_naive"] == pytest.approx(mae / naive_mae, rel=1e-5)
    assert abs(mae / naive_mae - 1) > 0.1  # the premise: inverting the ratio changes it


def test_predict_pads_short_batches_at_the_end_and_runs_in_eval_mode():
    """Per-step outputs of a variable-length tag split in batches of 2 (the second batch is
    trimmed to 3 steps and padded back to 8): each row's valid steps equal torch.nn.LSTM +
    the head on that row alone, with the model's dropout off, and the model is left in
    training mode as it was. Catches: the padding put before the short batch's steps;
    predict running in training mode (dropout on)."""
    torch.manual_seed(0)
    model = SequenceTagger(input_size=3, hidden_size=5, num_layers=2, n_classes=4, dropout=0.5).train()
    ref = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True)
    ref.load_state_dict(model.rnn.state_dict())
    lengths = np.array([8, 6, 3, 2])
    x = np.random.default_rng(0).normal(size=(4, 8, 3)).astype(np.float32)
    y = np.where(np.arange(8)[None] < lengths[:, None], 1, -1)
    split = Split(x, y, lengths)
    data = TaskData(train=split, val=split, test=split, name="toy", task="tag", input_size=3, n_classes=4,
                    class_names=list("abcd"), vocab=None, spec=SimpleNamespace(level="word", to_dict=lambda: {}),
                    stats={})
    out = predict(model, data, split, batch_size=2, device=torch.device("cpu"))
    assert out.shape == (4, 8, 4) and model.training
    with torch.no_grad():
        for b, n in enumerate(lengths):
            expected = model.head(ref(torch.as_tensor(x[b:b + 1, :n]))[0])[0]
            torch.testing.assert_close(torch.as_tensor(out[b, :n]), expected, rtol=1e-5, atol=1e-6)


# ----- modes, seeds and losses against plain PyTorch (survivors of a mutation campaign) -----

def _dropout_classifier():
    torch.manual_seed(0)
    return SequenceClassifier(input_size=3, hidden_size=8, n_classes=2, num_layers=2, dropout=0.5)


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_model_trains_with_dropout_whatever_mode_it_came_in(toy_classify):
    """train() returns its model in eval mode and recipe steps train that model again: a
    model handed in eval mode must still train with dropout on, so it ends as the same
    model handed in train mode does. Catches model.train() dropped from each epoch."""
    a, b = _dropout_classifier(), _dropout_classifier()
    config = TrainConfig(epochs=2, lr=1e-2, seed=1)
    train(a.train(), toy_classify, config, progress=False)
    train(b.eval(), toy_classify, config, progress=False)
    assert _same_weights(a, b)


def test_the_seed_alone_decides_a_dropout_models_training(toy_classify):
    """seed=3 after two different global torch seeds gives the same weights (dropout draws
    from torch's RNG); and the model comes back in eval mode, two forward calls equal.
    Catches torch.manual_seed dropped from set_seed, and the final model.eval() dropped."""
    a, b = _dropout_classifier(), _dropout_classifier()
    config = TrainConfig(epochs=1, lr=1e-2, seed=3)
    torch.manual_seed(111)
    train(a, toy_classify, config, progress=False)
    torch.manual_seed(222)
    train(b, toy_classify, config, progress=False)
    assert _same_weights(a, b) and not a.training
    x, lengths = torch.as_tensor(toy_classify.val.x[:4]), torch.as_tensor(toy_classify.val.lengths[:4])
    with torch.no_grad():
        assert torch.equal(a(x, lengths), a(x, lengths))


def test_the_seed_seeds_numpy_too(toy_classify):
    """set_seed's docstring: it seeds NumPy as well; code in a loss hook drawing from
    np.random sees the numbers np.random.seed(3) gives, whatever the global state was."""
    seen = []

    def peek(model, batch, out):
        seen.append(np.random.random())
        return out.sum() * 0.0

    for before in (1, 2):
        np.random.seed(before)
        train(_classifier(), toy_classify, TrainConfig(epochs=1, seed=3), extra_loss=peek, progress=False)
    np.random.seed(3)
    first = np.random.random()
    assert seen[0] == first and seen[len(seen) // 2] == first


def test_evaluate_and_predict_leave_dropout_out_and_the_mode_as_it_was(toy_lm, toy_classify):
    """A language model with dropout in train mode: evaluate's loss is the eval-mode
    cross-entropy computed here with torch, twice the same (not dropout noise), and
    predict() on an eval model leaves it in eval mode. Catches evaluate without
    model.eval(), and predict restoring train mode whatever the mode was."""
    torch.manual_seed(0)
    lm = LanguageModel(vocab_size=10, embed_dim=8, hidden_size=16, num_layers=2, dropout=0.5).train()
    first, second = (evaluate(lm, toy_lm, toy_lm.test)["loss"] for _ in range(2))
    with torch.no_grad():
        logits = copy.deepcopy(lm).eval()(torch.as_tensor(toy_lm.test.x))[0]
        expected = float(torch.nn.functional.cross_entropy(logits.reshape(-1, 10),
                                                           torch.as_tensor(toy_lm.test.y).reshape(-1)))
    assert first == second == pytest.approx(expected, rel=1e-6)
    model = _classifier().eval()
    predict(model, toy_classify, toy_classify.val, device=torch.device("cpu"))
    assert not model.training


def test_the_ctc_loss_reads_each_utterances_own_frames():
    """CTC training with frozen weights (lr 1e-30): the first epoch's train_loss is the mean
    over utterances of torch's ctc_loss on that utterance's valid frames alone, / its
    label count. Catches the lengths left out of the trainer's call (the padding frames
    then count)."""
    rng = np.random.default_rng(0)
    n, steps, classes = 32, 12, 4
    x = rng.normal(size=(n, steps, 3)).astype(np.float32)
    lengths = rng.integers(5, steps + 1, n)
    lengths[0] = steps
    for i, length in enumerate(lengths):
        x[i, length:] = 0
    y = np.full((n, 3), -1)
    for i in range(n):
        k = rng.integers(1, 4)
        y[i, :k] = rng.integers(1, classes, k)
    split = Split(x, y.astype(np.int64), lengths.astype(np.int64))
    data = TaskData(train=split, val=split, test=split, name="toy", task="ctc", input_size=3, n_classes=classes,
                    class_names=["_", "a", "b", "c"], vocab=None,
                    spec=SimpleNamespace(level="word", to_dict=lambda: {}), stats={})
    torch.manual_seed(0)
    model = SequenceTagger(input_size=3, hidden_size=8, n_classes=classes)
    frozen = copy.deepcopy(model).eval()
    history = train(model, data, TrainConfig(epochs=1, lr=1e-30, batch_size=n, schedule="none", patience=0),
                    progress=False).history
    per_utterance = []
    with torch.no_grad():
        for i in range(n):
            log_probs = frozen(torch.as_tensor(x[i:i + 1, :lengths[i]]),
                               torch.tensor([lengths[i]])).log_softmax(-1).transpose(0, 1)
            target = torch.as_tensor(y[i][y[i] >= 0])[None]
            loss = torch.nn.functional.ctc_loss(log_probs, target, torch.tensor([lengths[i]]),
                                                torch.tensor([target.shape[1]]), reduction="sum", zero_infinity=True)
            per_utterance.append(float(loss) / target.shape[1])
    assert history[0]["train_loss"] == pytest.approx(np.mean(per_utterance), rel=1e-5)


def test_a_forecaster_trains_on_the_mean_squared_error(toy_forecast):
    """Frozen weights, one full batch: train_loss is the MSE of the normalised outputs,
    computed here with numpy (distillation's task loss is MSE too). Catches L1."""
    torch.manual_seed(0)
    model = Forecaster(input_size=1, hidden_size=4, horizon=4)
    frozen = copy.deepcopy(model).eval()
    history = train(model, toy_forecast, TrainConfig(epochs=1, lr=1e-30, batch_size=200, schedule="none",
                                                     patience=0), progress=False).history
    with torch.no_grad():
        out = frozen(torch.as_tensor(toy_forecast.train.x), torch.as_tensor(toy_forecast.train.lengths)).numpy()
    assert history[0]["train_loss"] == pytest.approx(float(np.mean((out - toy_forecast.train.y) ** 2)), rel=1e-5)


def test_gradients_are_clipped_after_the_loss_scale_is_taken_off(toy_classify, monkeypatch):
    """With a loss scaler on (as with amp on a GPU), clipping must act on the true
    gradients: one full-batch step with clip 0.05 equals plain AdamW after
    clip_grad_norm_(0.05) of the unscaled gradients. Run on the CPU with a scaler forced
    on (2^16). Catches scaler.unscale_ dropped (every step clipped 2^16 times too hard)."""
    from lstmlite.train import trainer as trainer_module

    real = torch.amp.GradScaler
    monkeypatch.setattr(trainer_module.torch.amp, "GradScaler",
                        lambda *a, **k: real("cpu", init_scale=2.0 ** 16, enabled=True))
    split = toy_classify.train
    model, oracle = _classifier(), _classifier()
    train(model, toy_classify, TrainConfig(epochs=1, batch_size=len(split.y), lr=1e-2, clip_grad_norm=0.05,
                                           schedule="none", patience=0, device="cpu"), progress=False)
    optimizer = torch.optim.AdamW(oracle.parameters(), lr=1e-2, weight_decay=0.0)
    loss = torch.nn.functional.cross_entropy(oracle(torch.as_tensor(split.x), torch.as_tensor(split.lengths)),
                                             torch.as_tensor(split.y))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(oracle.parameters(), 0.05)
    optimizer.step()
    for got, want in zip(model.state_dict().values(), oracle.state_dict().values()):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
