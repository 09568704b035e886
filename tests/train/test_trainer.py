"""The training loop: learning, determinism, resume, early stopping, hooks, each task."""

import pytest
import torch

from lstmlite.nn import Forecaster, LanguageModel, SequenceClassifier
from lstmlite.train import TrainConfig, evaluate, train


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


def test_resume_after_interruption_equals_uninterrupted(toy_classify, tmp_path):
    class Interrupt:
        def on_epoch_end(self, epoch, metrics):
            if epoch == 3:
                raise KeyboardInterrupt

    config = TrainConfig(epochs=5, lr=1e-2, seed=1)
    reference = _classifier()
    train(reference, toy_classify, config, progress=False)
    interrupted = _classifier()
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, toy_classify, config, out_dir=tmp_path, callbacks=[Interrupt()], progress=False)
    assert (tmp_path / "checkpoints" / "last.json").exists()
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))
    resumed = _classifier()
    result = train(resumed, toy_classify, config, out_dir=tmp_path, resume=True, progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]
    for x, y in zip(resumed.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(x, y)


def test_early_stopping_and_callbacks(toy_classify):
    calls = {"step": 0, "epoch": 0}

    class Count:
        def on_step(self, step):
            calls["step"] += 1

        def on_epoch_end(self, epoch, metrics):
            calls["epoch"] += 1
            assert "accuracy" in metrics

    # lr so small nothing improves after epoch 1 → stops after 1 + patience epochs
    result = train(_classifier(), toy_classify, TrainConfig(epochs=50, lr=1e-9, patience=2, schedule="none"),
                   callbacks=[Count()], progress=False)
    assert result.stopped_early and len(result.history) <= 4
    assert calls["epoch"] == len(result.history)
    assert calls["step"] == len(result.history) * 8  # 256 rows / batch 32


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


def test_epochs_before_a_callback_completes_are_not_selected(toy_classify):
    class Schedule:  # like a pruning schedule that reaches its target at epoch 3
        complete = False

        def on_epoch_end(self, epoch, metrics):
            self.complete = epoch >= 2  # read by the trainer after epoch 3's validation

    result = train(_classifier(), toy_classify, TrainConfig(epochs=5, lr=1e-2), callbacks=[Schedule()],
                   progress=False)
    assert result.best_epoch >= 3
