"""write_report on real (tiny) run dirs: sections, numbers, escaping, self-containment."""

import base64
import io
from html import escape, unescape
import json
from pathlib import Path
import re

import numpy as np
import pytest
import torch
from PIL import Image

from lstmlite.export.size import account
from lstmlite.io import load_run
from lstmlite.report import render_report, write_report
from lstmlite.report.runs import ReportRun, gather, link_parents

EVIL_LABEL = '<script>alert("label")</script>'


def _images(html: str) -> list[bytes]:
    """Every inline image, each fully decoded once (Pillow raises on a truncated PNG,
    which a browser draws in part without any error)."""
    found = [base64.b64decode(m) for m in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]
    for png in found:
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            assert image.format == "PNG" and min(image.size) > 50
    return found


def _assert_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    for attr in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html):
        assert attr.startswith("data:"), attr  # nothing from the network or another file
    assert "http://" not in html and "https://" not in html and "@import" not in html
    assert "url(" not in html


@pytest.fixture(scope="module")
def jv_report(jv_runs, tmp_path_factory):
    base, small = jv_runs
    bench = tmp_path_factory.mktemp("bench") / "bench.json"
    bench.write_text(json.dumps({"machine": {}, "cases": [
        {"engine": "torch-fp32", "input_size": 12, "hidden_size": 8, "seq_len": 20, "batch": 1,
         "mode": "sequence", "median_us": 120.0, "p90_us": 150.0},
        {"engine": "lstmlite-int8", "input_size": 12, "hidden_size": 8, "seq_len": 20, "batch": 1,
         "mode": "sequence", "median_us": 9.5, "p90_us": 11.0}]}))
    out = write_report([base, small], bench.parent / "report.html", bench=[bench])
    return out.read_text(encoding="utf-8")


def test_every_section_is_there(jv_report):
    for heading in ("Comparison", "Accuracy against size", "Model cards", "Latency against the peers",
                    "Per-layer sparsity, bits and rank", "Training curves",
                    "Confusion matrices and per-class change"):
        assert f"<h2>{heading}</h2>" in jv_report, heading
    assert "per-class test accuracy change" in jv_report  # base-int8 vs its source run base
    images = _images(jv_report)
    assert len(images) >= 6 and all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in images)
    _assert_self_contained(jv_report)


def test_cards_show_the_exported_file_bytes_and_macs(jv_runs, jv_report, tmp_path):
    from lstmlite.export.lsl import spec_from_module, write_lsl, default_weights

    for run_dir in jv_runs:
        model = load_run(run_dir).model
        spec = spec_from_module(model)
        file_bytes = len(write_lsl(spec, weights=default_weights(spec, None)))
        acc = account(model)
        assert acc.size_bytes == file_bytes
        assert f"{file_bytes:,} B" in jv_report and f"{acc.macs_per_step:,}" in jv_report
    assert "120" in jv_report and "lstmlite-int8 (sequence, T=20, B=1)" in jv_report


def test_per_class_change_uses_the_parent_run(jv_runs):
    runs = [gather(p) for p in jv_runs]
    link_parents(runs)
    base, small = runs
    assert small.parent is base and base.parent is None
    # the confusion matrix is of this run's own test predictions
    assert len(small.y_true) == 370 and small.metric == pytest.approx(float(np.mean(small.y_true == small.y_pred)))


def _given_run(name: str, metric: float, y_pred: list[int], parent: ReportRun | None = None) -> ReportRun:
    """A classifier run with given test predictions (y_true below), no run dir needed."""
    from pathlib import Path

    from lstmlite.nn import SequenceClassifier

    return ReportRun(path=Path(name), name=name, config={"task": "classify"},
                     metrics={"metric_name": "accuracy", "metric": metric, "test": {"accuracy": metric},
                              "val": {"accuracy": metric / 2}}, history=[], recipe=None,
                     model=SequenceClassifier(input_size=3, hidden_size=4, n_classes=3), size_bytes=1000,
                     size_basis="lsl", macs_per_step=10, class_names=["x", "y", "z"],
                     y_true=np.array([0, 0, 1, 1, 2, 2, 2, 2]), y_pred=np.array(y_pred), parent=parent)


def test_delta_and_per_class_change_are_this_run_minus_its_source() -> None:
    """The comparison's Δ vs source is the run's metric minus its source's (0.75 − 0.5), and
    the per-class table shows the source's and this run's per-class accuracy from their own
    predictions, hand-counted (x: 1/2 → 2/2, y: 2/2 → 1/2, z: 2/4 → 3/4), the largest loss
    first. Catches Δ taken the other way round and a "before" computed from this run's own
    predictions (every change 0)."""
    source = _given_run("source", 0.5, [0, 1, 1, 1, 0, 0, 2, 2])
    run = _given_run("small", 0.75, [0, 0, 1, 0, 2, 2, 2, 0], parent=source)
    html = render_report([source, run])
    assert "<td>+0.2500</td>" in html and "-0.2500" not in html
    rows = re.findall(r"<tr><td>([xyz])</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", html)
    assert rows == [("y", "1", "0.5", "-50.0 points"), ("z", "0.5", "0.75", "+25.0 points"),
                    ("x", "0.5", "1", "+50.0 points")]


