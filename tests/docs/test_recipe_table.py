"""docs/compression.md's table of shipped recipes states each recipe's settings; every number
in a row must be a value of that recipe's YAML (src/lstmlite/recipes/NAME.yaml), so a recipe re-tuned
without its docs row fails here (the page is descriptive text, not rendered)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import lstmlite

ROOT = Path(__file__).resolve().parents[2]
RECIPES = Path(lstmlite.__file__).resolve().parent / "recipes"  # what `--recipe NAME` loads
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\w)")  # 0.0005, 20; not the 4 of int4 or 8 of int8_qat


def _rows() -> dict[str, str]:
    text = (ROOT / "docs" / "compression.md").read_text()
    table = text[text.index("| shipped recipe | steps |"):]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("| `"):
            break
        name, steps = re.match(r"\| `([^`]+)` \| (.*) \|$", line).groups()
        rows[name] = steps
    return rows


def _values(node) -> set[float]:
    if isinstance(node, dict):
        return set().union(*map(_values, node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*map(_values, node)) if node else set()
    if isinstance(node, bool):
        return set()
    if isinstance(node, (int, float)):
        return {float(node)}
    return set()


def test_the_table_lists_every_shipped_recipe():
    shipped = {p.stem for p in RECIPES.glob("*.yaml")}
    assert set(_rows()) == shipped - {"seq2seq-small"}  # seq2seq-small: docs/seq2seq.md describes it


@pytest.mark.parametrize("name, steps", sorted(_rows().items()))
def test_every_number_in_a_row_is_a_value_of_its_recipe(name, steps):
    recipe = yaml.safe_load((RECIPES / f"{name}.yaml").read_text())
    values = _values(recipe) | {0.0}  # 0: a schedule's start, the default
    numbers = [float(n) for n in NUMBER.findall(re.sub(r"`[^`]*`", " ", steps))]
    missing = [n for n in numbers if n not in values]
    assert not missing, f"docs/compression.md: the {name} row says {missing}, not in lstmlite/recipes/{name}.yaml"
