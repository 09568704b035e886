"""The ``.lsl`` model file: what the native runtime loads.

A file is a versioned little-endian header, a layer table, a tensor table and the
tensor data (the byte layout is documented in ``lsl.h`` and mirrored by the
constants below). This module builds a :class:`ModelSpec` from PyTorch-named
weights, quantizes it (int8 per output row, symmetric), writes it with
:func:`write_lsl` and reads it back with :func:`read_lsl` for inspection; the C
loader (``lsl_file.c``) is the bounds-checked parser the engine uses.

Tensor names in the file: ``l{k}.{d}.w_ih|w_hh|w_hr|b_ih|b_hh`` (layer k, direction
d), ``emb``, ``head.w``, ``head.b``; an int8 tensor NAME stores its per-row scales in
``NAME.scale``. The ``int8-sparse`` form stores a matrix whose int8 codes are mostly
zero (1, 4) blocks -- four consecutive columns of one row, the block
``lstmlite.compress`` prunes with ``block=(1, 4)`` -- as its kept blocks
(``NAME``), their compressed rows (``NAME.rowptr``) and block columns
(``NAME.bcol``); such files are version 2, dense ones stay version 1.

Example:
    >>> import torch
    >>> lstm = torch.nn.LSTM(4, 8, batch_first=True)
    >>> spec = spec_from_module(lstm)
    >>> blob = write_lsl(spec, weights="int8")
    >>> read_lsl(blob).layers[0].hidden_size
    8
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

__all__ = [
    "FILE_VERSION", "HEADER_BYTES", "QTensor", "LayerSpec", "ModelSpec", "LslFormatError",
    "quantize_rows", "spec_from_state_dict", "spec_from_module", "write_lsl", "read_lsl", "has_int8",
    "WEIGHT_FORMS", "block_csr", "block_density", "LowRankTensor", "rounds_float_weights", "describe_lsl",
    "pack_nibbles", "unpack_nibbles", "DTYPE_NAMES",
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
WEIGHT_FORMS = ("fp32", "int8", "int8-sparse", "int4")
SPARSE_BLOCK = 4  # columns per block of the sparse form
_FILE_DTYPES = {DTYPE_F32: "<f4", DTYPE_I8: "i1", DTYPE_I8_SPARSE: "i1", DTYPE_I32: "<i4", DTYPE_U16: "<u2",
                DTYPE_I4: "u1", DTYPE_U8: "u1", DTYPE_F32_MASKED: "<f4", DTYPE_I8_MASKED: "i1",
                DTYPE_I4_MASKED: "u1"}
_DTYPE_VERSION = {DTYPE_F32: 1, DTYPE_I8: 1, DTYPE_I8_SPARSE: 2, DTYPE_I32: 2, DTYPE_U16: 2, DTYPE_I4: 3,
                  DTYPE_U8: 3, DTYPE_F32_MASKED: 3, DTYPE_I8_MASKED: 3, DTYPE_I4_MASKED: 3}
#: what each dtype stores, for per-tensor listings (describe_lsl)
DTYPE_NAMES = {DTYPE_F32: "fp32", DTYPE_I8: "int8", DTYPE_I8_SPARSE: "int8 block-sparse", DTYPE_I32: "int32 index",
               DTYPE_U16: "uint16 index", DTYPE_I4: "int4", DTYPE_U8: "bitmask", DTYPE_F32_MASKED: "fp32 bitmask-sparse",
               DTYPE_I8_MASKED: "int8 bitmask-sparse", DTYPE_I4_MASKED: "int4 bitmask-sparse"}
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


def quantize_rows(w: np.ndarray, bits: int = 8) -> QTensor:
    """Symmetric per-row quantization: scale = max|row| / qmax, q = round(w / scale),
    qmax = 127 for ``bits=8``, 7 for ``bits=4`` (codes always held as int8).

    A row of zeros gets scale 1 (its q are zeros either way).

    Example:
        >>> qt = quantize_rows(np.array([[0.5, -1.0], [0.0, 0.0]], np.float32))
        >>> qt.q.tolist(), qt.scale.tolist()
        ([[64, -127], [0, 0]], [0.007874015718698502, 1.0])
    """
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"quantize_rows wants a matrix, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("cannot quantize non-finite weights")
    if bits not in (4, 8):
        raise ValueError(f"bits must be 4 or 8, got {bits}")
    qmax = (1 << (bits - 1)) - 1
    amax = np.abs(w).max(axis=1)
    scale = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale[:, None]), -qmax, qmax).astype(np.int8)
    return QTensor(q, scale)


def _blocks(q: np.ndarray) -> np.ndarray:
    """(rows, ceil(cols / 4), 4) view of int8 codes, the last block zero-padded."""
    rows, cols = q.shape
    padded = np.zeros((rows, -(-cols // SPARSE_BLOCK) * SPARSE_BLOCK), np.int8)
    padded[:, :cols] = q
    return padded.reshape(rows, -1, SPARSE_BLOCK)


def _kept_blocks(q: np.ndarray) -> np.ndarray:
    """(rows, ceil(cols / 4)) flags: which (1, 4) blocks of int8 codes hold a non-zero."""
    return np.any(_blocks(np.asarray(q, np.int8)) != 0, axis=2)


def block_density(q: np.ndarray) -> float:
    """Fraction of the (1, 4) blocks of int8 codes ``q`` (rows, cols) holding a non-zero.

    Example:
        >>> block_density(np.array([[1, 0, 0, 0, 0, 0, 0, 0]], np.int8))
        0.5
    """
    kept = _kept_blocks(q)
    return float(kept.mean()) if kept.size else 0.0


def block_csr(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compressed rows of the non-zero (1, 4) blocks of int8 codes ``q`` (rows, cols).

    Returns ``(rowptr, bcol, values)``: row r's blocks are ``rowptr[r]:rowptr[r+1]``
    (int32, rows + 1), block b covers columns ``4 bcol[b] .. 4 bcol[b] + 3`` (uint16,
    at least one entry) and holds ``values[4b:4b + 4]`` (int8, zeros past ``cols``).

    Example:
        >>> rowptr, bcol, values = block_csr(np.array([[0, 0, 0, 0, 5, 0, 0, 0]], np.int8))
        >>> rowptr.tolist(), bcol.tolist(), values.tolist()
        ([0, 1], [1], [5, 0, 0, 0])
    """
    blocks = _blocks(np.asarray(q, np.int8))
    if blocks.shape[1] > 65536:
        raise ValueError(f"the sparse form takes at most {65536 * SPARSE_BLOCK} columns, got {q.shape[1]}")
    kept = np.any(blocks != 0, axis=2)  # _kept_blocks, without padding q twice
    rowptr = np.zeros(len(kept) + 1, np.int32)
    np.cumsum(kept.sum(axis=1), out=rowptr[1:])
    rows, cols = np.nonzero(kept)  # row-major order: each row's blocks by column
    values = np.ascontiguousarray(blocks[rows, cols].reshape(-1), np.int8)
    bcol = cols.astype(np.uint16) if len(cols) else np.zeros(1, np.uint16)
    return rowptr, bcol, values


