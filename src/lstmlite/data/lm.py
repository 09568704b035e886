"""Build language-modelling :class:`TaskData` from a text stream.

The token stream is cut, in order and without shuffling, into train | val | test: the
last ``test_fraction`` of the tokens is test (unless a separate test file is given),
the ``val_fraction`` before it is val. Each part is then cut into non-overlapping
windows of ``seq_len`` inputs whose targets are the next tokens (a tail shorter than a
window is dropped; no window crosses a part boundary). The vocabulary comes from the
train part only; unseen tokens in val/test become ``<unk>``.

Example:
    >>> from lstmlite.data.spec import DataSpec
    >>> data = build_language_model("toy", DataSpec("toy.txt", seq_len=4), "abcdefghij" * 10)
    >>> data.train.x.shape, data.train.x[0].tolist(), data.train.y[0].tolist()
    ((19, 4), [2, 3, 4, 5], [3, 4, 5, 6])
"""

from __future__ import annotations

import numpy as np

from .containers import Split, TaskData
from .errors import DataError
from .spec import DataSpec
from .splits import contiguous_parts
from .tokenizer import tokenize
from .vocab import Vocabulary

__all__ = ["build_language_model", "stream_windows"]


def stream_windows(ids: np.ndarray, seq_len: int) -> Split:
    """Non-overlapping next-token windows: x[i] = ids[iL:(i+1)L], y[i] = ids[iL+1:(i+1)L+1].

    Args:
        ids: (n,) int64 token ids.
        seq_len: L.

    Returns:
        A split with x, y (N, L) int64, N = (n - 1) // L, lengths all L.
    """
    n_windows = max((len(ids) - 1) // seq_len, 0)
    used = n_windows * seq_len
    x = np.ascontiguousarray(ids[:used].reshape(n_windows, seq_len), dtype=np.int64)
    y = np.ascontiguousarray(ids[1 : used + 1].reshape(n_windows, seq_len), dtype=np.int64)
    return Split(x, y, np.full(n_windows, seq_len, dtype=np.int64))


def build_language_model(
    name: str,
    spec: DataSpec,
    text: str,
    test_text: str | None = None,
    *,
    where: str | None = None,
    test_where: str | None = None,
    vocab: Vocabulary | None = None,
) -> TaskData:
    """Language modelling over ``text`` (and a separate ``test_text``, if given).

    Args:
        name: :attr:`TaskData.name`.
        spec: the resolved spec (``level``, ``seq_len``, ``max_vocab``, ``min_freq``, fractions).
        text: the whole stream (newlines already ``\\n``).
        test_text: a separate test stream; then ``text`` is split into train | val only.
        where, test_where: names for error messages (the files).
        vocab: encode with this vocabulary (a trained run's) instead of one built from
            the train part.

    Returns:
        TaskData with x, y (N, seq_len) int64 per split, ``stats["tokens"]`` = tokens per part.
    """
    where = where or name
    tokens = tokenize(text, spec.level, keep_newlines=True)
    if not tokens:
        raise DataError(f"{where}: no text")
    test_fraction = 0.0 if test_text is not None else spec.test_fraction
    train_end, val_end = contiguous_parts(len(tokens), spec.val_fraction, test_fraction)
    if vocab is None:
        vocab = Vocabulary.build([tokens[:train_end]], spec.max_vocab, spec.min_freq)
    ids = vocab.encode_array(tokens)
    parts = {"train": ids[:train_end], "val": ids[train_end:val_end], "test": ids[val_end:]}
    if test_text is not None:
        test_tokens = tokenize(test_text, spec.level, keep_newlines=True)
        if not test_tokens:
            raise DataError(f"{test_where}: no text")
        parts["test"] = vocab.encode_array(test_tokens)
    wanted = {"train": True, "val": spec.val_fraction > 0, "test": test_text is not None or test_fraction > 0}
    splits = {}
    for part, part_ids in parts.items():
        splits[part] = stream_windows(part_ids, spec.seq_len)
        if wanted[part] and len(splits[part]) == 0:
            source = test_where if part == "test" and test_text is not None else where
            raise DataError(
                f"{source}: the {part} part has {len(part_ids)} tokens, fewer than seq_len + 1 = "
                f"{spec.seq_len + 1}; use a smaller seq_len or a larger fraction"
            )
    return TaskData(
        name=name,
        task="lm",
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        input_size=0,
        n_classes=0,
        class_names=[],
        vocab=vocab,
        spec=spec,
        stats={"tokens": {part: int(len(part_ids)) for part, part_ids in parts.items()}},
    )
