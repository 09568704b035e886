"""Helpers shared by the sub-commands (src/lstmlite/cli/common.py)."""

from __future__ import annotations

import pytest

from lstmlite.cli.common import format_bytes


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
