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
