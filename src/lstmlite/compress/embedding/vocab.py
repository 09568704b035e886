"""The data side of vocabulary pruning: the pruned vocabulary and re-encoded splits.

After :class:`~lstmlite.compress.embedding.VocabPruneConfig` keeps ids
``0 .. keep-1``, every id ≥ keep in the inputs (and, for a language model, in the
targets) becomes ``<unk>`` (1). Because an lstmlite vocabulary is ordered by training
frequency, this equals re-loading the data with ``max_vocab=keep``.

Example:
    >>> import numpy as np
    >>> remap_ids(np.array([[0, 1, 5, 2, 9]]), keep=4).tolist()
    [[0, 1, 1, 2, 1]]
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

__all__ = ["remap_ids", "prune_vocab", "remap_data", "token_counts", "keep_for_coverage"]

log = logging.getLogger(__name__)

UNK_ID = 1


def remap_ids(ids: np.ndarray, keep: int, unk_id: int = UNK_ID) -> np.ndarray:
    """A copy of ``ids`` with every id ≥ ``keep`` replaced by ``unk_id``."""
    ids = np.asarray(ids)
    return np.where(ids >= keep, np.asarray(unk_id, dtype=ids.dtype), ids)


def prune_vocab(vocab: Any, keep: int) -> Any:
    """The first ``keep`` tokens of a :class:`~lstmlite.data.Vocabulary` or of its
    ``to_dict()`` form (``vocab.json``); returns the same kind it was given."""
    from ...data import Vocabulary

    if isinstance(vocab, Vocabulary):
        return Vocabulary(vocab.tokens[:keep])
    if isinstance(vocab, dict):
        return Vocabulary(Vocabulary.from_dict(vocab).tokens[:keep]).to_dict()
    raise TypeError(f"expected a Vocabulary or its dict form, got {type(vocab).__name__}")


def token_counts(split: Any, size: int) -> np.ndarray:
    """(size,) occurrences of each id in a split's inputs (padding excluded by length)."""
    x = np.asarray(split.x)
    lengths = np.asarray(split.lengths)
    valid = np.arange(x.shape[1])[None, :] < lengths[:, None]
    return np.bincount(x[valid].ravel(), minlength=size)[:size]


def keep_for_coverage(data: Any, coverage: float) -> int:
    """The smallest ``keep`` whose ids ``0 .. keep-1`` cover ``coverage`` of the training tokens.

    Coverage counts every non-padding input token of the training split; ``<unk>``
    occurrences count as covered (they stay ``<unk>``). Because vocabularies are
    frequency-ordered this is the vocabulary-pruning size a coverage budget asks for,
    derived from the data rather than fixed.

    Args:
        data: a :class:`~lstmlite.data.TaskData` with token input.
        coverage: the fraction of training tokens to keep, in (0, 1].

    Returns:
        ``keep`` (≥ 3, ≤ the vocabulary size).

    Example:
        >>> from types import SimpleNamespace
        >>> split = SimpleNamespace(x=np.array([[2, 2, 2, 3, 4, 5]]), lengths=np.array([6]))
        >>> keep_for_coverage(SimpleNamespace(train=split, vocab_size=6, vocab=list("abcdef")), 0.65)
        4
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage!r}")
    if getattr(data, "vocab", None) is None or not np.issubdtype(np.asarray(data.train.x).dtype, np.integer):
        raise ValueError("vocabulary coverage needs token data; this data has real-valued input (no vocabulary)")
    size = int(data.vocab_size) if getattr(data, "vocab_size", 0) else int(np.asarray(data.train.x).max()) + 1
    counts = token_counts(data.train, size).astype(np.float64)
    counts[0] = 0  # padding is not text
    total = counts.sum()
    if total == 0:
        return size
    covered = np.cumsum(counts) / total  # covered[k - 1]: share of ids < k
    keep = int(np.searchsorted(covered, coverage - 1e-12) + 1)
    return max(3, min(keep, size))


def _warn_if_not_frequency_ordered(data: Any, keep: int) -> None:
    size = int(data.vocab_size) if data.vocab_size else int(np.asarray(data.train.x).max()) + 1
    if keep >= size:
        return
    counts = token_counts(data.train, size)
    kept, dropped = counts[2:keep], counts[keep:]
    if len(kept) and len(dropped) and kept.min() < dropped.max():
        log.warning("the vocabulary is not ordered by training frequency (a kept token occurs %d times, a dropped "
                    "one %d): vocab_prune keeps the first %d ids", int(kept.min()), int(dropped.max()), keep)


def remap_data(data: Any, keep: int) -> Any:
    """A copy of a :class:`~lstmlite.data.TaskData` encoded with the pruned vocabulary.

    Inputs of every split (and targets, for ``lm``) have ids ≥ keep set to ``<unk>``;
    ``vocab`` is cut to ``keep`` tokens and the spec's ``max_vocab`` set to ``keep``
    (so that ``load_data`` of the new spec rebuilds the same arrays).
    """
    if data.vocab is None:
        raise ValueError("vocabulary pruning needs token data (this data has no vocabulary)")
    _warn_if_not_frequency_ordered(data, keep)
    splits = {}
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        y = remap_ids(split.y, keep) if data.task == "lm" else split.y
        splits[name] = dataclasses.replace(split, x=remap_ids(split.x, keep), y=y)
    vocab = data.vocab
    try:
        vocab = prune_vocab(vocab, keep)
    except TypeError:  # a plain token list (tests, imported runs)
        vocab = list(vocab)[:keep]
    spec = data.spec
    if hasattr(spec, "replace") and getattr(spec, "max_vocab", keep) > keep:
        spec = spec.replace(max_vocab=keep)
    return dataclasses.replace(data, vocab=vocab, spec=spec, **splits)