def test_a_source_predicting_a_class_this_run_never_does_is_compared() -> None:
    """Without class names, the per-class table counts the classes of both runs: the source
    predicts class 2, which neither this run's predictions nor any test row holds, so class
    2 is a row with no test rows, and classes 0 and 1 compare hand-counted (0: 1/2 -> 2/2,
    1: 2/2 -> 1/2). It raised IndexError (the matrix was sized by this run alone)."""
    source = _given_run("source", 0.75, [0, 2, 1, 1])
    run = _given_run("small", 0.75, [0, 0, 1, 0], parent=source)
    for r in (source, run):
        r.class_names, r.y_true = [], np.array([0, 0, 1, 1])
    html = render_report([source, run])
    rows = re.findall(r"<tr><td>([012])</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", html)
    assert ("0", "0.5", "1", "+50.0 points") in rows and ("1", "1", "0.5", "-50.0 points") in rows
    assert any(row[0] == "2" for row in rows)


def test_a_vocabulary_pruned_language_model_shows_no_delta() -> None:
    """A language model whose recipe pruned the vocabulary is measured on the pruned
    vocabulary (dropped tokens count as <unk>), so its perplexity is not comparable with its
    source's: the comparison says so instead of a Δ, and the card notes it; a pruned model
    without vocab_prune keeps its Δ. Planted and failing it: the Δ (-3.0000 here, an apparent
    gain) shown as for any run, as it was."""
    from pathlib import Path

    from lstmlite.nn import LanguageModel

    def lm(name, metric, steps):
        return ReportRun(path=Path(name), name=name, config={"task": "lm"},
                         metrics={"metric_name": "perplexity", "metric": metric, "baseline_metric": 15.0},
                         history=[], recipe={"applied": [{"method": m} for m in steps]} if steps else None,
                         model=LanguageModel(vocab_size=5, embed_dim=2, hidden_size=2), size_bytes=1000,
                         size_basis="lsl", macs_per_step=10)

    html = render_report([lm("pruned", 12.0, ["vocab_prune", "fake_quant"]), lm("int8", 16.0, ["weight_quant"])])
    assert "<td>not comparable (vocabulary pruned)</td>" in html and "-3.0000" not in html
    assert "<td>+1.0000</td>" in html
    assert "perplexity on the pruned vocabulary (dropped tokens count as &lt;unk&gt;)" in html


def test_card_shows_the_test_and_the_validation_metric() -> None:
    """A run's card shows its test metric and, on its own row, the validation metric recorded
    in metrics.json's ``val`` (0.375 here, half the test metric 0.75). Catches the
    validation row reading the ``test`` entry."""
    html = render_report([_given_run("small", 0.75, [0, 0, 1, 0, 2, 2, 2, 0])])
    assert "<tr><th>test accuracy</th><td>0.75</td></tr>" in html
    assert "<tr><th>validation accuracy</th><td>0.375</td></tr>" in html


def test_parent_is_read_from_disk_when_not_given(jv_runs, tmp_path):
    html = write_report([jv_runs[1]], tmp_path / "one.html").read_text()
    assert "per-class test accuracy change" in html and "base-int8 vs base" in html


def test_text_from_user_files_is_escaped(text_runs, tmp_path):
    html = write_report(list(text_runs), tmp_path / "text.html", explain_sample=0).read_text()
    _assert_self_contained(html)
    assert EVIL_LABEL not in html and "<b>bad</b>" not in html
    assert "&lt;script&gt;alert(&quot;label&quot;)&lt;/script&gt;" in html  # the class name, escaped
    assert "Explanation: base-int8" in html and 'class="tokens"' in html
    # the tokenizer splits "<b>bad</b>" into "<", "b", ">", ...: every token shows escaped
    tokens = re.findall(r'<span style="[^"]*" title="[^"]*">(.*?)</span>', html)
    assert tokens and all(t == escape(unescape(t)) for t in tokens), tokens


def test_no_runs_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no run dirs"):
        write_report([], tmp_path / "x.html")


def test_forecaster_and_language_model_runs(other_runs, tmp_path):
    html = write_report(list(other_runs), tmp_path / "other.html", explain_sample=0).read_text()
    _assert_self_contained(html)
    _images(html)
    # one accuracy-vs-size plot per metric: MAE and perplexity are not on one axis
    assert 'alt="mae against exported size"' in html and 'alt="perplexity against exported size"' in html
    assert "Confusion matrices" not in html  # no classifier here
    assert "Explanation: airline" in html and "Explanation: words-lm" in html
    assert "forecast value 0" in html and "logit of the next token" in html


def test_a_run_without_data_is_reported_but_not_explained(jv_runs, tmp_path, caplog):
    from lstmlite.io import save_run
    from lstmlite.nn import SequenceClassifier
    from lstmlite.report import explain

    run = tmp_path / "imported"
    model = SequenceClassifier(input_size=4, hidden_size=8, n_classes=3)
    # the metrics an importer writes: no data, so no dataset and no metric
    save_run(run, model, {"task": "classify"}, metrics={"task": "classify", "dataset": None, "metric_name": None,
                                                        "metric": None, "size_bytes": account(model).size_bytes})
    html = write_report([run], tmp_path / "r.html").read_text()
    assert "<h3>imported</h3>" in html and "Confusion matrices" not in html
    # --explain: the run with data is explained, the imported one left out (and logged)
    both = write_report([run, jv_runs[0]], tmp_path / "r2.html", explain_sample=0).read_text()
    assert "<h2>Explanation: imported</h2>" not in both and f"<h2>Explanation: {jv_runs[0].name}</h2>" in both
    # alone, nothing can be explained: an error, not a report without the asked-for section
    with pytest.raises(ValueError, match="no run could be explained .*no data spec"):
        write_report([run], tmp_path / "r3.html", explain_sample=0)
    # planted and failing it: the card's "None (classify)" and "test None", and the table's "None –"
    assert "None" not in re.sub(r"<img [^>]*>", "", html)
    assert "<tr><th>data</th><td>– (classify)</td></tr>" in html and "<th>test metric</th><td>–</td>" in html
    assert "records no data spec" in caplog.text
    with pytest.raises(ValueError, match="no data spec"):
        explain(run, 0)


