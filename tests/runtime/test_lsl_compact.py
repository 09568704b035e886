"""The compact table (.lsl versions 4 and 5): variable-length records with the scales,
masks and block indices inside their matrix's record; version 5 adds a CRC-32 of the
file. Round trips against the fixed-record version 3, any flipped bit or cut refused by
the checksum, corrupt records (re-sealed with a valid checksum, so the parser itself
is exercised) refused by both readers naming what is wrong, and older versions read."""

import zlib


import numpy as np
import pytest
import torch

from lstmlite import runtime as rt
from lstmlite.compress import LowRankConfig, MagnitudePruneConfig, WeightQuantConfig, compress_
from lstmlite.nn import SequenceClassifier
from lstmlite.runtime.bench import prune_blocks
from lstmlite.runtime.lsl import FILE_VERSION, LslFormatError, describe_lsl, read_lsl
from lstmlite.export.lsl import spec_from_module, write_lsl


def _fastgrnn(prune: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=12, hidden_size=32, n_classes=9, cell="fastgrnn",
                               rnn_options={"wrank": 8, "urank": 8}).eval()
    if prune:
        compress_(model, MagnitudePruneConfig(sparsity=0.5))
    compress_(model, WeightQuantConfig(bits=4, scale_bits=16))
    return model


def _lstm_lowrank() -> torch.nn.Module:
    torch.manual_seed(1)
    model = SequenceClassifier(input_size=12, hidden_size=16, n_classes=9).eval()
    compress_(model, LowRankConfig(rank=4))
    compress_(model, WeightQuantConfig(bits=8, granularity="per_tensor"))
    return model


def _block_sparse() -> torch.nn.Module:
    torch.manual_seed(2)
    lstm = torch.nn.LSTM(20, 32, batch_first=True)
    prune_blocks(lstm, 0.75)
    return lstm


