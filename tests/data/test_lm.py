"""Language-modelling data (lstmlite.data.lm, read through load_data): a separate test file, line ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstmlite.data import load_data


def test_a_separate_test_file_leaves_the_whole_text_to_train_and_val(tmp_path: Path) -> None:
    """With ``test_path`` the main text is split into train | val only (val = the last
    round(0.1 · n) characters) and the test part is the other file, all of it: the part
    token counts and the first/last windows are checked against the texts by hand.
    Catches test_fraction still cut off the main text (its tail silently dropped)."""
    text = "".join(f"line {k}: the quick brown fox\n" for k in range(40))
    other = "the brown fox: quick line\n" * 20  # characters the training text has
    (tmp_path / "train.txt").write_text(text, encoding="utf-8")
    (tmp_path / "test.txt").write_text(other, encoding="utf-8")
    data = load_data(str(tmp_path / "train.txt"), test_path=str(tmp_path / "test.txt"), seq_len=16)
    n_val = int(np.floor(0.1 * len(text) + 0.5))
    assert data.stats["tokens"] == {"train": len(text) - n_val, "val": n_val, "test": len(other)}
    assert "".join(data.vocab.decode(data.val.x[0])) == text[len(text) - n_val:][:16]
    assert "".join(data.vocab.decode(data.test.x[0])) == other[:16]


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_windows_and_old_mac_line_ends_read_as_newlines(tmp_path: Path, newline: str) -> None:
    """A corpus with CRLF or lone CR line ends gives exactly the arrays and vocabulary of the
    same text with \\n line ends (no "\\r" token). Catches only CRLF being converted."""
    text = "".join(f"line {k}: the quick brown fox\n" for k in range(40))
    (tmp_path / "unix.txt").write_text(text, encoding="utf-8", newline="")
    (tmp_path / "other.txt").write_text(text.replace("\n", newline), encoding="utf-8", newline="")
    unix, other = (load_data(str(tmp_path / f"{n}.txt"), seq_len=16) for n in ("unix", "other"))
    assert "\r" not in other.vocab and other.vocab == unix.vocab
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(other.splits[name].x, unix.splits[name].x)


def test_a_word_level_test_file_keeps_its_newlines_like_the_training_text(tmp_path: Path) -> None:
    """Word level: the separate test file is tokenised as the training text is, newlines
    kept as tokens, so the same text as test file gives the same ids as in training
    (hand-tokenised: "A cat sat." + newline is five tokens, 20 lines are 100). Catches a
    test file tokenised without ``keep_newlines`` (80 tokens, the "\\n" id never seen)."""
    text = "a cat sat.\nthe dog ran.\n" * 30
    other = "A cat sat.\n" * 20
    (tmp_path / "train.txt").write_text(text, encoding="utf-8")
    (tmp_path / "test.txt").write_text(other, encoding="utf-8")
    data = load_data(str(tmp_path / "train.txt"), test_path=str(tmp_path / "test.txt"), level="word", seq_len=4)
    assert data.stats["tokens"]["test"] == 100
    assert data.vocab.decode(data.test.x[0]) == ["a", "cat", "sat", "."]
    assert data.vocab.decode(data.test.y[0]) == ["cat", "sat", ".", "\n"]
