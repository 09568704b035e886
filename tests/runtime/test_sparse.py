"""The (1, 4)-block sparse int8 form: compressed rows (block_csr) against a plain
NumPy statement, the sparse kernels against the dense int8 ones and NumPy on every
ISA, .lsl files of version 2, and whole models against the dense int8 engine and the
dequantized PyTorch model."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from lstmlite import runtime as rt
from lstmlite.runtime import _lsl
from lstmlite.runtime.bench import prune_blocks
from lstmlite.runtime.lsl import (HEADER_BYTES, block_csr, block_density, quantize_rows, read_lsl,
                                  spec_from_module, write_lsl)

from .conftest import rel_err


def _sparse_codes(rows, cols, density, seed=0):
    """int8 codes with about ``density`` of the (1, 4) blocks kept."""
    rng = np.random.default_rng(seed)
    q = rng.integers(-127, 128, (rows, cols)).astype(np.int8)
    keep = rng.random((rows, -(-cols // 4))) < density
    return (q * np.repeat(keep, 4, axis=1)[:, :cols]).astype(np.int8)


def test_block_csr_lists_every_nonzero_block_in_row_order():
    q = _sparse_codes(9, 13, 0.4, seed=1)
    rowptr, bcol, values = block_csr(q)
    rebuilt = np.zeros((9, 16), np.int8)
    for r in range(9):
        for b in range(rowptr[r], rowptr[r + 1]):
            rebuilt[r, 4 * bcol[b]:4 * bcol[b] + 4] = values[4 * b:4 * b + 4]
            assert values[4 * b:4 * b + 4].any()  # only blocks holding a non-zero are kept
        assert np.all(np.diff(bcol[rowptr[r]:rowptr[r + 1]].astype(int)) > 0)
    np.testing.assert_array_equal(rebuilt[:, :13], q)
    assert not rebuilt[:, 13:].any()
    assert block_density(q) == pytest.approx(rowptr[-1] / (9 * 4))
    empty = block_csr(np.zeros((3, 5), np.int8))
    assert empty[0].tolist() == [0, 0, 0, 0] and len(empty[1]) == 1 and len(empty[2]) == 0


SHAPES = [(1, 16, 8, 0.3), (1, 512, 128, 0.2), (1, 512, 40, 0.1), (3, 1024, 256, 0.25), (2, 7, 300, 0.5),
          (5, 64, 129, 0.0), (33, 16, 500, 1.0), (4, 48, 200, 0.05)]


@pytest.mark.parametrize("m,n,k,density", SHAPES)
@pytest.mark.parametrize("act", ["float", "dynamic"])
def test_sparse_kernels_equal_the_dense_int8_kernels(isa, m, n, k, density, act):
    """The sparse product is the dense int8 product on the same codes: the same integer
    sums for dynamic activations (bit for bit), ≤ 1e-6 for float activations."""
    _check_sparse_equals_dense(_sparse_codes(n, k, density, seed=m), m, act, np.random.default_rng(n + k))


def _check_sparse_equals_dense(q, m, act, rng):
    """The sparse product of codes ``q`` (n, k) with m random rows equals the dense int8
    one: bit for bit with dynamic activations, <= 1e-6 of float64 NumPy with float ones."""
    n, k = q.shape
    scale = (rng.random(n).astype(np.float32) + 0.5) / 100
    x = rng.standard_normal((m, k)).astype(np.float32)
    y0 = rng.standard_normal((m, n)).astype(np.float32)
    code = _lsl.ACT_FLOAT if act == "float" else _lsl.ACT_DYN8
    sparse, dense = y0.copy(), y0.copy()
    rowptr, bcol, values = block_csr(q)
    _lsl.matmul_sparse(rowptr, bcol, values, scale, code, k, x, sparse)
    _lsl.matmul(q, scale, code, x, dense)
    if act == "dynamic":
        np.testing.assert_array_equal(sparse, dense)
    else:
        ref = y0.astype(np.float64) + x.astype(np.float64) @ (q.astype(np.float64) * scale[:, None]).T
        assert rel_err(sparse, ref) < 1e-6


def _shared_codes(rows, cols, density, group, seed=0):
    """int8 codes whose kept (1, 4) blocks are the same for each run of ``group`` rows
    from a multiple of ``group``: the (group, 4)-block pattern, which the AVX2 kernels
    run with one broadcast per half panel (8) or panel (16)."""
    rng = np.random.default_rng(seed)
    q = rng.integers(-127, 128, (rows, cols)).astype(np.int8)
    q[q == 0] = 1  # every kept block holds non-zeros, so the pattern is exactly the mask's
    keep = np.repeat(rng.random((-(-rows // group), -(-cols // 4))) < density, group, axis=0)[:rows]
    return (q * np.repeat(keep, 4, axis=1)[:, :cols]).astype(np.int8)


# (m, n, k, density, group): 1-5 activation rows (the kernels' 1- to 4-row tiles), row
# counts that leave a partial panel, several windows (one row too: the sign-mask form of
# the recurrent product), 8- and 16-row groups, and a pattern that is (8, 4) in one half
# only (group 4 breaks the sharing: the lane path)
SHARED_SHAPES = [(1, 512, 128, 0.2, 8), (1, 512, 128, 0.2, 16), (5, 48, 300, 0.3, 8), (4, 40, 200, 0.25, 16),
                 (3, 24, 40, 0.5, 16), (2, 7, 130, 0.4, 8), (1, 64, 129, 0.2, 4), (2, 16, 64, 1.0, 16),
                 (1, 40, 300, 0.25, 16), (1, 24, 260, 0.3, 8)]


@pytest.mark.parametrize("m,n,k,density,group", SHARED_SHAPES)
@pytest.mark.parametrize("act", ["float", "dynamic"])
def test_row_group_sparse_kernels_equal_the_dense_int8_kernels(isa, m, n, k, density, group, act):
    """Blocks shared by 8 or 16 rows (the broadcast paths of the AVX2 tables) give the
    dense int8 product: bit for bit with dynamic activations, <= 1e-6 with float ones."""
    _check_sparse_equals_dense(_shared_codes(n, k, density, group, seed=m), m, act,
                               np.random.default_rng(n * k + group))


def test_sparse_matmul_refuses_inconsistent_compressed_rows():
    q = _sparse_codes(8, 16, 0.5)
    rowptr, bcol, values = block_csr(q)
    x, y = np.ones((1, 16), np.float32), np.zeros((1, 8), np.float32)
    scale = np.ones(8, np.float32)
    bad_col = bcol.copy()
    bad_col[0] = 4  # past the last block column
    with pytest.raises(ValueError):
        _lsl.matmul_sparse(rowptr, bad_col, values, scale, _lsl.ACT_FLOAT, 16, x, y)
    with pytest.raises(ValueError):  # rowptr not non-decreasing
        _lsl.matmul_sparse(rowptr[::-1].copy(), bcol, values, scale, _lsl.ACT_FLOAT, 16, x, y)
    with pytest.raises(ValueError):  # values do not match the block count
        _lsl.matmul_sparse(rowptr, bcol, values[:-4], scale, _lsl.ACT_FLOAT, 16, x, y)


def _pruned(module, sparsity=0.8, block=(1, 4)):
    prune_blocks(module, sparsity, block)
    return module.eval()


@pytest.fixture(scope="module")
def pruned_lstm():
    torch.manual_seed(0)
    return _pruned(torch.nn.LSTM(40, 128, batch_first=True))


def test_prune_blocks_zeroes_the_requested_fraction_of_blocks(pruned_lstm):
    for name, weight in pruned_lstm.named_parameters():
        if weight.ndim == 2:
            q = quantize_rows(weight.detach().numpy()).q
            assert block_density(q) == pytest.approx(0.2, abs=0.01), name
    with pytest.raises(ValueError):
        prune_blocks(pruned_lstm, 1.0)


def test_sparse_files_are_version_2_smaller_and_read_back_to_the_same_codes(pruned_lstm):
    """int8-sparse stores the block-pruned matrices as kept blocks (version 2); int8
    stores them bitmask-sparse (version 3; the loader expands them to dense int8): the
    fixed-record versions, still written on request for older readers."""
    spec = spec_from_module(pruned_lstm)
    dense, sparse = write_lsl(spec, weights="int8", version=3), write_lsl(spec, weights="int8-sparse", version=2)
    assert int.from_bytes(dense[8:12], "little") == 3 and int.from_bytes(sparse[8:12], "little") == 2
    codes = sum(pruned_lstm.get_parameter(n).numel() for n in ("weight_ih_l0", "weight_hh_l0"))
    assert len(dense) <= len(sparse) < 0.5 * codes  # both well under dense int8 codes; int8 takes the smallest
    a, b = read_lsl(dense).layers[0].directions[0], read_lsl(sparse).layers[0].directions[0]
    for name in ("w_ih", "w_hh"):
        np.testing.assert_array_equal(a[name].q, b[name].q)
        np.testing.assert_array_equal(a[name].scale, b[name].scale)
    # a dense model gains nothing from the sparse form: it is stored dense (version 1)
    torch.manual_seed(1)
    unpruned = write_lsl(spec_from_module(torch.nn.LSTM(8, 16, batch_first=True)), weights="int8-sparse", version=1)
    assert int.from_bytes(unpruned[8:12], "little") == 1
    assert rt.Engine(unpruned).info["layers"][0]["weights"] == "int8"


def _dequantized_torch(module):
    """A copy of ``module`` whose weight matrices are their per-row int8 dequantization:
    the model the int8 forms compute."""
    import copy

    copy_ = copy.deepcopy(module)
    with torch.no_grad():
        for _, weight in copy_.named_parameters():
            if weight.ndim == 2:
                weight.copy_(torch.from_numpy(quantize_rows(weight.numpy()).dequantize()))
    return copy_


MODELS = {
    "lstm": lambda: torch.nn.LSTM(40, 128, batch_first=True),
    "gru-2-layer-bidirectional": lambda: torch.nn.GRU(24, 64, num_layers=2, bidirectional=True, batch_first=True),
    "lstm-projection": lambda: torch.nn.LSTM(16, 96, proj_size=32, batch_first=True),
}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_sparse_engines_match_dense_int8_and_the_dequantized_torch_model(isa, kind):
    torch.manual_seed(2)
    module = _pruned(MODELS[kind]())
    spec = spec_from_module(module)
    sparse_file = write_lsl(spec, weights="int8-sparse")
    assert rt.Engine(sparse_file).info["layers"][0]["weights"] == "int8-sparse"
    x = np.random.default_rng(3).standard_normal((3, 20, module.input_size)).astype(np.float32)
    with torch.no_grad():
        ref = _dequantized_torch(module)(torch.from_numpy(x))[0].numpy()
    got = rt.Engine(sparse_file, keep_sparse=True).run(x)  # the sparse kernels, whatever the table
    assert rel_err(got, ref) < 1e-5
    # dynamic activations: the same integer arithmetic as the dense int8 form
    dyn_sparse = rt.Engine(sparse_file, activations="dynamic", keep_sparse=True).run(x)
    dyn_dense = rt.Engine(spec, weights="int8", activations="dynamic").run(x)
    np.testing.assert_array_equal(dyn_sparse, dyn_dense)


def test_sparse_streaming_equals_whole_sequences(pruned_lstm):
    engine = rt.Engine(spec_from_module(pruned_lstm), weights="int8-sparse", keep_sparse=True)
    x = np.random.default_rng(4).standard_normal((1, 12, 40)).astype(np.float32)
    whole = engine.run(x)[0]
    state = engine.new_state()
    steps = np.stack([engine.step(x[0, t], state) for t in range(12)])
    assert rel_err(steps, whole) < 1e-6


# The single-stream (B = 1) LSTM step: with VNNI a sparse W_hh gets the fused step
# (products of a block's four gate panels and its cell update in registers) when H is
# a multiple of 16; H = 40 falls back to the matmul and lstm_pointwise. Two layers, so
# the second layer's W_ih reads the first layer's h.
FUSED_SIZES = [(40, 128), (24, 48), (130, 256), (16, 40)]


def _pruned_engines(input_size, hidden, act, layers=1, block=(1, 4)):
    torch.manual_seed(hidden + input_size)
    module = _pruned(torch.nn.LSTM(input_size, hidden, num_layers=layers, batch_first=True), block=block)
    spec = spec_from_module(module)
    sparse = rt.Engine(spec, weights="int8-sparse", activations=act, keep_sparse=True)
    assert sparse.info["layers"][-1]["weights"] == sparse.info["layers"][-1]["runs_hh"] == "int8-sparse"
    return sparse, rt.Engine(spec, weights="int8", activations=act)


def _same(got, want, act):
    """Dynamic activations: the dense int8 form's integer arithmetic, bit for bit;
    float activations: within 1e-6 of it (bit for bit, in fact, with VNNI)."""
    if act == "dynamic":
        np.testing.assert_array_equal(got, want)
    else:
        assert rel_err(got, want) <= 1e-6


# Blocks of 16 or 8 rows keep the same columns in each panel or half panel (bench's
# (16, 4) pruning): the kernels take those patterns in loops of their own, the input
# projection of a whole sequence with its bias in the epilogue.
@pytest.mark.parametrize("block", [(1, 4), (8, 4), (16, 4)])
@pytest.mark.parametrize("input_size,hidden", FUSED_SIZES)
@pytest.mark.parametrize("act", ["dynamic", "float"])
def test_sparse_single_stream_runs_equal_dense_int8_and_the_batched_path(isa, input_size, hidden, act, block):
    sparse, dense = _pruned_engines(input_size, hidden, act, layers=2, block=block)
    x = np.random.default_rng(6).standard_normal((1, 30, input_size)).astype(np.float32)
    one = sparse.run(x)
    _same(one, dense.run(x), act)
    # B = 2 takes the unfused path (matmul, then lstm_pointwise) with the same float
    # operations per row: the fused step must reproduce it bit for bit
    two = sparse.run(np.concatenate([x, 0.5 * x]))
    np.testing.assert_array_equal(one[0], two[0])


@pytest.mark.parametrize("input_size,hidden", FUSED_SIZES)
@pytest.mark.parametrize("act", ["dynamic", "float"])
def test_sparse_single_stream_padded_sequences(isa, input_size, hidden, act):
    """lengths < T: the steps past the length give zeros and leave the state alone."""
    sparse, dense = _pruned_engines(input_size, hidden, act)
    x = np.random.default_rng(7).standard_normal((1, 25, input_size)).astype(np.float32)
    s_state, d_state = sparse.new_state(), dense.new_state()
    got = sparse.run(x, lengths=[17], state=s_state)
    _same(got, dense.run(x, lengths=[17], state=d_state), act)
    _same(s_state.values(), d_state.values(), act)
    assert not got[0, 17:].any()
    trunc_state = sparse.new_state()
    np.testing.assert_array_equal(got[0, :17], sparse.run(x[:, :17], state=trunc_state)[0])
    np.testing.assert_array_equal(s_state.values(), trunc_state.values())


@pytest.mark.parametrize("input_size,hidden", FUSED_SIZES)
@pytest.mark.parametrize("act", ["dynamic", "float"])
def test_sparse_streaming_single_stream_equals_dense_int8(isa, input_size, hidden, act):
    sparse, dense = _pruned_engines(input_size, hidden, act, layers=2)
    x = np.random.default_rng(8).standard_normal((16, input_size)).astype(np.float32)
    s_state, d_state = sparse.new_state(), dense.new_state()
    got = np.stack([sparse.step(x_t, s_state) for x_t in x])
    want = np.stack([dense.step(x_t, d_state) for x_t in x])
    _same(got, want, act)
    _same(s_state.values(), d_state.values(), act)
    # and streaming equals the whole sequence (the step alternates the panel order)
    np.testing.assert_array_equal(got, sparse.run(x[None])[0])


def test_corrupt_sparse_files_raise_errors_never_crash(pruned_lstm):
    data = write_lsl(spec_from_module(pruned_lstm), weights="int8-sparse")
    for cut in range(HEADER_BYTES, len(data), 997):
        with pytest.raises(rt.RuntimeError_):
            rt.Engine(data[:cut])
    rng = np.random.default_rng(5)
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(300):  # flips anywhere: tables, rowptr, bcol and values alike
        blob = bytearray(data)
        for pos in rng.integers(0, len(blob), size=rng.integers(1, 6)):
            blob[pos] ^= 1 << int(rng.integers(0, 8))
        try:  # every other file kept sparse, else the table may unpack it dense
            rt.Engine(bytes(blob), keep_sparse=bool(i % 2)).run(np.zeros((1, 3, 40), np.float32))
            outcomes["loaded"] += 1
        except (rt.RuntimeError_, ValueError):
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 300


def test_a_row_with_repeated_block_columns_is_refused_by_both_readers(pruned_lstm):
    from lstmlite.runtime.lsl import LslFormatError

    spec = spec_from_module(pruned_lstm)
    data = bytearray(write_lsl(spec, weights="int8-sparse"))
    rowptr, bcol, _ = block_csr(quantize_rows(pruned_lstm.weight_hh_l0.detach().numpy()).q)
    first_row = next(r for r in range(len(rowptr) - 1) if rowptr[r + 1] - rowptr[r] >= 2)
    b = int(rowptr[first_row])
    needle = bcol.astype("<u2").tobytes()  # the bcol tensor as stored
    at = bytes(data).find(needle)
    assert at > 0
    data[at + 2 * (b + 1):at + 2 * (b + 2)] = data[at + 2 * b:at + 2 * (b + 1)]  # column b+1 := column b
    data[-4:] = zlib.crc32(bytes(data[:-4])).to_bytes(4, "little")  # re-sealed: the parser must catch it
    with pytest.raises(LslFormatError, match="increase"):
        read_lsl(bytes(data))
    with pytest.raises(rt.RuntimeError_):
        rt.Engine(bytes(data))


def test_a_very_wide_sparse_matrix_with_few_blocks_multiplies_right():
    """2,048 windows, most of them empty: each row's cursor must skip the empty ones."""
    q = np.zeros((4, 262_144), np.int8)
    q[:, ::40_000] = 1
    q[2, 5] = -3
    rowptr, bcol, values = block_csr(q)
    x = np.random.default_rng(0).standard_normal((1, q.shape[1])).astype(np.float32)
    y = np.zeros((1, 4), np.float32)
    _lsl.matmul_sparse(rowptr, bcol, values, np.ones(4, np.float32), _lsl.ACT_FLOAT, q.shape[1], x, y)
    assert rel_err(y, x.astype(np.float64) @ q.T.astype(np.float64)) < 1e-6