def test_per_class_rows_are_ordered_by_the_change_not_by_the_new_accuracy() -> None:
    """Hand-counted: x 0/2 → 1/2, y 2/2 → 1/2, z 1/4 → 4/4; the largest loss first, then by
    change (y, x, z), which sorting by the new accuracy (x, y, z) would not give."""
    source = _given_run("source", 0.5, [1, 1, 1, 1, 2, 0, 0, 0])
    run = _given_run("small", 0.75, [0, 1, 1, 0, 2, 2, 2, 2], parent=source)
    rows = re.findall(r"<tr><td>([xyz])</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>",
                      render_report([source, run]))
    assert rows == [("y", "1", "0.5", "-50.0 points"), ("x", "0", "0.5", "+50.0 points"),
                    ("z", "0.25", "1", "+75.0 points")]


def test_tables_show_each_number_in_its_own_column_and_unit() -> None:
    """A run of 3,072 estimated bytes, 1,000 params of which 250 non-zero, test accuracy
    0.123456 and one bench case (median 4 µs, p90 9 µs): the comparison row, the card and the
    latency table show exactly these, by hand: 3.00 KiB (3072 / 1024), '(estimate)' where no
    .lsl file was measured, 4 significant places. Catches KiB computed as /1000 (3.07),
    params and non-zero params swapped, the estimate label dropped, median and p90 swapped,
    and 3 significant places; the card's latency says per sequence of T=16 steps (or per
    step), where it said only 'µs median'."""
    run = _given_run("est", 0.123456, [0, 0, 1, 1, 2, 2, 2, 2])
    run.metrics.update(params=1000, nonzero_params=250)
    run.size_bytes, run.size_basis = 3072, "estimate"
    run.bench = [{"engine": "lstmlite-int8", "mode": "sequence", "seq_len": 16, "batch": 1, "median_us": 4.0,
                  "p90_us": 9.0, "input_size": 3, "hidden_size": 4}]
    run.bench_source = "bench.json"
    html = render_report([run])
    assert "<td>accuracy 0.1235</td><td>–</td><td>1,000</td><td>250</td><td>3,072 (estimate)</td>" in html
    assert "<th>size (estimate: no .lsl file)</th><td>3,072 B (3.00 KiB)</td>" in html
    assert ("<td>lstmlite-int8</td><td>sequence</td><td>16</td><td>1</td><td>4</td><td>9</td>"
            "<td>µs per sequence (T=16)</td>") in html
    # the card says what the median counts: one call of T=16 steps (a step-mode case: per step)
    assert ("<th>latency lstmlite-int8 (sequence, T=16, B=1)</th><td>4.0 µs per sequence (T=16), median</td>"
            in html)
    run.bench = [{**run.bench[0], "mode": "step"}]
    assert "<td>4.0 µs per step, median</td>" in render_report([run])


def test_the_latency_tables_unit_is_each_rows_own() -> None:
    """One bench file with a step-mode case (µs per step), sequence-mode cases at T=16 and
    T=32 (µs per call of T steps) and a case with no mode (bench's default, sequence): each
    row of the latency table names its own unit, as the latency plot's panel for that case
    labels its axis (tests/report/test_plots.py). Catches the one header "median µs" over
    rows of per-step and per-sequence times, which read as the same unit."""
    run = _given_run("mixed", 0.5, [0, 0, 1, 1, 2, 2, 2, 2])
    common = {"batch": 1, "input_size": 3, "hidden_size": 4}
    run.bench = [{"engine": "lstmlite-int8", "mode": "step", "seq_len": 16, "median_us": 2.0, "p90_us": 3.0},
                 {"engine": "lstmlite-int8", "mode": "sequence", "seq_len": 16, "median_us": 30.0, "p90_us": 40.0},
                 {"engine": "torch-fp32", "mode": "sequence", "seq_len": 32, "median_us": 500.0, "p90_us": 600.0},
                 {"engine": "onnxruntime", "seq_len": 16, "median_us": 70.0, "p90_us": 80.0}]
    run.bench = [{**case, **common} for case in run.bench]
    run.bench_source = "bench.json"
    outline = _outline(render_report([run]))
    latency = [rows for kind, rows in outline["Latency against the peers"] if kind == "table"][0]
    assert latency == [["engine", "mode", "T", "batch", "median", "p90", "unit"],
                       ["lstmlite-int8", "step", "16", "1", "2", "3", "µs per step"],
                       ["lstmlite-int8", "sequence", "16", "1", "30", "40", "µs per sequence (T=16)"],
                       ["torch-fp32", "sequence", "32", "1", "500", "600", "µs per sequence (T=32)"],
                       ["onnxruntime", "sequence", "16", "1", "70", "80", "µs per sequence (T=16)"]]


