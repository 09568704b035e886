"""Beam and greedy search against exhaustive search on tiny vocabularies, with a
random recurrent decoder (the next distribution depends on the whole prefix) and on
the real Seq2Seq step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite.nn import Seq2Seq
from lstmlite.nn.seq2seq import BOS_ID, EOS_ID, select_state
from lstmlite.seq2seq import beam_search, decode_torch, exhaustive_search, greedy_search


def _random_decoder(vocab: int, seed: int, sharp: float = 2.0):
    """A tiny random RNN over token ids: state (K, 6); log-probs depend on the prefix."""
    rng = np.random.default_rng(seed)
    emb, w, out = rng.normal(size=(vocab, 6)), rng.normal(size=(6, 6)) * 0.8, rng.normal(size=(6, vocab)) * sharp

    def step(tokens, state):
        state = np.tanh(state @ w + emb[tokens])
        z = state @ out
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True)), state

    def reorder(state, index):
        return state[index]

    return step, reorder, np.zeros((1, 6))


@pytest.mark.parametrize("seed", range(12))
def test_a_wide_beam_finds_the_exhaustive_best(seed):
    vocab, eos, max_len = 4, 1, 4
    step, reorder, state = _random_decoder(vocab, seed)
    tokens = [t for t in range(vocab) if t != eos]
    best, best_score = exhaustive_search(step, state, reorder, 0, eos, max_len, tokens)
    # width >= every prefix that can be alive (3^3) keeps every hypothesis: exact
    found, score = beam_search(step, state, reorder, 0, eos, beam=27, max_len=max_len)
    assert found == best
    assert score == pytest.approx(best_score)
    # a narrow beam never beats the optimum, and width 2 never does worse than greedy
    narrow = beam_search(step, state, reorder, 0, eos, beam=2, max_len=max_len)[1]
    assert narrow <= best_score + 1e-12
    greedy = greedy_search(step, state, 0, eos, max_len)
    greedy_score = _score(step, state, greedy, eos, max_len)
    assert narrow >= greedy_score - 1e-12


def _score(step, state, tokens, eos, max_len, bos=0):
    total, prev = 0.0, bos
    for t in tokens + ([eos] if len(tokens) < max_len else []):
        lp, state = step(np.array([prev]), state)
        total += lp[0, t]
        prev = t
    return total


def test_beam_beats_greedy_where_the_first_token_misleads():
    # after <s>: a 0.6, b 0.4; after a: everything flat (0.25 each); after b: </s> 0.9
    table = {0: [0.0, 0.0, 0.6, 0.4], 2: [0.25] * 4, 3: [0.0, 0.9, 0.05, 0.05]}

    def step(tokens, state):
        return np.log(np.array([table[int(t)] for t in tokens]) + 1e-30), state

    greedy = greedy_search(step, None, 0, 1, max_len=3)
    beam, score = beam_search(step, None, lambda s, i: s, 0, 1, beam=2, max_len=3)
    assert greedy[0] == 2  # greedy took "a"
    assert beam == [3] and score == pytest.approx(np.log(0.4 * 0.9))


def test_length_limits():
    step, reorder, state = _random_decoder(5, 3, sharp=0.1)  # nearly flat: </s> rarely wins
    for max_len in (1, 2, 3):
        found, _ = beam_search(step, state, reorder, 0, 1, beam=3, max_len=max_len)
        assert len(found) <= max_len
        assert len(greedy_search(step, state, 0, 1, max_len)) <= max_len
    # min_len forbids </s> early: every hypothesis is at least that long
    found, _ = beam_search(step, state, reorder, 0, 1, beam=3, max_len=4, min_len=3)
    assert len(found) >= 3 and 1 not in found
    tokens = [0, 2, 3, 4]
    best, best_score = exhaustive_search(step, state, reorder, 0, 1, 3, tokens, min_len=2)
    found, score = beam_search(step, state, reorder, 0, 1, beam=64, max_len=3, min_len=2)
    assert found == best and score == pytest.approx(best_score)


def test_seq2seq_model_beam_matches_exhaustive_search():
    torch.manual_seed(1)
    model = Seq2Seq(vocab_size=6, embed_dim=4, hidden_size=5, attention="bahdanau", max_target_len=3).eval()
    x, lengths = torch.tensor([[4, 5, 4]]), torch.tensor([3])
    with torch.no_grad():
        memory, state = model.encode(x, lengths)

        def step(tokens, s):
            m = memory.select(torch.zeros(len(tokens), dtype=torch.long))
            logits, s, _ = model.step(torch.as_tensor(tokens), s, m)
            return logits.log_softmax(-1).double().numpy(), s

        def reorder(s, index):
            return select_state(s, torch.as_tensor(index))

        tokens = [t for t in range(6) if t != EOS_ID]
        best, _ = exhaustive_search(step, state, reorder, BOS_ID, EOS_ID, 3, tokens)
    assert decode_torch(model, x.numpy(), lengths.numpy(), "beam", beam=6 ** 2) == [best]
    # batched greedy decoding = greedy search one row at a time
    with torch.no_grad():
        assert decode_torch(model, x.numpy(), lengths.numpy(), "greedy") == [
            greedy_search(step, state, BOS_ID, EOS_ID, 3)]
