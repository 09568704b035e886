"""lstmlite._text.one_line: another library's error quoted on one line, cut with "..."
inside the limit, never blank."""

from __future__ import annotations

import doctest

import pytest

import lstmlite._text
from lstmlite._text import ERROR_CHARS, one_line


def test_an_exception_with_an_empty_message_gives_its_type_name():
    assert one_line(KeyError()) == "KeyError"
    assert one_line(RuntimeError("  \n\t ")) == "RuntimeError"


def test_an_empty_text_stays_empty():
    assert one_line("") == ""


def test_newlines_tabs_and_runs_of_spaces_become_one_space():
    assert one_line(ValueError("line one\n\tline  two\r\n  three ")) == "line one line two three"


def test_a_long_message_is_cut_with_an_ellipsis_inside_the_limit():
    got = one_line("a" * 500)
    assert got == "a" * (ERROR_CHARS - 3) + "..."
    assert len(got) == ERROR_CHARS == 160


def test_the_cut_drops_trailing_space_before_the_ellipsis():
    assert one_line("abcd efgh", limit=8) == "abcd..."


def test_a_message_exactly_at_the_limit_is_kept_whole():
    text = "b" * ERROR_CHARS
    assert one_line(text) == text
    assert one_line("x" * 7, limit=7) == "x" * 7
    assert one_line("x" * 8, limit=7) == "xxxx..."


def test_whitespace_is_collapsed_before_the_length_is_measured():
    # 160 characters once flattened: a cut measured on the raw text would wrongly add "..."
    text = "c" * 80 + "\n\n\n" + "d" * 79
    assert one_line(text) == "c" * 80 + " " + "d" * 79


def test_a_limit_too_small_for_the_ellipsis_is_refused():
    with pytest.raises(ValueError, match="limit"):
        one_line("abcdef", limit=3)


def test_the_docstring_examples_hold():
    assert doctest.testmod(lstmlite._text).failed == 0


def test_no_limit_flattens_but_keeps_the_whole_text():
    assert one_line("e" * 500 + "\n f", limit=None) == "e" * 500 + " f"
    assert one_line(ValueError(), limit=None) == "ValueError"
