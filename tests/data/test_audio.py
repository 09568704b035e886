"""Audio lists (lstmlite.data.audio.read_manifest): which lines are utterances."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstmlite.data.audio import read_manifest


@pytest.mark.parametrize("header", ["", "audio\ttranscript\n", "Audio\tTranscript\tspeaker\n"],
                         ids=["no-header", "header", "header-extra-column"])
def test_every_listed_utterance_is_read_and_only_a_header_is_skipped(tmp_path: Path, header: str) -> None:
    """The (path, transcript) pairs are the list's lines in order, paths relative to the
    list's folder, comments and blank lines skipped, a first line naming the ``audio``
    column skipped as a header and nothing else (hand-written list). Catches a reader that
    always drops the first line, which loses an utterance from a list without a header."""
    listing = tmp_path / "mine.tsv"
    listing.write_text(header + "a.wav\t1 2\n# a comment\n\nsub/b.wav\t3\tspeaker 7\n/abs/c.wav\t4 5 6\n",
                       encoding="utf-8")
    assert read_manifest(listing) == [(tmp_path / "a.wav", "1 2"), (tmp_path / "sub" / "b.wav", "3"),
                                      (Path("/abs/c.wav"), "4 5 6")]


def test_a_list_saved_with_a_bom_and_crlf_reads_like_any_other(tmp_path: Path) -> None:
    """An audio list saved by a Windows editor (UTF-8 BOM, CRLF line ends) is still an
    audio list: its header is skipped and its utterances read as without the BOM.
    Catches: the BOM glued to the header's "audio" (read as an utterance "\\ufeffaudio"),
    and infer_format taking the list for tagging data ("tsv")."""
    from lstmlite.data.spec import infer_format

    listing = tmp_path / "mine.tsv"
    listing.write_bytes(b"\xef\xbb\xbfaudio\ttranscript\r\na.wav\t1 2\r\nb.wav\t3\r\n")
    assert read_manifest(listing) == [(tmp_path / "a.wav", "1 2"), (tmp_path / "b.wav", "3")]
    assert infer_format(str(listing)) == "audio"
    listing.write_bytes(b"\xef\xbb\xbfa.wav\t1 2\r\n")  # no header: the first path keeps its name
    assert read_manifest(listing) == [(tmp_path / "a.wav", "1 2")]
    assert infer_format(str(listing)) == "audio"


def test_a_list_that_is_not_utf8_is_a_data_error_naming_the_line(tmp_path: Path) -> None:
    """Catches: a bare UnicodeDecodeError with a byte offset instead of the file's line."""
    from lstmlite.data import DataError

    listing = tmp_path / "mine.tsv"
    listing.write_bytes(b"audio\ttranscript\na.wav\t1 \xff2\n")
    with pytest.raises(DataError, match=r"mine.tsv: line 2 is not valid UTF-8"):
        read_manifest(listing)
