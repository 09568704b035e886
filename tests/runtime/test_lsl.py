"""The .lsl file: writer/reader round trip, quantization, and a loader that answers
corrupt files with exceptions (the C parser's error codes), never a crash."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from lstmlite import runtime as rt
from lstmlite.runtime.lsl import HEADER_BYTES, QTensor, quantize_rows, read_lsl, spec_from_state_dict, write_lsl


@pytest.fixture(scope="module")
def spec():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 7, num_layers=2, bidirectional=True, batch_first=True)
    rng = np.random.default_rng(0)
    return spec_from_state_dict(lstm.state_dict(), embedding=rng.standard_normal((11, 5)),
                                head_weight=rng.standard_normal((3, 14)), head_bias=rng.standard_normal(3),
                                head_mode="last", pooling="mean", meta={"kind": "classifier", "note": "ü"})


@pytest.mark.parametrize("bits,qmax", [(8, 127), (7, 63), (4, 7)])
def test_quantize_rows_is_symmetric_per_row_with_half_step_error(bits, qmax):
    w = np.random.default_rng(1).standard_normal((6, 9)).astype(np.float32) * np.arange(1, 7)[:, None]
    qt = quantize_rows(w, bits)
    assert qt.q.dtype == np.int8 and qt.scale.shape == (6,)
    np.testing.assert_allclose(np.abs(w).max(1) / qmax, qt.scale, rtol=1e-6)
    assert (np.abs(qt.q).max(1) == qmax).all()  # each row's largest weight maps to ±qmax
    assert (np.abs(qt.dequantize() - w) <= qt.scale[:, None] / 2 + 1e-7).all()
    assert quantize_rows(np.zeros((2, 3), np.float32), bits).scale.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError):
        quantize_rows(np.array([[np.nan, 1.0]], np.float32), bits)
    with pytest.raises(ValueError, match="bits must be 4, 7 or 8"):
        quantize_rows(w, 6)


def _bits(weights: str, name: str) -> int:
    """The bits write_lsl gives matrix ``name`` (w_ih, w_hh, w_hr) for ``weights``."""
    if weights == "int7r":  # only the recurrent matrices at 7 bits
        return 8 if name == "w_ih" else 7
    return 7 if weights == "int7" else 8


@pytest.mark.parametrize("weights", ["fp32", "int8", "int7", "int7r"])
def test_write_read_round_trip(spec, weights):
    back = read_lsl(write_lsl(spec, weights=weights))
    assert (back.head_mode, back.pooling, back.meta) == ("last", "mean", spec.meta)
    assert [(l.cell, l.input_size, l.hidden_size, l.num_directions) for l in back.layers] == \
        [("lstm", 5, 7, 2), ("lstm", 14, 7, 2)]
    for k, layer in enumerate(spec.layers):
        for d, tensors in enumerate(layer.directions):
            for name, value in tensors.items():
                got = back.layers[k].directions[d][name]
                if weights != "fp32" and name.startswith("w_"):
                    assert isinstance(got, QTensor)
                    np.testing.assert_array_equal(got.q, quantize_rows(value, _bits(weights, name)).q)
                else:
                    np.testing.assert_array_equal(got, value)
    np.testing.assert_array_equal(back.head_bias, spec.head_bias)
    if weights != "fp32":  # the head takes the weights' bits (int7r: 8); the looked-up embedding keeps 8
        qmax = 63 if weights == "int7" else 127
        assert np.abs(back.head_weight.q.astype(int)).max() == qmax
        assert np.abs(back.embedding.q.astype(int)).max() == 127


def test_files_are_loaded_by_the_engine_with_the_same_results(spec, tmp_path):
    path = tmp_path / "m.lsl"
    data = write_lsl(spec, weights="int8", path=path)
    assert path.read_bytes() == data
    tokens = np.random.default_rng(2).integers(0, 11, (2, 4))
    a = rt.Engine(data).run(tokens)
    b = rt.Engine(spec, weights="int8").run(tokens)
    np.testing.assert_array_equal(a, b)


def test_version_and_magic_are_checked(spec):
    data = bytearray(write_lsl(spec))
    bad_version = bytes(data[:8]) + struct.pack("<I", 99) + bytes(data[12:])
    with pytest.raises(rt.RuntimeError_, match="version"):
        rt.Engine(bad_version)
    with pytest.raises(rt.LslFormatError, match="version"):
        read_lsl(bad_version)
    with pytest.raises(rt.RuntimeError_):
        rt.Engine(b"LSTMLITX" + bytes(data[8:]))
    with pytest.raises(rt.LslFormatError, match="bad magic"):  # the Python reader checks the magic too
        read_lsl(b"LSTMLITX" + bytes(data[8:]))


def test_corrupt_files_raise_errors_never_crash(spec):
    """Truncations and random byte flips: either a clean load or an exception."""
    data = write_lsl(spec, weights="int8")
    for cut in list(range(0, HEADER_BYTES + 8)) + list(range(HEADER_BYTES, len(data), 97)):
        with pytest.raises(rt.RuntimeError_):
            rt.Engine(data[:cut])
    rng = np.random.default_rng(3)
    table_end = HEADER_BYTES + 2 * 32 + 64 * 40  # header, layer table and tensor table
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(300):
        blob = bytearray(data)
        for pos in rng.integers(0, min(table_end, len(blob)), size=rng.integers(1, 4)):
            blob[pos] ^= 1 << int(rng.integers(0, 8))
        try:
            rt.Engine(bytes(blob))
            outcomes["loaded"] += 1
        except (rt.RuntimeError_, ValueError):
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 300


def test_int7r_puts_7_bit_codes_on_every_recurrent_matrix_only():
    """weights="int7r": W_hh and an LSTMP's W_hr reach +-63 on every row and no further,
    W_ih +-127 (8 bits), in every layer and direction."""
    import torch

    from lstmlite.export.lsl import spec_from_module

    torch.manual_seed(2)
    module = torch.nn.LSTM(6, 20, num_layers=2, proj_size=7, bidirectional=True, batch_first=True)
    back = read_lsl(write_lsl(spec_from_module(module), weights="int7r"))
    seen = set()
    for layer in back.layers:
        for tensors in layer.directions:
            for name in ("w_ih", "w_hh", "w_hr"):
                top = np.abs(tensors[name].q.astype(int)).max(axis=1)
                assert top.tolist() == [127 if name == "w_ih" else 63] * len(top), name
                seen.add(name)
    assert seen == {"w_ih", "w_hh", "w_hr"}


@pytest.mark.parametrize("version", [None, 3])
def test_head_mode_of_names_the_head_each_model_has(version):
    """head_mode_of (what the size accountant asks to tell a language model's file from a
    classifier's) names the head a model has: a bare nn.LSTM none, a classifier last, a
    tagger each, in the compact and the fixed layouts. Planted and failing it: the head
    code read through the pooling table (0 -> "last", so a bare LSTM passed as a classifier)."""
    from lstmlite.export.lsl import spec_from_module
    from lstmlite.nn import SequenceClassifier, SequenceTagger
    from lstmlite.runtime.lsl import head_mode_of

    torch.manual_seed(0)
    models = {"none": torch.nn.LSTM(3, 4, batch_first=True),
              "last": SequenceClassifier(input_size=3, hidden_size=4, n_classes=2, pooling="mean"),
              "each": SequenceTagger(input_size=3, hidden_size=4, n_classes=5)}
    for head, model in models.items():
        assert head_mode_of(write_lsl(spec_from_module(model), version=version)) == head


def test_codes_round_half_to_even_as_torch_does():
    """A row whose scale is 1 (its largest weight 127) puts .5, 1.5, 2.5 and -.5 exactly
    between two codes: they round to even, as torch.round and the compress codes do (0,
    2, 2, 0), not up (1, 2, 3, 0), so a file's codes equal the trained model's."""
    w = np.array([[127.0, 0.5, 1.5, 2.5, -0.5]], np.float32)
    qt = quantize_rows(w, 8)
    assert qt.scale.tolist() == [1.0]
    np.testing.assert_array_equal(qt.q, torch.round(torch.from_numpy(w)).numpy().astype(np.int8))


def test_nearly_equal_row_scales_are_kept_as_they_are():
    """Per-row scales that differ in the last bit (0.01 and the next float up) are not one
    shared scale: the file keeps every row's scale bit for bit (a shared scale would move
    the weights of half the rows by a float step, silently)."""
    from lstmlite.export.lsl import spec_from_module

    torch.manual_seed(0)
    spec = spec_from_module(torch.nn.LSTM(3, 4, batch_first=True))
    up = np.nextafter(np.float32(0.01), np.float32(1))
    scale = np.where(np.arange(16) % 2 == 0, np.float32(0.01), up).astype(np.float32)
    codes = np.random.default_rng(0).integers(-127, 128, (16, 3)).astype(np.int8)
    spec.layers[0].directions[0]["w_ih"] = QTensor(codes, scale)
    back = read_lsl(write_lsl(spec, weights="auto")).layers[0].directions[0]["w_ih"]
    np.testing.assert_array_equal(back.scale, scale)
    np.testing.assert_array_equal(back.q, codes)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_fixed_record_files_put_each_tensor_where_lsl_h_says(version):
    """lsl.h: versions 1 to 3 hold each tensor at an 8-byte aligned offset (files written
    before version 3 existed used 64; this writer aligns every version to 8), and the
    writer puts the tensor table, whose records hold u64 fields, at an 8-byte offset too.
    Read here from the header and the 64-byte records as lsl.h lays them out, with
    metadata of odd length, not through the package's reader."""
    from lstmlite.export.lsl import spec_from_module
    from lstmlite.nn import SequenceTagger

    torch.manual_seed(0)
    spec = spec_from_module(SequenceTagger(input_size=3, hidden_size=5, n_classes=7))
    for note in range(8):  # metadata of every length modulo 8
        spec.meta["note"] = "x" * note
        data = write_lsl(spec, version=version)
        fields = struct.unpack_from("<8sIIIIiiQQQQQQ16x", data)
        assert fields[0] == b"LSTMLITE" and fields[1] == version and fields[2] == HEADER_BYTES
        n_tensors, tensor_off, data_off = fields[4], fields[8], fields[9]
        assert tensor_off % 8 == 0 and data_off % 8 == 0, note
        for i in range(n_tensors):
            offset = struct.unpack_from("<32sIIIIQQ", data, tensor_off + 64 * i)[5]
            assert (data_off + offset) % 8 == 0, (version, note, i)


