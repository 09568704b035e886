"""The .lsl forms of version 3: int4 codes packed two per byte and bitmask-sparse
matrices. Files against the compressed PyTorch model they came from (the oracle),
the nibble layout against lstmlite.compress's own int4 packer, and both readers
against malformed masks and versions."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from lstmlite import runtime as rt
from lstmlite.compress import MagnitudePruneConfig, WeightQuantConfig, compress_
from lstmlite.compress.quantize.ops import pack_int4
from lstmlite.nn import LanguageModel, SequenceClassifier
from lstmlite.runtime.lsl import (HEADER_BYTES, TENSOR_RECORD, QTensor, describe_lsl, pack_nibbles, read_lsl,
                                  spec_from_module, unpack_nibbles, write_lsl)

from .conftest import rel_err


def _dtypes(blob: bytes) -> dict[str, str]:
    return {r["name"]: r["dtype"] for r in describe_lsl(blob)}


def test_nibbles_are_the_compress_int4_layout_and_round_trip():
    q = np.random.default_rng(0).integers(-8, 8, (5, 7)).astype(np.int8)
    packed = pack_nibbles(q)
    np.testing.assert_array_equal(packed, pack_int4(torch.from_numpy(q)).numpy().astype(np.uint8))
    np.testing.assert_array_equal(unpack_nibbles(packed, 7), q)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_int4_models_are_stored_two_codes_per_byte_and_run_as_the_torch_model(isa, cell):
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=6, hidden_size=24, n_classes=3, cell=cell).eval()
    compress_(model, WeightQuantConfig(bits=4))
    spec = spec_from_module(model)
    blob = write_lsl(spec, weights="int8")  # QTensor codes keep their 4 bits whatever `weights` says
    kinds = _dtypes(blob)
    assert kinds["l0.0.w_ih"] == kinds["l0.0.w_hh"] == kinds["head.w"] == "int4"
    rows = {r["name"]: r for r in describe_lsl(blob)}
    assert rows["l0.0.w_hh"]["data"] == model.rnn.weight_hh_l0.shape[0] * 12  # 24 columns, 12 bytes a row
    back = read_lsl(blob).layers[0].directions[0]["w_hh"]
    np.testing.assert_array_equal(back.q, spec.layers[0].directions[0]["w_hh"].q)
    x = np.random.default_rng(1).standard_normal((3, 9, 6)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert rel_err(rt.Engine(blob).run(x), ref) < 1e-5


def test_int4_embedding_and_head_of_a_language_model():
    torch.manual_seed(1)
    model = LanguageModel(vocab_size=30, embed_dim=8, hidden_size=16).eval()
    spec = spec_from_module(model)
    blob = write_lsl(spec, weights="int4")
    kinds = _dtypes(blob)
    assert kinds["emb"] == kinds["head.w"] == kinds["l0.0.w_ih"] == "int4"
    back = read_lsl(blob)
    assert isinstance(back.embedding, QTensor) and np.abs(back.embedding.q).max() <= 7
    tokens = np.random.default_rng(2).integers(0, 30, (2, 6))
    # the oracle: the float engine on the codes dequantized by NumPy
    for layer in back.layers:
        for d in layer.directions:
            for k in list(d):
                d[k] = d[k].dequantize() if isinstance(d[k], QTensor) else d[k]
    back.embedding, back.head_weight = back.embedding.dequantize(), back.head_weight.dequantize()
    assert rel_err(rt.Engine(blob).run(tokens), rt.Engine(back, weights="fp32").run(tokens)) < 1e-5


@pytest.mark.parametrize("bits", [None, 8, 4])
def test_pruned_matrices_are_stored_bitmask_sparse_and_run_as_the_torch_model(bits):
    torch.manual_seed(2)
    model = SequenceClassifier(input_size=12, hidden_size=48, n_classes=4).eval()
    compress_(model, MagnitudePruneConfig(sparsity=0.8))
    if bits:
        compress_(model, WeightQuantConfig(bits=bits))
    blob = write_lsl(spec_from_module(model), weights="fp32" if bits is None else "int8")
    kind = {None: "fp32", 8: "int8", 4: "int4"}[bits]
    assert _dtypes(blob)["l0.0.w_hh"] == f"{kind} bitmask-sparse"
    w_hh = model.rnn.weight_hh_l0
    bits_per_value = {None: 32, 8: 8, 4: 4}[bits]
    nnz = int((w_hh != 0).sum())
    rows = {r["name"]: r for r in describe_lsl(blob)}
    assert rows["l0.0.w_hh"]["data"] == -(-nnz * bits_per_value // 8)
    assert rows["l0.0.w_hh.mask"]["data"] == -(-w_hh.numel() // 8)
    x = np.random.default_rng(3).standard_normal((2, 7, 12)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert rel_err(rt.Engine(blob).run(x), ref) < 1e-5
    back = read_lsl(blob).layers[0].directions[0]["w_hh"]
    got = back.dequantize() if isinstance(back, QTensor) else back
    with torch.no_grad():
        np.testing.assert_allclose(got, w_hh.numpy(), rtol=1e-6, atol=1e-7)


def _record(blob: bytes, name: str) -> int:
    """Offset of tensor `name`'s table record."""
    n_tensors, tensor_off = struct.unpack_from("<I", blob, 20)[0], struct.unpack_from("<Q", blob, 40)[0]
    for i in range(n_tensors):
        off = tensor_off + i * TENSOR_RECORD
        if blob[off:off + 32].split(b"\0", 1)[0].decode() == name:
            return off
    raise KeyError(name)


