"""The device and mixed-precision defaults (``train.device=auto``, ``train.amp=true``).

On CPU the defaults must not change numerics: ``amp`` applies to CUDA only, so the
default config trains bit for bit like an explicit ``device=cpu, amp=false``. Where a
GPU is present, ``auto`` must pick it and train in mixed precision, and still learn
what the CPU run learns.
"""

from __future__ import annotations

import pytest
import torch

from lstmlite.nn import SequenceClassifier
from lstmlite.train import TrainConfig, evaluate, train
from lstmlite.train.trainer import select_device

CUDA = torch.cuda.is_available()


def _classifier():
    torch.manual_seed(0)
    return SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)


def test_defaults_are_auto_device_and_amp():
    config = TrainConfig()
    assert config.device == "auto" and config.amp is True


def test_default_config_on_cpu_is_bit_identical_to_explicit_fp32_cpu(toy_classify, monkeypatch):
    # a machine without CUDA (this one is pretended so where a GPU is present)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto").type == "cpu"
    default, explicit = _classifier(), _classifier()
    a = train(default, toy_classify, TrainConfig(epochs=2, lr=1e-2), progress=False)
    b = train(explicit, toy_classify, TrainConfig(epochs=2, lr=1e-2, device="cpu", amp=False), progress=False)
    assert a.history == b.history
    for (name, x), y in zip(default.state_dict().items(), explicit.state_dict().values()):
        assert torch.equal(x, y), name


@pytest.mark.skipif(not CUDA, reason="no CUDA device: the CUDA + AMP default runs only where a GPU is present")
def test_auto_trains_on_cuda_in_mixed_precision_and_learns_like_cpu(toy_classify):
    assert select_device("auto").type == "cuda"
    model = _classifier()
    dtypes = set()
    model.head.register_forward_hook(lambda module, args, output: dtypes.add(output.dtype) if module.training else None)
    result = train(model, toy_classify, TrainConfig(epochs=8, lr=1e-2), progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert torch.float16 in dtypes  # autocast was on: the head ran in half precision
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    cpu_model = _classifier()
    cpu = train(cpu_model, toy_classify, TrainConfig(epochs=8, lr=1e-2, device="cpu"), progress=False)
    gpu_acc = evaluate(model.cpu(), toy_classify, toy_classify.val, device=torch.device("cpu"))["accuracy"]
    assert gpu_acc == pytest.approx(result.best_val)
    assert gpu_acc > 0.75
    # fp16 rounding changes the path a little; 64 validation rows: within 6 of them
    assert gpu_acc == pytest.approx(cpu.best_val, abs=6 / 64)


@pytest.mark.skipif(not CUDA, reason="no CUDA device: the CUDA + AMP gradient is checked only where a GPU is present")
def test_one_amp_step_on_cuda_matches_the_fp32_cpu_gradient(toy_classify):
    grads = {}
    for device in ("cpu", "cuda"):
        model = _classifier()

        class Record:
            def on_step(self, step, model=model, device=device):
                if step == 1:  # GradScaler has unscaled them in place by now
                    grads[device] = {n: p.grad.detach().float().cpu().clone() for n, p in model.named_parameters()}

        train(model, toy_classify, TrainConfig(epochs=1, lr=1e-2, clip_grad_norm=0.0, device=device),
              callbacks=[Record()], progress=False)
    for name, expected in grads["cpu"].items():
        # fp16 autocast: ~3 significant digits per matmul
        torch.testing.assert_close(grads["cuda"][name], expected, rtol=2e-2, atol=2e-3, msg=name)
