"""The one exception family of :mod:`lstmlite.data`.

Every problem with a user's data (missing file, unknown format, malformed row, empty
data, bad encoding, labels only in the test file) is a :class:`DataError` whose message
is one line naming the file and, where there is one, the line or row. The CLI prints
that line and exits non-zero; library callers can catch ``ValueError``.

Example:
    >>> try:
    ...     raise DataFileNotFoundError("data.csv: no such file")
    ... except FileNotFoundError as e:
    ...     isinstance(e, DataError) and isinstance(e, ValueError)
    True
"""

from __future__ import annotations

__all__ = ["DataError", "DataFileNotFoundError"]


class DataError(ValueError):
    """Bad data or a bad data spec; the message is one line naming the file and line."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file (or built-in name) that does not exist. Also a ``FileNotFoundError``."""
