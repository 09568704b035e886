"""README.md, BENCHMARKS.md and every page of docs/ (tutorials included) hold no result-like number that a results file does not
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
    "Distil (T = 2, α = 0.7, lr 0.0005), `hidden_unit_prune` fraction 0.25, energy 0.85.",  # settings
    "Clipping (default 1.0); a heartbeat every 10 s; `gradual_prune` 0 → 0.8.",            # settings, a schedule
    "A point more than 5 % over the budget; better by at least 0.03.",                    # bounds
    "The clip ratio in 1.0, 0.975, …, 0.5; 0.01 means 10 ms per second.",                  # a grid, a definition
    "384 values × 4 B = 1,536 B; 128 fp16 scales × 2 B = 256 B: 512 B + 128 B + 256 B = 896 B.",  # arithmetic
    "One 32 × 32 → 64-bit multiply; 75 % of its 1×4 blocks pruned; 16-bit mono at 22.05 kHz.",   # shapes, formats
    "Built with arm-none-eabi-gcc\n12.2 at -Os; 1.41 M parameters of which 1.28 M are the embedding.",
    "Rounds half away (2.5 → 3, −2.5 → −3); input clamped to ±7.9053; with TF 2.21.",      # mappings, constants
    "K ≤ 2⁴⁷ / (128 · 65535) ≈ 16.7 M; as fast at 80 %\nsparsity; fuzzes each for 12 s.",  # a formula's value
])
def test_non_results_are_not_flagged(tmp_path, sentence):
    assert _find(tmp_path, sentence + "\n") == []


def test_a_worked_example_section_is_arithmetic_but_the_next_section_is_checked(tmp_path):
    text = ("## Worked example: one step\n\n| a | 1032 | 0.2520 | 1032.06 |\n\n### its table\n0.5039\n"
            "## Next\nIt reaches 97.30 %.\n")
    assert _find(tmp_path, text) == ["97.30 %"]


@pytest.mark.parametrize("sentence, expected", [
    ("With lr 0.0005 it reaches 0.91 after 15 epochs.", ["0.91"]),      # a result beside a setting
    ("Pruned to 80 % sparsity, it loses 1.5 % accuracy.", ["1.5 %"]),
    ("The model has 1.41 M parameters. It runs in 1.41 ms.", ["1.41 ms"]),  # the count rule stops at the sentence
    ("It takes 2.5 B, about 4× smaller.", ["2.5 B", "4×"]),
])
def test_results_beside_settings_are_still_found(tmp_path, sentence, expected):
    assert _find(tmp_path, sentence + "\n") == expected


def test_every_docs_page_is_checked():
    pages = {p.name for p in (unrendered.ROOT / "docs").glob("*.md")}
    assert pages and pages <= {p.name for p in unrendered.CHECKED}
    assert {p.name for p in (unrendered.ROOT / "docs" / "tutorials").glob("*.md")} <= {p.name for p in unrendered.CHECKED}


@pytest.mark.parametrize("page", ["compression.md", "integer.md", "runtime.md", "search.md", "mcu.md", "training.md"])
def test_a_hand_typed_result_planted_in_a_docs_page_is_caught(tmp_path, page):
    text = (unrendered.ROOT / "docs" / page).read_text()
    doc = tmp_path / page
    doc.write_text(text + "\nOn JapaneseVowels this recipe reaches 97.30 % at 1,412 B.\n")
    n = text.count("\n") + 2
    assert unrendered.find(doc) == [(n, "97.30 %"), (n, "1,412 B")]


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


def test_inline_mean_over_rows():
    import json
    rows = json.loads((render.RESULTS / "seq2seq.json").read_text())["rows"]
    small = [r["metric"] for r in rows if r["method"] == "recipe seq2seq-small"]
    assert len(small) > 1  # one per seed: the mean is not the first row's value
    assert render.render_inline("seq2seq; mean(rows[method=recipe seq2seq-small].metric); .4f") == \
        f"{sum(small) / len(small):.4f}"
    with pytest.raises(KeyError, match="no row"):
        render.render_inline("seq2seq; mean(rows[method=nothing].metric); .4f")
