"""The float forms of the generated C (fp32, and int8 weights with float activations).

The generated ``model.c`` is the native runtime's portable core (``lsl_model.c``,
``lsl_matrix.c``, ``lsl_kern_portable.c``, ``lsl_isa.c``; DESIGN decision 6) plus the
model's constants: each weight matrix already in the runtime's packed panel layout
(``lsl_internal.h``), as ``const`` arrays that stay in flash, and the ``lsl_model``
struct that points at them. Nothing is packed or allocated at run time.

Layouts written here (they must equal what ``lsl_matrix_pack`` builds):

* fp32: ``float [panel][k][16]``, panel = 16 consecutive rows, rows past the matrix zero.
* int8: ``int8 [panel][kpad/4][16][4]`` (kpad = cols rounded up to 4), then per padded
  row a float scale and an int32 row sum (the runtime's ``wsum``).

Example:
    >>> import numpy as np
    >>> pack_f32(np.arange(6, dtype=np.float32).reshape(2, 3)).shape   # 1 panel x 3 k x 16
    (48,)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...runtime.lsl import LayerSpec, LowRankTensor, ModelSpec, QTensor
from .carray import c_array, c_float

__all__ = ["pack_f32", "pack_i8", "FloatModelC", "float_model_c", "UnsupportedForm"]

PANEL = 16
ALIGN = 64
# sizeof of lsl.h's structs on the 32-bit Cortex-M targets (4-byte int32, pointer and float):
# lsl_matrix 6 int32 + 3 pointers; lsl_layer 6 int32 + 2 lsl_direction (3 matrices, 2 bias
# pointers, 2 floats: 124 bytes each) + 2 int32; lsl_model 4 int32 + a pointer + lsl_embedding
# (4 int32 + 2 pointers) + a matrix + a pointer. tests/export/test_c_export.py holds them to
# arm-none-eabi-gcc's symbol sizes.
MATRIX_STRUCT_BYTES = 36
LAYER_STRUCT_BYTES = 280
MODEL_STRUCT_BYTES = 84
_CELLS = {"lstm": "LSL_LSTM", "gru": "LSL_GRU", "fastgrnn": "LSL_FASTGRNN"}
_FNS = {"sigmoid": "LSL_FN_SIGMOID", "tanh": "LSL_FN_TANH"}


class UnsupportedForm(ValueError):
    """A model or layer the C export cannot write in the asked form (one-line message,
    ending in "nearest supported form: ADVICE" where there is one)."""

    @property
    def nearest(self) -> str:
        """The message's advice (what follows "nearest supported form: "), or ""."""
        return str(self).partition("nearest supported form: ")[2]


def _round_up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


