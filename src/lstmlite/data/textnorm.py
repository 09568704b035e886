"""Text-normalization pairs from real locale data (Babel / CLDR).

``make_text_norm(out, n, seed)`` writes ``out/pairs.tsv``: ``source<TAB>target`` lines
that turn dates, times, numbers and amounts of money as people write them in several
languages into their ISO / plain form, and back. The written forms come from the
Unicode CLDR locale data through Babel (month names, ordering, separators, 12/24-hour
clocks), so the pairs are what those locales really write. The source starts with the
direction, ``de>iso`` (written → ISO) or ``iso>de`` (ISO → written):

=========  =======================  ============================
kind       written (``de``)         ISO / plain
=========  =======================  ============================
date       ``5. März 2024``         ``2024-03-05``
time       ``2:05 PM`` (``en``)     ``14:05``
number     ``1.234.567,5``          ``1234567.5``
money      ``1.234,50 €``           ``EUR 1234.50``
=========  =======================  ============================

Train on it with ``lstmlite train --data out/pairs.tsv --task seq2seq``.

Example:
    >>> import tempfile
    >>> path = make_text_norm(tempfile.mkdtemp(), n=4, seed=0)
    >>> len(open(path, encoding="utf-8").read().splitlines())
    4
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import numpy as np

from .errors import DataError

__all__ = ["make_text_norm", "text_norm_pairs", "LOCALES", "KINDS"]

log = logging.getLogger(__name__)

#: language prefix → CLDR locale
LOCALES = {"en": "en_US", "de": "de_DE", "fr": "fr_FR", "es": "es_ES", "it": "it_IT"}
KINDS = ("date", "time", "number", "money")
_CURRENCIES = ("EUR", "USD")


def _babel():
    try:
        import babel.dates
        import babel.numbers
    except ImportError:  # an optional extra: say which
        raise ImportError("text-norm data needs Babel: pip install 'lstmlite[seq2seq]'") from None
    return babel.dates, babel.numbers


def _one(kind: str, locale: str, rng: np.random.Generator) -> tuple[str, str]:
    """(written form in ``locale``, ISO / plain form) of one random value."""
    dates, numbers = _babel()
    if kind == "date":
        day = datetime.date(1950, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 365 * 100)))
        return dates.format_date(day, "long", locale=locale), day.isoformat()
    if kind == "time":
        t = datetime.time(int(rng.integers(0, 24)), int(rng.integers(0, 60)))
        return dates.format_time(t, "short", locale=locale), t.strftime("%H:%M")
    if kind == "number":
        digits = int(rng.integers(1, 8))
        value = int(rng.integers(10 ** (digits - 1), 10 ** digits))
        if rng.random() < 0.5:  # one decimal place half the time
            text = f"{value}.{int(rng.integers(1, 10))}"
        else:
            text = str(value)
        return numbers.format_decimal(float(text) if "." in text else value, locale=locale), text
    if kind == "money":
        cents = int(rng.integers(100, 10 ** 7))
        currency = _CURRENCIES[int(rng.integers(len(_CURRENCIES)))]
        plain = f"{cents // 100}.{cents % 100:02d}"
        return numbers.format_currency(float(plain), currency, locale=locale), f"{currency} {plain}"
    raise DataError(f"unknown text-norm kind {kind!r}; choose from {', '.join(KINDS)}")


def text_norm_pairs(n: int, seed: int = 0, languages: tuple[str, ...] = tuple(LOCALES),
                    kinds: tuple[str, ...] = KINDS) -> list[tuple[str, str]]:
    """``n`` (source, target) pairs, both directions, drawn with ``seed``."""
    unknown = sorted(set(languages) - set(LOCALES))
    if unknown:
        raise DataError(f"unknown text-norm language(s) {unknown}; choose from {', '.join(LOCALES)}")
    if n < 1:
        raise DataError(f"n={n} must be at least 1")
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        lang = languages[int(rng.integers(len(languages)))]
        kind = kinds[int(rng.integers(len(kinds)))]
        written, iso = _one(kind, LOCALES[lang], rng)
        if rng.random() < 0.5:
            pairs.append((f"{lang}>iso {written}", iso))
        else:
            pairs.append((f"iso>{lang} {iso}", written))
    return pairs


def make_text_norm(out: str | Path, n: int = 3000, seed: int = 0, languages: tuple[str, ...] = tuple(LOCALES),
                   kinds: tuple[str, ...] = KINDS, overwrite: bool = False) -> Path:
    """Write ``out/pairs.tsv`` (see the module doc); the same ``seed``, the same file.

    ``out`` must not exist or be empty, unless ``overwrite`` (as ``make_spoken_digits``):
    a ``pairs.tsv`` there may be one a user edited. Returns the path of ``pairs.tsv``.

    Raises:
        DataError: ``out`` holds files and ``overwrite`` is false.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out}: folder is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pairs.tsv"
    lines = [f"{s}\t{t}\n" for s, t in text_norm_pairs(n, seed, tuple(languages), tuple(kinds))]
    path.write_text("".join(lines), encoding="utf-8")
    log.info("wrote %d text-normalization pairs to %s", n, path)
    return path
