"""Regression tests for three checks of the C .lsl loader (``lsl_file.c``) that no
other test reached: a sparse matrix's block-column count, bitmask bits past the end
of a masked matrix, and a fixed-record tensor running one byte past the file; and for
checks of the Python reader (``read_lsl``) on the same kind of patched file: a sparse
matrix's row pointers and block columns, the header's size, and the one-scale rule of
versions before 3 (the C loader refuses those files too, where it checks the field).

Each test takes a valid version-3 file (fixed 64-byte tensor records with offsets, so
one record can be patched without moving anything else), shows that it loads, patches
the one field the check guards, and asserts that the runtime refuses the result as a
malformed file (``LSL_ERR_FORMAT``).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from lstmlite import runtime as rt
from lstmlite.runtime import _lsl
from lstmlite.export.lsl import spec_from_state_dict, write_lsl
from lstmlite.runtime.lsl import DTYPE_I8_MASKED, DTYPE_I8_SPARSE, LslFormatError, read_lsl

# lsl.h, versions 1 to 3: header fields used here, and the 64-byte tensor record
# (name, dtype, ndim, dims[0], dims[1], offset from data_off, nbytes)
NUM_TENSORS, TENSOR_OFF, DATA_OFF, FILE_SIZE = 20, 40, 48, 56
RECORD = struct.Struct("<32sIIIIQQ")
DTYPE, DIM0, OFFSET, NBYTES = 1, 3, 5, 6  # indices into a record's fields
MALFORMED = "error -6: malformed .lsl model file"  # what the Python API says for LSL_ERR_FORMAT

I, H = 16, 3  # w_ih (12, 16): one (1, 4) block per row; w_hh (12, 3): 36 elements, 36 % 8 == 4


@pytest.fixture(scope="module")
def v3_file() -> bytes:
    """A one-layer int8 LSTM in version 3, with w_ih stored block-sparse (12 blocks)
    and w_hh stored bitmask-sparse (5 int8 codes, then 3 bytes of padding)."""
    rng = np.random.default_rng(0)
    w_ih = np.zeros((4 * H, I), np.float32)
    for r in range(4 * H):
        c = 4 * (r % (I // 4))
        w_ih[r, c:c + 4] = rng.uniform(0.5, 1.0, 4)
    w_hh = np.zeros((4 * H, H), np.float32)
    w_hh.flat[[0, 5, 13, 22, 30]] = [1.0, -0.5, 0.25, 0.75, -1.0]
    state = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh,
             "bias_ih_l0": np.full(4 * H, 0.1, np.float32), "bias_hh_l0": np.zeros(4 * H, np.float32)}
    blob = write_lsl(spec_from_state_dict(state), weights="int8-sparse", version=3)
    assert _u32(blob, 8) == 3
    assert _record(blob, "l0.0.w_ih")[1][DTYPE] == DTYPE_I8_SPARSE
    assert _record(blob, "l0.0.w_hh")[1][DTYPE] == DTYPE_I8_MASKED
    rt.Engine(blob)  # the unpatched file loads
    return blob


def _u32(blob: bytes, pos: int) -> int:
    return int.from_bytes(blob[pos:pos + 4], "little")


def _u64(blob: bytes, pos: int) -> int:
    return int.from_bytes(blob[pos:pos + 8], "little")


def _records(blob: bytes) -> list[tuple[int, list]]:
    """(position, fields) of every tensor record, in table order."""
    base = _u64(blob, TENSOR_OFF)
    return [(base + i * RECORD.size, list(RECORD.unpack_from(blob, base + i * RECORD.size)))
            for i in range(_u32(blob, NUM_TENSORS))]


def _record(blob: bytes, name: str) -> tuple[int, list]:
    """The record of tensor ``name``: its position and fields."""
    return next(r for r in _records(blob) if r[1][0].rstrip(b"\0") == name.encode())


def _data(blob: bytes, name: str) -> int:
    """Where tensor ``name``'s data starts in the file."""
    return _u64(blob, DATA_OFF) + _record(blob, name)[1][OFFSET]


def _patched(blob: bytes, name: str, fields: dict[int, int]) -> bytearray:
    """``blob`` with tensor ``name``'s record fields (index: new value) changed."""
    pos, rec = _record(blob, name)
    for index, value in fields.items():
        rec[index] = value
    out = bytearray(blob)
    RECORD.pack_into(out, pos, *rec)
    return out


def _refused(blob: bytes | bytearray) -> None:
    """The C loader itself refuses ``blob`` (the extension's model, before any Python
    reading of the file's metadata)."""
    with pytest.raises(rt.RuntimeError_, match=MALFORMED):
        _lsl.Model(bytes(blob), 0)


def test_sparse_matrix_with_fewer_block_columns_than_blocks_is_refused(v3_file: bytes) -> None:
    """load_sparse: ``rowptr[rows]`` blocks need as many ``.bcol`` entries. One fewer
    would make the packer read 2 bytes past the column indices (here they would still
    hold the dropped entry, so only the check tells the file is wrong)."""
    blocks = _u32(v3_file, _data(v3_file, "l0.0.w_ih.rowptr") + 4 * 4 * H)  # rowptr[rows]
    _, bcol = _record(v3_file, "l0.0.w_ih.bcol")
    assert blocks == bcol[DIM0] == 4 * H
    _refused(_patched(v3_file, "l0.0.w_ih.bcol", {DIM0: blocks - 1, NBYTES: 2 * (blocks - 1)}))


