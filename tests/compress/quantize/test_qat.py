"""Quantization-aware training: it learns weights that survive quantization.

The oracle is the task itself: a held-out test set of a synthetic classification
problem (fresh training batches every step, so nothing overfits). QAT is compared
with post-training quantization of the same float model, and — to show the gain
comes from training *through* the quantizer, not from the extra steps — with the
float model fine-tuned for the same steps and then quantized.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lstmlite.compress import FakeQuantConfig, WeightQuantConfig, compress_, freeze_quantization, quantized_tensors
from lstmlite.nn import SequenceClassifier, build_model


def _data(n: int, g: torch.Generator):
    x = torch.randn(n, 12, 6, generator=g)
    y = (x[:, :, 0].sum(1) > 0).long() + 2 * (x[:, 4:, 1].mean(1) > 0).long()  # 4 classes
    return x, y


def _train(model, steps: int, lr: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)  # made after compress_
    model.train()
    for _ in range(steps):
        x, y = _data(32, g)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _copy(model):
    fresh = build_model(model.config())
    fresh.load_state_dict(model.state_dict())
    return fresh.eval()


@pytest.fixture(scope="module")
def setup(one_thread):
    torch.manual_seed(0)
    base = _train(SequenceClassifier(input_size=6, hidden_size=16, n_classes=4), 300, 1e-2, seed=0)
    test = _data(1024, torch.Generator().manual_seed(123))
    return base, test


def _evaluate(model, test):
    x, y = test
    with torch.no_grad():
        out = model(x)
    return nn.functional.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def _qat(base, bits, steps=80):
    model = _copy(base)
    compress_(model, FakeQuantConfig(bits=bits))
    _train(model, steps, 3e-3, seed=1)
    freeze_quantization(model)
    return model


def _ptq(model, bits):
    model = _copy(model)
    compress_(model, WeightQuantConfig(bits=bits))
    return model


def test_qat_recovers_what_int4_ptq_loses(setup):
    base, test = setup
    float_loss, float_acc = _evaluate(base, test)
    ptq_loss, ptq_acc = _evaluate(_ptq(base, 4), test)
    qat = _qat(base, 4)
    qat_loss, qat_acc = _evaluate(qat, test)
    assert float_acc > 0.8
    assert ptq_loss > float_loss  # int4 PTQ costs something here
    assert qat_loss < ptq_loss and qat_acc >= ptq_acc  # QAT does not get worse; it recovers
    # and the QAT model really is int4: every effective weight is codes * scale
    for name, (codes, scales, bits) in quantized_tensors(qat).items():
        fqn, _, attr = name.rpartition(".")
        assert bits == 4 and int(codes.abs().max()) <= 7
        assert torch.equal(getattr(qat.get_submodule(fqn), attr), codes.float() * scales[:, None])


def test_qat_beats_fine_tuning_then_quantizing_at_3_bits(setup):
    base, test = setup
    fine_tuned = _train(_copy(base), 80, 3e-3, seed=1)  # same steps, same data, no quantizer
    control_loss, _ = _evaluate(_ptq(fine_tuned, 3), test)
    qat_loss, _ = _evaluate(_qat(base, 3), test)
    ptq_loss, _ = _evaluate(_ptq(base, 3), test)
    assert qat_loss < control_loss and qat_loss < ptq_loss


def test_fake_quant_scales_follow_the_weights():
    """FakeQuant recomputes scales at every forward; WeightQuant keeps the ones it was made with."""
    torch.manual_seed(0)
    a = SequenceClassifier(input_size=3, hidden_size=5, n_classes=2)
    b = _copy(a)
    compress_(a, FakeQuantConfig(bits=8))
    compress_(b, WeightQuantConfig(bits=8))
    for model in (a, b):
        with torch.no_grad():
            model.rnn.parametrizations.weight_hh_l0.original.mul_(3.0)
    w_a = a.rnn.parametrizations.weight_hh_l0.original
    scale_a = quantized_tensors(a)["rnn.weight_hh_l0"].scales
    torch.testing.assert_close(scale_a, w_a.abs().amax(1) / 127)
    # the fixed scales clip the tripled weights at their old range
    assert b.rnn.weight_hh_l0.abs().max() < w_a.abs().max() / 2


def test_fake_quant_mse_scales_follow_the_mse_search(mse_scale):
    """QAT with ``scale_method="mse"`` clips each row at its MSE-best ratio of the current
    weights (the NumPy search of the conftest), not at absmax. Catches a FakeQuantWeight
    that ignores its scale method."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=6, n_classes=2)
    with torch.no_grad():
        model.rnn.weight_hh_l0[:, 0] *= 8.0  # one outlier per row: clipping it pays at int4
    compress_(model, FakeQuantConfig(bits=4, scale_method="mse"))
    w = model.rnn.parametrizations.weight_hh_l0.original.detach().numpy()
    got = quantized_tensors(model)["rnn.weight_hh_l0"].scales.numpy()
    want = [mse_scale(row, 7) for row in w]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert any(s < np.abs(row).max() / 7 * 0.99 for s, row in zip(want, w))  # the search did clip
