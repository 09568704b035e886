"""The native runtime against PyTorch (the independent oracle), on every kernel level.

fp32 engines must equal torch.nn.LSTM / nn.GRU to 1e-5 relative; int8 weight-only
engines must equal a torch model whose weights are the dequantized int8 weights to
1e-5; the dynamic-activation form is within a few percent of that model.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lstmlite import runtime as rt
from lstmlite.runtime import quantize_rows

from .conftest import dynamic_codes, rel_err

# (cell, input, hidden, layers, bidirectional, proj, bias)
LAYERS = [
    ("lstm", 13, 37, 1, False, 0, True),   # odd sizes: partial panels, K % 4 != 0
    ("lstm", 8, 16, 2, True, 0, True),
    ("lstm", 6, 20, 2, False, 7, True),    # LSTM with projection (LSTMP)
    ("lstm", 5, 12, 1, False, 0, False),   # no bias
    ("gru", 13, 37, 1, False, 0, True),
    ("gru", 7, 16, 3, True, 0, True),
    ("lstm", 40, 128, 1, False, 0, True),  # the benchmark size
]
# int7: int8 codes within [-63, 63], which the AVX2 tables multiply without a sign step;
# int7r: only the recurrent matrices so, with dynamic16's 16-bit input-projection activations
# dynamic16-h7: and the state h at 7 bits for the 7-bit recurrent matrices
FORMS = [("fp32", "float"), ("int8", "float"), ("int8", "dynamic"), ("int7", "dynamic"), ("int7r", "dynamic16"),
         ("int7r", "dynamic16-h7")]
FORM_IDS = ["fp32", "int8", "int8dyn", "int7dyn", "int7rdyn16", "int7rdyn16h7"]


def torch_layer(cell, i, h, layers, bidir, proj, bias, seed=0):
    torch.manual_seed(seed + i * 31 + h)
    cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    extra = {"proj_size": proj} if proj else {}
    return cls(i, h, num_layers=layers, bidirectional=bidir, bias=bias, batch_first=True, **extra).eval()


def dequantized(module: torch.nn.Module, weights: str = "int8") -> torch.nn.Module:
    """A copy whose every matrix is replaced by its per-row dequantization in the weight
    form (``int8``; ``int7``: 7 bits; ``int7r``: 7 bits for weight_hh / weight_hr only):
    the float model an int8 weight-only engine must reproduce."""
    import copy

    out = copy.deepcopy(module)
    with torch.no_grad():
        for name, p in out.named_parameters():
            if p.dim() == 2:
                recurrent = name.startswith(("weight_hh", "weight_hr"))
                bits = 7 if weights == "int7" or (weights == "int7r" and recurrent) else 8
                p.copy_(torch.from_numpy(quantize_rows(p.numpy(), bits).dequantize()))
    return out


def torch_state_vector(state, layers, bidir):
    """nn.LSTM's (h_n, c_n) / nn.GRU's h_n → the runtime's state layout: per layer,
    per direction, h (B, O) then c (B, H)."""
    h_n, c_n = state if isinstance(state, tuple) else (state, None)
    d = 2 if bidir else 1
    parts = []
    for k in range(layers):
        for j in range(d):
            parts.append(h_n[k * d + j].reshape(-1))
            if c_n is not None:
                parts.append(c_n[k * d + j].reshape(-1))
    return torch.cat(parts).detach().numpy()


@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
@pytest.mark.parametrize("cfg", LAYERS, ids=lambda c: f"{c[0]}-{c[1]}x{c[2]}-L{c[3]}{'-bi' if c[4] else ''}"
                         f"{'-p' + str(c[5]) if c[5] else ''}{'' if c[6] else '-nobias'}")
def test_layer_matches_torch(isa, cfg, form):
    weights, acts = form
    module = torch_layer(*cfg)
    oracle = module if weights == "fp32" else dequantized(module, weights)
    x = torch.randn(3, 11, cfg[1])
    with torch.no_grad():
        ref, ref_state = oracle(x)
    engine = rt.Engine.from_torch(module, weights=weights, activations=acts)
    state = engine.new_state(batch=3)
    out = engine.run(x.numpy(), state=state)
    tol = 1e-5 if acts == "float" else 5e-2
    assert rel_err(out, ref.numpy()) < tol
    assert rel_err(state.values(), torch_state_vector(ref_state, cfg[3], cfg[4])) < tol


@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
@pytest.mark.parametrize("hidden", [16, 48, 128])
def test_single_stream_equals_batched_rows(isa, hidden, form):
    """B = 1 runs a fused step kernel (matrix-vector product and cell update per block
    of 16 units) where the kernel table has one; it must give exactly what the batched
    path (matrix product, then cell update) gives for the same row, with lengths and a
    starting state too. For dynamic int8 the sums are integers, so B = 1 and B = 2 agree
    exactly; float activations differ between them only in the summation order of the
    float tiles (a single row uses two accumulator sets), so there 1e-6."""
    module = torch_layer("lstm", 13, hidden, 2, False, 0, True)
    engine = rt.Engine.from_torch(module, weights=form[0], activations=form[1])
    x = np.random.default_rng(5).standard_normal((2, 17, 13)).astype(np.float32)
    lengths = np.array([10, 17], np.int32)
    both_state = engine.new_state(batch=2)
    both_state.load(np.random.default_rng(6).standard_normal(both_state.values().size).astype(np.float32))
    start = both_state.values().reshape(2, 2, 2, hidden)  # (layer, h/c, batch, H)
    both = engine.run(x, lengths=lengths, state=both_state)
    for b in range(2):
        one_state = engine.new_state(batch=1)
        one_state.load(np.ascontiguousarray(start[:, :, b]).reshape(-1))
        one = engine.run(x[b:b + 1], lengths=lengths[b:b + 1], state=one_state)
        one_end, both_end = one_state.values().reshape(2, 2, hidden), both_state.values().reshape(2, 2, 2, hidden)
        if form[1].startswith("dynamic"):
            np.testing.assert_array_equal(one, both[b:b + 1])
            np.testing.assert_array_equal(one_end, both_end[:, :, b])
        else:
            assert rel_err(one, both[b:b + 1]) < 1e-6
            assert rel_err(one_end, both_end[:, :, b]) < 1e-6


@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_single_stream_equals_batched_rows_bidirectional_with_lengths(isa, form):
    """Both directions of a B = 1 stream (the fused step where the table has one) with a
    length shorter than T: the backward direction starts at the row's own last step, as
    the batched path (B = 2, matrix product then cell update) has it; a step counted by
    loop index instead of time would start it at T - 1."""
    module = torch_layer("lstm", 13, 32, 1, True, 0, True)
    engine = rt.Engine.from_torch(module, weights=form[0], activations=form[1])
    x = np.random.default_rng(7).standard_normal((2, 17, 13)).astype(np.float32)
    lengths = np.array([9, 17], np.int32)
    both = engine.run(x, lengths=lengths)
    for b in range(2):
        one = engine.run(x[b:b + 1], lengths=lengths[b:b + 1])
        if form[1].startswith("dynamic"):
            np.testing.assert_array_equal(one, both[b:b + 1])
        else:
            assert rel_err(one, both[b:b + 1]) < 1e-6


@pytest.mark.parametrize("codes", ["with -128", "7-bit extremes"])
def test_single_stream_equals_batched_rows_at_extreme_codes(isa, codes):
    """The fused B = 1 steps' forms chosen by the weights: W_hh holding -128 (the sign
    form that takes |w|) and 7-bit codes at +-64 (the form without a sign step), each
    against the batched path (B = 2) bit for bit, with dynamic activations. The state
    starts at h = +-1, so the first step's activations are all +-127 (u = 1 or 255), and
    pairs of equal weights meet: the largest pair sums either form can see."""
    from lstmlite.export.lsl import spec_from_module
    from lstmlite.runtime.lsl import QTensor

    module = torch_layer("lstm", 13, 48, 1, False, 0, True)
    spec = spec_from_module(module)
    rng = np.random.default_rng(11)
    d = spec.layers[0].directions[0]
    for name in ("w_ih", "w_hh"):
        rows, cols = np.asarray(d[name]).shape
        if codes == "with -128":
            q = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
            q[:, ::3] = -128
        else:
            q = rng.choice(np.array([-64, 64, -63, 0, 63], np.int8), (rows, cols))
        q[:, 1::2] = q[:, ::2][:, :q[:, 1::2].shape[1]]  # pairs of equal weights
        d[name] = QTensor(q, np.full(rows, 0.02 / np.sqrt(cols), np.float32))
    engine = rt.Engine(spec, weights="auto", activations="dynamic")
    x = np.random.default_rng(12).standard_normal((2, 15, 13)).astype(np.float32)
    start = engine.new_state(batch=2)
    h0 = np.where(rng.random((2, 48)) < 0.5, -1.0, 1.0).astype(np.float32)
    start.load(np.concatenate([h0, np.zeros((2, 48), np.float32)]).reshape(-1))  # (h, c) of the one layer
    both = engine.run(x, state=start)
    for b in range(2):
        one = engine.new_state(batch=1)
        one.load(np.concatenate([h0[b], np.zeros(48, np.float32)]))
        np.testing.assert_array_equal(engine.run(x[b:b + 1], state=one), both[b:b + 1])


@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_single_stream_steps_equal_run(isa, form):
    """Streaming one step at a time (B = 1, the fused step where there is one) gives the
    whole-sequence outputs: exactly for dynamic int8 (integer sums, same epilogues)."""
    module = torch_layer("lstm", 40, 64, 2, False, 0, True)
    engine = rt.Engine.from_torch(module, weights=form[0], activations=form[1])
    x = np.random.default_rng(7).standard_normal((12, 40)).astype(np.float32)
    state = engine.new_state()
    steps = np.stack([engine.step(x[t], state) for t in range(12)])
    if form[1].startswith("dynamic"):
        np.testing.assert_array_equal(steps, engine.run(x))
    else:
        assert rel_err(steps, engine.run(x)) < 1e-6


@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_single_stream_matches_torch(isa, form):
    module = torch_layer("lstm", 40, 128, 1, False, 0, True)
    oracle = module if form[0] == "fp32" else dequantized(module, form[0])
    x = torch.randn(1, 30, 40)
    with torch.no_grad():
        ref, _ = oracle(x)
    out = rt.Engine.from_torch(module, weights=form[0], activations=form[1]).run(x.numpy())
    assert rel_err(out, ref.numpy()) < (1e-5 if form[1] == "float" else 5e-2)


@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
@pytest.mark.parametrize("cfg", [c for c in LAYERS if not c[4]], ids=lambda c: f"{c[0]}-{c[2]}-L{c[3]}-p{c[5]}")
def test_step_by_step_equals_whole_sequence(isa, cfg, form):
    module = torch_layer(*cfg)
    engine = rt.Engine.from_torch(module, weights=form[0], activations=form[1])
    x = np.random.default_rng(1).standard_normal((2, 9, cfg[1])).astype(np.float32)
    whole = engine.run(x)
    state = engine.new_state(batch=2)
    steps = np.stack([engine.step(x[:, t], state) for t in range(x.shape[1])], axis=1)
    assert rel_err(steps, whole) < 1e-5


def test_streams_sharing_one_engine_are_independent():
    module = torch_layer("lstm", 6, 10, 2, False, 0, True)
    engine = rt.Engine.from_torch(module, weights="int8")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 7, 6)).astype(np.float32)
    sa, sb = engine.new_state(), engine.new_state()
    outs_a, outs_b = [], []
    for t in range(7):  # interleave the two streams
        outs_a.append(engine.step(a[t], sa))
        outs_b.append(engine.step(b[t], sb))
    assert rel_err(np.stack(outs_a), engine.run(a[None])[0]) < 1e-5
    assert rel_err(np.stack(outs_b), engine.run(b[None])[0]) < 1e-5
    sa.reset()
    assert not sa.values().any()


def test_default_stream_step_and_reset_match_run():
    module = torch_layer("gru", 4, 9, 1, False, 0, True)
    engine = rt.Engine.from_torch(module)
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    first = [engine.step(x[t]) for t in range(5)]
    engine.reset()
    again = [engine.step(x[t]) for t in range(5)]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert rel_err(np.stack(first), engine.run(x)) < 1e-5


def test_run_continues_from_a_state():
    module = torch_layer("lstm", 5, 8, 2, False, 0, True)
    engine = rt.Engine.from_torch(module)
    x = np.random.default_rng(4).standard_normal((2, 12, 5)).astype(np.float32)
    state = engine.new_state(batch=2)
    first = engine.run(x[:, :5], state=state)
    second = engine.run(x[:, 5:], state=state)
    assert rel_err(np.concatenate([first, second], axis=1), engine.run(x)) < 1e-5


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_lengths_match_packed_sequences_bidirectional(isa, cell):
    from lstmlite.nn import from_torch

    module = torch_layer(cell, 6, 10, 2, True, 0, True)
    ours = from_torch(module).eval()
    x = torch.randn(4, 9, 6)
    lengths = torch.tensor([9, 4, 1, 7])
    with torch.no_grad():
        ref, _ = ours(x, lengths=lengths)
    out = rt.Engine.from_torch(module).run(x.numpy(), lengths=lengths.numpy())
    assert rel_err(out, ref.numpy()) < 1e-5
    assert not out[2, 1:].any()  # padded steps give zeros


def test_bad_inputs_raise_not_crash():
    engine = rt.Engine.from_torch(torch_layer("lstm", 4, 6, 1, True, 0, True))
    with pytest.raises(ValueError):
        engine.run(np.zeros((2, 3, 5), np.float32))  # wrong feature count
    with pytest.raises(ValueError):
        engine.run(np.zeros((2, 3, 4), np.float32), lengths=[3, 4])  # length > T
    with pytest.raises(ValueError):
        engine.run(np.zeros((0, 3, 4), np.float32))
    with pytest.raises(rt.RuntimeError_):  # streaming a bidirectional model
        engine.step(np.zeros(4, np.float32))
    uni = rt.Engine.from_torch(torch_layer("lstm", 4, 6, 1, False, 0, True))
    with pytest.raises(ValueError):
        uni.step(np.zeros(5, np.float32))
    with pytest.raises(ValueError):  # a state of another engine
        uni.run(np.zeros((1, 2, 4), np.float32), state=engine.new_state())
    with pytest.raises(ValueError):
        rt.Engine(b"not a model file")
    with pytest.raises(ValueError):
        rt.Engine.from_torch(torch_layer("lstm", 4, 6, 1, False, 0, True), activations="int4")


def test_run_takes_non_contiguous_features_as_their_contiguous_copy():
    """run()'s fast path hands the array to C only when it is C-contiguous; a strided view
    (every other feature, a slice of the last axis, a transposed batch) goes through the
    copy and gives the same bits. Planted and failing it: the contiguity check dropped
    from the fast path (C then raises "inputs must be a C-contiguous array")."""
    engine = rt.Engine.from_torch(torch.nn.LSTM(6, 10, batch_first=True).eval())
    wide = np.random.default_rng(0).standard_normal((2, 5, 12)).astype(np.float32)
    for x in (wide[:, :, ::2], wide[:, :, :6], wide.transpose(1, 0, 2)[:, :, :6]):
        assert not x.flags.c_contiguous
        np.testing.assert_array_equal(engine.run(x), engine.run(np.ascontiguousarray(x)))


def test_run_refuses_a_state_of_another_batch_and_leaves_it_unchanged():
    """run() from a state of 2 streams with a batch of 3 sequences is a ValueError naming
    new_state(3), and the state keeps its values (what a second run from it, compared
    with PyTorch's nn.LSTM from the same (h, c), shows). Planted and surviving the suite
    before: the Python batch check removed (the C layer then answers with a bare "state
    has the wrong size for this batch", which does not say how to make the right one)."""
    module = torch_layer("lstm", 4, 6, 1, False, 0, True)
    engine = rt.Engine.from_torch(module)
    x = np.random.default_rng(4).standard_normal((2, 3, 4)).astype(np.float32)
    state = engine.new_state(2)
    engine.run(x, state=state)
    before = state.values()
    with pytest.raises(ValueError, match=r"new_state\(3\)"):
        engine.run(np.zeros((3, 3, 4), np.float32), state=state)
    np.testing.assert_array_equal(state.values(), before)
    with torch.no_grad():
        _, (h, c) = module(torch.from_numpy(x))
        ref, _ = module(torch.from_numpy(x), (h, c))
    assert rel_err(engine.run(x, state=state), ref.numpy()) < 1e-5


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_an_infinite_h_steps_as_pytorch_with_float_activations_and_is_refused_with_dynamic(isa, value):
    """A hand-set state whose h holds +-inf (a step never makes one). PyTorch's nn.LSTM is
    finite there: each gate row sums one infinite product, so the gates saturate to 0 / 1 /
    +-1. Float activations (fp32 and int8 weights, on every kernel table) give PyTorch's
    outputs. Dynamic activations quantize h with a scale from its largest |value|: an
    infinity has none, and every output of the step was NaN; loading such a state is now a
    ValueError saying why and what to use, and leaves the state as it was (a finite
    1e30 still loads: it has a scale). Planted and failing: the check in StreamState.load
    removed (the dynamic step then gives 6 NaN)."""
    module = torch_layer("lstm", 4, 6, 1, False, 0, True)
    h0 = np.zeros(6, np.float32)
    h0[2] = value
    c0 = np.linspace(-1, 1, 6).astype(np.float32)
    x = np.random.default_rng(7).standard_normal(4).astype(np.float32)
    with torch.no_grad():
        ref, _ = module(torch.from_numpy(x)[None, None], (torch.from_numpy(h0)[None, None],
                                                          torch.from_numpy(c0)[None, None]))
    ref = ref.numpy().reshape(-1)
    assert np.isfinite(ref).all()
    for weights in ("fp32", "int8"):
        engine = rt.Engine.from_torch(module, weights=weights)
        state = engine.new_state()
        state.load(np.concatenate([h0, c0]))  # lsl.h: per layer, h then c
        np.testing.assert_allclose(engine.step(x, state), ref, rtol=0, atol=1e-6, err_msg=weights)
    for activations in ("dynamic", "dynamic16"):
        engine = rt.Engine.from_torch(module, weights="int8", activations=activations)
        state = engine.new_state()
        with pytest.raises(ValueError, match=rf"^state value 2 is {'-' if value < 0 else ''}inf \(1 non-finite value"
                                             rf"\(s\)\): activations='{activations}' quantize .*use activations='float'$"):
            state.load(np.concatenate([h0, c0]))
        np.testing.assert_array_equal(state.values(), np.zeros(12, np.float32))
        big = np.concatenate([np.where(np.isfinite(h0), h0, np.float32(1e30)), c0])
        state.load(big)
        assert np.isfinite(engine.step(x, state)).all()


def test_a_state_of_another_engine_is_refused_by_step_too():
    """step() checks the state's engine as run() does: another model's state has
    another layout (here a GRU's h for an LSTM's h and c), so it is a ValueError, not a
    step of the other model."""
    lstm = rt.Engine.from_torch(torch_layer("lstm", 4, 6, 1, False, 0, True))
    gru = rt.Engine.from_torch(torch_layer("gru", 4, 6, 1, False, 0, True))
    with pytest.raises(ValueError, match="another engine"):
        lstm.step(np.zeros(4, np.float32), gru.new_state())


def test_complex_features_are_refused_by_run():
    """A cast to float32 would drop the imaginary part with a mere warning: complex
    features are an InputTypeError (a TypeError and a ValueError); integer ones are real
    and run."""
    engine = rt.Engine.from_torch(torch_layer("lstm", 4, 6, 1, False, 0, True))
    with pytest.raises(TypeError, match="real-valued"):
        engine.run(np.ones((1, 3, 4), np.complex64))
    assert engine.run(np.ones((1, 3, 4), np.int64)).shape == (1, 3, 6)  # integers are real


def test_step_refuses_complex_and_bool_features_as_run_does():
    """step() takes features as run() does: a complex x_t would lose its imaginary part
    to the float32 cast with a mere warning, and a bool one is not a feature vector, so
    both are an InputTypeError; integer features are real and step."""
    engine = rt.Engine.from_torch(torch_layer("lstm", 4, 6, 1, False, 0, True))
    for bad in (np.full(4, 1 + 5j, np.complex64), np.ones(4, bool)):
        with pytest.raises(rt.InputTypeError, match="real-valued"):
            engine.step(bad)
    ints = engine.step(np.arange(4, dtype=np.int64))
    np.testing.assert_array_equal(ints, engine.run(np.arange(4, dtype=np.float32)[None, None], state=None)[0, 0])


def test_step_refuses_features_laid_out_other_than_streams_by_features():
    """step() of a state of B = 2 streams takes (2, I = 3) features: x.T (3, 2) and the
    six values in one row (6,) hold as many values, and the C core counts values only,
    so they stepped with features and streams mixed up; they are refused naming the
    shape to pass. (2, 3) and (2, 1, 3) are the streams' frames, as torch steps them."""
    lstm = torch_layer("lstm", 3, 5, 1, False, 0, True)
    engine = rt.Engine.from_torch(lstm)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    for bad in (x.T, x.T.copy(), x.reshape(-1)):
        with pytest.raises(ValueError, match=r"expected \(2, 3\) features for a state of 2 stream\(s\), got shape"):
            engine.step(bad, engine.new_state(2))
    with pytest.raises(ValueError, match=r"expected \(3,\) or \(1, 3\) features"):
        engine.step(np.zeros(6, np.float32))
    with torch.no_grad():
        ref = lstm(torch.from_numpy(x)[:, None])[0][:, 0].numpy()
    for good in (x, x[:, None], x.astype(np.float64)):
        assert rel_err(engine.step(good, engine.new_state(2)), ref) < 1e-5
    one = rt.Engine.from_torch(torch.nn.GRU(1, 3, batch_first=True))  # one feature: a scalar is a frame
    for frame in (0.5, np.float32(0.5), np.array(0.5, np.float32), np.array([0.5], np.float32)):
        np.testing.assert_array_equal(one.step(frame, one.new_state()), one.run(np.full((1, 1, 1), 0.5, np.float32))[0, 0])


@pytest.mark.parametrize("batch", [2.5, "2", True, 0], ids=["float", "str", "bool", "zero"])
def test_new_state_takes_a_whole_number_of_streams(batch):
    """new_state(2.5) made a state of 2 streams (int() of the argument), "2" one of 2 and
    True one of 1, with no word; a stream count is a positive integer, as threads is.
    NumPy integers (a shape entry) are one."""
    engine = rt.Engine.from_torch(torch_layer("lstm", 4, 6, 1, False, 0, True))
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        engine.new_state(batch)
    assert engine.new_state(np.int64(3)).batch == 3


@pytest.mark.parametrize("lengths", [[0, 3], [3, 4], [3], [3, 3, 3]], ids=["zero", "past-T", "too-few", "too-many"])
def test_bad_lengths_are_refused_naming_the_argument(lengths: list[int]) -> None:
    """Every sequence has from 1 to T valid steps and one length per sequence: a length
    of 0, one past T (= 3), or a (B,) vector of the wrong size is the caller's error, and
    the message says it is ``lengths`` (not the C core's "sizes do not fit"). Catches
    bounds off by one and a missing shape check left to the C core."""
    engine = rt.Engine.from_torch(torch_layer("lstm", 4, 6, 1, False, 0, True))
    with pytest.raises(ValueError, match=r"lengths must be \(B,\) = \(2,\) with values in \[1, 3\]"):
        engine.run(np.zeros((2, 3, 4), np.float32), lengths=lengths)


@pytest.mark.parametrize("lengths", [np.array([3.0, 2.5]), np.array([3, 2**32 + 2], np.int64), [3.0, float("nan")]],
                         ids=["fraction", "int64-past-int32", "nan"])
def test_lengths_are_checked_before_the_cast_to_int32(lengths) -> None:
    """A length of 2.5 steps, or an int64 2**32 + 2 (which int32 wraps to 2), is no
    length in [1, T]: refused, where a bare cast ran 2 steps silently; whole-number
    floats and every integer dtype (NumPy, lists, torch) are the lengths they say, as
    PyTorch's packed sequences take them."""
    lstm = torch_layer("lstm", 4, 6, 1, False, 0, True)
    engine = rt.Engine.from_torch(lstm)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=r"lengths must be \(B,\) = \(2,\) with values in \[1, 3\]"):
        engine.run(x, lengths=lengths)
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), torch.tensor([3, 2]), batch_first=True)
        ref, _ = torch.nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=3)
    for good in ([3, 2], np.array([3.0, 2.0]), np.array([3, 2], np.uint8), torch.tensor([3, 2])):
        assert rel_err(engine.run(x, lengths=good), ref.numpy()) < 1e-5


