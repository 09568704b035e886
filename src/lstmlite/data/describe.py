"""``lstmlite data list`` / ``lstmlite data show``: what the built-ins are and hold.

Example:
    >>> [d["name"] for d in list_datasets()]
    ['airline', 'basic_motions', 'digits', 'japanese_vowels']
    >>> info = describe_dataset("basic_motions")
    >>> info["splits"]["test"]["x_shape"], info["splits"]["train"]["class_counts"]["walking"]
    ([40, 100, 6], 9)
"""

from __future__ import annotations

from typing import Any

from .catalog import BUILTINS, builtin_names
from .load import load_data

__all__ = ["list_datasets", "describe_dataset"]


def list_datasets() -> list[dict[str, Any]]:
    """The built-in data sets (no loading): name, task, description, size, n_classes, ….

    ``size`` counts examples (series) for classification and time points for the
    forecasting series (``n_series`` = 1).
    """
    return [{"name": name, **BUILTINS[name]} for name in builtin_names()]


def describe_dataset(name: str, **overrides: Any) -> dict[str, Any]:
    """Load a built-in (or a file) and summarise it: shapes, class counts, length stats.

    Args:
        name: a built-in name or a file path.
        **overrides: spec options, as for :func:`~lstmlite.data.load_data`.

    Returns:
        A JSON-serialisable dict: ``name``, ``task``, ``input_size``, ``n_classes``,
        ``class_names``, ``vocab_size``, ``splits`` (per split ``n``, ``x_shape``,
        ``y_shape``, ``length`` min/mean/max, ``class_counts``), ``spec`` and, for
        built-ins, ``description`` and ``source``.
    """
    data = load_data(name, **overrides)
    out = data.summary()
    if name in BUILTINS:
        out["description"] = BUILTINS[name]["description"]
        out["source"] = BUILTINS[name]["source"]
    return out
