"""GroupedLSTM and FastGRNN against NumPy oracles written from the papers' equations.

Oracles: NumPy float64 re-implementations (below, written from Kuchaiev & Ginsburg
2017 and Kusupati et al. 2018, not from our code), finite differences
(torch.autograd.gradcheck), and each sequence run on its own.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils import parametrize
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmlite.nn.cells import FastGRNN, GroupedLSTM

# ----------------------------------------------------------------------------- oracles


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _params(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in module.named_parameters()}


def numpy_glstm(module: GroupedLSTM, x: np.ndarray, lengths: np.ndarray | None = None,
                h0: list | None = None, c0: list | None = None):
    """G-LSTM from the paper: group g is an LSTM on slices g of x_t and h_{t-1}.

    Returns output (B, T, H) and per-layer final h, c (B, H).
    """
    p, G = _params(module), module.groups
    B, T, _ = x.shape
    lengths = np.full(B, T) if lengths is None else lengths
    seq = x
    hs, cs = [], []
    for k in range(module.num_layers):
        H = module.hidden_sizes[k]
        Hg = H // G
        if k > 0 and module.shuffle and G > 1:
            # channel shuffle: new feature j*G + g is old feature g*Hg_prev + j
            Hp = seq.shape[-1]
            Hgp = Hp // G
            shuffled = np.empty_like(seq)
            for g in range(G):
                for j in range(Hgp):
                    shuffled[..., j * G + g] = seq[..., g * Hgp + j]
            seq = shuffled
        Ig = seq.shape[-1] // G
        W, R = p[f"weight_ih_l{k}"], p[f"weight_hh_l{k}"]
        bi = p.get(f"bias_ih_l{k}", np.zeros((G, 4 * Hg)))
        bh = p.get(f"bias_hh_l{k}", np.zeros((G, 4 * Hg)))
        out = np.zeros((B, T, H))
        h_fin, c_fin = np.zeros((B, H)), np.zeros((B, H))
        for b in range(B):
            h = np.zeros(H) if h0 is None else h0[k][b].copy()
            c = np.zeros(H) if c0 is None else c0[k][b].copy()
            for t in range(lengths[b]):
                h_new, c_new = np.empty(H), np.empty(H)
                for g in range(G):
                    xs, hsl = seq[b, t, g * Ig:(g + 1) * Ig], h[g * Hg:(g + 1) * Hg]
                    a = W[g] @ xs + bi[g] + R[g] @ hsl + bh[g]
                    i, f, gg, o = a[:Hg], a[Hg:2 * Hg], a[2 * Hg:3 * Hg], a[3 * Hg:]
                    cg = _sigmoid(f) * c[g * Hg:(g + 1) * Hg] + _sigmoid(i) * np.tanh(gg)
                    c_new[g * Hg:(g + 1) * Hg] = cg
                    h_new[g * Hg:(g + 1) * Hg] = _sigmoid(o) * np.tanh(cg)
                h, c = h_new, c_new
                out[b, t] = h
            h_fin[b], c_fin[b] = h, c
        hs.append(h_fin)
        cs.append(c_fin)
        seq = out
    return seq, hs, cs


def numpy_fastgrnn(module: FastGRNN, x: np.ndarray, lengths: np.ndarray | None = None, h0: list | None = None):
    """FastGRNN, Kusupati et al. 2018 eqs. (3)-(4), EdgeML's ζ = σ(zeta), ν = σ(nu)."""
    p = _params(module)
    nl = {"sigmoid": _sigmoid, "tanh": np.tanh}
    gate, update = nl[module.gate_nonlinearity], nl[module.update_nonlinearity]
    B, T, _ = x.shape
    lengths = np.full(B, T) if lengths is None else lengths
    seq, hs = x, []
    for k in range(module.num_layers):
        H = module.hidden_sizes[k]
        W = p[f"weight_ih_l{k}"] if module.wrank is None else p[f"weight_ih_l{k}_left"] @ p[f"weight_ih_l{k}_right"]
        U = p[f"weight_hh_l{k}"] if module.urank is None else p[f"weight_hh_l{k}_left"] @ p[f"weight_hh_l{k}_right"]
        bz, bh = p[f"bias_gate_l{k}"], p[f"bias_update_l{k}"]
        zeta, nu = _sigmoid(p[f"zeta_l{k}"][0]), _sigmoid(p[f"nu_l{k}"][0])
        out = np.zeros((B, T, H))
        h_fin = np.zeros((B, H))
        for b in range(B):
            h = np.zeros(H) if h0 is None else h0[k][b].copy()
            for t in range(lengths[b]):
                z = gate(W @ seq[b, t] + U @ h + bz)
                h_tilde = update(W @ seq[b, t] + U @ h + bh)
                h = (zeta * (1.0 - z) + nu) * h_tilde + z * h
                out[b, t] = h
            h_fin[b] = h
        hs.append(h_fin)
        seq = out
    return seq, hs