def _data(blob: bytes, name: str) -> int:
    """Offset of tensor `name`'s data."""
    return struct.unpack_from("<Q", blob, 48)[0] + struct.unpack_from("<Q", blob, _record(blob, name) + 48)[0]


def _refused(blob: bytes) -> None:
    with pytest.raises(rt.RuntimeError_):
        rt.Engine(blob)
    with pytest.raises(rt.LslFormatError):
        read_lsl(blob)


def test_malformed_masks_and_versions_are_refused_by_both_readers():
    torch.manual_seed(3)
    model = SequenceClassifier(input_size=5, hidden_size=9, n_classes=2).eval()
    compress_(model, MagnitudePruneConfig(sparsity=0.9))
    blob = write_lsl(spec_from_module(model), weights="int4", version=3)  # fixed records: offsets poked below
    assert _dtypes(blob)["l0.0.w_hh"] == "int4 bitmask-sparse"
    rt.Engine(blob)  # the intact file loads
    mask = _data(blob, "l0.0.w_hh.mask")
    n = 36 * 9  # elements of w_hh: the mask's last byte has 324 % 8 = 4 bits in use
    past = bytearray(blob)
    past[mask + n // 8] |= 0x80  # a bit past the last element
    _refused(bytes(past))
    extra = bytearray(blob)  # one more set bit than stored values
    byte = next(i for i in range(n // 8) if extra[mask + i] != 0xFF)
    extra[mask + byte] |= (~extra[mask + byte]) & -(~extra[mask + byte]) & 0xFF
    _refused(bytes(extra))
    old = bytearray(blob)
    old[8:12] = struct.pack("<I", 2)  # version 2 has no int4 or bitmask dtypes
    _refused(bytes(old))
    assert len(blob) > HEADER_BYTES


@pytest.mark.parametrize("bits", [None, 8, 4])
def test_low_rank_embeddings_keep_their_factors_in_the_file(bits):
    """An embedding factored by compress (E = A B) is stored as A and B (quantized or
    not); the loader expands the table, the reader gives the factors back."""
    from lstmlite.compress.embedding import EmbeddingLowRankConfig
    from lstmlite.runtime.lsl import LowRankTensor

    torch.manual_seed(5)
    model = LanguageModel(vocab_size=60, embed_dim=8, hidden_size=16).eval()
    compress_(model, EmbeddingLowRankConfig(rank=3))
    if bits:
        compress_(model, WeightQuantConfig(bits=bits))
    blob = write_lsl(spec_from_module(model), weights="int8" if bits else "fp32")
    # int4 codes may go bitmask-sparse where enough of them round to zero (smaller still)
    kinds = {n: k.removesuffix(" bitmask-sparse") for n, k in _dtypes(blob).items()}
    assert "emb" not in kinds and kinds["emb.u"] == kinds["emb.v"] == {None: "fp32", 8: "int8", 4: "int4"}[bits]
    back = read_lsl(blob).embedding
    assert isinstance(back, LowRankTensor) and back.shape == (60, 8)
    tokens = np.random.default_rng(6).integers(0, 60, (2, 7))
    with torch.no_grad():
        ref = model(torch.from_numpy(tokens))[0].numpy()
    assert rel_err(rt.Engine(blob).run(tokens), ref) < 1e-5


@pytest.mark.parametrize("bits", [None, 4])
def test_low_rank_heads_keep_their_factors(bits):
    from lstmlite.compress import LowRankConfig

    torch.manual_seed(6)
    model = SequenceClassifier(input_size=6, hidden_size=24, n_classes=10).eval()
    compress_(model, LowRankConfig(rank=3), filter=lambda fqn, module, name: fqn == "head" and name == "weight")
    if bits:
        compress_(model, WeightQuantConfig(bits=bits))
    blob = write_lsl(spec_from_module(model), weights="int8" if bits else "fp32")
    kinds = {n: k.removesuffix(" bitmask-sparse") for n, k in _dtypes(blob).items()}  # as above
    assert "head.w" not in kinds and kinds["head.w.u"] == kinds["head.w.v"] == ("int4" if bits else "fp32")
    x = np.random.default_rng(7).standard_normal((2, 5, 6)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert rel_err(rt.Engine(blob).run(x), ref) < 1e-5


def test_pruning_after_quantizing_keeps_the_codes_with_the_mask_applied():
    """Codes that predate a mask still fit the masked weights with the same scales:
    the file stores them (bitmask-sparse int8), not requantized floats."""
    torch.manual_seed(8)
    model = SequenceClassifier(input_size=6, hidden_size=24, n_classes=4).eval()
    compress_(model, WeightQuantConfig(bits=8))
    compress_(model, MagnitudePruneConfig(sparsity=0.6))
    spec = spec_from_module(model)
    w_hh = spec.layers[0].directions[0]["w_hh"]
    assert isinstance(w_hh, QTensor) and (w_hh.q == 0).mean() > 0.59
    blob = write_lsl(spec, weights="int8")
    assert _dtypes(blob)["l0.0.w_hh"] == "int8 bitmask-sparse"
    x = np.random.default_rng(9).standard_normal((2, 5, 6)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert rel_err(rt.Engine(blob).run(x), ref) < 1e-5


@pytest.mark.parametrize("sparsity", [0.5, 0.95])
def test_auto_takes_the_smallest_form_of_each_matrix(sparsity):
    """`auto` (the export default) offers dense, bitmask and (1, 4)-block forms: its file
    is never larger than int8's or int8-sparse's on the same codes; very sparse blocks
    go to the block form, which the sparse kernels run."""
    torch.manual_seed(10)
    model = SequenceClassifier(input_size=64, hidden_size=64, n_classes=4).eval()
    compress_(model, MagnitudePruneConfig(sparsity=sparsity, block=(1, 4)))
    compress_(model, WeightQuantConfig(bits=8))
    spec = spec_from_module(model)
    sizes = {w: len(write_lsl(spec, weights=w)) for w in ("auto", "int8", "int8-sparse")}
    assert sizes["auto"] <= min(sizes["int8"], sizes["int8-sparse"])
    blob = write_lsl(spec, weights="auto")
    if sparsity > 0.9:
        assert _dtypes(blob)["l0.0.w_hh"] == "int8 block-sparse"
        assert rt.Engine(blob).info["layers"][0]["weights"] == "int8-sparse"
    x = np.random.default_rng(11).standard_normal((2, 5, 64)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert rel_err(rt.Engine(blob).run(x), ref) < 1e-5


def test_the_python_reader_answers_corrupt_v3_files_with_format_errors():
    """Byte flips anywhere in a file holding int4, bitmask, low-rank and FastGRNN parts:
    read_lsl either reads it or raises LslFormatError, never another exception."""
    from lstmlite.compress.embedding import EmbeddingLowRankConfig
    from lstmlite.compress.targets import recurrent_weight_filter

    torch.manual_seed(12)
    model = LanguageModel(vocab_size=30, embed_dim=8, hidden_size=16, cell="fastgrnn",
                          rnn_options={"urank": 4}).eval()
    compress_(model, EmbeddingLowRankConfig(rank=3))
    compress_(model, MagnitudePruneConfig(sparsity=0.7), filter=recurrent_weight_filter())
    compress_(model, WeightQuantConfig(bits=4))
    blob = write_lsl(spec_from_module(model), weights="auto")
    read_lsl(blob)
    rng = np.random.default_rng(13)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(400):
        bad = bytearray(blob)
        for pos in rng.integers(0, len(bad), size=rng.integers(1, 4)):
            bad[pos] ^= 1 << int(rng.integers(0, 8))
        try:
            read_lsl(bytes(bad))
            outcomes["read"] += 1
        except rt.LslFormatError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


def test_vectors_exact_in_half_precision_are_stored_as_fp16():
    """Scales rounded to float16 by compress (scale_bits=16) take 2 bytes each in the
    file, and the loader's half-to-float conversion is exact, subnormals included."""
    torch.manual_seed(14)
    model = SequenceClassifier(input_size=6, hidden_size=16, n_classes=3).eval()
    compress_(model, WeightQuantConfig(bits=4, scale_bits=16))
    blob = write_lsl(spec_from_module(model), weights="auto")
    rows = {r["name"]: r for r in describe_lsl(blob)}
    assert rows["l0.0.w_hh.scale"]["dtype"] == "fp16 (exact)" and rows["l0.0.w_hh.scale"]["data"] == 2 * 64
    assert rows["l0.0.b_hh"]["dtype"] == "fp32"  # trained-looking biases are not exact halves
    x = np.random.default_rng(15).standard_normal((2, 6, 6)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert rel_err(rt.Engine(blob).run(x), ref) < 1e-5
    # a head that only adds its bias: the output is the bias, bit for bit
    from lstmlite.export.lsl import spec_from_state_dict

    special = np.array([2.0 ** -24, -(2.0 ** -20), 65504.0, 0.0, -1.5, 3.0 ** -1], np.float32)
    special[-1] = np.float16(special[-1])  # an ordinary half value
    gru = torch.nn.GRU(2, 4, batch_first=True)
    spec = spec_from_state_dict(gru.state_dict(), head_weight=np.zeros((6, 4), np.float32), head_bias=special,
                                head_mode="last")
    blob = write_lsl(spec)
    assert {r["name"]: r["dtype"] for r in describe_lsl(blob)}["head.b"] == "fp16 (exact)"
    out = rt.Engine(blob).run(np.zeros((1, 3, 2), np.float32))
    np.testing.assert_array_equal(out[0], special)
    np.testing.assert_array_equal(read_lsl(blob).head_bias, special)


def test_per_tensor_scales_are_stored_once():
    """A model quantized per tensor stores one scale per matrix (embedding included);
    both readers give it to every row."""
    torch.manual_seed(16)
    model = LanguageModel(vocab_size=40, embed_dim=8, hidden_size=16).eval()
    compress_(model, WeightQuantConfig(bits=4, granularity="per_tensor"))
    blob = write_lsl(spec_from_module(model), weights="auto")
    rows = {r["name"]: r for r in describe_lsl(blob)}
    for name in ("l0.0.w_ih", "l0.0.w_hh", "head.w", "emb"):
        assert rows[f"{name}.scale"]["shape"] == [1], name
    back = read_lsl(blob).layers[0].directions[0]["w_hh"]
    assert back.scale.shape == (64,) and np.all(back.scale == back.scale[0])
    tokens = np.random.default_rng(17).integers(0, 40, (2, 6))
    with torch.no_grad():
        ref = model(torch.from_numpy(tokens))[0].numpy()
    assert rel_err(rt.Engine(blob).run(tokens), ref) < 1e-5


@pytest.mark.parametrize("kept_blocks,block_form", [(1, True), (2, False)])
def test_int8_sparse_takes_the_block_form_only_where_it_is_smaller_than_dense(kept_blocks, block_form):
    """``int8-sparse`` stores a matrix in the (1, 4)-block form "wherever it is smaller
    than dense int8" (write_lsl). A 2 x 12 int8 head is 24 bytes dense; its block form is
    4 bytes a kept block + 4 (rows + 1) rowptr bytes + 2 bytes a block index: 18 bytes
    for one kept block (taken), 24 for two -- a tie, so not taken (the bitmask form,
    smaller than both, is)."""
    from lstmlite.runtime.lsl import LayerSpec, ModelSpec

    rng = np.random.default_rng(5)
    t = {k: (rng.standard_normal(shape) / 3).astype(np.float32)
         for k, shape in (("w_ih", (48, 5)), ("w_hh", (48, 12)), ("b_ih", (48,)), ("b_hh", (48,)))}
    head = np.zeros((2, 12), np.float32)
    head[0, 0:4] = [0.5, -0.25, 0.1, 0.3]
    if kept_blocks == 2:
        head[1, 8:12] = [0.2, 0.4, -0.6, 0.1]
    spec = ModelSpec([LayerSpec("lstm", 5, 12, directions=[t])], head_weight=head,
                     head_bias=np.array([0.1, 0.2], np.float32), head_mode="last")
    dtype = _dtypes(write_lsl(spec, weights="int8-sparse"))["head.w"]
    assert (dtype == "int8 block-sparse") == block_form, dtype
