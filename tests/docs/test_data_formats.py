"""docs/data.md's table of users' files names every file kind lstmlite reads and every task
each kind feeds (lstmlite.data.spec: EXTENSIONS and FORMAT_TASKS), so a reader added or a
task opened to a format without its row fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstmlite.data.spec import EXTENSIONS, FORMAT_TASKS, MANIFEST

ROOT = Path(__file__).resolve().parents[2]


def _rows() -> list[tuple[str, str]]:
    """(extension cell, task cell) of each row of the "Your files" table."""
    text = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    table = text[text.index("| format | extension | task | contents |"):]
    rows = []
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows.append((cells[1], cells[2]))
    return rows


@pytest.mark.parametrize("fmt", sorted(FORMAT_TASKS))
def test_the_table_names_each_format_with_each_of_its_tasks(fmt: str) -> None:
    """Catches: JSONL tagging files (tokens/tags, --task tag), ``.ndjson`` and audio lists
    (ctc) read by the code and missing from the table."""
    extensions = [ext for ext, f in EXTENSIONS.items() if f == fmt] or [MANIFEST]
    rows = _rows()
    for ext in extensions:
        tasks = " ".join(task for cell, task in rows if f"`{ext}`" in cell or (fmt == "audio" and MANIFEST in cell))
        for task in FORMAT_TASKS[fmt]:
            assert task in tasks, f"docs/data.md: no row for {ext} files with task {task}"
