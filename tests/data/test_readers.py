"""File readers (lstmlite.data.readers) on small hand-written files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstmlite.data import readers
from lstmlite.data.errors import DataError
from lstmlite.data.readers import read_csv, read_npy, read_trec


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


def test_csv_and_jsonl_texts_keep_their_whitespace_exactly_labels_are_stripped(tmp_path: Path) -> None:
    """Leading and trailing spaces, a tab and a quoted newline are characters of the text, as
    a char-level classifier sees them: read_csv and read_jsonl keep each text exactly as
    written (hand-written values; Python's csv module and pandas.read_csv keep them too, no
    skipinitialspace by default), and load_data at char level gives each text one token per
    character, spaces counted. Labels and header names are stripped (' pos ' is 'pos').
    Planted and failing: read_csv stripping its text column."""
    import json

    from lstmlite.data.load import load_data
    from lstmlite.data.readers import read_jsonl

    texts = ["  ab", "ab  ", " a b ", "\tab\n", "ab"]
    csv_path = tmp_path / "w.csv"
    csv_path.write_text('text , label\n"  ab", pos \n"ab  ",neg\n a b ,pos\n"\tab\n",neg\nab,pos\n', encoding="utf-8")
    jsonl_path = tmp_path / "w.jsonl"
    jsonl_path.write_text("".join(json.dumps({"text": t, "label": f" {y} "}) + "\n"
                                  for t, y in zip(texts, ["pos", "neg", "pos", "neg", "pos"])), encoding="utf-8")
    for records in (read_csv(csv_path), read_jsonl(jsonl_path)):
        assert records.texts == texts
        assert records.labels == ["pos", "neg", "pos", "neg", "pos"]
    data = load_data({"source": str(csv_path), "task": "classify", "level": "char",
                      "val_fraction": 0.0, "test_fraction": 0.0})
    assert sorted(data.train.lengths.tolist()) == sorted(len(t) for t in texts) == [2, 4, 4, 4, 5]
    assert {" ", "\t", "\n"} <= set(data.vocab.tokens)


def test_trec_lines_break_at_newlines_only(tmp_path: Path) -> None:
    """A TREC question holding byte 0x85 (Latin-1's U+0085, the "…" of Windows files) or
    U+2028 stays one question on its own line: labels, texts and line numbers as written
    (hand-counted). Catches ``str.splitlines``, which breaks at both and then reports the
    question's tail as a malformed line 2."""
    latin1 = tmp_path / "latin1.label"
    latin1.write_bytes(b"NUM:date When was it \x85 really ?\r\nHUM:ind Who ?\r\n")
    records = read_trec(latin1)
    assert records.texts == ["When was it \x85 really ?", "Who ?"]
    assert records.labels == ["NUM", "HUM"]
    assert records.lines == [1, 2]
    utf8 = tmp_path / "utf8.label"
    utf8.write_text("LOC:city Where \u2028 is it ?\n\nDESC:def What is it ?\n", encoding="utf-8")
    records = read_trec(utf8, label_level="fine")
    assert records.texts == ["Where \u2028 is it ?", "What is it ?"]
    assert records.labels == ["LOC:city", "DESC:def"]
    assert records.lines == [1, 3]


def test_a_csv_saved_with_a_bom_reads_its_first_column(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with a byte-order mark: it is dropped, so the header's
    first column is "text" (not "\\ufefftext") and the rows read as written. Catches the
    BOM kept by ``read_text``: the header then has no column 'text'."""
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\nschön,pos\nbad,neg\n".encode("utf-8-sig"))
    records = read_csv(path)
    assert records.texts == ["schön", "bad"] and records.labels == ["pos", "neg"] and records.lines == [2, 3]


@pytest.mark.parametrize("error, quoted", [
    (ValueError("cannot reshape array\nof size 7 " + "z" * 300), "cannot reshape array of size 7 " + "z" * 126 + "..."),
    (EOFError(), "EOFError"),
])
def test_an_unreadable_numpy_file_quotes_the_error_on_one_line_cut_with_an_ellipsis(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, quoted: str) -> None:
    """numpy's error inside ours: whitespace collapsed, cut with "..." inside 160 characters,
    its type's name when it has no message (lstmlite._text.one_line); before, a long message
    was quoted whole and an empty one as "()"."""
    def failing_load(*_args, **_kwargs):
        raise error

    path = tmp_path / "x.npy"
    path.write_bytes(b"\0")
    monkeypatch.setattr(readers.np, "load", failing_load)
    with pytest.raises(DataError) as caught:
        read_npy(path)
    assert str(caught.value) == f"{path}: not a readable .npy file ({quoted})"


def test_a_json_boolean_label_is_refused_not_read_as_a_class(tmp_path: Path) -> None:
    """{"label": true} would become class "True", apart from 1, with no error (bool is an
    int in Python). Catches the bool check dropped."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "x", "label": true}\n{"text": "y", "label": 1}\n')
    with pytest.raises(DataError, match="line 1: 'label' must be a string or an integer, got bool"):
        readers.read_jsonl(path)


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_point_of_an_npy_series_is_refused(tmp_path: Path, bad: float) -> None:
    """An infinity would pass into the series and poison its train mean and std (only NaN
    was tested). Catches the check narrowed to NaN."""
    import numpy as np

    path = tmp_path / "series.npy"
    np.save(path, np.array([1.0, 2.0, bad, 4.0]))
    with pytest.raises(DataError, match="time step 2: missing or non-finite value"):
        readers.read_npy(path)
