"""The ``.lsl`` writer: PyTorch models and run dirs → the native runtime's model file.

The file format (its constants, :class:`ModelSpec`, the reader) lives in
:mod:`lstmlite.runtime.lsl`, beside the runtime that loads it; this module builds a
:class:`ModelSpec` from PyTorch-named weights or an lstmlite model -- compression
honoured: masks, low-rank factors, int8/int4 codes -- and serialises it with
:func:`write_lsl`, each weight matrix in its smallest form. It is the only place
that reads ``lstmlite.compress`` state for the runtime (the runtime imports nothing
from compress). :func:`lstmlite.export.size.account` sizes models through it.

Example:
    >>> import torch
    >>> from lstmlite.runtime.lsl import read_lsl
    >>> lstm = torch.nn.LSTM(4, 8, batch_first=True)
    >>> spec = spec_from_module(lstm)
    >>> blob = write_lsl(spec, weights="int8")
    >>> read_lsl(blob).layers[0].hidden_size
    8
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from ..runtime.lsl import (  # the format, shared with the reader
    CHECKSUM_BYTES, CHECKSUM_VERSION, CODE_DTYPES, COMPACT_VERSION, FILE_VERSION, FLAG_2D, FLAG_SCALE, FLAG_SCALE_F16, FLAG_SCALE_ONE, _MASKED_CODES,
    _DTYPE_VERSION, _FILE_DTYPES, _HEADER, _LAYER, _TENSOR, ALIGN, CELL_CODES, DTYPE_F16, DTYPE_F32,
    DTYPE_F32_MASKED, DTYPE_I4, DTYPE_I4_MASKED, DTYPE_I8, DTYPE_I8_MASKED, DTYPE_I8_SPARSE, DTYPE_I32, DTYPE_U8,
    DTYPE_U16, GATES, HEAD_CODES, HEADER_BYTES, LAYER_RECORD, MAGIC, NAME_BYTES, NONLINEARITY_CODES, POOL_CODES,
    SPARSE_BLOCK, TENSOR_RECORD, WEIGHT_FORMS, LayerSpec, LowRankTensor, ModelSpec, QTensor, Tensor, _align,
    file_checksum,
)

__all__ = [
    "quantize_rows", "spec_from_state_dict", "spec_from_module", "write_lsl", "has_int8", "rounds_float_weights",
    "block_csr", "block_density", "pack_nibbles", "export_lsl", "spec_from_run", "default_weights",
    "rounded_reference", "no_rounded_reference", "codes_wider_than", "wider_codes_refusal", "source_run_of",
]

log = logging.getLogger(__name__)


def quantize_rows(w: np.ndarray, bits: int = 8) -> QTensor:
    """Symmetric per-row quantization: scale = max|row| / qmax, q = round(w / scale),
    qmax = 2**(bits - 1) - 1: 127 for ``bits=8``, 63 for ``bits=7`` (int8 codes within
    [-63, 63]: the AVX2 kernels' fast form, see ``weights="int7"`` in :func:`write_lsl`),
    7 for ``bits=4`` (codes always held as int8).

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
    if bits not in (4, 7, 8):
        raise ValueError(f"bits must be 4, 7 or 8, got {bits}")
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
    """What a candidate form of one matrix adds to a (compact) file beyond the record
    every form has: its data -- values, scales, mask, indices -- unpadded."""
    return sum(arr.size * arr.dtype.itemsize for _, _, arr, _ in entries)


def _encode_matrix(name: str, t: Any, blocks: str = "no") -> list[Entry]:
    """The smallest file form of one weight matrix (an fp32 array or a QTensor).

    Float: dense fp32 or bitmask-sparse fp32. Codes: int4 (two per byte) when every
    code lies in [-8, 7], else int8, dense or bitmask-sparse, then NAME.scale; ties go
    to dense. ``blocks`` says what the (1, 4)-block form (the one the runtime's sparse
    kernels run) may do: ``"no"``; ``"smallest"``: compete with the others (the
    ``auto`` form); ``"prefer"`` (the ``int8-sparse`` form: the sparse kernels asked
    for): taken wherever it is smaller than dense int8, even where a bitmask would be
    smaller still, since only it makes the runtime skip the zero blocks.
    """
    if isinstance(t, QTensor):
        q = np.ascontiguousarray(t.q, dtype=np.int8)
        scale = np.ascontiguousarray(t.scale, dtype=np.float32)
        int4 = _fits_int4(q)
        # one value when every row shares it (a matrix quantized per tensor)
        tail: list[Entry] = [_vector(f"{name}.scale", scale[:1] if np.all(scale == scale[0]) else scale)]
        block_form: list[Entry] = []
        if blocks != "no" and q.shape[1] <= 65536 * SPARSE_BLOCK and _sparse_pays(q):
            rowptr, bcol, values = block_csr(q)
            block_form = [(name, DTYPE_I8_SPARSE, values, q.shape), (f"{name}.rowptr", DTYPE_I32, rowptr,
                          rowptr.shape), (f"{name}.bcol", DTYPE_U16, bcol, bcol.shape)]
            if blocks == "prefer":  # the block form wherever it beats dense int8
                return block_form + tail
        candidates = [[(name, DTYPE_I4, pack_nibbles(q), q.shape)] if int4 else [(name, DTYPE_I8, q, q.shape)]]
        candidates += [block_form] if block_form else []  # before the bitmask: ties go to what runs faster
        candidates.append(_masked(name, q, DTYPE_I4_MASKED if int4 else DTYPE_I8_MASKED))
    else:
        w = np.ascontiguousarray(t, dtype=np.float32)
        candidates = [[(name, DTYPE_F32, w, w.shape)], _masked(name, w, DTYPE_F32_MASKED)]
        tail = []
    return min(candidates, key=_stored_bytes) + tail


def _vector(name: str, values: np.ndarray) -> Entry:
    """A 1-D float tensor: IEEE half when every value survives the round trip exactly
    (scales quantized with ``scale_bits=16``, say), else float32."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    half = values.astype(np.float16)
    if np.all(np.isfinite(half)) and np.array_equal(half.astype(np.float32), values):
        return (name, DTYPE_F16, half, values.shape)
    return (name, DTYPE_F32, values, values.shape)


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
    from lstmlite.importers.layers import EXTRA_LAYERS

    kind = type(rnn).__name__.removeprefix("Parametrized")
    nearest = " (nearest exportable form: cell=lstm, or groups=1)" if isinstance(rnn, GroupedLSTM) else ""
    if isinstance(rnn, tuple(EXTRA_LAYERS.values())):  # an importer-only layer: ONNX has its op
        nearest = " (nearest exportable form: ONNX, export_onnx / --format onnx)"
    if getattr(rnn, "kind", None) == "seq2seq":  # it runs natively, as an encoder + decoder bundle
        nearest = (" as one model: a seq2seq model runs as an encoder and decoder bundle (`lstmlite export RUN "
                   "--format lsl --out DIR` or export_seq2seq_lsl), loaded with lstmlite.runtime.seq2seq.NativeSeq2Seq(DIR)")
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
    task model (classifier, language model, forecaster, tagger).

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
        if kind in ("classifier", "lm", "forecaster", "tagger"):
            rnn = module.rnn
            # a language model and a tagger (tag, ctc) have a head at every step
            head_mode = "each" if kind in ("lm", "tagger") else "last"
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
            _attach_embedding_and_head_low_rank(spec, module)
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
    replaced = 0
    for name, (holder, key) in _slots(spec, "").items():
        if "." in key:  # a factor is not factored again
            continue
        factors = _low_rank_factors(rnn, name)
        if factors is not None:
            holder[key] = factors
            replaced += 1
    return replaced


def _low_rank_factors(module: Any, name: str) -> LowRankTensor | None:
    """The float factors of ``module.name`` when lstmlite.compress factored it as
    W = U V and nothing else on top (no pruning mask over the product), else None."""
    try:
        import torch
        from torch.nn.utils import parametrize

        from lstmlite.compress.lowrank.transform import LowRank
    except ImportError:  # pragma: no cover - compression not installed
        return None
    if module is None or not parametrize.is_parametrized(module, name):
        return None
    plist = module.parametrizations[name]
    # parametrizations of the factors themselves (quantization) hang under the list
    # as a ModuleDict; they are read through plist.original0 / original1
    chain = [p for p in plist if not isinstance(p, torch.nn.ModuleDict)]
    if len(chain) != 1 or not isinstance(chain[0], LowRank):
        return None
    return LowRankTensor(_np(plist.original0), _np(plist.original1))


def _attach_embedding_and_head_low_rank(spec: ModelSpec, module: Any) -> int:
    """Store an embedding or head that lstmlite.compress factored as its factors: the
    file keeps U and V (the loader expands an embedding table; a head runs as two
    products). Returns how many it replaced."""
    replaced = 0
    if spec.embedding is not None and (f := _low_rank_factors(getattr(module, "embedding", None), "weight")):
        spec.embedding, replaced = f, replaced + 1
    if spec.head_weight is not None and (f := _low_rank_factors(getattr(module, "head", None), "weight")):
        spec.head_weight, replaced = f, replaced + 1
    return replaced


class _Slot(NamedTuple):
    """Where a quantized tensor's codes go: get() the float value they must
    reproduce, put(codes) to store them."""

    get: Callable[[], Any]
    put: Callable[[Any], None]


def _quant_slots(spec: ModelSpec, rnn_prefix: str) -> dict[str, _Slot]:
    """PyTorch name of every weight matrix (and low-rank factor) of a spec → its slot."""
    slots: dict[str, _Slot] = {}

    def item(holder: dict, key: str) -> _Slot:
        return _Slot(lambda: holder[key], lambda v: holder.__setitem__(key, v))

    def part(get: Callable[[], Any], put: Callable[[Any], None], which: str) -> _Slot:
        return _Slot(lambda: getattr(get(), which) if isinstance(get(), LowRankTensor) else None,
                     lambda v: put(get()._replace(**{which: v})))

    for name, (holder, key) in _slots(spec, rnn_prefix).items():
        if "." in key:  # a FastGRNN factor (weight_ih_l0_left, ...): w_ih.u
            base, which = key.split(".")
            slots[name] = part(lambda h=holder, b=base: h[b], lambda v, h=holder, b=base: h.__setitem__(b, v), which)
        else:
            slots[name] = item(holder, key)
    owners = {"embedding.weight": ("embedding",), "head.weight": ("head_weight",)}
    for name, (attr,) in owners.items():
        get = (lambda a=attr: getattr(spec, a))
        put = (lambda v, a=attr: setattr(spec, a, v))
        slots[name] = _Slot(get, put)
    for name in list(slots):  # compress's low-rank factors: NAME.original0 (U), .original1 (V)
        if not name.endswith(("_left", "_right")):
            slot = slots[name]
            slots[f"{name}.original0"] = part(slot.get, slot.put, "u")
            slots[f"{name}.original1"] = part(slot.get, slot.put, "v")
    return slots


def _attach_quantized(spec: ModelSpec, module: Any, rnn_prefix: str) -> int:
    """Replace float matrices by the int codes and scales of a model compressed with
    lstmlite.compress weight-only quantization (8 bits or fewer, per channel or per
    tensor) -- recurrent matrices, their low-rank factors, embedding and head -- so
    the runtime computes exactly what the compressed model computes.

    Returns how many tensors were replaced (0 for an uncompressed model).
    """
    try:
        from lstmlite.compress.quantize.transform import quantized_tensors
    except ImportError:  # pragma: no cover - compression not installed
        return 0
    found = quantized_tensors(module)
    if not found:
        return 0
    found.update(_tied_aliases(module, found))
    slots = _quant_slots(spec, rnn_prefix)
    replaced = 0
    for name, qt in found.items():
        codes = qt.codes.detach().cpu().numpy()
        if codes.ndim != 2 or qt.bits > 8 or name not in slots:
            continue
        rows = codes.shape[0]
        scale = np.broadcast_to(qt.scales.detach().cpu().numpy().astype(np.float32).reshape(-1), (rows,)).copy()
        value = _fit_codes(name, QTensor(np.ascontiguousarray(codes, dtype=np.int8), scale), slots[name].get())
        if value is not None:
            slots[name].put(value)
            replaced += 1
    return replaced


def _tied_aliases(module: Any, found: Mapping[str, Any]) -> dict[str, Any]:
    """The codes of a tied head: ``quantized_tensors`` names a tied tensor once (the
    embedding of a language model whose head is its embedding), but the file stores
    the head as a matrix of its own, which must hold those same codes, not floats."""
    embedding, head = getattr(module, "embedding", None), getattr(module, "head", None)
    if "embedding.weight" not in found or "head.weight" in found or embedding is None or head is None:
        return {}
    from lstmlite.compress.targets import tensor_key

    if tensor_key(embedding, "weight") != tensor_key(head, "weight"):
        return {}
    return {"head.weight": found["embedding.weight"]}


def _fit_codes(name: str, value: QTensor, effective: Any) -> QTensor | None:
    """Codes that dequantize to the weights the model really computes with, or None.

    The codes themselves when they do; when a pruning mask was added after quantizing,
    the codes with the mask's zeros applied (the same scales reproduce the masked
    weights exactly); otherwise None, and the float effective weights are kept (with
    a warning) so the runtime still computes what the model computes."""
    if effective is None:
        return None
    if not isinstance(effective, np.ndarray):
        return value

    def same(v: QTensor) -> bool:
        deq = v.dequantize()
        return deq.shape == effective.shape and bool(
            np.allclose(deq, effective, rtol=1e-5, atol=1e-6 * float(v.scale.max())))

    if same(value):
        return value
    masked = QTensor(np.where(effective == 0, 0, value.q).astype(np.int8), value.scale)
    if same(masked):
        log.info("%s: pruned after quantizing; storing its codes with the mask applied", name)
        return masked
    log.warning("%s: the model's weights are not its quantized codes (changed after quantizing?); "
                "storing the effective weights instead", name)
    return None


def fitted_codes(name: str, q: Any, effective: np.ndarray) -> QTensor | None:
    """:func:`_fit_codes` for a compression ``QuantizedTensor`` ``q`` (2-D codes; one
    scale per row, or one for the whole tensor): the contiguous int8 codes and per-row
    float32 scales that give ``effective`` (the mask's zeros applied for a tensor pruned
    after quantizing), or None where they cannot (store the floats). One test for every
    exporter, so the ``.lsl`` file, the seq2seq bundle and ONNX keep the same tensors as
    codes."""
    rows = int(q.codes.shape[0])
    scale = np.ascontiguousarray(q.scales.reshape(-1).expand(rows).cpu().numpy(), dtype=np.float32)
    fitted = _fit_codes(name, QTensor(np.ascontiguousarray(q.codes.cpu().numpy(), dtype=np.int8), scale), effective)
    return None if fitted is None else QTensor(np.ascontiguousarray(fitted.q), scale)


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
    return weights in ("int8", "int7", "int7r", "int8-sparse", "int4") and any(
        isinstance(t, np.ndarray) and t.ndim == 2 for t in _weight_matrices(spec))


def codes_wider_than(spec: ModelSpec, weights: str) -> dict[str, int]:
    """The spec's matrices whose own codes need more bits than ``weights`` rounds that
    matrix to, by file tensor name: the bits their codes take (8 or 4). ``write_lsl``
    keeps a matrix's codes whatever ``weights`` says, so ``weights="int4"`` of an int8
    model writes int8 codes, not int4 -- a bigger file than asked. Empty for the forms
    that round to 8 bits or not at all (auto, fp32, int8, int8-sparse).

    Example:
        >>> import torch
        >>> spec = spec_from_module(torch.nn.LSTM(2, 4, batch_first=True))
        >>> d = spec.layers[0].directions[0]
        >>> d["w_hh"] = quantize_rows(np.asarray(d["w_hh"]), 8)
        >>> codes_wider_than(spec, "int4"), codes_wider_than(spec, "int8")
        ({'l0.0.w_hh': 8}, {})
    """
    quant, recurrent_quant, emb_bits = _form_bits(weights)
    roles: list[tuple[str, Tensor, int]] = [
        (f"l{k}.{d}.{name}", t[name], quant if name == "w_ih" else recurrent_quant)
        for k, layer in enumerate(spec.layers) for d, t in enumerate(layer.directions)
        for name in ("w_ih", "w_hh", "w_hr") if name in t]
    roles += [("emb", spec.embedding, emb_bits), ("head.w", spec.head_weight, quant)]
    wider: dict[str, int] = {}
    for name, t, bits in roles:
        parts = [(f"{name}.u", t.u), (f"{name}.v", t.v)] if isinstance(t, LowRankTensor) else [(name, t)]
        for part, value in parts:
            if not isinstance(value, QTensor) or bits in (0, 8) or value.q.size == 0:
                continue
            lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            if int(value.q.min()) < lo or int(value.q.max()) > hi:
                wider[part] = 4 if _fits_int4(value.q) else 8
    return wider


def wider_codes_refusal(specs: dict[str, ModelSpec], weights: str | None, source_run: str | None = None,
                        flag: str = "weights=") -> str | None:
    """The one line refusing ``weights`` (int4 / int7 / int7r) for models whose matrices are
    already codes of more bits (:func:`codes_wider_than`), else None. The file would keep
    those codes -- int4 of an int8 run would be the int8 file, bigger than asked -- so it is
    an error, not a file of another form. ``specs``: each file's spec by the prefix its
    tensor names take in the line (``""`` for one file); ``source_run``: the float run the
    line suggests exporting instead; ``flag``: how the option is written (``--weights `` in
    the CLI).

    Example:
        >>> import torch
        >>> spec = spec_from_module(torch.nn.LSTM(2, 4, batch_first=True))
        >>> spec.layers[0].directions[0]["w_hh"] = quantize_rows(np.asarray(spec.layers[0].directions[0]["w_hh"]), 8)
        >>> wider_codes_refusal({"": spec}, "int4")[:69]
        "weights=int4: this run's weights are already int8 codes (l0.0.w_hh), "
    """
    if weights is None:
        return None
    wider: dict[str, int] = {}
    for prefix, spec in specs.items():
        wider.update({prefix + name: bits for name, bits in codes_wider_than(spec, weights).items()})
    if not wider:
        return None
    form = " / ".join(f"int{b}" for b in sorted(set(wider.values()), reverse=True))
    names = ", ".join(list(wider)[:3]) + (", ..." if len(wider) > 3 else "")
    return (f"{flag}{weights}: this run's weights are already {form} codes ({names}), which the file would keep: "
            f"it would hold {form}, not {weights}; export the float run{f' ({source_run})' if source_run else ''} "
            f"with {flag}{weights}"
            + (", compress it with 4-bit weights (a recipe step `method: int4_weight`)" if weights == "int4" else "")
            + f", or export this run with {flag}auto ({form})")


def source_run_of(run_dir: str | Path) -> str | None:
    """The run dir a compressed run came from (its recipe.json's ``source_run``), or None."""
    try:
        source = json.loads((Path(run_dir) / "recipe.json").read_text(encoding="utf-8")).get("source_run")
    except (OSError, ValueError, AttributeError):
        return None
    return source if isinstance(source, str) else None


def _form_bits(weights: str) -> tuple[int, int, int]:
    """(bits of w_ih and the head, of w_hh / w_hr, of the embedding) that ``write_lsl`` rounds
    float matrices to under ``weights`` (0: kept float)."""
    quant = {"auto": 0, "fp32": 0, "int4": 4, "int7": 7}.get(weights, 8)
    return quant, 7 if weights == "int7r" else quant, 8 if quant == 7 else quant


def _masked_product(module: Any, name: str) -> bool:
    """Whether ``module.name`` is a low-rank product with more on top of it (a pruning
    mask): the file stores it as one dense float matrix, which a form then rounds, whatever
    codes its factors hold."""
    from torch.nn.utils import parametrize

    from lstmlite.compress.lowrank.transform import LowRank
    from lstmlite.compress.quantize.transform import chain

    if not parametrize.is_parametrized(module, name):
        return False
    steps = chain(module.parametrizations[name])
    return any(isinstance(p, LowRank) for p in steps) and len(steps) > 1


def _rounding(weights: str) -> tuple[Callable[..., bool], Callable[[Any, str], int]] | None:
    """How a ``weights`` file rounds a model's float matrices: ``rounded(fqn, module, name)``
    (a weight matrix the model did not quantize itself, on the tensor or its low-rank
    factors) and ``bits(module, name)`` (its width under the form); None for a form that
    rounds nothing."""
    import torch
    from torch.nn.utils import parametrize

    from lstmlite.compress.quantize.transform import chain, is_quantizer
    from lstmlite.compress.targets import is_sequence_layer, matrix_filter

    quant, recurrent, emb = _form_bits(weights)
    if not quant:
        return None

    def quantized(module: Any, name: str) -> bool:  # on the tensor itself or on its low-rank factors
        if not parametrize.is_parametrized(module, name):
            return False
        plist = module.parametrizations[name]
        if any(is_quantizer(p) for p in chain(plist)):
            return True
        if _masked_product(module, name):
            return False
        lists = [plist.parametrizations[f"original{i}"] for i in range(0 if plist.is_tensor else plist.ntensors)
                 if parametrize.is_parametrized(plist, f"original{i}")]
        return any(is_quantizer(p) for lst in lists for p in chain(lst))

    def bits(module: Any, name: str) -> int:
        if isinstance(module, torch.nn.Embedding):
            return emb
        if is_sequence_layer(module):
            return quant if name.startswith("weight_ih") else recurrent
        return quant

    def rounded(fqn: str, module: Any, name: str) -> bool:
        return matrix_filter(fqn, module, name) and not quantized(module, name)

    return rounded, bits


def no_rounded_reference(model: Any, weights: str) -> str | None:
    """Why no PyTorch model computes ``model``'s ``weights`` file (what
    :func:`rounded_reference` raises), or None where one does; reads the model only, so a
    caller can ask without building the reference."""
    from lstmlite.compress.targets import matrix_filter, select_targets

    rounding = _rounding(weights)
    if rounding is None:
        return None
    rounded, bits = rounding
    for group in select_targets(model, rounded, matrix_filter):
        if len({bits(m, n) for _, m, n in group}) > 1:
            return (f"{weights} rounds the tied {', '.join(f'{f}.{n}' for f, _, n in group)} at different "
                    "widths: no single model computes the file")
        fqn, module, name = group[0]
        if _masked_product(module, name):
            return f"{fqn}.{name}: a low-rank product under a mask is rounded as a dense matrix: no single model " \
                   "computes the file"
    return None


def rounded_reference(model: Any, weights: str) -> Any:
    """What a ``weights`` file of ``model`` computes, as a PyTorch model: a copy whose float
    weight matrices (recurrent, embedding, head; low-rank ones factor by factor) carry the
    per-row codes :func:`write_lsl` rounds them to (``weight_quant`` per row at the form's
    bits is :func:`quantize_rows`' arithmetic), while matrices the model quantized itself
    keep their own codes, as the file keeps them. The oracle of an export that rounds.

    Raises:
        ValueError: no PyTorch model computes it (:func:`no_rounded_reference`) -- a tied
            embedding and head the form rounds at different widths (``int7``), or a
            low-rank product with a mask over it (the file rounds the dense product).
    """
    import copy

    from lstmlite.compress import compress_
    from lstmlite.compress.quantize import WeightQuantConfig

    rounding = _rounding(weights)
    if rounding is None:
        return model
    why = no_rounded_reference(model, weights)
    if why is not None:
        raise ValueError(why)
    rounded, bits = rounding
    reference = copy.deepcopy(model).eval()
    for b in sorted(set(_form_bits(weights))):
        compress_(reference, WeightQuantConfig(bits=b),
                  filter=lambda fqn, module, name, b=b: rounded(fqn, module, name) and bits(module, name) == b)
    return reference


def _as_tensor(t: Tensor, bits: int) -> Tensor:
    """A float matrix quantized per row to ``bits`` (0: kept float); QTensors as given."""
    if isinstance(t, LowRankTensor):  # each factor quantized per row on its own
        return LowRankTensor(_as_tensor(t.u, bits), _as_tensor(t.v, bits))
    if isinstance(t, QTensor):
        return t
    return quantize_rows(t, bits) if bits else np.ascontiguousarray(t, dtype=np.float32)


#: Most values an int8 matrix row sums (the C runtime's LSL_I8_MAX_COLS): K * 255 * 128 <= 2**31 - 1.
I8_MAX_COLS = 65793
_CODE_DTYPES = (DTYPE_I8, DTYPE_I4, DTYPE_I8_MASKED, DTYPE_I4_MASKED)


def _check_int8_widths(flat: list[tuple[str, int, np.ndarray, tuple[int, ...]]]) -> None:
    """Refuse an int8 weight matrix whose rows could overflow the runtime's int32 sums
    (docs/integer.md, accumulator bounds): dense and bitmask codes by their columns, the
    block-sparse form by its kept values per row. The C loader refuses such files too;
    here the error says why. The embedding is looked up, never summed: not checked."""
    arrays = {name: arr for name, _, arr, _ in flat}
    for name, dtype, _, dims in flat:
        if name.startswith("emb") or len(dims) != 2:
            continue
        width = 0
        if dtype in _CODE_DTYPES:
            width = int(dims[1])
        elif dtype == DTYPE_I8_SPARSE and f"{name}.rowptr" in arrays:
            width = 4 * int(np.diff(np.asarray(arrays[f"{name}.rowptr"], np.int64)).max(initial=0))
        if width > I8_MAX_COLS:
            raise ValueError(f"{name}: an int8 matrix row of {width} values could overflow the runtime's int32 "
                             f"accumulators (K * 255 * 128 must fit: K <= {I8_MAX_COLS}); store it as fp32 "
                             f"(weights='fp32'), low-rank or sparser")


def write_lsl(spec: ModelSpec, weights: str = "fp32", path: str | Path | None = None,
              quantize_embedding: bool = True, version: int | None = None) -> bytes:
    """Serialise a spec to .lsl bytes (and write them to ``path`` when given).

    Every weight matrix takes the smallest file form open to it (see
    :func:`_encode_matrix`): dense, or bitmask-sparse (a pruned matrix: its non-zero
    values plus one bit per element; the loader expands it). Codes that fit in 4 bits
    are packed two per byte.

    Args:
        weights: ``auto`` (what export uses by default) keeps every matrix as the
            model has it -- float, or its own int8 / int4 codes -- and offers each
            the (1, 4)-block form too, so the file is the smallest that computes
            exactly what the model computes; ``fp32`` keeps float matrices as they
            are; ``int8`` / ``int4``
            quantize every float weight matrix (and the embedding, unless
            ``quantize_embedding=False``) per row to 8 / 4 bits; ``int7`` as
            ``int8`` with codes within [-63, 63] (the embedding, looked up rather than
            multiplied, keeps 8 bits): the same file size, twice the weights'
            rounding step, and on x86 CPUs without VNNI dynamic int8 products without a
            sign step (7-bit weights as ONNX Runtime's ``reduce_range`` has them;
            docs/runtime.md); ``int7r`` as ``int8`` with only the recurrent matrices
            (w_hh, w_hr) at 7 bits: the one-stream recurrent product, whose sign step
            is what 7-bit codes save, loses it, while the input projections and the head
            keep 8 bits (with ``activations="dynamic16"`` more accurate than ``int8``
            with ``"dynamic"``, docs/runtime.md); ``int8-sparse``
            quantizes as ``int8`` and also offers each recurrent and head matrix the
            (1, 4)-block form, kept where smallest (a block-pruned model), which the
            runtime's sparse kernels run. Matrices already given as :class:`QTensor`
            keep their codes whatever ``weights`` says; biases are always float32.
        version: None (the newest, 5: the compact table and a CRC-32 of the file) or
            an older file version for older readers: 4 is the compact table without
            the checksum; 1 to 3 write the fixed 64-byte records (refused when the
            model needs something that version lacks).
    """
    if weights not in WEIGHT_FORMS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_FORMS)}, got {weights!r}")
    spec.validate()
    quant, recurrent_quant, emb_bits = _form_bits(weights)  # w_ih and head, w_hh / w_hr, embedding
    blocks = {"int8-sparse": "prefer", "auto": "smallest"}.get(weights, "no")
    tensors: list[tuple[str, Tensor]] = []
    for k, layer in enumerate(spec.layers):
        for d, t in enumerate(layer.directions):
            for name in ("w_ih", "w_hh", "w_hr"):
                if name in t:
                    bits = quant if name == "w_ih" else recurrent_quant
                    tensors.append((f"l{k}.{d}.{name}", _as_tensor(t[name], bits)))
            if layer.bias:
                tensors += [(f"l{k}.{d}.b_ih", _np(t["b_ih"])), (f"l{k}.{d}.b_hh", _np(t["b_hh"]))]
            if layer.cell == "fastgrnn":
                tensors.append((f"l{k}.{d}.zn", _np(t["zn"])))
    if spec.embedding is not None:
        # emb_bits: 8 under int7, a lookup table gains nothing from 7 bits
        tensors.append(("emb", _as_tensor(spec.embedding, emb_bits if quantize_embedding else 0)))
    if spec.head_mode != "none":
        tensors.append(("head.w", _as_tensor(spec.head_weight, quant)))
        if spec.head_bias is not None:
            tensors.append(("head.b", _np(spec.head_bias)))

    # (name, dtype, array, logical dims): encoded values keep the matrix's logical dims
    flat: list[tuple[str, int, np.ndarray, tuple[int, ...]]] = []
    expanded: list[tuple[str, Tensor]] = []
    for name, t in tensors:  # a low-rank matrix is its two factors, NAME.u and NAME.v
        expanded += [(f"{name}.u", t.u), (f"{name}.v", t.v)] if isinstance(t, LowRankTensor) else [(name, t)]
    for name, t in expanded:
        if isinstance(t, QTensor) or (isinstance(t, np.ndarray) and t.ndim == 2):
            # the embedding table is looked up row by row, never multiplied: no block form
            flat += _encode_matrix(name, t, "no" if name.startswith("emb") else blocks)
        else:
            flat.append(_vector(name, t))
    _check_int8_widths(flat)
    for name, *_ in flat:
        if not name.isascii() or not 0 < len(name) < NAME_BYTES:
            raise ValueError(f"tensor name must be 1 to {NAME_BYTES - 1} ASCII characters: {name}")
    # nothing for a model without metadata: every byte counts in a tiny model
    meta = json.dumps(spec.meta, sort_keys=True, separators=(",", ":")).encode("utf-8") if spec.meta else b""
    if version is None or version >= COMPACT_VERSION:
        data = _compact_file(spec, flat, meta, FILE_VERSION if version is None else version)
    else:
        data = _fixed_file(spec, flat, meta, version)
    if path is not None:
        Path(path).write_bytes(data)
    return data


