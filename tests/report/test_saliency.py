"""Integrated gradients: completeness (attributions sum to f(x) − f(baseline)) on every
model kind, zero attribution where the input equals the baseline, and the target."""

import numpy as np
import pytest
import torch

from lstmlite.compress import WeightQuantConfig, compress_
from lstmlite.nn import Forecaster, LanguageModel, SequenceClassifier, SequenceTagger
from lstmlite.report.saliency import integrated_gradients


def _close(att, rel=5e-3):
    gap = att.f_x - att.f_baseline
    assert abs(gap) > 1e-4, "a degenerate case: f(x) = f(baseline)"
    assert abs(att.completeness_error) <= rel * abs(gap) + 1e-5, (att.values.sum(), gap)


@pytest.mark.parametrize("cell", ["lstm", "gru", "fastgrnn"])
def test_completeness_on_feature_input(cell):
    torch.manual_seed(1)
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3, cell=cell).eval()
    x = torch.randn(12, 4) * 2
    att = integrated_gradients(model, x, steps=128)
    assert att.values.shape == (12, 4)
    with torch.no_grad():
        logits = model(x.unsqueeze(0))[0]
        zero = model(torch.zeros(1, 12, 4))[0]
    assert att.index == int(logits.argmax())  # default target: the prediction
    assert att.f_x == pytest.approx(float(logits[att.index]), abs=1e-5)
    assert att.f_baseline == pytest.approx(float(zero[att.index]), abs=1e-5)
    _close(att)


def test_completeness_on_a_compressed_model_and_more_points_help():
    torch.manual_seed(2)
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3)
    compress_(model, WeightQuantConfig(bits=8))
    x = torch.randn(10, 4) * 3
    coarse = integrated_gradients(model.eval(), x, steps=4)
    fine = integrated_gradients(model, x, steps=256)
    _close(fine)
    assert abs(fine.completeness_error) <= abs(coarse.completeness_error) + 1e-6


def test_completeness_on_tokens_and_padding_gets_nothing() -> None:
    """Token attributions are complete, the padding token gets exactly 0, and the per-token
    scores are the signed sums over the embedding dimensions (NumPy), so they too add up to
    f(x) − f(baseline). Catches per-token scores summed as magnitudes."""
    torch.manual_seed(3)
    model = SequenceClassifier(vocab_size=30, embed_dim=6, hidden_size=8, n_classes=2).eval()
    ids = torch.tensor([4, 9, 0, 17, 2])  # id 0 is <pad>: its embedding is the zero baseline
    att = integrated_gradients(model, ids, target=1, steps=128)
    assert att.values.shape == (5, 6) and att.index == 1
    _close(att)
    assert np.all(att.values[2] == 0)
    assert (att.values < 0).any() and (att.values > 0).any()  # mixed signs: magnitudes would differ
    np.testing.assert_allclose(att.per_step, att.values.sum(axis=1), rtol=1e-12)
    assert att.per_step.sum() == pytest.approx(att.f_x - att.f_baseline, rel=5e-3, abs=1e-5)


def test_a_feature_equal_to_the_baseline_gets_zero_attribution():
    torch.manual_seed(4)
    model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2).eval()
    x = torch.randn(6, 3)
    x[:, 1] = 0
    att = integrated_gradients(model, x, steps=32)
    assert np.all(att.values[:, 1] == 0) and np.abs(att.values[:, 0]).sum() > 0


def test_forecaster_and_language_model() -> None:
    """Completeness on a forecaster and a language model, and f is the output the target
    names: the forecaster's forecast value 2, the LM's logit of its own top next token
    AFTER THE LAST STEP (both read from a plain forward pass). Catches an LM target and f
    taken at the first step, which completeness alone does not notice."""
    torch.manual_seed(5)
    forecaster = Forecaster(input_size=2, horizon=3, hidden_size=8).eval()
    x = torch.randn(10, 2) + 1
    att = integrated_gradients(forecaster, x, target=2, steps=128)
    assert "forecast value 2" in att.target
    with torch.no_grad():
        assert att.f_x == pytest.approx(float(forecaster(x.unsqueeze(0)).reshape(-1)[2]), abs=1e-5)
    _close(att)
    lm = LanguageModel(vocab_size=12, embed_dim=5, hidden_size=8).eval()
    att = integrated_gradients(lm, torch.tensor([1, 5, 3, 7]), steps=128)
    assert "next token" in att.target
    _close(att)
    torch.manual_seed(0)
    sharp = LanguageModel(vocab_size=12, embed_dim=5, hidden_size=8).eval()
    with torch.no_grad():  # larger weights: an untrained LM predicts the same token at every step
        for param in sharp.parameters():
            param.mul_(4)
        ids = torch.tensor([1, 5, 3, 7])
        logits = sharp(ids.unsqueeze(0))[0][0]  # (T, vocab)
    assert int(logits[-1].argmax()) != int(logits[0].argmax())  # the first and last steps disagree
    att = integrated_gradients(sharp, ids, steps=16)
    assert att.index == int(logits[-1].argmax())
    assert att.f_x == pytest.approx(float(logits[-1, att.index]), abs=1e-5)


