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

Blocks may sit in BENCHMARKS.md, README.md and docs/*.md.
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
DOCS = [ROOT / "BENCHMARKS.md", ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
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


def _mean_std(values: list[float], fmt: str = "{:.4f}") -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


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
_ISA_ORDER = ["portable", "avx2", "avx2-vnni", "avx512", "avx512-vnni", "neon", "neon-dotprod"]


def isa_summary(cpu: str, label: str, threads: bool) -> str:
    """One row per kernel table measured on ``cpu`` (results/runtime-CPU-TABLE.json):
    issue 11's ratios of interleaved medians, all from the same run per table."""
    files = {p.stem[len(f"runtime-{cpu}-"):]: p for p in RESULTS.glob(f"runtime-{cpu}-*.json")}
    if not files:
        raise KeyError(f"no results/runtime-{cpu}-*.json")
    tables = sorted(files, key=lambda t: _ISA_ORDER.index(t) if t in _ISA_ORDER else len(_ISA_ORDER))
    head = [title for title, *_ in _ISA_RATIOS]
    if threads:
        head.append("2 threads / 1, B=32 (fp32, int8, dyn)")
    head.append("80 % sparse-dyn / dense-dyn")
    if threads:
        head.append("rel. err (dyn)")
    lines = [f"| kernel table ({label}) | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for table in tables:
        rows = json.loads(files[table].read_text())["rows"]
        cells = [_ratio(rows, case, ours, case, versus) for _, case, ours, versus in _ISA_RATIOS]
        if threads:
            cells.append(", ".join(_ratio(rows, "batch32-2t", e, "batch32", e)
                                   for e in ("lstmlite-fp32", "lstmlite-int8", "lstmlite-int8-dyn")))
        cells.append(_ratio(rows, "sparse80-40x128", "lstmlite-int8-sparse-dyn", "sparse80-40x128", "lstmlite-int8-dyn"))
        if threads:
            err = next((r["max_rel_err"] for r in rows
                        if r["case"] == "seq-40x128" and r["engine"] == "lstmlite-int8-dyn"), None)
            cells.append("–" if err is None else f"{err:.1e}")
        lines.append(f"| `{table}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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


#: block name -> renderer of its results file (``name`` or ``name:part``).
def ctc_table(result: dict[str, Any]) -> str:
    """bench_ctc.py: CER, WER, exported bytes, runtime agreement and streaming speed per method."""
    rows = result["rows"]
    lines = ["| method | test CER | test WER | .lsl bytes | streamed = PyTorch | streaming: p50 µs/frame, RTF |",
             "|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        group = [r for r in rows if r["method"] == method]
        speeds = "; ".join(f"{engine} {s['p50_us']:.1f} µs, RTF {s['rtf']:.5f}"
                           for engine, s in group[0]["stream"].items())
        size = _mean_std([float(r["file_bytes"]) for r in group], "{:,.0f}")
        lines.append(f"| {method} | {_mean_std([r['metric'] for r in group])} | "
                     f"{_mean_std([r['wer'] for r in group])} | {size} | "
                     f"{_mean_std([r['runtime_agreement'] for r in group], '{:.3f}')} | {speeds} |")
    return "\n".join(lines) + f"\n\n{len({r['seed'] for r in rows})} seed(s); {rows[0]['dataset']}, " \
        f"{rows[0]['frames']} test frames of {rows[0]['hop_s'] * 1000:.0f} ms.\n"


def fuzz_table(result: dict[str, Any]) -> str:
    """bench_fuzz.py: per libFuzzer target, time, executions, speed, coverage, crashes."""
    lines = ["| target | time | executions | exec/s | cov (edges) | ft (features) | corpus | crashes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['target']} | {r['seconds']:.0f} s | {r['executions']:,} | {r['exec_per_s']:,.0f} | "
                     f"{r['cov']:,} | {r['ft']:,} | {r['corpus']:,} | {r['crashes']} |")
    return "\n".join(lines) + f"\n\n{result['clang']}, `{result['sanitizers']}`; {result['date']}, " \
        f"{result['machine']['cpu']} ({result['machine']['cores']} cores, shared).\n"


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "fuzz": fuzz_table,
    "ctc": ctc_table,
    "compression-jv": compression_table,
    "compression-jv:targets": compression_targets,
    "compression-trec": compression_table,
    "search-jv": search_table,
    "search-jv-long": search_long_table,
    "runtime": runtime_tables,
}
#: blocks that read several files: name -> renderer of no argument.
MULTI_FILE: dict[str, Callable[[], str]] = {
    "isa-summary:xeon": lambda: isa_summary("xeon", "Xeon", threads=True),
    "isa-summary:zen4": lambda: isa_summary("zen4", "Zen 4", threads=False),
    "search-trec:vs-text-tiny": search_trec_table,
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


def render(text: str) -> tuple[str, list[str]]:
    """``text`` with every block re-rendered, and the names of the blocks that changed."""
    changed: list[str] = []

    def replace(m: re.Match[str]) -> str:
        body = render_block(m.group("name"))
        if body != m.group("body"):
            changed.append(m.group("name"))
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(replace, text), changed


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
                print(f"{doc.name}: block render:{name} differs from results/{name.split(':')[0]}.json; "
                      "run python benchmarks/render.py", file=sys.stderr)
            continue
        if changed:
            doc.write_text(new)
        if BLOCK.search(text):
            print(f"{doc.name}: {len(BLOCK.findall(text))} blocks, {len(changed)} re-rendered")
    return 1 if args.check and drifted else 0


if __name__ == "__main__":
    sys.exit(main())
