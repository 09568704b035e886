"""README.md, BENCHMARKS.md and the tutorials hold no result-like number that a results file does not
stand behind (benchmarks/unrendered.py), and the finder finds what it should."""

import pytest

import render
import unrendered


@pytest.mark.parametrize("doc", unrendered.CHECKED, ids=lambda p: p.name)
def test_no_unrendered_results_in_the_docs(doc):
    found = unrendered.find(doc)
    assert found == [], (f"{doc.name}: numbers with no results file behind them (render them or mark them, "
                         f"see benchmarks/unrendered.py): {found}")


def _find(tmp_path, text):
    doc = tmp_path / "B.md"
    doc.write_text(text)
    return [number for _, number in unrendered.find(doc)]


@pytest.mark.parametrize("sentence, expected", [
    ("The tiny model reaches 97.39 % at 1,368 B.", ["97.39 %", "1,368 B"]),
    ("Streaming costs 6.3 µs per frame, 20× below PyTorch.", ["6.3 µs", "20×"]),
    ("The ratio is 0.46 against naive.", ["0.46"]),
    ("It trained for 56 min.", ["56 min"]),
])
def test_hand_typed_results_are_found(tmp_path, sentence, expected):
    assert _find(tmp_path, sentence + "\n") == expected


@pytest.mark.parametrize("sentence", [
    "Install torch 2.13.0 on Python 3.10 first.",          # versions
    "B=32, T=100, I=40, H=128, 2 × 256 LSTM.",             # settings and shapes
    "The goal is ≤ 0.7 × ONNX Runtime and ≥ 97.5 %.",      # bounds
    "Run `lstmlite search --budget size=2KB --n 0.5`.",    # code
    "in KiB = 1,024 B, 50 % sparse.",                      # allow-listed phrases
    "It has 3 seeds, 24 trials and 5,452 questions.",      # counts without a unit of measure
    "Measured on 2026-12-04.",                             # dates
])
def test_non_results_are_not_flagged(tmp_path, sentence):
    assert _find(tmp_path, sentence + "\n") == []


def test_rendered_and_marked_numbers_pass_but_an_unlabelled_region_does_not(tmp_path):
    inline = "It reaches <!-- render:compression-jv; rows[method=baseline].metric; pct -->96.58 %<!-- /render -->.\n"
    block = "<!-- BEGIN render:compression-jv:targets -->\n| 97.39 % |\n<!-- END render:compression-jv:targets -->\n"
    marked = ("<!-- BEGIN unrendered: ad hoc -->\n*Not from a results file (ad hoc):* 1.4 ms against 4.1 ms.\n"
              "<!-- END unrendered -->\n")
    assert _find(tmp_path, inline + block + marked) == []
    hidden = "<!-- BEGIN unrendered: ad hoc -->\n1.4 ms against 4.1 ms.\n<!-- END unrendered -->\n"
    assert _find(tmp_path, hidden) == ["1.4 ms", "4.1 ms"]  # the reader must see the label


def test_inline_values_are_checked_against_their_file(tmp_path, capsys):
    good = render.render_inline("compression-jv; rows[method=baseline].metric; pct")
    doc = tmp_path / "B.md"
    doc.write_text(f"reaches <!-- render:compression-jv; rows[method=baseline].metric; pct -->{good}<!-- /render -->.\n")
    assert render.main(["--check", "--doc", str(doc)]) == 0
    doc.write_text("reaches <!-- render:compression-jv; rows[method=baseline].metric; pct -->99.99 %<!-- /render -->.\n")
    assert render.main(["--check", "--doc", str(doc)]) == 1
    assert "differs from results/compression-jv.json" in capsys.readouterr().err
    render.main(["--doc", str(doc)])
    assert good in doc.read_text()


def test_lookup_paths_and_formats():
    data = {"rows": [{"method": "a", "n": 2, "by": {"f.constprop.0": 3}}, {"method": "b", "n": 1368, "m": 0.9739}],
            "x": 4.0}
    assert render.lookup(data, "rows[method=b].n") == 1368
    assert render.lookup(data, "rows[0].by.f.constprop.0") == 3
    assert render.lookup(data, "rows[method=b&n=1368].m") == 0.9739
    with pytest.raises(KeyError, match="no row"):
        render.lookup(data, "rows[method=c].n")
    assert render.format_value(0.9739, "pct") == "97.39 %"
    assert render.format_value(1368, ",") == "1,368"
    assert render.format_value(60.24, "x1") == "60.2×"
    assert render.format_value(0.0081, "pt") == "+0.81 pt"
