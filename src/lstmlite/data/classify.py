"""Build classification :class:`TaskData` from raw series or labelled texts.

Both builders share the split logic: class names are the training labels (numeric order
when they are integers), the validation part is carved from the training source with
:func:`~lstmlite.data.splits.stratified_split`, and the test part is either the source's
official test set or a stratified carve (``spec.test_fraction``). Rows are padded at the
end to the longest row over all splits, so every split has the same T.

- Real-valued features are normalised per feature with the mean/std of the TRAIN rows'
  valid steps; padding stays 0.
- Texts are tokenised (``spec.level``), truncated to ``spec.max_len``, and encoded with a
  vocabulary built from the TRAIN rows only.

Example:
    >>> import numpy as np
    >>> from lstmlite.data.spec import DataSpec
    >>> rng = np.random.default_rng(0)
    >>> series = [rng.normal(size=(5 + k % 3, 2)) for k in range(40)]
    >>> data = build_feature_classification("toy", DataSpec("toy.npz"), series, [str(k % 2) for k in range(40)])
    >>> data.train.x.shape, data.val.x.shape, data.test.x.shape
    ((32, 7, 2), (4, 7, 2), (4, 7, 2))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .containers import Split, TaskData
from .errors import DataError
from .readers import TextRecords
from .spec import DataSpec
from .splits import check_known_labels, encode_labels, sort_labels, stratified_split
from .tokenizer import tokenize
from .vocab import PAD_ID, Vocabulary

__all__ = ["build_feature_classification", "build_text_classification", "encode_texts", "normalize_features"]


def _split_indices(y: np.ndarray, spec: DataSpec, has_test: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if has_test:
        train, val = stratified_split(y, [spec.val_fraction], spec.seed)
        return train, val, None
    train, val, test = stratified_split(y, [spec.val_fraction, spec.test_fraction], spec.seed)
    return train, val, test


def _labels(
    train_labels: Sequence[str],
    test_labels: Sequence[str] | None,
    where: str,
    test_where: str | None,
    test_rows: Sequence[int] | None,
    row_word: str,
    given: Sequence[str] | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    if given is not None:  # a trained run's classes: one class, or a class the rows lack, is fine
        check_known_labels(where, train_labels, given)
        check_known_labels(test_where or where, test_labels or [], given)
        class_names = list(given)
    else:
        class_names = sort_labels(train_labels)
    if given is None and len(class_names) < 2:
        raise DataError(f"{where}: only one class ({class_names[0]!r}) in the training data; need at least two")
    y = encode_labels(train_labels, class_names, where=where)
    y_test = None
    if test_labels is not None:
        y_test = encode_labels(test_labels, class_names, where=test_where or where, rows=test_rows, row_word=row_word)
    return class_names, y, y_test


def normalize_features(
    series: Sequence[np.ndarray], mean: Sequence[float], std: Sequence[float], length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise and end-pad (T_i, F) arrays → ``x`` (N, length, F) float32, ``lengths`` (N,) int64.

    Padding stays exactly 0 (after normalisation), so it never looks like data.
    """
    mean_a, std_a = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    n_features = len(mean_a)
    x = np.zeros((len(series), length, n_features), dtype=np.float32)
    lengths = np.zeros(len(series), dtype=np.int64)
    for k, s in enumerate(series):
        n = min(len(s), length)
        x[k, :n] = ((np.asarray(s[:n], np.float64) - mean_a) / std_a).astype(np.float32)
        lengths[k] = n
    return x, lengths


def _feature_stats(series: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    steps = np.concatenate([np.asarray(s, np.float64) for s in series], axis=0)  # (sum T_i, F)
    mean = steps.mean(axis=0)
    std = steps.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)  # a constant feature: centre it, do not blow it up
    return [float(v) for v in mean], [float(v) for v in std]


def build_feature_classification(
    name: str,
    spec: DataSpec,
    train_series: Sequence[np.ndarray],
    train_labels: Sequence[str],
    test_series: Sequence[np.ndarray] | None = None,
    test_labels: Sequence[str] | None = None,
    *,
    where: str | None = None,
    test_where: str | None = None,
    class_names: Sequence[str] | None = None,
) -> TaskData:
    """Classification over real-valued sequences.

    Args:
        name: :attr:`TaskData.name`.
        spec: the resolved spec (``val_fraction``, ``test_fraction``, ``seed``).
        train_series: one (T_i, F) array per row of the training source.
        train_labels: the row labels as strings.
        test_series, test_labels: an official test set, if the source has one.
        where, test_where: names for error messages (the files).
        class_names: label the rows with these classes, in this order (a trained run's)
            instead of the training labels' own; a label outside them is an error.

    Returns:
        TaskData with x (N, T, F) float32, y (N,) int64, lengths (N,) int64 per split.
    """
    where = where or name
    if len(train_series) == 0:
        raise DataError(f"{where}: no training rows")
    n_features = train_series[0].shape[1]
    for source, group in ((where, train_series), (test_where or where, test_series or [])):
        for k, s in enumerate(group):
            if s.ndim != 2 or s.shape[1] != n_features or len(s) == 0:
                raise DataError(f"{source}: row {k + 1} has shape {s.shape}; expected (T>0, {n_features})")
    class_names, y, y_test = _labels(train_labels, test_labels, where, test_where, None, "row", class_names)
    train_idx, val_idx, test_idx = _split_indices(y, spec, test_series is not None)
    mean, std = _feature_stats([train_series[i] for i in train_idx])
    length = max(len(s) for s in [*train_series, *(test_series or [])])

    def make(series: Sequence[np.ndarray], labels: np.ndarray) -> Split:
        x, lengths = normalize_features(series, mean, std, length)
        return Split(x, labels.astype(np.int64), lengths)

    if test_series is not None:
        test = make(test_series, y_test)
    else:
        test = make([train_series[i] for i in test_idx], y[test_idx])
    return TaskData(
        name=name,
        task="classify",
        train=make([train_series[i] for i in train_idx], y[train_idx]),
        val=make([train_series[i] for i in val_idx], y[val_idx]),
        test=test,
        input_size=int(n_features),
        n_classes=len(class_names),
        class_names=class_names,
        vocab=None,
        spec=spec,
        stats={"mean": mean, "std": std},
    )


