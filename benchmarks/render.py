"""Render BENCHMARKS.md's tables from the results JSON files, so the numbers cannot drift.

A rendered table sits between two marker lines in BENCHMARKS.md::

    <!-- BEGIN render:compression-jv -->
    ...generated markdown...
    <!-- END render:compression-jv -->

The name after ``render:`` is a results file (``benchmarks/results/<name>.json``) and
picks its renderer from :data:`RENDERERS` (by the file's ``benchmark`` field). Text
outside the markers is prose and is left alone; a number quoted in prose must be in a
rendered table too.

    python benchmarks/render.py            # rewrite the blocks in place
    python benchmarks/render.py --check    # exit 1 and name every block that differs

A single value inside a sentence is an inline block (one line; FILE is a results file,
PATH a field in it, FORMAT how to print it: see :func:`lookup` and :func:`format_value`)::

    reaches <!-- render:compression-jv; rows[method=baseline].metric; pct -->96.58 %<!-- /render -->

Blocks may sit in BENCHMARKS.md, README.md and docs/**/*.md (tutorials included).
``benchmarks/unrendered.py`` finds result-like numbers outside blocks.
``tests/benchmarks/test_render.py`` runs the check, so a results file re-measured without
re-rendering (or a hand-edited table) fails the suite.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent
#: The documents whose blocks are rendered (README and docs/ may quote results too).
DOCS = [ROOT / "BENCHMARKS.md", ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(<!-- BEGIN render:(?P<name>[\w.:-]+) -->\n)(?P<body>.*?)(<!-- END render:(?P=name) -->)",
                   re.S)


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def compression_table(result: dict[str, Any]) -> str:
    """The per-method table of bench_compression_{jv,trec}.py (means over seeds; file bytes
    are the largest over the seeds)."""
    lines = ["| method | accuracy (mean ± std, seeds) | Δ vs fp32 (pt) | file bytes | × smaller | "
             "runtime agreement (lowest seed) | target |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        acc = r["metric_name"] == "accuracy"
        scale, unit = (100, " %") if acc else (1, "")
        value = f"{scale * r['metric']:.2f} ± {scale * r['metric_std']:.2f}{unit} ({r['seeds']})"
        delta = "—" if r["method"] == "baseline" else f"{scale * r['delta_vs_baseline']:+.2f}"
        if r.get("file_bytes") is None:
            size, ratio = f"no file (tensors: {r['size_bytes']:,})", "—"
        else:
            size, ratio = f"{r['file_bytes']:,}", f"{r['size_ratio']:.1f}"
            if not r.get("size_bytes_equals_file_bytes", True):
                size += f" (metrics.json says {r['size_bytes']:,})"
        agree = _pct(r["runtime_agreement"]) if r.get("runtime_agreement") is not None else "—"
        target = f"{r['target']}: {'met' if r.get('meets_target') else '**no**'}" if r.get("target") else ""
        lines.append(f"| {r['method']} | {value} | {delta} | {size} | {ratio} | {agree} | {target} |")
    return "\n".join(lines)


def compression_targets(result: dict[str, Any]) -> str:
    """Issue 10's size/accuracy targets against the rows with files (JapaneseVowels)."""
    rows = [r for r in result["rows"] if r.get("file_bytes") is not None and r["method"] != "baseline"]
    lines = ["| target | met | closest measured |", "|---|---|---|"]
    for acc_bar, size_bar in ((0.98, 2048), (0.975, 1024)):
        fits = [r for r in rows if r["file_bytes"] <= size_bar]
        best = max(fits, key=lambda r: (r["metric"], -r["file_bytes"])) if fits else None
        met = best is not None and best["metric"] >= acc_bar
        near = ("no row fits" if best is None else
                f"{_pct(best['metric'])} at {best['file_bytes']:,} B ({best['method']})")
        lines.append(f"| ≥ {100 * acc_bar:.1f} % at ≤ {size_bar:,} file bytes | {'yes' if met else '**no**'} | "
                     f"{near} |")
    within = [r for r in rows if r["delta_vs_baseline"] >= -0.01]
    best = max(within, key=lambda r: r["size_ratio"]) if within else None
    lines.append(f"| ≥ 50× smaller at ≤ 1 pt loss | {'yes' if best and best['size_ratio'] >= 50 else '**no**'} | "
                 + ("–" if best is None else f"{best['size_ratio']:.1f}× ({best['file_bytes']:,} B, "
                    f"{100 * best['delta_vs_baseline']:+.2f} pt, {best['method']})") + " |")
    agree = [r["runtime_agreement"] for r in rows if r.get("runtime_agreement") is not None]
    lines.append(f"| runtime agreement ≥ 99.5 %, every row | {'yes' if min(agree) >= 0.995 else '**no**'} | "
                 f"lowest {_pct(min(agree))} |")
    return "\n".join(lines)