def _sparse_pays(q: np.ndarray) -> bool:
    """Whether the sparse form of int8 codes is smaller than the dense one."""
    blocks = int(_kept_blocks(q).sum())
    return SPARSE_BLOCK * blocks + 4 * (q.shape[0] + 1) + 2 * max(blocks, 1) < q.size


def pack_nibbles(q: np.ndarray) -> np.ndarray:
    """Codes in [-8, 7] two per byte along the last axis: the even element in the low
    nibble, the odd one in the high nibble (4-bit two's complement), an odd-length row
    padded with a zero nibble -- the layout of ``lstmlite.compress.quantize.ops.pack_int4``.

    Example:
        >>> pack_nibbles(np.array([[1, -2, 3]], np.int8)).tolist()
        [[225, 3]]
    """
    q = np.asarray(q, np.int8)
    if q.shape[-1] % 2:
        q = np.concatenate([q, np.zeros(q.shape[:-1] + (1,), np.int8)], axis=-1)
    u = q.astype(np.uint8) & 0x0F
    return np.ascontiguousarray(u[..., 0::2] | (u[..., 1::2] << 4), np.uint8)


def unpack_nibbles(packed: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`pack_nibbles`: the first ``n`` codes of each row (int8)."""
    p = np.asarray(packed, np.uint8)
    both = np.stack([p & 0x0F, p >> 4], axis=-1).reshape(p.shape[:-1] + (-1,)).astype(np.int8)
    both = np.where(both > 7, both - 16, both).astype(np.int8)
    return np.ascontiguousarray(both[..., :n])


def _fits_int4(q: np.ndarray) -> bool:
    return q.size == 0 or (int(q.min()) >= -8 and int(q.max()) <= 7)


Entry = tuple[str, int, np.ndarray, tuple[int, ...]]  # name, dtype, stored values, logical dims


def _masked(name: str, values: np.ndarray, dtype: int) -> list[Entry]:
    """Bitmask-sparse form: the non-zero values in row-major order, and NAME.mask (one
    bit per element, element i in bit i % 8 of byte i // 8)."""
    keep = (values != 0).reshape(-1)
    kept = values.reshape(-1)[keep]
    if dtype == DTYPE_I4_MASKED:
        kept = pack_nibbles(kept)
    mask = np.packbits(keep, bitorder="little")
    return [(name, dtype, kept, values.shape), (f"{name}.mask", DTYPE_U8, mask, mask.shape)]


def _stored_bytes(entries: list[Entry]) -> int:
    """File bytes of tensors: a table record each plus data padded to ALIGN."""
    return sum(TENSOR_RECORD + _align(arr.size * arr.dtype.itemsize, ALIGN) for _, _, arr, _ in entries)


def _encode_matrix(name: str, t: Any, allow_csr: bool) -> list[Entry]:
    """The smallest file form of one weight matrix (an fp32 array or a QTensor).

    Float: dense fp32 or bitmask-sparse fp32. Codes: int4 (two per byte) when every
    code lies in [-8, 7], else int8, dense or bitmask-sparse, then NAME.scale; ties go
    to dense. With ``allow_csr`` (the ``int8-sparse`` form: the runtime's sparse kernels
    asked for) the (1, 4)-block form is taken wherever it is smaller than dense int8,
    even where a bitmask would be smaller still, since only it makes the runtime skip
    the zero blocks.
    """
    if isinstance(t, QTensor):
        q = np.ascontiguousarray(t.q, dtype=np.int8)
        scale = np.ascontiguousarray(t.scale, dtype=np.float32)
        int4 = _fits_int4(q)
        tail: list[Entry] = [(f"{name}.scale", DTYPE_F32, scale, scale.shape)]
        if allow_csr and q.shape[1] <= 65536 * SPARSE_BLOCK and _sparse_pays(q):
            # asked for the runtime's sparse kernels: the block form wherever it beats dense int8
            rowptr, bcol, values = block_csr(q)
            return [(name, DTYPE_I8_SPARSE, values, q.shape), (f"{name}.rowptr", DTYPE_I32, rowptr, rowptr.shape),
                    (f"{name}.bcol", DTYPE_U16, bcol, bcol.shape)] + tail
        candidates = [[(name, DTYPE_I4, pack_nibbles(q), q.shape)] if int4 else [(name, DTYPE_I8, q, q.shape)],
                      _masked(name, q, DTYPE_I4_MASKED if int4 else DTYPE_I8_MASKED)]
    else:
        w = np.ascontiguousarray(t, dtype=np.float32)
        candidates = [[(name, DTYPE_F32, w, w.shape)], _masked(name, w, DTYPE_F32_MASKED)]
        tail = []
    return min(candidates, key=_stored_bytes) + tail


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


def _np(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):  # torch tensor, without importing torch here
        t = t.detach().cpu().float().numpy()
    return np.ascontiguousarray(t, dtype=np.float32)


def spec_from_state_dict(
    state: Mapping[str, Any],
    *,
    prefix: str = "",
    cell: str | None = None,
    embedding: Any = None,
    head_weight: Any = None,
    head_bias: Any = None,
    head_mode: str = "none",
    pooling: str = "last",
    meta: dict[str, Any] | None = None,
) -> ModelSpec:
    """Build a spec from PyTorch-named recurrent weights (``weight_ih_l0``, …).

    Args:
        state: name → array (NumPy or torch); names as ``nn.LSTM``/``nn.GRU`` use them,
            optionally under ``prefix`` (``"rnn."`` for lstmlite task models).
        cell: ``lstm`` or ``gru``; inferred from the shapes when None.
        embedding: (vocab, dim) table for token input, or None.
        head_weight, head_bias: (n_out, F) and (n_out,) of the linear head, or None.
        head_mode, pooling: see :class:`ModelSpec`.

    Example:
        >>> import torch
        >>> gru = torch.nn.GRU(3, 5, num_layers=2)
        >>> spec = spec_from_state_dict(gru.state_dict())
        >>> [l.cell for l in spec.layers], spec.layers[1].input_size
        (['gru', 'gru'], 5)
    """
    layers: list[LayerSpec] = []
    k = 0
    while f"{prefix}weight_ih_l{k}" in state:
        suffixes = [""] + (["_reverse"] if f"{prefix}weight_ih_l{k}_reverse" in state else [])
        directions = []
        for suffix in suffixes:
            key = f"{prefix}{{}}_l{k}{suffix}"
            tensors = {"w_ih": _np(state[key.format("weight_ih")]), "w_hh": _np(state[key.format("weight_hh")])}
            if key.format("weight_hr") in state:
                tensors["w_hr"] = _np(state[key.format("weight_hr")])
            if key.format("bias_ih") in state:
                tensors["b_ih"] = _np(state[key.format("bias_ih")])
                tensors["b_hh"] = _np(state[key.format("bias_hh")])
            directions.append(tensors)
        first = directions[0]
        layer_cell = cell
        if layer_cell is None:
            ratio = first["w_hh"].shape[0] // (first["w_hr"].shape[1] if "w_hr" in first else first["w_hh"].shape[1])
            layer_cell = {4: "lstm", 3: "gru"}.get(ratio) if "w_hr" not in first else "lstm"
            if layer_cell is None:
                raise ValueError(f"cannot tell the cell of layer {k} from weight_hh of shape {first['w_hh'].shape}")
        g = GATES[layer_cell]
        hidden = first["w_hh"].shape[0] // g
        layers.append(LayerSpec(
            cell=layer_cell, input_size=first["w_ih"].shape[1], hidden_size=hidden,
            proj_size=first["w_hr"].shape[0] if "w_hr" in first else 0, bias="b_ih" in first,
            directions=directions,
        ))
        k += 1
    if not layers:
        raise ValueError(f"no recurrent weights found (expected {prefix}weight_ih_l0)")
    spec = ModelSpec(
        layers=layers,
        embedding=None if embedding is None else _np(embedding),
        head_weight=None if head_weight is None else _np(head_weight),
        head_bias=None if head_bias is None else _np(head_bias),
        head_mode=head_mode, pooling=pooling, meta=dict(meta or {}),
    )
    spec.validate()
    return spec


def _recurrent_state(rnn: Any) -> dict[str, Any]:
    """Effective weights of a recurrent module: parametrizations applied (lstmlite
    layers read them as attributes), plain parameters otherwise."""
    if hasattr(rnn, "weight_names"):  # lstmlite.nn.LSTM / GRU
        return {name: getattr(rnn, name) for k in range(rnn.num_layers) for name in rnn.weight_names(k)}
    return dict(rnn.named_parameters())


def _cell_name(rnn: Any) -> str:
    mode = getattr(rnn, "mode", "")
    if mode in ("LSTM", "GRU"):
        return mode.lower()
    from lstmlite.nn.cells import FastGRNN, GroupedLSTM  # parametrized modules are subclasses

    if isinstance(rnn, FastGRNN):
        return "fastgrnn"
    kind = type(rnn).__name__.removeprefix("Parametrized")
    nearest = " (nearest exportable form: cell=lstm, or groups=1)" if isinstance(rnn, GroupedLSTM) else ""
    raise ValueError(f"the native runtime runs LSTM, GRU and FastGRNN layers, not {kind}{nearest}")


def _fastgrnn_layers(rnn: Any) -> list[LayerSpec]:
    """Layers of an lstmlite FastGRNN: W and U as stored (factors when wrank / urank
    are set), ζ and ν after their sigmoid, as the module computes them."""
    import torch

    layers = []
    for k in range(rnn.num_layers):
        t: dict[str, Tensor] = {}
        for ours, name, rank in (("w_ih", "weight_ih", rnn.wrank), ("w_hh", "weight_hh", rnn.urank)):
            if rank is None:
                t[ours] = _np(getattr(rnn, f"{name}_l{k}"))
            else:
                t[ours] = LowRankTensor(_np(getattr(rnn, f"{name}_l{k}_left")), _np(getattr(rnn, f"{name}_l{k}_right")))
        t["b_ih"], t["b_hh"] = _np(getattr(rnn, f"bias_gate_l{k}")), _np(getattr(rnn, f"bias_update_l{k}"))
        zn = torch.cat([torch.sigmoid(getattr(rnn, f"zeta_l{k}")), torch.sigmoid(getattr(rnn, f"nu_l{k}"))])
        t["zn"] = _np(zn)
        h = rnn.hidden_sizes[k]
        layers.append(LayerSpec("fastgrnn", rnn.layer_input_size(k), h, directions=[t],
                                gate=rnn.gate_nonlinearity, update=rnn.update_nonlinearity))
    return layers


def spec_from_module(module: Any) -> ModelSpec:
    """Spec of a torch ``nn.LSTM``/``nn.GRU``, an ``lstmlite.nn`` layer, or an lstmlite
    task model (classifier, language model, forecaster).

    Compression is honoured: parametrizations (masks, low-rank products) are read as
    the effective weights, and weight-only quantized tensors are stored as their int8
    codes and scales.

    Raises:
        ValueError: cells the runtime cannot run (grouped LSTM, FastGRNN), or a
            ``batch_first=False`` bare layer (the runtime is batch-first).
    """
    import torch  # the runtime itself needs no torch; converting from it does

    with torch.no_grad():
        kind = getattr(module, "kind", None)
        if kind in ("classifier", "lm", "forecaster"):
            rnn = module.rnn
            head_mode = "each" if kind == "lm" else "last"
            pooling = getattr(module, "pooling", "last")
            # only what the engine reads: every byte here is in the model's size
            meta: dict[str, Any] = {"kind": kind}
            if kind == "forecaster":
                # Instance normalisation (RevIN) is applied around the runtime by
                # Engine.run: subtract each window's mean, add it back to the forecast.
                meta.update(horizon=module.horizon, targets=module.targets,
                            instance_norm=bool(getattr(module, "instance_norm", False)))
            emb = module.embedding.weight if module.embedding is not None else None
            cell = _cell_name(rnn)
            if cell == "fastgrnn":
                spec = ModelSpec(_fastgrnn_layers(rnn), embedding=None if emb is None else _np(emb),
                                 head_weight=_np(module.head.weight),
                                 head_bias=None if module.head.bias is None else _np(module.head.bias),
                                 head_mode=head_mode, pooling=pooling, meta=meta)
                spec.validate()
            else:
                spec = spec_from_state_dict(
                    _recurrent_state(rnn), cell=cell, embedding=emb,
                    head_weight=module.head.weight, head_bias=module.head.bias,
                    head_mode=head_mode, pooling=pooling, meta=meta,
                )
            _attach_low_rank(spec, rnn)
            _attach_embedding_low_rank(spec, module)
            _attach_quantized(spec, module, "rnn.")
            return spec
        cell = _cell_name(module)
        if cell == "fastgrnn":
            spec = ModelSpec(_fastgrnn_layers(module), meta={"kind": "rnn"})
            spec.validate()
        else:
            spec = spec_from_state_dict(_recurrent_state(module), cell=cell, meta={"kind": "rnn"})
        _attach_low_rank(spec, module)
        _attach_quantized(spec, module, "")
        return spec


def _slots(spec: ModelSpec, rnn_prefix: str) -> dict[str, tuple[dict[str, Tensor], str]]:
    """PyTorch name of each recurrent weight matrix → (its direction's dict, our key);
    FastGRNN's own factors ``weight_ih_l0_left`` / ``_right`` map to ``w_ih.u`` /
    ``w_ih.v`` (key with the part after a dot)."""
    slots: dict[str, tuple[dict[str, Tensor], str]] = {}
    for k, layer in enumerate(spec.layers):
        if layer.cell == "fastgrnn":
            tensors = layer.directions[0]
            for ours, theirs in (("w_ih", "weight_ih"), ("w_hh", "weight_hh")):
                # the names the module has: W, or (with wrank / urank) its own factors
                slots[f"{rnn_prefix}{theirs}_l{k}"] = (tensors, ours)
                slots[f"{rnn_prefix}{theirs}_l{k}_left"] = (tensors, f"{ours}.u")
                slots[f"{rnn_prefix}{theirs}_l{k}_right"] = (tensors, f"{ours}.v")
            continue
        for d, tensors in enumerate(layer.directions):
            suffix = "_reverse" if d else ""
            for ours, theirs in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("w_hr", "weight_hr")):
                if ours in tensors:
                    slots[f"{rnn_prefix}{theirs}_l{k}{suffix}"] = (tensors, ours)
    return slots


def _attach_low_rank(spec: ModelSpec, rnn: Any) -> int:
    """Replace the recurrent matrices that lstmlite.compress factored as W = U V (and
    nothing else on top, e.g. no pruning mask over the product) by their factors, so
    the runtime does the cheaper two products. Returns how many were replaced."""
    try:
        import torch
        from torch.nn.utils import parametrize

        from lstmlite.compress.lowrank.transform import LowRank
    except ImportError:  # pragma: no cover - compression not installed
        return 0
    replaced = 0
    for name, (holder, key) in _slots(spec, "").items():
        if "." in key or not parametrize.is_parametrized(rnn, name):  # a factor is not factored again
            continue
        plist = rnn.parametrizations[name]
        # parametrizations of the factors themselves (quantization) hang under the list
        # as a ModuleDict; they are read through plist.original0 / original1
        chain = [p for p in plist if not isinstance(p, torch.nn.ModuleDict)]
        if len(chain) != 1 or not isinstance(chain[0], LowRank):
            continue
        holder[key] = LowRankTensor(_np(plist.original0), _np(plist.original1))
        replaced += 1
    return replaced


def _attach_embedding_low_rank(spec: ModelSpec, module: Any) -> bool:
    """Store an embedding that lstmlite.compress factored as E = A B (and nothing else
    on top) as its factors: the file keeps A (V, r) and B (r, D); the loader expands
    the table. Returns whether it did."""
    emb = getattr(module, "embedding", None)
    if emb is None or spec.embedding is None:
        return False
    try:
        import torch
        from torch.nn.utils import parametrize

        from lstmlite.compress.lowrank.transform import LowRank
    except ImportError:  # pragma: no cover - compression not installed
        return False
    if not parametrize.is_parametrized(emb, "weight"):
        return False
    plist = emb.parametrizations["weight"]
    chain = [p for p in plist if not isinstance(p, torch.nn.ModuleDict)]
    if len(chain) != 1 or not isinstance(chain[0], LowRank):
        return False
    spec.embedding = LowRankTensor(_np(plist.original0), _np(plist.original1))
    return True


def _attach_quantized(spec: ModelSpec, module: Any, rnn_prefix: str) -> int:
    """Replace float matrices by the int codes and scales of a model compressed with
    lstmlite.compress weight-only quantization (8 bits or fewer, per channel or per
    tensor), so the runtime computes exactly what the compressed model computes.

    Returns how many tensors were replaced (0 for an uncompressed model).
    """
    try:
        from lstmlite.compress.quantize.transform import quantized_tensors
    except ImportError:  # pragma: no cover - compression not installed
        return 0
    found = quantized_tensors(module)
    if not found:
        return 0
    slots = _slots(spec, rnn_prefix)
    replaced = 0
    for name, qt in found.items():
        codes = qt.codes.detach().cpu().numpy()
        if codes.ndim != 2 or qt.bits > 8:
            continue
        rows = codes.shape[0]
        scale = np.broadcast_to(qt.scales.detach().cpu().numpy().astype(np.float32).reshape(-1), (rows,)).copy()
        value = QTensor(np.ascontiguousarray(codes, dtype=np.int8), scale)
        factor = name.rsplit(".", 1)
        if len(factor) == 2 and factor[1] in ("original0", "original1") and factor[0] in slots:
            holder, key = slots[factor[0]]  # a quantized low-rank factor: U or V
            part = "u" if factor[1] == "original0" else "v"
            if not isinstance(holder[key], LowRankTensor) or not _codes_match(name, value, getattr(holder[key], part)):
                continue
            holder[key] = holder[key]._replace(**{part: value})
        elif name in ("embedding.weight.original0", "embedding.weight.original1"):
            part = "u" if name.endswith("0") else "v"  # a quantized factor of a low-rank embedding
            if not isinstance(spec.embedding, LowRankTensor) or not _codes_match(name, value,
                                                                                 getattr(spec.embedding, part)):
                continue
            spec.embedding = spec.embedding._replace(**{part: value})
        elif name in slots and "." in slots[name][1]:
            holder, key = slots[name]  # a FastGRNN factor (weight_ih_l0_left, ...)
            key, part = key.split(".")
            if not _codes_match(name, value, getattr(holder[key], part)):
                continue
            holder[key] = holder[key]._replace(**{part: value})
        elif name in slots:
            holder, key = slots[name]
            if not _codes_match(name, value, holder[key]):
                continue
            holder[key] = value
        elif name == "head.weight" and spec.head_weight is not None:
            if not _codes_match(name, value, spec.head_weight):
                continue
            spec.head_weight = value
        elif name == "embedding.weight" and spec.embedding is not None:
            if not _codes_match(name, value, spec.embedding):
                continue
            spec.embedding = value
        else:
            continue
        replaced += 1
    return replaced


def _codes_match(name: str, value: QTensor, effective: Any) -> bool:
    """Whether int codes dequantize to the weights the model really computes with. They
    do not when something changed the weights after quantizing (a pruning mask added
    on top, say): then the float effective weights are kept, so the runtime still
    computes what the model computes."""
    if not isinstance(effective, np.ndarray):
        return True
    deq = value.dequantize()
    if deq.shape == effective.shape and np.allclose(deq, effective, rtol=1e-5, atol=1e-6 * float(value.scale.max())):
        return True
    log.warning("%s: the model's weights are not its quantized codes (changed after quantizing?); "
                "storing the effective weights instead", name)
    return False


def _weight_matrices(spec: ModelSpec) -> list[Tensor]:
    """Every weight matrix of a spec as stored: embedding, head, the recurrent ones, and
    the factors of low-rank ones (absent parts are None)."""
    tensors = [spec.embedding, spec.head_weight]
    tensors += [t for layer in spec.layers for d in layer.directions for n, t in d.items() if n.startswith("w_")]
    return tensors + [f for t in tensors if isinstance(t, LowRankTensor) for f in t]


def has_int8(spec: ModelSpec) -> bool:
    """Whether any matrix of the spec is already int8 (a quantized model)."""
    return any(isinstance(t, QTensor) for t in _weight_matrices(spec))


def rounds_float_weights(spec: ModelSpec, weights: str) -> bool:
    """Whether ``write_lsl(spec, weights)`` rounds any float matrix to int8 -- then the
    file computes something slightly other than the model (by that rounding), rather
    than exactly what the model computes.

    Example:
        >>> import torch
        >>> spec = spec_from_module(torch.nn.LSTM(2, 4, batch_first=True))
        >>> rounds_float_weights(spec, "fp32"), rounds_float_weights(spec, "int8")
        (False, True)
    """
    return weights != "fp32" and any(isinstance(t, np.ndarray) and t.ndim == 2 for t in _weight_matrices(spec))


def _as_tensor(t: Tensor, bits: int) -> Tensor:
    """A float matrix quantized per row to ``bits`` (0: kept float); QTensors as given."""
    if isinstance(t, LowRankTensor):  # each factor quantized per row on its own
        return LowRankTensor(_as_tensor(t.u, bits), _as_tensor(t.v, bits))
    if isinstance(t, QTensor):
        return t
    return quantize_rows(t, bits) if bits else np.ascontiguousarray(t, dtype=np.float32)


def write_lsl(spec: ModelSpec, weights: str = "fp32", path: str | Path | None = None,
              quantize_embedding: bool = True) -> bytes:
    """Serialise a spec to .lsl bytes (and write them to ``path`` when given).

    Every weight matrix takes the smallest file form open to it (see
    :func:`_encode_matrix`): dense, or bitmask-sparse (a pruned matrix: its non-zero
    values plus one bit per element; the loader expands it). Codes that fit in 4 bits
    are packed two per byte.

    Args:
        weights: ``fp32`` keeps float matrices as they are; ``int8`` / ``int4``
            quantize every float weight matrix (and the embedding, unless
            ``quantize_embedding=False``) per row to 8 / 4 bits; ``int8-sparse``
            quantizes as ``int8`` and also offers each recurrent and head matrix the
            (1, 4)-block form, kept where smallest (a block-pruned model), which the
            runtime's sparse kernels run. Matrices already given as :class:`QTensor`
            keep their codes whatever ``weights`` says; biases are always float32.
    """
    if weights not in WEIGHT_FORMS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_FORMS)}, got {weights!r}")
    spec.validate()
    quant = {"fp32": 0, "int4": 4}.get(weights, 8)
    sparse = weights == "int8-sparse"
    tensors: list[tuple[str, Tensor]] = []
    for k, layer in enumerate(spec.layers):
        for d, t in enumerate(layer.directions):
            for name in ("w_ih", "w_hh", "w_hr"):
                if name in t:
                    tensors.append((f"l{k}.{d}.{name}", _as_tensor(t[name], quant)))
            if layer.bias:
                tensors += [(f"l{k}.{d}.b_ih", _np(t["b_ih"])), (f"l{k}.{d}.b_hh", _np(t["b_hh"]))]
            if layer.cell == "fastgrnn":
                tensors.append((f"l{k}.{d}.zn", _np(t["zn"])))
    if spec.embedding is not None:
        tensors.append(("emb", _as_tensor(spec.embedding, quant if quantize_embedding else 0)))
    if spec.head_mode != "none":
        head = spec.head_weight
        tensors.append(("head.w", _as_tensor(head.dense() if isinstance(head, LowRankTensor) else head, quant)))
        if spec.head_bias is not None:
            tensors.append(("head.b", _np(spec.head_bias)))

    # (name, dtype, array, logical dims): encoded values keep the matrix's logical dims
    flat: list[tuple[str, int, np.ndarray, tuple[int, ...]]] = []
    expanded: list[tuple[str, Tensor]] = []
    for name, t in tensors:  # a low-rank matrix is its two factors, NAME.u and NAME.v
        expanded += [(f"{name}.u", t.u), (f"{name}.v", t.v)] if isinstance(t, LowRankTensor) else [(name, t)]
    for name, t in expanded:
        if isinstance(t, QTensor) or (isinstance(t, np.ndarray) and t.ndim == 2):
            flat += _encode_matrix(name, t, allow_csr=sparse and not name.startswith("emb"))
        else:
            flat.append((name, DTYPE_F32, t, t.shape))
    version = max([_DTYPE_VERSION[f[1]] for f in flat] + [3 if any(l.cell == "fastgrnn" for l in spec.layers) else 1])

    meta = json.dumps(spec.meta, sort_keys=True, separators=(",", ":")).encode("utf-8")
    layer_off = HEADER_BYTES
    meta_off = layer_off + LAYER_RECORD * len(spec.layers)
    tensor_off = _align(meta_off + len(meta), 8)
    data_off = _align(tensor_off + TENSOR_RECORD * len(flat), ALIGN)
    records, chunks, pos = [], [], 0
    for name, dtype, arr, shape in flat:
        if len(name.encode()) >= NAME_BYTES:
            raise ValueError(f"tensor name too long: {name}")
        raw = arr.astype(_FILE_DTYPES[dtype], copy=False).tobytes()
        dims = list(shape) + [0] * (2 - len(shape))
        records.append(_TENSOR.pack(name.encode(), dtype, len(shape), dims[0], dims[1], pos, len(raw)))
        pad = _align(len(raw), ALIGN) - len(raw)
        chunks.append(raw + b"\0" * pad)
        pos += len(raw) + pad
    total = data_off + pos
    header = _HEADER.pack(MAGIC, version, HEADER_BYTES, len(spec.layers), len(flat),
                          HEAD_CODES[spec.head_mode], POOL_CODES[spec.pooling],
                          layer_off, tensor_off, data_off, total, meta_off, len(meta), b"")
    layers = b"".join(
        _LAYER.pack(CELL_CODES[l.cell], l.input_size, l.hidden_size, l.proj_size, l.num_directions, int(l.bias),
                    *((NONLINEARITY_CODES[l.gate], NONLINEARITY_CODES[l.update]) if l.cell == "fastgrnn" else (0, 0)))
        for l in spec.layers
    )
    blob = bytearray(header + layers + meta)
    blob += b"\0" * (tensor_off - len(blob))
    blob += b"".join(records)
    blob += b"\0" * (data_off - len(blob))
    blob += b"".join(chunks)
    assert len(blob) == total
    data = bytes(blob)
    if path is not None:
        Path(path).write_bytes(data)
    return data


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
        arrays[name] = np.frombuffer(data, np_dtype, int(np.prod(shape)), data_off + off).reshape(shape).copy()
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
            if f"{name}.scale" not in arrays:
                raise LslFormatError(f"int8 tensor {name} has no {name}.scale")
            return QTensor(arrays[name], arrays[f"{name}.scale"])
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