def test_bool_lengths_and_token_ids_are_refused():
    """A boolean array is no lengths (True would run every sequence for one step) and no
    token ids (True would be id 1, <unk>): both are an InputTypeError naming the dtype,
    as strings are."""
    from lstmlite.nn import LanguageModel

    engine = rt.Engine.from_torch(torch_layer("lstm", 3, 4, 1, False, 0, True))
    with pytest.raises(rt.InputTypeError, match="integers; got dtype bool"):
        engine.run(np.zeros((2, 5, 3), np.float32), lengths=np.array([True, True]))
    torch.manual_seed(0)
    lm = rt.Engine.from_torch(LanguageModel(vocab_size=11, embed_dim=4, hidden_size=8).eval())
    with pytest.raises(rt.InputTypeError, match="integer token ids, got dtype bool"):
        lm.run(np.array([[True, False, True]]))


def test_best_isa_is_the_most_capable_supported_table():
    """The default table is the most capable one this CPU runs ("the best level this CPU
    supports"): the instruction sets nest (AVX-512 VNNI adds to AVX-512, which adds to
    AVX2; AVX-VNNI adds to AVX2; SDOT to NEON), so a CPU with AVX-512 VNNI must not get
    the plain AVX-512 table, nor one with SDOT plain NEON."""
    order = ["avx512-vnni", "avx512", "avx2-vnni", "avx2", "neon-dotprod", "neon", "portable"]
    supported = rt.supported_isas()
    want = next(name for name in order if name in supported)
    assert rt.best_isa() == want
    assert rt.info()["best_isa"] == want


