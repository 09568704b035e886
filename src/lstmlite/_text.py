"""One rule for quoting another library's error inside one of ours: one line, cut short.

Parsers, ONNX Runtime, LiteRT and safetensors raise messages that span lines (tracebacks
of their own, tables of keys) or run to kilobytes. Our errors are one line the user can
read, so the quoted part is flattened and cut the same way everywhere.

Example:
    >>> one_line(ValueError("bad\\n\\tvalue"))
    'bad value'
    >>> one_line(KeyError())
    'KeyError'
"""

from __future__ import annotations

#: The most characters of a quoted error that a one-line message keeps.
ERROR_CHARS = 160

_ELLIPSIS = "..."


def one_line(err_or_text: BaseException | str, limit: int | None = ERROR_CHARS) -> str:
    """``err_or_text`` on one line, at most ``limit`` characters.

    Runs of whitespace (newlines and tabs included) become one space; an exception with an
    empty message gives its type's name (``KeyError``), so the quote is never blank; a
    longer text is cut to ``limit - 3`` characters, trailing space dropped, and ends in
    ``...`` (the result, ``...`` included, is never longer than ``limit``). A text exactly
    ``limit`` long is kept whole.

    Args:
        err_or_text: an exception (its ``str``) or a message.
        limit: the most characters of the result, at least 4; None keeps the whole text
            (for a caller that picks a part out of the flattened message before cutting it).

    Example:
        >>> one_line("ValueError:   bad \\n value")
        'ValueError: bad value'
        >>> one_line("x" * 10, limit=6)
        'xxx...'
    """
    if limit is not None and limit <= len(_ELLIPSIS):
        raise ValueError(f"limit must be more than {len(_ELLIPSIS)} characters, got {limit}")
    flat = " ".join(str(err_or_text).split())
    if not flat and isinstance(err_or_text, BaseException):
        flat = type(err_or_text).__name__
    if limit is None or len(flat) <= limit:
        return flat
    return flat[:limit - len(_ELLIPSIS)].rstrip() + _ELLIPSIS
