"""The importers' extra layers against independent oracles: nn.RNN, and a NumPy GRU loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite.importers.gates import ONNX_GRU, ONNX_LSTM, TORCH_GRU, TORCH_LSTM, reorder_gates
from lstmlite.importers.layers import GRUResetBefore, SimpleRNN


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_simple_rnn_matches_torch(nonlinearity: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    ref = torch.nn.RNN(3, 5, num_layers=2, nonlinearity=nonlinearity, bidirectional=bidirectional, batch_first=True)
    ours = SimpleRNN(3, 5, num_layers=2, nonlinearity=nonlinearity, bidirectional=bidirectional)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, 7, 3)
    lengths = torch.tensor([7, 2, 5, 1])
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], ref(x)[0])
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        ref_out, ref_h = ref(packed)
        ref_out = torch.nn.utils.rnn.pad_packed_sequence(ref_out, batch_first=True, total_length=7)[0]
        out, state = ours(x, lengths=lengths)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(torch.cat(state), ref_h)


def test_simple_rnn_stacked_bidirectional_initial_state_matches_torch() -> None:
    """An initial state (L*D, B, H) for 2 layers x 2 directions: layer k reads rows 2k and 2k+1, as
    nn.RNN does (catches the rows taken from k, which gives layer 1 rows 1 and 2)."""
    torch.manual_seed(3)
    ref = torch.nn.RNN(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    ours = SimpleRNN(3, 5, num_layers=2, bidirectional=True)
    ours.load_state_dict(ref.state_dict())
    x, h0 = torch.randn(2, 4, 3), torch.randn(4, 2, 5)
    with torch.no_grad():
        out, state = ours(x, h0)
        ref_out, ref_h = ref(x, h0)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(torch.cat(state), ref_h)


def _numpy_gru_reset_before(x, w_ih, w_hh, b_ih, b_hh, h0):
    """Cho et al. (2014) GRU, reset before the recurrent matrix, one sequence x (T, I)."""
    hidden = w_hh.shape[1]
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    h, outs = h0, []
    for xt in x:
        gi = w_ih @ xt + b_ih
        r = sig(gi[:hidden] + w_hh[:hidden] @ h + b_hh[:hidden])
        z = sig(gi[hidden:2 * hidden] + w_hh[hidden:2 * hidden] @ h + b_hh[hidden:2 * hidden])
        n = np.tanh(gi[2 * hidden:] + w_hh[2 * hidden:] @ (r * h) + b_hh[2 * hidden:])
        h = (1 - z) * n + z * h
        outs.append(h)
    return np.stack(outs), h


def test_gru_reset_before_matches_numpy_oracle_with_lengths() -> None:
    torch.manual_seed(1)
    layer = GRUResetBefore(3, 4, bidirectional=True).eval()
    x = torch.randn(3, 6, 3)
    lengths = torch.tensor([6, 2, 4])
    with torch.no_grad():
        out, (h,) = layer(x, lengths=lengths)
    p = {k: v.detach().double().numpy() for k, v in layer.named_parameters()}
    for b in range(3):
        seq = x[b, : lengths[b]].double().numpy()
        fwd, h_fwd = _numpy_gru_reset_before(seq, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"],
                                             p["bias_hh_l0"], np.zeros(4))
        bwd, h_bwd = _numpy_gru_reset_before(seq[::-1], p["weight_ih_l0_reverse"], p["weight_hh_l0_reverse"],
                                             p["bias_ih_l0_reverse"], p["bias_hh_l0_reverse"], np.zeros(4))
        expected = np.concatenate([fwd, bwd[::-1]], axis=1)
        np.testing.assert_allclose(out[b, : lengths[b]].numpy(), expected, atol=1e-6)
        assert torch.all(out[b, lengths[b]:] == 0)  # padded steps give zeros, as nn.GRU's packed path
        np.testing.assert_allclose(h[0, b].numpy(), h_fwd, atol=1e-6)
        np.testing.assert_allclose(h[1, b].numpy(), h_bwd, atol=1e-6)


def test_gru_reset_before_stacked_bidirectional_initial_state_matches_numpy_oracle() -> None:
    """Two bidirectional layers from a given (4, B, H) state: layer 0 runs from rows 0 (forward)
    and 1 (backward), layer 1 from rows 2 and 3, on layer 0's concatenated outputs (the NumPy
    loop above, layer by layer). Catches layer k's rows taken from k instead of 2k."""
    torch.manual_seed(4)
    layer = GRUResetBefore(3, 4, num_layers=2, bidirectional=True).eval()
    x, h0 = torch.randn(2, 5, 3), torch.randn(4, 2, 4)
    with torch.no_grad():
        out, (h_0, h_1) = layer(x, h0)
    p = {k: v.detach().double().numpy() for k, v in layer.named_parameters()}
    for b in range(2):
        seq = x[b].double().numpy()
        finals = []
        for k in range(2):
            names = [f"{w}_l{k}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            fwd, h_fwd = _numpy_gru_reset_before(seq, *(p[n] for n in names), h0[2 * k, b].double().numpy())
            bwd, h_bwd = _numpy_gru_reset_before(seq[::-1], *(p[f"{n}_reverse"] for n in names),
                                                 h0[2 * k + 1, b].double().numpy())
            seq = np.concatenate([fwd, bwd[::-1]], axis=1)
            finals += [h_fwd, h_bwd]
        np.testing.assert_allclose(out[b].numpy(), seq, atol=1e-6)
        np.testing.assert_allclose(torch.cat([h_0, h_1])[:, b].numpy(), np.stack(finals), atol=1e-6)


def test_gru_reset_before_differs_from_pytorch_gru() -> None:
    """The two GRU forms really differ (why GRUResetBefore exists)."""
    torch.manual_seed(2)
    ours = GRUResetBefore(3, 4)
    ref = torch.nn.GRU(3, 4, batch_first=True)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 3)
    assert (ours(x)[0] - ref(x)[0]).abs().max() > 1e-3