# ----------------------------------------------------------------------------- helpers


def _randomize(module: nn.Module, seed: int, scale: float = 0.5) -> nn.Module:
    """Non-default values everywhere (EdgeML's init has equal biases, which hides bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _flat_state(state: list) -> list[torch.Tensor]:
    return [t for s in state for t in (s if isinstance(s, tuple) else (s,))]


GLSTM_CASES = [
    dict(input_size=6, hidden_size=8, groups=2, num_layers=1),
    dict(input_size=6, hidden_size=12, groups=3, num_layers=3),
    dict(input_size=4, hidden_size=8, groups=4, num_layers=2, shuffle=False),
    dict(input_size=4, hidden_size=[8, 4], groups=2, num_layers=2, bias=False),
    dict(input_size=5, hidden_size=6, groups=1, num_layers=2),
]
FASTGRNN_CASES = [
    dict(input_size=5, hidden_size=7),
    dict(input_size=5, hidden_size=7, num_layers=2, wrank=3, urank=2),
    dict(input_size=4, hidden_size=[6, 5], num_layers=2, gate_nonlinearity="tanh", update_nonlinearity="sigmoid"),
    dict(input_size=3, hidden_size=6, urank=4),
]


def _build(cls, kwargs: dict, impl: str, seed: int = 0) -> nn.Module:
    return _randomize(cls(**kwargs, impl=impl), seed).double()


# ----------------------------------------------------------------------------- forward vs oracle


@pytest.mark.parametrize("impl", ["fused", "loop"])
@pytest.mark.parametrize("case", range(len(GLSTM_CASES)))
def test_glstm_matches_numpy(case: int, impl: str) -> None:
    kwargs = GLSTM_CASES[case]
    m = _build(GroupedLSTM, kwargs, impl, seed=case)
    rng = np.random.default_rng(case)
    B, T = 3, 6
    x = rng.standard_normal((B, T, kwargs["input_size"]))
    lengths = np.array([6, 2, 4])
    h0 = [rng.standard_normal((B, h)) for h in m.hidden_sizes]
    c0 = [rng.standard_normal((B, h)) for h in m.hidden_sizes]
    state = [(torch.from_numpy(h)[None], torch.from_numpy(c)[None]) for h, c in zip(h0, c0)]

    for lens in (None, lengths):
        ref_out, ref_h, ref_c = numpy_glstm(m, x, lens, h0, c0)
        out, final = m(torch.from_numpy(x), state, None if lens is None else torch.from_numpy(lens))
        np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=0, atol=1e-10)
        for k, (h, c) in enumerate(final):
            assert h.shape == c.shape == (1, B, m.hidden_sizes[k])
            np.testing.assert_allclose(h[0].detach().numpy(), ref_h[k], rtol=0, atol=1e-10)
            np.testing.assert_allclose(c[0].detach().numpy(), ref_c[k], rtol=0, atol=1e-10)


@pytest.mark.parametrize("case", [1, 3])
def test_glstm_packed_path_with_initial_state_matches_numpy(case: int) -> None:
    """The packed path (non-CPU devices; forced here) sorts the rows by length: the given
    initial state must be sorted with them and the final state put back. Catches h0/c0
    left in the caller's order (rows then start from each other's state)."""
    kwargs = GLSTM_CASES[case]
    m = _build(GroupedLSTM, kwargs, "fused", seed=case)
    m.lengths_strategy = "pack"
    rng = np.random.default_rng(20 + case)
    B, T = 4, 6
    x = rng.standard_normal((B, T, kwargs["input_size"]))
    lengths = np.array([2, 6, 3, 5])  # not sorted: packing reorders the rows
    h0 = [rng.standard_normal((B, h)) for h in m.hidden_sizes]
    c0 = [rng.standard_normal((B, h)) for h in m.hidden_sizes]
    state = [(torch.from_numpy(h)[None], torch.from_numpy(c)[None]) for h, c in zip(h0, c0)]
    ref_out, ref_h, ref_c = numpy_glstm(m, x, lengths, h0, c0)
    out, final = m(torch.from_numpy(x), state, torch.from_numpy(lengths))
    np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=0, atol=1e-10)
    for k, (h, c) in enumerate(final):
        np.testing.assert_allclose(h[0].detach().numpy(), ref_h[k], rtol=0, atol=1e-10)
        np.testing.assert_allclose(c[0].detach().numpy(), ref_c[k], rtol=0, atol=1e-10)


@pytest.mark.parametrize("impl", ["fused", "loop"])
@pytest.mark.parametrize("case", range(len(FASTGRNN_CASES)))
def test_fastgrnn_matches_numpy(case: int, impl: str) -> None:
    kwargs = FASTGRNN_CASES[case]
    m = _build(FastGRNN, kwargs, impl, seed=10 + case)
    rng = np.random.default_rng(case)
    B, T = 3, 6
    x = rng.standard_normal((B, T, kwargs["input_size"]))
    lengths = np.array([3, 6, 1])
    h0 = [rng.standard_normal((B, h)) for h in m.hidden_sizes]
    state = [torch.from_numpy(h)[None] for h in h0]

    for lens in (None, lengths):
        ref_out, ref_h = numpy_fastgrnn(m, x, lens, h0)
        out, final = m(torch.from_numpy(x), state, None if lens is None else torch.from_numpy(lens))
        np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=0, atol=1e-10)
        for k, h in enumerate(final):
            assert h.shape == (1, B, m.hidden_sizes[k])
            np.testing.assert_allclose(h[0].detach().numpy(), ref_h[k], rtol=0, atol=1e-10)


def test_default_fastgrnn_init_follows_edgeml() -> None:
    m = FastGRNN(input_size=3, hidden_size=4)
    assert torch.equal(m.bias_gate_l0, torch.ones(4)) and torch.equal(m.bias_update_l0, torch.ones(4))
    assert m.zeta_l0.item() == 1.0 and m.nu_l0.item() == -4.0
    # zero input, zero state, default init: pre-activation is the bias 1 → closed form
    z, h_tilde = 1 / (1 + np.exp(-1.0)), np.tanh(1.0)
    zeta, nu = 1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(4.0))
    out, _ = m(torch.zeros(1, 1, 3))
    np.testing.assert_allclose(out[0, 0].detach().numpy(), (zeta * (1 - z) + nu) * h_tilde, rtol=1e-6)


# ----------------------------------------------------------------------------- gradients


def _gradcheck_layer(m: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None, with_state: bool) -> None:
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in m.named_parameters()]
    x = x.clone().requires_grad_(True)
    state0 = [s.detach() for s in _flat_state(m(x.detach())[1])]  # shapes only
    init = [torch.randn_like(s).requires_grad_(True) for s in state0] if with_state else []
    per_layer = 2 if isinstance(m, GroupedLSTM) else 1

    def fn(x, *tensors):
        ps, st = tensors[:len(params)], tensors[len(params):]
        state = None
        if st:
            state = [tuple(st[i:i + 2]) if per_layer == 2 else st[i] for i in range(0, len(st), per_layer)]
        out, final = functional_call(m, dict(zip(names, ps)), (x, state), {"lengths": lengths})
        return (out, *_flat_state(final))

    assert torch.autograd.gradcheck(fn, (x, *params, *init), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("impl", ["fused", "loop"])
def test_glstm_gradcheck(impl: str) -> None:
    torch.manual_seed(0)
    m = _build(GroupedLSTM, dict(input_size=4, hidden_size=4, groups=2, num_layers=2), impl)
    x = torch.randn(3, 4, 4, dtype=torch.float64)
    _gradcheck_layer(m, x, None, with_state=True)
    _gradcheck_layer(m, x, torch.tensor([4, 1, 3]), with_state=True)


@pytest.mark.parametrize("impl", ["fused", "loop"])
@pytest.mark.parametrize("kwargs", [dict(num_layers=2), dict(wrank=2, urank=2, gate_nonlinearity="tanh",
                                                            update_nonlinearity="sigmoid")])
def test_fastgrnn_gradcheck(impl: str, kwargs: dict) -> None:
    torch.manual_seed(1)
    m = _build(FastGRNN, dict(input_size=3, hidden_size=4, **kwargs), impl)
    x = torch.randn(3, 4, 3, dtype=torch.float64)
    _gradcheck_layer(m, x, None, with_state=True)
    _gradcheck_layer(m, x, torch.tensor([2, 4, 1]), with_state=True)


# ----------------------------------------------------------------------------- lengths


LAYERS = [
    (GroupedLSTM, dict(input_size=4, hidden_size=8, groups=2, num_layers=2), "fused"),
    (GroupedLSTM, dict(input_size=4, hidden_size=8, groups=2, num_layers=2), "fused-pack"),
    (GroupedLSTM, dict(input_size=4, hidden_size=8, groups=2, num_layers=2), "loop"),
    (FastGRNN, dict(input_size=4, hidden_size=8, num_layers=2, urank=3), "fused"),
    (FastGRNN, dict(input_size=4, hidden_size=8, num_layers=2, urank=3), "loop"),
]


@pytest.mark.parametrize("cls,kwargs,impl", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_variable_length_equals_each_sequence_alone(cls, kwargs, impl, dtype) -> None:
    torch.manual_seed(0)
    m = _randomize(cls(**kwargs, impl=impl.split("-")[0]), 3).to(dtype)
    if impl == "fused-pack":  # the path non-CPU devices take
        m.lengths_strategy = "pack"
    lengths = torch.tensor([9, 2, 5, 1, 9])
    x = torch.randn(5, 9, 4, dtype=dtype)
    x[1, 2:] = float("nan")  # padding must never be read
    x[2, 5:] = 1e6
    out, final = m(x, lengths=lengths)
    assert torch.isfinite(out).all()
    tol = dict(rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-6)
    for b, n in enumerate(lengths.tolist()):
        alone_out, alone_final = m(x[b:b + 1, :n])
        torch.testing.assert_close(out[b, :n], alone_out[0], **tol)
        assert torch.equal(out[b, n:], torch.zeros_like(out[b, n:]))
        for got, want in zip(_flat_state(final), _flat_state(alone_final)):
            torch.testing.assert_close(got[:, b], want[:, 0], **tol)
    # the padding's gradient is exactly zero and no NaN reaches the parameters
    x.requires_grad_(True)
    out, final = m(x, lengths=lengths)
    (out.sum() + sum(s.sum() for s in _flat_state(final))).backward()
    assert torch.equal(x.grad[1, 2:], torch.zeros_like(x.grad[1, 2:]))
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize("cls,kwargs,impl", [LAYERS[0], LAYERS[3]])
def test_packed_sequence_and_stacked_state(cls, kwargs, impl) -> None:
    torch.manual_seed(0)
    m = cls(**kwargs, impl=impl)
    x, lengths = torch.randn(4, 6, 4), torch.tensor([3, 6, 2, 6])
    state = m(torch.randn(4, 2, 4))[1]
    out, final = m(x, state, lengths=lengths)

    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_p, final_p = m(packed, state)
    torch.testing.assert_close(pad_packed_sequence(out_p, batch_first=True, total_length=6)[0], out)
    for a, b in zip(_flat_state(final), _flat_state(final_p)):
        torch.testing.assert_close(a, b)

    # nn.LSTM / nn.GRU's stacked (L, B, H) state form is accepted too
    if isinstance(state[0], tuple):
        stacked = tuple(torch.cat([s[i] for s in state]) for i in range(2))
    else:
        stacked = torch.cat(state)
    torch.testing.assert_close(m(x, stacked, lengths=lengths)[0], out)


@pytest.mark.parametrize("cls,kwargs,impl", [LAYERS[0], LAYERS[3]])
def test_packed_output_has_the_input_layout(cls, kwargs, impl) -> None:
    """A packed input gives a packed output laid out like it (nn.LSTM's contract):
    same batch_sizes and sort indices, each row's steps its own outputs only."""
    torch.manual_seed(0)
    m = cls(**kwargs, impl=impl)
    x, lengths = torch.randn(4, 6, 4), torch.tensor([3, 6, 2, 5])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_p, _ = m(packed)
    assert torch.equal(out_p.batch_sizes, packed.batch_sizes)
    assert torch.equal(out_p.sorted_indices, packed.sorted_indices)
    assert torch.equal(out_p.unsorted_indices, packed.unsorted_indices)
    padded, out_lengths = pad_packed_sequence(out_p, batch_first=True)
    assert torch.equal(out_lengths, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(padded[b, :n], m(x[b:b + 1, :n])[0][0])


# ----------------------------------------------------------------------------- stacking, dropout


@pytest.mark.parametrize("cls,kwargs", [(GroupedLSTM, dict(groups=2)), (FastGRNN, dict(wrank=2))])
def test_stacked_and_dropout(cls, kwargs) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4)
    deep = cls(input_size=4, hidden_size=6, num_layers=3, dropout=0.0, **kwargs).train()
    out, state = deep(x)
    assert out.shape == (3, 5, 6) and len(state) == 3
    assert torch.equal(deep(x)[0], out)  # dropout=0 is deterministic in training

    # dropout acts between layers only, in training only: eval matches the same weights without dropout
    drop = cls(input_size=4, hidden_size=6, num_layers=3, dropout=0.5, **kwargs)
    drop.load_state_dict(deep.state_dict())
    assert not torch.allclose(drop.train()(x)[0], out)
    torch.testing.assert_close(drop.eval()(x)[0], deep.eval()(x)[0])
    # the first layer's state never sees dropout
    torch.testing.assert_close(_flat_state(drop.train()(x)[1])[0], _flat_state(deep(x)[1])[0])
    # nor does the last layer's output: its last step is the final h, as in nn.LSTM / nn.GRU
    out_d, state_d = drop.train()(x)
    last = _flat_state(state_d[-1:])[0]  # the top layer's h
    torch.testing.assert_close(out_d[:, -1], last[0], rtol=0, atol=0)


def test_glstm_packed_path_drops_out_between_layers_only() -> None:
    """The packed path (what non-CPU devices take; forced here) applies dropout between
    layers in training as the other paths do, and spares the last layer: its output at
    each sequence's last valid step is the final h. Catches dropout left out of it."""
    torch.manual_seed(0)
    x, lengths = torch.randn(3, 6, 4), torch.tensor([6, 2, 4])
    drop = GroupedLSTM(input_size=4, hidden_size=6, groups=2, num_layers=3, dropout=0.5)
    plain = GroupedLSTM(input_size=4, hidden_size=6, groups=2, num_layers=3)
    plain.load_state_dict(drop.state_dict())
    drop.lengths_strategy = plain.lengths_strategy = "pack"
    out, state = drop.train()(x, lengths=lengths)
    ref_out, ref_state = plain.train()(x, lengths=lengths)
    assert not torch.allclose(out, ref_out)
    torch.testing.assert_close(state[0][0], ref_state[0][0], rtol=0, atol=0)  # layer 0 sees no dropout
    torch.testing.assert_close(out[torch.arange(3), lengths - 1], state[-1][0][0], rtol=0, atol=0)
    torch.testing.assert_close(drop.eval()(x, lengths=lengths)[0], ref_out)


def test_glstm_shuffle_mixes_groups() -> None:
    """Without shuffle, group 0 of the last layer depends on group-0 inputs only."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 4)
    x2 = x.clone()
    x2[..., 2:] += 1.0  # change only the features group 1 reads
    for shuffle, should_change in ((False, False), (True, True)):
        m = GroupedLSTM(input_size=4, hidden_size=8, groups=2, num_layers=2, shuffle=shuffle)
        changed = not torch.allclose(m(x)[0][..., :4], m(x2)[0][..., :4])
        assert changed == should_change


# ----------------------------------------------------------------------------- config, macs, params


@pytest.mark.parametrize("cls,kwargs", [
    (GroupedLSTM, dict(input_size=6, hidden_size=[6, 12], num_layers=2, groups=3, shuffle=False, bias=False,
                       dropout=0.25, impl="loop")),
    (FastGRNN, dict(input_size=5, hidden_size=7, num_layers=2, wrank=2, urank=3, gate_nonlinearity="tanh",
                    update_nonlinearity="sigmoid", zeta_init=0.5, nu_init=-3.0, dropout=0.1, impl="loop")),
])
def test_config_round_trip(cls, kwargs) -> None:
    m = cls(**kwargs)
    text = json.dumps(m.config())  # JSON-serialisable
    m2 = cls.from_config(json.loads(text))
    assert m2.config() == m.config()
    for key, value in kwargs.items():
        assert m.config()[key] == value
    assert [(n, p.shape) for n, p in m.named_parameters()] == [(n, p.shape) for n, p in m2.named_parameters()]
    m2.load_state_dict(m.state_dict())
    x = torch.randn(2, 3, kwargs["input_size"])
    torch.testing.assert_close(m.eval()(x)[0], m2.eval()(x)[0])
    assert m.bidirectional is False and m.output_size == m.hidden_size == m2.output_size


def test_parameter_shapes_and_names() -> None:
    g = GroupedLSTM(input_size=12, hidden_size=32, groups=4, num_layers=2)
    assert dict((n, tuple(p.shape)) for n, p in g.named_parameters()) == {
        "weight_ih_l0": (4, 32, 3), "weight_hh_l0": (4, 32, 8), "bias_ih_l0": (4, 32), "bias_hh_l0": (4, 32),
        "weight_ih_l1": (4, 32, 8), "weight_hh_l1": (4, 32, 8), "bias_ih_l1": (4, 32), "bias_hh_l1": (4, 32),
    }
    f = FastGRNN(input_size=12, hidden_size=32, wrank=4)
    assert dict((n, tuple(p.shape)) for n, p in f.named_parameters()) == {
        "weight_ih_l0_left": (32, 4), "weight_ih_l0_right": (4, 12), "weight_hh_l0": (32, 32),
        "bias_gate_l0": (32,), "bias_update_l0": (32,), "zeta_l0": (1,), "nu_l0": (1,),
    }


def test_glstm_initialisation_is_pytorch_lstm_init_at_group_size() -> None:
    # Each group is an LSTM of Hg = 16 units: PyTorch draws U(-1/sqrt(Hg), 1/sqrt(Hg)).
    torch.manual_seed(0)
    m = GroupedLSTM(input_size=16, hidden_size=64, groups=4, num_layers=2)
    bound = 1.0 / np.sqrt(16)
    for name, p in m.named_parameters():
        assert float(p.abs().max()) <= bound, name
        assert float(p.abs().max()) > 0.9 * bound, name  # 256+ uniform draws reach the bound's last tenth


def test_default_fastgrnn_weights_are_edgeml_normal() -> None:
    """EdgeML's init: every weight matrix (full or low-rank factor) 0.1·N(0, 1).
    Catches a changed scale (std 1, PyTorch's U(±1/sqrt(H)) etc.) or a nonzero mean."""
    torch.manual_seed(0)
    m = FastGRNN(input_size=64, hidden_size=64, num_layers=2, wrank=32)
    for name in m.weight_names(0) + m.weight_names(1):
        w = getattr(m, name).detach()
        assert w.numel() >= 2048, name
        assert float(w.std()) == pytest.approx(0.1, rel=0.08), name  # SE of the std ≈ 1.6 % at n = 2048
        assert abs(float(w.mean())) < 0.01, name  # 4.5 standard errors


def test_macs_per_step_hand_count() -> None:
    # G-LSTM, per layer and group: 4·Hg gate rows × (Ig + Hg) columns.
    # layer 0: G=4, Hg=8, Ig=3 → 4 groups × 32 × 11 = 1408; layer 1: Ig=8 → 4 × 32 × 16 = 2048
    assert GroupedLSTM(input_size=12, hidden_size=32, groups=4, num_layers=2).macs_per_step() == 1408 + 2048
    # G=1 is a plain LSTM: 4H(I + H)
    assert GroupedLSTM(input_size=12, hidden_size=32, groups=1).macs_per_step() == 4 * 32 * 44
    # FastGRNN full rank: W 32×12 + U 32×32 = 384 + 1024
    assert FastGRNN(input_size=12, hidden_size=32).macs_per_step() == 1408
    # low rank: W through 12→4→32 = 48 + 128, U through 32→8→32 = 256 + 256; layer 2 (I=32): 4·(32+32) + 512
    assert FastGRNN(input_size=12, hidden_size=32, wrank=4, urank=8, num_layers=2).macs_per_step() == (
        176 + 512 + 256 + 512)


# ----------------------------------------------------------------------------- parametrize, errors


class _Mask(nn.Module):
    """Keep every other entry: what a pruning parametrization does."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(w.numel()) % 2 == 0).reshape(w.shape).to(w.dtype)
        return w * mask


@pytest.mark.parametrize("cls,kwargs,name,impl", [
    (GroupedLSTM, dict(groups=2), "weight_hh_l0", "fused"),
    (GroupedLSTM, dict(groups=2), "weight_ih_l0", "loop"),
    (FastGRNN, dict(), "weight_hh_l0", "fused"),
    (FastGRNN, dict(wrank=2), "weight_ih_l0_left", "fused"),
])
def test_parametrizations_apply_every_forward(cls, kwargs, name, impl) -> None:
    """A parametrization (what compression attaches) must change the computation."""
    torch.manual_seed(0)
    m = cls(input_size=4, hidden_size=4, impl=impl, **kwargs)
    x = torch.randn(2, 5, 4)
    before = m(x)[0]
    reference = cls(input_size=4, hidden_size=4, impl=impl, **kwargs)
    reference.load_state_dict(m.state_dict())
    with torch.no_grad():
        getattr(reference, name).copy_(_Mask()(getattr(reference, name)))
    parametrize.register_parametrization(m, name, _Mask())
    after = m(x)[0]
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, reference(x)[0])
    after.sum().backward()  # gradients reach the original tensor, zero where masked
    grad = getattr(m.parametrizations, name).original.grad
    assert grad is not None and grad.abs().sum() > 0
    assert torch.equal(grad.flatten()[1::2], torch.zeros_like(grad.flatten()[1::2]))


@pytest.mark.parametrize("make,match", [
    (lambda: GroupedLSTM(input_size=5, hidden_size=8, groups=2), "input_size=5 is not divisible"),
    (lambda: GroupedLSTM(input_size=4, hidden_size=6, groups=4), "not divisible by groups=4"),
    (lambda: GroupedLSTM(input_size=4, hidden_size=8, batch_first=False), "batch_first=True only"),
    (lambda: FastGRNN(input_size=4, hidden_size=8, batch_first=False), "batch_first=True only"),
    (lambda: FastGRNN(input_size=4, hidden_size=8, bidirectional=True), "unidirectional"),
    (lambda: FastGRNN(input_size=4, hidden_size=8, gate_nonlinearity="relu"), "gate_nonlinearity"),
    (lambda: FastGRNN(input_size=4, hidden_size=8, urank=0), "urank"),
    # int() used to truncate these silently: rank 1.5 -> 1, 2.7 -> 2, groups 2.5 -> 2
    (lambda: FastGRNN(input_size=4, hidden_size=8, urank=1.5), r"urank must be None or a whole number >= 1, got 1\.5"),
    (lambda: FastGRNN(input_size=4, hidden_size=8, wrank=2.7), r"wrank must be None or a whole number >= 1, got 2\.7"),
    (lambda: GroupedLSTM(input_size=10, hidden_size=10, groups=2.5), r"groups must be >= 1 \(a whole number\), got 2\.5"),
    (lambda: GroupedLSTM(input_size=4, hidden_size=8, groups=True), r"groups must be >= 1 \(a whole number\), got True"),
    (lambda: FastGRNN(input_size=4, hidden_size=8, dropout=1.0), "dropout"),
    (lambda: GroupedLSTM(input_size=4, hidden_size=8, dropout=-0.1), "dropout"),
    (lambda: FastGRNN(input_size=0, hidden_size=8), "input_size must be positive"),
    (lambda: GroupedLSTM(input_size=4, hidden_size=[8, 8], num_layers=1), "does not match hidden_size"),
    (lambda: FastGRNN(input_size=4, hidden_size=[8, 8, 8], num_layers=2), "does not match hidden_size"),
    # num_layers=0 was reported as "num_layers=0 does not match hidden_size=8"
    (lambda: GroupedLSTM(input_size=4, hidden_size=8, num_layers=0), r"^num_layers must be at least 1, got 0$"),
    (lambda: FastGRNN(input_size=4, hidden_size=8, num_layers=-1), r"^num_layers must be at least 1, got -1$"),
    (lambda: FastGRNN(input_size=4, hidden_size=[8, 0], num_layers=2), "hidden sizes must be positive"),
])
def test_bad_arguments(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("cls", [GroupedLSTM, FastGRNN])
def test_lengths_of_the_wrong_shape_are_a_clear_error(cls) -> None:
    """lengths must be (B,). Catches the shape check dropped: FastGRNN then broadcasts a
    single length over every row and runs silently; G-LSTM fails deep in the kernel."""
    m = cls(input_size=4, hidden_size=6)
    x = torch.randn(2, 5, 4)
    for lengths in (torch.tensor([3]), torch.tensor([[3], [5]]), torch.tensor([3, 5, 2])):
        with pytest.raises(ValueError, match=r"lengths must be \(B,\)"):
            m(x, lengths=lengths)


@pytest.mark.parametrize("cls", [GroupedLSTM, FastGRNN])
def test_input_of_the_wrong_form_is_a_clear_error(cls) -> None:
    """A 2-D or 4-D input, or a PackedSequence together with lengths, is refused with a
    ValueError. Catches the 3-D check dropped, and the packed-plus-lengths check dropped
    (the given lengths were then silently replaced by the packed ones)."""
    m = cls(input_size=4, hidden_size=6)
    for x in (torch.randn(5, 4), torch.randn(2, 3, 5, 4)):
        with pytest.raises(ValueError, match="3-D input"):
            m(x)
    packed = pack_padded_sequence(torch.randn(2, 5, 4), torch.tensor([5, 3]), batch_first=True)
    with pytest.raises(ValueError, match="not both"):
        m(packed, lengths=torch.tensor([5, 3]))


def test_glstm_groups_below_one_is_a_clear_error() -> None:
    """Catches a dropped groups check: groups=0 would die in a modulo by zero."""
    with pytest.raises(ValueError, match="groups must be >= 1"):
        GroupedLSTM(input_size=4, hidden_size=8, groups=0)
    with pytest.raises(ValueError, match="groups must be >= 1"):
        GroupedLSTM(input_size=4, hidden_size=8, groups=-2)


@pytest.mark.parametrize("impl", ["fused", "loop"])
def test_glstm_bad_state_is_a_clear_error(impl: str) -> None:
    """A G-LSTM state of the wrong shape is refused up front, as for FastGRNN and the
    LSTM layer, not left to the kernel (or to the loop's broadcasting)."""
    g = GroupedLSTM(input_size=4, hidden_size=8, groups=2, impl=impl)
    x = torch.randn(2, 5, 4)
    good = torch.zeros(1, 2, 8)
    for bad in (torch.zeros(1, 1, 8), torch.zeros(1, 2, 4), torch.zeros(2, 2, 8)):
        for state in ([(bad, good)], [(good, bad)]):
            with pytest.raises(ValueError, match=r"state must be \(1, 2, 8\)"):
                g(x, state)
    with pytest.raises(ValueError, match="tuple"):
        g(x, [good])


def test_bad_inputs() -> None:
    m = FastGRNN(input_size=4, hidden_size=8)
    with pytest.raises(ValueError, match="lengths"):
        m(torch.randn(2, 5, 4), lengths=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="lengths"):
        m(torch.randn(2, 5, 4), lengths=torch.tensor([6, 5]))
    with pytest.raises(ValueError, match="input features"):
        m(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="state must be"):
        m(torch.randn(2, 5, 4), [torch.zeros(1, 3, 8)])
    g = GroupedLSTM(input_size=4, hidden_size=8, num_layers=2)
    with pytest.raises(ValueError, match="the module has 2"):
        g(torch.randn(2, 5, 4), [(torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))])


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("cls,kwargs", [(GroupedLSTM, dict(groups=2)), (FastGRNN, dict(urank=4))])
def test_tiny_training_reduces_loss(cls, kwargs) -> None:
    """Classify the sign of a sequence's sum (variable lengths) with Adam."""
    torch.manual_seed(0)
    B, T, I = 64, 10, 2
    x = torch.randn(B, T, I)
    lengths = torch.randint(3, T + 1, (B,))
    valid = (torch.arange(T)[None, :] < lengths[:, None])[..., None]
    y = ((x * valid).sum((1, 2)) > 0).long()
    rnn = cls(input_size=I, hidden_size=16, **kwargs)
    head = nn.Linear(16, 2)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=0.03)

    def loss_fn() -> torch.Tensor:
        _, state = rnn(x, lengths=lengths)
        h = state[-1][0] if isinstance(state[-1], tuple) else state[-1]
        return nn.functional.cross_entropy(head(h[0]), y)

    first = loss_fn().item()
    for _ in range(40):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    last = loss_fn().item()
    assert last < 0.3 * first, (first, last)  # seeds 0-3 all reach < 0.15 · first


def test_task_model_uses_cells() -> None:
    """The lead's task models build these layers by name and round-trip their config."""
    models = pytest.importorskip("lstmlite.nn.models")
    for cell, options in (("glstm", {"groups": 4}), ("fastgrnn", {"wrank": 4, "urank": 8})):
        model = models.SequenceClassifier(input_size=12, hidden_size=32, n_classes=3, cell=cell,
                                          rnn_options=options)
        logits = model(torch.randn(4, 7, 12), lengths=torch.tensor([7, 3, 5, 1]))
        assert logits.shape == (4, 3)
        rebuilt = models.build_model(json.loads(json.dumps(model.config())))
        assert rebuilt.config() == model.config()
        assert model.macs_per_step() == model.rnn.macs_per_step()