def test_set_isa_replaces_a_bad_lstmlite_isa():
    """A bad LSTMLITE_ISA is raised by the runtime's first use unless set_isa has chosen
    since (its docstring: "a later set_isa replaces the choice")."""
    code = ("import lstmlite.runtime as rt; rt.set_isa('portable'); "
            "print(rt.info()['isa'], rt.isa())")
    run = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, LSTMLITE_ISA="sse9"),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["portable", "portable"]


def test_isa_forcing_reports_levels(restore_isa):
    assert rt.best_isa() in rt.supported_isas()
    assert set(rt.supported_isas()) <= set(rt.ISAS) and "portable" in rt.supported_isas()
    with pytest.raises(ValueError, match="this CPU supports: portable"):
        rt.set_isa("sse9")
    for name in rt.ISAS:  # an unsupported table is refused, naming what the CPU has
        if name not in rt.supported_isas():
            with pytest.raises(rt.RuntimeError_, match="it supports: portable"):
                rt.set_isa(name)
    rt.set_isa("portable")
    assert rt.isa() == "portable"
    assert rt.info()["isa"] == "portable" and rt.info()["best_isa"] == rt.best_isa()
    rt.set_isa("auto")
    assert rt.isa() == rt.best_isa()


@pytest.mark.parametrize("value", ["sse9", "AVX2", "avx2-vnni", "avx512"])
def test_lstmlite_isa_environment_is_checked(value):
    """LSTMLITE_ISA forces a table; an unknown value, or one this CPU lacks, is an error
    that names what the CPU supports (never a silent fallback), raised on the runtime's
    first use (importing it, as the CLI's parser does, still works), and the CLI reports
    it as one line."""
    env = dict(os.environ, LSTMLITE_ISA=value)
    code = "import lstmlite.runtime as rt; print(rt.info()['isa'])"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if value in rt.supported_isas():
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == value
        return
    assert run.returncode != 0
    assert f"LSTMLITE_ISA={value}" in run.stderr and "supports: portable" in run.stderr
    cli = "from lstmlite.cli.main import main; raise SystemExit(main(['bench', '--engines', 'lstmlite-fp32']))"
    run = subprocess.run([sys.executable, "-c", cli], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith(f"lstmlite bench: error: LSTMLITE_ISA={value}")


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_nan_inputs_propagate_instead_of_vanishing(isa, weights):
    """A NaN in the input must show up in the output (as in PyTorch), not be clamped away
    by the vectorised tanh/sigmoid."""
    module = torch_layer("lstm", 3, 16, 1, False, 0, True)
    x = np.zeros((1, 4, 3), np.float32)
    x[0, 1, 0] = np.nan
    out = rt.Engine.from_torch(module, weights=weights).run(x)
    assert not np.isnan(out[0, 0]).any()
    assert np.isnan(out[0, 1:]).all(axis=-1).all()


@pytest.mark.parametrize("weights,activations", [("int8", "dynamic"), ("int8", "dynamic16"), ("int7r", "dynamic16-h7"),
                                                 ("int8-sparse", "dynamic")])
def test_nan_inputs_propagate_with_dynamic_activations_too(isa, weights, activations):
    """A NaN input reaches the outputs, as in PyTorch, with dynamic activations as with
    float ones: the quantizers skipped the NaN in a row's maximum and rounded it to the
    code -qmax (lrintf(NaN)), or zeroed the row, so the NaN vanished into finite outputs.
    Such a row now gets zero codes and a NaN scale, on every table, in run() and step();
    the other stream and the steps before the NaN stay finite."""
    module = torch_layer("lstm", 3, 16, 1, False, 0, True)
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    x[0, 1, 0] = np.nan
    engine = rt.Engine.from_torch(module, weights=weights, activations=activations)
    state = engine.new_state(2)
    for out in (engine.run(x), np.stack([engine.step(x[:, t], state) for t in range(4)], axis=1)):
        assert np.isfinite(out[0, 0]).all() and np.isfinite(out[1]).all()
        assert np.isnan(out[0, 1:]).all()
    with torch.no_grad():  # the oracle: NaN from the same step on
        ref = module(torch.from_numpy(x))[0].numpy()
    assert (np.isnan(ref) == np.isnan(engine.run(x))).all()


def _same_nans_and_close(out: np.ndarray, ref: np.ndarray) -> None:
    """NaN exactly where ref is NaN, the rest finite where ref is and within 1e-5 of its
    peak (the int8 form's tolerance against the dequantized model)."""
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(np.isfinite(out), np.isfinite(ref))
    fin = np.isfinite(ref)
    assert np.abs(out[fin] - ref[fin]).max() <= 1e-5 * max(np.abs(ref[fin]).max(), 1.0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("inputs", [1, 3, 1100], ids=["I1", "I3", "I1100"])
@pytest.mark.parametrize("values", [(np.inf,), (-np.inf,), (3.1e38,), (-3.1e38,), (np.inf, np.inf)],
                         ids=["inf", "-inf", "3.1e38", "-3.1e38", "inf-inf"])
def test_infinite_and_huge_inputs_give_the_float_product(isa, cell, inputs, values):
    """int8 weights, float activations: an input of +-inf or past 3e38 gives what PyTorch
    gives with the dequantized weights (NaN where a zero weight meets an infinity, or two
    infinities meet with opposite signs, +-inf otherwise, which the gates saturate; a
    finite product that the units without that input's weight keep) on every table, in
    run() (B = 2 and B = 1: the SIMD tables' products of many and of few rows) and
    step() (B = 2 and B = 1). The SIMD tables carry float activations as fixed-point
    codes of the row's maximum, which such a row has none of: they made its outputs NaN
    (avx2 and avx512 in step(), avx512-vnni also in run()) where PyTorch's are finite.
    I = 1100 takes the three-digit form (past 1024 columns)."""
    module = torch_layer(cell, min(inputs, 3), 16, 1, False, 0, True)
    if inputs > 3:  # only the widths: the first three columns' weights are the same
        module = type(module)(inputs, 16, batch_first=True).eval()
    with torch.no_grad():  # columns 0 and 1: row 5's weights 0; both signs; opposite signs in units 0-3's rows only
        w, k = module.weight_ih_l0, torch.arange(len(module.weight_ih_l0))
        w[:, 0] = torch.where(k % 2 == 0, 0.3, -0.2)
        w[5, 0] = 0.0
        if inputs > 1:
            w[:, 1] = w[:, 0] * torch.where(k % 16 < 4, -0.8, 0.8)
    x = np.random.default_rng(0).standard_normal((2, 4, inputs)).astype(np.float32)
    for col, v in enumerate(values[:inputs]):
        x[0, 1, col] = v
    oracle = dequantized(module)
    with torch.no_grad():
        ref = oracle(torch.from_numpy(x))[0].numpy()
    assert np.isfinite(ref[1]).all() and np.isfinite(ref[0, 0]).all()
    if np.isinf(values[0]):  # the zero weight meets the infinity: that unit's h is NaN, the others' not
        assert np.isnan(ref[0, 1]).any() and np.isfinite(ref[0, 1]).any()
    engine = rt.Engine.from_torch(module, weights="int8")
    for b in (2, 1):
        state = engine.new_state(b)
        _same_nans_and_close(engine.run(x[:b]), ref[:b])
        _same_nans_and_close(np.stack([engine.step(x[:b, t], state) for t in range(4)], axis=1), ref[:b])


@pytest.mark.parametrize("weights", ["fp32", "int8"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_large_batches_chunk_the_input_projection(isa, cell, weights):
    """B * G * H large enough that the input projections are computed a few steps at a
    time (a partial last chunk, both directions, ragged lengths) still equal torch."""
    from lstmlite.nn import from_torch

    module = torch_layer(cell, 5, 64, 2, True, 0, True)
    oracle = from_torch(module if weights == "fp32" else dequantized(module)).eval()
    x = torch.randn(70, 10, 5)
    lengths = torch.randint(1, 11, (70,))
    with torch.no_grad():
        ref, _ = oracle(x, lengths=lengths)
    out = rt.Engine.from_torch(module, weights=weights).run(x.numpy(), lengths=lengths.numpy())
    assert rel_err(out, ref.numpy()) < 1e-5


# Each VNNI table and its twin without VNNI: the same loops and float code around a
# different int8 dot product instruction.
VNNI_TWINS = [("avx2", "avx2-vnni"), ("avx512", "avx512-vnni")]


def _force(name):
    if name not in rt.supported_isas():
        pytest.skip(f"this CPU lacks {name} (it runs {', '.join(rt.supported_isas())})")
    rt.set_isa(name)


@pytest.mark.parametrize("plain,vnni", VNNI_TWINS, ids=["avx2", "avx512"])
@pytest.mark.parametrize("weights", ["int8", "int7", "int8-sparse"])
def test_vnni_tables_equal_their_twins_for_dynamic_int8(plain, vnni, weights, restore_isa):
    """Dynamic int8 sums are exact integers, so a table with VNNI and its twin without
    give the same bits: whole sequences at B = 1 (the fused step where the table has
    one) and B = 3, and streaming steps."""
    module = torch_layer("lstm", 20, 48, 2, False, 0, True)
    if weights == "int8-sparse":
        from lstmlite.runtime.bench import prune_blocks

        prune_blocks(module, 0.7)
    x = np.random.default_rng(9).standard_normal((3, 11, 20)).astype(np.float32)
    outs = []
    for name in (plain, vnni):
        _force(name)
        # keep_sparse: the twins' sparse kernels, whichever form each table runs faster
        engine = rt.Engine.from_torch(module, weights=weights, activations="dynamic", keep_sparse=True)
        state = engine.new_state()
        steps = np.stack([engine.step(x[0, t], state) for t in range(11)])
        outs.append((engine.run(x[:1]), engine.run(x), steps))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,dense,sparse", [("portable", False, False), ("avx2", True, False),
                                               ("avx2-vnni", True, False), ("avx512", True, False),
                                               ("avx512-vnni", True, True)])
def test_fused_steps_are_reported_per_table(name, dense, sparse, restore_isa):
    """The single-stream comparisons (B = 1 against batched rows) exercise a fused step
    exactly where info() says the table has one (avx512's: dynamic activations only)."""
    _force(name)
    assert (rt.info()["fused_step"], rt.info()["fused_sparse_step"]) == (dense, sparse)


@pytest.mark.parametrize("cfg", [("lstm", 40, 128, 1, False, 0, True), ("gru", 13, 37, 1, False, 0, True),
                                 ("lstm", 8, 16, 2, True, 0, True)], ids=["lstm", "gru", "lstm-L2-bi"])
def test_dynamic16_cuts_the_activation_error(cfg):
    """With the same int8 weights, 16-bit input-projection activations leave well under
    half of the 8-bit ones' deviation from the dequantized model (measured 0.16-0.4 of
    it): the inputs' 8-bit rounding is most of dynamic int8's error. An implementation
    that still rounded the inputs to 8 bits would not get there."""
    module = torch_layer(*cfg)
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((3, 30, cfg[1])).astype(np.float32))
    with torch.no_grad():
        ref = dequantized(module)(x)[0].numpy()
    err8, err16 = (rel_err(rt.Engine.from_torch(module, weights="int8", activations=acts).run(x.numpy()), ref)
                   for acts in ("dynamic", "dynamic16"))
    assert err16 < 0.5 * err8


@pytest.mark.parametrize("cfg", [("lstm", 6, 20, 2, False, 7, True), ("gru", 7, 16, 3, True, 0, True),
                                 ("lstm", 40, 64, 1, False, 0, True)], ids=["lstmp-L2", "gru-L3-bi", "lstm"])
@pytest.mark.parametrize("weights,acts", [("int8", "dynamic16"), ("int7r", "dynamic16"), ("int7r", "dynamic16-h7")])
def test_dynamic16_agrees_across_tables(cfg, weights, acts, restore_isa):
    """Exact integer sums and one epilogue: each VNNI table gives its twin's bits (the
    same cell updates), and every table this CPU has the portable one's outputs to
    1e-4, for whole sequences at B = 1 (the fused steps) and B = 3 and for streaming
    steps. (Not bit for bit there: the tables' cell updates round differently in the
    last bit, and where that moves a state value across a rounding boundary of the next
    step's 8-bit codes, the outputs move by a little more: 2e-6 measured.)"""
    from .conftest import ISAS

    module = torch_layer(*cfg)
    x = np.random.default_rng(4).standard_normal((3, 9, cfg[1])).astype(np.float32)
    outs = {}
    for name in ISAS:
        rt.set_isa(name)
        engine = rt.Engine.from_torch(module, weights=weights, activations=acts)
        outs[name] = (engine.run(x[:1]), engine.run(x))
        if not cfg[4]:  # streaming: unidirectional models
            state = engine.new_state()
            outs[name] += (np.stack([engine.step(x[0, t], state) for t in range(9)]),)
    for name, got in outs.items():
        for a, b in zip(got, outs["portable"]):
            assert rel_err(a, b) < 1e-4, name
    for plain, vnni in VNNI_TWINS:
        if plain in outs and vnni in outs:
            for a, b in zip(outs[plain], outs[vnni]):
                np.testing.assert_array_equal(a, b)


def _lstm_step_reference(module, x, h, c, h_bits, x_qmax=32767):
    """One LSTM step in float64 from the engine's integer products: W_ih x with x at 16
    bits (dynamic16; x_qmax=127: 8 bits, dynamic), W_hh h with h at h_bits (8, or 7 for
    the "-h7" forms), exact integer sums, then the scales, the biases and the cell update."""
    qi, qh = quantize_rows(module.weight_ih_l0.detach().numpy(), 8), quantize_rows(module.weight_hh_l0.detach().numpy(), 7)
    xq, xs = dynamic_codes(x, x_qmax)
    hq, hs = dynamic_codes(h, (1 << (h_bits - 1)) - 1)
    gates = ((xq @ qi.q.astype(np.int64).T) * (xs.astype(np.float64)[:, None] * qi.scale[None, :])
             + (hq @ qh.q.astype(np.int64).T) * (hs.astype(np.float64)[:, None] * qh.scale[None, :])
             + module.bias_ih_l0.detach().numpy() + module.bias_hh_l0.detach().numpy())
    i, f, g, o = np.split(gates, 4, axis=1)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    c_new = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c_new)


