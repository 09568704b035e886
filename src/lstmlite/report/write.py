"""``write_report``: one self-contained HTML file comparing run dirs.

Sections: a comparison table; accuracy-vs-size (exported ``.lsl`` bytes) with the
Pareto front; a model card per run (data, model, recipe, metric, exported bytes,
MACs/step, latency per engine where a ``lstmlite bench --json`` file times its
architecture); latency bars; per-tensor sparsity/bits/rank and exported bytes;
training curves; confusion matrices and, for a compressed run whose source run is
known, the per-class accuracy change; optional explanation sections
(:func:`lstmlite.report.explain`).

Everything read from a run dir is HTML-escaped; images are inline PNGs; the page has
no script and loads nothing.

Example:
    >>> write_report(["runs/jv", "runs/jv-int8"], "report.html")   # doctest: +SKIP
    PosixPath('report.html')
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .._text import one_line
from . import plots
from .html import Raw, esc, fmt, img, kv_table, page, section, table
from .metrics import bench_cases_for, confusion_matrix, latency_unit, layer_rows, per_class_accuracy
from .runs import ReportRun, check_outside_runs, gather, link_parents

__all__ = ["write_report", "render_report", "load_bench"]

log = logging.getLogger(__name__)


def load_bench(path: str | Path) -> dict[str, Any]:
    """A ``lstmlite bench --json`` file (``{"machine", "cases": [...]}``)."""
    path = Path(path)
    try:
        bench = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: bench file not found") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(bench, dict) or not isinstance(bench.get("cases"), list):
        raise ValueError(f"{path}: not a bench JSON (expected an object with a 'cases' list)")
    return bench


def _unique_names(paths: Sequence[Path]) -> list[str]:
    names = [p.resolve().name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [f"{p.resolve().parent.name}/{p.resolve().name}" if names.count(n) > 1 else n
            for p, n in zip(paths, names)]


def _model_text(cfg: dict[str, Any]) -> str:
    if cfg.get("kind") == "seq2seq":  # an encoder, attention and a decoder: not one recurrent layer and a head
        bi = "bi-" if cfg.get("bidirectional") else ""
        cell = str(cfg.get("cell", "?")).upper()
        attention = cfg.get("attention", "none")
        return (f"Embedding({cfg.get('vocab_size')}, {cfg.get('embed_dim')}) → encoder {bi}{cell}"
                f"({cfg.get('hidden_size')}) × {cfg.get('num_layers', 1)} → "
                + ("" if attention == "none" else f"{attention} attention → ")
                + f"decoder {cell}({cfg.get('decoder_hidden_size')}) × {cfg.get('decoder_layers', 1)} "
                "→ Dense(vocab)")
    hidden = cfg.get("hidden_size")
    layers = cfg.get("num_layers", 1)
    embed = f"Embedding({cfg['vocab_size']}, {cfg['embed_dim']}) → " if cfg.get("vocab_size") else ""
    bi = "bi-" if cfg.get("bidirectional") else ""
    head = {"classifier": f"Dense({cfg.get('n_classes', '?')})", "lm": "Dense(vocab)",
            "forecaster": f"Dense({cfg.get('horizon', '?')})"}.get(cfg.get("kind", ""), "head")
    return f"{embed}{bi}{str(cfg.get('cell', '?')).upper()}({hidden}) × {layers} → {head}"


def _size_label(run: ReportRun) -> str:
    """What a run's size counts: its exported .lsl file, a seq2seq run's three files, or an estimate."""
    if run.size_basis != "lsl":
        return "size (estimate: no .lsl file)"
    if run.config.get("model", {}).get("kind") == "seq2seq":
        return "exported files (encoder.lsl + decoder.lsl + seq2seq.safetensors)"
    return "exported .lsl file"


def _recipe_text(run: ReportRun) -> str:
    if run.recipe:
        steps = run.recipe.get("applied") or []
        parts = [f"{s.get('method') or 'train'}" + (f" ({s['epochs']} ep)" if s.get("epochs") else "")
                 for s in steps]
        name = run.recipe.get("recipe", {}).get("name") or run.config.get("recipe") or "custom"
        return f"{name}: " + " → ".join(parts) if parts else str(name)
    if run.config.get("compression"):
        kinds = sorted({str(e.get("kind")) for e in run.config["compression"]})
        name = run.config.get("recipe") or "compressed"
        return f"{name} ({', '.join(kinds)})"
    return "none (trained)"


def _vocabulary_pruned_lm(run: ReportRun) -> bool:
    """A language model whose recipe pruned the vocabulary: its perplexity is measured on
    the pruned vocabulary (dropped tokens count as <unk>), not comparable with its source's."""
    steps = (run.recipe or {}).get("applied") or []
    return run.config.get("task") == "lm" and any(s.get("method") == "vocab_prune" for s in steps)


