"""DESIGN layering: runtime/ loads and runs; it imports nothing from compress/ and
reaches the writer (export/) only inside the functions that convert models."""

from __future__ import annotations

import ast
from pathlib import Path

import lstmlite.runtime

RUNTIME = Path(lstmlite.runtime.__file__).parent


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(module imported, whether at module level) for every import in a file."""
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            name = "." * node.level + (node.module or "")
            found += [(f"{name}.{a.name}" if not node.module else name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
    return found


def test_runtime_modules_import_nothing_from_compress_and_the_writer_only_lazily():
    for path in sorted(RUNTIME.glob("*.py")):
        for name, top_level in _imports(ast.parse(path.read_text())):
            parts = name.lstrip(".").split(".")
            if path.name != "bench.py":  # the benchmark harness builds synthetic pruned models
                assert "compress" not in parts, f"{path.name} imports {name}"
            if "export" in parts:
                assert not top_level, f"{path.name} imports {name} at module level"


def test_the_writer_lives_in_export_and_old_imports_still_work():
    from lstmlite.export import lsl as writer
    from lstmlite.runtime import lsl as fmt
    from lstmlite.runtime import write_lsl

    assert write_lsl is writer.write_lsl is fmt.write_lsl
    assert "def write_lsl" not in (RUNTIME / "lsl.py").read_text()
