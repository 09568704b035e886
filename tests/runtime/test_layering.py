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


def test_every_public_name_of_the_runtime_is_importable_from_it():
    """``from lstmlite.runtime import *`` gives every name of its ``__all__``, which holds
    the engine module's whole public API (set_isa, supported_isas, info, ...), and the
    writer's functions resolve from the package to lstmlite.export.lsl's own
    (docs/runtime.md: the writer "stays importable from lstmlite.runtime")."""
    from lstmlite.export import lsl as writer
    from lstmlite.runtime import engine

    namespace: dict = {}
    exec("from lstmlite.runtime import *", namespace)
    assert set(lstmlite.runtime.__all__) <= set(namespace)
    assert set(engine.__all__) <= set(lstmlite.runtime.__all__)
    for name in ("quantize_rows", "spec_from_module", "spec_from_state_dict", "write_lsl", "export_lsl",
                 "spec_from_run"):
        assert getattr(lstmlite.runtime, name) is getattr(writer, name), name
