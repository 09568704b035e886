"""TFLite-compatible integer LSTM in the native runtime (``lsl_tflite.c``).

Runs a :class:`~lstmlite.reference.tflite_int.TFLiteLSTMParams` layer in C, bit-exact with
:func:`lstmlite.reference.tflite_int.tflite_lstm_sequence` and therefore with TensorFlow
Lite Micro. The state (hidden and cell) is kept between calls, as TFLite keeps its
variable tensors: call :meth:`TFLiteLSTM.reset` to start over.

Example:
    >>> import numpy as np
    >>> from lstmlite.reference.tflite_int import TFLiteGate, TFLiteLSTMParams, tflite_lstm_sequence
    >>> rng = np.random.default_rng(0)
    >>> gate = lambda: TFLiteGate(rng.integers(-127, 128, (3, 2)), rng.integers(-127, 128, (3, 3)),
    ...                           np.zeros(3), 1 << 30, -3, 1 << 30, -3)
    >>> p = TFLiteLSTMParams(gate(), gate(), gate(), gate(), input_zero_point=-128, output_zero_point=0,
    ...                      cell_scale_power=-12, forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
    ...                      input_cell_multiplier=1 << 30, input_cell_shift=-17,
    ...                      output_multiplier=1 << 30, output_shift=-22)
    >>> x = rng.integers(-128, 128, (2, 5, 2)).astype(np.int8)          # (B, T, I)
    >>> y = TFLiteLSTM(p).run(x)                                           # (B, T, H) int8
    >>> bool(np.array_equal(y, tflite_lstm_sequence(p, x)[0]))
    True
"""

from __future__ import annotations

import numpy as np

from ..reference.tflite_int import GATES, TFLiteLSTMParams, TFLiteLSTMState
from . import _lsl

__all__ = ["TFLiteLSTM"]


class TFLiteLSTM:
    """A TFLite integer LSTM layer with its state.

    Args:
        params: the layer (from :func:`lstmlite.importers.tflite.read_tflite_lstm` or built
            by hand).
        time_major: layout of inputs and outputs: (T, B, .) when True, else (B, T, .).
    """

    def __init__(self, params: TFLiteLSTMParams, time_major: bool = False) -> None:
        p = params
        self.params = p
        self.time_major = bool(time_major)
        self._dtype = np.int8 if p.activation_bits == 8 else np.int16
        self._ints = (p.input_size, p.hidden_size, p.activation_bits, p.input_zero_point, p.output_zero_point,
                      p.cell_scale_power, p.forget_cell_multiplier, p.forget_cell_shift, p.input_cell_multiplier,
                      p.input_cell_shift, p.output_multiplier, p.output_shift, p.cell_clip,
                      1 if p.rounding == "single" else 0, 1 if p.kernel == "lite" else 0,
                      p.hidden_zero_point)
        gates = [p.gate(g) for g in GATES]
        self._weights = np.ascontiguousarray(np.concatenate(
            [np.concatenate([g.input_weights.reshape(-1), g.hidden_weights.reshape(-1)]) for g in gates]), np.int8)
        self._bias = np.ascontiguousarray(np.concatenate([g.bias for g in gates]), np.int64)
        self._gate_q = np.array([[g.input_multiplier, g.input_shift, g.hidden_multiplier, g.hidden_shift]
                                 for g in gates], np.int32).reshape(-1)
        self._hidden: np.ndarray | None = None
        self._cell: np.ndarray | None = None

    # ----- state --------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the state; the next call starts from TFLite's reset state (h = z_h, c = 0)."""
        self._hidden = self._cell = None

    @property
    def state(self) -> TFLiteLSTMState | None:
        """The state after the last call ((B, H) hidden and cell), or None after a reset."""
        if self._hidden is None:
            return None
        return TFLiteLSTMState(self._hidden.astype(np.int64), self._cell.astype(np.int64))

    @state.setter
    def state(self, value: TFLiteLSTMState | None) -> None:
        if value is None:
            self.reset()
            return
        h, c = np.asarray(value.hidden), np.asarray(value.cell)
        if h.shape != c.shape or h.ndim != 2 or h.shape[1] != self.params.hidden_size:
            raise ValueError(f"state must be (B, {self.params.hidden_size}) hidden and cell")
        # checked, not cast: a cast wraps (hidden 200 -> -56 in int8), so the layer would run
        # from another state than the one given (the reference computes with 200 itself)
        lo, hi = self.params.activation_range
        if h.size and (h.min() < lo or h.max() > hi):
            raise ValueError(f"state hidden has values outside int{self.params.activation_bits}")
        if c.size and (c.min() < -32768 or c.max() > 32767):
            raise ValueError("state cell has values outside int16")
        self._hidden = np.ascontiguousarray(h, self._dtype)
        self._cell = np.ascontiguousarray(c, np.int16)

    # ----- running ------------------------------------------------------------------
    def run(self, x: np.ndarray) -> np.ndarray:
        """Run a sequence from the current state (then keep the final state).

        Args:
            x: (B, T, I) integers (or (T, B, I) when ``time_major``) in the activation range.

        Returns:
            (B, T, H) (or (T, B, H)) int8 or int16 outputs: TFLite's output tensor.
        """
        p = self.params
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"x must be integers, got {x.dtype}")
        if x.ndim != 3 or x.shape[2] != p.input_size:
            raise ValueError(f"x must be 3-D with {p.input_size} features, got shape {x.shape}")
        lo, hi = p.activation_range
        if x.size and (x.min() < lo or x.max() > hi):
            raise ValueError(f"x has values outside int{p.activation_bits}")
        steps, batch = (x.shape[0], x.shape[1]) if self.time_major else (x.shape[1], x.shape[0])
        if self._hidden is None or self._hidden.shape[0] != batch:
            if self._hidden is not None:
                raise ValueError(f"the state holds batch {self._hidden.shape[0]}, x has {batch}: reset() first")
            self._hidden = np.full((batch, p.hidden_size), p.output_zero_point, self._dtype)
            self._cell = np.zeros((batch, p.hidden_size), np.int16)
        out = np.empty(x.shape[:2] + (p.hidden_size,), self._dtype)
        _lsl.tflite_run(self._ints, self._weights, self._bias, self._gate_q,
                        np.ascontiguousarray(x, self._dtype), out, self._hidden, self._cell,
                        batch, steps, int(self.time_major))
        return out

    def step(self, x_t: np.ndarray) -> np.ndarray:
        """One time step: x_t (B, I) → h (B, H); the state carries over."""
        x_t = np.asarray(x_t)
        if x_t.ndim != 2:
            raise ValueError(f"x_t must be (B, I), got shape {x_t.shape}")
        seq = x_t[None] if self.time_major else x_t[:, None]
        out = self.run(seq)
        return out[0] if self.time_major else out[:, 0]