def test_masked_matrix_with_a_mask_bit_past_its_end_is_refused(v3_file: bytes) -> None:
    """expand: bits of a bitmask past rows * cols must be clear. A bit set there (with
    one more value byte, so set bits and values still agree) is a value no element
    owns: refused, not silently dropped."""
    n = 4 * H * H
    assert n % 8 == 4
    _, values = _record(v3_file, "l0.0.w_hh")
    assert values[NBYTES] == 5  # 5 codes, then 3 bytes of padding: room for a sixth
    bad = _patched(v3_file, "l0.0.w_hh", {NBYTES: values[NBYTES] + 1})
    bad[_data(v3_file, "l0.0.w_hh.mask") + n // 8] |= 1 << (n % 8)  # the first bit past the end
    _refused(bad)


def test_fixed_record_tensor_one_byte_past_the_file_is_refused(v3_file: bytes) -> None:
    """tensor_at: a tensor's data must lie inside the file. Cut the file one byte short
    of its last tensor's end, with the header's size field saying so (a plain cut is
    refused earlier, by that field): that tensor runs exactly one byte past the end.
    The C loader must refuse it itself (the Python reader of the metadata would too,
    but a C user has no such reader)."""
    data_off = _u64(v3_file, DATA_OFF)
    end = max(data_off + rec[OFFSET] + rec[NBYTES] for _, rec in _records(v3_file))  # the last tensor's end
    assert end <= _u64(v3_file, FILE_SIZE) == len(v3_file)

    def cut(size: int) -> bytes:
        out = bytearray(v3_file[:size])
        out[FILE_SIZE:FILE_SIZE + 8] = size.to_bytes(8, "little")
        return bytes(out)

    rt.Engine(cut(end))  # cut right at the last tensor's end: still whole
    _refused(cut(end - 1))
    rt.read_lsl(cut(end))  # and lstmlite.runtime.lsl's reader draws the same line
    with pytest.raises(rt.LslFormatError, match="lies outside the file"):
        rt.read_lsl(cut(end - 1))


def _poked(blob: bytes, pos: int, fmt: str, value: int) -> bytes:
    out = bytearray(blob)
    struct.pack_into(fmt, out, pos, value)
    return bytes(out)


def _refused_by_both(blob: bytes, match: str) -> None:
    with pytest.raises(LslFormatError, match=match):
        read_lsl(blob)
    _refused(blob)


def test_python_reader_refuses_row_pointers_that_do_not_start_at_zero(v3_file: bytes) -> None:
    """w_ih's rowptr is 0, 1, ..., 12 (one block a row). Starting it at 1 keeps it
    non-decreasing and ending at the block count: only the first entry is wrong (read
    as is, the rows would own one block fewer than there are columns)."""
    at = _data(v3_file, "l0.0.w_ih.rowptr")
    assert [_u32(v3_file, at + 4 * r) for r in range(4 * H + 1)] == list(range(4 * H + 1))
    _refused_by_both(_poked(v3_file, at, "<i", 1), "rowptr does not describe 12 blocks")


def test_python_reader_refuses_a_block_column_at_the_matrix_edge(v3_file: bytes) -> None:
    """16 columns are 4 blocks, 0 to 3: block column 4 is the first one outside."""
    at = _data(v3_file, "l0.0.w_ih.bcol")
    read_lsl(_poked(v3_file, at, "<H", 3))  # the last block column still reads
    _refused_by_both(_poked(v3_file, at, "<H", 4), "a block column lies outside the matrix")


def test_python_reader_refuses_a_row_repeating_a_block_column(v3_file: bytes) -> None:
    """rowptr[1] = 2 gives row 0 the first two blocks (columns 0 and 1: still a valid
    file) and row 1 none; the second block's column set to 0 repeats row 0's first."""
    two = _poked(v3_file, _data(v3_file, "l0.0.w_ih.rowptr") + 4, "<i", 2)
    assert read_lsl(two).layers[0].directions[0]["w_ih"].q[0, 4:8].any()  # row 0 now holds block 1 too
    _refused_by_both(_poked(two, _data(v3_file, "l0.0.w_ih.bcol") + 2, "<H", 0),
                     "block columns do not increase strictly")


@pytest.mark.parametrize("header_bytes", [95, 97])
def test_python_reader_refuses_a_header_size_other_than_96(v3_file: bytes, header_bytes: int) -> None:
    with pytest.raises(LslFormatError, match="header sizes do not match"):
        read_lsl(_poked(v3_file, 12, "<I", header_bytes))


@pytest.mark.parametrize("version", [2, 3])
def test_one_scale_for_every_row_is_read_from_version_3_only(version: int) -> None:
    """Version 3 may store one scale for all rows of an int8 matrix; versions 1 and 2
    stored one per row, so a single scale there is a broken file. The row scales are
    made equal and the first kept as the only one: version 3 reads the same matrix."""
    rng = np.random.default_rng(1)
    state = {"weight_ih_l0": rng.normal(size=(8, 3)).astype(np.float32),
             "weight_hh_l0": rng.normal(size=(8, 2)).astype(np.float32)}
    blob = write_lsl(spec_from_state_dict(state), weights="int8", version=version)
    assert _u32(blob, 8) == version
    _, scale = _record(blob, "l0.0.w_hh.scale")
    assert scale[DIM0] == 8 and scale[NBYTES] == 32
    one = bytes(_patched(blob, "l0.0.w_hh.scale", {DIM0: 1, NBYTES: 4}))
    if version < 3:
        with pytest.raises(LslFormatError, match="has no 8 .or, from version 3, one. l0.0.w_hh.scale"):
            read_lsl(one)
    else:
        first = np.frombuffer(blob, np.float32, 1, _data(blob, "l0.0.w_hh.scale"))[0]
        w_hh = read_lsl(one).layers[0].directions[0]["w_hh"]
        np.testing.assert_array_equal(w_hh.scale, np.full(8, first, np.float32))
        np.testing.assert_array_equal(w_hh.q, read_lsl(blob).layers[0].directions[0]["w_hh"].q)
