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


def test_seq2seq_beam_decoding_of_a_batch_searches_each_row_with_its_own_source():
    """decode_torch's beam search over a 3-row batch: each row's result is the
    exhaustive best for that row's source alone.
    Catches: the beam's hypotheses attending to the batch's first rows instead of their own."""
    torch.manual_seed(6)
    model = Seq2Seq(vocab_size=6, embed_dim=4, hidden_size=5, attention="luong", max_target_len=3).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(5.0)  # sharper distributions: the rows' best outputs differ
    x, lengths = torch.tensor([[4, 5, 4], [5, 5, 0], [4, 0, 0]]), torch.tensor([3, 2, 1])
    tokens = [t for t in range(6) if t != EOS_ID]
    expected = []
    with torch.no_grad():
        for row in range(3):
            memory, state = model.encode(x[row:row + 1], lengths[row:row + 1])

            def step(toks, s, memory=memory):
                m = memory.select(torch.zeros(len(toks), dtype=torch.long))
                logits, s, _ = model.step(torch.as_tensor(toks), s, m)
                return logits.log_softmax(-1).double().numpy(), s

            def reorder(s, index):
                return select_state(s, torch.as_tensor(index))

            expected.append(exhaustive_search(step, state, reorder, BOS_ID, EOS_ID, 3, tokens)[0])
    assert len({tuple(e) for e in expected}) == 3  # the rows' answers differ
    assert decode_torch(model, x.numpy(), lengths.numpy(), "beam", beam=6 ** 2) == expected


def test_min_len_forbids_eos_before_exactly_that_many_tokens():
    """A decoder that always prefers </s> (0.7; token 2: 0.2, token 3: 0.1): with
    ``min_len`` 2 greedy and beam search both stop right after 2 tokens, scored (hand
    worked) 2 ln 0.2 + ln 0.7. Catches: </s> forbidden one step too long (``<=``)."""
    def step(tokens, state):
        return np.log(np.tile([1e-30, 0.7, 0.2, 0.1], (len(tokens), 1))), state

    assert greedy_search(step, None, 0, 1, max_len=5, min_len=2) == [2, 2]
    found, score = beam_search(step, None, lambda s, i: s, 0, 1, beam=3, max_len=5, min_len=2)
    assert found == [2, 2] and score == pytest.approx(2 * np.log(0.2) + np.log(0.7))


def _brute_force_best(step, state, eos: int, max_len: int, vocab: int, length_penalty: float):
    """Every token sequence up to ``max_len``: finished by </s> (its length counts
    </s>) or cut at ``max_len``; score = sum of log-probs / length ** length_penalty."""
    best = (-np.inf, None)

    def visit(prefix, total, prev, st):
        nonlocal best
        log_probs, st = step(np.array([prev]), st)
        candidates = [(total + log_probs[0, eos], prefix, len(prefix) + 1)]
        for t in range(vocab):
            if t != eos and len(prefix) + 1 == max_len:
                candidates.append((total + log_probs[0, t], prefix + [t], max_len))
        for score, tokens, length in candidates:
            if score / length ** length_penalty > best[0]:
                best = (score / length ** length_penalty, tokens)
        if len(prefix) + 1 < max_len:
            for t in range(vocab):
                if t != eos:
                    visit(prefix + [t], total + log_probs[0, t], t, st)

    visit([], 0.0, 0, state)
    return best[1], best[0]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("length_penalty", [0.5, 1.0])
def test_length_penalty_scores_divide_by_the_length_with_eos(seed: int, length_penalty: float):
    """With a beam keeping every prefix, beam search with a length penalty finds the
    brute-force best of sum(log p) / length ** penalty (``</s>`` counted in the length).
    Catches: the finished length taken without its </s>."""
    vocab, eos, max_len = 4, 1, 3
    step, reorder, state = _random_decoder(vocab, seed, sharp=1.0)
    best, best_score = _brute_force_best(step, state, eos, max_len, vocab, length_penalty)
    found, score = beam_search(step, state, reorder, 0, eos, beam=27, max_len=max_len,
                               length_penalty=length_penalty)
    assert found == best and score == pytest.approx(best_score)


