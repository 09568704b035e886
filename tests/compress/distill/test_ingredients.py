"""Each ingredient of a distilling recipe must change the result; these tests fail when one is
removed or weakened.

* soft targets: distillation from a clean teacher beats fine-tuning on corrupted labels
  (every training label flipped) — through :func:`distill` and through a recipe step;
* hidden matching: the projection P is trained (it differs from its seeded start), and the
  hidden term moves the student's features towards the teacher's, measured by an
  independent oracle (the least-squares residual of predicting the teacher's features
  from the student's, NumPy ``lstsq``);
* the objective with ``hidden_weight > 0`` equals the NumPy formula (a scaled hidden term fails);
* a recipe step starts from the previous step's trained model and the last step's
  training is kept: the recipe's model equals the same steps run by hand with
  :func:`~lstmlite.train.train` and :func:`~lstmlite.compress.compress_`.
"""

import numpy as np
import pytest
import torch

from lstmlite.compress import compress_
from lstmlite.compress.config import config_from_dict
from lstmlite.compress.distill import DistillConfig, distill, distill_objective
from lstmlite.compress.distill.transform import hidden_projection
from lstmlite.compress.recipe import apply_recipe
from lstmlite.data.containers import Split
from lstmlite.io import load_run, save_run
from lstmlite.nn import SequenceClassifier
from lstmlite.train import TrainConfig, evaluate, train

from .conftest import _task


def _relabel(data, label_of):
    """The same inputs with labels ``label_of(split)`` on every split."""
    def split(s):
        return Split(s.x, label_of(s), s.lengths)

    return _task("classify", split(data.train), split(data.val), split(data.test), input_size=3, n_classes=2,
                 class_names=["neg", "pos"])


@pytest.fixture(scope="module")
def teacher(toy_classify):
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=24, n_classes=2)
    train(model, toy_classify, TrainConfig(epochs=6, lr=2e-2, patience=0), progress=False)
    assert evaluate(model, toy_classify, toy_classify.test)["accuracy"] > 0.9
    return model


@pytest.fixture(scope="module")
def noisy_labels(toy_classify):
    """Every training label flipped; validation and test labels stay true."""
    data = toy_classify
    flipped = Split(data.train.x, 1 - data.train.y, data.train.lengths)
    return _task("classify", flipped, data.val, data.test, input_size=3, n_classes=2, class_names=["neg", "pos"])


def _accuracy(model, data):
    return evaluate(model, data, data.test)["accuracy"]


# ----- soft targets ----------------------------------------------------------------------------
def test_soft_targets_decide_the_result_not_the_labels(noisy_labels, teacher):
    """Fine-tuning on flipped labels learns the inverse; distilling (alpha = 1) learns the teacher's."""
    config = TrainConfig(epochs=4, lr=2e-2, patience=0)
    torch.manual_seed(1)
    finetuned = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2)
    train(finetuned, noisy_labels, config, progress=False)
    torch.manual_seed(1)
    distilled = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2)
    distill(teacher, distilled, noisy_labels, DistillConfig(temperature=2.0, alpha=1.0), config, progress=False)
    assert _accuracy(finetuned, noisy_labels) < 0.5
    assert _accuracy(distilled, noisy_labels) > 0.8


def test_recipe_distill_step_learns_from_the_source_model(noisy_labels, teacher, tmp_path):
    """A recipe's ``distill_epochs`` step must train on the source run's soft targets."""
    save_run(tmp_path / "teacher", teacher, {"task": "classify", "train": {"lr": 0.02, "patience": 0}})
    recipe = {"distill": {"temperature": 2.0, "alpha": 1.0},
              "steps": [{"student": {"hidden_size": 6}, "distill_epochs": 4}]}
    result = apply_recipe(tmp_path / "teacher", recipe, tmp_path / "out", data=noisy_labels, progress=False)
    assert result.model.rnn.hidden_sizes == [6]
    assert result.metrics["metric"] > 0.8  # fine-tuning on these labels gives < 0.5 (test above)


