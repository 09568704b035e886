"""Oracles for the reference-layer tests: torch.nn.LSTM / nn.GRU and finite differences.

A ``Case`` is one random problem (sizes, parameters, input, lengths, initial state and
the random weights of the scalar loss). ``run_torch`` computes its forward and autograd
gradients with PyTorch; ``finite_difference`` computes central differences of any
NumPy loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import zlib

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class Config:
    """Sizes of one test case. proj=0: no projection (always 0 for the GRU)."""

    batch: int
    steps: int
    input_size: int
    hidden: int
    proj: int = 0
    layers: int = 1
    bidirectional: bool = False
    lengths: bool = False
    h0: bool = True
    bias: bool = True

    @property
    def dirs(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def out_size(self) -> int:
        return self.proj or self.hidden

    def __str__(self) -> str:  # readable pytest ids
        s = f"B{self.batch}T{self.steps}I{self.input_size}H{self.hidden}L{self.layers}"
        s += f"P{self.proj}" if self.proj else ""
        s += "-bi" if self.bidirectional else ""
        s += "-len" if self.lengths else ""
        s += "" if self.h0 else "-noh0"
        s += "" if self.bias else "-nobias"
        return s


@dataclass
class Case:
    kind: str  # "lstm" | "gru"
    cfg: Config
    params: dict[str, np.ndarray]
    x: np.ndarray  # (B, T, I)
    lengths: np.ndarray | None  # (B,)
    h0: np.ndarray | None  # (L*D, B, H_out)
    c0: np.ndarray | None  # (L*D, B, H), LSTM only
    r_out: np.ndarray  # loss weights for output, h_n, c_n
    r_h: np.ndarray
    r_c: np.ndarray | None


def torch_module(kind: str, cfg: Config, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    common = dict(num_layers=cfg.layers, bidirectional=cfg.bidirectional, batch_first=True,
                  bias=cfg.bias, dtype=dtype)
    if kind == "lstm":
        return torch.nn.LSTM(cfg.input_size, cfg.hidden, proj_size=cfg.proj, **common)
    return torch.nn.GRU(cfg.input_size, cfg.hidden, **common)


def make_case(kind: str, cfg: Config, seed: int | None = None) -> Case:
    """Random parameters with PyTorch's names and shapes, scaled so gates saturate a little.

    seed None: derived from the config, the same in every process (unlike ``hash``).
    """
    if seed is None:
        seed = zlib.crc32(f"{kind}-{cfg}".encode())
    rng = np.random.default_rng(seed)
    shapes = {n: tuple(p.shape) for n, p in torch_module(kind, cfg).named_parameters()}
    params = {n: rng.normal(scale=0.6, size=s) for n, s in shapes.items()}
    b, t = cfg.batch, cfg.steps
    x = rng.normal(size=(b, t, cfg.input_size))
    lengths = None
    if cfg.lengths:
        lengths = rng.integers(1, t + 1, size=b)
        if lengths.min() == t and t > 1:  # make sure some sequence is padded
            lengths[-1] = rng.integers(1, t)
    n = cfg.layers * cfg.dirs
    h0 = rng.normal(size=(n, b, cfg.out_size)) if cfg.h0 else None
    c0 = rng.normal(size=(n, b, cfg.hidden)) if (cfg.h0 and kind == "lstm") else None
    r_out = rng.normal(size=(b, t, cfg.dirs * cfg.out_size))
    r_h = rng.normal(size=(n, b, cfg.out_size))
    r_c = rng.normal(size=(n, b, cfg.hidden)) if kind == "lstm" else None
    return Case(kind, cfg, params, x, lengths, h0, c0, r_out, r_h, r_c)


def zeros_state(case: Case) -> tuple[np.ndarray, np.ndarray | None]:
    """The initial states as arrays, zeros where the case has none."""
    cfg = case.cfg
    n = cfg.layers * cfg.dirs
    h0 = case.h0 if case.h0 is not None else np.zeros((n, cfg.batch, cfg.out_size))
    c0 = None
    if case.kind == "lstm":
        c0 = case.c0 if case.c0 is not None else np.zeros((n, cfg.batch, cfg.hidden))
    return h0, c0


def run_torch(case: Case, dtype: torch.dtype = torch.float64) -> dict[str, np.ndarray]:
    """Forward and autograd gradients of the case's loss with torch.nn.LSTM / GRU.

    Returns output, h_n, (c_n), loss, and "grad:<name>" for every parameter, x, h0, (c0).
    """
    module = torch_module(case.kind, case.cfg, dtype)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(case.params[name]))
    h0_np, c0_np = zeros_state(case)
    x = torch.tensor(case.x, dtype=dtype, requires_grad=True)
    h0 = torch.tensor(h0_np, dtype=dtype, requires_grad=True)
    c0 = torch.tensor(c0_np, dtype=dtype, requires_grad=True) if c0_np is not None else None
    state = (h0, c0) if case.kind == "lstm" else h0

    inp = x
    if case.lengths is not None:
        inp = pack_padded_sequence(x, torch.from_numpy(case.lengths), batch_first=True,
                                   enforce_sorted=False)
    out, final = module(inp, state)
    if case.lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=case.cfg.steps)
    h_n, c_n = final if case.kind == "lstm" else (final, None)

    loss = (out * torch.from_numpy(case.r_out).to(dtype)).sum()
    loss = loss + (h_n * torch.from_numpy(case.r_h).to(dtype)).sum()
    if c_n is not None:
        loss = loss + (c_n * torch.from_numpy(case.r_c).to(dtype)).sum()
    loss.backward()

    res = {"output": out.detach().numpy(), "h_n": h_n.detach().numpy(),
           "loss": loss.detach().numpy(), "grad:x": x.grad.numpy(), "grad:h0": h0.grad.numpy()}
    if c_n is not None:
        res["c_n"] = c_n.detach().numpy()
        res["grad:c0"] = c0.grad.numpy()
    for name, p in module.named_parameters():
        res[f"grad:{name}"] = p.grad.numpy()
    return res


def finite_difference(loss_fn, tensors: dict[str, np.ndarray], rng: np.random.Generator,
                      samples: int, eps: float = 1e-6) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Central differences (L(v+eps) - L(v-eps)) / 2eps at up to ``samples`` random
    entries of every tensor. ``loss_fn(tensors) -> float``; tensors are not modified.

    Returns name -> (flat indices, estimated gradient at them).
    """
    result = {}
    for name, value in tensors.items():
        size = value.size
        idx = rng.choice(size, size=min(samples, size), replace=False)
        est = np.empty(len(idx))
        for j, k in enumerate(idx):
            vals = []
            for sign in (1.0, -1.0):
                moved = value.copy()
                moved.flat[k] += sign * eps
                vals.append(loss_fn({**tensors, name: moved}))
            est[j] = (vals[0] - vals[1]) / (2 * eps)
        result[name] = (idx, est)
    return result


def rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| relative to the largest |expected| (the tensor's scale)."""
    scale = max(float(np.max(np.abs(expected))), 1e-12)
    return float(np.max(np.abs(actual - expected))) / scale
