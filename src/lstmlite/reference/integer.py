"""Integer-only LSTM (DESIGN decision 5b), in NumPy integers: the bit-exact specification.

This module is the arithmetic the C runtime and the generated microcontroller C must
reproduce bit for bit. Every value is an integer; every operation below is written
out explicitly, with its rounding and its saturation. Floats appear only in the
*offline* step :func:`quantize_lstm_integer` (choosing scales and multipliers) and
in the host-side helpers :func:`quantize_input` / :func:`dequantize_hidden`.

Number formats
--------------
``Qm.n`` is a signed fixed-point number with n fraction bits: integer v means v / 2**n.

==============  ======  ==========  ===============================================
value           type    format      range (saturation points)
==============  ======  ==========  ===============================================
input x (l=0)   int8    scale s_x   [-127, 127]  (host quantization saturates)
input x (l=0)   int16   scale s_x   [-32767, 32767]
input x (l>0)   int16   Q0.15       the h of the layer below
weights W       int8    s_w[row]    [-127, 127], per output row (or one per tensor)
biases b        int32   s_in*s_w    the accumulator scale of their matmul
accumulators    int32               proven not to overflow (see below)
gate pre-act.   int16   Q3.12       [-32768, 32767] = [-8, 8 - 2**-12]   (SAT A)
gate output     int16   Q0.15       sigmoid [0, 32767], tanh [-32767, 32767]
cell state c    int16   Q(15-F).F   F = ``cell_frac`` per layer/direction    (SAT C)
hidden h        int16   Q0.15       [-32767, 32767]
==============  ======  ==========  ===============================================

Rounding
--------
Every right shift that drops bits rounds **half away from zero**
(:func:`rounding_rshift`): ``sign(v) * ((|v| + 2**(s-1)) >> s)``. The one multiply
that rescales an accumulator uses a *single* rounding: ``(acc * m) >> shift`` rounded
as above, computed in int64 (|acc| < 2**31, 0 <= m < 2**31, so |acc*m| < 2**62).

One step of one direction (B sequences, H units, gate order i, f, g, o)
------------------------------------------------------------------------
::

    acc_x[r] = b_ih[r] + sum_j W_ih[r, j] * x[j]             int32 (no overflow, proven)
    acc_h[r] = b_hh[r] + sum_j W_hh[r, j] * h[j]             int32 (no overflow, proven)
    a[r]     = sat16(requant(acc_x[r], m_ih[r], shift_ih[r])
                     + requant(acc_h[r], m_hh[r], shift_hh[r]))   Q3.12          (SAT A)
    i, f, o  = sigmoid_q15(a_i), sigmoid_q15(a_f), sigmoid_q15(a_o)    Q0.15
    g        = tanh_q15(a_g)                                          Q0.15
    c'       = sat16(rrs(f * c, 15) + rrs(i * g, 30 - F))             Q.F   (SAT C)
    h'       = sat16(rrs(o * tanh_q15(c', frac=F), 15))               Q0.15 (SAT D)

where ``rrs`` is :func:`rounding_rshift` and ``requant(acc, m, s) =
sat32(rrs(acc * m, s))`` (SAT B). ``f * c`` and ``i * g`` are int16 x int16 products
(|.| <= 2**30, int32). SAT D can never trigger (o, tanh <= 32767 give h' <= 32766);
it is kept so the C code has one form.

Saturation points
-----------------
SAT A  gate pre-activation clipped to Q3.12's [-8, 8 - 2**-12]. Past |8| sigmoid and
       tanh are within 3.4e-4 and 2.3e-7 of their limits.
SAT B  requant output clipped to int32: only reached when one matmul's real value
       exceeds 2**19 (2**31 LSB of Q3.12), far past SAT A; kept so that such a
       value saturates instead of wrapping.
SAT C  cell state clipped to int16, i.e. |c| <= 2**(15-F). F is chosen from the
       calibrated max |c| so that the calibration data never saturates.
SAT D  h clipped to int16 (unreachable, see above).
SAT E  activation input |x| clipped to 8 - 2**-frac before the table (the table ends
       at 8); -32768 in Q3.12 (exactly -8) is therefore read as -8 + 2**-12.
SAT F  host input quantization clips to [-127, 127] (int8) or [-32767, 32767].
The accumulators never saturate: :func:`quantize_lstm_integer` checks, per row, that
``|b| + sum_j |W[r, j]| * max|x|`` fits int32 (max|x| = 128 for int8 input, 32768
for int16) and raises ``ValueError`` otherwise; the forward functions re-check the
actual accumulators and raise ``OverflowError`` for hand-made parameters that
overflow, rather than wrap.

Activations (:func:`sigmoid_q15`, :func:`tanh_q15`)
---------------------------------------------------
Table lookup with linear interpolation over |x| in [0, 8], 256 segments of 1/32
(:data:`SIGMOID_TABLE`, :data:`TANH_TABLE`: 257 int16 entries each, the function at
k/32 in Q0.15, rounded to nearest, tanh's last entry clipped to 32767). For input x
with ``frac`` fraction bits (5 <= frac <= 15), k = frac - 5 bits of |x| lie below one
segment::

    a    = min(|x|, (256 << k) - 1)                               (SAT E)
    idx  = a >> k ;  t = a & ((1 << k) - 1)
    y    = rrs(T[idx] * ((1 << k) - t) + T[idx + 1] * t, k)
    sigmoid: x >= 0 ? y : 32768 - y         tanh: x >= 0 ? y : -y

Both use the odd/even symmetry of the functions, so only |x| is tabulated. Measured
over every Q3.12 input, the error against the exact function is at most
:data:`SIGMOID_MAX_ERROR_LSB` / :data:`TANH_MAX_ERROR_LSB` (tests check it).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> H, I = 8, 3
    >>> params = {"weight_ih_l0": rng.normal(0, 0.3, (4 * H, I)),
    ...           "weight_hh_l0": rng.normal(0, 0.3, (4 * H, H)),
    ...           "bias_ih_l0": np.zeros(4 * H), "bias_hh_l0": np.zeros(4 * H)}
    >>> calibration = {"input": {"absmax": 3.0}, "layers": [[{"cell": {"absmax": 2.0}}]]}
    >>> q = quantize_lstm_integer(params, calibration)
    >>> x_q = quantize_input(q, rng.normal(size=(2, 5, I)))   # (B, T, I) int8
    >>> h = integer_lstm_forward(q, x_q)                      # (B, T, H) int16, Q0.15
    >>> h.dtype, h.shape
    (dtype('int16'), (2, 5, 8))
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ._common import _PARAM_RE, Layout, check_lengths, infer_layout, param_name

__all__ = [
    "GATE_FRAC", "STATE_FRAC", "SIGMOID_TABLE", "TANH_TABLE", "SIGMOID_MAX_ERROR_LSB", "TANH_MAX_ERROR_LSB",
    "saturate", "rounding_rshift", "quantize_multiplier", "requantize", "sigmoid_q15", "tanh_q15",
    "quantize_symmetric", "IntegerDirection", "IntegerRecurrentParams", "IntegerLSTMParams",
    "quantize_lstm_integer", "quantize_input", "dequantize_hidden", "integer_lstm_step",
    "integer_lstm_forward", "integer_lstm_sequence", "load_integer_params", "accumulator_bound",
]

#: Fraction bits of the gate pre-activations (Q3.12).
GATE_FRAC = 12
#: Fraction bits of h, of gate outputs and of int16 inputs of layers above the first (Q0.15).
STATE_FRAC = 15
#: Fraction bits of one table segment: the tables step by 2**-TABLE_STEP_BITS = 1/32.
TABLE_STEP_BITS = 5
TABLE_SEGMENTS = 256  # 256 segments of 1/32 cover |x| in [0, 8]

INT8_MAX, INT16_MIN, INT16_MAX = 127, -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MAX_SHIFT = 62  # largest right shift of a requantization (|acc * m| < 2**62)
FORMAT_VERSION = 1


def _build_table(fn) -> np.ndarray:
    points = np.arange(TABLE_SEGMENTS + 1, dtype=np.float64) / (1 << TABLE_STEP_BITS)
    exact = fn(points) * (1 << STATE_FRAC)
    # A table entry within 1e-6 of a rounding tie could round differently on another
    # platform's libm; there is none, and this keeps it so if the table ever changes.
    assert np.all(np.abs(exact - np.floor(exact) - 0.5) > 1e-6), "table entry at a rounding tie"
    return np.minimum(np.rint(exact), INT16_MAX).astype(np.int16)


#: sigmoid(k/32) * 32768 rounded to nearest, k = 0..256 (int16, Q0.15).
SIGMOID_TABLE: np.ndarray = _build_table(lambda v: 1.0 / (1.0 + np.exp(-v)))
#: tanh(k/32) * 32768 rounded to nearest and clipped to 32767, k = 0..256 (int16, Q0.15).
TANH_TABLE: np.ndarray = _build_table(np.tanh)
SIGMOID_TABLE.setflags(write=False)
TANH_TABLE.setflags(write=False)
#: Largest |sigmoid_q15(x) - 32768 * sigmoid(x / 4096)| over all int16 x (Q3.12 input), in LSB.
SIGMOID_MAX_ERROR_LSB = 1.5
#: Largest |tanh_q15(x) - 32768 * tanh(x / 4096)| over all int16 x (Q3.12 input), in LSB.
TANH_MAX_ERROR_LSB = 4.5


# ----- integer primitives ------------------------------------------------------------
def saturate(x: np.ndarray, bits: int) -> np.ndarray:
    """Clip integers to the signed ``bits``-bit range [-2**(bits-1), 2**(bits-1) - 1] (int64 out).

    >>> saturate(np.array([40000, -40000, 5]), 16).tolist()
    [32767, -32768, 5]
    """
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def rounding_rshift(x: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """``x / 2**shift`` rounded half away from zero, in int64; ``shift`` >= 0 (0: unchanged).

    Computed as ``sign(x) * ((|x| + 2**(shift-1)) >> shift)``; needs |x| < 2**62.
    In C: ``x >= 0 ? (x + half) >> s : -((-x + half) >> s)`` on int64.

    >>> rounding_rshift(np.array([5, -5, 6, -6, 7]), 1).tolist()   # 2.5, -2.5, 3, -3, 3.5
    [3, -3, 3, -3, 4]
    """
    x = np.asarray(x, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if np.any(s < 0) or np.any(s > 63):
        raise ValueError("shift must lie in 0..63")
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    magnitude = np.right_shift(np.abs(x) + half, s)
    return np.where(x < 0, -magnitude, magnitude)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """A real multiplier 0 <= M < 2**31 as an int32 ``m`` and a right shift: M ~= m / 2**shift.

    ``m`` lies in [2**30, 2**31) (31 significant bits) unless that would need a shift
    beyond 62, where ``m`` is ``round(M * 2**62)`` (possibly 0). ``M == 0`` gives (0, 0).
    Relative error of a normal result: at most 2**-31.

    >>> quantize_multiplier(0.5)
    (1073741824, 31)
    """
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"multiplier must be finite and non-negative, got {real}")
    if real == 0.0:
        return 0, 0
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2**exponent, mantissa in [0.5, 1)
    m = int(round(mantissa * (1 << 31)))
    shift = 31 - exponent
    if m == 1 << 31:  # mantissa rounded up to 1.0
        m //= 2
        shift -= 1
    if shift < 0:
        raise ValueError(f"multiplier {real} is too large (must be < 2**31)")
    if shift > MAX_SHIFT:
        m = int(round(real * 2.0**MAX_SHIFT))
        shift = MAX_SHIFT
    return m, shift


def requantize(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``sat32(rounding_rshift(acc * multiplier, shift))``: rescale an int32 accumulator.

    Args:
        acc: int32-range integers (..., R).
        multiplier: (R,) or scalar int32 in [0, 2**31).
        shift: (R,) or scalar, 0..62.

    Returns int64 values in int32 range (saturation point SAT B).
    """
    product = np.asarray(acc, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
    return saturate(rounding_rshift(product, shift), 32)


def _table_lookup(x: np.ndarray, frac: int, table: np.ndarray) -> np.ndarray:
    """Interpolated f(|x|) in Q0.15 for x with ``frac`` fraction bits (see module doc)."""
    if not TABLE_STEP_BITS <= frac <= STATE_FRAC:
        raise ValueError(f"activation input needs {TABLE_STEP_BITS}..{STATE_FRAC} fraction bits, got {frac}")
    k = frac - TABLE_STEP_BITS
    a = np.minimum(np.abs(np.asarray(x, dtype=np.int64)), (TABLE_SEGMENTS << k) - 1)  # SAT E
    idx = a >> k
    t = a & ((1 << k) - 1)
    t_ = table.astype(np.int64)
    return rounding_rshift(t_[idx] * ((1 << k) - t) + t_[idx + 1] * t, k)


def sigmoid_q15(x: np.ndarray, frac: int = GATE_FRAC) -> np.ndarray:
    """Fixed-point logistic function: x with ``frac`` fraction bits → Q0.15 in [0, 32767].

    >>> sigmoid_q15(np.array([0, 4096, -4096])).tolist()   # 0, 1, -1 in Q3.12
    [16384, 23955, 8813]
    """
    x = np.asarray(x, dtype=np.int64)
    y = _table_lookup(x, frac, SIGMOID_TABLE)
    return np.where(x >= 0, y, (1 << STATE_FRAC) - y)


def tanh_q15(x: np.ndarray, frac: int = GATE_FRAC) -> np.ndarray:
    """Fixed-point tanh: x with ``frac`` fraction bits → Q0.15 in [-32767, 32767].

    >>> tanh_q15(np.array([0, 4096, -4096])).tolist()
    [0, 24956, -24956]
    """
    x = np.asarray(x, dtype=np.int64)
    y = _table_lookup(x, frac, TANH_TABLE)
    return np.where(x >= 0, y, -y)


def quantize_symmetric(x: np.ndarray, scale: float | np.ndarray, bits: int) -> np.ndarray:
    """Host-side float → int: ``clip(round(x / scale), -(2**(bits-1) - 1), 2**(bits-1) - 1)``.

    Rounds half to even (``np.rint``); the range is symmetric, so -128 / -32768 never
    appear (SAT F). Returns int64.
    """
    qmax = (1 << (bits - 1)) - 1
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) / scale), -qmax, qmax).astype(np.int64)


