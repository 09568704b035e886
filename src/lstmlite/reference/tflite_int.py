"""TFLite-compatible integer LSTM, in NumPy integers: what TensorFlow Lite Micro computes.

A user who already has a TFLite-quantized LSTM (the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM``
op with int8 activations and weights, int16 cell state; or its 16x8 variant with int16
activations) gets the same integers here, not merely close ones. This is a second integer
form next to :mod:`lstmlite.reference.integer` (our own, DESIGN decision 5b): same spirit
(int8 weights, int16 cell, int32 accumulators, fixed-point sigmoid/tanh), but TFLite's
quantization parameters, roundings and activation tables, which differ from ours. The C
runtime (``runtime/lsl_tflite.c``) repeats it bit for bit.

Two kernels (``TFLiteLSTMParams.kernel``): ``"micro"``, the default, is TensorFlow Lite
Micro's arithmetic (and CMSIS-NN's), documented below; ``"lite"`` is desktop TensorFlow
Lite's (the LiteRT interpreter), which differs only in the activations (gemmlowp's
fixed-point logistic/tanh, :mod:`._gemmlowp16`) and in ``f * c`` / ``i * g`` (rounded
shifts by 15 and 30 + p). See docs/tflite-compat.md.

Checked against TFLite Micro's own outputs (the CMSIS-NN LSTM test vectors, tests in
``tests/reference/test_tflite_int.py``) and against the LiteRT interpreter on converted
Keras models (``tests/importers/test_tflite_import.py``).

Notation
--------
``mbqm(x, m, s)`` is TFLite's ``MultiplyByQuantizedMultiplier`` (m: int32 in [0, 2**31),
s: *left* shift, negative = right, TFLite's sign convention). Its default, double-rounding
form::

    x' = x * 2**max(s, 0)                                     (int32)
    y  = floor((x' * m + 2**30) / 2**31)                      SaturatingRoundingDoublingHighMul:
                                                              ties toward +inf; INT32_MIN*INT32_MIN
                                                              saturates (m >= 0 never hits it)
    mbqm = rdbpot(y, max(-s, 0))                              RoundingDivideByPOT: ties away from 0

``mbqm64`` is its 64-bit form for the int64 accumulators of the 16x8 kernels: a 16-bit
multiplier ``mr = (m + 2**15) >> 16`` (0x7FFF when m >= 0x7FFF0000), then one rounding,
``floor((x * mr + 2**(14 - s)) / 2**(15 - s))`` (ties toward +inf).

One step (gate order i, f, g, o; B rows, H units; z_x, z_h = input / output zero points)
---------------------------------------------------------------------------------------
::

    fc_x[r] = sat16(mbqm(b[r] + sum_j W_x[r, j] * (x[j] - z_x), M_x, S_x))      int32 / int64 acc
    fc_h[r] = sat16(mbqm(        sum_j W_h[r, j] * (h[j] - z_h), M_h, S_h))     (no recurrent bias)
    a       = sat16(fc_x + fc_h)                                                 Q3.12 pre-activation
    i, f, o = sigmoid_lut(a_i), sigmoid_lut(a_f), sigmoid_lut(a_o)              Q0.15
    g       = tanh_lut(a_g, left_shift=0)                                        Q0.15
    c'      = sat16(sat16(mbqm(f * c, M_fc, S_fc)) + sat16(mbqm(i * g, M_ic, S_ic)))
    c'      = clip(c', -clip_q, clip_q)            only when the model's cell_clip > 0
    h'      = clamp(mbqm(o * tanh_lut(c', cell_scale_power + 12), M_o, S_o) + z_h,
                    activation range)              int8 [-128, 127] or int16

The two matmuls requantize separately and are added after (TFLite does two
FULLY_CONNECTED calls into int16 and an elementwise saturating add); the recurrent
matmul has no bias (the op's one bias per gate goes to the input matmul). The products
``f * c`` and ``i * g`` are int16 x int16, exact in int32.

Activations (TFLite's ``reference_integer_ops::Logistic`` / ``Tanh`` on int16)
------------------------------------------------------------------------------
Both read one 256-entry table, :data:`SIGMOID_TABLE_U16` = sigmoid(k / 24) in unsigned
Q0.16 (TFLite's ``sigmoid_table_uint16``; its entries are tuned for interpolation, not
plain roundings of sigmoid, so it is data here, not a formula), and interpolate linearly
over 9 (sigmoid) or 8 (tanh) fraction bits::

    sigmoid (x in Q3.12):  v = 3 x;  a = |v|;  u = a >> 9
        r = 0x7FFF << 10                                      if u >= 255   (saturation)
            (T[u] << 9) + (a & 511) * (T[u+1] - T[u])         otherwise
        out = (r + 512) >> 10                  if v >= 0
              (2**25 - r + 511) >> 10          if v < 0
    tanh (left shift L):   v = (3 * 2**L) x                   if L >= 0
                               (3 x + 2**(-L-1)) >> -L        if L < 0   (floor shift)
        a = |v|;  u = a >> 8
        r = 0xFFFF << 8                                       if u >= 255
            (T[u] << 8) + (a & 255) * (T[u+1] - T[u])         otherwise
        out = (r - 2**23 + 128) >> 8           if v >= 0
              (2**23 - r + 127) >> 8           if v < 0      (all shifts floor)

The factor 3 maps 1/24-steps of the table onto the input's binary fraction bits
(tanh(x) = 2 sigmoid(2x) - 1 gives tanh its doubled slope).

Saturation points
-----------------
SAT 1  each matmul's requantized result clamps to int16 before the add; the sum clamps again.
SAT 2  ``f * c`` and ``i * g`` requantized results clamp to int16; their sum saturates to
       int16; then the optional cell clip (TFLite's ``cell_clip`` option, quantized).
SAT 3  the hidden output clamps to the activation range (int8 or int16) after adding z_h.
SAT 4  activation inputs past the table's end (|v| >> 9 or 8 >= 255) give the limit value.
The int32 accumulators of the int8 kernel wrap in TFLite on overflow; here an accumulator
outside int32 raises ``OverflowError`` instead (no real model comes near: |acc| <= 255 *
127 * K).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> H, I = 3, 2
    >>> gate = lambda: TFLiteGate(rng.integers(-127, 128, (H, I)), rng.integers(-127, 128, (H, H)),
    ...                           np.zeros(H), 1 << 30, -3, 1 << 30, -3)
    >>> p = TFLiteLSTMParams(gate(), gate(), gate(), gate(), input_zero_point=-128,
    ...                      output_zero_point=0, cell_scale_power=-12,
    ...                      forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
    ...                      input_cell_multiplier=1 << 30, input_cell_shift=-17,
    ...                      output_multiplier=1 << 30, output_shift=-22)
    >>> out, state = tflite_lstm_sequence(p, rng.integers(-128, 128, (1, 4, I)))
    >>> out.dtype, out.shape, state.cell.shape
    (dtype('int8'), (1, 4, 3), (1, 3))
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from . import _gemmlowp16 as _g16

__all__ = [
    "SIGMOID_TABLE_U16", "GATES", "TFLiteGate", "TFLiteLSTMParams", "TFLiteLSTMState",
    "multiply_by_quantized_multiplier", "multiply_by_quantized_multiplier_64", "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul", "sigmoid_lut", "tanh_lut",
    "initial_state", "tflite_lstm_step", "tflite_lstm_sequence", "accumulator_bounds",
]

#: Gate names in TFLite's order (the op's inputs 1-4 / 5-8 / 12-15): input, forget, cell, output.
GATES = ("input", "forget", "cell", "output")

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

#: TFLite's ``sigmoid_table_uint16``: sigmoid(k/24), k = 0..255, unsigned Q0.16, as TensorFlow
#: Lite ships it (tensorflow/lite/kernels/internal/common.h, Apache-2.0). These are the
#: constants that define TFLite's int16 sigmoid/tanh; they are not the plain roundings of
#: 65536 * sigmoid(k/24) (44 of them differ by one), so bit-exactness needs them as given.
SIGMOID_TABLE_U16: np.ndarray = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
], dtype=np.uint16)
SIGMOID_TABLE_U16.setflags(write=False)


# ----- TFLite's fixed-point primitives ------------------------------------------------
def saturating_rounding_doubling_high_mul(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp's SRDHM: ``floor((a * b + 2**30) / 2**31)`` for int32 a, b (int64 out).

    Ties round toward +inf; ``a == b == INT32_MIN`` saturates to INT32_MAX.

    >>> saturating_rounding_doubling_high_mul(np.array([3, -3]), 1 << 30).tolist()   # 1.5, -1.5
    [2, -1]
    """
    a = np.asarray(a, dtype=np.int64)
    out = (a * np.int64(b) + (1 << 30)) >> 31
    if b == INT32_MIN:
        out = np.where(a == INT32_MIN, INT32_MAX, out)
    return out


