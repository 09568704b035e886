"""Sequence tagging data (``--task tag``): one label per token, or per frame.

Files:

- ``.tsv`` (CoNLL style): ``token<TAB>label`` a line, a blank line between sequences;
  further columns are ignored, ``#`` comment lines are skipped.
- ``.jsonl``: one sequence a line, ``{"tokens": [...], "tags": [...]}`` of equal length
  (other key names through ``text_column`` / ``label_column``).

- ``.npz`` of real-valued frames (sensors, audio features): ``x`` (N, T, F), ``y`` (N, T)
  a label per step, optional ``lengths`` (N,) (:func:`build_frame_tagging`; features
  normalised with the training frames' mean and std, as for classification).

Arrays: x (N, T) int64 token ids (0 = padding; frames: (N, T, F) float32), y (N, T) int64 label ids with
``PAD_LABEL`` (-1) after each row's length, lengths (N,). The vocabulary and the label
set come from the training rows; a label seen only in validation/test is an error.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "pos.tsv")
    >>> _ = open(path, "w").write("the\\tDET\\ncat\\tNOUN\\n\\na\\tDET\\ndog\\tNOUN\\nran\\tVERB\\n\\n" * 10)
    >>> records = read_tag_tsv(path)
    >>> records[1]
    (['a', 'dog', 'ran'], ['DET', 'NOUN', 'VERB'])
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .containers import Split, TaskData
from .errors import DataError
from .readers import iter_json_objects, read_text
from .splits import check_known_labels, sort_labels
from .vocab import PAD_ID, Vocabulary

if TYPE_CHECKING:
    from .spec import DataSpec

__all__ = ["TagRecords", "read_tag_tsv", "read_tag_jsonl", "build_tagging", "build_frame_tagging", "PAD_LABEL"]

PAD_LABEL = -1  # the same value lstmlite.train.sequence ignores in the loss
TagRecords = list[tuple[list[str], list[str]]]


def read_tag_tsv(path: str | os.PathLike) -> TagRecords:
    """CoNLL-style ``token<TAB>label`` lines, sequences separated by blank lines."""
    records: TagRecords = []
    tokens: list[str] = []
    labels: list[str] = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            if tokens:
                records.append((tokens, labels))
                tokens, labels = [], []
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
            raise DataError(f"{path}: line {number}: expected token<TAB>label, got {line[:60]!r}")
        if " " in fields[0].strip():  # CoNLL tokens have no spaces; sentences in a pairs file do
            raise DataError(f"{path}: line {number}: the token {fields[0][:40]!r} holds spaces; if this file has "
                            "source<TAB>target pairs, train with --task seq2seq; text<TAB>label rows for "
                            "classification go in a .csv (or .jsonl) with text and label columns")
        # the spaces around a token are layout ("the \tDET" aligned in columns), not part of it:
        # kept, "the " would be another word than "the", mostly <unk> at test time
        tokens.append(fields[0].strip())
        labels.append(fields[1].strip())
    if tokens:
        records.append((tokens, labels))
    if not records:
        raise DataError(f"{path}: no sequences")
    return records


def read_tag_jsonl(path: str | os.PathLike, tokens_key: str = "tokens", tags_key: str = "tags") -> TagRecords:
    """One ``{"tokens": [...], "tags": [...]}`` object a line (equal lengths, ≥ 1)."""
    records: TagRecords = []
    for number, _, obj in iter_json_objects(path):
        if tokens_key not in obj or tags_key not in obj:
            hint = ("; a text and a label are classification data: train without --task tag"
                    if isinstance(obj.get("text"), str) and "label" in obj else "")
            raise DataError(f"{path}: line {number}: expected an object with {tokens_key!r} and {tags_key!r} lists"
                            f"{hint}")
        tokens, tags = obj[tokens_key], obj[tags_key]
        if not isinstance(tokens, list) or not isinstance(tags, list) or len(tokens) != len(tags) or not tokens:
            raise DataError(f"{path}: line {number}: {tokens_key!r} and {tags_key!r} must be non-empty lists "
                            "of the same length")
        records.append(([str(t) for t in tokens], [str(t) for t in tags]))
    if not records:
        raise DataError(f"{path}: no sequences")
    return records


def _split_rows(n: int, spec: DataSpec, has_test: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Seeded random row split (sequences have no single class to stratify on)."""
    order = np.random.default_rng(spec.seed).permutation(n)
    n_val = int(round(spec.val_fraction * n))
    n_test = 0 if has_test else int(round(spec.test_fraction * n))
    if n - n_val - n_test < 1:
        raise DataError(f"{n} sequences are too few to split into train/val/test")
    val, test, train = order[:n_val], order[n_val:n_val + n_test], order[n_val + n_test:]
    return np.sort(train), np.sort(val), None if has_test else np.sort(test)


def _label_index(name: str, training_labels: list[str], every_label: list[str] | None = None,
                 given: list[str] | None = None) -> tuple[list[str], dict[str, int]]:
    """The label set of the training rows (sorted) and each label's id; at least two.

    With ``given`` (a trained run's labels), those in their order instead: every label
    of every row (``every_label``) must be one of them, and one label is fine.
    """
    if given is not None:
        check_known_labels(name, every_label or [], given)
        return list(given), {label: i for i, label in enumerate(given)}
    class_names = sort_labels(training_labels)
    if len(class_names) < 2:
        raise DataError(f"{name}: the training rows use one label only; tagging needs at least two")
    return class_names, {label: i for i, label in enumerate(class_names)}


