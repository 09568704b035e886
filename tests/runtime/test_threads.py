"""Batched runs split across threads: the same numbers as one thread on every kernel
level (bit for bit with dynamic int8 activations, whose products are integers; within
1e-5 in float, where a chunk's row count can change a kernel's tiling or method), with lengths,
tokens and a carried state (whose rows are gathered per chunk and scattered back), and
the torch oracle still matched."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmlite import runtime as rt
from lstmlite.runtime import engine as engine_module

from .conftest import rel_err
from .test_engine import torch_layer, torch_state_vector

#: Engine.threads_for's work per thread, before every_batch_splits sets it to 1
DEFAULT_MIN_MACS = engine_module.MIN_MACS_PER_THREAD


@pytest.fixture(autouse=True)
def every_batch_splits(monkeypatch):
    """These tests check the split itself, on small models whose runs hold far less work
    than run() gives a thread by default (Engine.threads_for): here any work is enough."""
    monkeypatch.setattr(engine_module, "MIN_MACS_PER_THREAD", 1)


def test_a_run_with_little_work_uses_fewer_threads(monkeypatch):
    """At most one thread per MIN_MACS_PER_THREAD multiply-adds of the run (4 M), one per
    sequence, and `threads`: an LSTM with I=40, H=128 does 4 x 128 x (40 + 128) = 86,016
    a step and sequence (counted by hand here, not by the runtime)."""
    monkeypatch.setattr(engine_module, "MIN_MACS_PER_THREAD", DEFAULT_MIN_MACS)
    assert DEFAULT_MIN_MACS == 4_000_000
    per_step = 4 * 128 * (40 + 128)
    engine = rt.Engine.from_torch(torch.nn.LSTM(40, 128, batch_first=True), threads=8)
    for batch, steps in [(4, 10), (5, 10), (10, 10), (3, 100), (32, 100), (2, 2000)]:
        want = max(1, min(8, batch, batch * steps * per_step // 4_000_000))
        assert engine.threads_for(batch, steps) == want, (batch, steps)
    assert [engine.threads_for(b, t) for b, t in [(4, 10), (10, 10), (3, 100), (32, 100)]] == [1, 2, 3, 8]
    engine.threads = 1
    assert engine.threads_for(32, 100) == 1


class _CountingModel:
    """The engine's native model, recording the thread count each run() passes it."""

    def __init__(self, model):
        self._model, self.threads = model, []

    def run(self, *args):
        self.threads.append(args[-1])
        return self._model.run(*args)

    def __getattr__(self, name):
        return getattr(self._model, name)


def test_run_passes_the_thread_count_on_both_of_its_paths(monkeypatch):
    """run()'s fast path (float32 features from zeros) and its general one (lengths, a
    state) both hand the native run threads_for's count, not `threads` as set."""
    monkeypatch.setattr(engine_module, "MIN_MACS_PER_THREAD", DEFAULT_MIN_MACS)
    engine = rt.Engine.from_torch(torch.nn.LSTM(40, 128, batch_first=True), threads=4)
    counting = _CountingModel(engine._model)
    engine._model = counting
    small = np.zeros((4, 10, 40), np.float32)
    large = np.zeros((6, 100, 40), np.float32)
    engine.run(small)
    engine.run(large)
    engine.run(small, lengths=[10, 9, 8, 7])
    engine.run(large, state=engine.new_state(6))
    assert counting.threads == [1, 4, 1, 4]


# (cell, input, hidden, layers, bidirectional, proj)
LAYERS = [
    ("lstm", 13, 37, 1, False, 0),
    ("gru", 7, 16, 3, True, 0),
    ("lstm", 6, 20, 2, False, 7),   # projection: h and c blocks have different widths
    ("lstm", 8, 16, 2, True, 0),
]
FORMS = [("fp32", "float"), ("int8", "float"), ("int8", "dynamic")]


@pytest.mark.parametrize("cfg", LAYERS, ids=lambda c: f"{c[0]}-l{c[3]}{'-bi' if c[4] else ''}{'-p' if c[5] else ''}")
@pytest.mark.parametrize("form", FORMS, ids=lambda f: f"{f[0]}-{f[1]}")
@pytest.mark.parametrize("batch,threads", [(5, 2), (7, 3), (2, 8)])
def test_threaded_run_equals_one_thread(isa, cfg, form, batch, threads):
    cell, i, h, layers, bidir, proj = cfg
    module = torch_layer(cell, i, h, layers, bidir, proj, True)
    engine = rt.Engine.from_torch(module, weights=form[0], activations=form[1])
    rng = np.random.default_rng(batch * 10 + threads)
    x = rng.standard_normal((batch, 9, i)).astype(np.float32)
    lengths = rng.integers(1, 10, batch)
    one = engine.run(x, lengths=lengths)
    whole = engine.run(x)
    engine.threads = threads
    many = engine.run(x, lengths=lengths)
    if form[1] == "dynamic":
        np.testing.assert_array_equal(many, one)
        np.testing.assert_array_equal(engine.run(x), whole)
    else:
        # a chunk's row count can pick another kernel variant (the AVX2 float-activation
        # int8 GEMM changes method at 32 rows): both within the form's 1e-5 promise
        assert rel_err(many, one) < 1e-5
        assert rel_err(engine.run(x), whole) < 1e-5
    # a wrong chunking (rows dropped, swapped or zeroed) would be far off
    assert np.abs(many).max() > 0.01