def _delta(run: ReportRun) -> float | None:
    base = run.metrics.get("baseline_metric")
    if base is None and run.parent is not None:
        base = run.parent.metric
    if base is None or run.metric is None:
        return None
    return run.metric - float(base)


def _comparison(runs: Sequence[ReportRun]) -> Raw:
    rows = []
    for run in runs:
        delta = _delta(run)
        shown = "–" if delta is None else f"{delta:+.4f}"
        if delta is not None and _vocabulary_pruned_lm(run):
            shown = "not comparable (vocabulary pruned)"
        rows.append([run.name, run.metrics.get("dataset") or "–", _model_text(run.config.get("model", {})),
                     _recipe_text(run), "–" if run.metric is None else f"{run.metric_name} {fmt(run.metric)}",
                     shown, run.metrics.get("params"),
                     run.metrics.get("nonzero_params"),
                     f"{run.size_bytes:,}" + ("" if run.size_basis == "lsl" else " (estimate)"),
                     run.macs_per_step])
    header = ["run", "data", "model", "recipe", "test metric", "Δ vs source", "params", "non-zero params",
              "exported bytes", "MACs/step"]
    note = ('<p class="note">Exported bytes: the size of the <code>.lsl</code> file '
            "<code>lstmlite export --format lsl</code> writes (header, scales and indices included), "
            "measured now from each run's weights. Δ vs source: the test metric minus that of the run "
            "it was compressed from (not for a language model whose vocabulary a recipe pruned: its metric "
            "counts the dropped tokens as &lt;unk&gt;).</p>")
    return section("Comparison", table(header, rows), note, anchor="comparison")


def _pareto(runs: Sequence[ReportRun]) -> Raw:
    groups: dict[str, list[ReportRun]] = {}
    for run in runs:
        if run.metric is not None:
            groups.setdefault(run.metric_name, []).append(run)
    parts = []
    for metric_name, members in groups.items():
        points = [(r.name, float(r.size_bytes), float(r.metric)) for r in members]  # type: ignore[arg-type]
        parts.append(img(plots.pareto_plot(points, metric_name), f"{metric_name} against exported size"))
    if not parts:
        return Raw("")
    return section("Accuracy against size", *parts, anchor="pareto")


def _card(run: ReportRun) -> str:
    cfg = run.config.get("model", {})
    data = run.config.get("data", {}) if isinstance(run.config.get("data"), dict) else {}
    rows: list[list[Any]] = [
        ["data", f"{run.metrics.get('dataset') or '–'} ({run.config.get('task', '')})"],
        ["data source", data.get("source", "–")],
        ["model", _model_text(cfg)],
        ["recipe", _recipe_text(run)],
        [f"test {run.metric_name}", run.metric],
    ]
    if "baseline_metric" in run.metrics:
        rows.append([f"source run's test {run.metric_name}", run.metrics["baseline_metric"]])
        if _vocabulary_pruned_lm(run):
            rows.append(["note", f"{run.metric_name} on the pruned vocabulary (dropped tokens count as <unk>): "
                                 "not comparable with the source run's"])
    if run.source_run:
        rows.append(["compressed from", run.source_run])
    val = run.metrics.get("val", {}).get(run.metric_name) if isinstance(run.metrics.get("val"), dict) else None
    if val is not None:
        rows.append([f"validation {run.metric_name}", val])
    rows += [
        ["params / non-zero", f"{fmt(run.metrics.get('params'))} / {fmt(run.metrics.get('nonzero_params'))}"],
        [_size_label(run),
         f"{run.size_bytes:,} B ({run.size_bytes / 1024:.2f} KiB)"],
        ["MACs / step", run.macs_per_step],
    ]
    if "best_epoch" in run.metrics:
        rows.append(["chosen epoch (best validation)", run.metrics["best_epoch"]])
    if "train_seconds" in run.metrics:
        rows.append(["training time", f"{float(run.metrics['train_seconds']):.1f} s"])
    groups = _bench_groups(run)
    for source, cases in groups.items():
        where = f", {source}" if len(groups) > 1 else ""  # two files: which machine's time this is
        for case in cases:
            rows.append([f"latency {case['engine']} ({case.get('mode', 'sequence')}, T={case.get('seq_len')}, "
                         f"B={case.get('batch')}{where})",
                         f"{float(case['median_us']):.1f} {latency_unit(case)}, median"])
    if not run.bench:
        rows.append(["latency", "no bench file times this architecture (lstmlite bench RUN --json FILE)"])
    return f'<div class="card"><h3>{esc(run.name)}</h3>{kv_table(rows)}</div>'


