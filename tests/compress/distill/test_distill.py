"""Distillation: the loss against hand-written NumPy, and students that learn from teachers."""

import numpy as np
import pytest
import torch

from lstmlite.compress.distill import (DistillConfig, distill, distill_objective, fold_teacher_logits,
                                       hidden_match_loss, kd_loss)
from lstmlite.io import save_run
from lstmlite.nn import LanguageModel, Seq2Seq, SequenceClassifier
from lstmlite.train import TrainConfig, evaluate, train
from lstmlite.train import trainer as trainer_module


# ----- NumPy oracles -------------------------------------------------------------------
def _np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _np_kd(s, t, T):
    """T² · mean over positions of sum_c p_t (log p_t − log p_s), written out."""
    s = s.reshape(-1, s.shape[-1]).astype(np.float64)
    t = t.reshape(-1, t.shape[-1]).astype(np.float64)
    log_ps, log_pt = _np_log_softmax(s / T), _np_log_softmax(t / T)
    kl_rows = (np.exp(log_pt) * (log_pt - log_ps)).sum(-1)
    return T * T * kl_rows.mean()


def _np_ce(s, y):
    s = s.reshape(-1, s.shape[-1]).astype(np.float64)
    return -_np_log_softmax(s)[np.arange(len(s)), y.reshape(-1)].mean()


# ----- loss math -------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(7, 5), (3, 6, 11)])
@pytest.mark.parametrize("temperature", [1.0, 2.5, 8.0])
def test_kd_loss_matches_numpy(shape, temperature):
    rng = np.random.default_rng(0)
    s, t = rng.normal(scale=3, size=shape), rng.normal(scale=3, size=shape)
    got = kd_loss(torch.tensor(s, dtype=torch.float32), torch.tensor(t, dtype=torch.float32), temperature)
    assert float(got) == pytest.approx(_np_kd(s, t, temperature), rel=1e-5, abs=1e-6)


def test_kd_loss_is_zero_at_the_teacher_and_its_gradient_points_there():
    t = torch.randn(4, 6)
    assert float(kd_loss(t.clone(), t, 3.0)) == pytest.approx(0.0, abs=1e-6)
    s = torch.zeros(4, 6, requires_grad=True)
    kd_loss(s, t, 2.0).backward()
    # d/ds [T² KL] = T (softmax(s/T) − softmax(t/T)) / N  (N = rows)
    expected = 2.0 * (torch.softmax(s.detach() / 2, -1) - torch.softmax(t / 2, -1)) / 4
    torch.testing.assert_close(s.grad, expected)


def test_hidden_match_loss_matches_numpy():
    rng = np.random.default_rng(1)
    hs, ht = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 6))
    proj = torch.nn.Linear(4, 6)
    w, b = proj.weight.detach().numpy().astype(np.float64), proj.bias.detach().numpy().astype(np.float64)
    expected = ((hs @ w.T + b - ht) ** 2).mean()
    got = hidden_match_loss(torch.tensor(hs, dtype=torch.float32), torch.tensor(ht, dtype=torch.float32), proj)
    assert float(got.detach()) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("task,shape", [("classify", (6, 4)), ("lm", (2, 5, 7))])
def test_distill_objective_matches_numpy(task, shape):
    rng = np.random.default_rng(2)
    s, t = rng.normal(size=shape), rng.normal(size=shape)
    y = rng.integers(0, shape[-1], size=shape[:-1])
    cfg = DistillConfig(temperature=3.0, alpha=0.3)
    got = distill_objective(task, torch.tensor(s, dtype=torch.float32), torch.tensor(t, dtype=torch.float32),
                            torch.tensor(y), cfg)
    expected = 0.3 * _np_kd(s, t, 3.0) + 0.7 * _np_ce(s, y)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_forecast_objective_is_mse_to_teacher_and_target():
    s, t, y = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    got = distill_objective("forecast", s, t, y, DistillConfig(alpha=0.25))
    expected = 0.25 * ((s - t) ** 2).mean() + 0.75 * ((s - y) ** 2).mean()
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