def _label_ids(name: str, what: str, tags: list[str], label_id: dict[str, int]) -> list[int]:
    """One row's labels as ids; a label the training rows never use is an error."""
    unseen = sorted(set(tags) - set(label_id))
    if unseen:
        raise DataError(f"{name}: {what} label(s) {unseen[:5]} never occur in the training rows")
    return [label_id[t] for t in tags]


def build_tagging(name: str, spec: DataSpec, records: TagRecords, test_records: TagRecords | None = None, *,
                  vocab: Vocabulary | None = None, class_names: list[str] | None = None) -> TaskData:
    """TaskData of the tag task from token/label sequences (see the module doc); ``vocab``
    and ``class_names`` (a trained run's) encode the tokens and labels instead of those
    of the training rows."""
    train_idx, val_idx, test_idx = _split_rows(len(records), spec, test_records is not None)
    train_rows = [records[i] for i in train_idx]
    if vocab is None:
        vocab = Vocabulary.build((tokens for tokens, _ in train_rows), spec.max_vocab, spec.min_freq)
    rows_all = [*records, *(test_records or [])]
    class_names, label_id = _label_index(name, [label for _, labels in train_rows for label in labels],
                                         [label for _, labels in rows_all for label in labels], class_names)
    length = max(len(tokens) for tokens, _ in rows_all)
    if spec.max_len is not None:
        length = min(length, spec.max_len)

    def make(rows: TagRecords, what: str) -> Split:
        x = np.full((len(rows), length), PAD_ID, np.int64)
        y = np.full((len(rows), length), PAD_LABEL, np.int64)
        lengths = np.zeros(len(rows), np.int64)
        for k, (tokens, labels) in enumerate(rows):
            n = min(len(tokens), length)
            y[k, :n] = _label_ids(name, what, labels[:n], label_id)
            x[k, :n] = [vocab.id(t) for t in tokens[:n]]
            lengths[k] = n
        return Split(x, y, lengths)

    train = make(train_rows, "train")
    val = make([records[i] for i in val_idx], "validation")
    test = make(test_records if test_records is not None else [records[i] for i in test_idx], "test")
    return TaskData(name=name, task="tag", train=train, val=val, test=test, input_size=0,
                    n_classes=len(class_names), class_names=class_names, vocab=vocab, spec=spec)


def build_frame_tagging(name: str, spec: DataSpec, series: list[np.ndarray], labels: list[list[str]],
                        test_series: list[np.ndarray] | None = None,
                        test_labels: list[list[str]] | None = None, *,
                        class_names: list[str] | None = None) -> TaskData:
    """TaskData of the tag task on real-valued frames: a label per step.

    Args:
        series: (T_i, F) arrays; labels: per row its T_i labels (strings).
        test_series, test_labels: a separate test set (else a split of the rows).
        class_names: a trained run's labels, used in their order instead of the
            training rows' own.

    Returns:
        TaskData with x (N, T, F) float32 normalised by the training frames' mean and
        std (``stats``), y (N, T) int64 with ``PAD_LABEL`` past each length, lengths (N,).

    Example:
        >>> from lstmlite.data.spec import DataSpec
        >>> rng = np.random.default_rng(0)
        >>> frames = [rng.normal(size=(6, 2)) for _ in range(20)]
        >>> tags = [["up" if f[0] > 0 else "down" for f in s] for s in frames]
        >>> data = build_frame_tagging("toy", DataSpec("toy.npz", task="tag"), frames, tags)
        >>> data.train.x.shape[1:], data.class_names
        ((6, 2), ['down', 'up'])
    """
    from .classify import _feature_stats, normalize_features

    train_idx, val_idx, test_idx = _split_rows(len(series), spec, test_series is not None)
    class_names, label_id = _label_index(name, [label for i in train_idx for label in labels[i]],
                                         [label for row in [*labels, *(test_labels or [])] for label in row],
                                         class_names)
    mean, std = _feature_stats([series[i] for i in train_idx])
    length = max(len(s) for s in [*series, *(test_series or [])])
    if spec.max_len is not None:
        length = min(length, spec.max_len)

    def make(rows: list[np.ndarray], row_labels: list[list[str]], what: str) -> Split:
        x, lengths = normalize_features(rows, mean, std, length)
        y = np.full((len(rows), length), PAD_LABEL, np.int64)
        for k, tags in enumerate(row_labels):
            n = int(lengths[k])
            y[k, :n] = _label_ids(name, what, tags[:n], label_id)
        return Split(x, y, lengths)

    def part(idx: np.ndarray, what: str) -> Split:
        return make([series[i] for i in idx], [labels[i] for i in idx], what)

    test = (make(test_series, test_labels or [], "test") if test_series is not None
            else part(test_idx, "test"))
    return TaskData(name=name, task="tag", train=part(train_idx, "train"), val=part(val_idx, "validation"),
                    test=test, input_size=len(mean), n_classes=len(class_names), class_names=class_names,
                    vocab=None, spec=spec, stats={"mean": mean, "std": std})
