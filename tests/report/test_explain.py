"""explain / write_explanation on tiny run dirs, compressed ones included."""

import json
import re
from html import escape

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


def _drawn(monkeypatch, e, cell: str) -> dict:
    """Run explain's drawing on ``e`` and keep each Figure (by file name) instead of its PNG."""
    import importlib

    import matplotlib.pyplot as plt

    explain_mod = importlib.import_module("lstmlite.report.explain")  # the package's `explain` is the function
    figures = []
    monkeypatch.setattr(explain_mod.plots, "to_png", lambda fig: figures.append(fig) or b"png%d" % len(figures))
    explain_mod._draw(e, cell)
    plt.close("all")
    return {name: figures[int(png[3:]) - 1] for name, png in e.figures.items()}


def _hand_explanation(layers: int, gate_names: str, tokens: list[str] | None):
    """An Explanation of T=3 steps with hand-set numbers: layer k's gate j holds 10 k + j
    everywhere but step 1 unit 0 (which holds its negative), attributions of 2 features."""
    from lstmlite.report.explain import Explanation
    from lstmlite.report.saliency import Attribution

    gates = []
    for k in range(layers):
        layer = {}
        for j, g in enumerate(gate_names):
            values = np.full((3, 2), 10.0 * k + j)
            values[1, 0] *= -1
            layer[g] = values
        layer["h"] = np.zeros((3, 2))
        gates.append(layer)
    values = np.array([[0.5, -0.25], [-0.25, -0.25], [0.5, 0.5]])  # per step, by hand: 0.25, -0.5, 1.0
    att = Attribution(values, "logit of class 'a'", 1.0, 0.4, 16)
    return Explanation(run="r", sample=2, length=3, label="a", predicted="a", attribution=att, gates=gates,
                       tokens=tokens)


def test_explain_draws_each_layers_own_gates_in_order(monkeypatch) -> None:
    """gates_layerK.png shows layer K's gates, top to bottom in PyTorch's order (i, f, g, o;
    GRU r, z, n) under their titles, each as units × time (step 1 unit 0 is the negative
    cell, by construction). Catches every file drawing layer 0, gates in another order than
    their titles, and the gate's (T, H) array drawn as (H, T) the wrong way round."""
    for cell, names, titles in (("lstm", "ifgo", ["input gate i", "forget gate f", "cell candidate g (C̃)",
                                                  "output gate o"]),
                                ("gru", "rzn", ["reset gate r", "update gate z", "candidate n"])):
        e = _hand_explanation(2, names, None)
        figures = _drawn(monkeypatch, e, cell)
        assert sorted(figures) == ["gates_layer0.png", "gates_layer1.png", "saliency.png"]
        for k in (0, 1):
            fig = figures[f"gates_layer{k}.png"]
            assert fig.get_suptitle().endswith(f"gates of layer {k}")
            panels = [ax for ax in fig.axes if ax.images]
            assert [ax.get_title() for ax in panels] == titles
            for j, ax in enumerate(panels):
                cells = np.asarray(ax.images[0].get_array())
                expected = np.full((2, 3), 10.0 * k + j)
                expected[0, 1] *= -1  # unit 0 (row 0) at step 1 (column 1)
                np.testing.assert_array_equal(cells, expected, err_msg=f"{cell} layer {k} {titles[j]}")


def test_explain_puts_each_token_over_its_own_saliency(monkeypatch) -> None:
    """For a text sample, saliency.png's bars are each step's attributions summed (0.25,
    −0.5, 1.0, by hand) with token k under bar k, the heatmap's rows named 'embedding dim',
    and tokens.png writes the tokens in order on colours of their own scores (scale 1.0:
    the third token reddest, the second a quarter of the way from blue). Catches tokens paired with
    the next step's score and a per-feature sum drawn as the per-step one."""
    import matplotlib.pyplot as plt

    e = _hand_explanation(1, "ifgo", ["<b>", "good", "film"])
    figures = _drawn(monkeypatch, e, "lstm")
    assert sorted(figures) == ["gates_layer0.png", "saliency.png", "tokens.png"]
    top, bottom = figures["saliency.png"].axes[:2]
    assert [b.get_height() for b in top.patches] == pytest.approx([0.25, -0.5, 1.0])
    assert [(float(p), t.get_text()) for p, t in zip(bottom.get_xticks(), bottom.get_xticklabels())] == \
        [(0.0, "<b>"), (1.0, "good"), (2.0, "film")]
    assert bottom.get_ylabel() == "embedding dim"
    texts = figures["tokens.png"].axes[0].texts
    assert [t.get_text() for t in texts] == ["<b>", "good", "film"]
    cmap = plt.get_cmap("RdBu_r")
    for text, at in zip(texts, (0.625, 0.25, 1.0)):  # 0.5 + 0.5 · score / 1.0
        assert text.get_bbox_patch().get_facecolor() == pytest.approx(cmap(at)), text.get_text()
    gates_bottom = [ax for ax in figures["gates_layer0.png"].axes if ax.images][-1]
    assert [t.get_text() for t in gates_bottom.get_xticklabels()] == ["<b>", "good", "film"]