def _np_masked_kd(s, t, T, valid):
    """T² · mean over the valid positions only of sum_c p_t (log p_t − log p_s)."""
    log_ps, log_pt = _np_log_softmax(s / T), _np_log_softmax(t / T)
    return T * T * (np.exp(log_pt) * (log_pt - log_ps)).sum(-1)[valid].mean()


@pytest.mark.parametrize("task", ["tag", "ctc", "seq2seq"])
def test_per_step_objectives_leave_the_padding_out(task):
    """A tagger's and a CTC model's steps past each row's length, and a seq2seq model's
    target positions after ``</s>`` (id 0), count in neither the soft nor the hidden term,
    as the task losses leave them out: the objective equals the NumPy sum over the valid
    positions alone, and logits and hidden states at padded positions change nothing.
    Planted and failing it: the soft and hidden terms averaged over every position (padding
    included), as they were."""
    rng = np.random.default_rng(4)
    b, steps, c, hs, ht, T = 3, 6, 10, 4, 7, 2.0
    lengths = np.array([6, 4, 2])
    if task == "seq2seq":
        y = np.array([[5, 6, 7, 8, 9, 3], [5, 6, 7, 3, 0, 0], [9, 3, 0, 0, 0, 0]])
        lengths = None
    elif task == "tag":
        y = np.where(np.arange(steps)[None, :] < lengths[:, None], rng.integers(0, c, (b, steps)), -1)
    else:
        y = np.array([[1, 2, 3], [4, 1, -1], [2, -1, -1]])
    valid = (y != 0) if task == "seq2seq" else np.arange(steps)[None, :] < lengths[:, None]
    s, t = rng.normal(scale=2, size=(b, steps, c)), rng.normal(scale=2, size=(b, steps, c))
    h_s, h_t = rng.normal(size=(b, steps, hs)), rng.normal(size=(b, steps, ht))
    proj = torch.nn.Linear(hs, ht)
    w, bias = proj.weight.detach().numpy().astype(np.float64), proj.bias.detach().numpy().astype(np.float64)
    expected = _np_masked_kd(s, t, T, valid) + 0.5 * ((h_s @ w.T + bias - h_t) ** 2)[valid].mean()

    def objective(s, t, h_s, h_t):
        f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        cfg = DistillConfig(temperature=T, alpha=1.0, hidden_weight=0.5)
        return float(distill_objective(task, f(s), f(t), torch.tensor(y), cfg, f(h_s), f(h_t), proj,
                                       None if lengths is None else torch.tensor(lengths)).detach())

    assert objective(s, t, h_s, h_t) == pytest.approx(expected, rel=1e-5)
    noise = lambda a: np.where(valid[..., None], a, rng.normal(scale=9, size=a.shape))  # noqa: E731
    assert objective(noise(s), noise(t), noise(h_s), noise(h_t)) == pytest.approx(expected, rel=1e-5)