def test_reorder_gates_block_permutation() -> None:
    hidden = 2
    blocks = {g: np.full((hidden, 3), i) for i, g in enumerate(TORCH_LSTM)}  # i f g o
    torch_w = np.concatenate([blocks[g] for g in TORCH_LSTM])
    onnx_w = reorder_gates(torch_w, TORCH_LSTM, ONNX_LSTM)
    assert onnx_w[::hidden, 0].tolist() == [0, 3, 1, 2]  # i, o, f, c
    np.testing.assert_array_equal(reorder_gates(onnx_w, ONNX_LSTM, TORCH_LSTM), torch_w)
    gru = torch.arange(6.0)  # r r z z n n (H = 2)
    assert reorder_gates(gru, TORCH_GRU, ONNX_GRU).tolist() == [2, 3, 0, 1, 4, 5]
    with pytest.raises(ValueError):
        reorder_gates(np.zeros(7), TORCH_GRU, ONNX_GRU)


def test_keras_gate_orders_are_the_documented_ones() -> None:
    """Keras stacks an LSTM kernel's columns as i, f, c, o and a GRU's as z, r, h (the Keras
    docs' order, written out here): taken to ONNX (i, o, f, c / z, r, h) and to PyTorch (i, f, g, o
    / r, z, n) each block lands where those specs put it (catches a wrong public KERAS_LSTM, which
    the Keras importer does not use: a user converting with it would get swapped gates)."""
    from lstmlite.importers.gates import KERAS_GRU, KERAS_LSTM

    keras_lstm = np.repeat(np.array([[10, 11, 12, 13]]), 2, axis=1)  # i i f f c c o o, Keras's (I, 4H)
    assert reorder_gates(keras_lstm, KERAS_LSTM, ONNX_LSTM, axis=1)[0, ::2].tolist() == [10, 13, 11, 12]
    assert reorder_gates(keras_lstm, KERAS_LSTM, TORCH_LSTM, axis=1)[0, ::2].tolist() == [10, 11, 12, 13]
    keras_gru = np.array([[20, 21, 22]])  # z r h (H = 1)
    assert reorder_gates(keras_gru, KERAS_GRU, ONNX_GRU, axis=1)[0].tolist() == [20, 21, 22]
    assert reorder_gates(keras_gru, KERAS_GRU, TORCH_GRU, axis=1)[0].tolist() == [21, 20, 22]