def test_a_shared_row_scale_needs_version_3():
    """One scale for every row of a matrix is a version 3 form (lsl.h): asked for an older
    version, the writer refuses a matrix quantized per tensor rather than write a file
    its own reader refuses."""
    from lstmlite.export.lsl import spec_from_module

    torch.manual_seed(0)
    spec = spec_from_module(torch.nn.GRU(3, 4, batch_first=True))
    codes = np.random.default_rng(1).integers(-127, 128, (12, 3)).astype(np.int8)
    per_row = np.linspace(0.1, 0.2, 12).astype(np.float32)
    spec.layers[0].directions[0]["w_ih"] = QTensor(codes, per_row)
    write_lsl(spec, weights="auto", version=1)  # one scale per row: version 1 holds it
    shared = np.full(12, 0.1234567, np.float32)  # not a float16: the scale's own form needs no version 3
    spec.layers[0].directions[0]["w_ih"] = QTensor(codes, shared)
    back = read_lsl(write_lsl(spec, weights="auto", version=3)).layers[0].directions[0]["w_ih"]
    np.testing.assert_array_equal(back.scale, shared)
    for version in (1, 2):
        with pytest.raises(ValueError, match="needs version 3"):
            write_lsl(spec, weights="auto", version=version)


def test_codes_down_to_minus_8_are_stored_as_int4():
    """int4 codes span [-8, 7]: a matrix whose codes reach -8 (imported, or made by hand)
    is still 4-bit, two codes a byte (12 x 4 codes: 24 bytes), not int8 at twice that."""
    from lstmlite.export.lsl import spec_from_module
    from lstmlite.runtime.lsl import describe_lsl

    torch.manual_seed(0)
    spec = spec_from_module(torch.nn.GRU(4, 4, batch_first=True))
    codes = np.random.default_rng(2).integers(1, 8, (12, 4)).astype(np.int8)
    codes[::2] *= -1
    codes[0, 0] = -8
    spec.layers[0].directions[0]["w_ih"] = QTensor(codes, np.linspace(0.1, 0.2, 12).astype(np.float32))
    rows = {r["name"]: r for r in describe_lsl(write_lsl(spec, weights="auto"))}
    assert rows["l0.0.w_ih"]["dtype"] == "int4" and rows["l0.0.w_ih"]["data"] == 24


