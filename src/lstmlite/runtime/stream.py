"""Streaming CTC recognition over the native runtime: one frame in, labels out.

:class:`StreamingCTC` feeds each feature frame to :meth:`Engine.step` (the LSTM state
carried in a :class:`StreamState`, the per-frame head computed in C) and decodes as it
goes: greedily (:class:`lstmlite.ctc.GreedyStream`: a label is emitted the frame it
becomes certain, with no look-ahead) or by prefix beam search
(:class:`lstmlite.ctc.BeamStream`: the best prefix so far, final at the last frame).
:func:`measure_streaming` times that loop per frame and reports the real-time factor
(processing time / audio time; below 1 keeps up with live audio); :func:`time_streaming`
times any other recognizer's loop the same way.

Example:
    >>> import numpy as np, torch
    >>> from lstmlite.nn import SequenceTagger
    >>> engine = Engine.from_torch(SequenceTagger(input_size=4, hidden_size=8, n_classes=5))
    >>> rec = StreamingCTC(engine)
    >>> labels = rec.decode(np.zeros((30, 4), np.float32))
    >>> stats = measure_streaming(engine, [np.zeros((30, 4), np.float32)], hop_s=0.01)
    >>> stats["frames"], stats["rtf"] < 1.0
    (30, True)
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from ..ctc import BLANK, BeamStream, GreedyStream
from .engine import Engine, bidirectional_layer

__all__ = ["StreamingCTC", "measure_streaming", "time_streaming"]


class StreamingCTC:
    """CTC decoding of one audio stream, frame by frame, over an :class:`Engine`.

    Args:
        engine: a unidirectional per-step tagger (head ``each``) loaded in the runtime; the
            state is the engine's own :class:`StreamState` for this stream. A bidirectional
            model is refused (ValueError): it needs the whole utterance.
        blank: the blank label id (0 in lstmlite's CTC models).
        decoder: ``"greedy"`` (best path, labels final as emitted) or ``"beam"``
            (prefix beam search over the runtime's per-frame logits, equal to
            :func:`lstmlite.ctc.beam_search` of the whole utterance).
        beam: beam width for ``decoder="beam"``.

    ``push(frame)``: frame (F,) float32 → greedy: the label id emitted at this frame or
    None; beam: None (read ``labels``). ``labels``: greedy: every label emitted since
    the last :meth:`reset`; beam: the best prefix so far.
    """

    def __init__(self, engine: Engine, blank: int = BLANK, decoder: str = "greedy", beam: int = 8) -> None:
        if engine.info["head_mode"] != 2:
            raise ValueError("streaming CTC needs a model with a per-step head (a tag/ctc model)")
        both = bidirectional_layer(engine.info)
        if both is not None:  # the runtime's step cannot run them; say so here, not as a bare runtime error code
            raise ValueError(f"streaming CTC needs a unidirectional model: layer {both} is bidirectional (its "
                             "backward direction reads frames not yet heard); decode whole utterances instead "
                             "(Engine.run, or `lstmlite eval RUN` without --stream), or train a unidirectional "
                             "model (the ctc default) to stream")
        if decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder {decoder!r}: choose 'greedy' or 'beam'")
        self.engine = engine
        self.state = engine.new_state()
        self.decoder: GreedyStream | BeamStream = (GreedyStream(blank) if decoder == "greedy"
                                                   else BeamStream(beam, blank))

    @property
    def labels(self) -> list[int]:
        return self.decoder.labels

    def reset(self) -> None:
        """Start a new utterance: zero the LSTM state and the decoder."""
        self.state.reset()
        self.decoder.reset()

    def push(self, frame: np.ndarray) -> int | None:
        return self.decoder.push(self.engine.step(frame, self.state))

    def decode(self, frames: np.ndarray) -> list[int]:
        """A whole utterance (T, F), fed one frame at a time from a fresh state."""
        self.reset()
        for frame in np.ascontiguousarray(frames, dtype=np.float32):
            self.push(frame)
        return list(self.labels)


def measure_streaming(engine: Engine, utterances: Sequence[np.ndarray], hop_s: float,
                      repeats: int = 1, warmup: bool = True, decoder: str = "greedy",
                      beam: int = 8) -> dict[str, float]:
    """Latency per frame and real-time factor of :class:`StreamingCTC` on ``utterances``
    (``decoder``/``beam`` as :class:`StreamingCTC`; see :func:`time_streaming`)."""
    rec = StreamingCTC(engine, decoder=decoder, beam=beam)
    return time_streaming(rec.push, rec.reset, utterances, hop_s, repeats, warmup)


def time_streaming(push: Callable[[np.ndarray], object], reset: Callable[[], None],
                   utterances: Sequence[np.ndarray], hop_s: float, repeats: int = 1,
                   warmup: bool = True) -> dict[str, float]:
    """Time any streaming recognizer: ``reset()`` before each utterance, ``push(frame)``
    for each (F,) float32 frame (the runtime's, or a peer's step plus its decoder, so
    that they are measured alike).

    Each frame's time covers the whole ``push`` (for :class:`StreamingCTC` the runtime
    step and the decoder update: what a live recognizer spends per frame). The real-time
    factor is the time to stream all utterances divided by the audio they represent
    (``frames * hop_s``); with ``repeats`` > 1 it is the median over the repeats, so one
    pass disturbed by another process on a shared machine does not decide it. ``warmup``
    streams the first utterance once untimed (first-touch page faults and caches are not
    the model's speed).

    Returns:
        ``frames`` (per repeat), ``audio_seconds`` (per repeat), ``us_per_frame`` (mean
        over every timed frame), ``p50_us``, ``p90_us``, ``rtf``.
    """
    if not hop_s > 0:  # a rate of 0 or less makes the real-time factor inf or negative ("keeps up")
        raise ValueError(f"hop_s must be the positive seconds of audio per frame, got {hop_s!r}")
    frames_of = [np.ascontiguousarray(u, dtype=np.float32) for u in utterances]
    if not sum(len(frames) for frames in frames_of):  # nothing to time: no mean, no percentile
        raise ValueError("time_streaming needs at least one utterance of at least one frame")
    if warmup and frames_of:
        reset()
        for frame in frames_of[0]:
            push(frame)
    clock = time.perf_counter_ns
    times: list[int] = []
    totals: list[int] = []
    for _ in range(max(1, repeats)):
        first = len(times)
        for frames in frames_of:
            reset()
            for frame in frames:
                start = clock()
                push(frame)
                times.append(clock() - start)
        totals.append(sum(times[first:]))
    us = np.asarray(times, np.float64) / 1e3
    frames = len(us) // max(1, repeats)
    audio = frames * hop_s
    return {"frames": int(frames), "audio_seconds": float(audio), "us_per_frame": float(us.mean()),
            "p50_us": float(np.percentile(us, 50)), "p90_us": float(np.percentile(us, 90)),
            "rtf": float(np.median(totals) / 1e9 / audio)}