def _varint(n: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, low first (one byte below 128)."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _compact_layer(layer: LayerSpec) -> bytes:
    """A layer's compact record (lsl.h): cell, directions | bias, nonlinearities, sizes."""
    fns = NONLINEARITY_CODES[layer.gate] | NONLINEARITY_CODES[layer.update] << 4 if layer.cell == "fastgrnn" else 0
    return (bytes([CELL_CODES[layer.cell], layer.num_directions | int(layer.bias) << 2, fns])
            + b"".join(_varint(n) for n in (layer.input_size, layer.hidden_size, layer.proj_size)))


_COMPANIONS = (".scale", ".mask", ".rowptr", ".bcol")  # stored inside their matrix's compact record


def _compact_record(entry: Entry, stored: dict[str, Entry]) -> bytes:
    """One compact record and its data: the values, then the companions in lsl.h's order."""
    name, dtype, arr, shape = entry
    values = arr.astype(_FILE_DTYPES[dtype], copy=False).tobytes()
    flags = FLAG_2D if len(shape) == 2 else 0
    tail = b""
    if dtype in CODE_DTYPES:
        _, sdtype, scale, _ = stored[f"{name}.scale"]
        flags |= FLAG_SCALE | (FLAG_SCALE_F16 if sdtype == DTYPE_F16 else 0) | (FLAG_SCALE_ONE if scale.size == 1 else 0)
        tail += scale.astype(_FILE_DTYPES[sdtype], copy=False).tobytes()
    if dtype in _MASKED_CODES:
        tail += stored[f"{name}.mask"][2].tobytes()
    extra = b""
    if dtype == DTYPE_I8_SPARSE:
        rowptr, bcol = stored[f"{name}.rowptr"][2], stored[f"{name}.bcol"][2]
        tail += rowptr.astype("<i4").tobytes() + bcol.astype("<u2").tobytes()
        extra = _varint(len(bcol))
    head = bytes([len(name)]) + name.encode("ascii") + bytes([dtype, flags])
    head += b"".join(_varint(d) for d in shape) + _varint(len(values)) + extra
    return head + values + tail


def _compact_file(spec: ModelSpec, flat: list[Entry], meta: bytes, version: int = FILE_VERSION) -> bytes:
    """Versions 4 and 5: the compact table (lsl.h). Companions -- scales, masks, block
    indices -- travel inside their matrix's record, so only matrices and vectors have
    records; no offsets (each record is followed by its data) and no padding. Version
    5 appends the CRC-32 of every byte before it (readers refuse a corrupt file)."""
    if not COMPACT_VERSION <= version <= FILE_VERSION:
        raise ValueError(f".lsl version {version} cannot be written (compact versions: "
                         f"{COMPACT_VERSION} to {FILE_VERSION})")
    stored = {e[0]: e for e in flat}
    mains = [e for e in flat if not (e[0].endswith(_COMPANIONS) and e[0].rsplit(".", 1)[0] in stored)]
    records = b"".join(_compact_record(e, stored) for e in mains)
    header = MAGIC + version.to_bytes(4, "little")
    header += bytes([HEAD_CODES[spec.head_mode], POOL_CODES[spec.pooling], len(spec.layers)])
    header += _varint(len(mains)) + _varint(len(meta))
    body = header + b"".join(_compact_layer(l) for l in spec.layers) + meta + records
    if version < CHECKSUM_VERSION:
        return body
    return body + file_checksum(body).to_bytes(CHECKSUM_BYTES, "little")


def _fixed_file(spec: ModelSpec, flat: list[Entry], meta: bytes, version: int) -> bytes:
    """Versions 1 to 3: the 96-byte header and fixed 64-byte tensor records, for
    readers older than the compact table."""
    dims = {n: shape for n, _, _, shape in flat}
    shared_scale = any(n.endswith(".scale") and shape == (1,) and dims[n[:-6]][0] > 1 for n, shape in dims.items())
    needed = max([_DTYPE_VERSION[f[1]] for f in flat]
                 + [3 if shared_scale or any(l.cell == "fastgrnn" for l in spec.layers) else 1])
    if not needed <= version <= 3:
        raise ValueError(f"cannot write .lsl version {version}: this model needs version {needed} or later "
                         f"(the newest is {FILE_VERSION})")
    layer_off = HEADER_BYTES
    meta_off = layer_off + LAYER_RECORD * len(spec.layers)
    tensor_off = _align(meta_off + len(meta), 8)
    data_off = _align(tensor_off + TENSOR_RECORD * len(flat), ALIGN)
    records, chunks, pos = [], [], 0
    for name, dtype, arr, shape in flat:
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
    return bytes(blob)


def default_weights(spec: ModelSpec, weights: str | None = None) -> str:
    """The weight form ``export --format lsl`` uses: ``weights`` when given, else
    ``auto`` (every matrix as the model has it, float or its own codes, in its
    smallest form)."""
    del spec  # the choice no longer depends on the model; kept for callers
    return weights or "auto"


def spec_from_run(run_dir: str | Path) -> ModelSpec:
    """The runtime spec of a run dir's model (compression honoured, see
    :func:`spec_from_module`)."""
    from lstmlite.io import load_run

    # nothing about where the run lives goes in the file: its bytes are the model's
    # size (lstmlite.export.size), the same wherever the run dir is
    return spec_from_module(load_run(run_dir).model)


def export_lsl(run_dir: str | Path, out_path: str | Path, weights: str | None = None) -> Path:
    """Write a run dir's model as a .lsl file (``weights``: see :func:`default_weights`).

    Returns the path written. The file is checked by loading it into the runtime
    before it is put in place (written to a temporary name, then renamed).

    Raises:
        ValueError: ``run_dir`` is a TFLite-quantized LSTM (a ``.tflite`` file, its
            params or ``read_tflite_lstm``'s model), whose integer arithmetic the ``.lsl``
            format does not hold; one line naming the format that takes it (C,
            ``export_c(..., form="tflite")``). Nothing is written.
        ValueError: ``weights`` of fewer bits than the run's own codes (int4 of an int8
            run: :func:`wider_codes_refusal`). Nothing is written.
    """
    from ..runtime.engine import Engine
    from ._tflite_source import tflite_refusal

    refusal = tflite_refusal(run_dir, "lsl")
    if refusal is not None:
        raise ValueError(refusal)

    spec = spec_from_run(run_dir)
    refusal = wider_codes_refusal({"": spec}, weights, source_run_of(run_dir))
    if refusal is not None:
        raise ValueError(refusal)
    out_path = Path(out_path)
    if out_path.is_dir():
        out_path = out_path / "model.lsl"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    data = write_lsl(spec, weights=default_weights(spec, weights))
    Engine(data)  # refuse to write a file the runtime cannot load
    tmp.write_bytes(data)
    tmp.replace(out_path)
    log.info("wrote %s (%d bytes)", out_path, len(data))
    return out_path