# ----- parameters --------------------------------------------------------------------
_ARRAY_FIELDS = {
    "w_ih": np.int8, "w_hh": np.int8, "b_ih": np.int32, "b_hh": np.int32,
    "m_ih": np.int32, "shift_ih": np.int32, "m_hh": np.int32, "shift_hh": np.int32,
    "w_ih_scale": np.float32, "w_hh_scale": np.float32,
}


@dataclass
class IntegerDirection:
    """One layer and direction of an integer LSTM or GRU (G = 4 or 3 gates, H units).

    Attributes:
        w_ih: (G*H, I) int8 input weights, gate blocks stacked as in PyTorch.
        w_hh: (G*H, H) int8 recurrent weights.
        b_ih, b_hh: (G*H,) int32 biases in their accumulator's scale
            (``input_scale * w_ih_scale[r]`` and ``2**-15 * w_hh_scale[r]``).
        m_ih, shift_ih: (G*H,) int32 multiplier and right shift taking ``acc_x`` to Q3.12.
        m_hh, shift_hh: (G*H,) the same for ``acc_h``.
        cell_frac: F, fraction bits of the int16 cell state (LSTM; 0 for a GRU).
        input_bits: 8 or 16, the width of this direction's input.
        input_scale: real value of one input LSB (2**-15 above the first layer).
        w_ih_scale, w_hh_scale: (G*H,) float32 weight scales (for export and
            dequantization; the integer forward never reads them).
    """

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray
    m_ih: np.ndarray
    shift_ih: np.ndarray
    m_hh: np.ndarray
    shift_hh: np.ndarray
    cell_frac: int
    input_bits: int
    input_scale: float
    w_ih_scale: np.ndarray
    w_hh_scale: np.ndarray

    def __post_init__(self) -> None:
        for name, dtype in _ARRAY_FIELDS.items():
            value = np.asarray(getattr(self, name))
            if dtype is not np.float32 and value.size and (
                    value.min() < np.iinfo(dtype).min or value.max() > np.iinfo(dtype).max):
                raise ValueError(f"{name} has values outside {np.dtype(dtype).name}")
            setattr(self, name, value.astype(dtype))
        rows = self.w_ih.shape[0]
        if self.w_hh.shape[0] != rows or self.w_ih.ndim != 2 or self.w_hh.ndim != 2:
            raise ValueError(f"w_ih {self.w_ih.shape} and w_hh {self.w_hh.shape} must be (G*H, .) matrices")
        for name in _ARRAY_FIELDS:
            if name not in ("w_ih", "w_hh") and getattr(self, name).shape != (rows,):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected ({rows},)")
        if np.any(self.w_ih == -128) or np.any(self.w_hh == -128):
            raise ValueError("weights must lie in [-127, 127] (symmetric int8)")
        if np.any(self.m_ih < 0) or np.any(self.m_hh < 0):
            raise ValueError("multipliers must be non-negative")
        for s in (self.shift_ih, self.shift_hh):
            if s.size and (s.min() < 0 or s.max() > MAX_SHIFT):
                raise ValueError(f"shifts must lie in 0..{MAX_SHIFT}")
        if self.input_bits not in (8, 16):
            raise ValueError(f"input_bits must be 8 or 16, got {self.input_bits}")
        for name, w, b, bits in (("w_ih", self.w_ih, self.b_ih, int(self.input_bits)),
                                 ("w_hh", self.w_hh, self.b_hh, STATE_FRAC + 1)):
            bound = accumulator_bound(w, b, bits)
            if bound.size and bound.max() > INT32_MAX:
                row = int(bound.argmax())
                raise ValueError(
                    f"{name} row {row} could overflow the int32 accumulator: |b| + sum|W| * 2**{bits - 1} = "
                    f"{int(bound[row])} > {INT32_MAX} (docs/integer.md, accumulator bounds); use 8-bit input, "
                    f"fewer inputs per row, or smaller weights or biases")
        self.cell_frac = int(self.cell_frac)
        self.input_bits = int(self.input_bits)
        self.input_scale = float(self.input_scale)

    @property
    def hidden_size(self) -> int:
        return self.w_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.w_ih.shape[1]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name).tolist() for name in _ARRAY_FIELDS}
        out.update(cell_frac=self.cell_frac, input_bits=self.input_bits, input_scale=self.input_scale)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "IntegerDirection":
        expected = set(_ARRAY_FIELDS) | {"cell_frac", "input_bits", "input_scale"}
        if set(d) != expected:
            raise ValueError(f"integer direction keys {sorted(d)} differ from {sorted(expected)}")
        arrays = {name: np.asarray(d[name], dtype=np.float64 if dt is np.float32 else np.int64)
                  for name, dt in _ARRAY_FIELDS.items()}
        for name in ("w_ih", "w_hh"):  # an empty list loses its second dimension
            if arrays[name].ndim == 1 and arrays[name].size == 0:
                arrays[name] = arrays[name].reshape(0, 0)
        return cls(**arrays, cell_frac=int(d["cell_frac"]), input_bits=int(d["input_bits"]),
                   input_scale=float(d["input_scale"]))


