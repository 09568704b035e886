"""Fuzz the native runtime for a set time per target (issue 15, item 5).

Builds the two libFuzzer targets of tests/c/fuzz/ (clang, ASan + UBSan), seeds the
loader with real files from the Python exporter (and the step target with its byte
seeds), adds the committed regression corpus, and runs each target for ``--seconds``
(default 600, the issue's 10 minutes). Writes benchmarks/results/fuzz.json: per target
the executions, exec/s, coverage (cov = edges, ft = features), corpus size, new units
and crashes (crash / leak / timeout / oom artifacts; 0 expected). BENCHMARKS.md quotes it
through benchmarks/render.py (block ``fuzz``).

    python benchmarks/bench_fuzz.py                  # 10 minutes per target
    python benchmarks/bench_fuzz.py --seconds 30     # a quick look

Exit status 1 when a target crashed (the artifacts' paths are printed and recorded).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "c" / "fuzz"))

import _fuzz  # noqa: E402
from _common import write_result  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=600, help="fuzzing time per target (default 600)")
    ap.add_argument("--targets", default=",".join(_fuzz.TARGETS), help="comma-separated: load,step")
    ap.add_argument("--work", type=Path, default=None, help="corpus and artifacts folder (default: a temp dir)")
    ap.add_argument("--jobs", type=int, default=1, help="targets fuzzed at the same time (default 1)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write results/fuzz.json")
    args = ap.parse_args(argv)
    if args.seconds < 1:
        ap.error("--seconds must be at least 1")
    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        if t not in _fuzz.TARGETS:
            ap.error(f"unknown target {t!r}; choose from {', '.join(_fuzz.TARGETS)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="lstmlite-fuzz-"))
    clang_version = subprocess.run([_fuzz.clang(), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    prepared = []
    for target in targets:  # build and seed everything first, then fuzz
        exe = _fuzz.build(target, _fuzz.BUILD)  # objects cached beside the CI test's
        corpus = work / "corpus" / target  # receives what the fuzzer finds
        corpus.mkdir(parents=True, exist_ok=True)
        seeds = work / "seeds" / target
        n_seeds = len((_fuzz.write_load_seeds if target == "load" else _fuzz.write_step_seeds)(seeds))
        regress = _fuzz.CORPUS / target
        corpora = [corpus, seeds] + ([regress] if regress.is_dir() else [])
        prepared.append((target, exe, corpora, n_seeds, regress))

    def fuzz(item: tuple) -> dict:
        target, exe, corpora, n_seeds, regress = item
        print(f"fuzzing {target} for {args.seconds} s ({n_seeds} seeds) ...", flush=True)
        stats = _fuzz.run(exe, corpora, args.seconds, artifacts=work / "artifacts" / target)
        row = {"target": target, "seconds_requested": args.seconds, "seeds": n_seeds,
               "regression_inputs": len(list(regress.iterdir())) if regress.is_dir() else 0,
               "concurrent_targets": args.jobs, **{k: v for k, v in stats.items() if k != "log_tail"}}
        print(f"  {target}: {row['executions']:,} executions, {row['exec_per_s']:,.0f}/s, cov {row['cov']}, "
              f"ft {row['ft']}, corpus {row['corpus']}, crashes {row['crashes']}", flush=True)
        if stats["crashes"]:
            print(stats["log_tail"], file=sys.stderr)
        return row

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(fuzz, prepared))
    if not args.no_write:
        path = write_result("fuzz", rows, extra={"clang": clang_version,
                                                 "sanitizers": " ".join(_fuzz.SANITIZE)})
        print(f"wrote {path}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if any(r["crashes"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