def test_the_layers_table_shows_each_tensors_zero_fraction() -> None:
    """36 of the 48 values of weight_ih_l0 set to zero by hand: its row says sparsity 0.750
    and the untouched weight_hh_l0 0.000; catches the density (1 - sparsity) shown instead."""
    run = _given_run("zeros", 0.5, [0, 0, 1, 1, 2, 2, 2, 2])
    with torch.no_grad():
        run.model.rnn.weight_ih_l0.view(-1)[:36] = 0
    html = render_report([run])
    assert "<td>rnn.weight_ih_l0</td><td>16x3</td><td>0.750</td>" in html
    assert "<td>rnn.weight_hh_l0</td><td>16x4</td><td>0.000</td>" in html


def _outline(html: str) -> dict[str, list[tuple]]:
    """Each <h2> section's contents in page order: ("h3", text), ("img", alt) and
    ("table", [[cell text, ...] per body row]) -- what a reader sees under each heading."""
    from html.parser import HTMLParser

    class Outline(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.sections: dict[str, list[tuple]] = {}
            self.current: list[tuple] | None = None
            self.heading: str | None = None  # the tag whose text is being read
            self.text = ""
            self.rows: list[list[str]] | None = None
            self.depth = 0  # nested tables (a card's inside a section)

        def handle_starttag(self, tag, attrs):
            if tag in ("h2", "h3", "td", "th"):
                self.heading, self.text = tag, ""
            elif tag == "img" and self.current is not None:
                self.current.append(("img", dict(attrs)["alt"]))
            elif tag == "table":
                self.depth += 1
                if self.depth == 1:
                    self.rows = []
            elif tag == "tr" and self.rows is not None:
                self.rows.append([])

        def handle_data(self, data):
            if self.heading:
                self.text += data

        def handle_endtag(self, tag):
            if tag == "h2":
                self.current = self.sections.setdefault(self.text, [])
            elif tag == "h3" and self.current is not None:
                self.current.append(("h3", self.text))
            elif tag in ("td", "th") and self.rows is not None and self.rows:
                self.rows[-1].append(self.text)
            elif tag == "table":
                self.depth -= 1
                if self.depth == 0 and self.current is not None:
                    self.current.append(("table", self.rows))
                    self.rows = None
            if tag == self.heading:
                self.heading = None

    parser = Outline()
    parser.feed(html)
    return parser.sections


def test_each_figure_and_table_sits_under_its_own_heading(jv_report) -> None:
    """Read section by section (the page's own <h2> and <h3> headings): the size plot under
    'Accuracy against size', the bench's plot and table under the latency heading, the
    training curves under theirs, each run's confusion matrix under that run's <h3> and the
    int8 run's class-change plot and table under its own, and no section without a figure
    or a table. Catches a figure appended under the previous run's heading, a section
    written with no figure in it, and a figure put in another section."""
    outline = _outline(jv_report)
    assert list(outline) == ["Comparison", "Accuracy against size", "Model cards", "Latency against the peers",
                             "Per-layer sparsity, bits and rank", "Training curves",
                             "Confusion matrices and per-class change"]
    for heading, items in outline.items():
        assert any(kind in ("img", "table") for kind, _ in items), f"section {heading!r} is empty"

    def shape(heading):  # images by alt text, headings by name, tables only as "table"
        return [item if item[0] != "table" else ("table",) for item in outline[heading]]

    assert shape("Accuracy against size") == [("img", "accuracy against exported size")]
    assert shape("Latency against the peers") == [("img", "latency per engine for base (bench.json)"), ("table",)]
    assert shape("Training curves") == [("img", "training curves (accuracy)")]
    assert shape("Confusion matrices and per-class change") == [
        ("h3", "base"), ("img", "confusion matrix of base"),
        ("h3", "base-int8"), ("img", "confusion matrix of base-int8"),
        ("img", "base-int8 vs base: per-class test accuracy change"), ("table",)]
    assert [item for item in shape("Per-layer sparsity, bits and rank") if item[0] == "h3"] == [
        ("h3", "base"), ("h3", "base-int8")]
    assert shape("Model cards") == [("h3", "base"), ("table",), ("h3", "base-int8"), ("table",)]


def test_the_tables_show_each_runs_recorded_numbers(jv_runs, jv_report) -> None:
    """The comparison table's row and the card of each run against the run's own
    metrics.json (test metric to 4 significant places, params, non-zero params, exported
    bytes, MACs/step; Δ = metric − baseline_metric; the validation metric from 'val'), and
    the latency table against the bench JSON the fixture wrote (median and p90 µs per
    engine, in the file's order). Catches a column fed from another field of the JSON
    (the source run's bytes, the validation metric as the test one, p90 as the median)."""
    outline = _outline(jv_report)
    comparison = outline["Comparison"][0][1]
    latency = [rows for kind, rows in outline["Latency against the peers"] if kind == "table"][0]
    assert comparison[0] == ["run", "data", "model", "recipe", "test metric", "Δ vs source", "params",
                             "non-zero params", "exported bytes", "MACs/step"]
    cards = jv_report.split('<div class="card">')[1:]
    for run_dir, row, card in zip(jv_runs, comparison[1:], cards):
        m = json.loads((run_dir / "metrics.json").read_text())
        delta = "–" if "baseline_metric" not in m else f"{m['metric'] - m['baseline_metric']:+.4f}"
        assert row[0] == run_dir.name and row[1] == m["dataset"]
        assert row[4:] == [f"accuracy {m['metric']:.4g}", delta, f"{m['params']:,}", f"{m['nonzero_params']:,}",
                           f"{m['size_bytes']:,}", f"{m['macs_per_step']:,}"]
        assert f"<tr><th>test accuracy</th><td>{m['test']['accuracy']:.4g}</td></tr>" in card
        assert f"<tr><th>validation accuracy</th><td>{m['val']['accuracy']:.4g}</td></tr>" in card
        assert f"<tr><th>params / non-zero</th><td>{m['params']:,} / {m['nonzero_params']:,}</td></tr>" in card
        assert f"<td>{m['size_bytes']:,} B ({m['size_bytes'] / 1024:.2f} KiB)</td>" in card
        assert f"<tr><th>MACs / step</th><td>{m['macs_per_step']:,}</td></tr>" in card
    assert latency == [["engine", "mode", "T", "batch", "median", "p90", "unit"],
                       ["torch-fp32", "sequence", "20", "1", "120", "150", "µs per sequence (T=20)"],
                       ["lstmlite-int8", "sequence", "20", "1", "9.5", "11", "µs per sequence (T=20)"]]


def test_run_names_and_engine_names_with_markup_are_escaped_everywhere() -> None:
    """A source run named '<src & co>' and its compression '<i>small</i>' (a folder name
    can hold both), and a bench engine named '<b>eng</b>': the page holds none of them as
    markup, only escaped (comparison row, card heading, card latency row, layer and
    confusion headings, per-class table header, subtitle). Planted and failing it: the
    card's <h3> run name not escaped."""
    source = _given_run("<src & co>", 0.5, [0, 1, 1, 1, 0, 0, 2, 2])
    run = _given_run("<i>small</i>", 0.75, [0, 0, 1, 0, 2, 2, 2, 0], parent=source)
    run.bench = [{"engine": "<b>eng</b>", "mode": "sequence", "seq_len": 16, "batch": 1, "median_us": 4.0,
                  "p90_us": 9.0, "input_size": 3, "hidden_size": 4}]
    run.bench_source = "bench.json"
    html = render_report([source, run])
    for text in ("<src & co>", "<i>small</i>", "<b>eng</b>"):
        assert text not in html and escape(text) in html, text
    assert f'<div class="card"><h3>{escape("<i>small</i>")}</h3>' in html
    assert f"<th>latency {escape('<b>eng</b>')} (sequence, T=16, B=1)</th>" in html
    assert f"<th>class</th><th>{escape('<src & co>')}</th><th>{escape('<i>small</i>')}</th>" in html


def test_runs_of_one_folder_name_are_told_apart_by_their_parent(tmp_path) -> None:
    """Two run dirs both called 'run' (exp-a/run, exp-b/run) are named by parent/name, and
    a run whose name is unique keeps its bare name. Planted and failing it: the bare names
    always (two cards, rows and plot labels both 'run')."""
    from lstmlite.report.write import _unique_names

    paths = [tmp_path / "exp-a" / "run", tmp_path / "exp-b" / "run", tmp_path / "exp-b" / "other"]
    assert _unique_names(paths) == ["exp-a/run", "exp-b/run", "other"]
    assert _unique_names(paths[1:]) == ["run", "other"]


def test_a_bench_file_that_does_not_match_leaves_anothers_cases(jv_runs, tmp_path) -> None:
    """Two --bench files, the one timing the run's LSTM (I=12, H=8) first, then one of another
    input width: the card keeps the first file's case. Planted and failing it: every bench
    file's (empty) match assigned in turn, so the last file wiped the first's cases ('no
    bench file times this architecture')."""
    match, other = tmp_path / "here.json", tmp_path / "elsewhere.json"
    for path, width, median in ((match, 12, 42.0), (other, 16, 7.0)):
        path.write_text(json.dumps({"machine": {}, "cases": [{
            "engine": "lstmlite-fp32", "input_size": width, "hidden_size": 8, "seq_len": 5, "batch": 1,
            "mode": "sequence", "median_us": median, "p90_us": median + 1}]}))
    html = write_report([jv_runs[0]], tmp_path / "r.html", bench=[match, other]).read_text()
    assert "<td>42.0 µs per sequence (T=5), median</td>" in html and "no bench file times" not in html
    assert "7.0 µs" not in html


def test_two_bench_files_that_time_one_run_are_both_shown_each_apart(jv_runs, tmp_path) -> None:
    """Two --bench files timing the run's LSTM (I=12, H=8), as two machines would write
    them, in folders of their own under one file name: the card lists both latencies,
    each naming its file (the path: the names are the same), and the latency section has
    one chart and one table per file, each with that file's numbers only. Planted and
    failing it: each matching file's cases replacing the last's (only the second file's
    42.0 -> 7.0 showed); both files' cases in one table."""
    files = []
    for folder, median in (("zen4", 42.0), ("xeon", 7.0)):
        path = tmp_path / folder / "bench.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"machine": {}, "cases": [{
            "engine": "lstmlite-fp32", "input_size": 12, "hidden_size": 8, "seq_len": 5, "batch": 1,
            "mode": "sequence", "median_us": median, "p90_us": median + 1}]}))
        files.append(path)
    html = write_report([jv_runs[0]], tmp_path / "r.html", bench=files).read_text()
    for path, median in zip(files, ("42.0", "7.0")):
        assert (f"<th>latency lstmlite-fp32 (sequence, T=5, B=1, {escape(str(path))})</th>"
                f"<td>{median} µs per sequence (T=5), median</td>") in html
    latency = _outline(html)["Latency against the peers"]
    assert [kind for kind, _ in latency] == ["img", "table", "img", "table"]
    assert [alt for kind, alt in latency if kind == "img"] == [
        f"latency per engine for {jv_runs[0].name} ({path})" for path in files]
    tables = [rows for kind, rows in latency if kind == "table"]
    assert [[row[4] for row in rows[1:]] for rows in tables] == [["42"], ["7"]]
    # one file given twice is one file: its latency once, under its name
    once = write_report([jv_runs[0]], tmp_path / "r2.html", bench=[files[0], files[0]]).read_text()
    assert once.count("<td>42.0 µs per sequence (T=5), median</td>") == 1
    assert "<th>latency lstmlite-fp32 (sequence, T=5, B=1)</th>" in once