def _mean_std(values: list[float], fmt: str = "{:.4f}", unit: str = "") -> str:
    """mean ± std over seeds (the std without a sign), or the value alone when every seed
    gave the same (a size, a ratio); ``unit`` after each number."""
    if len(set(values)) == 1:
        return fmt.format(values[0]) + unit
    return f"{fmt.format(statistics.mean(values))}{unit} ± {fmt.format(statistics.stdev(values)).lstrip('+')}{unit}"


def search_table(result: dict[str, Any]) -> str:
    """bench_search.py: per sampler, hypervolume and the picks within 2 KB / 1 KB."""
    lines = ["| sampler | hypervolume (mean ± std) | best ≤ 2,048 B: test accuracy | its file bytes (mean) | "
             "best ≤ 1,024 B: test accuracy | feasible / complete trials | not trained (over budget) / "
             "stopped early | wall s per study |", "|---|---|---|---|---|---|---|---|"]
    samplers = list(dict.fromkeys(r["sampler"] for r in result["rows"]))
    for name in samplers:
        mine = [r for r in result["rows"] if r["sampler"] == name]

        def pick(key: str) -> tuple[str, str]:
            got = [r[key] for r in mine if r[key] is not None]
            if not got:
                return "none fits", "—"
            acc = _mean_std([100 * g["metric"] for g in got], "{:.2f}") + f" % ({len(got)}/{len(mine)} seeds)"
            return acc, f"{statistics.mean(g['size_bytes'] for g in got):,.0f}"

        acc2, bytes2 = pick("best_2kb")
        acc1, _ = pick("best_1kb")
        feasible = sum(r["feasible"] for r in mine)
        complete = sum(r["complete"] for r in mine)
        wall = statistics.mean(r["wall_s"] for r in mine)
        skipped = f"{sum(r.get('not_trained', 0) for r in mine)} / {sum(r.get('pruned', 0) for r in mine)}"
        lines.append(f"| {name} | {_mean_std([r['hypervolume'] for r in mine])} | {acc2} | {bytes2} | {acc1} | "
                     f"{feasible} / {complete} | {skipped} | {wall:.0f} |")
    return "\n".join(lines)


def runtime_tables(result: dict[str, Any]) -> str:
    """bench_runtime.py's own tables (cases, then targets): the same function as
    ``bench_runtime.py --tables``."""
    from bench_runtime import markdown_tables

    return markdown_tables(result)


def runtime_cases(result: dict[str, Any]) -> str:
    """Only the per-case table of :func:`runtime_tables` (no targets)."""
    return runtime_tables(result).split("\n\n")[0]


#: issue 11's per-kernel-table ratios: (column title, case, our engine(s), versus)
_ISA_RATIOS = [
    ("int8-dyn / ORT int8, I40 H128", "seq-40x128", "lstmlite-int8-dyn", "onnxruntime-int8"),
    ("int8-dyn / our fp32", "seq-40x128", "lstmlite-int8-dyn", "lstmlite-fp32"),
    ("step int8-dyn / our fp32 step", "step-40x128", "lstmlite-int8-dyn", "lstmlite-fp32"),
    ("I128 H256 / ORT int8", "seq-128x256", "lstmlite-int8-dyn", "onnxruntime-int8"),
    ("B=32 / ORT int8", "batch32", "lstmlite-int8-dyn", "onnxruntime-int8"),
]
_ISA_ORDER = ["portable", "avx2-view", "avx2", "avx2-vnni-avx-vnni-view", "avx2-vnni", "avx512", "avx512-vnni", "neon",
              "neon-dotprod"]
#: row titles of files that are not a plain kernel table (runtime-CPU-NAME.json)
_ISA_TITLES = {"avx2-view": "`avx2`, every engine as on an AVX2-only CPU (`--avx2-view`)",
               "avx2-vnni-avx-vnni-view": "`avx2-vnni`, every engine as on an AVX2 + AVX-VNNI CPU without AVX-512 "
                                          "(`--avx2-view --keep-avx-vnni`)"}