def _cards(runs: Sequence[ReportRun]) -> Raw:
    return section("Model cards", '<div class="cards">' + "".join(_card(r) for r in runs) + "</div>",
                   anchor="cards")


def _bench_groups(run: ReportRun) -> dict[str, list[dict[str, Any]]]:
    """A run's bench cases by the file they came from (a case's ``source``, set by
    :func:`write_report`; else the run's ``bench_source``), in the order given. Files
    are kept apart: each is one machine's run, and times compare only within one."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for case in run.bench:
        groups.setdefault(str(case.get("source") or run.bench_source), []).append(case)
    return groups


def _latency(runs: Sequence[ReportRun]) -> Raw:
    parts = []
    seen: set[str] = set()
    for run in runs:
        for source, cases in _bench_groups(run).items():
            key = json.dumps(cases, sort_keys=True)
            if key in seen:  # runs of one architecture share their cases: shown once
                continue
            seen.add(key)
            what = cases[0].get("what") or "recurrent layers, as lstmlite bench times them"
            title = f"{run.name}: {what} ({source})"
            parts.append(img(plots.latency_plot(cases, title), f"latency per engine for {run.name} ({source})"))
            # a step-mode case times one step, a sequence-mode one a call of T steps: the unit
            # is the row's (the plot's axis label for that case's panel), not one header's
            parts.append(table(["engine", "mode", "T", "batch", "median", "p90", "unit"],
                               [[c["engine"], c.get("mode", "sequence"), c.get("seq_len"), c.get("batch"),
                                 c["median_us"], c.get("p90_us"), latency_unit(c)] for c in cases]))
    if not parts:
        return Raw("")
    return section("Latency against the peers", *parts, anchor="latency")


def _layers(runs: Sequence[ReportRun]) -> Raw:
    parts = []
    for run in runs:
        rows = layer_rows(run.model)
        parts.append(f"<h3>{esc(run.name)}</h3>")
        parts.append(table(["tensor", "shape", "sparsity", "bits", "rank", "bytes (storage)", "transforms"],
                           [[r["name"], "x".join(str(s) for s in r["shape"]) or "scalar", f"{r['sparsity']:.3f}",
                             r["bits"], r["rank"], r["bytes"], ", ".join(r["transforms"]) or "–"] for r in rows]))
        if run.tensors:
            parts.append('<p class="note">What the exported .lsl file stores, tensor by tensor:</p>')
            parts.append(table(["tensor", "stored as", "shape", "bytes"],
                               [[t["name"], t["dtype"], "x".join(str(d) for d in t["shape"]) or "–", t["bytes"]]
                                for t in run.tensors]))
    return section("Per-layer sparsity, bits and rank", *parts, anchor="layers")


def _curves(runs: Sequence[ReportRun]) -> Raw:
    groups: dict[str, list[tuple[str, list]]] = {}
    for run in runs:
        if run.history:
            groups.setdefault(run.metric_name, []).append((run.name, run.history))
    if not groups:
        return Raw("")
    parts = [img(plots.curves_plot(histories, metric), f"training curves ({metric})")
             for metric, histories in groups.items()]
    parts.append('<p class="note">Compression runs show their recipe\'s fine-tuning epochs; dotted lines '
                 "mark where a recipe step starts. A run with no training (post-training quantization) "
                 "has no curve.</p>")
    return section("Training curves", *parts, anchor="curves")


def _share(value: float) -> float | str:
    """A per-class accuracy as the table shows it: "–" for a class with no test rows (NaN)."""
    return "–" if np.isnan(value) else value


def _change(before: float, after: float) -> str:
    if np.isnan(before) or np.isnan(after):
        return "no test rows"
    return f"{(after - before) * 100:+.1f} points"


def _per_class(runs: Sequence[ReportRun]) -> Raw:
    parts = []
    for run in runs:
        if run.y_true is None or run.y_pred is None:
            continue
        n = max(len(run.class_names), int(run.y_true.max()) + 1, int(run.y_pred.max()) + 1)
        cm = confusion_matrix(run.y_true, run.y_pred, n)
        parts.append(f"<h3>{esc(run.name)}</h3>")
        parts.append(img(plots.confusion_plot(cm, run.class_names, f"{run.name}: test confusion matrix"),
                         f"confusion matrix of {run.name}"))
        parent = run.parent
        if parent is None or parent.y_true is None or parent.y_pred is None:
            continue
        # the source may predict (or hold) a class this run never does: count both runs' classes
        n = max(n, int(parent.y_true.max()) + 1, int(parent.y_pred.max()) + 1)
        before = per_class_accuracy(confusion_matrix(parent.y_true, parent.y_pred, n))
        after = per_class_accuracy(confusion_matrix(run.y_true, run.y_pred, n))
        names = run.class_names if len(run.class_names) == n else [str(i) for i in range(n)]
        title = f"{run.name} vs {parent.name}: per-class test accuracy change"
        parts.append(img(plots.class_delta_plot(before, after, names, title), title))
        order = np.argsort(np.nan_to_num(after - before), kind="stable")
        parts.append(table(["class", f"{parent.name}", f"{run.name}", "change"],
                           [[names[i], _share(before[i]), _share(after[i]), _change(before[i], after[i])]
                            for i in order]))
    if not parts:
        return Raw("")
    return section("Confusion matrices and per-class change", *parts, anchor="classes")


def render_report(runs: Sequence[ReportRun], extra_sections: Iterable[str] = (), title: str = "lstmlite report"
                  ) -> str:
    """The HTML text for already gathered runs (see :func:`write_report`)."""
    from .. import __version__

    body = [_comparison(runs), _pareto(runs), _cards(runs), _latency(runs), _layers(runs), _curves(runs),
            _per_class(runs), *extra_sections]
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"{len(runs)} run(s): {', '.join(r.name for r in runs)} · lstmlite {__version__} · {stamp}"
    return page(title, "".join(body), subtitle)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(
    runs: Sequence[str | Path],
    out: str | Path,
    bench: Sequence[str | Path] = (),
    explain_sample: int | None = None,
    title: str = "lstmlite report",
) -> Path:
    """Write one self-contained HTML report about ``runs`` to ``out``.

    Args:
        runs: run dirs (trained, compressed, imported). A compressed run is compared
            with the run it came from (its ``source_run``), which is read too when it
            is not among ``runs`` but still exists.
        out: the HTML file to write (written atomically).
        bench: ``lstmlite bench --json`` files; a run's card lists the cases that time
            its architecture (same input and hidden size), from every file that has
            some, and the latency section shows each file's apart (its own chart and
            table: times compare only within one file's run).
        explain_sample: also explain this test sample (gate heatmaps, integrated
            gradients) for every run that can be explained (the others are logged).
        title: the page title.

    Raises:
        ValueError: ``explain_sample`` given and no run could be explained (e.g. past
            every run's test split); nothing is written.

    Returns:
        the path written.
    """
    if not runs:
        raise ValueError("no run dirs given")
    paths = []
    for run in map(Path, runs):  # a run given twice is shown once (two identical cards said nothing more)
        if any(run.resolve() == seen.resolve() for seen in paths):
            log.info("%s is given twice; the report shows it once", run)
        else:
            paths.append(run)
    check_outside_runs(Path(out), paths)
    if Path(out).is_dir():  # checked before the runs are read: the report is one file
        raise ValueError(f"{out}: is a folder; give the HTML file to write, e.g. {Path(out) / 'report.html'}")
    cache: dict[str, Any] = {}  # runs of one data spec load it once
    gathered = [gather(p, name, data_cache=cache) for p, name in zip(paths, _unique_names(paths))]
    link_parents(gathered, data_cache=cache)
    files = list(dict.fromkeys(Path(b) for b in bench))  # a file given twice is one file
    names = [f.name for f in files]  # a file's name, or its path where two share one
    benches = [(name if names.count(name) == 1 else str(f), load_bench(f)) for name, f in zip(names, files)]
    for run in gathered:
        for source, data in benches:  # every file that times this architecture, each apart
            run.bench += [{**case, "source": source} for case in bench_cases_for(data, run.config.get("model", {}))]
        run.bench_source = ", ".join(dict.fromkeys(case["source"] for case in run.bench))
    extra: list[str] = []
    if explain_sample is not None:
        from .explain import explain, explanation_section

        refused: list[str] = []
        for run in gathered:
            try:
                extra.append(explanation_section(explain(run.path, explain_sample, data_cache=cache), run.name))
            except ValueError as err:
                refused.append(f"{run.path}: {one_line(err, limit=None)}")
        if refused and not extra:  # a K no run has (out of range): a report without what was asked is not one
            raise ValueError(f"test sample {explain_sample} (--explain {explain_sample}): no run could be explained "
                             f"({'; '.join(refused)})")
        for reason in refused:
            log.warning("not explained: %s", reason)
    out = Path(out)
    _atomic_write(out, render_report(gathered, extra, title))
    log.info("wrote %s", out)
    return out
