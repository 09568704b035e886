"""lstmlite.reference LSTM against torch.nn.LSTM and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _reference_oracles import Config, finite_difference, make_case, rel_err, run_torch, zeros_state

from lstmlite.reference import lstm_backward, lstm_forward, lstm_step

CONFIGS = [
    Config(2, 5, 3, 4),
    Config(1, 1, 2, 2, h0=False),
    Config(3, 7, 2, 5, layers=2, lengths=True),
    Config(3, 6, 4, 3, bidirectional=True, lengths=True),
    Config(2, 4, 3, 6, proj=3, layers=2, bidirectional=True, lengths=True),
    Config(3, 5, 3, 4, proj=2, bias=False),
    Config(3, 7, 3, 5, layers=3, bidirectional=True, lengths=True, h0=False),
]


def _forward(case, params=None, x=None, h0=None, c0=None):
    return lstm_forward(case.params if params is None else params,
                        case.x if x is None else x,
                        case.h0 if h0 is None else h0,
                        case.c0 if c0 is None else c0,
                        lengths=case.lengths)


def _loss(case, output, h_n, c_n) -> float:
    return float(np.sum(output * case.r_out) + np.sum(h_n * case.r_h) + np.sum(c_n * case.r_c))


def _backward(case):
    output, h_n, c_n, cache = _forward(case)
    return lstm_backward(case.params, cache, case.r_out, case.r_h, case.r_c)


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_forward_matches_torch(cfg):
    case = make_case("lstm", cfg)
    ref = run_torch(case)
    output, h_n, c_n, _ = _forward(case)
    assert output.dtype == np.float64
    assert output.shape == ref["output"].shape
    assert h_n.shape == ref["h_n"].shape and c_n.shape == ref["c_n"].shape
    np.testing.assert_allclose(output, ref["output"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(h_n, ref["h_n"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(c_n, ref["c_n"], rtol=0, atol=1e-9)
    if case.lengths is not None:  # padded steps are exactly zero
        pad = np.arange(cfg.steps)[None, :] >= case.lengths[:, None]
        assert np.all(output[pad] == 0)


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_gradients_match_torch_autograd(cfg):
    case = make_case("lstm", cfg)
    ref = run_torch(case)
    grads, d_x, d_h0, d_c0 = _backward(case)
    assert set(grads) == set(case.params)
    for name, g in grads.items():
        assert g.shape == case.params[name].shape
        assert rel_err(g, ref[f"grad:{name}"]) <= 1e-6, name
    assert rel_err(d_x, ref["grad:x"]) <= 1e-6
    assert rel_err(d_h0, ref["grad:h0"]) <= 1e-6
    assert rel_err(d_c0, ref["grad:c0"]) <= 1e-6
    if case.lengths is not None:  # padded inputs cannot reach the loss
        pad = np.arange(cfg.steps)[None, :] >= case.lengths[:, None]
        assert np.all(d_x[pad] == 0)


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_gradients_match_finite_differences(cfg):
    case = make_case("lstm", cfg)
    h0, c0 = zeros_state(case)
    grads, d_x, d_h0, d_c0 = _backward(case)
    analytic = {**grads, "x": d_x, "h0": d_h0, "c0": d_c0}
    names = list(case.params)

    def loss(t):
        params = {n: t[n] for n in names}
        out, h_n, c_n, _ = _forward(case, params, t["x"], t["h0"], t["c0"])
        return _loss(case, out, h_n, c_n)

    tensors = {**case.params, "x": case.x, "h0": h0, "c0": c0}
    fd = finite_difference(loss, tensors, np.random.default_rng(0), samples=12)
    for name, (idx, est) in fd.items():
        full = analytic[name]
        scale = max(np.max(np.abs(full)), 1e-12)
        err = np.max(np.abs(full.flat[idx] - est)) / scale
        assert err <= 1e-6, (name, err)


def test_loss_of_reference_equals_torch_loss():
    # The scalar the gradients are of is the same number in both implementations.
    case = make_case("lstm", CONFIGS[4], seed=3)
    assert abs(_loss(case, *_forward(case)[:3]) - float(run_torch(case)["loss"])) < 1e-9


def test_float32_stays_float32_and_matches_torch_float32():
    cfg = Config(3, 6, 4, 5, layers=2, bidirectional=True, lengths=True)
    case = make_case("lstm", cfg, seed=11)
    params32 = {k: v.astype(np.float32) for k, v in case.params.items()}
    output, h_n, c_n, cache = lstm_forward(params32, case.x.astype(np.float32),
                                           case.h0.astype(np.float32), case.c0.astype(np.float32),
                                           lengths=case.lengths)
    assert output.dtype == h_n.dtype == c_n.dtype == np.float32
    ref = run_torch(case, dtype=torch.float32)
    np.testing.assert_allclose(output, ref["output"], atol=2e-5)
    np.testing.assert_allclose(c_n, ref["c_n"], atol=2e-5)
    grads, d_x, _, _ = lstm_backward(params32, cache, case.r_out, case.r_h, case.r_c)
    assert d_x.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())
    assert rel_err(d_x, ref["grad:x"]) < 1e-4
    assert rel_err(grads["weight_hh_l1_reverse"], ref["grad:weight_hh_l1_reverse"]) < 1e-4


def test_integer_input_computes_in_float64():
    case = make_case("lstm", Config(2, 3, 2, 3), seed=5)
    x_int = np.round(case.x * 3).astype(np.int64)
    output, *_ = lstm_forward(case.params, x_int)
    assert output.dtype == np.float64
    case.x, case.h0, case.c0 = x_int.astype(np.float64), None, None
    np.testing.assert_allclose(output, run_torch(case)["output"], atol=1e-9)


def test_all_integer_arguments_compute_in_float64():
    """With integer parameters *and* input nothing names a float dtype: the forward
    computes in float64 (compute_dtype's fallback), as torch.nn.LSTM in float64 does on
    the same values. Catches a float32 fallback (off by ~1e-7, and the dtype)."""
    rng = np.random.default_rng(6)
    case = make_case("lstm", Config(2, 4, 3, 2, h0=False), seed=6)
    case.params = {k: rng.integers(-2, 3, v.shape) for k, v in case.params.items()}
    x_int = rng.integers(-3, 4, case.x.shape)
    output, h_n, c_n, _ = lstm_forward(case.params, x_int)
    assert output.dtype == h_n.dtype == c_n.dtype == np.float64
    case.params = {k: v.astype(np.float64) for k, v in case.params.items()}
    case.x = x_int.astype(np.float64)
    ref = run_torch(case)
    np.testing.assert_allclose(output, ref["output"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c_n, ref["c_n"], rtol=0, atol=1e-12)


def test_step_matches_torch_lstmcell():
    rng = np.random.default_rng(1)
    cell = torch.nn.LSTMCell(4, 3, dtype=torch.float64)
    x, h, c = rng.normal(size=(2, 4)), rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    h_ref, c_ref = cell(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
    w = {n: p.detach().numpy() for n, p in cell.named_parameters()}
    h_new, c_new = lstm_step(x, h, c, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"])
    np.testing.assert_allclose(h_new, h_ref.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(c_new, c_ref.detach().numpy(), atol=1e-12)


def test_step_with_projection_matches_one_torch_step():
    case = make_case("lstm", Config(2, 1, 3, 5, proj=2), seed=9)
    ref = run_torch(case)
    p = case.params
    h_new, c_new = lstm_step(case.x[:, 0], case.h0[0], case.c0[0], p["weight_ih_l0"],
                             p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"], p["weight_hr_l0"])
    np.testing.assert_allclose(h_new, ref["h_n"][0], atol=1e-12)
    np.testing.assert_allclose(c_new, ref["c_n"][0], atol=1e-12)


def test_gate_activations_from_cache():
    case = make_case("lstm", Config(3, 6, 2, 4, lengths=True), seed=4)
    ref = run_torch(case)
    _, _, _, cache = _forward(case)
    np.testing.assert_allclose(cache.activations("h"), ref["output"], atol=1e-9)
    f = cache.activations("f")
    assert f.shape == (3, 6, 4) and np.all((f >= 0) & (f <= 1))
    # c at each sequence's last valid step is torch's c_n
    c = cache.activations("c")
    np.testing.assert_allclose(c[np.arange(3), case.lengths - 1], ref["c_n"][0], atol=1e-9)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda p, kw: p.pop("weight_hh_l0"), "lack 'weight_hh_l0'"),
        (lambda p, kw: p.update(weight_xx_l0=np.zeros(3)), "unknown"),
        (lambda p, kw: p.update(weight_hh_l0=np.zeros((16, 5))), "shape"),
        (lambda p, kw: p.update(weight_ih_l2=np.zeros((16, 4))), "lack"),
        (lambda p, kw: kw.update(num_layers=2), "num_layers"),
        (lambda p, kw: kw.update(bidirectional=True), "bidirectional"),
        (lambda p, kw: kw.update(lengths=np.array([0, 3])), "lengths"),
        (lambda p, kw: kw.update(lengths=np.array([2, 4])), "lengths"),
        (lambda p, kw: kw.update(x=np.zeros((2, 3, 5))), "x has shape"),
        (lambda p, kw: kw.update(h0=np.zeros((1, 2, 5))), "h0"),
        # 10 rows are not 4 gates of H: refused, not read as H = 2 with two rows dropped
        (lambda p, kw: [p.clear(), p.update(weight_ih_l0=np.zeros((10, 3)), weight_hh_l0=np.zeros((10, 2)))],
         "not a multiple of 4"),
        # bias_hh without bias_ih: refused, not silently ignored
        (lambda p, kw: p.pop("bias_ih_l0"), r"unexpected parameters \['bias_hh_l0'\]"),
        (lambda p, kw: kw.update(lengths=np.array([2.5, 3.0])), "integers"),
    ],
)
def test_bad_arguments_raise(mutate, match):
    case = make_case("lstm", Config(2, 3, 3, 4), seed=0)
    params = dict(case.params)
    kwargs = {"x": case.x}
    mutate(params, kwargs)
    with pytest.raises(ValueError, match=match):
        lstm_forward(params, **kwargs)


def test_backward_rejects_foreign_cache_and_params():
    from lstmlite.reference import gru_forward

    case = make_case("lstm", Config(2, 3, 3, 4), seed=0)
    _, _, _, cache = lstm_forward(case.params, case.x)
    gru_params = {"weight_ih_l0": np.zeros((12, 3)), "weight_hh_l0": np.zeros((12, 4))}
    _, _, gru_cache = gru_forward(gru_params, case.x)
    with pytest.raises(ValueError, match="gru"):
        lstm_backward(case.params, gru_cache, None)
    other = make_case("lstm", Config(2, 3, 3, 5), seed=0).params
    with pytest.raises(ValueError, match="match"):
        lstm_backward(other, cache, None)
