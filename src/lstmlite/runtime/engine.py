"""Python face of the native runtime: :class:`Engine` and :class:`StreamState`.

An engine holds one model's weights, packed for this CPU's kernels; it is read-only
once built, so any number of :class:`StreamState` objects (one per audio stream,
sensor, user…) can share it. ``run`` processes whole batches of sequences;
``step`` advances streams one time step at a time with no allocation in C.

Example:
    >>> import numpy as np, torch
    >>> lstm = torch.nn.LSTM(4, 8, batch_first=True)
    >>> engine = Engine.from_torch(lstm)
    >>> x = np.random.rand(2, 5, 4).astype(np.float32)
    >>> engine.run(x).shape
    (2, 5, 8)
    >>> s = engine.new_state()
    >>> engine.step(x[0, 0], s).shape
    (8,)
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

import numpy as np

from . import _lsl
from .lsl import ModelSpec, meta_and_macs

__all__ = ["Engine", "StreamState", "RuntimeError_", "InputTypeError", "isa", "set_isa", "best_isa", "has_vnni",
           "supported_isas", "info", "ISAS"]

log = logging.getLogger(__name__)

RuntimeError_ = _lsl.Error  # raised for error codes from C (a ValueError subclass)


class InputTypeError(TypeError, ValueError):
    """An input of the wrong dtype: a ``TypeError``, and a ``ValueError`` like every
    other bad input (what callers and the CLI catch as the user's error)."""

ACTIVATIONS = {"float": _lsl.ACT_FLOAT, "dynamic": _lsl.ACT_DYN8, "dynamic16": _lsl.ACT_DYN16,
               "dynamic-h7": _lsl.ACT_DYN8 | _lsl.LOAD_H7, "dynamic16-h7": _lsl.ACT_DYN16 | _lsl.LOAD_H7}
# Most threads one run may use (LSL_MAX_THREADS in lsl.h).
MAX_THREADS = 64
# The fewest multiply-adds a thread of run() is given: a run with less work per thread
# uses fewer threads than asked. A thread started for a run costs tens of microseconds,
# more on a virtual machine whose idle CPU must be woken (44-170 us on a 2-vCPU KVM
# guest, 2026-12-07), while 4 million multiply-adds take 80-200 us on one core. There,
# I=40 H=128 B=4 T=10 (3.4 M in all) took 148 us on one thread and 234 split over two
# in fp32, 75 and 153 in dynamic int8 (benchmarks/results/threads-zen3.json).
MIN_MACS_PER_THREAD = 4_000_000


# Every kernel table's name, as set_isa and LSTMLITE_ISA take it.
ISAS = ("portable", "avx2", "avx2-vnni", "avx512", "avx512-vnni", "neon", "neon-dotprod")


# LSTMLITE_ISA's error (unknown or unsupported value), raised on first use of the runtime;
# None when the variable is fine or set_isa has chosen since.
_env_error: str | None = _lsl.ENV_ERROR


def _check_env() -> None:
    if _env_error:
        raise RuntimeError_(_env_error)


def set_isa(name: str) -> None:
    """Force the kernels: ``portable``, ``avx2``, ``avx2-vnni`` (AVX-VNNI, VEX),
    ``avx512`` (without VNNI), ``avx512-vnni``, on aarch64 ``neon`` and ``neon-dotprod``
    (SDOT), or ``auto`` (the best).

    Process-wide; call it while no engine is running. Raises ``ValueError`` for an
    unknown name and ``RuntimeError_`` when the CPU lacks the level, each naming the
    levels this CPU supports. The environment variable ``LSTMLITE_ISA`` does the same
    at start-up; an unknown or unsupported value is an error, raised by the first
    engine, ``isa()`` or ``info()`` (a later ``set_isa`` replaces the choice).
    """
    global _env_error
    _lsl.isa_set(name)
    _env_error = None


def supported_isas() -> list[str]:
    """Names of the kernel tables this CPU (and its OS's register state) runs."""
    return list(_lsl.isa_supported())


def info() -> dict[str, Any]:
    """What the runtime runs on: ``isa`` (the kernels in use), ``best_isa``,
    ``supported_isas``, ``avx512_vnni``, and ``fused_step`` / ``fused_sparse_step``
    (whether the kernels in use fuse a single stream's int8 LSTM step: matrix-vector
    product and cell update in one pass; ``avx512``'s does so for dynamic activations
    only, float ones run the two apart)."""
    _check_env()
    dense, sparse = _lsl.fused_steps()
    return {"isa": isa(), "best_isa": best_isa(), "supported_isas": supported_isas(), "avx512_vnni": has_vnni(),
            "fused_step": bool(dense), "fused_sparse_step": bool(sparse)}


def isa() -> str:
    """Name of the kernels in use."""
    _check_env()
    return _lsl.isa_current()


def best_isa() -> str:
    """Best kernels this CPU supports."""
    return _lsl.isa_best()


def has_vnni() -> bool:
    """Whether AVX-512 VNNI is present (used by ``activations="dynamic"``)."""
    return bool(_lsl.has_vnni())


def _instance_norm(x: np.ndarray, lengths: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """RevIN as lstmlite.nn.Forecaster does it: (x - mean over valid steps) * mask.

    x (B, T, F) → (normalised x (B, T, F), level (B, 1, F)).
    """
    steps = x.shape[1]
    if lengths is None:
        mask = np.ones((x.shape[0], steps, 1), np.float32)
    else:
        mask = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.float32)[:, :, None]
    # where(), not a product with the mask: padding is ignored, and NaN padding times 0
    # is NaN, which made the level and so every forecast of the row NaN
    valid = np.broadcast_to(mask > 0, x.shape)
    level = np.where(valid, x, 0).sum(1, keepdims=True) / mask.sum(1, keepdims=True)
    return np.ascontiguousarray(np.where(valid, x - level, 0), dtype=np.float32), level.astype(np.float32)


def bidirectional_layer(info: Mapping[str, Any]) -> int | None:
    """The first bidirectional layer of an engine's ``info`` (which step() cannot stream:
    its backward direction reads steps not yet seen), or None."""
    return next((k for k, layer in enumerate(info["layers"]) if layer["num_directions"] == 2), None)


def token_ids(x: Any, vocab_size: int) -> np.ndarray:
    """Token ids as int32, checked against the vocabulary first: a cast alone would wrap
    an int64 id of 2**32 + 5 to 5 (and a lookup in NumPy would take -1 as the last row)
    and run the wrong token silently."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise InputTypeError(f"this model takes integer token ids, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= vocab_size):
        bad = int(arr.max()) if int(arr.max()) >= vocab_size else int(arr.min())
        raise ValueError(f"token id {bad} is outside this model's vocabulary [0, {vocab_size}); "
                         f"map unknown tokens to <unk> (id 1) before running")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _lengths(lengths: Any, batch: int, steps: int) -> np.ndarray:
    """lengths (B,) as the runtime's int32, checked before the cast: a cast alone would
    truncate 2.5 to 2 and wrap an int64 2**32 + 2 to 2, running the wrong steps silently.
    Whole-number floats (3.0) are taken as the integers they are."""
    arr = np.asarray(lengths)
    message = f"lengths must be (B,) = ({batch},) with values in [1, {steps}]"
    if arr.dtype.kind == "f" and arr.size and not np.array_equal(arr, np.floor(arr)):
        raise ValueError(f"{message}, whole numbers of steps; got {arr.reshape(-1).tolist()}")
    if arr.dtype.kind not in "iuf":
        raise InputTypeError(f"{message}, integers; got dtype {arr.dtype}")
    arr = arr.reshape(-1)
    if arr.shape != (batch,) or not (arr >= 1).all() or not (arr <= steps).all():
        raise ValueError(message)
    return np.ascontiguousarray(arr, dtype=np.int32)


class StreamState:
    """Recurrent state of ``batch`` streams of one engine (plus the C step workspace).

    Create with :meth:`Engine.new_state`; pass to :meth:`Engine.step` and, to start a
    whole sequence from it, to :meth:`Engine.run`.
    """

    __slots__ = ("_stream", "_engine", "batch", "_out_shape")

    def __init__(self, engine: "Engine", batch: int) -> None:
        # int() alone would make 2.5 streams 2, "2" 2 and True 1
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"batch must be a positive integer (the number of streams), got {batch!r}")
        self._engine = engine
        self._stream = engine._model.stream(int(batch))
        self.batch = int(batch)
        # a single stream fed (I,) gets (n_out,) back; batches get (B, n_out)
        self._out_shape = (engine._step_out,) if self.batch == 1 else (self.batch, engine._step_out)

    def reset(self) -> None:
        """Zero the state (start of a new stream)."""
        self._stream.reset()

    def values(self) -> np.ndarray:
        """A copy of the state as one float32 vector (layout: see ``lsl.h``)."""
        out = np.empty(self._stream.state_floats, np.float32)
        self._stream.get_state(out)
        return out

    def load(self, values: np.ndarray) -> None:
        """Set the state from a vector like :meth:`values` returns.

        Raises:
            ValueError: a NaN or an infinity in ``values`` for an engine with quantized
                activations (``dynamic*``): each step quantizes h to integers with a scale
                from its largest |value|, which an infinity does not have, so every output
                of the next step would be NaN. A float-activation engine takes it and
                computes what PyTorch does (an infinite h saturates the gates).
        """
        flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
        if self._engine.activations != "float":
            bad = np.flatnonzero(~np.isfinite(flat))
            if bad.size:
                raise ValueError(
                    f"state value {int(bad[0])} is {flat[bad[0]]} ({bad.size} non-finite value(s)): activations="
                    f"{self._engine.activations!r} quantize each step's h with a scale from its largest |value|, "
                    "which a NaN or an infinity does not have (every output would be NaN); load a finite state, "
                    "or use activations='float'")
        self._set(flat)

    def _set(self, values: np.ndarray) -> None:
        """:meth:`load` unchecked: a state the runtime itself computed (run's final state)."""
        self._stream.set_state(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))


class Engine:
    """A model loaded into the native runtime.

    Args:
        model: a :class:`~lstmlite.runtime.lsl.ModelSpec`, or the bytes of a .lsl file.
        weights: ``fp32``, ``int8`` (weight-only, per-row scales), ``int7`` (int8
            codes within [-63, 63], 7-bit weights as ONNX Runtime's ``reduce_range``
            has them: with ``activations="dynamic"`` the AVX2 kernels need no sign
            step; ``info["layers"]`` reports such a file's matrices as ``int8``),
            ``int7r`` (``int8`` with only the recurrent matrices' codes within
            [-63, 63]: the one-stream step loses its sign step, the input
            projections keep 8 bits; with ``dynamic16`` about as fast on AVX2 CPUs as
            ``int7`` with ``dynamic``, the fastest there, and more accurate than
            ``int8`` with ``dynamic``),
            ``int4``,
            ``int8-sparse`` (int8 with mostly-zero (1, 4) blocks skipped) or ``auto``
            (the spec's own floats and codes, each matrix in its smallest form) when
            ``model`` is a spec (see :func:`lstmlite.export.lsl.write_lsl`); a .lsl
            file already says which.
        activations: ``float`` (exact arithmetic on float activations), ``dynamic``
            (int8 matrices multiply 8-bit activations quantized on the fly per row:
            faster, about 1e-2 relative error, like ONNX Runtime's dynamic int8), or
            ``dynamic16`` (as ``dynamic``, but the dense int8 input projections W_ih x
            take x quantized per row to 16 bits: the 8-bit inputs are most of dynamic
            int8's error, about half of it gone; the AVX2 tables' many-row int8
            products are int16 products anyway, so the input projections cost the
            same there, while the VNNI tables give up their byte dot products for
            them). Its products give the same bits on every kernel table, as
            ``dynamic``'s do. ``dynamic-h7`` / ``dynamic16-h7``: as ``dynamic`` /
            ``dynamic16``, and the recurrent matrices with 7-bit weights (``int7``,
            ``int7r``, ``int4``) take the state h quantized to 7 bits (|q| <= 63):
            two such products fit int16 twice over, so CPUs without VNNI (the AVX2
            tables) add them in int16 before widening, a quarter fewer multiplier
            instructions (Zen 4, AVX2, I=40 H=128 B=32: about 6 % faster); the error
            grows a little (``info["layers"][k]["h_bits"]`` says 7 or 8). Same bits
            on every table; a ValueError if no recurrent matrix has 7-bit weights.
        threads: the most threads :meth:`run` uses: a batch of B sequences of T
            steps is cut into min(threads, B, work // 4 M) chunks run at once, where
            work is the run's multiply-adds (B x T x the model's per step): a thread
            for less work costs more than it saves (``MIN_MACS_PER_THREAD``). The
            same result either way: bit for bit with dynamic activations, within
            float rounding otherwise. Default 1; streaming (:meth:`step`) always
            uses one.
        keep_sparse: keep every ``int8-sparse`` matrix sparse in memory. By default
            each one runs in the form the kernel table in use (:func:`isa`, at load
            time) runs faster: sparse, or its codes unpacked dense where its kept
            blocks are too scattered for the sparse kernels to win (on AVX2, 80 %
            sparse in (1, 4) blocks runs dense; in (16, 4) blocks it stays sparse).
            The results are the same bits either way with dynamic activations
            (float: within float rounding); ``info["layers"][k]["runs_ih"]`` and
            ``["runs_hh"]`` say which form each matrix runs in. ``True``: less
            memory, the sparse kernels' speed.

    Example:
        >>> engine = Engine(spec, weights="int8-sparse", activations="dynamic")
        >>> layer = engine.info["layers"][0]
        >>> layer["weights"], layer["runs_hh"]  # stored sparse; runs dense or sparse
        ('int8-sparse', 'int8')                 # e.g. 80 % sparse (1, 4) blocks on AVX2
    """

    def __init__(self, model: ModelSpec | bytes, weights: str = "fp32", activations: str = "float",
                 threads: int = 1, keep_sparse: bool = False) -> None:
        _check_env()
        if activations not in ACTIVATIONS:
            raise ValueError(f"activations must be one of {sorted(ACTIVATIONS)}, got {activations!r}")
        if isinstance(model, (str, os.PathLike)):  # bytes(path) fails with "string argument without an encoding"
            raise TypeError(f"Engine takes a ModelSpec or the bytes of a .lsl file, not the path {str(model)!r}; "
                            "open a .lsl file or a run dir with lstmlite.runtime.load(path)")
        if isinstance(model, ModelSpec):
            from ..export.lsl import write_lsl  # a spec is serialised by the writer, then loaded

            data = write_lsl(model, weights=weights)
        else:
            data = bytes(model)
        self._model = _lsl.Model(data, ACTIVATIONS[activations] | (_lsl.LOAD_KEEP_SPARSE if keep_sparse else 0))
        self._meta, self._macs_per_step = meta_and_macs(data)  # one parse (it checks the CRC)
        self.info: dict[str, Any] = self._model.info()
        if activations.endswith("-h7") and not any(layer["h_bits"] == 7 for layer in self.info["layers"]):
            raise ValueError(f"activations={activations!r}: no recurrent matrix of this model takes 7-bit states; "
                             "they need 7-bit weights in full (not low-rank) form: weights='int7r', 'int7' or 'int4'")
        self.activations = activations
        self._default: StreamState | None = None
        self._tokens = bool(self.info["vocab_size"])
        self._step_out = int(self.info["step_out"])
        self._windowed = bool(self._meta.get("instance_norm"))
        self._no_step = self._step_refusal()
        # run()'s fast path: float features in, the top layer's (B, T, F) out as is
        self._fast_run = not self._tokens and not self._windowed and int(self.info["head_mode"]) == 0
        self._in_size = int(self.info["input_size"])
        self._feat = int(self.info["feature_size"])
        self.threads = threads

    @property
    def threads(self) -> int:
        """Threads :meth:`run` splits a batch over (1 to 64)."""
        return self._threads

    @threads.setter
    def threads(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= MAX_THREADS:
            raise ValueError(f"threads must be an integer in [1, {MAX_THREADS}], got {value!r}")
        self._threads = int(value)

    def threads_for(self, batch: int, steps: int) -> int:
        """The threads :meth:`run` uses for ``batch`` sequences of ``steps`` steps: at
        most :attr:`threads`, one per sequence, and one per ``MIN_MACS_PER_THREAD``
        multiply-adds of the run (at least one).

        Example::

            >>> engine = Engine.from_torch(torch.nn.LSTM(40, 128, batch_first=True), threads=2)
            >>> engine.threads_for(4, 10), engine.threads_for(32, 100)  # 3.4 M and 275 M multiply-adds
            (1, 2)
        """
        if self._threads == 1:
            return 1
        work = batch * steps * self._macs_per_step
        return max(1, min(self._threads, batch, work // MIN_MACS_PER_THREAD))

    # ----- constructors ------------------------------------------------------------
    @classmethod
    def from_torch(cls, module: Any, weights: str = "fp32", activations: str = "float", threads: int = 1,
                   keep_sparse: bool = False) -> "Engine":
        """From ``torch.nn.LSTM``/``nn.GRU`` (batch-first inputs), an ``lstmlite.nn``
        layer, or an lstmlite task model (classifier, language model, forecaster)."""
        from ..export.lsl import spec_from_module

        return cls(spec_from_module(module), weights=weights, activations=activations, threads=threads,
                   keep_sparse=keep_sparse)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], *, weights: str = "fp32", activations: str = "float",
                        threads: int = 1, keep_sparse: bool = False, **spec_kwargs: Any) -> "Engine":
        """From NumPy weights under PyTorch's names; keyword arguments as
        :func:`~lstmlite.runtime.lsl.spec_from_state_dict` (cell, embedding, head…)."""
        from ..export.lsl import spec_from_state_dict

        return cls(spec_from_state_dict(state, **spec_kwargs), weights=weights, activations=activations,
                   threads=threads, keep_sparse=keep_sparse)

    # ----- properties --------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return int(self.info["input_size"])

    @property
    def vocab_size(self) -> int:
        return int(self.info["vocab_size"])

    @property
    def meta(self) -> dict[str, Any]:
        """The metadata stored in the .lsl file (model kind, config, output shape)."""
        return dict(self._meta)

    # ----- whole sequences ---------------------------------------------------------
    def _inputs(self, x: Any, seq: bool) -> np.ndarray:
        if self.vocab_size:
            return self._token_ids(x)
        arr = np.asarray(x)
        if arr.dtype.kind not in "iuf":  # complex would lose its imaginary part with a mere warning
            raise InputTypeError(f"this model takes real-valued features (float32), got dtype {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _token_ids(self, x: Any) -> np.ndarray:
        """Token ids as the runtime's int32, checked against the vocabulary first."""
        return token_ids(x, self.vocab_size)

    def _check_state(self, state: "StreamState") -> None:
        if not isinstance(state, StreamState) or state._engine is not self:
            raise ValueError("this state belongs to another engine (each model's state has its own layout); "
                             "create it with this engine's new_state()")

    def run(self, x: Any, lengths: Any = None, state: StreamState | None = None) -> np.ndarray:
        """Run a batch of whole sequences.

        Args:
            x: (B, T, I) float features, or (B, T) integer token ids for an embedding
                model; a single sequence (T, I) / (T,) is treated as B = 1.
            lengths: (B,) valid steps per sequence (padding after them is ignored).
            state: a :class:`StreamState` with ``batch == B`` to start from; it is
                updated to the final state. None starts from zeros.

        Returns:
            head ``none``: (B, T, F) outputs of the top layer (F = D * H);
            head ``last`` (classifier/forecaster): (B, n_out), or (B, horizon, targets)
            for a forecaster, ``[b, h, k]`` the forecast h + 1 steps ahead of target k
            (the head's row h * targets + k, as :class:`~lstmlite.nn.Forecaster`);
            head ``each`` (language model): (B, T, vocab) logits.
        """
        # The common call -- a float32 (B, T, I) array, whole sequences from zeros, no
        # head -- skips the general path's conversions and lookups (about 2 us, a few
        # percent of a small model's run); the C side re-checks every size anyway.
        if (lengths is None and state is None and self._fast_run and type(x) is np.ndarray
                and x.dtype == np.float32 and x.ndim == 3 and x.flags.c_contiguous
                and x.shape[2] == self._in_size and x.shape[0] > 0 and x.shape[1] > 0):
            out = np.empty((x.shape[0], x.shape[1], self._feat), np.float32)
            self._model.run(x, None, None, out, self.threads_for(x.shape[0], x.shape[1]))
            return out
        arr = self._inputs(x, True)
        single = arr.ndim == (1 if self.vocab_size else 2)
        if single:
            arr = arr[None]
        if arr.ndim != (2 if self.vocab_size else 3):
            raise ValueError(f"expected {'(B, T) token ids' if self.vocab_size else '(B, T, I) features'}, "
                             f"got shape {np.shape(x)}")
        if not self.vocab_size and arr.shape[2] != self.input_size:
            raise ValueError(f"expected {self.input_size} features per step, got {arr.shape[2]}")
        batch, steps = arr.shape[0], arr.shape[1]
        if batch < 1 or steps < 1:
            raise ValueError("need at least one sequence of at least one step")
        lens = None
        if lengths is not None:
            lens = _lengths(lengths, batch, steps)
        level = None
        if self._meta.get("instance_norm"):
            arr, level = _instance_norm(arr, lens)
        state_buf = None
        if state is not None:
            self._check_state(state)
            if state.batch != batch:
                raise ValueError(f"the state holds {state.batch} streams but x has a batch of {batch}; "
                                 f"create it with new_state({batch})")
            state_buf = state.values()
        per = self._model.run_out_floats(steps)
        out = np.empty(batch * per, np.float32)
        self._model.run(arr, lens, state_buf, out, self.threads_for(batch, steps))
        if state is not None:
            state._set(state_buf)
        out = self._shape_run(out, batch, steps, level)
        return out[0] if single else out

    def _shape_run(self, out: np.ndarray, batch: int, steps: int, level: np.ndarray | None) -> np.ndarray:
        mode = self.info["head_mode"]
        if mode == 0:
            return out.reshape(batch, steps, self.info["feature_size"])
        if mode == 2:
            return out.reshape(batch, steps, self.info["n_out"])
        if self._meta.get("kind") == "forecaster":
            horizon, targets = int(self._meta["horizon"]), int(self._meta["targets"])
            y = out.reshape(batch, horizon, targets)
            if level is not None:
                y = y + level[:, :, :targets]
            return y[..., 0] if targets == 1 else y
        return out.reshape(batch, self.info["n_out"])

    # ----- streaming ---------------------------------------------------------------
    def new_state(self, batch: int = 1) -> StreamState:
        """State for ``batch`` streams advanced together (zeros)."""
        return StreamState(self, batch)

    def reset(self) -> None:
        """Zero the engine's default stream (the one ``step`` uses without a state)."""
        if self._default is not None:
            self._default.reset()

    def step(self, x_t: Any, state: StreamState | None = None) -> np.ndarray:
        """Advance streams by one step; the state is updated in place.

        Args:
            x_t: (I,) features or one token id for a single stream (state batch 1), or
                (B, I) / (B,) for a state of batch B.
            state: from :meth:`new_state`; None uses the engine's default stream.

        Returns:
            (n_out,) or (B, n_out): head outputs (a forecaster's flat, horizon-major:
            index h * targets + k is the forecast h + 1 steps ahead of target k), or the
            top layer's h (B, H) for a model without head.
        """
        # The hot path of streaming: a few attribute reads, one allocation, one C call.
        if self._no_step:
            if self._windowed:
                raise ValueError(self._no_step)
            raise RuntimeError_(self._no_step)
        if state is None:
            state = self._default_state()
        elif state._engine is not self:
            self._check_state(state)
        if self._tokens:
            arr = self._token_ids(x_t)
        elif type(x_t) is np.ndarray and x_t.dtype == np.float32 and x_t.flags.c_contiguous:
            arr = x_t
        else:  # checked as run() checks: a complex or bool x_t is refused, not cast
            arr = self._inputs(x_t, False)
        # The C side counts values only: without this, a (I, B) x_t (x.T), or B * I values in
        # one row, would step with its values reshuffled across streams and features.
        if not self._tokens and (arr.shape[-1] if arr.ndim else 1) != self._in_size:  # a 0-d x_t: one value
            batch = state.batch
            raise ValueError(f"expected {f'({self._in_size},) or ' if batch == 1 else ''}({batch}, {self._in_size}) "
                             f"features for a state of {batch} stream(s), got shape {np.shape(x_t)}")
        out = np.empty(state._out_shape if arr.ndim <= 1 else (state.batch, self._step_out), np.float32)
        state._stream.step(arr, out)
        return out

    def _step_refusal(self) -> str | None:
        """Why step() cannot run this model, in words (None if it can). The C core answers
        such a step with a bare "not supported for this model" code."""
        if self._windowed:
            return "a forecaster with instance normalisation needs whole windows: use run()"
        both = bidirectional_layer(self.info)
        if both is not None:
            return (f"step() streams unidirectional models only: layer {both} is bidirectional (its backward "
                    "direction reads steps not yet seen); run whole sequences with run()")
        if self.info["head_mode"] == 1 and self.info["pooling"] != 0:
            pooled = {1: "mean", 2: "max"}.get(int(self.info["pooling"]), "pooled")
            return (f"step() cannot stream a {pooled}-pooled classifier (its output summarizes the whole sequence); "
                    "run whole sequences with run(), or use pooling='last' to stream")
        return None

    def _default_state(self) -> StreamState:
        if self._default is None:
            self._default = StreamState(self, 1)
        return self._default