def test_explaining_a_sample_no_run_has_is_an_error_and_writes_nothing(jv_runs, tmp_path) -> None:
    """--explain K past every run's test split: an error that names K and each run's
    reason, and no report (a report without the asked-for section read as done).
    Planted and failing it: the refusals only logged (the report was written)."""
    out = tmp_path / "r.html"
    message = r"test sample 100000 \(--explain 100000\): no run could be explained \(.*jv"
    with pytest.raises(ValueError, match=message) as caught:
        write_report(list(jv_runs), out, explain_sample=100_000)
    assert str(caught.value).count("; ") == len(jv_runs) - 1  # one reason per run
    assert not out.exists()


def test_a_bench_file_that_is_not_one_is_refused_in_one_line(tmp_path) -> None:
    """load_bench refuses a missing file, text that is not JSON, and JSON without a 'cases'
    list (an object without one, a list), each naming the file. Planted and failing it: the
    'cases' check dropped (a run's card then silently says no bench file times it)."""
    from lstmlite.report import load_bench

    with pytest.raises(FileNotFoundError, match=r"missing\.json: bench file not found"):
        load_bench(tmp_path / "missing.json")
    for text, message in (("{", "not valid JSON"), ('{"machine": {}}', "not a bench JSON"),
                          ('{"cases": {"engine": "x"}}', "not a bench JSON"), ("[1]", "not a bench JSON")):
        path = tmp_path / "bench.json"
        path.write_text(text)
        with pytest.raises(ValueError, match=rf"bench\.json: {message}"):
            load_bench(path)
    path.write_text('{"machine": {}, "cases": []}')
    assert load_bench(path) == {"machine": {}, "cases": []}


