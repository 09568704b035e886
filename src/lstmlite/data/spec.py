"""DataSpec: everything needed to rebuild exactly the same data, as JSON.

A spec names a source (a built-in name or a file path) plus the few choices that shape
the arrays (task, tokenisation level, window lengths, split fractions, seed). Fields
left as ``None`` ("auto") are resolved in ``__post_init__`` so a constructed spec is
complete and ``to_dict()`` records the resolved values:

- ``format``: from the file extension (``.csv .jsonl .ndjson .txt .label .ts .npz .npy``;
  a directory holding ``*.label`` files is TREC); ``None`` for built-ins.
- ``task``: the built-in's task, else from the format (``txt`` → ``lm``,
  ``npy`` → ``forecast``, the rest → ``classify``).
- ``level``: ``"word"`` for text classification, ``"char"`` for language modelling.
- ``seq_len``: 100 for ``lm`` (and unused by ``classify``); for ``forecast`` the built-in's
  window (airline: 24 = two seasons) or 24.
- ``season``: forecast only: the built-in's season (airline: 12), else 1 (persistence).

Example:
    >>> spec = DataSpec("input.txt")
    >>> spec.task, spec.format, spec.level, spec.seq_len
    ('lm', 'txt', 'char', 100)
    >>> DataSpec.from_dict(spec.to_dict()) == spec
    True
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import BUILTINS, builtin_names
from .errors import DataError, DataFileNotFoundError

__all__ = ["DataSpec", "TASKS", "FORMATS", "EXTENSIONS", "FORMAT_TASKS", "infer_format"]

TASKS = ("classify", "lm", "forecast", "tag", "ctc", "seq2seq")
FORMATS = ("csv", "jsonl", "txt", "trec", "ts", "npz", "npy", "tsv", "audio")
EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "txt",
    ".label": "trec",
    ".ts": "ts",
    ".npz": "npz",
    ".npy": "npy",
    ".tsv": "tsv",
}
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
MANIFEST = "manifest.tsv"  # an audio folder's list of "audio<TAB>transcript" lines
FEATURES = ("mfcc", "logmel")
# Which task each file format feeds; the first is the default.
FORMAT_TASKS = {
    "csv": ("classify",),
    "jsonl": ("classify", "tag"),
    "trec": ("classify",),
    "ts": ("classify",),
    "npz": ("classify", "tag"),
    "txt": ("lm",),
    "npy": ("forecast",),
    "tsv": ("tag", "seq2seq"),
    "audio": ("ctc",),
}
LEVELS = ("char", "word")
LABEL_LEVELS = ("coarse", "fine")
DEFAULT_LM_SEQ_LEN = 100
DEFAULT_FORECAST_SEQ_LEN = 24

_INT_FIELDS = ("seq_len", "horizon", "season", "max_vocab", "min_freq", "max_len", "seed", "n_features",
               "sample_rate")
_FLOAT_FIELDS = ("val_fraction", "test_fraction", "hop_ms")


def infer_format(source: str) -> str | None:
    """The format a path's extension (or a TREC / audio directory) implies, or ``None``.

    A directory holding ``manifest.tsv`` is an audio list (``audio``), and so is a
    ``.tsv`` file whose first column names audio files; other ``.tsv`` files are
    token-per-line tagging data (``tsv``).

    Example:
        >>> infer_format("data/TREC_10.label"), infer_format("x.NPZ"), infer_format("x.dat")
        ('trec', 'npz', None)
    """
    if os.path.isdir(source):
        if (Path(source) / MANIFEST).is_file():
            return "audio"
        return "trec" if any(p.suffix == ".label" for p in Path(source).iterdir()) else None
    fmt = EXTENSIONS.get(Path(source).suffix.lower())
    if fmt == "tsv" and _lists_audio(source):
        return "audio"
    return fmt


def _lists_audio(path: str) -> bool:
    """Whether a .tsv file's first data line starts with an audio file name."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:  # -sig: a BOM is not part of the name
            for line in f:
                first = line.split("\t", 1)[0].strip()
                if first and first != "audio":  # "audio<TAB>transcript" is the header
                    return first.lower().endswith(AUDIO_EXTENSIONS)
    except OSError:
        return False
    return False