def rounding_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: ``x / 2**exponent`` rounded half away from zero.

    >>> rounding_divide_by_pot(np.array([5, -5, 6, -7]), 1).tolist()   # 2.5 -2.5 3 -3.5
    [3, -3, 3, -4]
    """
    x = np.asarray(x, dtype=np.int64)
    if exponent == 0:
        return x
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: int, shift: int,
                                     rounding: Literal["double", "single"] = "double") -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier`` on int32 values (int64 out, int32 range).

    Args:
        x: int32-range integers, any shape.
        multiplier: int32 in [0, 2**31): the real factor's mantissa in Q0.31.
        shift: left shift (negative: right), TFLite's convention; real = m * 2**(shift - 31).
        rounding: ``"double"`` (TFLite's default build: SRDHM, then RoundingDivideByPOT)
            or ``"single"`` (builds with ``TFLITE_SINGLE_ROUNDING``: one round-half-up).

    >>> multiply_by_quantized_multiplier(np.array([100, -100]), 1 << 30, -2).tolist()  # x / 8
    [13, -13]
    """
    x = np.asarray(x, dtype=np.int64)
    if rounding == "single":
        total = 31 - shift
        return (x * np.int64(multiplier) + (np.int64(1) << (total - 1))) >> total
    left, right = max(shift, 0), max(-shift, 0)
    # x << left wraps in int32 in TFLite; our callers keep |x << left| < 2**31 (checked).
    y = saturating_rounding_doubling_high_mul(x << left, multiplier)
    return rounding_divide_by_pot(y, right)