def test_a_predicted_class_past_the_true_ones_is_counted() -> None:
    """A run with no class names recorded, whose test rows are of classes 0 and 1 but which
    predicts class 2 too: the per-class table has classes 0, 1, 2 (names by index), counted
    by hand (0: 2/2 → 1/2; 1: 1/2 → 1/2). Planted and failing it: the class count taken from
    the true labels only (an IndexError writing the prediction of class 2)."""
    source = _given_run("source", 0.5, [0, 0, 2, 1])
    run = _given_run("small", 0.5, [0, 2, 1, 2], parent=source)
    for r in (source, run):
        r.class_names, r.y_true = [], np.array([0, 0, 1, 1])
    rows = re.findall(r"<tr><td>(\d)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>",
                      render_report([source, run]))
    assert [row[:4] for row in rows][:2] == [("0", "1", "0.5", "-50.0 points"), ("1", "0.5", "0.5", "+0.0 points")]
    assert [row[0] for row in rows] == ["0", "1", "2"]


def test_a_relative_source_run_is_found_next_to_its_compression(jv_runs, tmp_path, monkeypatch) -> None:
    """A compressed run records its source as given to compress (here the relative
    'runs/base', compressed from the folder above runs/); the runs folder moved elsewhere
    and the report run from a third folder: the source is read from beside the compressed
    run. Planted and failing it: the fallback looked for inside the compressed run's dir
    instead of beside it."""
    import shutil

    from lstmlite.compress.recipe import apply_recipe

    (tmp_path / "work").mkdir()
    shutil.copytree(jv_runs[0], tmp_path / "work" / "runs" / "base")
    monkeypatch.chdir(tmp_path / "work")
    apply_recipe("runs/base", "int8", "runs/base-int8", progress=False)
    assert json.loads(Path("runs/base-int8/config.json").read_text())["source_run"] == "runs/base"
    shutil.move(tmp_path / "work" / "runs", tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    small = gather(tmp_path / "moved" / "base-int8", predictions=False)
    link_parents([small], load_missing=True)
    assert small.parent is not None and small.parent.path == tmp_path / "moved" / "base"


@pytest.mark.parametrize("fixture, which", [("jv_runs", 0), ("jv_runs", 1), ("text_runs", 1), ("other_runs", 0),
                                            ("other_runs", 1)],
                         ids=["jv", "jv-int8", "text-int8", "forecaster", "word-lm"])
def test_the_size_shown_is_the_file_lstmlite_export_writes(request, tmp_path, capsys, fixture: str,
                                                           which: int) -> None:
    """The card's and the comparison's exported bytes equal os.path.getsize of the .lsl file
    `lstmlite export RUN --format lsl` writes, for a float and an int8 classifier, an int8
    token model, a forecaster and a language model (its head at every step); the other size
    test compares with write_lsl in-process, this one with the file the command writes.
    Planted and failing it: the size from the parameter count × 4 bytes (no header, scales
    or indices) and from the int8 form whatever the run's weights."""
    import os

    from lstmlite.cli.main import main

    run_dir = request.getfixturevalue(fixture)[which]
    assert main(["export", str(run_dir), "--format", "lsl", "--out", str(tmp_path / "model.lsl")]) == 0
    capsys.readouterr()
    size = os.path.getsize(tmp_path / "model.lsl")
    run = gather(run_dir, predictions=False)
    assert (run.size_bytes, run.size_basis) == (size, "lsl")
    html = render_report([run])
    assert f"<td>{size:,} B ({size / 1024:.2f} KiB)</td>" in html and f"<td>{size:,}</td>" in html


def test_the_figures_are_drawn_from_each_runs_own_numbers(monkeypatch) -> None:
    """What render_report hands the plotting functions (recorded in place of them): one
    size plot per metric with each run's (name, exported bytes, metric); each classifier's
    confusion matrix with true classes as rows, hand-counted from its predictions; the
    per-class change plot with the source's per-class accuracy as 'before'. Planted and
    failing it: size and metric swapped in the points, the confusion matrix transposed
    (predicted classes as rows), and before and after swapped."""
    from lstmlite.report import write as write_mod

    calls: dict[str, list] = {}

    def record(name):
        return lambda *args, **kw: calls.setdefault(name, []).append(args) or b"png"

    for name in ("pareto_plot", "confusion_plot", "class_delta_plot"):
        monkeypatch.setattr(write_mod.plots, name, record(name))
    source = _given_run("source", 0.5, [0, 1, 1, 1, 0, 0, 2, 2])
    run = _given_run("small", 0.75, [0, 0, 1, 0, 2, 2, 2, 0], parent=source)
    run.size_bytes = 250
    lm = ReportRun(path=Path("lm"), name="lm", config={"task": "lm"},
                   metrics={"metric_name": "perplexity", "metric": 12.5}, history=[], recipe=None,
                   model=run.model, size_bytes=4000, size_basis="lsl", macs_per_step=10)
    render_report([source, run, lm])
    assert calls["pareto_plot"] == [([("source", 1000.0, 0.5), ("small", 250.0, 0.75)], "accuracy"),
                                    ([("lm", 4000.0, 12.5)], "perplexity")]
    (cm_source, names, _), (cm_run, _, _) = calls["confusion_plot"]
    assert names == ["x", "y", "z"]
    assert cm_source.tolist() == [[1, 1, 0], [0, 2, 0], [2, 0, 2]]  # row = true class
    assert cm_run.tolist() == [[2, 0, 0], [1, 1, 0], [1, 0, 3]]
    (before, after, names, _), = calls["class_delta_plot"]
    np.testing.assert_allclose(before, [0.5, 1.0, 0.5])
    np.testing.assert_allclose(after, [1.0, 0.5, 0.75])
    assert names == ["x", "y", "z"]


def test_a_class_with_no_test_rows_shows_no_accuracy_and_no_change() -> None:
    """Classes x, y, z where no test row is of class z (a rare class left out of a small
    test split): its per-class row shows '–' for both runs and 'no test rows' as the change,
    and the page has no 'nan' anywhere outside its images; the other rows are hand-counted
    (x 2/3 → 3/3, y 3/5 → 3/5). Failed before the fix: the row read 'nan', 'nan',
    '+nan points'."""
    source = _given_run("source", 0.5, [0, 0, 2, 1, 1, 1, 0, 2])
    run = _given_run("small", 0.75, [0, 0, 0, 1, 1, 1, 2, 2], parent=source)
    for r in (source, run):
        r.y_true = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    html = render_report([source, run])
    rows = re.findall(r"<tr><td>([xyz])</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", html)
    assert rows == [("y", "0.6", "0.6", "+0.0 points"), ("z", "–", "–", "no test rows"),
                    ("x", "0.6667", "1", "+33.3 points")]
    assert "nan" not in re.sub(r"<img [^>]*>", "", html).lower()


def test_the_layers_table_shows_bits_rank_and_the_recipe_in_order() -> None:
    """A model made rank 2, then int4 per channel: weight_hh_l0's row reads bits 4, rank 2 (the
    head: bits 4, rank '–'; a bias: 32 bits, '–'), and a recipe of two steps reads in the
    order applied, with its fine-tuning epochs, on the card and in the comparison. Planted
    and failing it: the bits and rank columns swapped, the steps listed last first."""
    from lstmlite.compress import LowRankConfig, WeightQuantConfig, compress_

    run = _given_run("lr-int4", 0.5, [0, 0, 1, 1, 2, 2, 2, 2])
    compress_(run.model, LowRankConfig(rank=2))
    compress_(run.model, WeightQuantConfig(bits=4))
    run.recipe = {"recipe": {"name": "tiny"}, "applied": [{"method": "low_rank", "epochs": 2},
                                                          {"method": "weight_quant"}]}
    outline = _outline(render_report([run]))
    layers = {row[0]: [row[1], *row[3:5]] for row in outline["Per-layer sparsity, bits and rank"][1][1]}
    assert layers["rnn.weight_hh_l0"] == ["16x4", "4", "2"]  # (shape, bits, rank); int4 codes may hold zeros
    assert layers["head.weight"] == ["3x4", "4", "–"]
    assert layers["rnn.bias_hh_l0"] == ["16", "32", "–"]
    assert outline["Comparison"][0][1][1][3] == "tiny: low_rank (2 ep) → weight_quant"
    card = dict(outline["Model cards"][1][1])
    assert card["recipe"] == "tiny: low_rank (2 ep) → weight_quant"


def test_the_model_column_describes_the_architecture() -> None:
    """The comparison and the card describe a run's model from its config: an embedding of 50
    tokens into 4 dims, a bidirectional LSTM of 8 units in 2 layers and a 3-class head read
    'Embedding(50, 4) → bi-LSTM(8) × 2 → Dense(3)'; a forecaster's head names its horizon.
    Planted and failing it: the bidirectional mark dropped."""
    run = _given_run("bi", 0.5, [0, 0, 1, 1, 2, 2, 2, 2])
    run.config["model"] = {"kind": "classifier", "vocab_size": 50, "embed_dim": 4, "cell": "lstm",
                           "hidden_size": 8, "num_layers": 2, "bidirectional": True, "n_classes": 3}
    html = render_report([run])
    assert html.count("<td>Embedding(50, 4) → bi-LSTM(8) × 2 → Dense(3)</td>") == 2
    run.config["model"] = {"kind": "forecaster", "cell": "gru", "hidden_size": 16, "horizon": 6}
    assert "<td>GRU(16) × 1 → Dense(6)</td>" in render_report([run])


def test_the_card_shows_the_recorded_source_epoch_and_training_time() -> None:
    """A compressed run's card, from its metrics.json and config by hand: the source run's test
    accuracy (baseline_metric 0.6, not this run's 0.75), where it was compressed from, the
    chosen epoch (best_epoch 3 of 5 trained) and the training time (12.345 s → '12.3 s').
    Planted and failing it: the source's metric row showing this run's metric, and the
    chosen epoch showing the number of epochs trained."""
    run = _given_run("small", 0.75, [0, 0, 1, 0, 2, 2, 2, 0])
    run.metrics.update(baseline_metric=0.6, best_epoch=3, epochs=5, train_seconds=12.345)
    run.config["source_run"] = "runs/src"
    card = dict(_outline(render_report([run]))["Model cards"][1][1])
    assert card["source run's test accuracy"] == "0.6" and card["test accuracy"] == "0.75"
    assert card["compressed from"] == "runs/src"
    assert card["chosen epoch (best validation)"] == "3" and card["training time"] == "12.3 s"


def test_a_run_trained_without_a_test_split_is_reported_without_its_confusion_matrix(tmp_path):
    """A classifier trained with test_fraction=0 has no test rows (its metric is null): the
    report is still written, with no confusion matrix and "–" for its test metric, beside a
    run that has both. Catches the report failing on it (torch.cat of no batches, as
    `lstmlite report` did) and a null metric shown as "None"."""
    from lstmlite.report import write_report
    from lstmlite.train import fit

    config = {"data": {"source": "digits", "val_fraction": 0.2, "test_fraction": 0.0},
              "model": {"cell": "lstm", "hidden_size": 4}, "train": {"epochs": 1, "batch_size": 64}}
    fit(config, tmp_path / "no-test", progress=False)
    fit({**config, "data": {**config["data"], "test_fraction": 0.2}}, tmp_path / "with-test", progress=False)
    assert gather(tmp_path / "no-test").y_true is None
    page = write_report([tmp_path / "no-test", tmp_path / "with-test"], tmp_path / "r.html").read_text()
    assert 'alt="confusion matrix of with-test"' in page and 'alt="confusion matrix of no-test"' not in page
    row = next(r for r in re.findall(r"<tr>.*?</tr>", page, flags=re.S) if "<td>no-test</td>" in r)
    assert "<td>–</td>" in row and "None" not in row


def test_a_seq2seq_runs_model_and_size_say_what_it_is() -> None:
    """A seq2seq run's model text names its encoder, attention and decoder from its config
    (it read "Embedding → bi-LSTM(32) × 1 → head", one recurrent layer and a head), and its size
    row names the three exported files its size counts (it said "exported .lsl file", while
    model.lsl alone is the decoder); a classifier's rows are unchanged."""
    from lstmlite.nn import Seq2Seq
    from lstmlite.report.write import _model_text, _size_label

    model = Seq2Seq(vocab_size=15, embed_dim=6, hidden_size=8, decoder_hidden_size=12, decoder_layers=2,
                    attention="bahdanau")
    assert _model_text(model.config()) == ("Embedding(15, 6) → encoder bi-LSTM(8) × 1 → bahdanau attention → "
                                           "decoder LSTM(12) × 2 → Dense(vocab)")
    run = ReportRun(path=Path("s2s"), name="s2s", config={"task": "seq2seq", "model": model.config()}, metrics={},
                    history=[], recipe=None, model=model, size_bytes=18698, size_basis="lsl", macs_per_step=10)
    assert _size_label(run) == "exported files (encoder.lsl + decoder.lsl + seq2seq.safetensors)"
    classifier = _given_run("small", 0.75, [0] * 8)
    assert _size_label(classifier) == "exported .lsl file"
    assert _size_label(ReportRun(**{**classifier.__dict__, "size_basis": "estimated"})) == \
        "size (estimate: no .lsl file)"


def test_a_run_given_twice_is_shown_once(jv_runs, tmp_path):
    """The same run dir given twice (once by another spelling of its path) makes one card and
    one row, as given once; it made two identical ones."""
    base = jv_runs[0]
    twice = write_report([base, base.parent / "." / base.name], tmp_path / "twice.html", explain_sample=0).read_text()
    once = write_report([base], tmp_path / "once.html", explain_sample=0).read_text()
    assert twice.count("<h3") == once.count("<h3") and twice.count("<tr><td>") == once.count("<tr><td>")