def test_explanation_json_holds_the_attributions_own_numbers(tmp_path) -> None:
    """explanation.json's numbers, by hand from the attributions (per step 0.25, −0.5, 1.0;
    sum 0.75; f(x) − f(baseline) = 1.0 − 0.4 = 0.6, so a completeness error of +0.15) and
    the recorded gates, read back from the file. Planted and failing it: the sum written as
    f(x) − f(baseline) (which every completeness check then trivially passes) and the
    per-step saliency summed over steps instead (one value per feature)."""
    e = _hand_explanation(2, "ifgo", ["<b>", "good", "film"])
    write_explanation(e, tmp_path)
    saved = json.loads((tmp_path / "explanation.json").read_text())
    assert saved["attribution_sum"] == pytest.approx(0.75, abs=1e-12)
    assert saved["f_x"] - saved["f_baseline"] == pytest.approx(0.6, abs=1e-12)
    assert saved["completeness_error"] == pytest.approx(0.15, abs=1e-12)
    assert saved["saliency_per_step"] == pytest.approx([0.25, -0.5, 1.0], abs=1e-12)
    assert (saved["integration_steps"], saved["tokens"], saved["sample"]) == (16, ["<b>", "good", "film"], 2)
    assert [sorted(layer) for layer in saved["gates"]] == [["f", "g", "h", "i", "o"]] * 2
    # layer 1's gate g (index 2): 10·1 + 2 everywhere but step 1 unit 0, negated
    assert saved["gates"][1]["g"] == [[12.0, 12.0], [-12.0, 12.0], [12.0, 12.0]]


def test_a_run_without_a_test_split_is_refused_naming_why(tmp_path) -> None:
    """A run trained with test_fraction=0 has no test rows: explain refuses in one line that
    says why, not with an empty range ("(0..-1)"). Catches the range message for 0 rows."""
    from lstmlite.train import fit

    fit({"data": {"source": "digits", "val_fraction": 0.2, "test_fraction": 0.0},
         "model": {"cell": "lstm", "hidden_size": 4}, "train": {"epochs": 1, "batch_size": 64}},
        tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match=r"^the test split has no rows to explain \(the run was trained with "
                                         r"test_fraction=0\?\)"):
        explain(tmp_path / "run", sample=0, steps=2)


def test_a_sample_outside_the_test_split_is_refused_naming_its_range(jv_runs) -> None:
    """The JapaneseVowels test split has 370 rows: samples −1 and 370 are refused in one
    line naming 0..369 (369 is explained). Planted and failing it: the lower bound dropped
    (−1 silently explained the last row as 'sample -1')."""
    for sample in (-1, 370):
        with pytest.raises(ValueError, match=r"^sample -?\d+ is out of range: the test split has 370 rows "
                                             r"\(0\.\.369\)$"):
            explain(jv_runs[0], sample=sample, steps=2)
    assert explain(jv_runs[0], sample=369, steps=2).sample == 369


def test_a_given_target_changes_what_is_explained_not_the_prediction(jv_runs) -> None:
    """With --target C other than the model's prediction P (read from a plain forward pass),
    f is class C's logit and names C, while 'predicted' still says P. Planted and failing
    it: the prediction shown as the explained target's class."""
    run = load_run(jv_runs[0])
    test = load_data(run.config["data"]).test
    names = run.config["class_names"]
    with torch.no_grad():
        logits = run.model(torch.as_tensor(test.x[3, : int(test.lengths[3])]).unsqueeze(0))[0]
    top = int(logits.argmax())
    target = (top + 1) % len(names)
    e = explain(jv_runs[0], sample=3, steps=4, target=target)
    assert e.predicted == names[top] and e.attribution.index == target
    assert e.attribution.target == f"logit of class {names[target]!r} (index {target})"
    assert e.attribution.f_x == pytest.approx(float(logits[target]), abs=1e-5)


def test_token_spans_scale_by_the_largest_magnitude() -> None:
    """Colour strength is |score| over the largest |score| (here 2.0, a negative one): 0.5
    → red 0.25, −2 → blue 1.00, 0 → red 0.00; all negative scores give blue 1.00 and 0.50.
    Planted and failing it: the scale from the largest signed score (0.5 here: every span
    at full strength; −1 when all are negative: alphas below zero)."""
    html = token_spans(["a", "b", "c"], np.array([0.5, -2.0, 0.0]))
    assert re.findall(r"rgba\(([\d,]+),([-\d.]+)\)", html) == [("214,39,40", "0.25"), ("31,119,180", "1.00"),
                                                              ("214,39,40", "0.00")]
    html = token_spans(["a", "b"], np.array([-2.0, -1.0]))
    assert re.findall(r"rgba\(([\d,]+),([-\d.]+)\)", html) == [("31,119,180", "1.00"), ("31,119,180", "0.50")]


