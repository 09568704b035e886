"""File readers (lstmlite.data.readers) on small hand-written files."""

from __future__ import annotations

from pathlib import Path

from lstmlite.data.readers import read_csv


def test_csv_blank_lines_are_skipped_not_the_end_of_the_file(tmp_path: Path) -> None:
    """Blank lines between CSV rows are skipped and reading goes on: every row after them is
    read, quoted commas and newlines stay in the text, and each row keeps the line number it
    starts on (all hand-counted). Catches a reader that stops at the first blank line."""
    path = tmp_path / "r.csv"
    path.write_text('text,label\n"good, really",pos\n\nbad,neg\n\n\n"two\nlines",pos\nlast,neg\n', encoding="utf-8")
    records = read_csv(path)
    assert records.texts == ["good, really", "bad", "two\nlines", "last"]
    assert records.labels == ["pos", "neg", "pos", "neg"]
    assert records.lines == [2, 4, 7, 9]
