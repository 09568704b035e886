"""Write docs/api.md: every name the package and its subpackages export (``__all__``),
with its kind and the first line of its docstring, so the whole Python API has one page
and a name added to an ``__all__`` without a docstring fails a test.

Usage:
    python scripts/api_index.py           # rewrite docs/api.md
    python scripts/api_index.py --check   # exit 1 when docs/api.md is not what it would write

The page is generated, never edited by hand: tests/docs/test_api_index.py runs ``--check``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "api.md"

HEADER = """# The Python API, by package

Every name the package `lstmlite` and its subpackages export (their `__all__`), with the
first line of its docstring; `help(lstmlite.NAME)` (or the subpackage's) shows the rest,
with shapes and an example. The pages beside this one explain how the parts fit together:
[models](models.md), [data](data.md), [training](training.md),
[compression](compression.md), [search](search.md), [interop](interop.md),
[runtime](runtime.md), [microcontrollers](mcu.md), [reports](report.md).

This page is written by `python scripts/api_index.py` from the docstrings (not by hand);
`tests/docs/test_api_index.py` fails when it is out of date or a name has no docstring.
"""


class MissingDocstring(Exception):
    """An exported function or class without a docstring."""


def packages() -> list[str]:
    """``lstmlite`` and every subpackage that declares ``__all__``, in import-path order."""
    import lstmlite

    names = ["lstmlite"] + sorted(m.name for m in pkgutil.walk_packages(lstmlite.__path__, "lstmlite.") if m.ispkg)
    return [n for n in names if getattr(importlib.import_module(n), "__all__", None)]


def _kind(obj: object) -> str:
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isroutine(obj):
        return "function"
    if inspect.ismodule(obj):
        return "module"
    return "constant"


def _summary(package: str, name: str, obj: object) -> str:
    """The first paragraph's first line of ``obj``'s own docstring (a constant: its value's
    type); raises :class:`MissingDocstring` for a function, class or module without one."""
    kind = _kind(obj)
    doc = inspect.getdoc(obj) if kind != "constant" else None
    if kind == "class" and obj.__doc__ is None:
        doc = None  # inspect.getdoc would fall back to a base class's text
    if kind != "constant" and not (doc or "").strip():
        raise MissingDocstring(f"{package}.{name}: a {kind} without a docstring")
    if kind == "constant":
        return f"`{type(obj).__name__}`"
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    sentence = re.match(r"(.+?[.!?])(?=\s+[A-Z]|$)", paragraph)  # its first sentence
    text = sentence.group(1) if sentence else paragraph
    # reST to Markdown: :func:`~a.b.name` -> `name`, :class:`a.B` -> `a.B`, ``x`` -> `x`
    text = re.sub(r":\w+:`(~?)([\w.]+)(\(\))?`",
                  lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text)
    return text.replace("``", "`").replace("|", "\\|")


def render() -> str:
    """The whole page."""
    parts = [HEADER]
    for package in packages():
        module = importlib.import_module(package)
        parts.append(f"\n## `{package}`\n\n| name | kind | what it is |\n|---|---|---|\n")
        for name in module.__all__:
            obj = getattr(module, name)
            parts.append(f"| `{name}` | {_kind(obj)} | {_summary(package, name, obj)} |\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    try:
        text = render()
    except MissingDocstring as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.check:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python scripts/api_index.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