@pytest.mark.parametrize("batch", [1, 6])  # the fused one-stream step; the 4-row int16-pair tile + 2 rows
def test_dynamic16_h7_step_equals_the_7_bit_state_reference(isa, batch):
    """One step from a given state equals the float64 statement with h at 7 bits (to
    float rounding), and not the one with h at 8 bits: an engine that ignored "-h7", or
    quantized h to 7 bits but multiplied as 8, is caught here on every table."""
    module = torch_layer("lstm", 20, 48, 1, False, 0, True)
    engine = rt.Engine.from_torch(module, weights="int7r", activations="dynamic16-h7")
    assert engine.info["layers"][0]["h_bits"] == 7
    rng = np.random.default_rng(11)
    x = rng.standard_normal((batch, 20)).astype(np.float32)
    h = np.tanh(rng.standard_normal((batch, 48))).astype(np.float32)
    c = rng.standard_normal((batch, 48)).astype(np.float32)
    state = engine.new_state(batch=batch)
    state.load(np.concatenate([h.reshape(-1), c.reshape(-1)]))
    got = engine.step(x if batch > 1 else x[0], state).reshape(batch, 48)
    want7, want8 = (_lstm_step_reference(module, x, h, c, bits) for bits in (7, 8))
    assert np.abs(got - want7).max() < 1e-5
    assert np.abs(got - want8).max() > 1e-4


