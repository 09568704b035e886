"""``explain``: where one test sample's prediction comes from, in pictures.

For test sample K of a run: the gate activations of every LSTM/GRU layer over time
(heatmaps, :mod:`lstmlite.report.gates`), and saliency per time step and feature by
integrated gradients (:mod:`lstmlite.report.saliency`); for text, the tokens coloured
by their saliency. A compressed run is explained with its compressed weights, so
explaining a run and its source side by side shows what compression changed.

:func:`write_explanation` writes the PNGs, ``explanation.json`` (the numbers) and
``section.html`` (a fragment with inline images, what ``lstmlite report --explain``
includes).

Example:
    >>> e = explain("runs/jv-int8", sample=0)           # doctest: +SKIP
    >>> sorted(e.figures)                                # doctest: +SKIP
    ['gates_layer0.png', 'saliency.png']
    >>> write_explanation(e, "explain/")                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import plots
from .gates import GATE_NAMES, GATE_TITLES, record_gates
from .html import Raw, esc, img, kv_table
from .saliency import METHOD, Attribution, integrated_gradients

__all__ = ["Explanation", "explain", "write_explanation", "explanation_section", "token_spans"]

log = logging.getLogger(__name__)


@dataclass
class Explanation:
    """What :func:`explain` found for one sample (see the module docstring)."""

    run: str
    sample: int
    length: int
    label: str | None
    predicted: str | None
    attribution: Attribution
    gates: list[dict[str, np.ndarray]] = field(default_factory=list)
    gates_note: str = ""
    tokens: list[str] | None = None
    figures: dict[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The numbers behind the figures, JSON-serialisable."""
        att = self.attribution
        return {
            "run": self.run, "sample": self.sample, "length": self.length, "label": self.label,
            "predicted": self.predicted, "saliency_method": METHOD, "target": att.target,
            "integration_steps": att.steps, "f_x": att.f_x, "f_baseline": att.f_baseline,
            "attribution_sum": float(att.values.sum()), "completeness_error": att.completeness_error,
            "saliency_per_step": att.per_step.tolist(), "tokens": self.tokens,
            "gates": [{g: v.tolist() for g, v in layer.items()} for layer in self.gates],
            "gates_note": self.gates_note,
        }


def _sample(run: Any, data: Any, sample: int) -> tuple[torch.Tensor, Any]:
    split = data.test
    if len(split) == 0:
        raise ValueError(f"the test split has no rows to explain (the run was trained with test_fraction=0?): "
                         "train with a test split, or explain another run")
    if not 0 <= sample < len(split):
        raise ValueError(f"sample {sample} is out of range: the test split has {len(split)} rows (0..{len(split) - 1})")
    length = int(split.lengths[sample])
    x = torch.as_tensor(split.x[sample][:length])
    return x, split.y[sample]


def _label(data: Any, y: Any) -> str | None:
    if data.task == "classify":
        names = list(getattr(data, "class_names", []) or [])
        index = int(y)
        return names[index] if index < len(names) else str(index)
    return None


def token_spans(tokens: list[str], scores: np.ndarray) -> Raw:
    """Tokens as HTML spans coloured by score: red pushes f up, blue down (escaped)."""
    scale = float(np.max(np.abs(scores))) or 1.0
    spans = []
    for token, score in zip(tokens, scores):
        alpha = min(1.0, abs(float(score)) / scale)
        colour = f"rgba(214,39,40,{alpha:.2f})" if score >= 0 else f"rgba(31,119,180,{alpha:.2f})"
        spans.append(f'<span style="background:{colour}" title="{score:+.4f}">{esc(token)}</span>')
    return Raw('<div class="tokens">' + " ".join(spans) + "</div>")


