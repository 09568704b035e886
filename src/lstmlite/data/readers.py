"""File readers: bytes on disk → plain Python/NumPy records, with clear errors.

Each reader returns raw content (texts and labels with their line numbers, a list of
(T, F) arrays, a series) and leaves tokenising, splitting and normalising to the task
builders. Every failure is a one-line :class:`~lstmlite.data.DataError` naming the file
and, where one exists, the line (text files) or row (array files).

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "q.label")
    >>> _ = open(path, "w").write("NUM:date When was it ?\\nHUM:ind Who ?\\n")
    >>> read_trec(path).labels
    ['NUM', 'HUM']
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .._text import one_line
from .errors import DataError, DataFileNotFoundError

__all__ = [
    "TextRecords", "read_text", "read_csv", "read_jsonl", "read_trec",
    "read_ts", "read_npz", "read_npz_tags", "read_npy", "require_file",
]

logger = logging.getLogger(__name__)

_TREC_LABEL = re.compile(r"^([A-Z]+):(\S+)$")


@dataclass
class TextRecords:
    """Labelled texts read from one file; ``lines[i]`` is where row ``i`` sits in the file."""

    path: str
    texts: list[str]
    labels: list[str]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.texts)


def require_file(path: str | os.PathLike, what: str = "data file") -> Path:
    """``Path(path)`` if it is an existing file, else :class:`DataFileNotFoundError`."""
    p = Path(path)
    if not p.exists():
        raise DataFileNotFoundError(f"{path}: no such {what}")
    if not p.is_file():
        raise DataError(f"{path}: is not a file")
    return p


def read_text(path: str | os.PathLike, *, latin1_fallback: bool = False) -> str:
    """Decode a file as UTF-8 (a BOM is dropped).

    Args:
        latin1_fallback: on bytes that are not UTF-8, log a warning and decode the whole
            file as ISO-8859-1 (which never fails) instead of raising; for files known
            to be Latin-1, like TREC's training file.

    Raises:
        DataError: naming the line and byte, when the file is not UTF-8 and there is no
        fallback.
    """
    p = require_file(path)
    raw = p.read_bytes()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        problem = f"line {line} is not valid UTF-8 (byte 0x{raw[e.start]:02x}: {e.reason})"
        if latin1_fallback:
            logger.warning("%s: %s; decoding the file as ISO-8859-1 (latin-1) instead", path, problem)
            return raw.decode("latin-1")
        raise DataError(f"{path}: {problem}; re-save the file as UTF-8") from None


def read_csv(path: str | os.PathLike, text_column: str = "text", label_column: str = "label") -> TextRecords:
    """A CSV file with a header row holding ``text_column`` and ``label_column``.

    Raises:
        DataError: missing column (line 1), a row with too few/many fields, an empty
        label, bytes that are not UTF-8, or no rows.
    """
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty file (expected a header row with {text_column!r} and {label_column!r})")
        header = [h.strip() for h in header]
        for column in (text_column, label_column):
            if column not in header:
                # Excel in many locales saves ';'-separated "CSV": one column named 'text;label'
                seps = [sep for sep in (";", "\t", "|") if len(header) == 1 and sep in header[0]]
                hint = f"; the header looks {seps[0]!r}-separated: save the file comma-separated" if seps else ""
                raise DataError(f"{path}: line 1: no column {column!r} in the header (columns: {', '.join(header)})"
                                f"{hint}")
        ti, li = header.index(text_column), header.index(label_column)
        records = TextRecords(str(path), [], [], [])
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row:  # a blank line
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{path}: line {line}: {len(row)} fields, the header has {len(header)} "
                    "(quote texts that contain commas)"
                )
            label = row[li].strip()
            if not label:
                raise DataError(f"{path}: line {line}: empty {label_column!r}")
            records.texts.append(row[ti])
            records.labels.append(label)
            records.lines.append(line)
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({e})") from None
    if not records.texts:
        raise DataError(f"{path}: no data rows")
    return records


def iter_json_objects(path: str | os.PathLike) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line number, line, object) for each non-blank line of a JSON Lines file; a line
    that is not a JSON object is a :class:`DataError` naming the file and line."""
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {number}: invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object, got {type(obj).__name__}")
        yield number, line, obj


