"""Find result-like numbers in README.md / BENCHMARKS.md / docs/ that no results file stands behind.

A *result-like number* is a number with a unit of measure (``97.39 %``, ``1,368 B``,
``0.85 µs``, ``60.2×``, ``2.33 bits/char``) or a bare decimal (``0.46``). It may appear only

- inside a render block (``<!-- BEGIN render:NAME -->…<!-- END render:NAME -->`` or the
  inline ``<!-- render:FILE; PATH; FORMAT -->…<!-- /render -->``), which
  ``benchmarks/render.py`` writes from ``benchmarks/results/*.json``;
- inside a region marked as *not from a results file*, whose first visible line says so::

      <!-- BEGIN unrendered: measured ad hoc with a C harness -->
      *Not from a results file (measured ad hoc with a C harness; not re-checked):* …
      <!-- END unrendered -->

- in code (fenced blocks and `inline code`: commands, option values), or in a form that is
  not a result: a version (``2.13.0``, ``arm-none-eabi-gcc 12.2``), a setting (``H=128``,
  ``α = 0.7``, ``lr 0.0005``, ``default 1.0``, ``every 10 s``, ``fraction 0.5``), a goal or a
  bound (``≤ 0.7 ×``, ``≥ 97.5 %``, ``target 0.8``, ``more than 5 %``), a definition
  (``KiB = 1,024 B``, ```NAME` = 1.5``, ``0.01 means …``), arithmetic written out (``384 × 4 B = 1,536 B``: the
  result follows from the operands beside it), a grid (``1.0, 0.975, …, 0.5``), a signal's
  format (``22.05 kHz``), an architecture's parameter count (``1.41 M parameters``), or a
  phrase in :data:`ALLOWED` (each with the reason it is not a result).

``python benchmarks/unrendered.py`` lists what it finds; ``tests/benchmarks/test_unrendered.py``
fails on any, so a new hand-typed result cannot creep into the docs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: README, BENCHMARKS, every page of docs/ and the tutorials. The reference pages in docs/
#: mostly state specifications (bit widths, sizes of formats, settings), which the rules
#: below recognise; a result they quote is rendered or marked like anywhere else.
CHECKED = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md")),
           *sorted((ROOT / "docs" / "tutorials").glob("*.md"))]

UNIT = r"(?:%|pt\b|KiB\b|KB\b|MB\b|GB\b|B\b|µs|us\b|ms\b|s\b|min\b|×|x\b|bits/char|bits per char|GMAC/s|MAC/s)"
NUMBER = r"\d[\d,]*(?:\.\d+)?"
RESULT = re.compile(rf"(?<![\w.=/-])(?P<num>{NUMBER})(?:\s?(?P<unit>{UNIT})|(?<=\.\d)(?P<dec>\d*))")

#: Phrases with numbers that are not results: the phrase, and why.
ALLOWED: dict[str, str] = {
    "KiB = 1,024 B": "a definition of the unit",
    "1 pt loss": "part of a target's wording",
    "1.5 pt loss": "part of a target's wording",
    "1 KB bar": "names a target",
    "2 KB bar": "names a target",
    "bar at 2 KB": "names a target",
    "98 % bar": "names a target",
    "50 % sparse": "a setting of the model (half the weights zeroed), not a result",
    "80 % sparse": "a setting (the fraction of blocks zeroed), not a result",
    "80 % of the (1, 4) blocks": "a setting",
    "80 % of (1, 4) blocks": "a setting",
    "80 % block-sparse": "a setting",
    "0 or 50 % sparsity": "the search space's settings",
    "80 % sparse within +3 % bpc": "an issue's target",
    "int4 within +1 %": "an issue's target",
    "85 % coverage": "the recipe's setting (vocabulary kept by coverage)",
    "15–40 dB": "the synthesis setting",
    "10 ms": "the feature hop, a setting",
    "25 ms": "the feature window, a setting",
    "30-minute": "a time budget, a setting",
    "60 minutes": "a time budget, a setting",
    "1 minute": "a time budget, a setting",
    "32 → 64": "a model shape",
    "0.3× the learning rate": "a setting (the fine-tune's learning-rate factor)",
    "stale (20 s)": "a setting (the heartbeat timeout)",
    "each for 12 s": "a setting (the CI's smoke-fuzz time per target)",
    "each target for 12 s": "a setting (the CI's smoke-fuzz time per target)",
    "JapaneseVowels in 2 KB": "a tutorial's goal, in its title",
    "(JapaneseVowels) in 2 KB": "a tutorial's goal, in its title",
}


def _blank(match: re.Match[str]) -> str:
    """The match replaced by spaces/newlines, so positions and line numbers survive."""
    return re.sub(r"[^\n]", " ", match.group(0))


def strip_allowed(text: str) -> str:
    """``text`` with everything that may hold numbers blanked out."""
    # a section headed "Worked example…" is arithmetic from the page's definitions, not a result
    text = re.sub(r"^(?P<h>#+) Worked example.*?(?=^(?P=h) |\Z)", _blank, text, flags=re.S | re.M)
    text = re.sub(r"<!-- BEGIN render:(?P<n>\S+) -->.*?<!-- END render:(?P=n) -->", _blank, text, flags=re.S)
    text = re.sub(r"<!-- render:.*? -->.*?<!-- /render -->", _blank, text)
    text = re.sub(r"<!-- BEGIN unrendered: .+? -->\n\*Not from a results file.*?<!-- END unrendered -->",
                  _blank, text, flags=re.S)
    text = re.sub(r"^(```+).*?^\1\s*$", _blank, text, flags=re.S | re.M)
    text = re.sub(rf"`[^`\n]+`\s?=\s?{NUMBER}", _blank, text)  # a named constant's definition: `NAME` = 1.5
    text = re.sub(r"`[^`\n]+`", _blank, text)
    text = re.sub(r"<!--.*?-->", _blank, text, flags=re.S)
    text = re.sub(r"https?://\S+", _blank, text)
    # shapes (2 × 256, 7,950 × 128, 128×12, 32 × 32 → 64-bit) before the phrases, which may cut one
    text = re.sub(r"\b\d[\d,]*\s?×\s?\d+\b(?:\s?→\s?\d+)?", _blank, text)
    spans = [m.span() for phrase in ALLOWED  # found before blanking any: phrases may overlap
             for m in re.finditer(r"\s+".join(map(re.escape, phrase.split())), text)]  # a line break may fall anywhere
    for a, b in spans:
        text = text[:a] + re.sub(r"[^\n]", " ", text[a:b]) + text[b:]
    # arithmetic written out: 384 values × 4 B = 1,536 B; … = 896 B (the operands stand beside it)
    text = re.sub(rf"(?:{NUMBER}\s?{UNIT}?\s+(?:\w+\s+){{0,2}}[×+]\s+)+{NUMBER}\s?{UNIT}?\s+=\s+{NUMBER}",
                  _blank, text)
    # an expression's value: 2⁴⁷ / (128 · 65535) ≈ 16.7
    text = re.sub(rf"(?<=[)\d⁰¹²³⁴⁵⁶⁷⁸⁹])\s?≈\s?{NUMBER}", _blank, text)
    # settings and bounds: H=128, B=32, I=40/H=128, α = 0.7; ≤ 0.7 ×, ≥ 97.5 %, < 1e-2, lr 0.0005
    text = re.sub(r"(?<!\w)[^\W\d_]+\s?=\s?\d[\d,.]*", _blank, text)
    text = re.sub(r"(?:[≤≥<>~]|\b(?:goal|target|bar|budget|below|above|under|over|within|at most|at least|"
                  r"more than|less than|default|every|lr|fraction|energy|cover|coverage|sparsity|"
                  r"clamped to|clipped to))\s?[±+−-]?\d[\d,.]*", _blank, text)
    text = re.sub(r"[+−-]?\b\d+(?:\.\d+)?(?:\s?→\s?[+−-]?\d[\d.]*)+", _blank, text)  # a schedule, a mapping: 0 → 0.8
    text = re.sub(rf"{NUMBER}(?:,\s{NUMBER})*,\s…,\s{NUMBER}", _blank, text)  # a grid: 1.0, 0.975, …, 0.5
    text = re.sub(rf"{NUMBER}\s(?=means\b)", _blank, text)           # a definition: 0.01 means …
    text = re.sub(rf"{NUMBER}\s?(?:k?Hz|dB)\b", _blank, text)        # a signal's format: 22.05 kHz
    text = re.sub(r"(?:[^.\n]|\.(?=\d)|\n(?!\n))+",  # a sentence about parameters: the architecture's counts
                  lambda m: re.sub(rf"{NUMBER}\s?[kM]\b", _blank, m.group(0)) if "parameters" in m.group(0)
                  else m.group(0), text)
    # a setting: 80 % sparsity, 75 % of its 1×4 blocks pruned
    text = re.sub(r"\b\d+\s?%\s(?:of (?:its |the )?[^.\n]{0,12}blocks\s)?(?:pruned|sparse\b|sparsity)", _blank, text)
    text = re.sub(r"\b\d+\.\d+\.\d+\b", _blank, text)                 # versions
    text = re.sub(r"(?:Python|PyTorch|torch|ONNX Runtime|arm-none-eabi-gcc|gcc|GCC|clang|opset|TF|TensorFlow)"
                  r"\s+\d+(?:\.\d+)*\+?", _blank, text)
    text = re.sub(r"\b(?:19|20)\d\d-\d\d-\d\d\b", _blank, text)       # dates
    return text


def find(doc: Path) -> list[tuple[int, str]]:
    """(line number, the number with its unit) for every result-like number outside the allowed places."""
    text = strip_allowed(doc.read_text())
    found = []
    for m in RESULT.finditer(text):
        if m.group("unit") is None and m.group("dec") is None:
            continue
        line = text.count("\n", 0, m.start()) + 1
        found.append((line, m.group(0).strip()))
    return found


def main(argv: list[str] | None = None) -> int:
    docs = [Path(a) for a in (argv if argv is not None else sys.argv[1:])] or CHECKED
    total = 0
    for doc in docs:
        for line, number in find(doc):
            print(f"{doc.name}:{line}: {number!r} is not rendered from a results file "
                  "(put it in a render block, or mark it: see benchmarks/unrendered.py)")
            total += 1
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