def test_dynamic_h7_step_equals_the_8_bit_input_reference(isa):
    """"dynamic-h7" is "dynamic" (x at 8 bits, |q| <= 127) with h at 7 bits: one step
    equals that float64 statement (to float rounding) and not the one with x at 16 bits
    ("dynamic16-h7"); a mode table that gave "dynamic-h7" the 16-bit inputs is caught."""
    module = torch_layer("lstm", 20, 48, 1, False, 0, True)
    engine = rt.Engine.from_torch(module, weights="int7r", activations="dynamic-h7")
    assert engine.info["layers"][0]["h_bits"] == 7
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 20)).astype(np.float32)
    h = np.tanh(rng.standard_normal((1, 48))).astype(np.float32)
    c = rng.standard_normal((1, 48)).astype(np.float32)
    state = engine.new_state()
    state.load(np.concatenate([h.reshape(-1), c.reshape(-1)]))
    got = engine.step(x[0], state)[None]
    want8, want16 = (_lstm_step_reference(module, x, h, c, 7, x_qmax=q) for q in (127, 32767))
    assert np.abs(got - want8).max() < 1e-5
    assert np.abs(got - want16).max() > 1e-4


def test_h7_takes_a_stack_where_only_one_layer_has_7_bit_recurrent_weights():
    """"-h7" is refused only when *no* recurrent matrix has 7-bit weights: a stack whose
    first layer has 7-bit W_hh codes (|q| <= 63) and second 8-bit ones loads, the first
    layer taking h at 7 bits, the second at 8."""
    from lstmlite.export.lsl import spec_from_module, write_lsl

    spec = spec_from_module(torch_layer("lstm", 6, 12, 2, False, 0, True))
    for layer, bits in zip(spec.layers, (7, 8)):
        layer.directions[0]["w_hh"] = quantize_rows(layer.directions[0]["w_hh"], bits)
    engine = rt.Engine(write_lsl(spec, weights="auto"), activations="dynamic-h7")
    assert [layer["h_bits"] for layer in engine.info["layers"]] == [7, 8]