def test_an_embedding_kept_float_on_request():
    """quantize_embedding=False keeps a token model's embedding in float32 exactly while
    the matrices take int8."""
    from lstmlite.export.lsl import spec_from_module
    from lstmlite.nn import SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(vocab_size=30, embed_dim=6, hidden_size=8, n_classes=3).eval()
    back = read_lsl(write_lsl(spec_from_module(model), weights="int8", quantize_embedding=False))
    assert isinstance(back.embedding, np.ndarray)
    np.testing.assert_array_equal(back.embedding, model.embedding.weight.detach().numpy())
    assert isinstance(back.layers[0].directions[0]["w_ih"], QTensor)


def test_engine_takes_its_metadata_and_mac_count_from_one_parse(monkeypatch):
    """Engine reads the metadata and the MAC count (for ``threads_for``) of the file it
    loads through ``meta_and_macs``, one Python parse (each checks the CRC over the whole
    file), and they equal what ``read_meta`` and ``macs_from_image`` give alone. The MACs
    by hand for a language model whose head runs every step: 4·12·(8 + 12) + 40·12."""
    from lstmlite.nn import LanguageModel
    from lstmlite.runtime import lsl
    from lstmlite.export.lsl import spec_from_module

    model = LanguageModel(vocab_size=40, embed_dim=8, hidden_size=12)
    blob = write_lsl(spec_from_module(model))
    meta, macs = lsl.meta_and_macs(blob)
    assert meta == lsl.read_meta(blob) and macs == lsl.macs_from_image(blob) == 4 * 12 * (8 + 12) + 40 * 12
    parses = []
    real_parse = lsl._parse
    monkeypatch.setattr(lsl, "_parse", lambda data: parses.append(len(data)) or real_parse(data))
    engine = rt.Engine(blob, threads=2)
    assert parses == [len(blob)]
    steps = -(-rt.engine.MIN_MACS_PER_THREAD // macs)  # the fewest that give each of 2 threads its minimum
    assert engine.threads_for(2, steps) == 2 and engine.threads_for(2, steps - 1) == 1
