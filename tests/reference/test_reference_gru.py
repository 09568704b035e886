"""lstmlite.reference GRU against torch.nn.GRU and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _reference_oracles import Config, finite_difference, make_case, rel_err, run_torch, zeros_state

from lstmlite.reference import gru_backward, gru_forward, gru_step

CONFIGS = [
    Config(2, 5, 3, 4),
    Config(1, 1, 2, 2, h0=False),
    Config(3, 7, 2, 5, layers=2, lengths=True),
    Config(3, 6, 4, 3, bidirectional=True, lengths=True),
    Config(2, 4, 3, 6, layers=2, bidirectional=True, lengths=True, bias=False),
    Config(3, 7, 3, 5, layers=3, bidirectional=True, lengths=True, h0=False),
]


def _forward(case, params=None, x=None, h0=None):
    return gru_forward(case.params if params is None else params,
                       case.x if x is None else x,
                       case.h0 if h0 is None else h0,
                       lengths=case.lengths)


def _loss(case, output, h_n) -> float:
    return float(np.sum(output * case.r_out) + np.sum(h_n * case.r_h))


def _backward(case):
    output, h_n, cache = _forward(case)
    return gru_backward(case.params, cache, case.r_out, case.r_h)


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_forward_matches_torch(cfg):
    case = make_case("gru", cfg)
    ref = run_torch(case)
    output, h_n, _ = _forward(case)
    assert output.dtype == np.float64
    assert output.shape == ref["output"].shape and h_n.shape == ref["h_n"].shape
    np.testing.assert_allclose(output, ref["output"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(h_n, ref["h_n"], rtol=0, atol=1e-9)
    if case.lengths is not None:
        pad = np.arange(cfg.steps)[None, :] >= case.lengths[:, None]
        assert np.all(output[pad] == 0)


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_gradients_match_torch_autograd(cfg):
    case = make_case("gru", cfg)
    ref = run_torch(case)
    grads, d_x, d_h0 = _backward(case)
    assert set(grads) == set(case.params)
    for name, g in grads.items():
        assert g.shape == case.params[name].shape
        assert rel_err(g, ref[f"grad:{name}"]) <= 1e-6, name
    assert rel_err(d_x, ref["grad:x"]) <= 1e-6
    assert rel_err(d_h0, ref["grad:h0"]) <= 1e-6
    if case.lengths is not None:
        pad = np.arange(cfg.steps)[None, :] >= case.lengths[:, None]
        assert np.all(d_x[pad] == 0)


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_gradients_match_finite_differences(cfg):
    case = make_case("gru", cfg)
    h0, _ = zeros_state(case)
    grads, d_x, d_h0 = _backward(case)
    analytic = {**grads, "x": d_x, "h0": d_h0}
    names = list(case.params)

    def loss(t):
        out, h_n, _ = _forward(case, {n: t[n] for n in names}, t["x"], t["h0"])
        return _loss(case, out, h_n)

    tensors = {**case.params, "x": case.x, "h0": h0}
    fd = finite_difference(loss, tensors, np.random.default_rng(0), samples=12)
    for name, (idx, est) in fd.items():
        full = analytic[name]
        scale = max(np.max(np.abs(full)), 1e-12)
        err = np.max(np.abs(full.flat[idx] - est)) / scale
        assert err <= 1e-6, (name, err)


def test_only_final_state_gradient():
    # d_output=None: the loss reads h_n only; torch agrees when r_out is zero.
    case = make_case("gru", Config(3, 5, 2, 4, bidirectional=True, lengths=True))
    case.r_out = np.zeros_like(case.r_out)
    ref = run_torch(case)
    _, _, cache = _forward(case)
    grads, d_x, d_h0 = gru_backward(case.params, cache, None, case.r_h)
    assert rel_err(d_x, ref["grad:x"]) <= 1e-6
    assert rel_err(grads["weight_ih_l0_reverse"], ref["grad:weight_ih_l0_reverse"]) <= 1e-6


def test_float32_stays_float32_and_matches_torch_float32():
    case = make_case("gru", Config(3, 6, 4, 5, layers=2, bidirectional=True, lengths=True))
    params32 = {k: v.astype(np.float32) for k, v in case.params.items()}
    output, h_n, cache = gru_forward(params32, case.x.astype(np.float32),
                                     case.h0.astype(np.float32), lengths=case.lengths)
    assert output.dtype == h_n.dtype == np.float32
    ref = run_torch(case, dtype=torch.float32)
    np.testing.assert_allclose(output, ref["output"], atol=2e-5)
    np.testing.assert_allclose(h_n, ref["h_n"], atol=2e-5)
    grads, d_x, _ = gru_backward(params32, cache, case.r_out, case.r_h)
    assert d_x.dtype == np.float32
    assert rel_err(d_x, ref["grad:x"]) < 1e-4


def test_step_matches_torch_grucell():
    rng = np.random.default_rng(2)
    cell = torch.nn.GRUCell(4, 3, dtype=torch.float64)
    x, h = rng.normal(size=(2, 4)), rng.normal(size=(2, 3))
    h_ref = cell(torch.from_numpy(x), torch.from_numpy(h)).detach().numpy()
    w = {n: p.detach().numpy() for n, p in cell.named_parameters()}
    h_new = gru_step(x, h, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"])
    np.testing.assert_allclose(h_new, h_ref, atol=1e-12)


def test_update_gate_from_cache_in_unit_interval():
    case = make_case("gru", Config(2, 4, 3, 3, lengths=True))
    ref = run_torch(case)
    _, _, cache = _forward(case)
    np.testing.assert_allclose(cache.activations("h"), ref["output"], atol=1e-9)
    z = cache.activations("z")
    assert z.shape == (2, 4, 3) and np.all((z >= 0) & (z <= 1))


def test_projection_is_rejected():
    case = make_case("gru", Config(2, 3, 3, 4))
    params = {**case.params, "weight_hr_l0": np.zeros((2, 4))}
    with pytest.raises(ValueError, match="projection"):
        gru_forward(params, case.x)