def test_tagger_explains_its_label_at_the_last_step() -> None:
    """A tagger (tag, CTC) gives (B, T, C) logits: f is the logit of its top label at the
    LAST step (read from a plain forward pass), with completeness, for frames and tokens.
    Planted and failing it: the classifier's out[:, index] on the tagger's output (an
    IndexError for an index past T, and a (B, C) f otherwise), as it was."""
    torch.manual_seed(6)
    for model, x in ((SequenceTagger(input_size=3, hidden_size=8, n_classes=4), torch.randn(9, 3) * 2),
                     (SequenceTagger(vocab_size=12, embed_dim=5, hidden_size=8, n_classes=4),
                      torch.tensor([3, 5, 7, 2, 9, 4]))):
        model.eval()
        with torch.no_grad():
            logits = model(x.unsqueeze(0))[0]  # (T, C)
        att = integrated_gradients(model, x, steps=128)
        assert att.index == int(logits[-1].argmax()) and "label" in att.target and "last step" in att.target
        assert att.f_x == pytest.approx(float(logits[-1, att.index]), abs=1e-5)
        _close(att)
        att = integrated_gradients(model, x, target=3, steps=16)
        assert att.f_x == pytest.approx(float(logits[-1, 3]), abs=1e-5)


@pytest.mark.parametrize("kind", ["classifier", "tagger", "forecaster", "lm"])
@pytest.mark.parametrize("target", [-1, 99])
def test_a_target_out_of_range_is_refused(kind: str, target: int) -> None:
    """--target outside the model's outputs is refused naming the range, for every kind.
    Planted and failing it: no check (99 died with an IndexError, -1 explained the last
    class under the name 'class -1')."""
    torch.manual_seed(0)
    model, x = {"classifier": (SequenceClassifier(input_size=2, hidden_size=4, n_classes=3), torch.randn(5, 2)),
                "tagger": (SequenceTagger(input_size=2, hidden_size=4, n_classes=3), torch.randn(5, 2)),
                "forecaster": (Forecaster(input_size=2, horizon=3, hidden_size=4), torch.randn(5, 2)),
                "lm": (LanguageModel(vocab_size=3, embed_dim=2, hidden_size=4), torch.tensor([1, 2, 1]))}[kind]
    with pytest.raises(ValueError, match=r"^target .* is out of range: the model has 3 .* \(0\.\.2\)$"):
        integrated_gradients(model, x, target=target, steps=2)


def test_steps_must_be_positive():
    with pytest.raises(ValueError, match="steps"):
        integrated_gradients(SequenceClassifier(input_size=2, hidden_size=2, n_classes=2), torch.randn(3, 2), steps=0)


def test_a_given_baseline_is_integrated_from_and_subtracted() -> None:
    """With a non-zero baseline x', f(baseline) is the model's own output at x' (PyTorch),
    and the attributions sum to f(x) − f(x'); catches the baseline argument ignored (f at
    zeros) and (x − x') replaced by x (which a zero baseline cannot tell apart)."""
    torch.manual_seed(5)
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3).eval()
    x, baseline = torch.randn(9, 4) * 2, torch.randn(9, 4)
    att = integrated_gradients(model, x, target=1, steps=128, baseline=baseline)
    with torch.no_grad():
        f_x = float(model(x.unsqueeze(0))[0, 1])
        f_b = float(model(baseline.unsqueeze(0))[0, 1])
    assert att.f_x == pytest.approx(f_x, abs=1e-5) and att.f_baseline == pytest.approx(f_b, abs=1e-5)
    assert abs(att.values.sum() - (f_x - f_b)) <= 5e-3 * abs(f_x - f_b) + 1e-5
    same = integrated_gradients(model, x, target=1, steps=8, baseline=x.clone())
    assert np.all(same.values == 0)  # nothing differs from the baseline: nothing to attribute


def test_a_target_one_past_the_last_output_is_refused() -> None:
    """3 classes: target 2 is explained, 3 is refused naming the range; catches <= in the check
    (which let index 3 fail later with an IndexError, or not at all)."""
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3).eval()
    assert integrated_gradients(model, torch.randn(5, 4), target=2, steps=4).index == 2
    with pytest.raises(ValueError, match=r"target 3 is out of range: the model has 3 classes \(0\.\.2\)"):
        integrated_gradients(model, torch.randn(5, 4), target=3, steps=4)


def test_each_attribution_is_the_hand_written_integral_at_its_own_step_and_feature() -> None:
    """Every (step, feature) attribution against integrated gradients written out here with
    autograd: one forward and backward pass per midpoint α = (k + ½)/n on α·x (zero
    baseline), the gradients averaged and times x, for a padding-free (T, F) sequence whose
    steps differ. Planted and failing it: the attributions reversed in time (their sum, so
    completeness, unchanged; a zero feature column stays zero), the left instead of the
    midpoint rule."""
    torch.manual_seed(7)
    model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=3).eval()
    x = torch.randn(6, 3) * 2
    steps = 8
    att = integrated_gradients(model, x, target=2, steps=steps)
    total = torch.zeros(6, 3)
    for k in range(steps):
        point = ((k + 0.5) / steps * x).requires_grad_(True)
        model(point.unsqueeze(0))[0, 2].backward()
        total += point.grad
    np.testing.assert_allclose(att.values, (x * total / steps).numpy(), rtol=1e-4, atol=1e-6)
    assert not np.allclose(att.values, att.values[::-1], atol=1e-3)  # the steps differ: an order shows


@pytest.mark.parametrize("training", [True, False])
def test_the_model_is_given_back_as_it_was(training: bool) -> None:
    """After explaining a token model, the model is in the mode it was in and computes what
    it computed before (the embedding hook that feeds the integration path is removed).
    Planted and failing it: the mode not given back (a training model left in eval, its
    dropout silently off) and the hook left on (the next forward reads the path)."""
    torch.manual_seed(8)
    model = SequenceClassifier(vocab_size=20, embed_dim=4, hidden_size=6, n_classes=2, dropout=0.0)
    ids = torch.tensor([3, 5, 7, 1])
    model.eval()
    with torch.no_grad():
        before = model(ids.unsqueeze(0))
    model.train(training)
    integrated_gradients(model, ids, steps=4)
    assert model.training is training
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(ids.unsqueeze(0)), before, rtol=0, atol=0)