def test_seq2seq_distillation_matches_every_decoder_step_and_trains_with_a_hidden_term(toy_seq2seq):
    """A Bahdanau decoder calls its head once per step in teacher forcing: the hidden term
    matches the head inputs of every target position (stacked over the steps, padding left
    out), not the last call's alone; and distill() with hidden_weight > 0 trains a seq2seq
    student, whose validation decodes through the projection's wrapper. Planted and failing
    it: the hidden hook keeping only the head's last call (the term then saw only the last,
    mostly padded, position), and distill() dying with an AttributeError (the wrapper has no
    max_target_len) at the first validation."""
    from lstmlite.compress.distill.transform import _HeadInput, hidden_projection, make_distill_loss

    torch.manual_seed(0)
    v = len(toy_seq2seq.vocab)
    teacher = Seq2Seq(vocab_size=v, embed_dim=6, hidden_size=8, attention="bahdanau", max_target_len=6).eval()
    student = Seq2Seq(vocab_size=v, embed_dim=4, hidden_size=4, attention="bahdanau", max_target_len=6)
    batch = next(trainer_module.iterate_batches(toy_seq2seq.train, 8, torch.device("cpu")))
    y = trainer_module.S2S.trim_targets(batch.y)
    assert bool((y == 0).any()) and y.shape[1] > 2  # the premise: padded positions in a multi-step batch
    seen = {"s": [], "t": []}
    handles = [m.head.register_forward_pre_hook(lambda mod, a, k=k: seen[k].append(a[0].detach().numpy()))
               for m, k in ((student, "s"), (teacher, "t"))]
    proj = hidden_projection(student, teacher, seed=0)
    hooks = _HeadInput(student), _HeadInput(teacher)
    cfg = DistillConfig(temperature=2.0, alpha=1.0, hidden_weight=1.0)
    try:
        output = student(batch.x, batch.lengths, y)
        extra = make_distill_loss(teacher, "seq2seq", cfg, proj, *hooks)(student, batch, output)
    finally:
        for h in (*handles, *hooks):
            h.remove()
    total = float((trainer_module._loss("seq2seq", output, batch.y) + extra).detach())
    with torch.no_grad():
        t_out = teacher(batch.x, batch.lengths, y)
    valid = y.numpy() != 0
    h_s, h_t = np.stack(seen["s"], 1).astype(np.float64), np.stack(seen["t"], 1).astype(np.float64)
    w, bias = proj.weight.detach().numpy().astype(np.float64), proj.bias.detach().numpy().astype(np.float64)
    expected = _np_masked_kd(output.detach().numpy().astype(np.float64), t_out.numpy().astype(np.float64), 2.0,
                             valid) + ((h_s @ w.T + bias - h_t) ** 2)[valid].mean()
    assert h_s.shape[1] == y.shape[1] and total == pytest.approx(expected, rel=1e-5)

    keys = set(student.state_dict())
    result = distill(teacher, student, toy_seq2seq, DistillConfig(temperature=2.0, hidden_weight=0.5),
                     TrainConfig(epochs=1, batch_size=16, device="cpu"), progress=False)
    assert "exact_match" in result.metric_name and "val_bleu" in result.history[0]
    assert set(student.state_dict()) == keys and not student._forward_pre_hooks and not student.head._forward_pre_hooks
    assert not torch.equal(result.extra["hidden_projection"].weight, hidden_projection(student, teacher, 0).weight)


def test_fold_teacher_logits_sums_dropped_probability_into_unk():
    rng = np.random.default_rng(3)
    t, T, keep = rng.normal(size=(2, 3, 9)), 2.0, 5
    folded = fold_teacher_logits(torch.tensor(t), keep, T)
    p = np.exp(_np_log_softmax(t / T))
    expected = p[..., :keep].copy()
    expected[..., 1] += p[..., keep:].sum(-1)
    np.testing.assert_allclose(torch.softmax(folded / T, -1).numpy(), expected, rtol=1e-10)


def test_trainer_optimises_exactly_the_documented_objective(toy_classify):
    """task loss (trainer) + extra_loss (distill) == α T² KL + (1 − α) CE, on a real batch."""
    from lstmlite.compress.distill.transform import make_distill_loss

    torch.manual_seed(0)
    teacher = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2).eval()
    student = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2)
    cfg = DistillConfig(temperature=2.0, alpha=0.7)
    batch = next(trainer_module.iterate_batches(toy_classify.train, 32, torch.device("cpu")))
    output = student(batch.x, batch.lengths)
    extra = make_distill_loss(teacher, "classify", cfg, None, None, None)(student, batch, output)
    total = trainer_module._loss("classify", output, batch.y) + extra
    with torch.no_grad():
        t_out = teacher(batch.x, batch.lengths)
    expected = 0.7 * _np_kd(output.detach().numpy(), t_out.numpy(), 2.0) + \
        0.3 * _np_ce(output.detach().numpy(), batch.y.numpy())
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)


