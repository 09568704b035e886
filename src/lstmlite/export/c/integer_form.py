"""The integer-only form of the generated C (DESIGN decision 5b).

The recurrent stack is the runtime's ``lsl_int.c`` (bit-exact with
:mod:`lstmlite.reference.integer` / ``integer_gru``) over the model's constants:
row-major int8 weights, int32 biases and requantization multipliers, per layer. The
embedding (token models) and the head follow :mod:`lstmlite.reference.integer_head`:
int8 codes in the first layer's input scale, and an exact int32 head
(``lsl_int_dense``). No float arithmetic runs on the device; the two scales a host
needs to read the numbers are ``#define`` constants.

Example:
    >>> import numpy as np
    >>> from lstmlite.reference.integer import quantize_lstm_integer
    >>> rng = np.random.default_rng(0)
    >>> q = quantize_lstm_integer({"weight_ih_l0": rng.normal(0, .3, (16, 3)), "weight_hh_l0": rng.normal(0, .3, (16, 4))},
    ...                           {"input": {"absmax": 2.0}, "layers": [[{"cell": {"absmax": 1.0}}]]})
    >>> c = integer_model_c(q)
    >>> c.state_values, c.work_bytes      # h and c of 4 units; two int32 gate rows, x and h padded
    (8, 192)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...reference.integer import IntegerRecurrentParams
from ...reference.integer_head import IntegerHead
from .carray import c_array

__all__ = ["IntegerModelC", "integer_model_c", "pack_weights"]

#: Byte order of a row's four columns 4q..4q+3 inside its word of a packed quad: SXTB16
#: unpacks bytes 0 and 2 into one int16 pair and (rotated by 8) bytes 1 and 3 into the
#: other, so storing columns 4q, 4q+2, 4q+1, 4q+3 gives the pairs (4q, 4q+1) and
#: (4q+2, 4q+3), the order two int16 activations lie in memory.
QUAD_ORDER = (0, 2, 1, 3)


def _round_up(n: int, a: int = 64) -> int:
    return (n + a - 1) // a * a


def _up4(n: int) -> int:
    return (n + 3) // 4 * 4


def pack_weights(w_ih: np.ndarray, w_hh: np.ndarray) -> np.ndarray:
    """Both products' int8 weights in the runtime's ``LSL_INT_PACKED4`` layout (lsl.h).

    Rows are padded to a multiple of 4 and each product's columns to a multiple of 4
    with zeros; group g (rows 4g..4g+3) holds the column quads of ``w_ih`` then those of
    ``w_hh``, each quad 16 bytes: four per row, in :data:`QUAD_ORDER`.

    Args:
        w_ih: (R, I) int8; w_hh: (R, H) int8.

    Returns:
        (R4 * (I4 + H4),) int8.

    >>> w = pack_weights(np.arange(8).reshape(2, 4), np.zeros((2, 1)))
    >>> w[:8].tolist(), w.size      # row 0: columns 0, 2, 1, 3; then row 1
    ([0, 2, 1, 3, 4, 6, 5, 7], 32)
    """
    rows = w_ih.shape[0]
    r4 = _up4(rows)
    parts = []
    for w in (w_ih, w_hh):
        n4 = _up4(w.shape[1])
        padded = np.zeros((r4, n4), np.int8)
        padded[:rows, :w.shape[1]] = w
        # (groups, 4 rows, quads, 4 columns) -> (groups, quads, 4 rows, 4 columns in QUAD_ORDER)
        quads = padded.reshape(r4 // 4, 4, n4 // 4, 4)[:, :, :, list(QUAD_ORDER)].transpose(0, 2, 1, 3)
        parts.append(quads.reshape(r4 // 4, -1))
    return np.concatenate(parts, axis=1).reshape(-1)


@dataclass
class IntegerModelC:
    """What :func:`integer_model_c` generated."""

    source: str
    weight_bytes: int
    state_values: int   # int16 values of the state (lsl_int_state_values(model, 1))
    work_bytes: int     # lsl_int_step_bytes(model, 1)
    input_size: int     # int16 values per step (0 for token input)
    vocab_size: int
    output_size: int
    hidden_size: int    # top layer's H (the head's input)


_SIZES = {"int8_t": 1, "int16_t": 2, "int32_t": 4}


def _check_bound(d: Any, layer: int) -> None:
    """The packed layout's promise (lsl.h): no row's int32 sum can overflow, so the
    kernels add without a check (lsl_int_model_check verifies it again on the device)."""
    for name, w, b, xmax in (("weight_ih", d.w_ih, d.b_ih, 1 << (d.input_bits - 1)),
                             ("weight_hh", d.w_hh, d.b_hh, 1 << 15)):
        bound = np.abs(w.astype(np.int64)).sum(axis=1) * xmax + np.abs(b.astype(np.int64))
        if bound.size and bound.max() > 2**31 - 1:
            raise ValueError(f"layer {layer} {name}: row {int(bound.argmax())} could overflow the int32 accumulator; "
                             "quantize it with lstmlite.reference.integer (which keeps every row in bounds)")


def integer_model_c(params: IntegerRecurrentParams, head: IntegerHead | None = None,
                    embedding: np.ndarray | None = None) -> IntegerModelC:
    """The constants and ``lsl_int_model`` of an integer stack, its head and embedding.

    Args:
        params: from :func:`lstmlite.reference.integer.quantize_lstm_integer` (or GRU);
            one direction.
        head: from :func:`lstmlite.reference.integer_head.quantize_head_integer`, or None
            (the output is the top layer's h, int16 Q0.15).
        embedding: (vocab, dim) codes from ``quantize_embedding_integer``, or None.
    """
    if len(params.layers[0]) != 1:
        raise ValueError("layer 0: bidirectional layers cannot run step by step on a device; "
                         "nearest supported form: a unidirectional layer")
    parts: list[str] = []
    nbytes = 0

    def array(name: str, values: np.ndarray, ctype: str) -> str:
        nonlocal nbytes
        parts.append(c_array(name, values, ctype))
        nbytes += max(np.asarray(values).size, 1) * _SIZES[ctype]
        return name

    dirs = []
    for k, (d,) in enumerate(params.layers):
        _check_bound(d, k)
        w = pack_weights(d.w_ih, d.w_hh)
        parts.append(c_array(f"l{k}_w", w, "int8_t", aligned=4))
        nbytes += w.size + 3  # + the alignment padding its placement may need, a worst case
        names = {f: array(f"l{k}_{f}", getattr(d, f), "int32_t")
                 for f in ("b_ih", "b_hh", "m_ih", "shift_ih", "m_hh", "shift_hh")}
        dirs.append(f"    {{{d.input_size}, {d.hidden_size}, {d.cell_frac}, {d.input_bits}, l{k}_w, NULL, "
                    f"{names['b_ih']}, {names['b_hh']},\n     {names['m_ih']}, {names['shift_ih']}, "
                    f"{names['m_hh']}, {names['shift_hh']}}}")
    parts.append("static const lsl_int_direction model_dirs[%d] = {\n%s\n};" % (len(dirs), ",\n".join(dirs)))
    nbytes += 48 * len(dirs)
    cell = {"lstm": "LSL_LSTM", "gru": "LSL_GRU"}[params.cell]
    parts.append(f"static const lsl_int_model model = {{{cell}, {params.num_layers}, 1, LSL_INT_PACKED4, model_dirs}};")
    nbytes += 20
    top = params.layers[-1][0].hidden_size
    if head is not None:
        if head.in_features != top:
            raise ValueError(f"head reads {head.in_features} features, the top layer gives {top}")
        array("head_w", head.weight, "int8_t")
        array("head_b", head.bias, "int32_t")
    vocab = 0
    if embedding is not None:
        emb = np.asarray(embedding)
        if emb.ndim != 2 or emb.shape[1] != params.input_size:
            raise ValueError(f"embedding must be (vocab, {params.input_size}), got {emb.shape}")
        vocab = int(emb.shape[0])
        array("emb_table", emb, "int8_t" if params.input_bits == 8 else "int16_t")
    state = sum(d.hidden_size * (2 if params.cell == "lstm" else 1) for (d,) in params.layers)
    gh_max = max(d.hidden_size for (d,) in params.layers)
    # lsl_int.c's scratch_bytes: two int32 rows of 4 * max H, then x and h padded to quads
    vector = max(_up4(d.input_size) + _up4(d.hidden_size) for (d,) in params.layers)
    work = 2 * _round_up(4 * gh_max * 4) + _round_up(2 * vector)
    return IntegerModelC(source="\n\n".join(parts), weight_bytes=nbytes, state_values=state, work_bytes=work,
                         input_size=0 if vocab else params.input_size, vocab_size=vocab,
                         output_size=head.out_features if head is not None else top, hidden_size=top)
