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
version 2). A file takes the oldest version its contents allow.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "FILE_VERSION", "HEADER_BYTES", "QTensor", "LayerSpec", "ModelSpec", "LslFormatError", "read_lsl",
    "read_meta", "WEIGHT_FORMS", "LowRankTensor", "describe_lsl", "unpack_nibbles", "DTYPE_NAMES",
]

FILE_VERSION = 3  # the newest this module writes and reads; a file takes the oldest version its dtypes allow
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
WEIGHT_FORMS = ("auto", "fp32", "int8", "int8-sparse", "int4")
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


def read_meta(data: bytes) -> dict[str, Any]:
    """Only the JSON metadata of .lsl bytes (no tensors are copied)."""
    if len(data) < HEADER_BYTES or data[:8] != MAGIC:
        raise LslFormatError("not a .lsl file (bad magic)")
    fields = _HEADER.unpack_from(data)
    meta_off, meta_len = fields[11], fields[12]
    if meta_off + meta_len > len(data):
        raise LslFormatError("metadata lies outside the file")
    try:
        return json.loads(data[meta_off:meta_off + meta_len].decode("utf-8")) if meta_len else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LslFormatError(f"metadata is not JSON: {err}") from None


def describe_lsl(data: bytes) -> list[dict[str, Any]]:
    """Where the bytes of a .lsl file go: one row per stored tensor, then one for the
    header, layer table, metadata and padding; the ``bytes`` sum to ``len(data)``.

    Row keys: ``name``, ``dtype`` (:data:`DTYPE_NAMES`), ``shape`` (logical), ``data``
    (bytes of its values), ``bytes`` (its table record + values + alignment padding).

    Example:
        >>> import torch
        >>> from lstmlite.export.lsl import spec_from_module, write_lsl
        >>> blob = write_lsl(spec_from_module(torch.nn.GRU(2, 3, batch_first=True)), weights="int4")
        >>> rows = describe_lsl(blob)
        >>> rows[0]["name"], rows[0]["dtype"], rows[0]["data"], sum(r["bytes"] for r in rows) == len(blob)
        ('l0.0.w_ih', 'int4', 9, True)
    """
    if len(data) < HEADER_BYTES or data[:8] != MAGIC:
        raise LslFormatError("not a .lsl file (bad magic)")
    fields = _HEADER.unpack_from(data)
    n_tensors, tensor_off, data_off, total = fields[4], fields[8], fields[9], fields[10]
    if tensor_off + TENSOR_RECORD * n_tensors > len(data):
        raise LslFormatError("tensor table lies outside the file")
    rows = []
    for i in range(n_tensors):
        raw_name, dtype, ndim, d0, d1, off, nbytes = _TENSOR.unpack_from(data, tensor_off + i * TENSOR_RECORD)
        rows.append({"name": raw_name.split(b"\0", 1)[0].decode("ascii", "replace"),
                     "dtype": DTYPE_NAMES.get(dtype, f"dtype {dtype}"), "shape": [d0] if ndim == 1 else [d0, d1],
                     "data": int(nbytes), "bytes": TENSOR_RECORD + _align(int(nbytes), ALIGN)})
    rest = total - sum(r["bytes"] for r in rows)
    rows.append({"name": "(header, layers, metadata, padding)", "dtype": "-", "shape": [], "data": rest,
                 "bytes": rest})
    return rows


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
    if len(data) < HEADER_BYTES or data[:8] != MAGIC:
        raise LslFormatError("not a .lsl file (bad magic)")
    (_, version, header_bytes, n_layers, n_tensors, head, pool, layer_off, tensor_off, data_off, total,
     meta_off, meta_len, _) = _HEADER.unpack_from(data)
    if not DENSE_FILE_VERSION <= version <= FILE_VERSION:
        raise LslFormatError(f".lsl version {version} is not supported (this lstmlite reads "
                             f"{DENSE_FILE_VERSION} to {FILE_VERSION})")
    if header_bytes != HEADER_BYTES or total > len(data):
        raise LslFormatError("header sizes do not match the file")

    def need(off: int, size: int, what: str) -> None:
        if off < 0 or size < 0 or off + size > total:
            raise LslFormatError(f"{what} lies outside the file")

    need(layer_off, LAYER_RECORD * n_layers, "layer table")
    need(tensor_off, TENSOR_RECORD * n_tensors, "tensor table")
    need(meta_off, meta_len, "metadata")
    try:
        meta = json.loads(data[meta_off:meta_off + meta_len].decode("utf-8")) if meta_len else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LslFormatError(f"metadata is not JSON: {err}") from None
    arrays: dict[str, np.ndarray] = {}
    encoded: dict[str, tuple[int, tuple[int, int]]] = {}  # packed / sparse tensors: dtype, logical dims
    for i in range(n_tensors):
        raw_name, dtype, ndim, d0, d1, off, nbytes = _TENSOR.unpack_from(data, tensor_off + i * TENSOR_RECORD)
        name = raw_name.split(b"\0", 1)[0].decode("ascii", "replace")
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
        need(data_off + off, nbytes, f"tensor {name}")
        if dtype == DTYPE_F16 and ndim != 1:
            raise LslFormatError(f"tensor {name}: fp16 tensors are 1-D")
        arrays[name] = np.frombuffer(data, np_dtype, int(np.prod(shape)), data_off + off).reshape(shape).copy()
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
    for k in range(n_layers):
        cell, i_size, h_size, p_size, n_dir, has_bias, gate, update = _LAYER.unpack_from(data,
                                                                                          layer_off + k * LAYER_RECORD)
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