def isa_summary(cpu: str, label: str, threads: bool) -> str:
    """One row per kernel table measured on ``cpu`` (results/runtime-CPU-TABLE.json):
    issue 11's ratios of interleaved medians, all from the same run per table."""
    files = {p.stem[len(f"runtime-{cpu}-"):]: p for p in RESULTS.glob(f"runtime-{cpu}-*.json")}
    if not files:
        raise KeyError(f"no results/runtime-{cpu}-*.json")
    tables = sorted(files, key=lambda t: _ISA_ORDER.index(t) if t in _ISA_ORDER else len(_ISA_ORDER))
    head = [title for title, *_ in _ISA_RATIOS]
    head.append("int7-dyn / ORT int8: I40 H128, I128 H256, B=32")
    head.append("int7r-dyn16 / ORT int8: I40 H128, I128 H256, B=32")
    head.append("int7r-dyn16-h7 / ORT int8: I40 H128, I128 H256, B=32")
    if threads:
        head.append("2 threads / 1, B=32 (fp32, int8, dyn)")
    head.append("80 % sparse-dyn / dense-dyn, (1, 4) / (16, 4) blocks")
    if threads:
        head.append("rel. err, I40 H128 (int8-dyn / int7-dyn / int7r-dyn16 / int7r-dyn16-h7)")
    lines = [f"| kernel table ({label}) | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for table in tables:
        rows = json.loads(files[table].read_text())["rows"]
        cells = [_ratio(rows, case, ours, case, versus) for _, case, ours, versus in _ISA_RATIOS]
        for engine in ("lstmlite-int7-dyn", "lstmlite-int7r-dyn16", "lstmlite-int7r-dyn16-h7"):
            cells.append(", ".join(_ratio(rows, case, engine, case, "onnxruntime-int8")
                                   for case in ("seq-40x128", "seq-128x256", "batch32")))
        if threads:
            cells.append(", ".join(_two_threads(rows, e) for e in ("lstmlite-fp32", "lstmlite-int8", "lstmlite-int8-dyn")))
        cells.append(" / ".join(_ratio(rows, case, "lstmlite-int8-sparse-dyn", case, "lstmlite-int8-dyn")
                                for case in ("sparse80-40x128", "sparse80r16-40x128")))
        if threads:
            errs = [next((r["max_rel_err"] for r in rows if r["case"] == "seq-40x128" and r["engine"] == e), None)
                    for e in ("lstmlite-int8-dyn", "lstmlite-int7-dyn", "lstmlite-int7r-dyn16",
                              "lstmlite-int7r-dyn16-h7")]
            cells.append(" / ".join("–" if err is None else f"{err:.1e}" for err in errs))
        lines.append(f"| {_ISA_TITLES.get(table, f'`{table}`')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _two_threads(rows: list[dict[str, Any]], engine: str) -> str:
    """``engine``'s 2-thread over 1-thread median at B = 32 (bench_runtime.two_and_one_thread_b32)."""
    from bench_runtime import two_and_one_thread_b32

    two, one = two_and_one_thread_b32(rows, engine)
    return f"{two / one:.2f}" if two and one else "–"


def _ratio(rows: list[dict[str, Any]], case_a: str, engine_a: str, case_b: str, engine_b: str) -> str:
    """Median of (case_a, engine_a) over median of (case_b, engine_b), or "–" if either is missing."""
    from bench_runtime import _median

    a, b = _median(rows, case_a, engine_a), _median(rows, case_b, engine_b)
    return f"{a / b:.2f}" if a and b else "–"


def _model(point: dict[str, Any] | None) -> str:
    if not point:
        return "–"
    bits = point.get("weight_bits", 32)
    parts = [f"{point.get('cell', '?')}-{point.get('hidden_size', '?')}",
             f"int{bits}" + (" QAT" if point.get("qat") else "") if bits < 32 else "fp32"]
    if point.get("sparsity"):
        parts.append(f"{100 * point['sparsity']:.0f} % sparse")
    return ", ".join(parts)


def search_long_table(result: dict[str, Any]) -> str:
    """bench_search.py --long: per seed, the models chosen on validation within 2 KB / 1 KB,
    then issue 13's targets on their test accuracy."""
    lines = ["| seed | trials (complete) | wall s | best ≤ 2,048 B: model | val / test accuracy | bytes | "
             "best ≤ 1,024 B: model | val / test accuracy | bytes |", "|---|---|---|---|---|---|---|---|---|"]

    def cells(pick: dict[str, Any] | None) -> str:
        if pick is None:
            return "none fits | – | –"
        return (f"{_model(pick.get('point') or pick.get('params'))} | {_pct(pick['val_metric'])} / "
                f"{_pct(pick['metric'])} | "
                f"{pick['size_bytes']:,}")

    for r in result["rows"]:
        lines.append(f"| {r['seed']} | {r['complete']} | {r['wall_s']:.0f} | {cells(r['best_2kb'])} | "
                     f"{cells(r['best_1kb'])} |")
    lines += ["", "| target (test accuracy of the model chosen on validation) | met | measured, mean over seeds |",
              "|---|---|---|"]
    for key, bar, label in (("best_2kb", 0.98, "≥ 98.0 % at ≤ 2,048 B"), ("best_1kb", 0.975, "≥ 97.5 % at ≤ 1,024 B")):
        picks = [r[key]["metric"] for r in result["rows"] if r[key] is not None]
        mean = statistics.mean(picks) if picks else None
        met = mean is not None and len(picks) == len(result["rows"]) and mean >= bar
        lines.append(f"| {label} | {'yes' if met else '**no**'} | "
                     + ("none fits" if mean is None else f"{_pct(mean)} ({len(picks)}/{len(result['rows'])} seeds)")
                     + " |")
    return "\n".join(lines)


def search_trec_table() -> str:
    """bench_search.py --trec beside the text-tiny recipe's row of compression-trec.json."""
    search_rows = json.loads((RESULTS / "search-trec.json").read_text())["rows"]
    recipe = next(r for r in json.loads((RESULTS / "compression-trec.json").read_text())["rows"]
                  if r["method"].startswith("recipe text-tiny"))
    lines = ["| model | how chosen | test accuracy | file bytes | ≤ 64 KB |", "|---|---|---|---|---|"]
    for r in search_rows:
        best = r.get("best")
        if best is None:
            lines.append(f"| none within 64 KB | search, {r['complete']} trials in {r['wall_s']:.0f} s | – | – | – |")
            continue
        lines.append(f"| {_model(best.get('point') or best.get('params'))}, vocabulary "
                     f"{(best.get('point') or best.get('params') or {}).get('max_vocab', '?')}, embedding "
                     f"{(best.get('point') or best.get('params') or {}).get('embed_dim', '?')} | search (TPE, seed "
                     f"{r['seed']}: best validation accuracy {_pct(best['val_metric'])} of {r['complete']} completed "
                     f"trials, {r['wall_s'] / 60:.0f} min) | {_pct(best['metric'])} (1 seed) | "
                     f"{best['size_bytes']:,} | yes |")
    fits = "yes" if recipe["file_bytes"] <= 64 * 1024 else "no"
    lines.append(f"| recipe `text-tiny` on the reference model | shipped recipe, 3 seeds | "
                 f"{_pct(recipe['metric'])} ± {100 * recipe['metric_std']:.2f} | {recipe['file_bytes']:,} | {fits} |")
    return "\n".join(lines)


#: issue 2's baseline targets (goals, not results): file -> (label, model words, goal text, met test)
_BASELINES = [
    ("baselines-jv", "JapaneseVowels", "≥ 0.965 accuracy", lambda r: r["metric"] >= 0.965),
    ("baselines-bm", "BasicMotions", "≥ 0.95 accuracy", lambda r: r["metric"] >= 0.95),
    ("baselines-trec", "TREC-6", "≥ 0.87 accuracy", lambda r: r["metric"] >= 0.87),
    ("baselines-lm", "tiny-shakespeare", "(report)", None),
    ("baselines-airline", "airline", "beat seasonal naive", lambda r: r["mae_vs_naive_mean"] < 1.0),
]


def _model_words(model: dict[str, Any]) -> str:
    words = f"{model.get('num_layers', 1)} × " if model.get("num_layers", 1) > 1 else ""
    words += f"{model['cell'].upper()}-{model['hidden_size']}"
    if model.get("embed_dim"):
        words += f", embedding {model['embed_dim']}"
    if model.get("pooling"):
        words += f", {model['pooling']} pooling"
    return words


def baselines_table() -> str:
    """bench_baselines.py: one row per data set (results/baselines-*.json), issue 2's goals."""
    lines = ["| data set | model | params (fp32 bytes) | training | metric (test unless named) | seeds | goal | met |",
             "|---|---|---|---|---|---|---|---|"]
    for stem, label, goal, met in _BASELINES:
        r = json.loads((RESULTS / f"{stem}.json").read_text())["rows"][0]
        tr = r["train"]
        training = f"{tr['epochs']} epochs, batch {tr['batch_size']}, {r['train_seconds_mean']:,.0f} s"
        if r["metric_name"].startswith("mae"):
            metric = (f"MAE {r['metric']:.1f} ± {r['metric_std']:.1f} vs seasonal naive {r['naive_mae_mean']:.1f} "
                      f"(ratio {r['mae_vs_naive_mean']:.2f})")
        elif r["metric_name"].startswith("bits_per_char"):
            metric = f"{r['metric']:.2f} bits/char{' (validation)' if '(val)' in r['metric_name'] else ''}"
        else:
            metric = f"{r['metric_name']} {r['metric']:.4f} ± {r['metric_std']:.4f}"
            if r["seeds"] > 1:
                metric += " (" + ", ".join(f"{m:.3f}" for m in r["metric_per_seed"]) + ")"
        ok = "reported" if met is None else ("yes" if met(r) else "**no**")
        lines.append(f"| {label} | {_model_words(r['model'])} | {r['params']:,} ({r['size_bytes']:,} B) | {training} | "
                     f"{metric} | {r['seeds']} | {goal} | {ok} |")
    return "\n".join(lines)


def train_speed_table(result: dict[str, Any]) -> str:
    """bench_train_speed.py: forward + backward medians of our layer and torch.nn.LSTM, same run;
    the full-length case of issue 2, then the padded variable-length case (lengths vs packing)."""
    rows = [r for r in result["rows"] if "engine" in r]
    summary = next(r for r in result["rows"] if "speed_ratio_vs_torch" in r)
    lines = ["| case | layer | B | T | I | H | median ms (fwd + bwd) | p90 ms |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        case = "padded, lengths 7–T" if r.get("case") == "padded" else "full length"
        lines.append(f"| {case} | `{r['engine']}` | {r['batch']} | {r['seq_len']} | {r['input_size']} | "
                     f"{r['hidden_size']} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} |")
    m = result["machine"]
    lines += ["", f"Speed ratio, full length (torch time / ours): **{summary['speed_ratio_vs_torch']:.2f}** (goal ≥ "
              f"{summary['target']}: {'met' if summary['met'] else '**no**'})."]
    padded = {r["engine"]: r for r in rows if r.get("case") == "padded"}
    if padded:
        packed = next(r for k, r in padded.items() if "Packed" in k)
        ours = next(r for k, r in padded.items() if "lengths" in k)
        lines.append(f"Padded batch: PackedSequence time / ours **{packed['median_ms'] / ours['median_ms']:.2f}** "
                     f"(outputs equal within {ours['max_abs_err_vs_torch']:.1e}).")
    lines.append(f"{result.get('reps', '?')} interleaved repetitions, {result.get('threads', '?')} thread(s); "
                 f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}, {result['date']}.")
    return "\n".join(lines)


def lm_table() -> str:
    """bench_compression_lm.py's two budgets (results/compression-lm.json, compression-lm-6000w-2+2e.json)."""
    lines = ["| budget | method | test bits/char | Δ vs fp32 | size (B, old estimate — superseded) | non-zero params | "
             "target |", "|---|---|---|---|---|---|---|"]
    for stem in ("compression-lm", "compression-lm-6000w-2+2e"):
        result = json.loads((RESULTS / f"{stem}.json").read_text())
        s = result["settings"]
        budget = (f"{s['train_windows']:,} windows, {s['pretrain']['epochs']} + {s['continue']['epochs']} epochs "
                  f"({s['steps_per_epoch'] * (s['pretrain']['epochs'] + s['continue']['epochs']):,} steps)")
        for r in result["rows"]:
            if r["method"].startswith("after phase"):
                continue
            delta = "—" if r["method"] == "baseline" else f"{100 * r['delta_relative']:+.2f} %"
            target = f"{r['target']}: {'met' if r['meets_target'] else '**no**'}" if r.get("target") else ""
            name = "fp32" if r["method"] == "baseline" else r["method"]
            lines.append(f"| {budget} | {name} | {r['metric']:.2f} | {delta} | {r['size_bytes']:,} | "
                         f"{r['nonzero_params']:,} | {target} |")
            budget = ""
    return "\n".join(lines)


def ctc_table(result: dict[str, Any]) -> str:
    """bench_ctc.py: per method, CER (greedy and beam), exported bytes and agreement with
    PyTorch (mean ± std over seeds); then each engine's streaming latency and RTF."""
    rows = result["rows"]
    beam = rows[0].get("beam", 8)
    lines = [f"| method | test CER (greedy) | beam {beam} | test WER | .lsl bytes | smaller | Δ CER vs baseline (pt) | "
             "streamed = PyTorch: native / ONNX Runtime | streamed CER (native, beam) |",
             "|---|---|---|---|---|---|---|---|---|"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for method in methods:
        group = [r for r in rows if r["method"] == method]
        native = [next(v for k, v in r["agreement"].items() if k.startswith("lstmlite")) for r in group]
        onnx = [r["agreement"]["onnxruntime"] for r in group]
        lines.append(
            f"| {method} | {_mean_std([r['metric'] for r in group])} | {_mean_std([r['beam_cer'] for r in group])} | "
            f"{_mean_std([r['wer'] for r in group])} | {_mean_std([float(r['file_bytes']) for r in group], '{:,.0f}')} | "
            f"{_mean_std([r['baseline_size_bytes'] / r['file_bytes'] for r in group], '{:.1f}', '×')} | "
            f"{_mean_std([100 * (r['metric'] - r['baseline_metric']) for r in group], '{:+.2f}')} | "
            f"{_mean_std(native, '{:.3f}')} / {_mean_std(onnx, '{:.3f}')} | "
            f"{_mean_std([r['streamed_beam_cer'] for r in group])} |")
    lines += ["", "| method | engine | p50 µs / frame | p90 µs / frame | real-time factor |", "|---|---|---|---|---|"]
    for method in methods:
        group = [r for r in rows if r["method"] == method]
        for engine in group[0]["stream"]:
            speeds = [r["stream"][engine] for r in group if engine in r["stream"]]
            lines.append(f"| {method} | {engine} | {statistics.median([s['p50_us'] for s in speeds]):.1f} | "
                         f"{statistics.median([s['p90_us'] for s in speeds]):.1f} | "
                         f"{statistics.median([s['rtf'] for s in speeds]):.5f} |")
    seeds = sorted({r["seed"] for r in rows})
    per_seed = "; ".join(f"{method} " + " / ".join(f"{r['metric']:.4f}" for r in sorted(
        (r for r in rows if r["method"] == method), key=lambda r: r["seed"])) for method in methods)
    return "\n".join(lines) + f"\n\n{len(seeds)} seed(s) (mean ± std; speeds: median over seeds); {rows[0]['dataset']}, " \
        f"{rows[0]['frames']} test frames of {rows[0]['hop_s'] * 1000:.0f} ms. Greedy CER per seed " \
        f"({', '.join(map(str, seeds))}): {per_seed}.\n"


def fuzz_table(result: dict[str, Any]) -> str:
    """bench_fuzz.py: per libFuzzer target, time, executions, speed, coverage, crashes."""
    lines = ["| target | time | executions | exec/s | cov (edges) | ft (features) | corpus | crashes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['target']} | {r['seconds']:.0f} s | {r['executions']:,} | {r['exec_per_s']:,.0f} | "
                     f"{r['cov']:,} | {r['ft']:,} | {r['corpus']:,} | {r['crashes']} |")
    return "\n".join(lines) + f"\n\n{result['clang']}, `{result['sanitizers']}`; {result['date']}, " \
        f"{result['machine']['cpu']} ({result['machine']['cores']} cores, shared).\n"


def mcu_table(result: dict[str, Any]) -> str:
    """bench_mcu.py: instructions per step, flash and static RAM per engine on the same
    LSTM shape, and the ratio to CMSIS-NN measured in the same run."""
    names = {"lstmlite-integer": "lstmlite integer-only (`lsl_int.c`, packed SMLAD)",
             "cmsis-nn-s8": "CMSIS-NN `arm_lstm_unidirectional_s8`",
             "lstmlite-tflite": "lstmlite TFLite-compatible (`--form tflite`, `lsl_tflite.c`; CMSIS-NN's weights)"}
    lines = ["| engine | instructions / step | per MAC | flash (B) | static RAM (B) |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {names.get(r['engine'], r['engine'])} | {r['instructions_per_step']:,.0f} | "
                     f"{r['instructions_per_mac']:.2f} | {r['flash_bytes']:,} | {r['ram_static_bytes']:,} |")
    lines.append("")
    lines.append(f"lstmlite / CMSIS-NN instructions per step: **{result['ratio_instructions_ours_over_cmsis']:.2f} ×** "
                 f"({result['rows'][0]['model']}, {result['rows'][0]['steps']} steps, {result['board']}).")
    if "ratio_instructions_tflite_over_cmsis" in result:
        lines.append(f"TFLite-compatible form / CMSIS-NN: **{result['ratio_instructions_tflite_over_cmsis']:.2f} ×** "
                     "(the same arithmetic as CMSIS-NN: TFLite Micro's).")
    return "\n".join(lines) + "\n"


def mcu_models_table(result: dict[str, Any]) -> str:
    """bench_mcu_models.py: per model, its test accuracy beside its Cortex-M4 cost (MACs,
    instructions per step, flash, RAM), then the anchors it quotes but did not measure."""
    lines = ["| model | data | C form | test accuracy | MACs / step | instructions / step (per MAC) | "
             "flash B (weights) | RAM B (static + stack) | .lsl file B |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lsl = f"{r['size_bytes']:,}" if r.get("size_bytes") is not None else "—"
        lines.append(f"| {r['model']} | {r['dataset']} | {r['form']} | {100 * r['metric']:.2f} % | "
                     f"{r['macs_per_step']:,} | {r['instructions_per_step']:,.0f} ({r['instructions_per_mac']:.1f}) | "
                     f"{r['flash_bytes']:,} ({r['c_weight_bytes']:,}) | {r['ram_static_bytes']:,} + "
                     f"{r['stack_bytes_estimate']:,} | {lsl} |")
    lines.append("")
    lines.append(f"One seed ({result['seed']}); {result['board']}, {result['flags']}; instructions counted exactly "
                 f"({result['counter']}), {result['rows'][0]['steps']} steps of the first test sequence.")
    anchors = "; ".join(f"{a['model']}: {a['dataset']} {100 * a['metric']:.2f} % at {a['size_text']}"
                        for a in result.get("anchors_not_measured", []))
    if anchors:
        lines.append(f"Anchors, quoted from the paper and **not measured by us**: {anchors}.")
    return "\n".join(lines) + "\n"


def seq2seq_table(result: dict[str, Any]) -> str:
    """bench_seq2seq.py: exact match (greedy, beam), BLEU/chrF/CER, bundle bytes, and the
    native runtime's and ONNX Runtime's agreement with PyTorch, per method."""
    rows = result["rows"]
    beam = rows[0]["beam"]
    lines = [f"| method | test exact match (greedy) | beam {beam} | BLEU | chrF | CER | native bundle bytes | "
             "ONNX bytes | Δ exact match vs baseline | native = PyTorch | ONNX Runtime = PyTorch |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        group = [r for r in rows if r["method"] == method]
        delta = [r["metric"] - r["baseline_metric"] for r in group]
        lines.append(
            f"| {method} | {_mean_std([r['metric'] for r in group])} | "
            f"{_mean_std([r['beam_exact_match'] for r in group])} | {_mean_std([r['bleu'] for r in group])} | "
            f"{_mean_std([r['chrf'] for r in group])} | {_mean_std([r['cer'] for r in group])} | "
            f"{_mean_std([float(r['size_bytes']) for r in group], '{:,.0f}')} | "
            f"{_mean_std([float(r['onnx_bytes']) for r in group], '{:,.0f}')} | "
            f"{_mean_std(delta, '{:+.4f}')} | {_mean_std([r['native_agreement'] for r in group], '{:.3f}')} | "
            f"{_mean_std([r['onnx_agreement'] for r in group], '{:.3f}')} |")
    seeds = len({r["seed"] for r in rows})
    return "\n".join(lines) + f"\n\n{seeds} seed(s) (mean ± std); {rows[0]['dataset']}, {rows[0]['model']}, " \
        f"{rows[0]['test_pairs']} test pairs.\n"


def sparse_crossover_table(result: dict[str, Any]) -> str:
    """bench_sparse_crossover.py: per kernel table and pruning block, the W_hh slot fill
    where sparse and dense take the same time, and how often the form lsl_load picks by
    itself (dynamic activations) was the faster one over the sweep."""
    lines = ["| table | blocks | sparse = dense at W_hh fill (dynamic / float) | sparse / dense at 80 % (dynamic) "
             "| load picks the faster form (dynamic) |", "|---|---|---|---|---|"]

    def fill(v: float | None) -> str:
        return "never crossed" if v is None else f"{v:.2f}"

    for r in result["rows"]:
        pts = [p for p in r["points"] if p["stored_sparse"]]
        right = sum((p["auto_runs_hh"] == "int8-sparse") == (p["ratio_dynamic"] < 1) for p in pts)
        at80 = next((p["ratio_dynamic"] for p in pts if p["sparsity"] == 0.8), None)
        lines.append(f"| {r['table']} | ({r['block'][0]}, {r['block'][1]}) | {fill(r['crossover_dynamic'])} / "
                     f"{fill(r['crossover_float'])} | {'' if at80 is None else f'{at80:.2f}'} | "
                     f"{right} of {len(pts)} |")
    m = result["machine"]
    swept = ", ".join(f"{p['sparsity']:.2f}" for p in result["rows"][0]["points"])
    return "\n".join(lines) + f"\n\n{result['model']}; sparsity swept over {swept}; {result['date']}, " \
        f"{m['cpu']} ({m['cores']} cores).\n"


#: block name -> renderer of its results file (``name`` or ``name:part``).
RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "fuzz": fuzz_table,
    "ctc": ctc_table,
    "mcu-lstm64": mcu_table,
    "seq2seq": seq2seq_table,
    "mcu-models": mcu_models_table,
    "compression-jv": compression_table,
    "compression-jv:targets": compression_targets,
    "compression-trec": compression_table,
    "search-jv": search_table,
    "search-jv-long": search_long_table,
    "runtime": runtime_tables,
    "train_speed": train_speed_table,
    "sparse-crossover-zen4": sparse_crossover_table,
    "sparse-crossover-xeon": sparse_crossover_table,
    "sparse-crossover-zen3": sparse_crossover_table,
}
#: blocks that read several files: name -> renderer of no argument.
MULTI_FILE: dict[str, Callable[[], str]] = {
    "isa-summary:xeon": lambda: isa_summary("xeon", "Xeon", threads=True),
    "isa-summary:zen4": lambda: isa_summary("zen4", "Zen 4", threads=False),
    "isa-summary:zen3": lambda: isa_summary("zen3", "Zen 3", threads=True),
    "search-trec:vs-text-tiny": search_trec_table,
    "baselines": baselines_table,
    "compression-lm:budgets": lm_table,
}


def render_block(name: str) -> str:
    """The markdown of block ``name`` from its results file(s).

    ``runtime-CPU-TABLE:cases`` renders any per-kernel-table runtime file's case table."""
    if name in MULTI_FILE:
        return MULTI_FILE[name]().rstrip("\n") + "\n"
    stem, _, part = name.partition(":")
    if name in RENDERERS:
        renderer = RENDERERS[name]
    elif stem.startswith("runtime-") and part == "cases":
        renderer = runtime_cases
    else:
        raise KeyError(f"BENCHMARKS.md names render:{name}, which has no renderer in benchmarks/render.py")
    result = json.loads((RESULTS / f"{stem}.json").read_text())
    return renderer(result).rstrip("\n") + "\n"


#: An inline value inside a sentence: ``<!-- render:FILE; PATH; FORMAT -->97.39 %<!-- /render -->``.
INLINE = re.compile(r"<!-- render:(?P<spec>[^>\n]*?) -->(?P<body>[^<\n`]*)<!-- /render -->")
_SEGMENT = re.compile(r"(?P<key>[\w-]+)(?:\[(?P<sel>[^\]]*)\])?")


def lookup(data: Any, path: str) -> Any:
    """The value at ``path`` in a results file: dotted keys, ``[N]`` for a list index and
    ``[key=value]`` (``&`` for several) for the first row whose fields equal the values.

    >>> lookup({"rows": [{"method": "a", "metric": 0.5}]}, "rows[method=a].metric")
    0.5
    """
    pos = 0
    while pos < len(path):
        rest = path[pos:]
        literal = isinstance(data, dict) and next(
            (k for k in sorted(data, key=len, reverse=True) if "." in k and (rest == k or rest.startswith(k + "."))),
            None)
        if literal:  # a key with dots in it (a C symbol such as sigmoid_q15.constprop.0)
            data, pos = data[literal], pos + len(literal) + 1
            continue
        m = _SEGMENT.match(path, pos)
        if m is None:
            raise KeyError(f"bad path {path!r} at {path[pos:]!r}")
        data = data[m.group("key")]
        sel = m.group("sel")
        if sel is not None:
            if sel.isdigit():
                data = data[int(sel)]
            else:
                want = dict(part.split("=", 1) for part in sel.split("&"))
                hits = [row for row in data if all(str(row.get(k)) == v for k, v in want.items())]
                if not hits:
                    raise KeyError(f"no row with {sel} (path {path!r})")
                data = hits[0]
        pos = m.end()
        if pos < len(path):
            if path[pos] != ".":
                raise KeyError(f"bad path {path!r} at {path[pos:]!r}")
            pos += 1
    return data


def format_value(value: Any, fmt: str) -> str:
    """``pct``/``pct1`` (fraction → percent, 2/1 decimals), ``pt`` (fraction → signed points),
    ``x1`` (a ratio, ``60.2×``), ``n`` (as is), or a Python format spec (``,`` ``.2f``)."""
    if fmt.startswith("pct"):
        digits = int(fmt[3:] or 2)
        return f"{100 * value:.{digits}f} %"
    if fmt == "pt":
        return f"{100 * value:+.2f} pt"
    if fmt.startswith("x"):
        return f"{value:.{int(fmt[1:] or 1)}f}×"
    if fmt in ("", "n"):
        return str(value)
    return format(value, fmt)


def render_inline(spec: str) -> str:
    """The text of one inline block from its spec ``FILE; PATH; FORMAT`` (PATH may be
    ``PATH_A / PATH_B``, the ratio of two values, or ``mean(LIST[key=value].FIELD)``, the
    mean of FIELD over every row that matches, e.g. over seeds)."""
    parts = [s.strip() for s in spec.split(";")]
    if len(parts) != 3:
        raise KeyError(f"render:{spec}: an inline block is <!-- render:FILE; PATH; FORMAT -->")
    stem, path, fmt = parts
    result = json.loads((RESULTS / f"{stem}.json").read_text())
    mean = re.fullmatch(r"mean\((?P<list>[\w.]+)\[(?P<sel>[^\]]+)\]\.(?P<field>.+)\)", path)
    if mean:  # the mean over every matching row (a result measured once per seed)
        rows = lookup(result, mean["list"])
        want = dict(part.split("=", 1) for part in mean["sel"].split("&"))
        values = [lookup(row, mean["field"]) for row in rows if all(str(row.get(k)) == v for k, v in want.items())]
        if not values:
            raise KeyError(f"no row with {mean['sel']} (path {path!r})")
        return format_value(statistics.fmean(values), fmt)
    if " / " in path:  # a ratio of two fields of the same file
        top, bottom = path.split(" / ")
        return format_value(lookup(result, top.strip()) / lookup(result, bottom.strip()), fmt)
    return format_value(lookup(result, path), fmt)


def render(text: str) -> tuple[str, list[str]]:
    """``text`` with every block re-rendered, and the names of the blocks that changed."""
    changed: list[str] = []

    def replace(m: re.Match[str]) -> str:
        body = render_block(m.group("name"))
        if body != m.group("body"):
            changed.append(m.group("name"))
        return m.group(1) + body + m.group(4)

    def replace_inline(m: re.Match[str]) -> str:
        body = render_inline(m.group("spec"))
        if body != m.group("body"):
            changed.append(m.group("spec"))
        return f"<!-- render:{m.group('spec')} -->{body}<!-- /render -->"

    return INLINE.sub(replace_inline, BLOCK.sub(replace, text)), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report drift, change nothing")
    parser.add_argument("--doc", type=Path, action="append", help="a document (default: BENCHMARKS.md, "
                        "README.md, docs/*.md); repeatable")
    args = parser.parse_args(argv)
    drifted = 0
    for doc in args.doc or DOCS:
        text = doc.read_text()
        new, changed = render(text)
        drifted += len(changed)
        if args.check:
            for name in changed:
                print(f"{doc.name}: block render:{name} differs from results/{name.split(':')[0].split(';')[0]}"
                      ".json; run python benchmarks/render.py", file=sys.stderr)
            continue
        if changed:
            doc.write_text(new)
        if BLOCK.search(text) or INLINE.search(text):
            print(f"{doc.name}: {len(BLOCK.findall(text))} blocks, {len(INLINE.findall(text))} inline values, "
                  f"{len(changed)} re-rendered")
    return 1 if args.check and drifted else 0


if __name__ == "__main__":
    sys.exit(main())
