"""The built-in data sets, loaded offline from installed packages.

- ``japanese_vowels``, ``basic_motions``: aeon's bundled UEA copies, official train/test
  splits (val is a stratified carve of train).
- ``digits``: scikit-learn's 8×8 digits read row by row (8 steps × 8 pixels), a
  stratified train/val/test split.
- ``airline``: aeon's airline passengers series (144 months), forecasting, season 12.

Example:
    >>> from lstmlite.data.spec import DataSpec
    >>> data = load_builtin(DataSpec("basic_motions"))
    >>> data.train.x.shape, data.val.x.shape, data.test.x.shape
    ((36, 100, 6), (4, 100, 6), (40, 100, 6))
"""

from __future__ import annotations

import warnings

import numpy as np

from .catalog import BUILTINS, builtin_names
from .classify import build_feature_classification
from .containers import TaskData
from .errors import DataFileNotFoundError
from .forecast import build_forecast
from .spec import DataSpec

__all__ = ["load_builtin"]


def _aeon(loader_name: str, **kwargs):
    import aeon.datasets

    with warnings.catch_warnings():  # aeon's loaders warn about future API changes
        warnings.simplefilter("ignore")
        return getattr(aeon.datasets, loader_name)(**kwargs)


def _aeon_classification(spec: DataSpec, loader_name: str) -> TaskData:
    parts = {}
    for split in ("train", "test"):
        X, y = _aeon(loader_name, split=split)
        # (N, F, T) array or a list of (F, T_i) arrays → one (T_i, F) array per case
        parts[split] = ([np.asarray(case, dtype=np.float64).T for case in X], [str(v) for v in y])
    return build_feature_classification(spec.source, spec, *parts["train"], *parts["test"])


def _digits(spec: DataSpec) -> TaskData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float64)  # (1797, 8, 8): row r is time step r
    return build_feature_classification(spec.source, spec, list(images), [str(int(v)) for v in digits.target])


def _airline(spec: DataSpec) -> TaskData:
    series = np.asarray(_aeon("load_airline"), dtype=np.float64).reshape(-1)  # (144,)
    return build_forecast(spec.source, spec, series)


_LOADERS = {
    "japanese_vowels": lambda spec: _aeon_classification(spec, "load_japanese_vowels"),
    "basic_motions": lambda spec: _aeon_classification(spec, "load_basic_motions"),
    "digits": _digits,
    "airline": _airline,
}
assert set(_LOADERS) == set(BUILTINS)


def load_builtin(spec: DataSpec) -> TaskData:
    """Load the built-in data set ``spec.source`` shaped by ``spec``."""
    loader = _LOADERS.get(spec.source)
    if loader is None:
        names = ", ".join(builtin_names())
        raise DataFileNotFoundError(f"unknown built-in data set {spec.source!r}; built-ins are {names}")
    return loader(spec)
