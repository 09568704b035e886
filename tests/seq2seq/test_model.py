"""Seq2Seq: the attention math against hand-written NumPy formulas from the papers (and
PyTorch's scaled_dot_product_attention for dot scores), teacher forcing against the
step-by-step decoder, padding, and config round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite.nn import Seq2Seq, build_model
from lstmlite.nn.seq2seq import BOS_ID, Memory, select_state

torch.manual_seed(0)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _memory(model: Seq2Seq, batch: int = 3, steps: int = 6) -> tuple[Memory, np.ndarray]:
    values = torch.randn(batch, steps, model.encoder.output_size)
    lengths = np.array([steps, 4, 1][:batch])
    mask = torch.as_tensor(np.arange(steps)[None] < lengths[:, None])
    return Memory(values, model._keys(values), mask), lengths


@pytest.mark.parametrize("score", ["general", "dot"])
def test_luong_attention_matches_the_paper_formula(score):
    # Luong et al. 2015, eq. 7-8: score = h_t^T W_a h_s (general) or h_t^T h_s (dot);
    # a_t = softmax over source positions; c_t = sum_s a_t(s) h_s
    model = Seq2Seq(vocab_size=9, embed_dim=4, hidden_size=5, bidirectional=True, decoder_hidden_size=10,
                    attention="luong", score=score).double()
    memory, lengths = _memory(model.float())
    query = torch.randn(3, 2, 10)
    ctx, weights = model.attend(query, memory)
    H, q = _np(memory.values), _np(query)
    Wa = np.eye(10) if score == "dot" else _np(model.attn_key.weight)  # (Hd, C)
    for b in range(3):
        n = lengths[b]
        scores = q[b] @ Wa @ H[b, :n].T  # (S, n)
        a = _softmax(scores)
        np.testing.assert_allclose(_np(weights[b, :, :n]), a, atol=1e-5)
        assert np.all(_np(weights[b, :, n:]) == 0)  # padded source steps get exactly no weight
        np.testing.assert_allclose(_np(ctx[b]), a @ H[b, :n], atol=1e-5)


def test_dot_attention_matches_scaled_dot_product_attention():
    model = Seq2Seq(vocab_size=9, embed_dim=4, hidden_size=4, bidirectional=True, decoder_hidden_size=8,
                    attention="luong", score="dot")
    memory, _ = _memory(model)
    query = torch.randn(3, 5, 8)
    ctx, _ = model.attend(query, memory)
    ref = torch.nn.functional.scaled_dot_product_attention(
        query, memory.values, memory.values, attn_mask=memory.mask[:, None, :], scale=1.0)
    torch.testing.assert_close(ctx, ref, atol=1e-5, rtol=1e-5)


def test_bahdanau_attention_matches_the_paper_formula():
    # Bahdanau et al. 2015, appendix A.1.2: e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)
    model = Seq2Seq(vocab_size=9, embed_dim=4, hidden_size=5, bidirectional=True, attention="bahdanau",
                    attention_size=7)
    memory, lengths = _memory(model)
    query = torch.randn(3, 1, 5)
    ctx, weights = model.attend(query, memory)
    H, s = _np(memory.values), _np(query)
    Wq, bq = _np(model.attn_query.weight), _np(model.attn_query.bias)
    Uk, v = _np(model.attn_key.weight), _np(model.attn_v.weight)[0]
    for b in range(3):
        n = lengths[b]
        e = np.array([v @ np.tanh(Wq @ s[b, 0] + bq + Uk @ H[b, j]) for j in range(n)])
        a = _softmax(e)
        np.testing.assert_allclose(_np(weights[b, 0, :n]), a, atol=1e-5)
        np.testing.assert_allclose(_np(ctx[b, 0]), a @ H[b, :n], atol=1e-5)


@pytest.mark.parametrize("attention", ["luong", "bahdanau", "none"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_teacher_forcing_equals_the_decoder_run_step_by_step(attention, cell):
    model = Seq2Seq(vocab_size=12, embed_dim=6, hidden_size=8, cell=cell, attention=attention,
                    decoder_layers=2).eval()
    x = torch.randint(4, 12, (3, 7))
    lengths = torch.tensor([7, 3, 5])
    y = torch.randint(4, 12, (3, 4))
    logits = model(x, lengths, y)
    memory, state = model.encode(x, lengths)
    prev = torch.full((3,), BOS_ID)
    for t in range(4):
        step_logits, state, _ = model.step(prev, state, memory)
        torch.testing.assert_close(step_logits, logits[:, t], atol=1e-5, rtol=1e-5)
        prev = y[:, t]


def test_padding_does_not_change_a_row():
    model = Seq2Seq(vocab_size=12, embed_dim=6, hidden_size=8, attention="luong").eval()
    x = torch.randint(4, 12, (2, 9))
    x[1, 4:] = 0
    y = torch.randint(4, 12, (2, 5))
    both = model(x, torch.tensor([9, 4]), y)
    alone = model(x[1:, :4], torch.tensor([4]), y[1:])
    torch.testing.assert_close(both[1:], alone, atol=1e-5, rtol=1e-5)


def test_config_round_trip_and_errors():
    model = Seq2Seq(vocab_size=20, embed_dim=8, hidden_size=16, cell="gru", attention="bahdanau", attention_size=5,
                    max_target_len=30)
    rebuilt = build_model(model.config())
    assert rebuilt.config() == model.config()
    rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2Seq(vocab_size=20, attention="multihead")
    with pytest.raises(ValueError, match="dot attention needs"):
        Seq2Seq(vocab_size=20, hidden_size=8, bidirectional=True, attention="luong", score="dot")
    with pytest.raises(ValueError, match="lstm or gru"):
        Seq2Seq(vocab_size=20, cell="fastgrnn")
    with pytest.raises(ValueError, match=r"source must be \(B, T\) token ids"):
        model.encode(torch.randint(4, 20, (2, 3, 1)))


def test_parameter_and_mac_counts_by_hand():
    """Every weight the module doc names, counted by hand: catches an ignored
    attention_size (Bahdanau's A falling back to the decoder size) and W_c's MACs
    left out of macs_per_step."""
    V, E, H, Hd, A = 20, 8, 6, 10, 7
    model = Seq2Seq(vocab_size=V, embed_dim=E, hidden_size=H, bidirectional=True, decoder_hidden_size=Hd,
                    attention="bahdanau", attention_size=A)
    C = 2 * H
    lstm = lambda i, h: 4 * h * (i + h) + 2 * 4 * h  # noqa: E731  W_ih, W_hh, b_ih, b_hh
    expected = (V * E                          # embedding
                + 2 * lstm(E, H)               # bidirectional encoder
                + C * Hd + Hd                  # bridge W_b, b
                + lstm(E + C, Hd)              # decoder reads [E y; ctx]
                + C * A + Hd * A + A + A       # W_k, W_q, b_q, v
                + (C + Hd) * Hd                # W_c (no bias)
                + Hd * V + V)                  # W_o, b_o
    assert model.params() == expected
    assert model.config()["attention_size"] == A and model.attn_v.in_features == A
    # per output token: decoder LSTM 4Hd(E + C + Hd), W_c (C + Hd)·Hd, head Hd·V
    assert model.macs_per_step() == 4 * Hd * (E + C + Hd) + (C + Hd) * Hd + Hd * V
    luong = Seq2Seq(vocab_size=V, embed_dim=E, hidden_size=H, bidirectional=False, attention="luong")
    assert luong.macs_per_step() == 4 * H * (E + H) + (H + H) * H + H * V
    none = Seq2Seq(vocab_size=V, embed_dim=E, hidden_size=H, bidirectional=False, attention="none")
    assert none.macs_per_step() == 4 * H * (E + H) + H * V


def test_lengths_default_to_the_non_pad_tokens():
    """Without lengths a source row's length is its count of non-<pad> (id 0) tokens, so a
    0-padded batch gives each row what it gives alone (catches lengths defaulting to T)."""
    torch.manual_seed(1)
    model = Seq2Seq(vocab_size=12, embed_dim=6, hidden_size=8, attention="luong").eval()
    x = torch.randint(4, 12, (3, 7))
    x[1, 3:], x[2, 5:] = 0, 0
    y = torch.randint(4, 12, (3, 4))
    batch = model(x, None, y)
    torch.testing.assert_close(batch, model(x, torch.tensor([7, 3, 5]), y), rtol=0, atol=0)
    for b, n in enumerate([7, 3, 5]):
        torch.testing.assert_close(batch[b:b + 1], model(x[b:b + 1, :n], None, y[b:b + 1]), atol=1e-5, rtol=1e-5)


def test_too_small_a_vocabulary_is_a_clear_error():
    """Four specials (<pad> <unk> <s> </s>) and at least one token: catches a dropped
    vocab_size >= 5 check."""
    with pytest.raises(ValueError, match="vocab_size must be at least 5"):
        Seq2Seq(vocab_size=4)


@pytest.mark.parametrize("kwargs", [{"max_target_len": 0}, {"embed_dim": 0}, {"hidden_size": 0}])
def test_sizes_below_1_are_refused_when_the_model_is_built(kwargs):
    """max_target_len, embed_dim and hidden_size of 0 are refused by the constructor,
    naming them. Catches: the max_target_len check dropped (a model that is built, saved
    and trained, and fails only when it first decodes)."""
    with pytest.raises(ValueError, match="embed_dim, hidden_size and max_target_len at least 1"):
        Seq2Seq(vocab_size=10, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"decoder_layers": 0}, "decoder_layers must be at least 1, got 0"),  # was "num_layers must be ..."
    ({"num_layers": 0}, "num_layers must be at least 1, got 0"),
    ({"decoder_hidden_size": -3}, "decoder_hidden_size must be at least 0 (0: the default), got -3"),  # was torch's
    ({"attention": "bahdanau", "attention_size": -2}, "attention_size must be at least 0 (0: the default), got -2"),
    ({"dropout": 1.5}, "dropout must be in [0, 1), got 1.5"),
])
def test_bad_sizes_name_the_seq2seq_option(kwargs, message):
    """decoder_layers=0 was blamed on num_layers (the decoder layer's own argument), and a
    negative decoder_hidden_size or attention_size died in torch ("Trying to create tensor
    with negative dimension -3")."""
    with pytest.raises(ValueError) as err:
        Seq2Seq(vocab_size=10, **kwargs)
    assert str(err.value) == message


def test_bahdanau_attention_size_defaults_to_the_decoder_hidden_size():
    """attention_size=0 means A = the decoder's hidden size (the documented default), not
    the encoder's output size C: W_k is (A, C), W_q (A, Hd), v (1, A)."""
    model = Seq2Seq(vocab_size=9, embed_dim=4, hidden_size=6, bidirectional=True, decoder_hidden_size=10,
                    attention="bahdanau")
    assert model.attn_key.weight.shape == (10, 12)
    assert model.attn_query.weight.shape == (10, 10)
    assert model.attn_v.weight.shape == (1, 10)
    assert model.config()["attention_size"] == 10


def test_dropout_acts_on_embeddings_and_the_attentional_state_in_training():
    """dropout (the module doc: on embeddings and on h~, in training) zeroes entries of the
    encoder's and the decoder's embedded inputs and of h~ and scales the rest by 1/(1-p);
    in eval it does nothing. Catches the encoder's embedding dropout left out."""
    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=12, embed_dim=16, hidden_size=8, attention="luong", dropout=0.5)
    seen = {}
    for name in ("encoder", "decoder", "head"):
        getattr(model, name).register_forward_pre_hook(lambda m, args, name=name: seen.__setitem__(name, args[0]))
    x, y = torch.randint(4, 12, (4, 6)), torch.randint(4, 12, (4, 5))
    prev = torch.cat([torch.full_like(y[:, :1], BOS_ID), y[:, :-1]], dim=1)
    for mode, p in (("train", 0.5), ("eval", 0.0)):
        getattr(model, mode)()
        model(x, torch.tensor([6, 6, 6, 6]), y)
        for name, ids in (("encoder", x), ("decoder", prev)):
            got, emb = seen[name].detach(), model.embedding(ids).detach()
            dropped = got == 0
            assert float(dropped.float().mean()) == pytest.approx(p, abs=0.12), (mode, name)
            torch.testing.assert_close(got[~dropped], emb[~dropped] / (1 - p))
        assert float((seen["head"] == 0).float().mean()) == pytest.approx(p, abs=0.12), mode


def test_dropout_acts_on_the_decoder_state_without_attention():
    """With ``attention="none"`` the head reads s_t itself: in training dropout zeroes
    about p of its entries and scales the rest by 1/(1-p) (the decoder's output at each
    step); in eval the head reads s_t unchanged.
    Catches: the dropout before the head left out when there is no attention."""
    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=12, embed_dim=8, hidden_size=16, attention="none", dropout=0.5)
    seen = {}
    model.head.register_forward_pre_hook(lambda m, args: seen.__setitem__("head", args[0]))
    model.decoder.register_forward_hook(lambda m, args, out: seen.__setitem__("s", out[0]))
    x, y = torch.randint(4, 12, (4, 6)), torch.randint(4, 12, (4, 5))
    for mode, p in (("train", 0.5), ("eval", 0.0)):
        getattr(model, mode)()
        model(x, torch.tensor([6, 6, 6, 6]), y)
        got, s = seen["head"].detach(), seen["s"].detach()
        dropped = got == 0
        assert float(dropped.float().mean()) == pytest.approx(p, abs=0.12), mode
        torch.testing.assert_close(got[~dropped], s[~dropped] / (1 - p))


def test_config_records_every_argument_and_rebuilds_the_same_model(rebuilt_from_config):
    """config() holds each non-default constructor argument as given and
    build_model(config()) with the same weights decodes the same logits. Catches score,
    num_layers or dropout written as their defaults (the round trip of a default model
    still agrees with itself; a stacked encoder's state dict then does not even load)."""
    kwargs = dict(vocab_size=15, embed_dim=6, cell="gru", hidden_size=5, num_layers=2, bidirectional=False,
                  decoder_hidden_size=5, decoder_layers=2, attention="luong", score="dot", dropout=0.25,
                  max_target_len=9)
    torch.manual_seed(0)
    model = Seq2Seq(**kwargs)
    rebuilt = rebuilt_from_config(model, kwargs)
    x, y = torch.randint(4, 15, (2, 6)), torch.randint(4, 15, (2, 4))
    lengths = torch.tensor([6, 3])
    torch.testing.assert_close(rebuilt(x, lengths, y), model.eval()(x, lengths, y), rtol=0, atol=0)


def _torch_rnn(ours, cell: str) -> torch.nn.Module:
    """torch.nn.LSTM/GRU (batch-first) with our layer's parameters (PyTorch's names)."""
    cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    ref = cls(ours.input_size, ours.hidden_size, num_layers=ours.num_layers, bidirectional=ours.bidirectional,
              batch_first=True).double()
    ref.load_state_dict({k: v.detach().double() for k, v in ours.state_dict().items()})
    return ref


def _reference_logits(model: Seq2Seq, x: torch.Tensor, n: int, y: torch.Tensor) -> np.ndarray:
    """One source row x (T,) of n valid tokens and its target y (S,) through the module doc's
    equations: torch.nn.LSTM/GRU for the recurrences, NumPy for bridge, attention and head."""
    p = {k: _np(v) for k, v in model.state_dict().items()}
    E = p["embedding.weight"]
    with torch.no_grad():
        enc_out, enc_state = _torch_rnn(model.encoder, model.cell)(torch.as_tensor(E[x[:n].numpy()])[None])
    values = _np(enc_out[0])  # (n, C)
    h_n = enc_state[0] if model.cell == "lstm" else enc_state  # (L*D, 1, H)
    d = 2 if model.encoder.bidirectional else 1
    summary = _np(h_n[-d:, 0].reshape(-1))  # [h_fwd at step n-1; h_bwd at step 0]
    hd, layers = model.decoder_hidden_size, model.decoder.num_layers
    h0 = np.tanh(p["bridge.weight"] @ summary + p["bridge.bias"]).reshape(layers, 1, 1, hd)
    h = torch.as_tensor(h0[:, 0])  # (L, 1, Hd)
    state = (h, torch.zeros_like(h)) if model.cell == "lstm" else h
    decoder = _torch_rnn(model.decoder, model.cell)

    def attend(q: np.ndarray) -> np.ndarray:
        if model.attention == "bahdanau":
            e = np.array([p["attn_v.weight"][0] @ np.tanh(p["attn_query.weight"] @ q + p["attn_query.bias"]
                                                          + p["attn_key.weight"] @ v) for v in values])
        else:
            e = values @ (p["attn_key.weight"].T @ q if model.score == "general" else q)
        return _softmax(e) @ values

    logits, prev = [], BOS_ID
    for t in range(len(y)):
        inp = E[prev]
        if model.attention == "bahdanau":  # the query is the top layer's previous h
            top = (state[0] if model.cell == "lstm" else state)[-1, 0]
            ctx = attend(_np(top))
            inp = np.concatenate([inp, ctx])
        with torch.no_grad():
            out, state = decoder(torch.as_tensor(inp)[None, None], state)
        s = _np(out[0, 0])
        if model.attention == "none":
            logits.append(p["head.weight"] @ s + p["head.bias"])
        else:
            if model.attention == "luong":
                ctx = attend(s)
            h_tilde = np.tanh(p["combine.weight"] @ np.concatenate([ctx, s]))  # W_c [ctx; s]
            logits.append(p["head.weight"] @ h_tilde + p["head.bias"])
        prev = int(y[t])
    return np.array(logits)


@pytest.mark.parametrize("attention", ["luong", "bahdanau", "none"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forward_matches_the_documented_equations(attention, cell):
    """Teacher-forced logits against the module doc's equations, written out with
    torch.nn.LSTM/GRU and NumPy: a 2-layer bidirectional encoder, a 2-layer decoder.
    Catches: the bridge reading the backward direction's last step instead of its first,
    every decoder layer started from the first layer's slice of the bridge, an LSTM's
    c_0 not zero, W_c applied to [s; ctx] instead of [ctx; s], Bahdanau's query not
    the previous top-layer state."""
    torch.manual_seed(3)
    model = Seq2Seq(vocab_size=11, embed_dim=5, hidden_size=4, num_layers=2, bidirectional=True, cell=cell,
                    decoder_hidden_size=6, decoder_layers=2, attention=attention).eval()
    x = torch.tensor([[4, 9, 6, 10, 5], [7, 8, 5, 0, 0]])
    lengths = torch.tensor([5, 3])
    y = torch.tensor([[5, 6, 7, 3], [9, 3, 0, 0]])
    with torch.no_grad():
        logits = model(x, lengths, y)
    for b in range(2):
        ref = _reference_logits(model, x[b], int(lengths[b]), y[b])
        np.testing.assert_allclose(_np(logits[b]), ref, atol=1e-5)


def test_select_state_picks_batch_rows_of_lstm_and_gru_states():
    """Rows [2, 2, 0] of an LSTM layer's (h, c) and of a GRU layer's h, each (1, B, H),
    written out by index. Catches a GRU (tensor) state passed through unselected."""
    h, c, g = (torch.arange(12.0).reshape(1, 3, 4) + k for k in (0, 100, 200))
    index = torch.tensor([2, 2, 0])
    (h2, c2), g2 = select_state([(h, c), g], index)
    for got, src in ((h2, h), (c2, c), (g2, g)):
        assert got.shape == (1, 3, 4)
        assert got[0].tolist() == [src[0, 2].tolist(), src[0, 2].tolist(), src[0, 0].tolist()]


@pytest.mark.parametrize("attention", ["luong", "bahdanau", "none"])
def test_step_returns_the_attention_weights_it_used(attention):
    """step's third output (the module doc: weights (B, T) or None) against the papers'
    formulas in NumPy from the module's weights: Luong's softmax of s_t^T W_a H_i over each
    row's valid steps (s_t the decoder's new output), Bahdanau's softmax of
    v^T tanh(W_q s_{t-1} + b_q + W_k H_i) (s_{t-1} the top layer's state before the step);
    0 past each row's length; None without attention.
    Catches: the weights not returned (None for every model), or another row's or step's."""
    torch.manual_seed(5)
    model = Seq2Seq(vocab_size=9, embed_dim=4, hidden_size=3, bidirectional=True, attention=attention).eval()
    x, lengths = torch.tensor([[4, 5, 6, 7], [8, 4, 0, 0]]), torch.tensor([4, 2])
    seen = {}
    model.decoder.register_forward_hook(lambda m, args, out: seen.__setitem__("s", out[0][:, 0]))
    with torch.no_grad():
        memory, state = model.encode(x, lengths)
        for token in (torch.tensor([2, 2]), torch.tensor([5, 7])):
            before = _np(state[0][0][0])  # (B, Hd): s_{t-1}, one decoder layer
            _, state, weights = model.step(token, state, memory)
            if attention == "none":
                assert weights is None
                continue
            p = {k: _np(v) for k, v in model.state_dict().items()}
            H, s = _np(memory.values), _np(seen["s"])
            for b, n in enumerate(lengths.tolist()):
                if attention == "luong":
                    e = s[b] @ p["attn_key.weight"] @ H[b, :n].T
                else:
                    e = np.array([p["attn_v.weight"][0] @ np.tanh(p["attn_query.weight"] @ before[b]
                                                                   + p["attn_query.bias"] + p["attn_key.weight"] @ h)
                                  for h in H[b, :n]])
                np.testing.assert_allclose(_np(weights[b, :n]), _softmax(e), atol=1e-6)
                assert np.all(_np(weights[b, n:]) == 0)


def test_the_docstring_examples_hold():
    """The examples in lstmlite.nn.seq2seq's docstrings are run (nothing else runs them), so they
    stay true of the code."""
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module("lstmlite.nn.seq2seq")).failed == 0
