"""Shared helpers of the seq2seq tests."""

from __future__ import annotations

import numpy as np
import torch

from lstmlite.nn.seq2seq import BOS_ID


def native_vs_torch(model, native, x, lengths) -> float:
    """Largest |log-prob difference| of the native bundle's step (a
    :class:`~lstmlite.runtime.seq2seq.NativeSeq2Seq`) from the model's, over 6 steps along
    PyTorch's greedy path."""
    memory_n, state_n = native.encode(x, lengths)
    worst = 0.0
    with torch.no_grad():
        memory, state = model.encode(torch.as_tensor(x), torch.as_tensor(lengths))
        prev = torch.full((len(x),), BOS_ID)
        for _ in range(6):
            logits, state, _ = model.step(prev, state, memory)
            got, state_n = native.step(prev.numpy(), state_n, memory_n)
            worst = max(worst, float(np.abs(got - logits.log_softmax(-1).numpy()).max()))
            prev = logits.argmax(-1)
    return worst


def padded_sources(vocab: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """A batch of 6 source sequences of 8 steps (lengths 8, 6, 5, 3, 2, 1), ids in
    [4, vocab), zero (padding) past each length."""
    rng = np.random.default_rng(0)
    x = rng.integers(4, vocab, size=(6, 8))
    lengths = np.array([8, 6, 5, 3, 2, 1])
    x[np.arange(8)[None, :] >= lengths[:, None]] = 0
    return x, lengths
