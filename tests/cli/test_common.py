"""Helpers shared by the sub-commands (src/lstmlite/cli/common.py)."""

from __future__ import annotations

import pytest

from lstmlite.cli.common import format_bytes, format_table


@pytest.mark.parametrize("n, text", [
    (1023, "1,023 B"),
    (1024, "1,024 B (1.00 KiB)"),             # KiB = 1,024 B: one KiB is shown as one
    (1024 ** 2, "1,048,576 B (1.00 MiB)"),
    (3 * 1024 ** 3, "3,221,225,472 B (3.00 GiB)"),
])
def test_format_bytes_switches_unit_at_1024(n: int, text: str) -> None:
    """Binary units from exactly 1,024 bytes on (format_bytes's docstring). Catches the
    unit added only above 1,024 (1,024 B shown without "(1.00 KiB)")."""
    assert format_bytes(n) == text


def test_format_table_groups_counts_and_keeps_flags_and_floats() -> None:
    """A table's integers (params, MACs, sample counts) are grouped by thousands as the byte
    sizes beside them are; floats keep four decimals; a bool stays True/False (not 1).
    Catches "20553" beside "82,351 B", and grouping applied to a float or a bool."""
    rows = format_table([("params", 20553), ("MACs / step", 1234567), ("metric", 0.91234), ("best", True)],
                        ["", "value"]).splitlines()[2:]
    assert [row.split("  ")[-1].strip() for row in rows] == ["20,553", "1,234,567", "0.9123", "True"]


def test_help_shows_each_options_default_unless_it_says_it(capsys):
    """bench --help showed no default for --reps, --input-size and the others; the help
    formatter now adds "(default: X)" where the help does not name a default already,
    and not for flags (a False default) or options without one."""
    from lstmlite.cli.main import main

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split()).split(" options: ", 1)[1]  # past the usage lines
    for option, default in (("--input-size INPUT_SIZE", 40), ("--reps REPS", 30), ("--warmup WARMUP", 5)):
        after = text.split(option, 1)[1].split(" --", 1)[0]
        assert f"(default: {default})" in after, option
    assert "(default: None)" not in text and "(default: False)" not in text