def test_the_section_escapes_every_text_it_shows() -> None:
    """explanation_section on a run named '<i>r&amp;d</i>' with a label, a prediction, a
    target description, a title and a gates note that all hold markup: none of it reaches
    the page as markup, each shows escaped. Planted and failing it: the <h3> title (the run
    name) not escaped."""
    from lstmlite.report.explain import explanation_section

    e = _hand_explanation(1, "ifgo", None)
    e.run, e.label, e.predicted = "<i>r&d</i>", "<b>lbl</b>", "<u>pred</u>"
    e.attribution.target = "logit of class '<s>'"
    e.gates_note = "cell is '<fastgrnn>'"
    for title in (None, "<em>title</em>"):
        html = explanation_section(e, title)
        shown = title or e.run
        assert html.count(escape(shown)) == 2 and shown not in html  # the <h2> and the <h3>
        for text in (e.label, e.predicted, e.attribution.target, e.gates_note):
            assert escape(text) in html and text not in html


def test_text_tokens_and_the_lm_prediction_are_the_ids_own_tokens(text_runs, other_runs) -> None:
    """A token classifier's sample is shown as the tokens whose ids it holds (checked the
    other way round: the vocabulary encodes the shown tokens back to the sample's ids, no
    <pad> among them), and a word LM's predicted next token is the one whose id is its top
    logit after the last step (read from a plain forward pass), named in f's description.
    Planted and failing it: each id shown as the token one before it, and the LM's
    prediction named by the id one before its own."""
    from lstmlite.data import Vocabulary

    for run_dir, sample in ((text_runs[0], 0), (other_runs[1], 1)):
        run = load_run(run_dir)
        test = load_data(run.config["data"]).test
        vocab = Vocabulary.from_dict(run.vocab)
        ids = [int(i) for i in test.x[sample][: int(test.lengths[sample])]]
        e = explain(run_dir, sample=sample, steps=4)
        assert vocab.encode(e.tokens) == ids and "<pad>" not in e.tokens
    with torch.no_grad():
        top = int(run.model(torch.tensor(ids).unsqueeze(0))[0][0, -1].argmax())
    assert e.attribution.index == top and vocab.encode([e.predicted]) == [top]
    assert e.attribution.target == f"logit of the next token {e.predicted!r} (id {top}) after the last step"


def test_the_section_states_the_explanations_numbers() -> None:
    """The section's facts, by hand from the hand-set explanation: f(x) − f(baseline) =
    1.0 − 0.4 = 0.6000, the attributions' sum 0.7500 with a completeness error of +0.15,
    16 integration points, 3 steps, labels. Planted and failing it: f(x) alone shown as the
    difference."""
    from lstmlite.report.explain import explanation_section

    html = explanation_section(_hand_explanation(1, "ifgo", None))
    facts = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", html))
    assert facts["f(x) − f(baseline)"] == "0.6000"
    assert facts["sum of attributions"] == "0.7500 (completeness error +1.50e-01)"
    assert facts["saliency method"] == "integrated gradients (16 points, zero baseline)"
    assert (facts["test sample"], facts["steps"], facts["true label"], facts["predicted"]) == ("2", "3", "a", "a")
    assert facts["explained output f"] == escape("logit of class 'a'")


def test_a_taggers_prediction_is_its_label_at_the_last_step(tag_run, tmp_path) -> None:
    """On a tagger sample whose top label at the first step differs from the one at the last
    step (found by a plain forward pass; the tagger's weights scaled ×4 and saved as a run
    of the same data, as the 1-epoch run predicts one label everywhere), 'predicted' names
    the last step's label, the one f explains. Planted and failing it: the prediction read
    at the first step."""
    from lstmlite.io import save_run

    trained = load_run(tag_run)
    with torch.no_grad():
        for param in trained.model.parameters():
            param.mul_(4)
    run_dir = save_run(tmp_path / "sharp", trained.model, {k: v for k, v in trained.config.items() if k != "model"},
                       metrics=trained.metrics)
    run = load_run(run_dir)
    test = load_data(run.config["data"]).test
    names = run.config["class_names"]
    with torch.no_grad():
        logits = [run.model(torch.as_tensor(test.x[k, : int(test.lengths[k])]).unsqueeze(0))[0]
                  for k in range(len(test))]
    sample = next(k for k, out in enumerate(logits) if int(out[0].argmax()) != int(out[-1].argmax()))
    e = explain(run_dir, sample=sample, steps=2)
    top = int(logits[sample][-1].argmax())
    assert e.predicted == f"{names[top]} (at the last step)" and e.attribution.index == top
