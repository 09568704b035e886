"""The ``.lsl`` model file: what the native runtime loads.

A file is a versioned little-endian header, a layer table, a tensor table and the
tensor data (the byte layout is documented in ``lsl.h`` and mirrored by the
constants below). This module holds the format -- its constants, the
:class:`ModelSpec` a file describes -- and the reader: :func:`read_lsl` (a spec back,
for inspection), :func:`describe_lsl` (where each byte goes) and :func:`read_meta`.
The writer is :mod:`lstmlite.export.lsl`; the C loader (``lsl_file.c``) is the
bounds-checked parser the engine uses.

Tensor names in the file: ``l{k}.{d}.w_ih|w_hh|w_hr|b_ih|b_hh`` (layer k, direction
d), ``l{k}.0.zn`` (FastGRNN), ``emb``, ``head.w``, ``head.b``; a low-rank matrix NAME
is ``NAME.u`` and ``NAME.v``; a quantized tensor NAME stores its per-row scales in
``NAME.scale``. Stored forms of a matrix: fp32, int8, int4 (two codes per byte),
each dense or bitmask-sparse (``NAME.mask``, version 3), and the (1, 4)-block
sparse int8 form the runtime's sparse kernels run (``NAME.rowptr``, ``NAME.bcol``;
version 2). Version 5 files (what lstmlite writes) end with a CRC-32 of every
byte before it, so a corrupted or truncated file is refused before it is parsed.

Example:
    >>> import torch
    >>> from lstmlite.export.lsl import spec_from_module, write_lsl
    >>> blob = write_lsl(spec_from_module(torch.nn.LSTM(4, 8, batch_first=True)), weights="int8")
    >>> read_lsl(blob).layers[0].hidden_size
    8
"""

from __future__ import annotations

import json
import logging
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "FILE_VERSION", "HEADER_BYTES", "QTensor", "LayerSpec", "ModelSpec", "LslFormatError", "read_lsl",
    "read_meta", "WEIGHT_FORMS", "LowRankTensor", "describe_lsl", "unpack_nibbles", "DTYPE_NAMES", "head_mode_of",
    "COMPACT_VERSION", "FIXED_VERSION", "CHECKSUM_VERSION", "file_checksum", "macs_from_image", "meta_and_macs",
]

FILE_VERSION = 5  # the newest this module writes and reads: the compact table and a checksum
COMPACT_VERSION = 4  # variable-length records, companions inside their matrix's record, no offsets
CHECKSUM_VERSION = 5  # the compact table followed by the CRC-32 of every byte before it
CHECKSUM_BYTES = 4
FIXED_VERSION = 3  # the newest fixed-record layout (64-byte records); still read, and written on request
DENSE_FILE_VERSION = 1
MAGIC = b"LSTMLITE"
HEADER_BYTES = 96
LAYER_RECORD = 32
TENSOR_RECORD = 64
NAME_BYTES = 32
ALIGN = 8  # tensor data offsets; readers copy out, so they need no more (small files matter)

DTYPE_F32, DTYPE_I8, DTYPE_I8_SPARSE, DTYPE_I32, DTYPE_U16 = 1, 2, 3, 4, 5
# version 3: int4 codes packed two per byte, and bitmask-sparse matrices (the non-zero
# values in row-major order + NAME.mask, one bit per element)
DTYPE_I4, DTYPE_U8, DTYPE_F32_MASKED, DTYPE_I8_MASKED, DTYPE_I4_MASKED = 7, 8, 9, 10, 11
DTYPE_F16 = 12  # a 1-D float vector whose values are all exact in IEEE half (version 3)
WEIGHT_FORMS = ("auto", "fp32", "int8", "int7", "int7r", "int8-sparse", "int4")
SPARSE_BLOCK = 4  # columns per block of the sparse form
_FILE_DTYPES = {DTYPE_F32: "<f4", DTYPE_I8: "i1", DTYPE_I8_SPARSE: "i1", DTYPE_I32: "<i4", DTYPE_U16: "<u2",
                DTYPE_I4: "u1", DTYPE_U8: "u1", DTYPE_F32_MASKED: "<f4", DTYPE_I8_MASKED: "i1",
                DTYPE_I4_MASKED: "u1", DTYPE_F16: "<f2"}
_DTYPE_VERSION = {DTYPE_F32: 1, DTYPE_I8: 1, DTYPE_I8_SPARSE: 2, DTYPE_I32: 2, DTYPE_U16: 2, DTYPE_I4: 3,
                  DTYPE_U8: 3, DTYPE_F32_MASKED: 3, DTYPE_I8_MASKED: 3, DTYPE_I4_MASKED: 3, DTYPE_F16: 3}