def test_config_validation_and_round_trip():
    with pytest.raises(ValueError, match="temperature"):
        DistillConfig(temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        DistillConfig(alpha=1.5)
    with pytest.raises(ValueError, match="hidden_weight"):  # a negative weight would reward a mismatch
        DistillConfig(hidden_weight=-0.5)
    with pytest.raises(ValueError, match="unknown key"):
        DistillConfig.from_dict({"temp": 2})
    c = DistillConfig(2.0, 0.9, 0.1)
    assert DistillConfig.from_dict(c.to_dict()) == c
    assert DistillConfig.from_dict({"temperature": 2}) == DistillConfig(temperature=2.0)


# ----- training --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def classify_teacher(toy_classify):
    torch.manual_seed(0)
    teacher = SequenceClassifier(input_size=3, hidden_size=24, n_classes=2)
    train(teacher, toy_classify, TrainConfig(epochs=6, lr=2e-2, patience=0), progress=False)
    return teacher


def test_student_learns_from_soft_targets_alone(toy_classify, classify_teacher):
    """alpha = 1: the student never sees a label, so its accuracy comes from the teacher."""
    teacher_acc = evaluate(classify_teacher, toy_classify, toy_classify.test)["accuracy"]
    assert teacher_acc > 0.85
    torch.manual_seed(1)
    student = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2)
    before = evaluate(student, toy_classify, toy_classify.test)["accuracy"]
    teacher_state = {k: v.clone() for k, v in classify_teacher.state_dict().items()}
    distill(classify_teacher, student, toy_classify, DistillConfig(temperature=2.0, alpha=1.0),
            TrainConfig(epochs=6, lr=2e-2, patience=0), progress=False)
    after = evaluate(student, toy_classify, toy_classify.test)["accuracy"]
    assert after > max(before + 0.15, 0.8)
    for k, v in classify_teacher.state_dict().items():  # the teacher is never trained
        assert torch.equal(v, teacher_state[k])
    assert not classify_teacher.head._forward_pre_hooks


def test_hidden_matching_trains_projection_and_leaves_student_clean(toy_classify, classify_teacher, tmp_path):
    torch.manual_seed(2)
    student = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2)
    keys = set(student.state_dict())
    save_run(tmp_path / "teacher", classify_teacher, {"task": "classify"})
    result = distill(tmp_path / "teacher", student, toy_classify,
                     DistillConfig(temperature=2.0, alpha=0.5, hidden_weight=1.0),
                     TrainConfig(epochs=6, lr=2e-2, patience=0), progress=False)
    assert set(student.state_dict()) == keys  # the projection is not left on the student
    assert not student.head._forward_pre_hooks
    assert result.extra["distill"]["data"]["hidden_weight"] == 1.0
    assert evaluate(student, toy_classify, toy_classify.test)["accuracy"] > 0.8


def test_hidden_term_reaches_the_student(toy_classify, classify_teacher):
    """With alpha = 0 the soft term vanishes; a large hidden weight must still change training."""
    def run(hidden_weight):
        torch.manual_seed(3)
        student = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2)
        distill(classify_teacher, student, toy_classify, DistillConfig(alpha=0.0, hidden_weight=hidden_weight),
                TrainConfig(epochs=1, patience=0, schedule="none"), progress=False)
        return student.rnn.weight_hh_l0.detach().clone()

    plain = run(0.0)
    torch.manual_seed(3)
    reference = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2)
    train(reference, toy_classify, TrainConfig(epochs=1, patience=0, schedule="none"), progress=False)
    torch.testing.assert_close(plain, reference.rnn.weight_hh_l0.detach())  # alpha=0, β=0: plain training
    assert not torch.allclose(run(10.0), plain)


def test_language_model_distillation(toy_lm):
    torch.manual_seed(0)
    teacher = LanguageModel(vocab_size=10, embed_dim=8, hidden_size=32)
    train(teacher, toy_lm, TrainConfig(epochs=10, lr=3e-2, patience=0), progress=False)
    teacher_bits = evaluate(teacher, toy_lm, toy_lm.test)["bits_per_char"]
    assert teacher_bits < 0.5
    torch.manual_seed(1)
    student = LanguageModel(vocab_size=10, embed_dim=8, hidden_size=12)
    before = evaluate(student, toy_lm, toy_lm.test)["bits_per_char"]
    distill(teacher, student, toy_lm, DistillConfig(temperature=2.0, alpha=1.0, hidden_weight=0.1),
            TrainConfig(epochs=15, lr=3e-2, patience=0), progress=False)
    after = evaluate(student, toy_lm, toy_lm.test)["bits_per_char"]
    assert after < min(1.0, before / 2)


