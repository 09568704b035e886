"""Shared fixtures for the data tests: built-ins loaded once per session (aeon's
JapaneseVowels parse takes about a second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstmlite.data import TaskData, load_data

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def builtin_data() -> dict[str, TaskData]:
    """Each built-in with its default spec."""
    return {name: load_data(name) for name in ("japanese_vowels", "basic_motions", "digits", "airline")}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's reference data folder (``../shared/data`` from the repository root)."""
    return SHARED_DATA