@pytest.mark.parametrize("rows", [8, 16])
def test_prune_blocks_with_tall_blocks_keeps_the_same_columns_in_each_row_group(rows):
    """bench's (rows, 4) pruning: every aligned group of ``rows`` rows keeps the same
    four-column blocks (the pattern the AVX2 broadcast path needs), 80 % of them zero."""
    torch.manual_seed(0)
    module = torch.nn.LSTM(40, 32, batch_first=True)
    prune_blocks(module, 0.8, (rows, 4))
    for name, weight in module.named_parameters():
        if weight.ndim == 2:
            kept = weight.detach().numpy().reshape(weight.shape[0], -1, 4).any(axis=2)
            groups = kept.reshape(-1, rows, kept.shape[1])
            assert (groups == groups[:, :1]).all(), name
            assert kept.mean() == pytest.approx(0.2, abs=0.02), name


# ---- sparse or dense: the form a stored sparse matrix runs in (lsl_load's choice) -----

def _pruned_spec(block, sparsity=0.8):
    torch.manual_seed(11)
    module = torch.nn.LSTM(40, 128, batch_first=True)
    prune_blocks(module, sparsity, block)
    return spec_from_module(module.eval())


@pytest.mark.parametrize("act", ["dynamic", "float"])
def test_each_stored_sparse_matrix_runs_in_the_form_the_table_runs_faster(isa, act):
    """80 % sparse in (1, 4) blocks fills a third of the sparse layout's slots for W_hh
    and half for W_ih: the AVX2 kernels gather each lane's activations (permutes and
    blends), so on the AVX2, AVX-VNNI and AVX-512-without-VNNI tables both run dense. In
    (16, 4) blocks a slot is one broadcast: sparse everywhere. The portable and NEON
    tables keep what is stored. Either way the file says int8-sparse, and the results are
    the sparse kernels' (dynamic activations: the same bits)."""
    x = np.random.default_rng(12).standard_normal((2, 15, 40)).astype(np.float32)
    gathers = isa in ("avx2", "avx2-vnni", "avx512")
    for block, dense_expected in (((1, 4), gathers), ((16, 4), False)):
        data = write_lsl(_pruned_spec(block), weights="int8-sparse")
        auto, kept = rt.Engine(data, activations=act), rt.Engine(data, activations=act, keep_sparse=True)
        layer, kept_layer = auto.info["layers"][0], kept.info["layers"][0]
        assert layer["weights"] == kept_layer["weights"] == "int8-sparse"
        assert kept_layer["runs_ih"] == kept_layer["runs_hh"] == "int8-sparse"
        if isa == "portable" or isa.startswith("neon") or not gathers and block == (16, 4):
            assert layer["runs_ih"] == layer["runs_hh"] == "int8-sparse", (block, layer)
        if gathers:
            want = "int8" if dense_expected else "int8-sparse"
            assert layer["runs_ih"] == layer["runs_hh"] == want, (block, layer)
        _same(auto.run(x), kept.run(x), act)


def test_a_very_sparse_scattered_matrix_stays_sparse_on_every_table_but_avx_vnni(isa):
    """95 % sparse in (1, 4) blocks: W_hh fills about an eighth of its slots, which the
    gathering kernels still run faster than the dense products -- except on the AVX-VNNI
    table, whose dense vpdpbusd products beat its gathers at every sparsity measured
    (1.41 x at 95 % on a Xeon): it runs dense."""
    engine = rt.Engine(write_lsl(_pruned_spec((1, 4), 0.95), weights="int8-sparse"), activations="dynamic")
    assert engine.info["layers"][0]["runs_hh"] == ("int8" if isa == "avx2-vnni" else "int8-sparse")