def multiply_by_quantized_multiplier_64(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """TFLite's 64-bit ``MultiplyByQuantizedMultiplier`` (16x8 kernels' int64 accumulators).

    Needs |x| < 2**47 and shift <= 7 (TFLite's own limit: the right shift is 15 - shift);
    the multiplier is first reduced to 16 bits, then one rounding (ties toward +inf).

    >>> multiply_by_quantized_multiplier_64(np.array([100, -100]), 1 << 30, -2).tolist()
    [13, -12]
    """
    x = np.asarray(x, dtype=np.int64)
    reduced = (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF
    total = 15 - shift
    return (x * np.int64(reduced) + (np.int64(1) << (total - 1))) >> total


def _sat(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(x, lo, hi)


def sigmoid_lut(x: np.ndarray) -> np.ndarray:
    """TFLite's int16 logistic: x in Q3.12 → sigmoid(x) in Q0.15 (int64 out, 0..32767).

    >>> sigmoid_lut(np.array([0, 4096, -4096, 32767])).tolist()
    [16384, 23956, 8812, 32757]
    """
    v = np.asarray(x, dtype=np.int64) * 3
    a = np.abs(v)
    u = a >> 9
    t = SIGMOID_TABLE_U16.astype(np.int64)
    ui = np.minimum(u, 254)  # index only; u >= 255 takes the saturated branch
    r = np.where(u >= 255, 0x7FFF << 10, (t[ui] << 9) + (a & 0x1FF) * (t[ui + 1] - t[ui]))
    return np.where(v >= 0, (r + (1 << 9)) >> 10, ((1 << 25) - r + (1 << 9) - 1) >> 10)


def tanh_lut(x: np.ndarray, left_shift: int = 0) -> np.ndarray:
    """TFLite's int16 tanh: x with 15 - 3 - ``left_shift`` fraction bits → tanh(x) in Q0.15.

    ``left_shift`` 0 reads Q3.12 (the gates); the cell state (2**p LSB) uses p + 12.

    >>> tanh_lut(np.array([0, 4096, -4096])).tolist()
    [0, 24956, -24956]
    """
    x = np.asarray(x, dtype=np.int64)
    if left_shift >= 0:
        v = x * (3 << left_shift)
    else:
        v = (x * 3 + (1 << (-left_shift - 1))) >> -left_shift
    a = np.abs(v)
    u = a >> 8
    t = SIGMOID_TABLE_U16.astype(np.int64)
    ui = np.minimum(u, 254)
    r = np.where(u >= 255, 0xFFFF << 8, (t[ui] << 8) + (a & 0xFF) * (t[ui + 1] - t[ui]))
    return np.where(v >= 0, (r - (1 << 23) + (1 << 7)) >> 8, ((1 << 23) - r + (1 << 7) - 1) >> 8)


# ----- parameters ---------------------------------------------------------------------
@dataclass(frozen=True)
class TFLiteGate:
    """One gate of a TFLite integer LSTM (H units, I inputs).

    Attributes:
        input_weights: (H, I) int8, zero point 0 (TFLite's symmetric weights).
        hidden_weights: (H, H) int8 recurrent weights.
        bias: (H,) int32 (int8 kernel) or int64 (16x8), scale input_scale * weight_scale.
        input_multiplier, input_shift: mbqm factor from the input matmul to Q3.12
            (= input_scale * input_weight_scale / 2**-12).
        hidden_multiplier, hidden_shift: the same for the recurrent matmul
            (= output_scale * hidden_weight_scale / 2**-12).
    """

    input_weights: np.ndarray
    hidden_weights: np.ndarray
    bias: np.ndarray
    input_multiplier: int
    input_shift: int
    hidden_multiplier: int
    hidden_shift: int

    def __post_init__(self) -> None:
        w_x = np.asarray(self.input_weights)
        w_h = np.asarray(self.hidden_weights)
        if w_x.ndim != 2 or w_h.ndim != 2 or w_h.shape != (w_x.shape[0],) * 2:
            raise ValueError(f"weights must be (H, I) and (H, H), got {w_x.shape} and {w_h.shape}")
        for name, w in (("input_weights", w_x), ("hidden_weights", w_h)):
            if w.size and (w.min() < -128 or w.max() > 127):
                raise ValueError(f"{name} has values outside int8")
        b = np.asarray(self.bias).reshape(-1) if self.bias is not None else np.zeros(w_x.shape[0])
        if b.shape != (w_x.shape[0],):
            raise ValueError(f"bias must be ({w_x.shape[0]},), got {b.shape}")
        object.__setattr__(self, "input_weights", w_x.astype(np.int8))
        object.__setattr__(self, "hidden_weights", w_h.astype(np.int8))
        object.__setattr__(self, "bias", b.astype(np.int64))
        for m, s in ((self.input_multiplier, self.input_shift), (self.hidden_multiplier, self.hidden_shift)):
            _check_multiplier(int(m), int(s))


def _check_multiplier(m: int, s: int) -> None:
    if not 0 <= m <= INT32_MAX:
        raise ValueError(f"multiplier {m} must lie in [0, 2**31)")
    if not -31 <= s <= 30:
        raise ValueError(f"shift {s} must lie in [-31, 30]")


@dataclass(frozen=True)
class TFLiteLSTMParams:
    """A TFLite-quantized LSTM layer (``UNIDIRECTIONAL_SEQUENCE_LSTM``, no peephole,
    projection, layer norm or CIFG).

    Attributes:
        input_gate, forget_gate, cell_gate, output_gate: :class:`TFLiteGate` each.
        input_zero_point: z_x of the input tensor (e.g. -128). TFLite *adds* ``-z_x``.
        output_zero_point: z_h of the output = hidden-state tensor.
        cell_scale_power: p, the cell state's scale is 2**p (TFLite requires a power of two).
        forget_cell_multiplier, forget_cell_shift: mbqm factor of f * c (2**-15).
        input_cell_multiplier, input_cell_shift: mbqm factor of i * g (2**-30 / 2**p for
            int8 models).
        output_multiplier, output_shift: mbqm factor of o * tanh(c) to the output
            (2**-30 / output_scale).
        cell_clip: quantized cell clip; 0 means none (TFLite's default), else |c| <= clip.
        activation_bits: 8 (int8 input/output, int32 bias) or 16 (16x8: int16 input/output,
            int64 bias, 64-bit matmul requantization).
        input_scale, output_scale: real value of one input / output LSB (optional; only
            the float helpers of the runtime API read them).
        rounding: ``"double"`` (TFLite's default) or ``"single"`` (TFLITE_SINGLE_ROUNDING
            builds) for the 32-bit mbqm.
        kernel: whose integer LSTM to reproduce. ``"micro"`` (default): TensorFlow Lite Micro
            (and CMSIS-NN), as documented above. ``"lite"``: desktop TensorFlow Lite / the
            LiteRT interpreter (int8 only), which differs in two places: the gate and cell
            activations are gemmlowp's fixed-point logistic/tanh (:mod:`._gemmlowp16`)
            instead of the table, and ``f * c`` / ``i * g`` are rounded shifts by 15 and
            30 + p (``RoundingDivideByPOT``) instead of mbqm.
        hidden_zero_point: zero point added to the requantized o * tanh(c); None: z_h.
            Desktop TFLite takes it, with the output multiplier's scale, from the op's
            "effective hidden scale" intermediate, which the converter may calibrate apart
            from the output tensor; the recurrent matmul still subtracts z_h.
    """

    input_gate: TFLiteGate
    forget_gate: TFLiteGate
    cell_gate: TFLiteGate
    output_gate: TFLiteGate
    input_zero_point: int
    output_zero_point: int
    cell_scale_power: int
    forget_cell_multiplier: int
    forget_cell_shift: int
    input_cell_multiplier: int
    input_cell_shift: int
    output_multiplier: int
    output_shift: int
    cell_clip: int = 0
    activation_bits: int = 8
    input_scale: float | None = None
    output_scale: float | None = None
    rounding: Literal["double", "single"] = field(default="double")
    kernel: Literal["micro", "lite"] = field(default="micro")
    hidden_zero_point: int | None = None

    def __post_init__(self) -> None:
        h, i = self.input_gate.input_weights.shape
        for name in GATES:
            g = self.gate(name)
            if g.input_weights.shape != (h, i):
                raise ValueError(f"{name} gate weights {g.input_weights.shape} differ from ({h}, {i})")
        if self.activation_bits not in (8, 16):
            raise ValueError("activation_bits must be 8 or 16")
        if self.activation_bits == 16:
            for name in GATES:
                g = self.gate(name)
                if g.input_shift > 7 or g.hidden_shift > 7:  # 64-bit mbqm shifts right by 15 - s
                    raise ValueError(f"{name} gate: 16x8 models need shifts <= 7 (TFLite's 64-bit "
                                     f"MultiplyByQuantizedMultiplier), got {g.input_shift} and {g.hidden_shift}")
        lo, hi = self.activation_range
        if self.hidden_zero_point is None:
            object.__setattr__(self, "hidden_zero_point", int(self.output_zero_point))
        for name in ("input_zero_point", "output_zero_point", "hidden_zero_point"):
            if not lo <= int(getattr(self, name)) <= hi:
                raise ValueError(f"{name} {getattr(self, name)} outside the activation range")
        if not 0 <= self.cell_clip <= INT16_MAX:
            raise ValueError("cell_clip must lie in [0, 32767]")
        # The tanh of the cell reads 15 - 3 - (p + 12) = -p fraction bits: 2**p must be a
        # power of two whose shift keeps 3 * 2**L * |c| inside int32, as TFLite (Micro)
        # computes it: |c| <= 2**15, so L = p + 12 <= 14 (3 * 2**29 < 2**31; at L = 15 the
        # product 3 * 2**30 wraps in TFLite's int32 and its tanh is garbage), p <= 2.
        if not -31 <= self.cell_scale_power <= 2:
            raise ValueError(f"cell_scale_power {self.cell_scale_power} out of range [-31, 2]")
        for m, s in ((self.forget_cell_multiplier, self.forget_cell_shift),
                     (self.input_cell_multiplier, self.input_cell_shift),
                     (self.output_multiplier, self.output_shift)):
            _check_multiplier(int(m), int(s))
            if s > 0:  # x << s must stay in int32 for the int16 x int16 products (|x| <= 2**30)
                raise ValueError("elementwise multipliers need shift <= 0")
        if self.rounding not in ("double", "single"):
            raise ValueError("rounding must be 'double' or 'single'")
        if self.kernel not in ("micro", "lite"):
            raise ValueError("kernel must be 'micro' (TFLite Micro) or 'lite' (desktop TFLite / LiteRT)")
        if self.kernel == "lite":
            if self.activation_bits != 8:
                raise ValueError("kernel='lite' is implemented for int8 activations only")
            if not -15 <= self.cell_scale_power <= -9:  # gemmlowp tanh of the cell: 15 + p in 0..6
                raise ValueError("kernel='lite' needs cell_scale_power in [-15, -9] (TFLite's own limit)")
        for name, matmul, bound, limit in accumulator_bounds(self):
            if bound.size and bound.max() > limit:
                row = int(bound.argmax())
                raise ValueError(
                    f"{name} gate {matmul} matmul row {row} could overflow its accumulator: |b| + sum|W| * max|v - z| "
                    f"= {int(bound[row])} > {limit} (docs/tflite-compat.md, accumulator bounds); "
                    f"TFLite would wrap: fewer inputs per row, smaller weights, biases or shift")

    def gate(self, name: str) -> TFLiteGate:
        """The gate called ``name`` (one of :data:`GATES`)."""
        return getattr(self, f"{name}_gate")

    @property
    def input_size(self) -> int:
        return int(self.input_gate.input_weights.shape[1])

    @property
    def hidden_size(self) -> int:
        return int(self.input_gate.input_weights.shape[0])

    @property
    def activation_range(self) -> tuple[int, int]:
        """(min, max) of the input/output integers: int8 or int16."""
        b = self.activation_bits
        return -(1 << (b - 1)), (1 << (b - 1)) - 1

    def with_rounding(self, rounding: Literal["double", "single"]) -> "TFLiteLSTMParams":
        """A copy that uses the other mbqm rounding (TFLITE_SINGLE_ROUNDING builds)."""
        return replace(self, rounding=rounding)


@dataclass
class TFLiteLSTMState:
    """Recurrent state carried between calls (TFLite's variable tensors).

    Attributes:
        hidden: (B, H) int64 values of the int8/int16 output-state tensor (zero point z_h).
        cell: (B, H) int64 values of the int16 cell-state tensor (scale 2**p).
    """

    hidden: np.ndarray
    cell: np.ndarray


def accumulator_bounds(p: TFLiteLSTMParams) -> list[tuple[str, str, np.ndarray, int]]:
    """The worst case of every matmul accumulator, and the largest value it may take.

    For each gate and matmul ("input": ``b + W_x (x - z_x)``, "hidden": ``W_h (h - z_h)``)
    the (H,) per-row bound ``|b| + sum_j |W[r, j]| * max|v - z|`` over every v in the
    activation range (int8 or int16), and its limit: int32 (``2**31 - 1``), or
    ``2**(31 - s) - 1`` when the int8 kernel's mbqm first shifts left by s > 0, or
    ``2**47 - 1`` for 16x8's 64-bit mbqm. Parameters whose bound exceeds its limit are
    refused when built; within it no input or state in range can overflow (TFLite's
    own kernels would wrap). Returns ``[(gate, matmul, bound, limit), ...]``.

    Example:
        >>> g = TFLiteGate(np.full((1, 2), 127), np.zeros((1, 1)), np.array([10]), 1 << 30, 0, 1 << 30, 0)
        >>> p = TFLiteLSTMParams(g, g, g, g, input_zero_point=-128, output_zero_point=0, cell_scale_power=-12,
        ...                      forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
        ...                      input_cell_multiplier=1 << 30, input_cell_shift=-17,
        ...                      output_multiplier=1 << 30, output_shift=-22)
        >>> name, matmul, bound, limit = accumulator_bounds(p)[0]
        >>> int(bound[0]), limit                       # 2 * 127 * 255 + 10
        (64780, 2147483647)
    """
    lo, hi = p.activation_range
    out = []
    for name in GATES:
        g = p.gate(name)
        for matmul, w, b, zero, shift in (
                ("input", g.input_weights, g.bias, p.input_zero_point, g.input_shift),
                ("hidden", g.hidden_weights, np.zeros(g.hidden_weights.shape[0], np.int64), p.output_zero_point,
                 g.hidden_shift)):
            dev = max(hi - int(zero), int(zero) - lo)  # max |v - z| over the activation range
            bound = np.abs(w.astype(np.int64)).sum(axis=1) * dev + np.abs(b.astype(np.int64))
            if p.activation_bits == 16:
                limit = (1 << 47) - 1
            else:
                limit = INT32_MAX if shift <= 0 else (1 << (31 - int(shift))) - 1
            out.append((name, matmul, bound, limit))
    return out


def initial_state(params: TFLiteLSTMParams, batch: int = 1) -> TFLiteLSTMState:
    """TFLite's reset state: hidden = z_h (real 0), cell = 0; both (B, H)."""
    h = params.hidden_size
    return TFLiteLSTMState(np.full((batch, h), params.output_zero_point, np.int64), np.zeros((batch, h), np.int64))


# ----- the step -------------------------------------------------------------------------
def _fully_connected(p: TFLiteLSTMParams, x: np.ndarray, zero_point: int, w: np.ndarray,
                     bias: np.ndarray | None, m: int, s: int) -> np.ndarray:
    """sat16(mbqm(bias + (x - z) @ W.T)): (B, K) x (H, K) → (B, H), SAT 1."""
    acc = (x - zero_point) @ w.astype(np.int64).T  # (B, H), exact in int64
    if bias is not None:
        acc = acc + bias
    if p.activation_bits == 8:
        if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
            raise OverflowError("int32 accumulator overflow (TFLite would wrap)")
        if s > 0 and acc.size and np.abs(acc).max() >= (1 << (31 - s)):
            raise OverflowError("accumulator << shift overflows int32 (TFLite would wrap)")
        y = multiply_by_quantized_multiplier(acc, m, s, p.rounding)
    else:
        if acc.size and np.abs(acc).max() >= (1 << 47):
            raise OverflowError("int64 accumulator beyond the 2**47 that 64-bit mbqm allows")
        y = multiply_by_quantized_multiplier_64(acc, m, s)
    return _sat(y, INT16_MIN, INT16_MAX)


def _gate(p: TFLiteLSTMParams, g: TFLiteGate, x: np.ndarray, h: np.ndarray, sigmoid: bool) -> np.ndarray:
    fc_x = _fully_connected(p, x, p.input_zero_point, g.input_weights, g.bias, g.input_multiplier, g.input_shift)
    fc_h = _fully_connected(p, h, p.output_zero_point, g.hidden_weights, None, g.hidden_multiplier, g.hidden_shift)
    a = _sat(fc_x + fc_h, INT16_MIN, INT16_MAX)  # Q3.12
    if p.kernel == "lite":
        table = _g16.logistic_table(3) if sigmoid else _g16.tanh_table(3)
        return table[a + 32768]
    return sigmoid_lut(a) if sigmoid else tanh_lut(a, 0)


def _mul16(p: TFLiteLSTMParams, a: np.ndarray, b: np.ndarray, m: int, s: int, pot: int) -> np.ndarray:
    """int16 x int16 elementwise product requantized to int16 (SAT 2): TFLite Micro's MUL
    (mbqm by m, s), or desktop TFLite's CwiseMul (a rounded shift right by ``pot``)."""
    if p.kernel == "lite":
        return _sat(rounding_divide_by_pot(a * b, pot), INT16_MIN, INT16_MAX)
    return _sat(multiply_by_quantized_multiplier(a * b, m, s, p.rounding), INT16_MIN, INT16_MAX)


def tflite_lstm_step(params: TFLiteLSTMParams, x_t: np.ndarray, state: TFLiteLSTMState
                     ) -> tuple[np.ndarray, TFLiteLSTMState]:
    """One time step for B rows.

    Args:
        params: the layer.
        x_t: (B, I) integers in the activation range (int8 or int16 values).
        state: :class:`TFLiteLSTMState` with (B, H) hidden and cell.

    Returns:
        (h, new_state): h (B, H) int64 values in the activation range (also the new hidden
        state); the input state is not modified.
    """
    p = params
    x = np.asarray(x_t, dtype=np.int64)
    lo, hi = p.activation_range
    if x.ndim != 2 or x.shape[1] != p.input_size:
        raise ValueError(f"x_t must be (B, {p.input_size}), got {x.shape}")
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"x_t has values outside int{p.activation_bits}")
    h_prev = np.asarray(state.hidden, dtype=np.int64)
    c = np.asarray(state.cell, dtype=np.int64)
    if h_prev.shape != (x.shape[0], p.hidden_size) or c.shape != h_prev.shape:
        raise ValueError(f"state must be (B, H) = ({x.shape[0]}, {p.hidden_size})")

    # TFLite's order: forget gate and f * c first, then input and cell gates, then output.
    f = _gate(p, p.forget_gate, x, h_prev, sigmoid=True)
    fc = _mul16(p, f, c, p.forget_cell_multiplier, p.forget_cell_shift, 15)
    i = _gate(p, p.input_gate, x, h_prev, sigmoid=True)
    g = _gate(p, p.cell_gate, x, h_prev, sigmoid=False)
    ig = _mul16(p, i, g, p.input_cell_multiplier, p.input_cell_shift, 30 + p.cell_scale_power)
    c_new = _sat(fc + ig, INT16_MIN, INT16_MAX)
    if p.cell_clip > 0:
        c_new = _sat(c_new, -p.cell_clip, p.cell_clip)
    o = _gate(p, p.output_gate, x, h_prev, sigmoid=True)
    if p.kernel == "lite":
        t = _g16.tanh_table(15 + p.cell_scale_power)[c_new + 32768]
    else:
        t = tanh_lut(c_new, p.cell_scale_power + 12)
    h = _sat(multiply_by_quantized_multiplier(o * t, p.output_multiplier, p.output_shift, p.rounding)
             + p.hidden_zero_point, lo, hi)
    return h, TFLiteLSTMState(h, c_new)


def tflite_lstm_sequence(params: TFLiteLSTMParams, x: np.ndarray, state: TFLiteLSTMState | None = None,
                         time_major: bool = False) -> tuple[np.ndarray, TFLiteLSTMState]:
    """The whole sequence, as the op runs it (return_sequences output).

    Args:
        params: the layer.
        x: (B, T, I) integers, or (T, B, I) with ``time_major=True``.
        state: initial state (B, H) each; None: :func:`initial_state` (TFLite's reset).
        time_major: layout of ``x`` and of the output, as the op's ``time_major`` option.

    Returns:
        (out, final_state): out (B, T, H) (or (T, B, H)) in the activation's dtype
        (int8 or int16); the state to pass to the next call for stateful use.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must be 3-D, got shape {x.shape}")
    xs = x if time_major else x.transpose(1, 0, 2)  # (T, B, I)
    st = initial_state(params, xs.shape[1]) if state is None else state
    outs = []
    for t in range(xs.shape[0]):
        h, st = tflite_lstm_step(params, xs[t], st)
        outs.append(h)
    dtype = np.int8 if params.activation_bits == 8 else np.int16
    out = (np.stack(outs) if outs else np.zeros((0, xs.shape[1], params.hidden_size))).astype(dtype)
    return (out if time_major else out.transpose(1, 0, 2)), st