@pytest.mark.parametrize("min_len", [0, 2])
def test_batched_greedy_decoding_respects_min_len(min_len: int):
    """The Seq2Seq's </s> bias raised so it wins every step: batched greedy decoding
    stops each row after exactly ``min_len`` tokens, as greedy search does row by row.
    Catches: the batched decoder forbidding </s> one step too long."""
    torch.manual_seed(2)
    model = Seq2Seq(vocab_size=7, embed_dim=4, hidden_size=5, attention="luong", max_target_len=5).eval()
    with torch.no_grad():
        model.head.bias[EOS_ID] += 20.0
    x, lengths = torch.tensor([[4, 5, 6], [6, 4, 0]]), torch.tensor([3, 2])
    rows = decode_torch(model, x.numpy(), lengths.numpy(), "greedy", min_len=min_len)
    assert [len(r) for r in rows] == [min_len, min_len]
    assert all(EOS_ID not in r for r in rows)
    with torch.no_grad():
        memory, state = model.encode(x, lengths)
        for row in range(2):
            mem, st = memory.select(torch.tensor([row])), select_state(state, torch.tensor([row]))

            def step(tokens, s, mem=mem):
                logits, s, _ = model.step(torch.as_tensor(tokens), s, mem)
                return logits.log_softmax(-1).double().numpy(), s

            assert rows[row] == greedy_search(step, st, BOS_ID, EOS_ID, 5, min_len)


def test_length_penalty_hand_worked():
    """After <s>: </s> 0.5, a 0.5; after a: </s> 0.9, a 0.1; max_len 3; penalty 1.
    "" scores ln 0.5 / 1 = -0.69, "a" ln 0.45 / 2 = -0.40, "a a" ln 0.045 / 3 = -1.03,
    "a a a" (cut) ln 0.005 / 3 = -1.77: "a" wins. Catches: </s> left out of the length
    ("a" would score ln 0.45 / 1 = -0.80 and "" win)."""
    table = {0: [1e-30, 0.5, 0.5], 2: [1e-30, 0.9, 0.1]}

    def step(tokens, state):
        return np.log(np.array([table[int(t)] for t in tokens])), state

    found, score = beam_search(step, None, lambda s, i: s, 0, 1, beam=4, max_len=3, length_penalty=1.0)
    assert found == [2] and score == pytest.approx(np.log(0.45) / 2)


def test_batched_greedy_decoding_rows_that_stop_early_stay_stopped():
    """Rows that emit </s> at different steps: batched greedy decoding equals greedy
    search row by row. Catches: a row's finished flag reset when a later step's argmax
    is not </s> again, so tokens after its </s> are appended."""
    torch.manual_seed(10)
    model = Seq2Seq(vocab_size=8, embed_dim=4, hidden_size=5, attention="luong", max_target_len=8).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(4.0)  # sharper distributions: rows diverge and stop at different steps
    x = torch.randint(4, 8, (12, 5))
    lengths = torch.tensor([5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5, 3])
    rows = decode_torch(model, x.numpy(), lengths.numpy(), "greedy", max_len=8)
    expected = []
    with torch.no_grad():
        memory, state = model.encode(x, lengths)
        for row in range(len(x)):
            mem, st = memory.select(torch.tensor([row])), select_state(state, torch.tensor([row]))

            def step(tokens, s, mem=mem):
                logits, s, _ = model.step(torch.as_tensor(tokens), s, mem)
                return logits.log_softmax(-1).double().numpy(), s

            expected.append(greedy_search(step, st, BOS_ID, EOS_ID, 8))
    assert len({len(r) for r in expected}) > 1 and min(len(r) for r in expected) < 8  # rows stop at different steps
    assert rows == expected


def test_decode_limits_refuse_a_max_len_of_0_and_a_negative_min_len():
    """max_len None is the model's default; 0 (no tokens) and a negative min_len are errors,
    as the docstring says. Catches 0 silently taken for the default."""
    from lstmlite.seq2seq import decode_limits

    assert decode_limits(None, 0, 12) == 12 and decode_limits(3, 1, 12) == 3
    with pytest.raises(ValueError, match="max_len"):
        decode_limits(0, 0, 12)
    with pytest.raises(ValueError, match="min_len"):
        decode_limits(5, -1, 12)


