"""Integer-only LSTM / GRU in the native runtime, bit-exact with lstmlite.reference.

The parameters are the reference's :class:`~lstmlite.reference.integer.IntegerRecurrentParams`
(int8 weights, int32 biases and requantization multipliers, int16 state); the C code
(``lsl_int.c``) repeats the reference's arithmetic, roundings and saturations exactly,
so outputs are identical integers, not merely close.

Example:
    >>> import numpy as np
    >>> from lstmlite.reference.integer import quantize_lstm_integer, quantize_input, integer_lstm_forward
    >>> rng = np.random.default_rng(0)
    >>> params = quantize_lstm_integer(
    ...     {"weight_ih_l0": rng.normal(0, 0.3, (32, 3)), "weight_hh_l0": rng.normal(0, 0.3, (32, 8))},
    ...     {"input": {"absmax": 3.0}, "layers": [[{"cell": {"absmax": 2.0}}]]})
    >>> x_q = quantize_input(params, rng.normal(size=(2, 5, 3)))
    >>> out, _ = IntegerEngine(params).run(x_q)
    >>> bool(np.array_equal(out, integer_lstm_forward(params, x_q)))
    True
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import _lsl
from .engine import _lengths

__all__ = ["IntegerEngine"]


def _check_int16(arr: np.ndarray, what: str) -> None:
    """Refuse values an int16 cast would wrap (40000 -> -25536), naming ``what``."""
    if arr.size and (arr.min() < -32768 or arr.max() > 32767):
        raise ValueError(f"{what} has values outside int16")

_CELLS = {"lstm": 1, "gru": 2}


class IntegerEngine:
    """An integer-only recurrent stack; ``run`` and ``step`` mirror
    ``integer_lstm_sequence`` / ``integer_gru_sequence`` and ``integer_*_step``."""

    def __init__(self, params: Any) -> None:
        self.params = params
        self.cell = params.cell
        dirs = []
        for layer in params.layers:
            for d in layer:
                dirs.append((
                    int(d.input_size), int(d.hidden_size), int(d.cell_frac), int(d.input_bits),
                    np.ascontiguousarray(d.w_ih, np.int8), np.ascontiguousarray(d.w_hh, np.int8),
                    *(np.ascontiguousarray(getattr(d, n), np.int32)
                      for n in ("b_ih", "b_hh", "m_ih", "shift_ih", "m_hh", "shift_hh")),
                ))
        self.num_layers = len(params.layers)
        self.num_directions = len(params.layers[0])
        self._model = _lsl.IntModel(_CELLS[self.cell], self.num_directions, dirs)
        self._hidden = [[d.hidden_size for d in layer] for layer in params.layers]
        self.input_size = int(params.layers[0][0].input_size)
        self.output_size = int(sum(self._hidden[-1]))

    # ----- state: the reference's per-layer form <-> the C flat form ----------------
    def _flatten(self, state: Sequence[Any], batch: int) -> np.ndarray:
        parts = []
        for k in range(self.num_layers):
            tensors = state[k] if self.cell == "lstm" else (state[k],)
            for j in range(self.num_directions):
                for t in tensors:
                    arr = np.asarray(t)[j]
                    if arr.shape != (batch, self._hidden[k][j]):
                        raise ValueError(f"layer {k} state must be (D, B, H) = "
                                         f"({self.num_directions}, {batch}, {self._hidden[k][j]})")
                    # checked, not cast: int16 wraps 40000 to -25536 where the reference
                    # refuses a state outside int16
                    _check_int16(arr, f"layer {k} state")
                    parts.append(arr.astype(np.int16).reshape(-1))
        return np.ascontiguousarray(np.concatenate(parts))

    def _unflatten(self, flat: np.ndarray, batch: int) -> list[Any]:
        out, pos = [], 0
        for k in range(self.num_layers):
            per_dir = []
            for j in range(self.num_directions):
                h_size = self._hidden[k][j]
                n = batch * h_size
                tensors = []
                for _ in range(2 if self.cell == "lstm" else 1):
                    tensors.append(flat[pos:pos + n].reshape(batch, h_size))
                    pos += n
                per_dir.append(tensors)
            stacked = [np.stack([p[i] for p in per_dir]) for i in range(len(per_dir[0]))]
            out.append(tuple(stacked) if self.cell == "lstm" else stacked[0])
        return out

    # ----- whole sequences -----------------------------------------------------------
    def run(self, x_q: np.ndarray, lengths: Any = None, state: Sequence[Any] | None = None
            ) -> tuple[np.ndarray, list[Any]]:
        """x_q (B, T, I) integers of the first layer's width → (output (B, T, D*H) int16
        Q0.15, final state per layer as the reference returns it)."""
        x_q = np.asarray(x_q)
        if not np.issubdtype(x_q.dtype, np.integer):
            raise TypeError(f"x_q must be integers, got {x_q.dtype}")
        if x_q.ndim != 3 or x_q.shape[2] != self.input_size:
            raise ValueError(f"x_q must be (B, T, {self.input_size}), got shape {x_q.shape}")
        _check_int16(x_q, "x_q")
        batch, steps = x_q.shape[:2]
        lens = None
        if lengths is not None:
            # checked before the int32 cast, which would run 2.5 or an int64 2**32 + 2 as 2
            # steps; raised as the runtime's error, as C's own check of 1..T raises it
            try:
                lens = _lengths(lengths, batch, steps)
            except ValueError as err:
                raise _lsl.Error(str(err)) from None
        flat = (np.zeros(self._model.state_values(batch), np.int16) if state is None
                else self._flatten(state, batch))
        out = np.empty((batch, steps, self.output_size), np.int16)
        self._model.run(np.ascontiguousarray(x_q, dtype=np.int16), lens, flat, out)
        return out, self._unflatten(flat, batch)

    # ----- streaming -----------------------------------------------------------------
    def new_state(self, batch: int = 1) -> np.ndarray:
        """A zero state for ``batch`` streams (flat int16; pass it to :meth:`step`)."""
        return np.zeros(self._model.state_values(int(batch)), np.int16)

    def step(self, x_t: np.ndarray, state: np.ndarray) -> np.ndarray:
        """One step: x_t (B, I) integers → h (B, H) int16 of the top layer; ``state``
        (from :meth:`new_state`) is updated in place. One direction only: a backward
        direction needs the whole sequence (use :meth:`run`)."""
        if self.num_directions != 1:
            raise ValueError("a bidirectional model cannot stream: its backward direction needs the whole "
                             "sequence; use run()")
        x_t = np.asarray(x_t)
        if not np.issubdtype(x_t.dtype, np.integer):
            raise TypeError(f"x_t must be integers, got {x_t.dtype}")
        _check_int16(x_t, "x_t")
        # a reshape alone takes any multiple of I values: x_t.T (I, B) would step with its
        # values reshuffled across streams and features
        if x_t.ndim == 0 or x_t.shape[-1] != self.input_size:
            raise ValueError(f"x_t must be (B, {self.input_size}) (or ({self.input_size},) for one stream), "
                             f"got shape {x_t.shape}")
        x16 = np.ascontiguousarray(x_t, dtype=np.int16).reshape(-1, self.input_size)
        out = np.empty((x16.shape[0], self.output_size), np.int16)
        self._model.step(x16, state, out)
        return out