def read_jsonl(path: str | os.PathLike, text_column: str = "text", label_column: str = "label") -> TextRecords:
    """JSON Lines: one object a line with a string ``text_column`` and a string/int ``label_column``."""
    records = TextRecords(str(path), [], [], [])
    for number, line, obj in iter_json_objects(path):
        for key in (text_column, label_column):
            if key not in obj:
                # a tagging file (token and tag lists) read as classification: say which task reads it
                hint = "; token and tag lists are tagging data: train with --task tag" if (
                    isinstance(obj.get("tokens"), list) and isinstance(obj.get("tags"), list)) else ""
                raise DataError(f"{path}: line {number}: no key {key!r} (keys: {', '.join(map(str, obj))}){hint}")
        text, label = obj[text_column], obj[label_column]
        if not isinstance(text, str):
            raise DataError(f"{path}: line {number}: {text_column!r} must be a string, got {type(text).__name__}")
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise DataError(
                f"{path}: line {number}: {label_column!r} must be a string or an integer, got {type(label).__name__}"
            )
        label = str(label).strip()
        if not label:
            raise DataError(f"{path}: line {number}: empty {label_column!r}")
        records.texts.append(text)
        records.labels.append(label)
        records.lines.append(number)
    if not records.texts:
        raise DataError(f"{path}: no data rows")
    return records