def pack_f32(w: np.ndarray) -> np.ndarray:
    """Row-major (rows, cols) float → the runtime's fp32 panels, flattened (float32)."""
    w = np.asarray(w, np.float32)
    rows, cols = w.shape
    panels = -(-rows // PANEL)
    padded = np.zeros((panels * PANEL, cols), np.float32)
    padded[:rows] = w
    return np.ascontiguousarray(padded.reshape(panels, PANEL, cols).transpose(0, 2, 1)).reshape(-1)


def pack_i8(q: np.ndarray) -> tuple[np.ndarray, int]:
    """Row-major (rows, cols) int8 codes → the runtime's int8 panels (flattened) and kpad."""
    q = np.asarray(q, np.int8)
    rows, cols = q.shape
    panels, kpad = -(-rows // PANEL), -(-cols // 4) * 4
    padded = np.zeros((panels * PANEL, kpad), np.int8)
    padded[:rows, :cols] = q
    # (panel, row, k/4, 4) -> (panel, k/4, row, 4)
    blocks = padded.reshape(panels, PANEL, kpad // 4, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(blocks).reshape(-1), kpad


@dataclass
class FloatModelC:
    """What :func:`float_model_c` generated: the C text and the byte counts it implies."""

    source: str                    # the constants and the lsl_model struct (part of model.c)
    weight_bytes: int              # const data: packed weights, scales, biases, structs
    state_floats: int              # lsl_model_state_floats(model, 1)
    work_bytes: int                # lsl_model_step_bytes(model, 1)
    input_size: int                # floats per step (0 for token input)
    vocab_size: int                # 0 for float input
    output_size: int
    forms: list[str] = field(default_factory=list)  # per matrix, for the README


class _Writer:
    """Collects constant arrays and counts their bytes."""

    def __init__(self, source: bool = True) -> None:
        self.source = source  # False: count the bytes, write no C text (memory figures only)
        self.parts: list[str] = []
        self.bytes = 0
        self.scratch = 0  # largest lsl_matmul_bytes(w, 1) over the matrices
        self.forms: list[str] = []

    def array(self, name: str, values: np.ndarray, ctype: str, aligned: bool = False) -> str:
        if self.source:
            self.parts.append(c_array(name, values, ctype, aligned))
        self.bytes += max(np.asarray(values).size, 1) * {"float": 4, "int8_t": 1, "int32_t": 4}[ctype]
        if aligned:  # padding the aligned placement may add, counted as a worst case
            self.bytes = _round_up(self.bytes, ALIGN)
        return name

    def matrix(self, name: str, t: Any, label: str) -> tuple[str, int]:
        """A C initializer of an lsl_matrix for ``t``, and its lsl_matmul_bytes(w, 1)."""
        if isinstance(t, LowRankTensor):
            v_init, v_scr = self.matrix(f"{name}_v", t.v, f"{label}.v")
            u_init, u_scr = self.matrix(f"{name}_u", t.u, f"{label}.u")
            rank = int(np.asarray(t.v.q if isinstance(t.v, QTensor) else t.v).shape[0])
            self.parts.append(f"static const lsl_matrix {name}_factors[2] = {{{v_init}, {u_init}}};")
            self.bytes += 2 * MATRIX_STRUCT_BYTES
            rows, cols = t.shape
            act = "LSL_ACT_FLOAT"
            scratch = _round_up(4 * rank) + max(v_scr, u_scr)
            return (f"{{{rows}, {cols}, LSL_LOWRANK, {act}, {rank}, 0, {name}_factors, NULL, NULL}}", scratch)
        if isinstance(t, QTensor):
            q = np.asarray(t.q, np.int8)
            rows, cols = q.shape
            data, kpad = pack_i8(q)
            padded_rows = -(-rows // PANEL) * PANEL
            scale = np.zeros(padded_rows, np.float32)
            scale[:rows] = t.scale
            wsum = np.zeros(padded_rows, np.int32)
            wsum[:rows] = q.astype(np.int32).sum(axis=1)
            flags = 0 if np.any(q == -128) else 1  # LSL_MATRIX_NO_M128
            self.array(f"{name}_data", data, "int8_t", aligned=True)
            self.array(f"{name}_scale", scale, "float", aligned=True)
            self.array(f"{name}_wsum", wsum, "int32_t", aligned=True)
            int4 = q.size == 0 or (int(q.min()) >= -8 and int(q.max()) <= 7)
            # the runtime has no 4-bit kernel: int4 codes run (and are stored) one per byte
            self.forms.append(f"{label}: {'int4 codes as int8' if int4 else 'int8'} {rows}x{cols}")
            scratch = _round_up(3 * kpad) + _round_up(4)  # ACT_FLOAT: three u8 planes + a scale
            return (f"{{{rows}, {cols}, LSL_I8, LSL_ACT_FLOAT, {kpad}, {flags}, {name}_data, {name}_scale, "
                    f"{name}_wsum}}", scratch)
        w = np.asarray(t, np.float32)
        rows, cols = w.shape
        self.array(f"{name}_data", pack_f32(w), "float", aligned=True)
        self.forms.append(f"{label}: fp32 {rows}x{cols}")
        return f"{{{rows}, {cols}, LSL_F32, LSL_ACT_FLOAT, {cols}, 0, {name}_data, NULL, NULL}}", 0

    def vector(self, name: str, v: Any) -> str:
        if v is None:
            return "NULL"
        return self.array(name, np.asarray(v, np.float32).reshape(-1), "float")


def _as_form(t: Any, form: str, where: str) -> Any:
    """A matrix in the asked form: fp32 dequantizes codes, int8 quantizes floats per row."""
    from ..lsl import quantize_rows

    if isinstance(t, LowRankTensor):
        return LowRankTensor(_as_form(t.u, form, where + ".u"), _as_form(t.v, form, where + ".v"))
    if form == "fp32" and isinstance(t, QTensor):
        return t.dequantize()
    if form == "int8" and not isinstance(t, QTensor):
        return quantize_rows(np.asarray(t, np.float32), 8)
    return t


def _check_layer(k: int, layer: LayerSpec) -> None:
    if layer.num_directions != 1:
        raise UnsupportedForm(f"layer {k}: bidirectional layers cannot run step by step on a device; "
                              "nearest supported form: a unidirectional layer")
    if layer.proj_size:
        raise UnsupportedForm(f"layer {k}: LSTM projection (proj_size={layer.proj_size}) is not in the C export; "
                              "nearest supported form: an LSTM without projection")


def float_model_c(spec: ModelSpec, form: str = "auto", source: bool = True) -> FloatModelC:
    """The constants and ``lsl_model`` of a spec, for ``form`` ``auto`` (matrices as the
    model has them: fp32 or its own int8/int4 codes), ``fp32`` or ``int8`` (weight-only).

    ``source=False`` counts every byte as the C text would hold it but formats no array
    (the text of a large embedding takes seconds): the sizes, not ``source``, are then
    usable -- what :func:`lstmlite.export.c.memory_of` needs.

    Raises :class:`UnsupportedForm` (one line naming the layer and the nearest supported
    form) for what the device API cannot run.
    """
    if form not in ("auto", "fp32", "int8"):
        raise ValueError(f"form must be auto, fp32 or int8, got {form!r}")
    if spec.head_mode == "last" and spec.pooling != "last":
        raise UnsupportedForm(f"head: pooling={spec.pooling!r} is not in the C export (it runs step by step); "
                              "nearest supported form: pooling=last")
    if spec.meta.get("instance_norm"):
        raise UnsupportedForm("head: a forecaster with instance normalisation is not in the C export; "
                              "nearest supported form: instance_norm=false")
    wr = _Writer(source)
    layer_inits, state, scratch, gates_max, hidden_max = [], 0, 0, 0, 0
    for k, layer in enumerate(spec.layers):
        _check_layer(k, layer)
        t = layer.directions[0]
        mats = {}
        for name in ("w_ih", "w_hh"):
            init, s = wr.matrix(f"l{k}_{name}", _as_form(t[name], form, f"l{k}.{name}"), f"layer {k} {name}")
            mats[name], scratch = init, max(scratch, s)
        b_ih = wr.vector(f"l{k}_b_ih", t.get("b_ih"))
        b_hh = wr.vector(f"l{k}_b_hh", t.get("b_hh"))
        zeta, nu = (c_float(t["zn"][0]), c_float(t["zn"][1])) if layer.cell == "fastgrnn" else ("0.0f", "0.0f")
        gate = _FNS[layer.gate] if layer.cell == "fastgrnn" else "0"
        update = _FNS[layer.update] if layer.cell == "fastgrnn" else "0"
        empty = "{0, 0, 0, 0, 0, 0, NULL, NULL, NULL}"
        direction = f"{{{mats['w_ih']}, {mats['w_hh']}, {empty}, {b_ih}, {b_hh}, {zeta}, {nu}}}"
        layer_inits.append(f"    {{{_CELLS[layer.cell]}, {layer.input_size}, {layer.hidden_size}, 0, 1, 0,\n"
                           f"     {{{direction},\n      {{{empty}, {empty}, {empty}, NULL, NULL, 0.0f, 0.0f}}}},\n"
                           f"     {gate}, {update}}}")
        gates = {"lstm": 4, "gru": 3, "fastgrnn": 1}[layer.cell] * layer.hidden_size
        gates_max, hidden_max = max(gates_max, gates), max(hidden_max, layer.hidden_size)
        state += layer.hidden_size * (2 if layer.cell == "lstm" else 1)
    wr.parts.append("static const lsl_layer model_layers[%d] = {\n%s\n};" % (len(layer_inits), ",\n".join(layer_inits)))
    wr.bytes += LAYER_STRUCT_BYTES * len(layer_inits)

    vocab, emb_init = 0, "{0, 0, 0, 0, NULL, NULL}"
    input_size = spec.layers[0].input_size
    if spec.embedding is not None:
        emb = _as_form(spec.embedding, form, "embedding")
        if isinstance(emb, LowRankTensor):
            # the integer form stores the embedding's product as int8 rows (integer_form_of), so it takes one
            raise UnsupportedForm("embedding: a low-rank embedding is not in the C export's float forms; nearest "
                                  "supported form: --form integer, or a dense embedding (fp32 or int8)")
        vocab = int(np.asarray(emb.q if isinstance(emb, QTensor) else emb).shape[0])
        if isinstance(emb, QTensor):
            wr.array("emb_table", emb.q, "int8_t")
            wr.array("emb_scale", emb.scale, "float")
            emb_init = f"{{{vocab}, {emb.q.shape[1]}, LSL_I8, 0, emb_table, emb_scale}}"
        else:
            emb = np.asarray(emb, np.float32)
            wr.array("emb_table", emb, "float")
            emb_init = f"{{{vocab}, {emb.shape[1]}, LSL_F32, 0, emb_table, NULL}}"
    head_modes = {"none": "LSL_HEAD_NONE", "last": "LSL_HEAD_LAST", "each": "LSL_HEAD_EACH"}
    top = spec.layers[-1].hidden_size
    if spec.head_mode != "none":
        head_init, s = wr.matrix("head", _as_form(spec.head_weight, form, "head"), "head")
        scratch = max(scratch, s)
        head_bias = wr.vector("head_b", spec.head_bias)
        hw = spec.head_weight
        output_size = int((hw.q if isinstance(hw, QTensor) else hw).shape[0])
    else:
        head_init, head_bias, output_size = "{0, 0, 0, 0, 0, 0, NULL, NULL, NULL}", "NULL", top
    wr.parts.append(
        f"static const lsl_model model = {{{len(spec.layers)}, {head_modes[spec.head_mode]}, LSL_POOL_LAST, 0, "
        f"model_layers,\n    {emb_init},\n    {head_init}, {head_bias}}};")
    wr.bytes += MODEL_STRUCT_BYTES
    step_in = input_size  # lsl_model_input_size: the embedding's dim for token models
    work = (ALIGN + _round_up(4 * step_in) + 2 * _round_up(4 * gates_max) + _round_up(4 * hidden_max)
            + _round_up(max(scratch, ALIGN)))
    return FloatModelC(source="\n\n".join(wr.parts), weight_bytes=wr.bytes, state_floats=state, work_bytes=work,
                       input_size=0 if vocab else input_size, vocab_size=vocab, output_size=output_size,
                       forms=wr.forms)