@dataclass
class IntegerRecurrentParams:
    """Everything the integer runtime needs for a stacked, maybe bidirectional LSTM or GRU.

    ``layers[l][d]`` is an :class:`IntegerDirection` (d = 0 forward, 1 reverse). The
    first layer reads ``input_bits``-bit input of scale ``input_scale``; every layer
    emits int16 Q0.15 h (both directions concatenated, forward first). Serialises to
    JSON (:meth:`to_dict`) or to an ``.npz`` without pickle (:meth:`save`).
    """

    cell: str
    layers: list[list[IntegerDirection]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {self.cell!r}")
        if not self.layers or any(len(dirs) != len(self.layers[0]) or len(dirs) not in (1, 2)
                                  for dirs in self.layers):
            raise ValueError("layers must be a non-empty list of 1 or 2 directions each")
        gates = 4 if self.cell == "lstm" else 3
        for k, dirs in enumerate(self.layers):
            for d in dirs:
                if d.w_ih.shape[0] != gates * d.hidden_size:
                    raise ValueError(f"layer {k}: {d.w_ih.shape[0]} rows is not {gates} x H={d.hidden_size}")
                if self.cell == "lstm" and not TABLE_STEP_BITS <= d.cell_frac <= STATE_FRAC:
                    raise ValueError(f"layer {k}: cell_frac {d.cell_frac} outside {TABLE_STEP_BITS}..{STATE_FRAC}")
                if k > 0:
                    below = self.layers[k - 1]
                    if d.input_size != sum(b.hidden_size for b in below) or d.input_bits != 16:
                        raise ValueError(f"layer {k} must read the int16 h of layer {k - 1}")

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_directions(self) -> int:
        return len(self.layers[0])

    @property
    def input_bits(self) -> int:
        return self.layers[0][0].input_bits

    @property
    def input_scale(self) -> float:
        return self.layers[0][0].input_scale

    @property
    def input_size(self) -> int:
        return self.layers[0][0].input_size

    @property
    def hidden_size(self) -> int:
        return self.layers[-1][0].hidden_size

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``{"format", "version", "cell", "gate_frac", "state_frac", "layers"}``."""
        return {
            "format": "lstmlite-integer-rnn", "version": FORMAT_VERSION, "cell": self.cell,
            "gate_frac": GATE_FRAC, "state_frac": STATE_FRAC,
            "layers": [[d.to_dict() for d in dirs] for dirs in self.layers],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "IntegerRecurrentParams":
        if d.get("format") != "lstmlite-integer-rnn" or d.get("version") != FORMAT_VERSION:
            raise ValueError(f"not an integer-RNN parameter set of version {FORMAT_VERSION}: "
                             f"format={d.get('format')!r} version={d.get('version')!r}")
        if d.get("gate_frac") != GATE_FRAC or d.get("state_frac") != STATE_FRAC:
            raise ValueError("gate_frac/state_frac differ from this implementation's Q formats")
        return cls(cell=d["cell"], layers=[[IntegerDirection.from_dict(x) for x in dirs] for dirs in d["layers"]])

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat ``{"l{layer}_d{direction}.{field}": array}`` of every integer/float array."""
        return {f"l{k}_d{j}.{name}": getattr(d, name)
                for k, dirs in enumerate(self.layers) for j, d in enumerate(dirs) for name in _ARRAY_FIELDS}

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` (arrays + a JSON ``meta`` string); load with :func:`load_integer_params`."""
        meta = self.to_dict()
        for dirs in meta["layers"]:
            for d in dirs:
                for name in _ARRAY_FIELDS:
                    del d[name]
        payload = dict(self.arrays())
        payload["meta"] = np.array(json.dumps(meta))
        buffer = io.BytesIO()
        np.savez(buffer, **payload)
        Path(path).write_bytes(buffer.getvalue())


#: The parameter set of an integer LSTM (``cell == "lstm"``).
IntegerLSTMParams = IntegerRecurrentParams


def load_integer_params(path: str | Path) -> IntegerRecurrentParams:
    """Read what :meth:`IntegerRecurrentParams.save` wrote (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        for k, dirs in enumerate(meta["layers"]):
            for j, d in enumerate(dirs):
                for name in _ARRAY_FIELDS:
                    d[name] = data[f"l{k}_d{j}.{name}"]
    return IntegerRecurrentParams.from_dict(meta)


# ----- offline quantization (floats allowed here) ------------------------------------
def _row_scales(w: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 scales (per row or one per tensor) and the codes; zero rows get scale 1."""
    absmax = np.abs(w).max(axis=1) if per_channel else np.full(w.shape[0], np.abs(w).max() if w.size else 0.0)
    scale = np.where(absmax > 0, absmax / INT8_MAX, 1.0)
    codes = np.clip(np.rint(w / scale[:, None]), -INT8_MAX, INT8_MAX).astype(np.int64)
    return scale, codes


def _stat(calibration: Mapping[str, Any], key: str, percentile: float | None) -> float:
    stats = calibration[key] if key in calibration else None
    if stats is None:
        raise ValueError(f"calibration lacks {key!r}")
    if percentile is None:
        return float(stats["absmax"])
    table = stats.get("abs_percentiles", {})
    name = f"{percentile:g}"  # 99.9 -> "99.9", 99.0 -> "99"
    if name not in table:
        raise ValueError(f"calibration has no abs percentile {name} for {key!r}; has {sorted(table)}")
    return float(table[name])


def _cell_frac(absmax: float) -> int:
    """Fraction bits F with 2**(15-F) > absmax (so calibration data never hits SAT C)."""
    int_bits = 0 if absmax <= 0 else max(0, math.floor(math.log2(absmax)) + 1)
    if int_bits > STATE_FRAC - TABLE_STEP_BITS:
        raise ValueError(f"calibrated |c| = {absmax} needs {int_bits} integer bits; at most "
                         f"{STATE_FRAC - TABLE_STEP_BITS} are supported")
    return STATE_FRAC - int_bits


def accumulator_bound(w: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """Worst-case |accumulator| of each row of an int8 matmul against `bits`-bit inputs.

    Args:
        w: (R, K) integer weights.
        b: (R,) integer biases.
        bits: input width: 8 (int8 input) or 16 (int16 input, or h in Q0.15).

    Returns:
        (R,) int64: ``|b[r]| + sum_j |w[r, j]| * 2**(bits - 1)``, the largest magnitude
        ``b[r] + sum_j w[r, j] x[j]`` reaches over every x in ``[-2**(bits-1), 2**(bits-1))``
        (an upper bound: the input range is not symmetric). A parameter set is accepted only when
        every row's bound fits int32; the C engine applies the same rule
        (``lsl_int_model_check`` returns LSL_ERR_OVERFLOW).

    Example:
        >>> int(accumulator_bound(np.full((1, 4), 127), np.array([5]), 8)[0])   # 4 * 127 * 128 + 5
        65029
    """
    w64 = np.abs(np.asarray(w, dtype=np.int64))
    return w64.sum(axis=1) * (1 << (int(bits) - 1)) + np.abs(np.asarray(b, dtype=np.int64))


def _quantize_direction(
    w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray,
    input_bits: int, input_scale: float, cell_frac: int, per_channel: bool, where: str,
) -> IntegerDirection:
    s_ih, q_ih = _row_scales(w_ih, per_channel)
    s_hh, q_hh = _row_scales(w_hh, per_channel)
    acc_ih = input_scale * s_ih  # real value of one LSB of acc_x, per row
    acc_hh = 2.0**-STATE_FRAC * s_hh
    qb_ih = np.rint(b_ih / acc_ih).astype(np.int64)
    qb_hh = np.rint(b_hh / acc_hh).astype(np.int64)
    max_x = 1 << (input_bits - 1)  # |x| <= 2**(bits-1) covers every int of that width
    for name, q, qb, xmax in (("weight_ih", q_ih, qb_ih, max_x), ("weight_hh", q_hh, qb_hh, 1 << STATE_FRAC)):
        bound = np.abs(q).sum(axis=1) * xmax + np.abs(qb)
        if bound.size and bound.max() > INT32_MAX:
            row = int(bound.argmax())
            raise ValueError(
                f"{where} {name}: row {row} could overflow the int32 accumulator (worst case {int(bound[row])}); "
                f"use 8-bit input, fewer inputs per row, or smaller biases")
    gate_lsb = 2.0**-GATE_FRAC
    mult_ih = [quantize_multiplier(float(a / gate_lsb)) for a in acc_ih]
    mult_hh = [quantize_multiplier(float(a / gate_lsb)) for a in acc_hh]
    return IntegerDirection(
        w_ih=q_ih, w_hh=q_hh, b_ih=qb_ih, b_hh=qb_hh,
        m_ih=np.array([m for m, _ in mult_ih], dtype=np.int64).reshape(-1),
        shift_ih=np.array([s for _, s in mult_ih], dtype=np.int64).reshape(-1),
        m_hh=np.array([m for m, _ in mult_hh], dtype=np.int64).reshape(-1),
        shift_hh=np.array([s for _, s in mult_hh], dtype=np.int64).reshape(-1),
        cell_frac=cell_frac, input_bits=input_bits, input_scale=input_scale,
        w_ih_scale=s_ih, w_hh_scale=s_hh,
    )


def _layer_layouts(params: Mapping[str, np.ndarray], gates: int) -> list[Layout]:
    """One :class:`Layout` per layer: a structurally pruned stack's layers differ in size
    (DESIGN decision 4), which ``infer_layout`` of the whole stack refuses, while the
    integer form holds any size per layer. Each layer's parameters are checked by
    ``infer_layout`` alone, and layer k must read layer k - 1's output (both directions)."""
    layer_of = {}
    for name in params:
        m = _PARAM_RE.match(name)
        if m is None:
            raise ValueError(f"unknown recurrent parameter name {name!r}")
        layer_of[name] = int(m.group(2))
    layouts = []
    for k in range(1 + max(layer_of.values(), default=-1)):
        # layer k's parameters renamed to layer 0 (every name ends in _l{k} or _l{k}_reverse)
        one = {name.replace(f"_l{k}", "_l0", 1): v for name, v in params.items() if layer_of[name] == k}
        if not one:
            raise ValueError(f"params lack layer {k} ('weight_ih_l{k}')")
        try:
            lay = infer_layout(one, gates, 1, None, allow_projection=False)
        except ValueError as err:
            raise ValueError(str(err).replace("_l0", f"_l{k}")) from None
        if k > 0:
            below = layouts[-1]
            if lay.num_directions != below.num_directions:
                raise ValueError(f"layer {k} has {lay.num_directions} direction(s), layer {k - 1} has "
                                 f"{below.num_directions}")
            if lay.input_size != below.num_directions * below.hidden_size:
                raise ValueError(f"'weight_ih_l{k}' reads {lay.input_size} features, layer {k - 1} gives "
                                 f"{below.num_directions * below.hidden_size}")
        layouts.append(lay)
    if not layouts:
        raise ValueError("params lack 'weight_ih_l0'")
    return layouts


def quantize_recurrent_integer(
    params_float: Mapping[str, np.ndarray],
    calibration: Mapping[str, Any],
    cell: str,
    input_bits: int = 8,
    per_channel: bool = True,
    input_percentile: float | None = None,
) -> IntegerRecurrentParams:
    """Shared body of :func:`quantize_lstm_integer` and ``quantize_gru_integer``."""
    if cell not in ("lstm", "gru"):
        raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
    if input_bits not in (8, 16):
        raise ValueError(f"input_bits must be 8 or 16, got {input_bits}")
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params_float.items()}
    gates = 4 if cell == "lstm" else 3
    sizes = _layer_layouts(params, gates)  # per layer: a pruned stack's hidden sizes differ
    layout = sizes[0]
    num_layers = len(sizes)
    x_absmax = _stat(calibration, "input", input_percentile)
    if not x_absmax > 0:
        raise ValueError("calibrated input range must be positive")
    layers_cal = calibration.get("layers")
    if cell == "lstm" and (layers_cal is None or len(layers_cal) != num_layers
                           or any(len(dirs) != layout.num_directions for dirs in layers_cal)):
        raise ValueError(f"calibration needs 'layers' with {num_layers} x {layout.num_directions} "
                         "entries holding the cell-state range")
    layers: list[list[IntegerDirection]] = []
    for layer in range(num_layers):
        bits = input_bits if layer == 0 else 16
        scale = x_absmax / ((1 << (input_bits - 1)) - 1) if layer == 0 else 2.0**-STATE_FRAC
        dirs = []
        for d in range(layout.num_directions):
            gh = gates * sizes[layer].hidden_size
            b_ih = params.get(param_name("bias_ih", layer, d), np.zeros(gh))
            b_hh = params.get(param_name("bias_hh", layer, d), np.zeros(gh))
            cf = _cell_frac(_stat(layers_cal[layer][d], "cell", None)) if cell == "lstm" else 0
            dirs.append(_quantize_direction(
                params[param_name("weight_ih", layer, d)], params[param_name("weight_hh", layer, d)],
                b_ih, b_hh, bits, scale, cf, per_channel, f"layer {layer} direction {d}"))
        layers.append(dirs)
    return IntegerRecurrentParams(cell=cell, layers=layers)


def quantize_lstm_integer(
    params_float: Mapping[str, np.ndarray],
    calibration: Mapping[str, Any],
    input_bits: int = 8,
    per_channel: bool = True,
    input_percentile: float | None = None,
) -> IntegerRecurrentParams:
    """Float LSTM parameters + calibrated ranges → the integer LSTM.

    Args:
        params_float: PyTorch-named float arrays (``weight_ih_l0``, ``weight_hh_l0``,
            optional biases, ``_reverse`` twins, more layers); no projection.
        calibration: ``{"input": {"absmax": ...}, "layers": [[{"cell": {"absmax":
            ...}}, ...], ...]}`` (one entry per layer and direction), e.g. the dict
            ``lstmlite.compress.quantize.calibrate`` returns.
        input_bits: width of the first layer's input, 8 or 16.
        per_channel: one weight scale per output row (else one per tensor).
        input_percentile: take the input range from ``abs_percentiles[str(p)]``
            (clipping outliers, SAT F) instead of ``absmax``.

    Weights round half to even to symmetric int8 codes; biases to int32 in the
    accumulator scale; the cell format F is the smallest that holds the calibrated
    max |c|. Raises ``ValueError`` if any accumulator could overflow int32.
    """
    return quantize_recurrent_integer(params_float, calibration, "lstm", input_bits, per_channel, input_percentile)


def quantize_input(params: IntegerRecurrentParams, x: np.ndarray) -> np.ndarray:
    """Host-side quantization of a float input (B, T, I) for the first layer (SAT F)."""
    return quantize_symmetric(x, params.input_scale, params.input_bits)


def dequantize_hidden(h_q: np.ndarray) -> np.ndarray:
    """Q0.15 int16 → float64: ``h_q / 32768``."""
    return np.asarray(h_q, dtype=np.float64) / (1 << STATE_FRAC)


# ----- forward -----------------------------------------------------------------------
def _matmul_acc(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``b + x @ w.T`` exactly in int64, then checked to fit int32 (never wraps)."""
    acc = x.astype(np.int64) @ w.astype(np.int64).T + b.astype(np.int64)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise OverflowError("int32 accumulator overflow: these parameters break the no-overflow bound")
    return acc


def _check_input(x_q: np.ndarray, bits: int, name: str) -> np.ndarray:
    x_q = np.asarray(x_q)
    if not np.issubdtype(x_q.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got {x_q.dtype}")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if x_q.size and (x_q.min() < lo or x_q.max() > hi):
        raise ValueError(f"{name} has values outside int{bits}")
    return x_q.astype(np.int64)


def _gate_preactivation(d: IntegerDirection, x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
    """SAT A: ``sat16(requant(acc_x) + requant(acc_h))`` in Q3.12, (B, G*H)."""
    gx = requantize(_matmul_acc(x_t, d.w_ih, d.b_ih), d.m_ih, d.shift_ih)
    gh = requantize(_matmul_acc(h, d.w_hh, d.b_hh), d.m_hh, d.shift_hh)
    return saturate(gx + gh, 16)


def integer_lstm_step(
    d: IntegerDirection, x_t: np.ndarray, h: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step of one direction, exactly as in the module docstring.

    Args:
        d: the direction's parameters.
        x_t: (B, I) integers of ``d.input_bits`` width.
        h: (B, H) int16 Q0.15; c: (B, H) int16 in Q(15-F).F.

    Returns (h', c') as int16 arrays (B, H).
    """
    x_t = _check_input(x_t, d.input_bits, "x_t")
    h = _check_input(h, 16, "h")
    c = _check_input(c, 16, "c")
    hidden = d.hidden_size
    a = _gate_preactivation(d, x_t, h)  # (B, 4H) Q3.12
    i = sigmoid_q15(a[:, :hidden])
    f = sigmoid_q15(a[:, hidden:2 * hidden])
    g = tanh_q15(a[:, 2 * hidden:3 * hidden])
    o = sigmoid_q15(a[:, 3 * hidden:])
    c_new = saturate(rounding_rshift(f * c, STATE_FRAC)
                     + rounding_rshift(i * g, 2 * STATE_FRAC - d.cell_frac), 16)  # SAT C
    h_new = saturate(rounding_rshift(o * tanh_q15(c_new, d.cell_frac), STATE_FRAC), 16)  # SAT D
    return h_new.astype(np.int16), c_new.astype(np.int16)


def _run_stack(params: IntegerRecurrentParams, x_q: np.ndarray, lengths: np.ndarray | None,
               state: Sequence[Any] | None, step) -> tuple[np.ndarray, list[Any]]:
    """Layers × directions × time, masking padded steps exactly as the float reference does."""
    x_q = np.asarray(x_q)
    if x_q.ndim != 3 or x_q.shape[2] != params.input_size:
        raise ValueError(f"x_q must be (B, T, {params.input_size}), got shape {x_q.shape}")
    data = _check_input(x_q, params.input_bits, "x_q")
    batch, steps, _ = data.shape
    lens = check_lengths(lengths, batch, steps)
    lstm = params.cell == "lstm"
    if state is not None and len(state) != params.num_layers:
        raise ValueError(f"state must hold one entry per layer ({params.num_layers})")
    final = []
    for k, dirs in enumerate(params.layers):
        outputs = []
        layer_final = []
        for j, d in enumerate(dirs):
            shape = (batch, d.hidden_size)
            if state is None:
                s = (np.zeros(shape, np.int64), np.zeros(shape, np.int64)) if lstm else (np.zeros(shape, np.int64),)
            else:
                s = tuple(np.asarray(t)[j].astype(np.int64) for t in (state[k] if lstm else (state[k],)))
                if any(t.shape != shape for t in s):
                    raise ValueError(f"layer {k} state must be (D, B, {d.hidden_size})")
            out = np.zeros((batch, steps, d.hidden_size), dtype=np.int64)
            order = range(steps) if j == 0 else range(steps - 1, -1, -1)
            for t in order:
                active = (t < lens)[:, None]
                new = step(d, data[:, t], *s)
                new = new if isinstance(new, tuple) else (new,)
                s = tuple(np.where(active, n.astype(np.int64), p) for n, p in zip(new, s))
                out[:, t] = np.where(active, s[0], 0)
            outputs.append(out)
            layer_final.append(s)
        data = np.concatenate(outputs, axis=2)
        if lstm:
            final.append((np.stack([s[0] for s in layer_final]).astype(np.int16),
                          np.stack([s[1] for s in layer_final]).astype(np.int16)))
        else:
            final.append(np.stack([s[0] for s in layer_final]).astype(np.int16))
    return data.astype(np.int16), final


def integer_lstm_sequence(
    params: IntegerRecurrentParams, x_q: np.ndarray, lengths: np.ndarray | None = None,
    state: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Run the integer LSTM over whole sequences, returning the output and final state.

    Args:
        params: from :func:`quantize_lstm_integer`.
        x_q: (B, T, I) integers of ``params.input_bits`` width (:func:`quantize_input`).
        lengths: (B,) valid steps (1..T); padded steps output 0 and carry the state,
            and the reverse direction starts at each sequence's last valid step.
        state: per layer ``(h (D, B, H) int16 Q0.15, c (D, B, H) int16 Q.F)``; None = zeros.

    Returns:
        output (B, T, D*H) int16 Q0.15 of the last layer, and the final per-layer state.
    """
    if params.cell != "lstm":
        raise ValueError(f"integer_lstm_sequence needs LSTM parameters, got cell={params.cell!r}")
    return _run_stack(params, x_q, lengths, state, integer_lstm_step)


def integer_lstm_forward(
    params: IntegerRecurrentParams, x_q: np.ndarray, lengths: np.ndarray | None = None
) -> np.ndarray:
    """The h sequence (B, T, D*H) int16 Q0.15 of the integer LSTM from zero state."""
    return integer_lstm_sequence(params, x_q, lengths)[0]