def test_beam_hypotheses_keep_their_own_states_when_the_beam_reorders():
    """A decoder whose state is each hypothesis's prefix (the next distribution looked up by
    the whole prefix, so a hypothesis continued from another's state reads the wrong row):
    after <s> a 0.6, b 0.4; after a: a 0.5, b 0.5; after b: a 0.1, b 0.9; after "b b":
    </s> 1.0; after any other two tokens </s> 0.2, a 0.4, b 0.4. Width 2 keeps "b b" (0.36,
    the second row's child) before "a a" (0.3), and "b b" + </s> wins with ln 0.36
    (hand-worked); the same as the exhaustive search.
    Catches: the states not reordered with their hypotheses (every row continuing row 0's
    state), which scores "b b" by the table of "a b" and returns "b b a"."""
    table = {(): [0, 0, .6, .4], (2,): [0, 0, .5, .5], (3,): [0, 0, .1, .9], (3, 3): [0, 1.0, 0, 0]}

    def step(tokens, state):
        state = [p if t == 0 else p + (int(t),) for p, t in zip(state, tokens)]
        return np.log(np.array([table.get(p, [0, .2, .4, .4]) for p in state]) + 1e-30), state

    def reorder(state, index):
        return [state[i] for i in index]

    found, score = beam_search(step, [()], reorder, 0, 1, beam=2, max_len=3)
    assert found == [3, 3] and score == pytest.approx(np.log(0.36))
    assert exhaustive_search(step, [()], reorder, 0, 1, 3, [2, 3])[0] == [3, 3]


def test_searches_refuse_limits_they_cannot_keep():
    """greedy_search and beam_search called directly check their limits as decode_torch
    does: max_len 0, a negative min_len, a beam of 0 are errors, not an empty output.
    Catches: greedy_search's check dropped (max_len=0 silently decodes nothing), beam 0
    accepted (no hypothesis kept: ([], -inf))."""
    step, reorder, state = _random_decoder(4, 0)
    with pytest.raises(ValueError, match="max_len"):
        greedy_search(step, state, 0, 1, max_len=0)
    with pytest.raises(ValueError, match="min_len"):
        greedy_search(step, state, 0, 1, max_len=3, min_len=-1)
    with pytest.raises(ValueError, match="beam"):
        beam_search(step, state, reorder, 0, 1, beam=0, max_len=3)
    with pytest.raises(ValueError, match="max_len"):
        beam_search(step, state, reorder, 0, 1, beam=2, max_len=0)


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_decoding_leaves_the_model_in_the_mode_it_found(decoder: str):
    """decode_torch decodes in eval mode (dropout off: the same output whether the model
    was training) and hands the model back as it found it, training or not.
    Catches: a training model left in eval mode after an evaluation (no dropout for the
    rest of training)."""
    torch.manual_seed(4)
    model = Seq2Seq(vocab_size=7, embed_dim=4, hidden_size=5, attention="luong", dropout=0.5, max_target_len=4)
    x, lengths = np.array([[4, 5, 6], [6, 4, 0]]), np.array([3, 2])
    found = decode_torch(model.train(), x, lengths, decoder, beam=2)
    assert model.training
    assert decode_torch(model.eval(), x, lengths, decoder, beam=2) == found
    assert not model.training


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_decoding_in_batches_reads_each_rows_own_length(decoder: str):
    """Six sources of lengths 8, 6, 5, 3, 2, 1 decoded two at a time: each row's output
    is the one it gets decoded alone, cut to its own length (no padding at all).
    Catches: every batch after the first read with the first batch's lengths."""
    from .conftest import padded_sources

    torch.manual_seed(2)
    model = Seq2Seq(vocab_size=15, embed_dim=6, hidden_size=8, attention="luong", max_target_len=6).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(3.0)  # sharp: the outputs depend on the source
        model.head.bias[EOS_ID] -= 30.0  # no </s>: six tokens a row, all from the search
    x, lengths = padded_sources()
    alone = [decode_torch(model, x[b:b + 1, :n], lengths[b:b + 1], decoder, beam=3)[0] for b, n in enumerate(lengths)]
    assert len({tuple(r) for r in alone}) >= 4  # the premise: the rows' outputs differ
    assert decode_torch(model, x, lengths, decoder, beam=3, batch_size=2) == alone


def test_the_docstring_examples_hold():
    """The examples in lstmlite.seq2seq's docstrings are run (nothing else runs them), so they
    stay true of the code."""
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module("lstmlite.seq2seq")).failed == 0
