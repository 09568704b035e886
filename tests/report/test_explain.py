"""explain / write_explanation on tiny run dirs, compressed ones included."""

import json

import numpy as np
import pytest
import torch

from lstmlite.data import load_data
from lstmlite.io import load_run
from lstmlite.report import explain, write_explanation
from lstmlite.report.explain import token_spans

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("which", [0, 1], ids=["trained", "int8"])
def test_explain_a_feature_run(jv_runs, tmp_path, which: int) -> None:
    """Gates, saliency and the files written for test sample 2 of a JapaneseVowels run; the
    sample is explained over its own length as the data gives it (shorter than the padded
    width), so padding steps are never explained. Catches the padded row being explained."""
    e = explain(jv_runs[which], sample=2, steps=64)
    run = load_run(jv_runs[which])
    test = load_data(run.config["data"]).test
    assert e.length == int(test.lengths[2]) < test.x.shape[1]
    with torch.no_grad():
        logits = run.model(torch.as_tensor(test.x[2, : e.length]).unsqueeze(0))[0]
    assert e.predicted == run.config["class_names"][int(logits.argmax())]
    assert e.label == run.config["class_names"][int(test.y[2])]
    assert e.length == len(e.gates[0]["f"]) and e.gates[0]["i"].shape[1] == 8
    assert e.label is not None and e.predicted is not None and e.tokens is None
    att = e.attribution
    assert att.values.shape == (e.length, 12)
    assert abs(att.completeness_error) <= 0.01 * abs(att.f_x - att.f_baseline) + 1e-4
    written = write_explanation(e, tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["explanation.json", "gates_layer0.png", "saliency.png", "section.html"]
    assert all((tmp_path / "out" / n).read_bytes().startswith(PNG) for n in names if n.endswith(".png"))
    saved = json.loads((tmp_path / "out" / "explanation.json").read_text())
    assert saved["saliency_method"] == "integrated gradients"
    assert saved["attribution_sum"] == pytest.approx(saved["f_x"] - saved["f_baseline"], rel=0.01, abs=1e-4)
    assert "<img src=\"data:image/png;base64," in (tmp_path / "out" / "section.html").read_text()


def test_compression_changes_what_the_model_computes(jv_runs):
    dense, small = (explain(run, sample=0) for run in jv_runs)
    assert dense.length == small.length
    assert not np.array_equal(dense.gates[0]["f"], small.gates[0]["f"])  # int8 weights: other gates


def test_explain_a_text_run_colours_tokens(text_runs, tmp_path):
    e = explain(text_runs[1], sample=0)
    assert e.tokens is not None and len(e.tokens) == e.length
    assert e.attribution.values.shape == (e.length, 8)  # attributed at the embedding
    write_explanation(e, tmp_path)
    assert (tmp_path / "tokens.png").read_bytes().startswith(PNG)
    assert 'class="tokens"' in (tmp_path / "section.html").read_text()


def test_explain_a_tagger_run(tag_run, tmp_path):
    """A tagger run (a label per step) is explained: f is the logit of its label at the last
    step of the sample, over the sample's own length, with its gates and the label names.
    Planted and failing it: the classifier's target on the (1, T, C) output (lstmlite explain
    and report --explain died with an internal IndexError on every tag and CTC run)."""
    e = explain(tag_run, sample=1, steps=64)
    run = load_run(tag_run)
    test = load_data(run.config["data"]).test
    with torch.no_grad():
        logits = run.model(torch.as_tensor(test.x[1, : e.length]).unsqueeze(0))[0]  # (T, C)
    top = int(logits[-1].argmax())
    assert e.length == int(test.lengths[1]) and e.attribution.index == top
    assert e.predicted == f"{run.config['class_names'][top]} (at the last step)"
    assert e.attribution.f_x == pytest.approx(float(logits[-1, top]), abs=1e-5)
    assert f"label {run.config['class_names'][top]!r} (index {top}) at the last step" in e.attribution.target
    assert abs(e.attribution.completeness_error) <= 0.01 * abs(e.attribution.f_x - e.attribution.f_baseline) + 1e-4
    assert e.length == len(e.gates[0]["f"])
    assert "saliency.png" in {p.name for p in write_explanation(e, tmp_path)}


def test_sample_out_of_range(jv_runs):
    with pytest.raises(ValueError, match="out of range"):
        explain(jv_runs[0], sample=10_000)


def test_token_spans_escape_and_sign():
    html = token_spans(["<b>", "ok"], np.array([1.0, -0.5]))
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "rgba(214,39,40,1.00)" in html and "rgba(31,119,180,0.50)" in html