CASES = {  # model, weights form: every companion kind (scale f32 / f16 / one, mask, rowptr + bcol)
    "fastgrnn-int4-lowrank": (lambda: _fastgrnn(False), "auto"),
    "fastgrnn-int4-lowrank-pruned": (lambda: _fastgrnn(True), "auto"),
    "lstm-lowrank-int8-per-tensor": (_lstm_lowrank, "auto"),
    "lstm-block-sparse": (_block_sparse, "int8-sparse"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def files(request):
    make, weights = CASES[request.param]
    spec = spec_from_module(make())
    return write_lsl(spec, weights=weights), write_lsl(spec, weights=weights, version=3)


def test_compact_file_reads_back_as_the_fixed_one_and_runs_the_same(files):
    new, old = files
    assert int.from_bytes(new[8:12], "little") == FILE_VERSION and len(new) < len(old)
    a, b = read_lsl(new), read_lsl(old)
    assert repr(a.layers) == repr(b.layers) and repr(a.head_weight) == repr(b.head_weight)
    x = np.random.default_rng(0).standard_normal((2, 5, a.layers[0].input_size)).astype(np.float32)
    np.testing.assert_array_equal(rt.Engine(new).run(x), rt.Engine(old).run(x))
    rows = describe_lsl(new)
    assert sum(r["bytes"] for r in rows) == len(new)
    # companions cost no record of their own
    assert all(r["record"] == 0 for r in rows if r["name"].endswith((".scale", ".mask", ".rowptr", ".bcol")))



def _leb128(value: int, width: int = 0) -> bytes:
    """``value`` as an unsigned LEB128 varint, padded with continuation bytes to
    ``width`` bytes (a longer encoding of the same value) when given."""
    out = []
    while True:
        out.append(value & 0x7F)
        value >>= 7
        if not value:
            break
    out += [0] * (width - len(out))
    return bytes([b | 0x80 for b in out[:-1]] + out[-1:])


def test_describe_counts_each_records_table_bytes(files):
    """A version-5 record is its name length byte, the name, dtype and flags bytes, a
    varint per dim, one for the data's byte count and, sparse, one for the block-column
    count; its companions ride in it. A version-3 tensor, companions too, costs a 64-byte
    record and the padding of its data to 8 bytes."""
    new, old = files
    rows = {r["name"]: r for r in describe_lsl(new)}
    companions = (".scale", ".mask", ".rowptr", ".bcol")
    checked = 0
    for name, row in rows.items():
        if name.startswith("(") or name.endswith(companions):
            continue
        want = 1 + len(name) + 2 + sum(len(_leb128(d)) for d in row["shape"]) + len(_leb128(row["data"]))
        if row["dtype"] == "int8 block-sparse":
            want += len(_leb128(rows[f"{name}.bcol"]["shape"][0]))
        assert row["record"] == want, name
        checked += 1
    assert checked >= 4
    for row in describe_lsl(old)[:-1]:
        assert row["record"] == 64 + -row["data"] % 8, row["name"]
        assert row["bytes"] == row["record"] + row["data"]


def _refused(blob: bytes, match: str) -> None:
    with pytest.raises(rt.RuntimeError_):
        rt.Engine(blob)
    with pytest.raises(LslFormatError, match=match):
        read_lsl(blob)


def _sealed(body: bytes) -> bytes:
    """A version-5 file from its body: the body and its CRC-32 (an independent zlib call)."""
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_any_flipped_bit_or_cut_is_refused_by_the_checksum(files):
    blob, _ = files
    assert int.from_bytes(blob[-4:], "little") == zlib.crc32(blob[:-4])  # the trailer is zlib's CRC-32
    rng = np.random.default_rng(11)
    for pos in sorted(set(rng.integers(12, len(blob), 60).tolist())):  # past magic + version
        bad = bytearray(blob)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(rt.RuntimeError_, match="checksum"):
            rt.Engine(bytes(bad))
        with pytest.raises(LslFormatError, match="checksum mismatch"):
            read_lsl(bytes(bad))
    for cut in (16, len(blob) // 2, len(blob) - 1):
        with pytest.raises(rt.RuntimeError_, match="checksum"):
            rt.Engine(blob[:cut])
    _refused(blob[:15], "truncated")
    # version 4 (no checksum) is still read: the same model, four bytes fewer
    old = blob[:8] + (4).to_bytes(4, "little") + blob[12:-4]
    x = np.random.default_rng(0).standard_normal((1, 3, read_lsl(blob).layers[0].input_size)).astype(np.float32)
    np.testing.assert_array_equal(rt.Engine(old).run(x), rt.Engine(blob).run(x))


def test_corrupt_compact_records_are_refused_naming_what_is_wrong():
    blob = write_lsl(spec_from_module(_fastgrnn(True)), weights="auto")
    rt.Engine(blob)
    body = blob[:-4]
    rec = body.index(b"\x0bl0.0.w_ih.u")  # the record: name length, name, dtype, flags, ...
    flags = rec + 1 + 11 + 1

    def patched(pos: int, value: int) -> bytes:
        bad = bytearray(body)
        bad[pos] = value
        return _sealed(bytes(bad))

    assert _sealed(body) == blob
    _refused(_sealed(body[:-1]), "runs past the end")
    _refused(_sealed(body + b"\0"), "follow the last tensor record")
    _refused(patched(flags, blob[flags] | 0x40), "unknown flag bits")
    _refused(patched(flags, blob[flags] & ~0x02), "scale flags")  # codes without their scales
    _refused(patched(flags - 1, 8), "only a companion")  # a mask dtype as a record of its own
    _refused(patched(rec, 0), "name length 0")
    _refused(patched(rec, 40), "name length 40")
    _refused(patched(rec, 32), "name length 32")  # NAME_BYTES - 1 is the longest a name may be
    _refused(patched(flags + 1, 0), "zero dim")
    _refused(patched(14, 0), "layer count 0")
    _refused(patched(14, 65), "layer count 65")  # the C loader's bounds: 1 to 64
    twin = body.index(b"\x0bl0.0.w_ih.v")  # the second factor renamed as the first
    _refused(patched(twin + 11, ord("u")), "tensor l0.0.w_ih.u is stored twice")


def test_varints_are_read_up_to_nine_bytes_and_up_to_their_limit():
    """A record's first dim (32) written in 9 bytes is the same file to both loaders; in
    10 bytes it is refused. A dim of 2^30 + 1 is refused as past the dims' limit; 2^30
    itself is within it (the file is refused later, for its data, not for that)."""
    blob = write_lsl(spec_from_module(_fastgrnn(True)), weights="auto")
    body = blob[:-4]
    at = body.index(b"\x0bl0.0.w_ih.u") + 1 + 11 + 2  # name length, name, dtype, flags: the first dim
    assert body[at] == 32 and _leb128(32) == b"\x20" and _leb128(300) == b"\xac\x02"

    def with_dim(encoded: bytes) -> bytes:
        return _sealed(body[:at] + encoded + body[at + 1:])

    nine = with_dim(_leb128(32, 9))
    assert len(nine) == len(blob) + 8
    x = np.random.default_rng(3).standard_normal((1, 4, 12)).astype(np.float32)
    np.testing.assert_array_equal(rt.Engine(nine).run(x), rt.Engine(blob).run(x))
    assert read_lsl(nine).layers[0].directions[0]["w_ih"].u.q.shape == (32, 8)
    _refused(with_dim(_leb128(32, 10)), "not a varint of at most 9 bytes")
    _refused(with_dim(_leb128((1 << 30) + 1)), "dims is 1073741825, more than 1073741824")
    with pytest.raises(LslFormatError) as err:
        read_lsl(with_dim(_leb128(1 << 30)))
    assert "more than" not in str(err.value)


def test_corrupt_compact_files_never_crash_the_loader():
    blob = write_lsl(spec_from_module(_fastgrnn(True)), weights="auto")
    body = blob[:-4]
    for cut in range(len(body)):  # re-sealed cuts: the parser, not the checksum, refuses them
        with pytest.raises(rt.RuntimeError_):
            rt.Engine(_sealed(body[:cut]))
    rng = np.random.default_rng(7)
    for _ in range(300):
        bad = bytearray(body)
        for pos in rng.integers(0, len(bad), size=rng.integers(1, 4)):
            bad[pos] ^= 1 << int(rng.integers(0, 8))
        sealed = _sealed(bytes(bad))
        try:
            rt.Engine(sealed).run(np.zeros((1, 3, 12), np.float32))
        except (rt.RuntimeError_, ValueError):
            pass
        try:
            read_lsl(sealed)
        except LslFormatError:
            pass


def _float_only_spec(cell: str, n_out: int = 0):
    """A one-layer float model with no value exact in IEEE half (every vector fp32): the
    only version-3 thing in it is what the test puts there."""
    from lstmlite.runtime.lsl import LayerSpec, ModelSpec

    rng = np.random.default_rng(3)
    gates = {"fastgrnn": 1, "lstm": 4}[cell]
    t = {"w_ih": rng.standard_normal((gates * 6, 5)), "w_hh": rng.standard_normal((gates * 6, 6)),
         "b_ih": rng.standard_normal(gates * 6), "b_hh": rng.standard_normal(gates * 6)}
    if cell == "fastgrnn":
        t["zn"] = np.array([0.3, 0.1])
    t = {k: (v / 3).astype(np.float32) for k, v in t.items()}
    head = dict(head_weight=(rng.standard_normal((n_out, 6)) / 3).astype(np.float32),
                head_bias=(rng.standard_normal(n_out) / 3).astype(np.float32), head_mode="last") if n_out else {}
    spec = ModelSpec([LayerSpec(cell, 5, 6, directions=[t])], **head)
    spec.validate()
    return spec


def test_a_fastgrnn_model_needs_version_3_even_when_nothing_else_does():
    """The fixed-record readers take FastGRNN layers from version 3 on (read_lsl refuses
    an older file with one): asked for version 2, the writer refuses (its docstring:
    "refused when the model needs something that version lacks") rather than write a
    file no reader takes. Float weights and fp32 vectors only, so that the cell alone
    decides."""
    spec = _float_only_spec("fastgrnn")
    with pytest.raises(ValueError, match="needs version 3"):
        write_lsl(spec, version=2)
    assert read_lsl(write_lsl(spec, version=3)).layers[0].cell == "fastgrnn"


def test_a_one_row_int8_matrix_has_a_per_row_scale_in_version_1():
    """A one-row matrix's single scale is its per-row scale, which version 1 has (the
    reader wants one scale per row, or from version 3 one for all rows): a model whose
    int8 head has one output is written as version 1 and runs as the newest file does."""
    spec = _float_only_spec("lstm", n_out=1)
    old, new = write_lsl(spec, weights="int8", version=1), write_lsl(spec, weights="int8")
    assert int.from_bytes(old[8:12], "little") == 1
    x = np.random.default_rng(4).standard_normal((2, 7, 5)).astype(np.float32)
    np.testing.assert_array_equal(rt.Engine(old).run(x), rt.Engine(new).run(x))


def test_older_versions_are_written_on_request_and_read():
    spec = spec_from_module(_fastgrnn(False))
    with pytest.raises(ValueError, match="needs version 3"):
        write_lsl(spec, weights="auto", version=2)  # FastGRNN and int4 came in version 3
    old = write_lsl(spec, weights="auto", version=3)
    assert int.from_bytes(old[8:12], "little") == 3
    assert repr(read_lsl(old).layers) == repr(read_lsl(write_lsl(spec, weights="auto")).layers)
    future = bytearray(write_lsl(spec, weights="auto"))
    future[8] = FILE_VERSION + 1
    _refused(bytes(future), f"version {FILE_VERSION + 1} is not supported")
    v4 = write_lsl(spec, weights="auto", version=4)
    assert int.from_bytes(v4[8:12], "little") == 4 and len(v4) == len(write_lsl(spec, weights="auto")) - 4