def explain(run_dir: str | Path, sample: int = 0, steps: int = 64, target: int | None = None,
            data_cache: dict[str, Any] | None = None) -> Explanation:
    """Explain test sample ``sample`` of the run in ``run_dir`` (see module docstring).

    Args:
        run_dir: a run dir (trained or compressed).
        sample: row of the test split.
        steps: integration points of integrated gradients.
        target: class / output index to explain; None: the model's prediction.
        data_cache: share loaded data between calls (see :func:`lstmlite.report.runs.run_data`).
    """
    from ..data import Vocabulary
    from ..io import load_run
    from .runs import run_data

    run = load_run(run_dir)
    if not isinstance(run.config.get("data"), dict):
        raise ValueError(f"{run_dir}: the run records no data spec (an imported model?), so it has no test "
                         "samples to explain")
    if getattr(run.model, "kind", None) == "seq2seq":
        raise ValueError(f"{run_dir}: explain covers single-stack models; a seq2seq run's attention weights "
                         "come from Seq2Seq.step (its third output) instead")
    data = run_data(run, data_cache)
    x, y = _sample(run, data, sample)
    model = run.model
    name = Path(run_dir).resolve().name
    attribution = integrated_gradients(model, x, target=target, steps=steps)
    with torch.no_grad():
        out = model(x.unsqueeze(0))
    predicted = None
    if data.task == "classify":
        predicted = _label(data, int(out[0].argmax()))
        attribution.target = f"logit of class {_label(data, attribution.index)!r} (index {attribution.index})"
    if data.task in ("tag", "ctc"):  # f is a label's logit at the last step
        labels = [str(c) for c in getattr(data, "class_names", []) or []]
        top, index = int(out[0, -1].argmax()), attribution.index
        predicted = f"{labels[top] if top < len(labels) else top} (at the last step)"
        attribution.target = (f"logit of label {labels[index] if index < len(labels) else str(index)!r} "
                              f"(index {index}) at the last step")
    tokens = None
    if data.vocab is not None or run.vocab is not None:
        vocab = data.vocab if data.vocab is not None else Vocabulary.from_dict(run.vocab)
        tokens = [vocab.tokens[int(i)] if int(i) < len(vocab.tokens) else "<unk>" for i in x.tolist()]
        if data.task == "lm" and attribution.index < len(vocab.tokens):
            predicted = vocab.tokens[attribution.index]
            attribution.target = f"logit of the next token {predicted!r} (id {attribution.index}) after the last step"
    explanation = Explanation(run=name, sample=sample, length=int(x.shape[0]), label=_label(data, y),
                              predicted=predicted, attribution=attribution, tokens=tokens)
    try:
        explanation.gates = record_gates(model, x)
    except ValueError as err:
        explanation.gates_note = str(err)
        log.info("%s: no gate heatmaps (%s)", name, err)
    _draw(explanation, getattr(model, "cell", "lstm"))
    return explanation


def _draw(e: Explanation, cell: str) -> None:
    att = e.attribution
    xlabels = e.tokens
    for k, layer in enumerate(e.gates):
        names = GATE_NAMES.get(cell, ())
        e.figures[f"gates_layer{k}.png"] = plots.gates_plot(
            {GATE_TITLES[g]: layer[g] for g in names}, f"{e.run}, sample {e.sample}: gates of layer {k}",
            xticklabels=xlabels)
    title = f"{e.run}, sample {e.sample}: {METHOD} of the {att.target}"
    e.figures["saliency.png"] = plots.saliency_plot(att.values, title, xticklabels=xlabels,
                                                    feature_label="embedding dim" if e.tokens else "input feature")
    if e.tokens:
        e.figures["tokens.png"] = plots.tokens_plot(e.tokens, att.per_step, f"{e.run}: tokens by saliency")


def explanation_section(e: Explanation, title: str | None = None) -> str:
    """An HTML section for the report (inline images, all text escaped)."""
    att = e.attribution
    facts = [
        ["test sample", e.sample], ["steps", e.length], ["true label", e.label or "–"],
        ["predicted", e.predicted or "–"], ["saliency method", f"{METHOD} ({att.steps} points, zero baseline)"],
        ["explained output f", att.target], ["f(x) − f(baseline)", f"{att.f_x - att.f_baseline:.4f}"],
        ["sum of attributions", f"{float(att.values.sum()):.4f} (completeness error "
                                f"{att.completeness_error:+.2e})"],
    ]
    parts = [f"<h3>{esc(title or e.run)}: sample {e.sample}</h3>", kv_table(facts)]
    if e.tokens:
        parts.append('<p class="note">Tokens coloured by saliency (red raises f, blue lowers it):</p>')
        parts.append(token_spans(e.tokens, att.per_step))
    for name, png in e.figures.items():
        if name != "tokens.png":
            parts.append(img(png, f"{e.run} {name[:-4]}"))
    if e.gates_note:
        parts.append(f'<p class="note">No gate heatmaps: {esc(e.gates_note)}</p>')
    return f'<section><h2>Explanation: {esc(title or e.run)}</h2>{"".join(parts)}</section>'


def write_explanation(e: Explanation, out_dir: str | Path) -> list[Path]:
    """Write the PNGs, ``explanation.json`` and ``section.html`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, png in e.figures.items():
        (out / name).write_bytes(png)
        written.append(out / name)
    (out / "explanation.json").write_text(json.dumps(e.to_json(), indent=2) + "\n", encoding="utf-8")
    (out / "section.html").write_text(explanation_section(e) + "\n", encoding="utf-8")
    written += [out / "explanation.json", out / "section.html"]
    log.info("wrote %d files to %s", len(written), out)
    return written
