"""docs/api.md lists every name the package and its subpackages export, with its
docstring's first sentence: the page is what scripts/api_index.py writes (a name added to
an ``__all__``, or a changed docstring, without rerunning it fails here), and an exported
function or class without a docstring fails the generator."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api_index():
    spec = importlib.util.spec_from_file_location("api_index", ROOT / "scripts" / "api_index.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["api_index"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("api_index", None)


def test_the_page_is_what_the_generator_writes(api_index, capsys):
    assert api_index.main(["--check"]) == 0, capsys.readouterr().err


def test_every_exported_name_of_every_package_is_on_the_page(api_index):
    """Independent of the generator's own loop: each package's ``__all__``, read here, has a
    row under that package's heading."""
    import lstmlite.runtime
    import lstmlite.search

    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for package in (lstmlite, lstmlite.runtime, lstmlite.search):
        section = page.split(f"## `{package.__name__}`\n", 1)[1].split("\n## ", 1)[0]
        for name in package.__all__:
            assert f"| `{name}` |" in section, (package.__name__, name)


def test_a_function_without_a_docstring_is_refused(api_index, monkeypatch):
    import lstmlite

    def undocumented():
        pass

    monkeypatch.setattr(lstmlite, "undocumented", undocumented, raising=False)
    monkeypatch.setattr(lstmlite, "__all__", [*lstmlite.__all__, "undocumented"])
    with pytest.raises(api_index.MissingDocstring, match=r"lstmlite.undocumented: a function without a docstring"):
        api_index.render()
    assert api_index.main(["--check"]) == 1


def test_a_summary_is_the_first_sentence_in_markdown(api_index):
    def documented():
        """Decode rows with a :class:`~lstmlite.nn.Seq2Seq` and :func:`lstmlite.train` (e.g. ``x``). More | here."""

    assert api_index._summary("p", "documented", documented) == (
        "Decode rows with a `Seq2Seq` and `lstmlite.train` (e.g. `x`).")
