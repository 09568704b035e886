"""``load_data``: one entry point from a spec (or a name/path) to :class:`TaskData`.

Example:
    >>> data = load_data("digits", seed=1)
    >>> data.task, data.input_size, data.n_classes, data.train.x.shape[1:]
    ('classify', 8, 10, (8, 8))
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Sequence

from .builtin import load_builtin
from .classify import build_feature_classification, build_text_classification
from .containers import TaskData
from .errors import DataError, DataFileNotFoundError
from .forecast import build_forecast
from .lm import build_language_model
from .readers import (read_csv, read_jsonl, read_npy, read_npz, read_npz_tags, read_text, read_trec, read_ts,
                      require_file)
from .spec import DataSpec
from .tag import build_tagging, read_tag_jsonl, read_tag_tsv
from .vocab import Vocabulary

__all__ = ["load_data", "as_spec"]

logger = logging.getLogger(__name__)


def as_spec(spec: DataSpec | str | os.PathLike | dict[str, Any], **overrides: Any) -> DataSpec:
    """A :class:`DataSpec` from a spec, a name/path or a dict, with ``overrides`` applied.

    Unknown option names are a :class:`DataError` listing the valid ones.
    """
    if isinstance(spec, DataSpec):
        return spec.replace(**overrides) if overrides else spec
    if isinstance(spec, dict):
        return DataSpec.from_dict({**spec, **overrides})
    if isinstance(spec, (str, os.PathLike)):
        return DataSpec.from_dict({"source": os.fspath(spec), **overrides})
    raise DataError(f"expected a DataSpec, a built-in name or a file path, got {type(spec).__name__}")


def load_data(spec: DataSpec | str | os.PathLike | dict[str, Any], *, vocab: Vocabulary | None = None,
              class_names: Sequence[str] | None = None, **overrides: Any) -> TaskData:
    """Load a built-in data set or a user's file as train/val/test arrays.

    Args:
        spec: a :class:`DataSpec`, a built-in name, a file path, or a spec dict.
        vocab: token input (text classify, lm, tag, seq2seq): encode every split with
            this vocabulary (a trained run's) instead of building one from the training
            split, so a token the model knows keeps its id wherever it appears.
        class_names: classify and tag: label the rows with these classes, in this order
            (a trained run's), instead of the training rows' own: one class is then
            enough, and a label outside them is a :class:`DataError`.
        **overrides: spec fields to set, e.g. ``seq_len=64``, ``seed=1``.

    Returns:
        :class:`TaskData`; ``.spec`` is the resolved spec that rebuilds exactly these
        arrays (byte for byte; with ``vocab`` or ``class_names``, given the same ones).

    Raises:
        DataError: (a ``ValueError``) bad spec, unknown format, malformed or empty data;
        :class:`DataFileNotFoundError` (also a ``FileNotFoundError``) for a missing file.
    """
    spec = as_spec(spec, **overrides)
    for line in spec.ignored_options():  # e.g. --data.seq_len on a text classifier: say so, once per load
        logger.warning("%s: %s", spec.source, line)
    if spec.is_builtin:
        return load_builtin(spec)
    name = spec.source  # the path as the user gave it, even when resolved below
    if not os.path.exists(spec.source):
        raise DataFileNotFoundError(f"{spec.source}: no such file")
    if spec.format == "audio":  # a folder or a list; the audio files are checked as they are read
        return _audio(spec, name)
    if spec.format == "trec" and os.path.isdir(spec.source):
        spec = _trec_directory(spec)
    elif spec.format == "ts" and spec.test_path is None:
        spec = _ts_sibling(spec)
    require_file(spec.source)
    if spec.test_path is not None:
        require_file(spec.test_path, "test file")
    given = list(class_names) if class_names is not None else None
    return _LOADERS[spec.format](spec, name, vocab, given)


def _trec_directory(spec: DataSpec) -> DataSpec:
    """A TREC folder: ``train*.label`` is the training file, ``TREC_10.label``/``test*.label`` the test."""
    folder = Path(spec.source)
    trains = sorted(folder.glob("train*.label"))
    if not trains:
        raise DataFileNotFoundError(f"{folder}: no train*.label file in this TREC folder")
    test_path = spec.test_path
    if test_path is None:
        tests = sorted(folder.glob("TREC_10.label")) or sorted(folder.glob("test*.label"))
        test_path = str(tests[0]) if tests else None
    logger.info("TREC folder %s: training file %s, test file %s", folder, trains[0].name, test_path)
    return dataclasses.replace(spec, source=str(trains[0]), test_path=test_path)


def _ts_sibling(spec: DataSpec) -> DataSpec:
    """UCR/UEA archives ship ``NAME_TRAIN.ts`` with ``NAME_TEST.ts``: use the official test."""
    source = Path(spec.source)
    if source.name.endswith("_TRAIN.ts"):
        sibling = source.with_name(source.name[: -len("_TRAIN.ts")] + "_TEST.ts")
        if sibling.is_file():
            logger.info("using the official test file %s", sibling)
            return dataclasses.replace(spec, test_path=str(sibling))
    return spec


def _tags(spec: DataSpec, name: str, vocab: Vocabulary | None = None, classes: list[str] | None = None) -> TaskData:
    if spec.task == "seq2seq":
        from .pairs import build_seq2seq, read_pairs

        test_pairs = read_pairs(spec.test_path) if spec.test_path else None
        return build_seq2seq(name, spec, read_pairs(spec.source), test_pairs, vocab=vocab)
    if spec.format == "tsv":
        read = read_tag_tsv
    else:  # jsonl: the token and label lists; the classify defaults mean "the usual tag keys"
        keys = (spec.text_column if spec.text_column != "text" else "tokens",
                spec.label_column if spec.label_column != "label" else "tags")
        read = lambda path: read_tag_jsonl(path, *keys)  # noqa: E731
    test = read(spec.test_path) if spec.test_path else None
    return build_tagging(name, spec, read(spec.source), test, vocab=vocab, class_names=classes)


def _audio(spec: DataSpec, name: str) -> TaskData:
    from .audio import build_ctc, read_manifest

    test = read_manifest(spec.test_path) if spec.test_path else None
    return build_ctc(name, spec, read_manifest(spec.source), test)


def _texts(spec: DataSpec, name: str, vocab: Vocabulary | None = None, classes: list[str] | None = None) -> TaskData:
    if spec.task == "tag":
        return _tags(spec, name, vocab, classes)
    if spec.format == "trec":
        read = lambda path: read_trec(path, spec.label_level)  # noqa: E731
    else:
        reader = read_csv if spec.format == "csv" else read_jsonl
        read = lambda path: reader(path, spec.text_column, spec.label_column)  # noqa: E731
    train = read(spec.source)
    test = read(spec.test_path) if spec.test_path else None
    return build_text_classification(name, spec, train, test, vocab=vocab, class_names=classes)


def _series(spec: DataSpec, name: str, vocab: Vocabulary | None = None, classes: list[str] | None = None) -> TaskData:
    if spec.task == "tag":  # frames with a label per step
        from .tag import build_frame_tagging

        series, labels = read_npz_tags(spec.source)
        test_series, test_labels = read_npz_tags(spec.test_path) if spec.test_path else (None, None)
        return build_frame_tagging(name, spec, series, labels, test_series, test_labels, class_names=classes)
    read = read_ts if spec.format == "ts" else read_npz
    train_series, train_labels = read(spec.source)
    test_series, test_labels = read(spec.test_path) if spec.test_path else (None, None)
    return build_feature_classification(
        name, spec, train_series, train_labels, test_series, test_labels,
        where=spec.source, test_where=spec.test_path, class_names=classes,
    )


def _lm_text(path: str) -> str:
    # Latin-1 never fails, so an old non-UTF-8 corpus still loads (with a warning)
    return read_text(path, latin1_fallback=True).replace("\r\n", "\n").replace("\r", "\n")


def _stream(spec: DataSpec, name: str, vocab: Vocabulary | None = None, classes: list[str] | None = None) -> TaskData:
    test_text = _lm_text(spec.test_path) if spec.test_path else None
    return build_language_model(
        name, spec, _lm_text(spec.source), test_text, where=spec.source, test_where=spec.test_path, vocab=vocab
    )


def _npy(spec: DataSpec, name: str, vocab: Vocabulary | None = None, classes: list[str] | None = None) -> TaskData:
    if spec.test_path:
        raise DataError(f"{spec.test_path}: a forecast series is split in time order; test_path does not apply")
    return build_forecast(name, spec, read_npy(spec.source), where=spec.source)


_LOADERS = {
    "csv": _texts,
    "jsonl": _texts,
    "trec": _texts,
    "ts": _series,
    "npz": _series,
    "txt": _stream,
    "npy": _npy,
    "tsv": _tags,
}
