"""lstmlite.search: multi-objective architecture + compression search under a device
budget, on Optuna (DESIGN decision 7; docs/search.md).

Example:
    >>> from lstmlite.search import search                                   # doctest: +SKIP
    >>> search("japanese_vowels", "classify", budget="size=8KB", trials=5, out="runs/s")  # doctest: +SKIP
"""

from .objectives import deployable_bytes, estimated_ram_bytes, latency_us, parse_budget, ram_bytes
from .space import SearchSpace, SpaceError, load_space, parse_space
from .study import MAX_FAILURES_IN_A_ROW, SAMPLERS, TrialsFailed, make_sampler, search

__all__ = ["search", "SearchSpace", "SpaceError", "load_space", "parse_space", "parse_budget",
           "deployable_bytes", "latency_us", "ram_bytes", "estimated_ram_bytes", "make_sampler", "SAMPLERS",
           "TrialsFailed", "MAX_FAILURES_IN_A_ROW"]


import sys as _sys
import types as _types


class _CallableModule(_types.ModuleType):
    """Importing ``lstmlite.search`` binds the package to ``lstmlite.search``; making
    the package callable keeps ``lstmlite.search(...)`` the function the API promises."""

    def __call__(self, *args, **kwargs):
        return search(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
