"""Static facts about the built-in data sets (no loading, no heavy imports).

:mod:`lstmlite.data.spec` needs the names and tasks to validate a spec, and
``lstmlite data list`` should answer instantly, so these facts live apart from the
loaders in :mod:`lstmlite.data.builtin`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BUILTINS", "builtin_names"]

# name → facts. "size" counts examples (series for classification, time points for the
# forecasting series); the numbers are those of the installed packages' copies.
BUILTINS: dict[str, dict[str, Any]] = {
    "japanese_vowels": {
        "task": "classify",
        "description": "UEA JapaneseVowels (aeon): 9 speakers, 12 LPC cepstrum coefficients "
        "per frame, variable length 7-29 frames; official train/test split",
        "source": "aeon.datasets.load_japanese_vowels",
        "size": 640,
        "n_train": 270,
        "n_test": 370,
        "n_classes": 9,
        "input_size": 12,
    },
    "basic_motions": {
        "task": "classify",
        "description": "UEA BasicMotions (aeon): smartwatch accelerometer + gyroscope, "
        "6 channels x 100 steps, 4 activities; official train/test split",
        "source": "aeon.datasets.load_basic_motions",
        "size": 80,
        "n_train": 40,
        "n_test": 40,
        "n_classes": 4,
        "input_size": 6,
    },
    "digits": {
        "task": "classify",
        "description": "scikit-learn digits read row by row: 8 time steps of 8 pixels "
        "(sequential-image task), 10 classes; stratified train/val/test",
        "source": "sklearn.datasets.load_digits",
        "size": 1797,
        "n_classes": 10,
        "input_size": 8,
    },
    "airline": {
        "task": "forecast",
        "description": "Box-Jenkins airline passengers (aeon): 144 monthly totals 1949-1960, "
        "season 12; chronological split, the last months are the test targets",
        "source": "aeon.datasets.load_airline",
        "size": 144,
        "n_series": 1,
        "n_classes": 0,
        "input_size": 1,
        "season": 12,
        "seq_len": 24,
    },
}


def builtin_names() -> list[str]:
    """The built-in data set names, sorted."""
    return sorted(BUILTINS)