#: what each dtype stores, for per-tensor listings (describe_lsl)
DTYPE_NAMES = {DTYPE_F32: "fp32", DTYPE_I8: "int8", DTYPE_I8_SPARSE: "int8 block-sparse", DTYPE_I32: "int32 index",
               DTYPE_U16: "uint16 index", DTYPE_I4: "int4", DTYPE_U8: "bitmask",
               DTYPE_F32_MASKED: "fp32 bitmask-sparse",
               DTYPE_I8_MASKED: "int8 bitmask-sparse", DTYPE_I4_MASKED: "int4 bitmask-sparse",
               DTYPE_F16: "fp16 (exact)"}
_MASKED_CODES = {DTYPE_F32_MASKED, DTYPE_I8_MASKED, DTYPE_I4_MASKED}
CELL_CODES = {"lstm": 1, "gru": 2, "fastgrnn": 3}
HEAD_CODES = {"none": 0, "last": 1, "each": 2}
POOL_CODES = {"last": 0, "mean": 1, "max": 2}
GATES = {"lstm": 4, "gru": 3, "fastgrnn": 1}  # gate blocks of H rows in w_ih / w_hh
#: FastGRNN nonlinearities in the layer record (fields 6 and 7: gate, update)
NONLINEARITY_CODES = {"sigmoid": 1, "tanh": 2}

# compact record flags (version 4; see lsl.h)
FLAG_2D, FLAG_SCALE, FLAG_SCALE_F16, FLAG_SCALE_ONE = 1, 2, 4, 8
FLAG_KNOWN = 0x0F
CODE_DTYPES = {DTYPE_I8, DTYPE_I8_SPARSE, DTYPE_I4, DTYPE_I8_MASKED, DTYPE_I4_MASKED}  # codes: have scales
COMPANION_DTYPES = {DTYPE_I32, DTYPE_U16, DTYPE_U8}  # in version 4 only inside a matrix's record
COMPACT_PREFIX = 15  # magic, u32 version, u8 head_mode, u8 pooling, u8 num_layers

_HEADER = struct.Struct("<8sIIIIii QQQQ QQ 16s")
assert _HEADER.size == HEADER_BYTES
_LAYER = struct.Struct("<8i")
_TENSOR = struct.Struct("<32sIIIIQQ")
assert _TENSOR.size == TENSOR_RECORD


log = logging.getLogger(__name__)


class LslFormatError(ValueError):
    """A .lsl file that is malformed or of an unsupported version."""


class QTensor(NamedTuple):
    """An int8 matrix with one float32 scale per row: value ~= q * scale[:, None]."""

    q: np.ndarray  # (rows, cols) int8
    scale: np.ndarray  # (rows,) float32

    def dequantize(self) -> np.ndarray:
        return self.q.astype(np.float32) * self.scale[:, None]


class LowRankTensor(NamedTuple):
    """A matrix stored as two factors, W = u @ v: u (rows, r), v (r, cols), each a
    float32 array or a :class:`QTensor`. The runtime computes x W^T as (x v^T) u^T."""

    u: Any
    v: Any

    @property
    def shape(self) -> tuple[int, int]:
        return (_rows(self.u)[0], _rows(self.v)[1])

    def dense(self) -> np.ndarray:
        """The float32 product u @ v (QTensor factors dequantized)."""
        u, v = (f.dequantize() if isinstance(f, QTensor) else f for f in (self.u, self.v))
        return (np.asarray(u, np.float64) @ np.asarray(v, np.float64)).astype(np.float32)