def _as_int(name: str, value: Any, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, str):  # CLI --key=value overrides arrive as text
        try:
            value = int(value)
        except ValueError:
            raise DataError(f"data option {name}={value!r} is not an integer") from None
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise DataError(f"data option {name}={value!r} is not an integer")
    return int(value)


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise DataError(f"data option {name}={value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise DataError(f"data option {name}={value!r} is not a number")
    return float(value)


@dataclass
class DataSpec:
    """How to build a :class:`~lstmlite.data.TaskData`; validated on construction.

    Args:
        source: a built-in name (see :func:`~lstmlite.data.list_datasets`) or a file path.
        task: ``"classify"`` | ``"lm"`` | ``"forecast"`` | ``"tag"`` | ``"ctc"`` | ``"seq2seq"``
            (a ``.tsv`` of ``source<TAB>target`` pairs); auto when ``None``.
        format: ``"csv" "jsonl" "txt" "trec" "ts" "npz" "npy" "tsv" "audio"``; auto from
            the extension (see :func:`infer_format`).
        level: text tokens, ``"char"`` | ``"word"``; auto (lm: char, classify: word).
        seq_len: lm window length / forecast input window; auto (lm 100, forecast 24).
        horizon: forecast steps ahead.
        season: forecast seasonal period for the naive baseline; auto (airline 12, else 1).
        max_vocab: vocabulary size including ``<pad>`` and ``<unk>``.
        min_freq: tokens seen fewer times in TRAIN become ``<unk>``.
        max_len: truncate text-classification token sequences to this many tokens.
        val_fraction: validation share (carved from train; for lm/forecast: the part
            of the stream/series before the test part).
        test_fraction: test share, used only when the source has no official test split;
            0 gives no test split (a trained run then has no test metric).
        seed: the seed of every random split.
        text_column, label_column: CSV column / JSONL key names (tag JSONL: the
            token list and label list; defaults ``tokens`` and ``tags`` when unchanged).
        features: audio (ctc) features, ``"mfcc"`` | ``"logmel"`` (librosa).
        n_features: MFCC coefficients or mel bands per frame.
        sample_rate: audio is resampled to this rate (Hz) before features.
        hop_ms: frame step in milliseconds (10 ms: 100 frames per second).
        label_level: TREC labels, ``"coarse"`` (6 classes) | ``"fine"`` (50).
        test_path: a separate test file in the same format (e.g. ``TREC_10.label``).

    Raises:
        DataError: (a ``ValueError``) on any invalid value, with a one-line message.
    """

    source: str
    task: str | None = None
    format: str | None = None
    level: str | None = None
    seq_len: int | None = None
    horizon: int = 12
    season: int | None = None
    max_vocab: int = 10000
    min_freq: int = 1
    max_len: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    text_column: str = "text"
    label_column: str = "label"
    label_level: str = "coarse"
    test_path: str | None = None
    features: str = "mfcc"
    n_features: int = 20
    sample_rate: int = 16000
    hop_ms: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.source, os.PathLike):
            self.source = os.fspath(self.source)
        if not isinstance(self.source, str) or not self.source:
            raise DataError(f"data source must be a built-in name or a file path, got {self.source!r}")
        if self.test_path is not None:
            self.test_path = os.fspath(self.test_path)
            if not isinstance(self.test_path, str) or not self.test_path:
                raise DataError(f"test_path must be a file path, got {self.test_path!r}")
        self._resolve_source()
        self._resolve_numbers()
        self._check_text_options()

    @property
    def is_builtin(self) -> bool:
        """Whether :attr:`source` names a built-in data set."""
        return self.source in BUILTINS

    def _resolve_source(self) -> None:
        if self.task is not None and self.task not in TASKS:
            raise DataError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.is_builtin:
            facts = BUILTINS[self.source]
            if self.format is not None:
                raise DataError(f"format={self.format!r} does not apply to the built-in data set {self.source!r}")
            if self.test_path is not None:
                raise DataError(f"test_path does not apply to the built-in data set {self.source!r}")
            if self.task is None:
                self.task = facts["task"]
            elif self.task != facts["task"]:
                raise DataError(
                    f"the built-in data set {self.source!r} is a {facts['task']!r} task, not {self.task!r}"
                )
            return
        if self.format is None:
            self.format = infer_format(self.source)
            if self.format is None:
                if not os.path.exists(self.source):
                    if Path(self.source).suffix or os.sep in self.source or "/" in self.source:
                        raise DataFileNotFoundError(f"{self.source}: no such file")
                    raise DataError(
                        f"unknown built-in data set {self.source!r}; built-ins are {', '.join(builtin_names())}"
                        " (or give a file path)"
                    )
                if os.path.isdir(self.source):  # no extension to go by, and format= does not make it a file
                    raise DataError(
                        f"{self.source}: a folder holding no {MANIFEST} (audio) and no *.label files (TREC); "
                        f"give a data file, or a folder of one of those kinds"
                    )
                raise DataError(
                    f"{self.source}: cannot tell the format from the extension; "
                    f"pass format= one of {', '.join(FORMATS)}"
                )
        elif self.format not in FORMATS:
            raise DataError(f"{self.source}: unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        allowed = FORMAT_TASKS[self.format]
        if self.task is None:
            self.task = allowed[0]
        elif self.task not in allowed:
            # text<TAB>label rows (SST-2 and the like) are classification data in another file kind
            hint = ("; for text classification save the rows as .csv (or .jsonl) with text and label columns"
                    if self.format == "tsv" and self.task == "classify" else "")
            raise DataError(
                f"{self.source}: {self.format!r} files feed task {' or '.join(map(repr, allowed))}, not {self.task!r}"
                f"{hint}"
            )

    def _resolve_numbers(self) -> None:
        for name in _INT_FIELDS:
            setattr(self, name, _as_int(name, getattr(self, name), optional=name in ("seq_len", "season", "max_len")))
        for name in _FLOAT_FIELDS:
            setattr(self, name, _as_float(name, getattr(self, name)))
        facts = BUILTINS.get(self.source, {})
        if self.seq_len is None:
            forecast = self.task == "forecast"
            self.seq_len = facts.get("seq_len", DEFAULT_FORECAST_SEQ_LEN) if forecast else DEFAULT_LM_SEQ_LEN
        if self.season is None and self.task == "forecast":
            self.season = facts.get("season", 1)
        checks = [
            ("seq_len", self.seq_len, 1),
            ("horizon", self.horizon, 1),
            ("max_vocab", self.max_vocab, 3),  # <pad>, <unk> and at least one token
            ("min_freq", self.min_freq, 1),
            ("seed", self.seed, 0),
        ]
        if self.season is not None:
            checks.append(("season", self.season, 1))
        if self.max_len is not None:
            checks.append(("max_len", self.max_len, 1))
        checks += [("n_features", self.n_features, 1), ("sample_rate", self.sample_rate, 1000)]
        if not 1.0 <= self.hop_ms <= 100.0:
            raise DataError(f"data option hop_ms={self.hop_ms} must be in [1, 100] milliseconds")
        if self.features not in FEATURES:
            raise DataError(f"unknown audio features {self.features!r}; choose one of {', '.join(FEATURES)}")
        for name, value, low in checks:
            if value < low:
                raise DataError(f"data option {name}={value} must be at least {low}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise DataError(f"data option {name}={value} must be in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise DataError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:g} leaves no training data"
            )

    def _check_text_options(self) -> None:
        if self.level is None:
            self.level = "word" if self.task == "classify" else "char"
        if self.level not in LEVELS:
            raise DataError(f"unknown text level {self.level!r}; choose one of {', '.join(LEVELS)}")
        if self.label_level not in LABEL_LEVELS:
            raise DataError(f"unknown label_level {self.label_level!r}; choose one of {', '.join(LABEL_LEVELS)}")
        for name in ("text_column", "label_column"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise DataError(f"data option {name} must be a non-empty string, got {value!r}")

    def ignored_options(self) -> list[str]:
        """One line per option set to a non-default value that this source and task never
        read (``seq_len`` on a text classifier, ``label_level`` on a CSV, …), so that
        :func:`~lstmlite.data.load_data` can say so instead of ignoring it silently.

        Example:
            >>> DataSpec("reviews.csv", seq_len=50, label_level="fine").ignored_options()[0]
            'data option seq_len=50 does not apply to csv data (classify) and is ignored; max_len cuts token sequences'
        """
        fmt = self.format or "built-in"
        tokens = self.format in ("csv", "jsonl", "trec", "txt", "tsv")  # token ids in: a vocabulary is built
        reads = {  # option: (whether this source/task reads it, a hint)
            "seq_len": (self.task in ("lm", "forecast"), "max_len cuts token sequences" if tokens else ""),
            "horizon": (self.task == "forecast", ""),
            "season": (self.task == "forecast", ""),
            "max_len": (self.task in ("tag", "seq2seq") or (self.task == "classify" and tokens), ""),
            "max_vocab": (tokens, ""),
            "min_freq": (tokens, ""),
            "text_column": (self.format in ("csv", "jsonl"), ""),
            "label_column": (self.format in ("csv", "jsonl"), ""),
            "label_level": (self.format == "trec", ""),
            **{name: (self.format == "audio", "") for name in ("features", "n_features", "sample_rate", "hop_ms")},
        }
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        defaults["seq_len"] = DEFAULT_LM_SEQ_LEN  # what an unset seq_len resolves to outside forecasting
        out = []
        for name, (used, hint) in reads.items():
            value = getattr(self, name)
            if not used and value != defaults[name]:
                out.append(f"data option {name}={value} does not apply to {fmt} data ({self.task}) and is ignored"
                           + (f"; {hint}" if hint else ""))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as a JSON-serialisable dict (what a run dir stores)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSpec:
        """Rebuild a spec from :meth:`to_dict`'s output; unknown keys are an error."""
        if not isinstance(data, dict):
            raise DataError(f"a data spec must be a JSON object, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise DataError(f"unknown data option(s) {', '.join(unknown)}; valid options: {', '.join(names)}")
        if "source" not in data:
            raise DataError("a data spec needs a 'source' (a built-in name or a file path)")
        from ..typed import ConfigValueError, coerce_fields

        try:
            return cls(**coerce_fields(cls, data, "data"))
        except ConfigValueError as err:
            raise DataError(str(err)) from None

    def replace(self, **overrides: Any) -> DataSpec:
        """A copy with some options changed (validated again); unknown keys are an error."""
        data = self.to_dict()
        if "source" in overrides and overrides["source"] != self.source and "format" not in overrides:
            data["format"] = None  # the old source's format says nothing about the new one
        data.update(overrides)
        return DataSpec.from_dict(data)