def test_mismatched_teacher_is_refused(toy_classify, classify_teacher):
    student = SequenceClassifier(input_size=3, hidden_size=6, n_classes=3)
    with pytest.raises(ValueError, match="same task"):
        distill(classify_teacher, student, toy_classify, progress=False)
    lm = LanguageModel(vocab_size=10, embed_dim=4, hidden_size=4)
    with pytest.raises(ValueError, match="kinds of model"):
        distill(classify_teacher, lm, toy_classify, progress=False)


def test_teacher_runs_in_eval_mode_and_gets_its_mode_back(toy_classify):
    """The teacher runs in eval mode on every batch, whatever mode it was handed over in (its
    dropout would otherwise make the soft targets random), and gets its mode back after.
    Catches distill() not putting the teacher in eval mode."""
    torch.manual_seed(0)
    teacher = SequenceClassifier(input_size=3, hidden_size=8, num_layers=2, dropout=0.5, n_classes=2).train()
    student = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2)
    modes = []
    handle = teacher.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    try:
        distill(teacher, student, toy_classify, DistillConfig(), TrainConfig(epochs=1, batch_size=64), progress=False)
    finally:
        handle.remove()
    assert len(modes) >= 4 and not any(modes)  # 256 rows / 64: every training batch asked the teacher
    assert teacher.training


def test_hidden_weight_without_hidden_states_is_refused():
    """hidden_weight > 0 needs both hidden states and the projection: the objective refuses
    rather than silently leave the hidden term out. Catches the term skipped when the
    student's hidden state is missing."""
    s, t, y = torch.randn(4, 3), torch.randn(4, 3), torch.randint(0, 3, (4,))
    with pytest.raises(ValueError, match="hidden states and a projection"):
        distill_objective("classify", s, t, y, DistillConfig(hidden_weight=0.5))
    with pytest.raises(ValueError, match="hidden states and a projection"):
        distill_objective("classify", s, t, y, DistillConfig(hidden_weight=0.5), teacher_hidden=torch.randn(4, 5),
                          projection=torch.nn.Linear(2, 5))


def test_a_callers_extra_loss_is_called_on_every_batch_with_the_student(toy_classify):
    """``distill(..., extra_loss=f)`` adds ``f(student, batch, output)`` to every training
    batch's objective (a group-lasso penalty, say): f runs once per batch and receives the
    student itself, not the wrapper the hidden term trains through. Catches the caller's
    term dropped from the objective."""
    torch.manual_seed(0)
    teacher = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2).eval()
    student = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2)
    seen = []

    def extra(model, batch, output):
        seen.append(model)
        return output.new_zeros(())

    distill(teacher, student, toy_classify, DistillConfig(hidden_weight=0.5), TrainConfig(epochs=1, batch_size=64),
            extra_loss=extra, progress=False)
    assert len(seen) == 4 and all(m is student for m in seen)  # 256 rows / 64 per batch


def test_a_student_with_a_larger_vocabulary_is_refused(toy_lm):
    """A student's vocabulary must be the teacher's or a frequency-pruned prefix of it
    (its ids index the teacher's logits); a larger one is refused before training.
    Catches only the presence of a vocabulary being compared."""
    teacher = LanguageModel(vocab_size=10, embed_dim=4, hidden_size=4)
    student = LanguageModel(vocab_size=12, embed_dim=4, hidden_size=4)
    with pytest.raises(ValueError, match="prefix"):
        distill(teacher, student, toy_lm, progress=False)


def test_the_hidden_projection_leaves_the_callers_random_stream_alone():
    """Seeding P must not reseed the caller: the global generator's state is the same after
    ``hidden_projection`` as before, and the same seed gives the same P. Catches the state
    not restored."""
    from lstmlite.compress.distill.transform import hidden_projection

    torch.manual_seed(3)
    student, teacher = SequenceClassifier(input_size=3, hidden_size=4), SequenceClassifier(input_size=3, hidden_size=8)
    before = torch.random.get_rng_state()
    first = hidden_projection(student, teacher, seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(hidden_projection(student, teacher, seed=0).weight, first.weight)