def unpack_nibbles(packed: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`pack_nibbles`: the first ``n`` codes of each row (int8)."""
    p = np.asarray(packed, np.uint8)
    both = np.stack([p & 0x0F, p >> 4], axis=-1).reshape(p.shape[:-1] + (-1,)).astype(np.int8)
    both = np.where(both > 7, both - 16, both).astype(np.int8)
    return np.ascontiguousarray(both[..., :n])


Tensor = Any  # np.ndarray (float32), QTensor, or LowRankTensor of those


@dataclass
class LayerSpec:
    """One recurrent layer; ``directions[d]`` maps w_ih, w_hh, [w_hr], [b_ih, b_hh].

    FastGRNN (``cell="fastgrnn"``, one direction): w_ih = W (H, I), w_hh = U (H, H),
    b_ih = b_z (the gate's bias), b_hh = b_h (the update's), ``zn`` = [ζ, ν] (2,)
    after their sigmoid; ``gate`` / ``update`` name the nonlinearities:
    ``z = gate(W x + U h + b_z)``, ``h~ = update(W x + U h + b_h)``,
    ``h' = (ζ (1 - z) + ν) h~ + z h``.
    """

    cell: str
    input_size: int
    hidden_size: int
    proj_size: int = 0
    bias: bool = True
    directions: list[dict[str, Tensor]] = field(default_factory=list)
    gate: str = "sigmoid"
    update: str = "tanh"

    @property
    def num_directions(self) -> int:
        return len(self.directions)

    @property
    def output_size(self) -> int:
        return self.num_directions * (self.proj_size or self.hidden_size)


@dataclass
class ModelSpec:
    """Everything the runtime needs: layers, optional embedding and head, metadata.

    ``head_mode``: ``none`` (outputs the top layer's sequence), ``last`` (head on pooled
    features: classifier, forecaster) or ``each`` (head at every step: language model).
    ``meta`` is free JSON kept in the file (model kind; a forecaster's horizon, targets, instance_norm).
    """

    layers: list[LayerSpec]
    embedding: Tensor | None = None
    head_weight: Tensor | None = None
    head_bias: np.ndarray | None = None
    head_mode: str = "none"
    pooling: str = "last"
    meta: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError when sizes do not chain (what the C loader would refuse)."""
        if not self.layers:
            raise ValueError("a model needs at least one recurrent layer")
        if self.head_mode not in HEAD_CODES or self.pooling not in POOL_CODES:
            raise ValueError(f"bad head_mode {self.head_mode!r} or pooling {self.pooling!r}")
        expected = _rows(self.embedding)[1] if self.embedding is not None else self.layers[0].input_size
        for k, layer in enumerate(self.layers):
            if layer.cell not in GATES:
                raise ValueError(f"layer {k}: the runtime runs lstm, gru and fastgrnn cells, not {layer.cell!r}")
            if layer.cell == "fastgrnn" and (layer.proj_size or not layer.bias or layer.num_directions != 1
                                             or layer.gate not in NONLINEARITY_CODES
                                             or layer.update not in NONLINEARITY_CODES):
                raise ValueError(f"layer {k}: a fastgrnn layer is one direction with biases, no projection, and "
                                 "sigmoid or tanh nonlinearities")
            if layer.input_size != expected:
                raise ValueError(f"layer {k} expects {layer.input_size} inputs, gets {expected}")
            if layer.num_directions not in (1, 2):
                raise ValueError(f"layer {k}: 1 or 2 directions, got {layer.num_directions}")
            g, h, p = GATES[layer.cell], layer.hidden_size, layer.proj_size
            for d, tensors in enumerate(layer.directions):
                want = {"w_ih": (g * h, layer.input_size), "w_hh": (g * h, p or h)}
                if p:
                    want["w_hr"] = (p, h)
                if layer.bias:
                    want.update(b_ih=(g * h,), b_hh=(g * h,))
                if layer.cell == "fastgrnn":
                    want["zn"] = (2,)
                for name, shape in want.items():
                    if name not in tensors or _rows(tensors[name]) != shape:
                        got = _rows(tensors[name]) if name in tensors else "missing"
                        raise ValueError(f"layer {k} direction {d}: {name} should be {shape}, got {got}")
                    t = tensors[name]
                    if isinstance(t, LowRankTensor) and _rows(t.u)[1] != _rows(t.v)[0]:
                        raise ValueError(f"layer {k} direction {d}: {name}'s factors {_rows(t.u)} and "
                                         f"{_rows(t.v)} do not chain")
            expected = layer.output_size
        if self.head_mode != "none":
            if self.head_weight is None or _rows(self.head_weight)[1] != expected:
                raise ValueError(f"head weight must be (n_out, {expected})")
            if self.head_bias is not None and self.head_bias.shape != (_rows(self.head_weight)[0],):
                raise ValueError("head bias does not match the head weight")


def _rows(t: Tensor) -> tuple[int, ...]:
    if isinstance(t, LowRankTensor):
        return t.shape
    return tuple(t.q.shape) if isinstance(t, QTensor) else tuple(np.shape(t))


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


class _Stored(NamedTuple):
    """One stored tensor as a file holds it, whichever layout: the fixed records of
    versions 1 to 3 or a compact record's values and companions (version 4)."""

    name: str
    dtype: int
    ndim: int
    d0: int
    d1: int
    raw: memoryview  # its data bytes
    record: int  # table bytes it costs (0 for a compact record's companions)


class _Parsed(NamedTuple):
    version: int
    head: int
    pool: int
    meta: bytes
    layers: list[tuple[int, ...]]  # cell, input, hidden, proj, directions, has_bias, gate, update
    tensors: list[_Stored]


def _parse(data: bytes) -> _Parsed:
    """The header, layer records and stored tensors of .lsl bytes, every offset and
    length checked against the file (dtypes and shapes are read_lsl's to check)."""
    if len(data) < 12 or data[:8] != MAGIC:
        raise LslFormatError("not a .lsl file (bad magic)")
    version = struct.unpack_from("<I", data, 8)[0]
    if not DENSE_FILE_VERSION <= version <= FILE_VERSION:
        raise LslFormatError(f".lsl version {version} is not supported (this lstmlite reads "
                             f"{DENSE_FILE_VERSION} to {FILE_VERSION})")
    if version >= CHECKSUM_VERSION:
        if len(data) < 12 + CHECKSUM_BYTES:
            raise LslFormatError("the file is truncated (no room for its checksum)")
        stored = struct.unpack_from("<I", data, len(data) - CHECKSUM_BYTES)[0]
        computed = file_checksum(data[:-CHECKSUM_BYTES])
        if stored != computed:
            raise LslFormatError(f"checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): "
                                 "the file is corrupt or truncated; export it again")
        data = data[:-CHECKSUM_BYTES]
    return _parse_compact(data, version) if version >= COMPACT_VERSION else _parse_fixed(data, version)


def file_checksum(body: bytes) -> int:
    """CRC-32 (IEEE 802.3, as zlib and the C loader's ``lsl_crc32``) of a file's bytes
    before its trailing checksum.

    Example:
        >>> hex(file_checksum(b"123456789"))  # the CRC-32 check value
        '0xcbf43926'
    """
    return zlib.crc32(body) & 0xFFFFFFFF


def _parse_fixed(data: bytes, version: int) -> _Parsed:
    """Versions 1 to 3: a 96-byte header, 32-byte layer and 64-byte tensor records,
    data at offsets from ``data_off``."""
    if len(data) < HEADER_BYTES:
        raise LslFormatError("file shorter than its header")
    (_, _, header_bytes, n_layers, n_tensors, head, pool, layer_off, tensor_off, data_off, total,
     meta_off, meta_len, _) = _HEADER.unpack_from(data)
    if header_bytes != HEADER_BYTES or total > len(data):
        raise LslFormatError("header sizes do not match the file")

    def need(off: int, size: int, what: str) -> None:
        if off < 0 or size < 0 or off + size > total:
            raise LslFormatError(f"{what} lies outside the file")

    need(layer_off, LAYER_RECORD * n_layers, "layer table")
    need(tensor_off, TENSOR_RECORD * n_tensors, "tensor table")
    need(meta_off, meta_len, "metadata")
    view = memoryview(data)
    layers = [_LAYER.unpack_from(data, layer_off + k * LAYER_RECORD) for k in range(n_layers)]
    tensors = []
    for i in range(n_tensors):
        raw_name, dtype, ndim, d0, d1, off, nbytes = _TENSOR.unpack_from(data, tensor_off + i * TENSOR_RECORD)
        name = raw_name.split(b"\0", 1)[0].decode("ascii", "replace")
        need(data_off + off, nbytes, f"tensor {name}")
        tensors.append(_Stored(name, dtype, ndim, d0, d1, view[data_off + off:data_off + off + nbytes],
                               TENSOR_RECORD + _align(nbytes, ALIGN) - nbytes))  # padding counted as table
    return _Parsed(version, head, pool, bytes(data[meta_off:meta_off + meta_len]), layers, tensors)


class _Cursor:
    """Reads a compact file front to back; every read is checked against its end."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise LslFormatError(f"{what} runs past the end of the file")
        self.pos += n
        return memoryview(self.data)[self.pos - n:self.pos]

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str, limit: int = 1 << 30) -> int:
        """An unsigned LEB128 value of at most 9 bytes, at most ``limit``."""
        value = 0
        for shift in range(0, 63, 7):
            b = self.u8(what)
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if value > limit:
                    raise LslFormatError(f"{what} is {value}, more than {limit}")
                return value
        raise LslFormatError(f"{what} is not a varint of at most 9 bytes")


def _parse_compact(data: bytes, version: int) -> _Parsed:
    """Version 4 (layout in lsl.h): variable-length records, each followed by its data
    and its matrix's companions; no offsets, no alignment, nothing after the last one."""
    cur = _Cursor(data, 8 + 4)
    head, pool, n_layers = cur.u8("the header"), cur.u8("the header"), cur.u8("the header")
    if not 1 <= n_layers <= 64:  # the C loader's bounds
        raise LslFormatError(f"layer count {n_layers} (1 to 64)")
    n_records = cur.varint("the record count", 4096)
    meta_len = cur.varint("the metadata length", len(data))
    layers = []
    for k in range(n_layers):
        cell, bits, fns = cur.take(3, f"layer record {k}")
        if bits & ~0x07:
            raise LslFormatError(f"layer record {k}: unknown flag bits {bits:#x}")
        sizes = [cur.varint(f"layer record {k}'s {f}") for f in ("input size", "hidden size", "projection")]
        layers.append((cell, *sizes, bits & 3, bits >> 2 & 1, fns & 0x0F, fns >> 4))
    meta = bytes(cur.take(meta_len, "metadata"))
    tensors = []
    for i in range(n_records):
        tensors += _compact_record(cur, i)
    if cur.pos != len(data):
        raise LslFormatError(f"{len(data) - cur.pos} bytes follow the last tensor record")
    return _Parsed(version, head, pool, meta, layers, tensors)


def _compact_record(cur: _Cursor, i: int) -> list[_Stored]:
    """Record i: its values, then its companions under their version-3 names."""
    start = cur.pos
    name_len = cur.u8(f"tensor record {i}")
    if not 1 <= name_len < NAME_BYTES:
        raise LslFormatError(f"tensor record {i}: name length {name_len} (1 to {NAME_BYTES - 1})")
    raw_name = bytes(cur.take(name_len, f"tensor record {i}'s name"))
    name = raw_name.decode("ascii", "replace")
    if b"\0" in raw_name:
        raise LslFormatError(f"tensor record {i}: a NUL byte in its name")
    dtype, flags = cur.u8(f"tensor {name}'s dtype"), cur.u8(f"tensor {name}'s flags")
    if flags & ~FLAG_KNOWN:
        raise LslFormatError(f"tensor {name}: unknown flag bits {flags:#x}")
    if dtype in COMPANION_DTYPES:
        raise LslFormatError(f"tensor {name}: dtype {dtype} is only a companion inside a matrix's record")
    if bool(flags & FLAG_SCALE) != (dtype in CODE_DTYPES) or (not flags & FLAG_SCALE and flags & ~FLAG_2D):
        raise LslFormatError(f"tensor {name}: scale flags {flags:#x} do not match dtype {dtype} "
                             "(codes carry scales; nothing else does)")
    ndim = 2 if flags & FLAG_2D else 1
    dims = [cur.varint(f"tensor {name}'s dims") for _ in range(ndim)] + [0] * (2 - ndim)
    if 0 in dims[:ndim]:  # as the C loader: a stored tensor holds something
        raise LslFormatError(f"tensor {name}: a zero dim in {dims[:ndim]}")
    nbytes = cur.varint(f"tensor {name}'s byte count", 1 << 34)
    bcols = cur.varint(f"tensor {name}'s block-column count") if dtype == DTYPE_I8_SPARSE else 0
    values = cur.take(nbytes, f"tensor {name}'s data")
    out = [_Stored(name, dtype, ndim, dims[0], dims[1], values, 0)]

    def companion(suffix: str, comp_dtype: int, count: int) -> None:
        if count < 1:  # as the C loader: every companion holds something (bcol at least one entry)
            raise LslFormatError(f"tensor {name}{suffix}: no elements")
        size = count * np.dtype(_FILE_DTYPES[comp_dtype]).itemsize
        out.append(_Stored(f"{name}{suffix}", comp_dtype, 1, count, 0, cur.take(size, f"{name}{suffix}"), 0))

    if flags & FLAG_SCALE:
        companion(".scale", DTYPE_F16 if flags & FLAG_SCALE_F16 else DTYPE_F32,
                  1 if flags & FLAG_SCALE_ONE else dims[0])
    if dtype in _MASKED_CODES:
        companion(".mask", DTYPE_U8, -(-dims[0] * dims[1] // 8))
    if dtype == DTYPE_I8_SPARSE:
        companion(".rowptr", DTYPE_I32, dims[0] + 1)
        companion(".bcol", DTYPE_U16, bcols)
    record = cur.pos - start - sum(len(t.raw) for t in out)  # the table bytes: all but the data
    out[0] = out[0]._replace(record=record)
    return out


def head_mode_of(data: bytes) -> str:
    """The head mode (``none`` / ``last`` / ``each``) a .lsl file declares."""
    head = _parse(bytes(data)).head
    return {v: k for k, v in HEAD_CODES.items()}.get(head, f"head {head}")


def _json_meta(raw: bytes) -> dict[str, Any]:
    try:
        return json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LslFormatError(f"metadata is not JSON: {err}") from None


def read_meta(data: bytes) -> dict[str, Any]:
    """Only the JSON metadata of .lsl bytes (no tensors are copied)."""
    return _json_meta(_parse(bytes(data)).meta)


def describe_lsl(data: bytes) -> list[dict[str, Any]]:
    """Where the bytes of a .lsl file go: one row per stored tensor, then one for the
    header, layer table, metadata and padding; the ``bytes`` sum to ``len(data)``.

    Row keys: ``name``, ``dtype`` (:data:`DTYPE_NAMES`), ``shape`` (logical), ``data``
    (bytes of its values), ``record`` (its table bytes: a whole record; in a version 4
    file 0 for the scales, mask and indices its matrix's record describes), ``bytes``
    (record + values + alignment padding).

    Example:
        >>> import torch
        >>> from lstmlite.export.lsl import spec_from_module, write_lsl
        >>> blob = write_lsl(spec_from_module(torch.nn.GRU(2, 3, batch_first=True)), weights="int4")
        >>> rows = describe_lsl(blob)
        >>> rows[0]["name"], rows[0]["dtype"], rows[0]["data"], sum(r["bytes"] for r in rows) == len(blob)
        ('l0.0.w_ih', 'int4', 9, True)
    """
    rows = []
    for t in _parse(bytes(data)).tensors:
        rows.append({"name": t.name, "dtype": DTYPE_NAMES.get(t.dtype, f"dtype {t.dtype}"),
                     "shape": [t.d0] if t.ndim == 1 else [t.d0, t.d1], "data": len(t.raw), "record": t.record,
                     "bytes": t.record + len(t.raw)})
    rest = len(data) - sum(r["bytes"] for r in rows)
    rows.append({"name": "(header, layers, metadata, checksum, padding)", "dtype": "-", "shape": [], "data": rest,
                 "record": 0, "bytes": rest})
    return rows


def macs_from_image(blob: bytes) -> int:
    """Multiply-accumulates per step per sequence the runtime executes for a .lsl image.

    Example:
        >>> import torch
        >>> from lstmlite.export.lsl import spec_from_module, write_lsl
        >>> macs_from_image(write_lsl(spec_from_module(torch.nn.GRU(4, 8, batch_first=True))))
        288
    """
    return _macs_of(_parse(bytes(blob)))


def meta_and_macs(blob: bytes) -> tuple[dict[str, Any], int]:
    """:func:`read_meta` and :func:`macs_from_image` of .lsl bytes from one parse (a parse
    checks the CRC over the whole file: :class:`~lstmlite.runtime.Engine` takes both at
    every load).

    Example:
        >>> import torch
        >>> from lstmlite.export.lsl import spec_from_module, write_lsl
        >>> meta, macs = meta_and_macs(write_lsl(spec_from_module(torch.nn.GRU(4, 8, batch_first=True))))
        >>> macs
        288
    """
    parsed = _parse(bytes(blob))
    return _json_meta(parsed.meta), _macs_of(parsed)


def _macs_of(parsed: _Parsed) -> int:
    head_each = parsed.head == HEAD_CODES["each"]
    total = 0
    for t in parsed.tensors:
        base = t.name[:-2] if t.name.endswith((".u", ".v")) else t.name
        recurrent = base.startswith("l") and base.split(".")[-1].startswith("w_")
        if not (recurrent or (head_each and base == "head.w")) or t.ndim != 2:
            continue
        if t.dtype == DTYPE_I8_SPARSE:
            total += len(t.raw)  # one byte per kept weight (4 per kept block)
        else:
            total += t.d0 * t.d1
    return int(total)


def _dense_from_blocks(name: str, shape: tuple[int, int], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The int8 codes (rows, cols) of sparse tensor ``name`` from its kept blocks,
    ``name.rowptr`` and ``name.bcol`` (checked as the C loader checks them)."""
    rows, cols = shape
    rowptr, bcol = arrays.get(f"{name}.rowptr"), arrays.get(f"{name}.bcol")
    values = arrays[name]
    blocks = len(values) // SPARSE_BLOCK
    n_bcols = -(-cols // SPARSE_BLOCK)
    if rowptr is None or bcol is None or rowptr.dtype != np.int32 or bcol.dtype != np.uint16:
        raise LslFormatError(f"sparse tensor {name} lacks int32 {name}.rowptr or uint16 {name}.bcol")
    if (rowptr.shape != (rows + 1,) or rowptr[0] != 0 or rowptr[-1] != blocks or np.any(np.diff(rowptr) < 0)
            or len(bcol) < blocks):
        raise LslFormatError(f"sparse tensor {name}: {name}.rowptr does not describe {blocks} blocks")
    row_of = np.repeat(np.arange(rows), np.diff(rowptr))
    bcol = bcol[:blocks].astype(np.int64)
    if np.any(bcol >= n_bcols):
        raise LslFormatError(f"sparse tensor {name}: a block column lies outside the matrix")
    if np.any((np.diff(bcol) <= 0) & (row_of[1:] == row_of[:-1])):
        raise LslFormatError(f"sparse tensor {name}: a row's block columns do not increase strictly")
    dense = np.zeros((rows, n_bcols, SPARSE_BLOCK), np.int8)
    dense[row_of, bcol] = values.reshape(-1, SPARSE_BLOCK)
    dense = dense.reshape(rows, -1)
    if np.any(dense[:, cols:]):
        raise LslFormatError(f"sparse tensor {name}: non-zero values past the last column")
    return np.ascontiguousarray(dense[:, :cols])


def _dense_from_mask(name: str, dtype: int, shape: tuple[int, int], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The dense matrix (float32, or int8 codes) of bitmask-sparse tensor ``name``
    from its non-zero values and ``name.mask`` (checked as the C loader checks them)."""
    n = shape[0] * shape[1]
    mask = arrays.get(f"{name}.mask")
    if mask is None or mask.dtype != np.uint8 or mask.shape != (-(-n // 8),):
        raise LslFormatError(f"sparse tensor {name} lacks a {-(-n // 8)}-byte {name}.mask")
    keep = np.unpackbits(mask, bitorder="little").astype(bool)
    if keep[n:].any():
        raise LslFormatError(f"sparse tensor {name}: mask bits set past the last element")
    keep = keep[:n]
    nnz = int(keep.sum())
    values = arrays[name]
    if dtype == DTYPE_I4_MASKED:
        if len(values) != -(-nnz // 2):
            raise LslFormatError(f"sparse tensor {name}: {len(values)} bytes for {nnz} int4 values")
        values = unpack_nibbles(values, nnz)
    elif len(values) != nnz:
        raise LslFormatError(f"sparse tensor {name}: {len(values)} values for {nnz} mask bits")
    dense = np.zeros(n, np.float32 if dtype == DTYPE_F32_MASKED else np.int8)
    dense[keep] = values
    return dense.reshape(shape)


def read_lsl(data: bytes | str | Path) -> ModelSpec:
    """Parse .lsl bytes (or a file path) back into a spec, int8 tensors as QTensor
    (sparse ones expanded to dense codes).

    Checks every offset against the file size; raises :class:`LslFormatError`.
    """
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    data = bytes(data)
    parsed = _parse(data)
    version, head, pool = parsed.version, parsed.head, parsed.pool
    meta = _json_meta(parsed.meta)
    arrays: dict[str, np.ndarray] = {}
    encoded: dict[str, tuple[int, tuple[int, int]]] = {}  # packed / sparse tensors: dtype, logical dims
    for name, dtype, ndim, d0, d1, raw, _ in parsed.tensors:
        nbytes = len(raw)
        if dtype not in _FILE_DTYPES or _DTYPE_VERSION[dtype] > version or ndim not in (1, 2):
            raise LslFormatError(f"tensor {name}: bad dtype {dtype} or ndim {ndim}")
        shape = (d0,) if ndim == 1 else (d0, d1)
        np_dtype = np.dtype(_FILE_DTYPES[dtype])
        if dtype in _MASKED_CODES or dtype in (DTYPE_I8_SPARSE, DTYPE_I4):
            # values of a logical (rows, cols) matrix: kept blocks, non-zeros, or packed codes
            if ndim != 2 or (dtype == DTYPE_I8_SPARSE and nbytes % SPARSE_BLOCK) or nbytes % np_dtype.itemsize:
                raise LslFormatError(f"tensor {name}: bad shape or {nbytes} bytes")
            if dtype == DTYPE_I4 and nbytes != d0 * -(-d1 // 2):
                raise LslFormatError(f"tensor {name}: {nbytes} bytes do not fit int4 codes of shape {shape}")
            encoded[name] = (dtype, (d0, d1))
            shape = (nbytes // np_dtype.itemsize,)
        if int(np.prod(shape)) * np_dtype.itemsize != nbytes:
            raise LslFormatError(f"tensor {name}: {nbytes} bytes do not fit shape {shape}")
        if dtype == DTYPE_F16 and ndim != 1:
            raise LslFormatError(f"tensor {name}: fp16 tensors are 1-D")
        if name in arrays:
            raise LslFormatError(f"tensor {name} is stored twice")
        arrays[name] = np.frombuffer(raw, np_dtype).reshape(shape).copy()
        if dtype == DTYPE_F16:
            arrays[name] = arrays[name].astype(np.float32)  # exact: only exact values are stored so
    for name, (dtype, shape) in encoded.items():
        if dtype == DTYPE_I8_SPARSE:
            arrays[name] = _dense_from_blocks(name, shape, arrays)
        elif dtype == DTYPE_I4:
            arrays[name] = unpack_nibbles(arrays[name].reshape(shape[0], -1), shape[1])
        else:
            arrays[name] = _dense_from_mask(name, dtype, shape, arrays)

    def get(name: str) -> Tensor:
        if name not in arrays and f"{name}.u" in arrays and f"{name}.v" in arrays:
            return LowRankTensor(get(f"{name}.u"), get(f"{name}.v"))
        if name not in arrays:
            raise LslFormatError(f"tensor {name} is missing")
        if arrays[name].dtype == np.int8:
            scale = arrays.get(f"{name}.scale")
            rows = arrays[name].shape[0]
            if scale is None or scale.ndim != 1 or len(scale) not in (rows, 1) or (len(scale) < rows and version < 3):
                raise LslFormatError(f"int8 tensor {name} has no {rows} (or, from version 3, one) {name}.scale")
            return QTensor(arrays[name], np.ascontiguousarray(np.broadcast_to(scale, (rows,)), np.float32))
        return arrays[name]

    cells = {v: k for k, v in CELL_CODES.items()}
    layers = []
    for k, (cell, i_size, h_size, p_size, n_dir, has_bias, gate, update) in enumerate(parsed.layers):
        if cell not in cells or n_dir not in (1, 2) or (cells[cell] == "fastgrnn" and version < 3):
            raise LslFormatError(f"layer {k}: bad cell {cell} or directions {n_dir} (for version {version})")
        nonlin = {v: n for n, v in NONLINEARITY_CODES.items()}
        if cells[cell] == "fastgrnn" and (gate not in nonlin or update not in nonlin):
            raise LslFormatError(f"layer {k}: bad fastgrnn nonlinearities {gate}, {update}")
        dirs = []
        for d in range(n_dir):
            t = {n: get(f"l{k}.{d}.{n}") for n in ("w_ih", "w_hh")}
            if p_size:
                t["w_hr"] = get(f"l{k}.{d}.w_hr")
            if has_bias:
                t["b_ih"], t["b_hh"] = get(f"l{k}.{d}.b_ih"), get(f"l{k}.{d}.b_hh")
            if cells[cell] == "fastgrnn":
                t["zn"] = get(f"l{k}.{d}.zn")
            dirs.append(t)
        layer = LayerSpec(cells[cell], i_size, h_size, p_size, bool(has_bias), dirs)
        if cells[cell] == "fastgrnn":
            layer.gate, layer.update = nonlin[gate], nonlin[update]
        layers.append(layer)
    heads = {v: k for k, v in HEAD_CODES.items()}
    pools = {v: k for k, v in POOL_CODES.items()}
    if head not in heads or pool not in pools:
        raise LslFormatError(f"bad head mode {head} or pooling {pool}")
    spec = ModelSpec(
        layers=layers,
        embedding=get("emb") if "emb" in arrays or "emb.v" in arrays else None,
        head_weight=get("head.w") if heads[head] != "none" else None,
        head_bias=arrays.get("head.b"),
        head_mode=heads[head], pooling=pools[pool], meta=meta,
    )
    try:
        spec.validate()
    except ValueError as err:
        raise LslFormatError(str(err)) from None
    return spec


#: The writer's names, kept importable from here for existing code; they live in
#: lstmlite.export.lsl (the runtime only loads and runs).
_WRITER = ("quantize_rows", "spec_from_state_dict", "spec_from_module", "write_lsl", "has_int8",
           "rounds_float_weights", "block_csr", "block_density", "pack_nibbles", "_recurrent_state", "_cell_name")


def __getattr__(name: str) -> Any:
    if name in _WRITER:
        from ..export import lsl as _writer

        return getattr(_writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
