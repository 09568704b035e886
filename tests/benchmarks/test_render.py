"""BENCHMARKS.md's rendered tables equal what benchmarks/render.py makes from the results
JSON files: a re-measured result without a re-render, or a hand-edited number, fails here."""

import pytest

import render


BENCHMARKS_MD = render.ROOT / "BENCHMARKS.md"


@pytest.mark.parametrize("doc", render.DOCS, ids=lambda p: p.name)
def test_every_document_matches_its_results_files(doc):
    new, changed = render.render(doc.read_text())
    assert changed == [], f"run python benchmarks/render.py: {doc.name} blocks {changed} differ from results"


def test_the_quoted_results_are_rendered_blocks():
    names = [m.group("name") for m in render.BLOCK.finditer(BENCHMARKS_MD.read_text())]
    assert {"compression-jv", "compression-jv:targets", "compression-trec", "search-jv", "baselines",
            "train_speed", "compression-lm:budgets", "mcu-lstm64"} <= set(names)
    assert render.main(["--check"]) == 0


def test_a_hand_edited_number_is_caught(tmp_path, capsys):
    doc = tmp_path / "BENCHMARKS.md"
    text = BENCHMARKS_MD.read_text()
    start = text.index("<!-- BEGIN render:compression-jv -->")
    row = text.index("| baseline |", start)
    edited = text[:row] + text[row:].replace("100.00 %", "99.90 %", 1)
    assert edited != text
    doc.write_text(edited)
    assert render.main(["--check", "--doc", str(doc)]) == 1
    assert "render:compression-jv differs" in capsys.readouterr().err
    assert render.main(["--doc", str(doc)]) == 0  # re-rendering restores the measured number
    assert doc.read_text() == text


def test_a_block_without_a_renderer_is_an_error(tmp_path):
    doc = tmp_path / "B.md"
    doc.write_text("<!-- BEGIN render:nowhere -->\nx\n<!-- END render:nowhere -->\n")
    with pytest.raises(KeyError, match="render:nowhere"):
        render.main(["--check", "--doc", str(doc)])