def read_trec(path: str | os.PathLike, label_level: str = "coarse") -> TextRecords:
    """TREC question classification: ``COARSE:fine question words …`` a line.

    TREC's training file is ISO-8859-1, so bytes that are not UTF-8 fall back to Latin-1
    with a logged warning. ``label_level="coarse"`` gives ``"DESC"``; ``"fine"`` gives
    ``"DESC:manner"`` (fine names repeat across coarse classes, so the coarse part stays).
    """
    records = TextRecords(str(path), [], [], [])
    # split on "\n" only: str.splitlines also breaks at U+0085 (byte 0x85 of a Latin-1 /
    # Windows file, its "…") and U+2028, cutting one question in two
    for number, line in enumerate(read_text(path, latin1_fallback=True).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split(None, 1)
        match = _TREC_LABEL.match(parts[0])
        if match is None or len(parts) < 2 or not parts[1].strip():
            raise DataError(f"{path}: line {number}: expected 'COARSE:fine question words', got {line[:60]!r}")
        records.texts.append(parts[1].strip())
        records.labels.append(match.group(1) if label_level == "coarse" else parts[0])
        records.lines.append(number)
    if not records.texts:
        raise DataError(f"{path}: no questions")
    return records


def read_ts(path: str | os.PathLike) -> tuple[list[np.ndarray], list[str]]:
    """A UCR/UEA ``.ts`` file through aeon's loader.

    Returns:
        ``(series, labels)``: one (T_i, F) float64 array per case (time first), and the
        class labels as strings.
    """
    from aeon.datasets import load_from_ts_file

    p = require_file(path)
    try:
        X, y = load_from_ts_file(str(p))
    except Exception as e:  # aeon raises IOError/ValueError/IndexError on malformed files
        raise DataError(f"{path}: not a readable .ts file ({one_line(e)})") from None
    series = [np.asarray(case, dtype=np.float64).T for case in X]  # (F, T) → (T, F)
    if y is None or len(y) != len(series):
        raise DataError(f"{path}: no class labels (lstmlite reads .ts files for classification)")
    for k, s in enumerate(series):
        if s.size == 0:
            raise DataError(f"{path}: case {k + 1} is empty")
        if not np.isfinite(s).all():
            raise DataError(f"{path}: case {k + 1} has missing or non-finite values")
    if not series:
        raise DataError(f"{path}: no cases")
    return series, [str(v) for v in y]


def _load_numpy(path: str | os.PathLike, kind: str):
    p = require_file(path)
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable {kind} file ({one_line(e)})") from None


def _is_real(array: np.ndarray) -> bool:
    """Real numbers only: ints and floats, not complex (converting drops the imaginary
    part with a mere warning) nor booleans."""
    return array.dtype.kind in "iuf"


def read_npz(path: str | os.PathLike) -> tuple[list[np.ndarray], list[str]]:
    """An ``.npz`` with ``x`` (N, T, F) or (N, T), ``y`` (N,) and optional ``lengths`` (N,).

    Returns:
        ``(series, labels)``: each row cut to its length, as (T_i, F) float64 arrays,
        and the labels as strings.
    """
    series, y, _ = _read_npz_arrays(path)
    if y.ndim == 2 and y.shape[0] == len(series):
        raise DataError(f"{path}: 'y' has a label per step {y.shape}; train a tagger on it with --task tag")
    if y.ndim != 1 or len(y) != len(series):
        raise DataError(f"{path}: 'y' must have shape ({len(series)},), got {y.shape}")
    return series, _label_strings(path, y)


def read_npz_tags(path: str | os.PathLike) -> tuple[list[np.ndarray], list[list[str]]]:
    """An ``.npz`` of frames with a label per step (``--task tag`` on real-valued input):
    ``x`` (N, T, F) or (N, T), ``y`` (N, T) integer or string labels, optional ``lengths``
    (N,); steps past a row's length are ignored (any value).

    Returns:
        ``(series, labels)``: each row cut to its length, (T_i, F) float64 arrays, and
        per row its T_i labels as strings.
    """
    series, y, lengths = _read_npz_arrays(path)
    if y.ndim != 2 or y.shape[0] != len(series) or y.shape[1] < max(len(s) for s in series):
        raise DataError(f"{path}: 'y' must have a label per step, shape ({len(series)}, T) like 'x', got {y.shape}")
    labels = [_label_strings(path, y[k, : len(s)], f"row index {k}: ") for k, s in enumerate(series)]
    return series, labels


def _label_strings(path: str | os.PathLike, y: np.ndarray, where: str = "") -> list[str]:
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{path}: {where}'y' holds non-integer floats; classification needs class labels")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuUSb":
        raise DataError(f"{path}: 'y' must hold integer or string labels, got {y.dtype}")
    return [v.decode() if isinstance(v, bytes) else str(v) for v in y.tolist()]


def _read_npz_arrays(path: str | os.PathLike) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """x checked and cut to each row's length (T_i, F) float64, y as stored, lengths (N,)."""
    data = _load_numpy(path, ".npz")
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: expected an .npz archive with arrays 'x' and 'y'")
    with data:
        names = list(data.keys())
        for key in ("x", "y"):
            if key not in names:
                raise DataError(f"{path}: no array {key!r} (arrays: {', '.join(names) or 'none'})")
        try:
            x, y = data["x"], data["y"]
            lengths = data["lengths"] if "lengths" in names else None
        except ValueError as e:  # object arrays need pickle, which we never allow
            raise DataError(f"{path}: {one_line(e)}; save numeric or string arrays") from None
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or not _is_real(x):
        raise DataError(f"{path}: 'x' must be real numbers (N, T, F) or (N, T), got {x.dtype} {x.shape}; "
                        f"save floats or integers")
    if len(x) == 0 or x.shape[1] == 0:
        raise DataError(f"{path}: 'x' is empty {x.shape}")
    if lengths is None:
        lengths = np.full(len(x), x.shape[1], dtype=np.int64)
    elif lengths.shape != (len(x),) or not np.issubdtype(lengths.dtype, np.integer):
        raise DataError(f"{path}: 'lengths' must be integers of shape ({len(x)},), got {lengths.dtype} {lengths.shape}")
    series = []
    for k in range(len(x)):
        n = int(lengths[k])
        if not 1 <= n <= x.shape[1]:
            raise DataError(f"{path}: row index {k}: length {n} outside 1..{x.shape[1]}")
        s = np.asarray(x[k, :n], dtype=np.float64)
        if not np.isfinite(s).all():
            raise DataError(f"{path}: row index {k}: non-finite values in 'x'")
        series.append(s)
    return series, y, lengths


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """A ``.npy`` series for forecasting: (T,) or (T, F) → (T, F) float64."""
    series = _load_numpy(path, ".npy")
    if not isinstance(series, np.ndarray):
        raise DataError(f"{path}: expected a single array in a .npy file")
    if not _is_real(series) or series.ndim not in (1, 2):
        raise DataError(f"{path}: expected a real-valued series of shape (T,) or (T, F), got {series.dtype} "
                        f"{series.shape}; save floats or integers")
    series = np.asarray(series, dtype=np.float64)
    if series.ndim == 1:
        series = series[:, None]
    if series.shape[0] == 0 or series.shape[1] == 0:
        raise DataError(f"{path}: empty series {series.shape}")
    bad = np.flatnonzero(~np.isfinite(series).all(axis=1))
    if bad.size:
        raise DataError(f"{path}: time step {int(bad[0])}: missing or non-finite value")
    return series