def encode_texts(
    texts: Sequence[str],
    vocab: Vocabulary,
    level: str = "word",
    max_len: int | None = None,
    length: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Texts → ``x`` (N, T) int64 ids end-padded with 0 and ``lengths`` (N,) int64.

    ``T`` is ``length`` when given (longer rows are cut), else the longest row. Use it to
    feed new text to a trained text classifier with its run's vocabulary.

    Example:
        >>> v = Vocabulary.build([["hi", "there"]])
        >>> encode_texts(["Hi there!", "hi"], v)[0].tolist()
        [[2, 3, 1], [2, 0, 0]]
    """
    rows = [tokenize(t, level)[:max_len] if max_len else tokenize(t, level) for t in texts]
    return _pad_ids([vocab.encode(r) for r in rows], length)


def _pad_ids(rows: Sequence[Sequence[int]], length: int | None) -> tuple[np.ndarray, np.ndarray]:
    length = length if length is not None else max((len(r) for r in rows), default=1)
    x = np.full((len(rows), length), PAD_ID, dtype=np.int64)
    lengths = np.zeros(len(rows), dtype=np.int64)
    for k, r in enumerate(rows):
        r = r[:length]
        x[k, : len(r)] = r
        lengths[k] = len(r)
    return x, lengths


#: The most token ids the padded arrays of one text data set may hold (4 GiB of int64):
#: every row is padded to the longest, so one very long row makes the whole set that wide.
MAX_PADDED_IDS = 1 << 29


def _check_padded_size(rows: Sequence[Sequence[str]], length: int, path: object) -> None:
    """Refuse, before allocating, padded arrays past :data:`MAX_PADDED_IDS`, naming the
    length most rows fit in (``max_len``), rather than running out of memory."""
    if len(rows) * length <= MAX_PADDED_IDS:
        return
    typical = int(np.percentile([len(r) for r in rows], 99))
    raise DataError(f"{path}: padding {len(rows):,} rows to the longest ({length:,} tokens) needs "
                    f"{len(rows) * length * 8 / 2**30:.1f} GiB; cut the rows with --data.max_len (99 % of them have "
                    f"at most {typical:,} tokens)")


def build_text_classification(
    name: str,
    spec: DataSpec,
    train: TextRecords,
    test: TextRecords | None = None,
    *,
    vocab: Vocabulary | None = None,
    class_names: Sequence[str] | None = None,
) -> TaskData:
    """Text classification from labelled texts (CSV, JSONL, TREC).

    Args:
        name: :attr:`TaskData.name`.
        spec: the resolved spec (``level``, ``max_len``, ``max_vocab``, ``min_freq``, fractions, seed).
        train: the training source's records; val (and test without ``test``) are carved from it.
        test: the official test records, if any.
        vocab: encode with this vocabulary (a trained run's) instead of one built from
            the training rows.
        class_names: label the rows with these classes (a trained run's), as for
            :func:`build_feature_classification`.

    Returns:
        TaskData with x (N, T) int64 token ids (0-padded), y (N,) int64, lengths (N,).
    """

    def tokens_of(records: TextRecords) -> list[list[str]]:
        out = []
        for text, line in zip(records.texts, records.lines):
            toks = tokenize(text, spec.level)
            if not toks:
                raise DataError(f"{records.path}: line {line}: the text has no tokens")
            out.append(toks[: spec.max_len] if spec.max_len else toks)
        return out

    if len(train) == 0:
        raise DataError(f"{train.path}: no rows")
    train_tokens = tokens_of(train)
    test_tokens = tokens_of(test) if test is not None else None
    class_names, y, y_test = _labels(
        train.labels,
        None if test is None else test.labels,
        train.path,
        None if test is None else test.path,
        None if test is None else test.lines,
        "line",
        class_names,
    )
    train_idx, val_idx, test_idx = _split_indices(y, spec, test is not None)
    if vocab is None:
        vocab = Vocabulary.build((train_tokens[i] for i in train_idx), spec.max_vocab, spec.min_freq)
    all_rows = [*train_tokens, *(test_tokens or [])]
    length = max(len(t) for t in all_rows)
    _check_padded_size(all_rows, length, train.path)

    def make(rows: Sequence[Sequence[str]], labels: np.ndarray) -> Split:
        x, lengths = _pad_ids([vocab.encode(r) for r in rows], length)
        return Split(x, labels.astype(np.int64), lengths)

    if test is not None:
        test_split = make(test_tokens, y_test)
    else:
        test_split = make([train_tokens[i] for i in test_idx], y[test_idx])
    return TaskData(
        name=name,
        task="classify",
        train=make([train_tokens[i] for i in train_idx], y[train_idx]),
        val=make([train_tokens[i] for i in val_idx], y[val_idx]),
        test=test_split,
        input_size=0,
        n_classes=len(class_names),
        class_names=class_names,
        vocab=vocab,
        spec=spec,
        stats={},
    )