@pytest.mark.parametrize("cfg", LAYERS[:3], ids=lambda c: f"{c[0]}-l{c[3]}{'-p' if c[5] else ''}")
def test_threaded_run_carries_each_rows_state(isa, cfg):
    """Start from a given state and read back the final one: both must be the rows of
    the caller's state, in the runtime's layout, as torch computes them."""
    cell, i, h, layers, bidir, proj = cfg
    module = torch_layer(cell, i, h, layers, bidir, proj, True)
    batch, steps = 5, 6
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, steps, i)).astype(np.float32)
    out_size = proj or h
    d = 2 if bidir else 1
    h0 = torch.from_numpy(rng.standard_normal((layers * d, batch, out_size)).astype(np.float32))
    c0 = torch.from_numpy(rng.standard_normal((layers * d, batch, h)).astype(np.float32))
    init = (h0, c0) if cell == "lstm" else h0
    with torch.no_grad():
        ref, final = module(torch.from_numpy(x), init)
    engine = rt.Engine.from_torch(module, threads=3)
    state = engine.new_state(batch)
    state.load(torch_state_vector(init, layers, bidir))
    got = engine.run(x, state=state)
    assert rel_err(got, ref.numpy()) < 1e-5
    assert rel_err(state.values(), torch_state_vector(final, layers, bidir)) < 1e-5


def test_threaded_token_model_equals_one_thread(isa):
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(vocab_size=50, embed_dim=8, hidden_size=12, n_classes=4).eval()
    tokens = np.random.default_rng(0).integers(0, 50, (6, 11)).astype(np.int64)
    one = rt.Engine.from_torch(model).run(tokens)
    many = rt.Engine.from_torch(model, threads=4).run(tokens)
    assert rel_err(many, one) < 1e-6
    with torch.no_grad():
        ref = model(torch.from_numpy(tokens)).numpy()
    assert rel_err(many, ref) < 1e-5


@pytest.mark.parametrize("bad", [0, -1, 65, 1.5, True, "2"])
def test_threads_out_of_range_are_refused(bad):
    engine = rt.Engine.from_torch(torch.nn.GRU(3, 4, batch_first=True))
    with pytest.raises(ValueError, match="threads"):
        engine.threads = bad
    with pytest.raises(ValueError, match="threads"):
        rt.Engine.from_torch(torch.nn.GRU(3, 4, batch_first=True), threads=bad)
    with pytest.raises(ValueError, match="threads"):
        rt.Engine.from_state_dict(_gru_state(), cell="gru", threads=bad)


def test_threads_take_every_value_up_to_the_c_runtime_s_limit():
    """``threads`` is valid from 1 to LSL_MAX_THREADS, lsl.h's limit (read from the
    header, not from engine.py): the top value is taken and runs, as one thread does
    (a batch smaller than the threads: one sequence a chunk), and one more is refused."""
    header = (Path(rt.__file__).parent / "lsl.h").read_text()
    limit = int(re.search(r"#define LSL_MAX_THREADS (\d+)", header).group(1))
    engine = rt.Engine.from_torch(torch.nn.GRU(3, 4, batch_first=True), threads=limit)
    assert engine.threads == limit
    x = np.random.default_rng(0).standard_normal((3, 5, 3)).astype(np.float32)
    many = engine.run(x)
    engine.threads = 1
    assert rel_err(many, engine.run(x)) < 1e-6
    with pytest.raises(ValueError, match="threads"):
        engine.threads = limit + 1


def _gru_state() -> dict:
    gru = torch.nn.GRU(3, 4, batch_first=True)
    return {k: v.detach().numpy() for k, v in gru.state_dict().items()}


def test_every_constructor_passes_threads_on():
    """Engine.from_state_dict once dropped ``threads``: the engine ran on one thread."""
    assert rt.Engine.from_state_dict(_gru_state(), cell="gru", threads=3).threads == 3
    assert rt.Engine.from_torch(torch.nn.GRU(3, 4, batch_first=True), threads=2).threads == 2


def test_threaded_fastgrnn_classifier_equals_one_thread(isa):
    """FastGRNN layers carry h only: the chunks' state gather must follow that layout."""
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=5, hidden_size=12, n_classes=3, cell="fastgrnn", num_layers=2).eval()
    x = np.random.default_rng(0).standard_normal((7, 8, 5)).astype(np.float32)
    one = rt.Engine.from_torch(model)
    many = rt.Engine.from_torch(model, threads=3)
    assert rel_err(many.run(x), one.run(x)) < 1e-6
    state_one, state_many = one.new_state(7), many.new_state(7)
    init = np.random.default_rng(1).standard_normal(state_one.values().shape).astype(np.float32)
    state_one.load(init)
    state_many.load(init)
    one.run(x, state=state_one)
    many.run(x, state=state_many)
    assert rel_err(state_many.values(), state_one.values()) < 1e-6
    with torch.no_grad():
        assert rel_err(many.run(x), model(torch.from_numpy(x)).numpy()) < 1e-4
