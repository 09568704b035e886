"""CTC decoding in NumPy: greedy (whole or frame by frame) and prefix beam search.

Shared by the PyTorch side (evaluation in :mod:`lstmlite.train`) and the native
runtime's streaming path (:mod:`lstmlite.runtime.stream`), so it imports neither
torch nor the C extension. Label 0 is the CTC blank throughout (``BLANK``).

A CTC model emits per frame a distribution over ``C`` labels (blank + symbols). A
*path* (one label per frame) maps to a transcript by collapsing repeats and then
dropping blanks: ``[a, a, -, a, b, -] → "aab"``.

Example:
    >>> import numpy as np
    >>> logits = np.log(np.array([[.1, .8, .1], [.1, .8, .1], [.9, .05, .05], [.1, .1, .8]]))
    >>> greedy_decode(logits)
    [1, 2]
    >>> stream = GreedyStream()
    >>> [stream.push(frame) for frame in logits]
    [1, None, None, 2]
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

__all__ = ["BLANK", "collapse", "greedy_decode", "GreedyStream", "BeamStream", "beam_decode", "beam_search", "log_softmax",
           "labels_to_text"]

BLANK = 0


def collapse(path: Iterable[int], blank: int = BLANK) -> list[int]:
    """A frame path (T,) → its label sequence: merge repeats, then drop blanks.

    Example:
        >>> collapse([1, 1, 0, 1, 2, 0])
        [1, 1, 2]
    """
    out: list[int] = []
    previous = None
    for label in path:
        label = int(label)
        if label != previous and label != blank:
            out.append(label)
        previous = label
    return out


def greedy_decode(scores: np.ndarray, length: int | None = None, blank: int = BLANK) -> list[int]:
    """Best path decoding: argmax per frame, then :func:`collapse`.

    Args:
        scores: (T, C) logits or log-probabilities (argmax is the same for both).
        length: valid frames (the rest is padding); None = all T.
    """
    scores = np.asarray(scores)
    if length is not None:
        scores = scores[: int(length)]
    return collapse(scores.argmax(-1), blank)


class GreedyStream:
    """Greedy CTC decoding one frame at a time, for streaming recognition.

    ``push(scores_t)`` takes one frame's (C,) scores and returns the label it emits,
    or None (blank, or a repeat of the previous frame's label). Concatenating the
    emitted labels of all frames equals :func:`greedy_decode` of the whole sequence
    because the only state collapsing needs is the previous frame's argmax.
    """

    __slots__ = ("blank", "previous", "labels")

    def __init__(self, blank: int = BLANK) -> None:
        self.blank = blank
        self.previous = -1
        self.labels: list[int] = []

    def reset(self) -> None:
        self.previous = -1
        self.labels = []

    def push(self, scores_t: np.ndarray) -> int | None:
        label = int(np.argmax(scores_t))
        emitted = None
        if label != self.previous and label != self.blank:
            emitted = label
            self.labels.append(label)
        self.previous = label
        return emitted


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Log-probabilities over the last axis, computed stably."""
    scores = np.asarray(scores, np.float64)
    shifted = scores - scores.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _logadd(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def beam_decode(scores: np.ndarray, beam: int = 8, length: int | None = None, blank: int = BLANK,
                prune: float = -12.0) -> list[int]:
    """The most probable label sequence of :func:`beam_search` (same arguments)."""
    return beam_search(scores, beam, length, blank, prune)[0][0]


def beam_search(scores: np.ndarray, beam: int = 8, length: int | None = None, blank: int = BLANK,
                prune: float = -12.0) -> list[tuple[list[int], float]]:
    """CTC prefix beam search (Hannun et al. 2014) without a language model.

    Keeps the ``beam`` most probable *prefixes* (label sequences), each with two
    probabilities: of the paths ending in blank and of those ending in its last label,
    so ``a - a`` (two a's) and ``a a`` (one a) are told apart. Unlike greedy decoding it
    sums over the many paths of one transcript, so it can find a more probable
    transcript than the single best path's. The frames go through :class:`BeamStream`,
    so a streamed beam decode gives exactly this.

    Args:
        scores: (T, C) logits or log-probabilities (normalised here).
        beam: prefixes kept per frame.
        length: valid frames; None = all.
        prune: labels with log-probability below this at a frame are skipped (speed).

    Returns:
        up to ``beam`` ``(labels, log P(labels))`` pairs, most probable first; with a
        beam that keeps every prefix and no pruning, each log P is exact (the sum over
        all frame paths that collapse to ``labels``).
    """
    scores = np.asarray(scores)
    if length is not None:
        scores = scores[: int(length)]
    stream = BeamStream(beam, blank, prune)
    for frame in scores:
        stream.push(frame)
    return stream.results()


class BeamStream:
    """CTC prefix beam search one frame at a time (see :func:`beam_search`).

    ``push(scores_t)`` takes one frame's (C,) logits (or log-probabilities) and moves
    the beam on; ``labels`` is the most probable prefix so far (a live partial
    transcript, which may still change), :meth:`results` the ranked prefixes.

    Example:
        >>> stream = BeamStream(beam=4)
        >>> for frame in np.log(np.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.1, 0.1, 0.8]])):
        ...     stream.push(frame)
        >>> stream.labels
        [1, 2]
    """

    def __init__(self, beam: int = 8, blank: int = BLANK, prune: float = -12.0) -> None:
        if beam < 1:
            raise ValueError(f"beam {beam}: the beam width must be at least 1")
        self.beam, self.blank, self.prune = beam, blank, prune
        self.reset()

    def reset(self) -> None:
        """A new utterance: the empty prefix only."""
        neg = -math.inf
        self.beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, neg)}  # prefix → (log p_blank, log p_label)

    @property
    def labels(self) -> list[int]:
        return self.results()[0][0]

    def push(self, scores_t: np.ndarray) -> None:
        frame = log_softmax(scores_t)
        neg, blank = -math.inf, self.blank
        candidates = [c for c in range(frame.shape[0]) if frame[c] >= self.prune] or [int(frame.argmax())]
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], pb: float, pnb: float) -> None:
            cur = nxt.setdefault(prefix, [neg, neg])
            cur[0] = _logadd(cur[0], pb)
            cur[1] = _logadd(cur[1], pnb)

        for prefix, (pb, pnb) in self.beams.items():
            total = _logadd(pb, pnb)
            for c in candidates:
                p = float(frame[c])
                if c == blank:
                    add(prefix, total + p, neg)
                    continue
                last = prefix[-1] if prefix else None
                extended = prefix + (c,)
                if c == last:
                    # a repeat only extends the prefix across a blank; otherwise it merges
                    add(extended, neg, pb + p)
                    add(prefix, neg, pnb + p)
                else:
                    add(extended, neg, total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logadd(*kv[1]), reverse=True)[: self.beam]
        self.beams = {k: (v[0], v[1]) for k, v in ranked}

    def results(self) -> list[tuple[list[int], float]]:
        """Up to ``beam`` ``(labels, log P)`` pairs, most probable first."""
        final = sorted(((list(k), _logadd(*v)) for k, v in self.beams.items()), key=lambda kv: kv[1], reverse=True)
        # prefixes no path can produce (e.g. "a a" in too few frames for the blank between)
        # are kept by the bookkeeping at probability 0; they are not results
        return [kv for kv in final if kv[1] > -math.inf] or final[:1]


def labels_to_text(labels: Sequence[int], alphabet: Sequence[str]) -> str:
    """Label ids → text through the run's alphabet (``alphabet[0]`` is the blank)."""
    return "".join(alphabet[i] for i in labels)
