"""Decoding for sequence-to-sequence models: greedy and beam search with length limits.

The search is written once, over a *step function*, so the same code decodes a PyTorch
:class:`~lstmlite.nn.Seq2Seq` and the native runtime's decoder step
(:mod:`lstmlite.runtime.seq2seq`):

``step(tokens (K,), state) -> (log_probs (K, V) NumPy, new_state)`` advances K
hypotheses by one token; ``reorder(state, index (K',)) -> state`` keeps and copies
rows of a state.

A hypothesis is finished when it emits ``</s>`` (``eos``) or reaches ``max_len``
tokens (then it is cut there, ``</s>`` not emitted); ``min_len`` forbids ``</s>``
before that many tokens. Its score is the sum of its tokens' log-probabilities
(``</s>`` included), divided by ``length ** length_penalty`` when that is non-zero.

Example:
    >>> import numpy as np
    >>> table = np.log(np.array([[0.1, 0.6, 0.3], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]]))
    >>> step = lambda tokens, state: (table[tokens], state)      # the next token depends on the last
    >>> beam_search(step, None, lambda s, i: s, bos=0, eos=2, beam=2, max_len=3)[0]
    [1]
    >>> greedy_search(step, None, bos=0, eos=2, max_len=3)
    [1]
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

__all__ = ["beam_search", "greedy_search", "exhaustive_search", "StepFn", "decode_torch", "decode_seq2seq", "texts_of",
           "encode_sources"]

log = logging.getLogger(__name__)

StepFn = Callable[[np.ndarray, Any], tuple[np.ndarray, Any]]
ReorderFn = Callable[[Any, np.ndarray], Any]


def _finish_score(score: float, length: int, length_penalty: float) -> float:
    return score / (max(length, 1) ** length_penalty) if length_penalty else score


def _allowed(log_probs: np.ndarray, length: int, eos: int, min_len: int) -> np.ndarray:
    if length < min_len:
        log_probs = log_probs.copy()
        log_probs[..., eos] = -np.inf
    return log_probs


def decode_limits(max_len: int | None, min_len: int, default: int) -> int:
    """The ``max_len`` a decoder runs to: ``default`` (the model's ``max_target_len``) when
    None; a max_len below 1 or a min_len below 0 is an error (0 was taken for the default
    and -1 decoded nothing, silently).

    Example:
        >>> decode_limits(None, 0, 12), decode_limits(5, 2, 12)
        (12, 5)
    """
    limit = default if max_len is None else max_len
    if isinstance(limit, bool) or not float(limit).is_integer() or limit < 1:
        raise ValueError(f"max_len must be a whole number of tokens, at least 1, got {max_len!r}")
    if isinstance(min_len, bool) or not float(min_len).is_integer() or min_len < 0:
        raise ValueError(f"min_len must be a whole number of tokens, at least 0, got {min_len!r}")
    return int(limit)


def greedy_search(step: StepFn, state: Any, bos: int, eos: int, max_len: int, min_len: int = 0) -> list[int]:
    """The most likely next token each step, from ``bos`` until ``eos`` or ``max_len``
    tokens; returns the tokens without ``eos``."""
    decode_limits(max_len, min_len, max_len)
    tokens: list[int] = []
    prev = np.array([bos], np.int64)
    while len(tokens) < max_len:
        log_probs, state = step(prev, state)
        best = int(np.argmax(_allowed(np.asarray(log_probs)[0], len(tokens), eos, min_len)))
        if best == eos:
            break
        tokens.append(best)
        prev = np.array([best], np.int64)
    return tokens


def beam_search(step: StepFn, state: Any, reorder: ReorderFn, bos: int, eos: int, beam: int = 4,
                max_len: int = 64, min_len: int = 0, length_penalty: float = 0.0) -> tuple[list[int], float]:
    """Beam search: keep the ``beam`` best partial hypotheses each step.

    Args:
        step, reorder: see the module doc; ``state`` is one hypothesis's state (batch 1).
        bos, eos: start and end token ids.
        beam: hypotheses kept per step (1 is greedy search).
        max_len: most tokens in a hypothesis (``eos`` not counted).
        min_len: fewest tokens before ``eos`` may be emitted.
        length_penalty: finished scores are divided by ``length ** length_penalty``
            (0: plain sum of log-probabilities).

    Returns:
        (tokens without ``eos``, score) of the best finished hypothesis.

    Each step, every hypothesis's ``</s>`` extension is finished (it takes no place in
    the beam) and the ``beam`` best other extensions stay alive. The search stops when
    the best finished hypothesis scores at least as well as every live one (with
    ``length_penalty`` 0 scores only fall, so none could overtake it) or at ``max_len``.
    Width 1 is not quite greedy search: it returns the best hypothesis that finished
    on the way, not only the last.
    """
    if beam < 1 or max_len < 1:
        raise ValueError(f"beam and max_len must be at least 1, got beam={beam}, max_len={max_len}")
    alive: list[list[int]] = [[]]
    scores = np.zeros(1)
    prev = np.array([bos], np.int64)
    finished: list[tuple[float, list[int]]] = []
    for length in range(max_len):
        log_probs, state = step(prev, state)
        log_probs = _allowed(np.asarray(log_probs, np.float64), length, eos, min_len)
        total = scores[:, None] + log_probs  # (K, V)
        # every row's </s> finishes a hypothesis (it takes no place in the beam) ...
        for row in range(total.shape[0]):
            if np.isfinite(total[row, eos]):
                finished.append((_finish_score(float(total[row, eos]), length + 1, length_penalty), alive[row]))
        # ... and the `beam` best other extensions stay alive
        total[:, eos] = -np.inf
        flat = total.reshape(-1)
        order = np.argsort(-flat, kind="stable")[:beam]
        order = order[np.isfinite(flat[order])]
        keep_rows = [int(i) // total.shape[1] for i in order]
        keep_tokens = [int(i) % total.shape[1] for i in order]
        keep_scores = [float(flat[i]) for i in order]
        if not keep_rows:
            break
        if length + 1 == max_len:  # the length limit: cut here, unfinished
            finished += [(_finish_score(s, max_len, length_penalty), alive[r] + [t])
                         for r, t, s in zip(keep_rows, keep_tokens, keep_scores)]
            break
        alive = [alive[r] + [t] for r, t in zip(keep_rows, keep_tokens)]
        scores = np.array(keep_scores)
        state = reorder(state, np.array(keep_rows, np.int64))
        prev = np.array(keep_tokens, np.int64)
        best_done = max((s for s, _ in finished), default=-np.inf)
        if not length_penalty and best_done >= scores.max():
            break
    if not finished:
        return [], -np.inf
    score, tokens = max(finished, key=lambda f: f[0])
    return list(tokens), float(score)


def exhaustive_search(step: StepFn, state: Any, reorder: ReorderFn, bos: int, eos: int, max_len: int,
                      tokens: list[int], min_len: int = 0) -> tuple[list[int], float]:
    """Every hypothesis over ``tokens`` (plus ``eos``) up to ``max_len``, scored as
    :func:`beam_search` scores them; the best. Exponential: the oracle for tiny tests."""
    best: tuple[float, list[int]] = (-np.inf, [])

    def visit(prefix: list[int], score: float, prev: int, st: Any) -> None:
        nonlocal best
        log_probs, st = step(np.array([prev], np.int64), st)
        log_probs = _allowed(np.asarray(log_probs, np.float64)[0], len(prefix), eos, min_len)
        end = score + log_probs[eos]
        if end > best[0]:
            best = (end, list(prefix))
        for token in tokens:
            s = score + log_probs[token]
            if len(prefix) + 1 == max_len:
                if s > best[0]:
                    best = (s, prefix + [token])
            else:
                visit(prefix + [token], s, token, reorder(st, np.array([0], np.int64)))

    visit([], 0.0, bos, state)
    return best[1], float(best[0])


# ----- PyTorch models --------------------------------------------------------------------
def decode_torch(model: Any, x: np.ndarray, lengths: np.ndarray, decoder: str = "greedy", beam: int = 4,
                 max_len: int | None = None, min_len: int = 0, batch_size: int = 256) -> list[list[int]]:
    """Decode source rows x (N, T) with a :class:`~lstmlite.nn.Seq2Seq` → token ids per row.

    ``greedy`` runs batched (every row at once, stopped rows masked); ``beam`` searches
    each row with :func:`beam_search` (width ``beam``). ``max_len`` defaults to the
    model's ``max_target_len``.
    """
    import torch

    from .nn.seq2seq import BOS_ID, EOS_ID, select_state

    max_len = decode_limits(max_len, min_len, model.max_target_len)
    was_training = model.training
    model.eval()
    out: list[list[int]] = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[start:start + batch_size]), dtype=torch.long)
            lb = torch.as_tensor(np.asarray(lengths[start:start + batch_size]), dtype=torch.long)
            memory, state = model.encode(xb, lb)
            if decoder == "greedy":
                out += _greedy_batch(model, memory, state, max_len, min_len)
                continue
            if decoder != "beam":
                raise ValueError(f"decoder must be greedy or beam, got {decoder!r}")
            for row in range(len(xb)):
                mem = memory.select(torch.tensor([row]))
                st = select_state(state, torch.tensor([row]))

                def step(tokens: np.ndarray, s: Any, mem: Any = mem) -> tuple[np.ndarray, Any]:
                    index = torch.zeros(len(tokens), dtype=torch.long)
                    m = mem.select(index) if len(tokens) > 1 else mem
                    logits, s, _ = model.step(torch.as_tensor(tokens), s, m)
                    return logits.log_softmax(-1).numpy(), s

                def reorder(s: Any, index: np.ndarray) -> Any:
                    return select_state(s, torch.as_tensor(index))

                out.append(beam_search(step, st, reorder, BOS_ID, EOS_ID, beam, max_len, min_len)[0])
    model.train(was_training)
    return out


decode_seq2seq = decode_torch  # the package-root name


def _greedy_batch(model: Any, memory: Any, state: Any, max_len: int, min_len: int) -> list[list[int]]:
    import torch

    from .nn.seq2seq import BOS_ID, EOS_ID

    batch = memory.values.shape[0]
    prev = torch.full((batch,), BOS_ID, dtype=torch.long)
    done = torch.zeros(batch, dtype=torch.bool)
    rows: list[list[int]] = [[] for _ in range(batch)]
    for length in range(max_len):
        logits, state, _ = model.step(prev, state, memory)
        if length < min_len:
            logits[:, EOS_ID] = -float("inf")
        prev = logits.argmax(-1)
        done |= prev == EOS_ID
        for i in torch.nonzero(~done).flatten().tolist():
            rows[i].append(int(prev[i]))
        if bool(done.all()):
            break
    return rows


def encode_sources(texts: list[str], tokens: list[str], level: str = "char") -> tuple[np.ndarray, np.ndarray]:
    """Source strings → (ids (N, T) int64, 0-padded; lengths (N,)) in a run's vocabulary
    (``tokens``: id → token, e.g. ``Vocabulary.from_dict(run.vocab).tokens``); unknown
    tokens become ``<unk>`` (1).

    Example:
        >>> x, n = encode_sources(["ab", "b"], ["<pad>", "<unk>", "<s>", "</s>", "a", "b"])
        >>> x.tolist(), n.tolist()
        ([[4, 5], [5, 0]], [2, 1])
    """
    ids = {t: i for i, t in enumerate(tokens)}
    rows = [[ids.get(t, 1) for t in (list(text) if level == "char" else text.split())] or [1] for text in texts]
    x = np.zeros((len(rows), max(len(r) for r in rows)), np.int64)
    for i, row in enumerate(rows):
        x[i, :len(row)] = row
    return x, np.array([len(r) for r in rows], np.int64)


def texts_of(rows: list[list[int]], tokens: list[str], level: str = "char") -> list[str]:
    """Token-id rows → strings (chars joined, words joined by spaces); specials dropped."""
    sep = "" if level == "char" else " "
    return [sep.join(tokens[i] for i in row if i > 3) for row in rows]