# ----- hidden-state matching ----------------------------------------------------------------------
def test_distill_objective_hidden_term_matches_numpy():
    rng = np.random.default_rng(4)
    s, t, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    hs, ht = rng.normal(size=(5, 4)), rng.normal(size=(5, 6))
    proj = torch.nn.Linear(4, 6)
    w, b = proj.weight.detach().double().numpy(), proj.bias.detach().double().numpy()
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    with_hidden = distill_objective("classify", f(s), f(t), torch.tensor(y),
                                    DistillConfig(alpha=0.4, hidden_weight=2.5), f(hs), f(ht), proj)
    without = distill_objective("classify", f(s), f(t), torch.tensor(y), DistillConfig(alpha=0.4))
    expected_hidden = 2.5 * ((hs @ w.T + b - ht) ** 2).mean()
    assert float(with_hidden.detach() - without) == pytest.approx(expected_hidden, rel=1e-5)


def _features(model, split):
    with torch.no_grad():
        return model.features(torch.tensor(split.x), torch.tensor(split.lengths)).double().numpy()


def _unexplained(student_features, teacher_features):
    """Fraction of the teacher features' variance a least-squares affine map of the student's misses."""
    a = np.concatenate([student_features, np.ones((len(student_features), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(a, teacher_features, rcond=None)
    residual = teacher_features - a @ coef
    return float((residual ** 2).sum() / ((teacher_features - teacher_features.mean(0)) ** 2).sum())


@pytest.fixture(scope="module")
def other_task_teacher(toy_classify):
    """A teacher of a different question (sign of channel 1's sum): its features hold what
    the student's labels (channel 0) never ask for, so only the hidden term can teach it."""
    other = _relabel(toy_classify, lambda s: (s.x[:, :, 1].sum(1) > 0).astype(np.int64))
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=24, n_classes=2)
    train(model, other, TrainConfig(epochs=6, lr=2e-2, patience=0), progress=False)
    assert _accuracy(model, other) > 0.9
    return model


def test_hidden_projection_trains_and_the_hidden_term_moves_the_student(toy_classify, other_task_teacher):
    config = TrainConfig(epochs=5, lr=2e-2, patience=0, schedule="none")

    def run(hidden_weight):
        torch.manual_seed(3)
        student = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2)
        result = distill(other_task_teacher, student, toy_classify,
                         DistillConfig(alpha=0.0, hidden_weight=hidden_weight), config, progress=False)
        return student, result

    plain, _ = run(0.0)
    matched, result = run(3.0)
    # the projection received gradients: it moved from its seeded initial value
    start = hidden_projection(matched, other_task_teacher, config.seed)
    trained = result.extra["hidden_projection"]
    assert not torch.allclose(trained.weight, start.weight, atol=1e-3)
    # the hidden term moved the student: its features now predict the teacher's far better
    teacher_features = _features(other_task_teacher, toy_classify.test)
    unexplained_plain = _unexplained(_features(plain, toy_classify.test), teacher_features)
    unexplained_matched = _unexplained(_features(matched, toy_classify.test), teacher_features)
    assert unexplained_plain > 0.5
    assert unexplained_matched < 0.5 * unexplained_plain
    # ... while still solving its own task from the labels
    assert _accuracy(matched, toy_classify) > 0.8


# ----- recipe steps chain -----------------------------------------------------------------------
def test_each_recipe_step_starts_from_the_previous_steps_trained_model(toy_classify, tmp_path):
    torch.manual_seed(5)
    source = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)
    base = {"lr": 0.02, "patience": 0, "batch_size": 32}
    save_run(tmp_path / "src", source, {"task": "classify", "train": base})
    recipe = [{"finetune_epochs": 2},
              {"method": "low_rank", "rank": 2, "finetune_epochs": 1},
              {"method": "int8_weight"}]
    result = apply_recipe(tmp_path / "src", recipe, tmp_path / "out", data=toy_classify, progress=False)

    # the same steps by hand, each on the model the previous one left
    model = load_run(tmp_path / "src").model
    first = TrainConfig.from_dict({**base, "epochs": 2, "checkpoint": False})
    train(model, toy_classify, first, progress=False)
    compress_(model, config_from_dict({"type": "low_rank", "version": 1, "data": {"rank": 2}}))
    train(model, toy_classify, TrainConfig.from_dict({**base, "epochs": 1, "checkpoint": False}), progress=False)
    compress_(model, config_from_dict({"type": "weight_quant", "version": 1, "data": {"bits": 8}}))

    x, lengths = torch.tensor(toy_classify.test.x), torch.tensor(toy_classify.test.lengths)
    with torch.no_grad():
        expected = model.eval()(x, lengths)
        got = result.model.eval()(x, lengths)
        untrained = load_run(tmp_path / "src").model.eval()(x, lengths)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, untrained, atol=1e-3)  # the oracle itself did train