@pytest.mark.parametrize("h7", ["dynamic-h7", "dynamic16-h7"])
def test_h7_needs_7_bit_recurrent_weights(h7):
    """8-bit recurrent weights would saturate the int16 pair sums: both "-h7" forms
    refuse them (a ValueError that says which weights to use), and "int7" takes it."""
    module = torch_layer("lstm", 8, 16, 1, False, 0, True)
    with pytest.raises(ValueError, match="weights='int7r'"):
        rt.Engine.from_torch(module, weights="int8", activations=h7)
    assert rt.Engine.from_torch(module, weights="int7", activations="dynamic-h7").info["layers"][0]["h_bits"] == 7
    assert rt.Engine.from_torch(module, weights="int7r", activations="dynamic16").info["layers"][0]["h_bits"] == 8


def test_dynamic16_keeps_8_bits_for_low_rank_and_sparse_input_projections():
    """The 16-bit activations are the dense int8 input projections' only: a low-rank or
    block-sparse W_ih (and every W_hh) takes 8-bit ones, so such a model's dynamic16
    run is its dynamic run, bit for bit."""
    from lstmlite.export.lsl import spec_from_module
    from lstmlite.runtime.bench import prune_blocks
    from lstmlite.runtime.lsl import LowRankTensor, describe_lsl, write_lsl

    module = torch_layer("lstm", 24, 32, 1, False, 0, True)
    x = np.random.default_rng(8).standard_normal((2, 7, 24)).astype(np.float32)
    low = spec_from_module(module)
    w_ih = low.layers[0].directions[0]["w_ih"]
    u, s, vt = np.linalg.svd(w_ih, full_matrices=False)
    low.layers[0].directions[0]["w_ih"] = LowRankTensor((u[:, :6] * s[:6]).astype(np.float32),
                                                        vt[:6].astype(np.float32))
    prune_blocks(module, 0.8)
    sparse = write_lsl(spec_from_module(module), weights="int8-sparse")
    assert "sparse" in str(describe_lsl(sparse))
    for model in (write_lsl(low, weights="int8"), sparse):
        runs = [rt.Engine(model, activations=acts).run(x) for acts in ("dynamic", "dynamic16")]
        np.testing.assert_array_equal(runs[0], runs[1])
