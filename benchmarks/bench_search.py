"""Search benchmark of issue 13 on JapaneseVowels: the study's samplers against random
search, at the same trial budget and seeds, under a 2 KB file budget.

For every sampler (``tpe``, the default, ``nsga2`` and ``random``) and seed, one study
of ``--trials`` trials runs on the shipped ``tiny`` space (FastGRNN / GRU / LSTM, 4- or
8-bit weights, QAT, sparsity; see src/lstmlite/search/spaces/tiny.yaml) with
``budget=size=2KB``. Each trial's size is its exported ``.lsl`` file's bytes.

Reported per study:
* ``hypervolume``: the area that the feasible trials dominate in the plane
  (validation error, size / budget), both in [0, 1], against the reference point
  (1, 1) -- the usual 2-D hypervolume indicator of a front; higher is better. Latency and
  RAM are objectives of the study too but left out here: at these sizes every trial
  steps in a few microseconds, and the issue's comparison is accuracy against bytes;
* the best model within 2,048 B and within 1,024 B, selected on validation accuracy
  (ties: lower validation loss, then fewer bytes: the search's own rule), with its test
  accuracy -- the test split is never used to pick;
* wall time of the study on this machine.

    python benchmarks/bench_search.py [--trials 24] [--seeds 3] [--samplers tpe,nsga2,random]
    python benchmarks/bench_search.py --long 300 --seeds 3     # the issue's 30-minute search

Writes benchmarks/results/search-jv.json and prints a markdown table (mean ± std over
seeds). ``--long N`` instead runs, per seed, one study of the default sampler with up to
N trials and a 30-minute limit (``--timeout``), the issue's "within 30 minutes on a
2-core machine" setting, and writes benchmarks/results/search-jv-long.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from _common import write_result
from render import search_table
from lstmlite.search import search
from lstmlite.search.study import best_key

BUDGET = 2048
SMALL = 1024


def hypervolume_2d(points: list[tuple[float, float]], ref: tuple[float, float] = (1.0, 1.0)) -> float:
    """Area dominated by ``points`` (both coordinates minimised) up to ``ref``.

    Example:
        >>> hypervolume_2d([(0.5, 0.5)])
        0.25
        >>> hypervolume_2d([(0.2, 0.8), (0.8, 0.2)])  # two rectangles minus their overlap
        0.28
    """
    inside = sorted((x, y) for x, y in points if x < ref[0] and y < ref[1])
    area, best_y = 0.0, ref[1]
    for x, y in inside:
        if y >= best_y:
            continue  # dominated by a point with smaller x
        # horizontal strip: every point right of x and between heights y and best_y
        area += (ref[0] - x) * (best_y - y)
        best_y = y
    return round(area, 12)


def _best(trials: list[dict[str, Any]], limit: int) -> dict[str, Any] | None:
    fits = [t for t in trials if t.get("state") == "COMPLETE" and t.get("size_kind") == "lsl"
            and t["size_bytes"] <= limit]
    if not fits:
        return None
    return max(fits, key=best_key)  # the search's own rule: val metric, val loss, bytes


TREC = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec"
#: bench_baselines.py's TREC data section (the reference text model's data)
TREC_DATA = {"source": str(TREC / "train_5500.label"), "format": "trec", "test_path": str(TREC / "TREC_10.label"),
             "task": "classify", "level": "word", "max_vocab": 10000, "val_fraction": 0.1}
TREC_BUDGET = 64 * 1024


def run_study(sampler: str, seed: int, trials: int, workdir: Path, timeout: float | None = None,
              data: Any = "japanese_vowels", budget: int = BUDGET, space: str = "tiny") -> dict[str, Any]:
    """One study; returns its row."""
    out = workdir / f"{sampler}-{seed}"
    start = time.perf_counter()
    search(data, "classify", budget=f"size={budget}", trials=trials, out=out, space=space,
           seed=seed, sampler=sampler, timeout=timeout)
    wall = time.perf_counter() - start
    records = json.loads((out / "trials.json").read_text())
    done = [t for t in records if t.get("state") == "COMPLETE" and "val_metric" in t]
    points = [(1.0 - t["val_metric"], t["size_bytes"] / budget) for t in done
              if t.get("size_kind") == "lsl" and t["size_bytes"] <= budget]
    dataset = data if isinstance(data, str) else "trec-6"
    row: dict[str, Any] = {"dataset": dataset, "method": f"search ({sampler})", "sampler": sampler,
                           "seed": seed, "trials": trials, "complete": len(done), "feasible": len(points),
                           "not_trained": sum(1 for t in done if t.get("skipped")),
                           "pruned": sum(1 for t in records if t.get("state") == "PRUNED"),
                           "hypervolume": hypervolume_2d(points), "wall_s": round(wall, 1),
                           "metric_name": "accuracy"}
    limits = ((BUDGET, "best_2kb"), (SMALL, "best_1kb")) if budget == BUDGET else ((budget, "best"),)
    for limit, key in limits:
        best = _best(records, limit)
        row[key] = None if best is None else {
            "val_metric": best["val_metric"], "val_loss": best.get("val_loss"), "metric": best["test_metric"],
            "size_bytes": best["size_bytes"],
            "params": best.get("params"), "point": best.get("point"), "trial": best["trial"]}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samplers", default="tpe,nsga2,random")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--long", type=int, default=0, metavar="N",
                        help="one study per seed of up to N trials with the default sampler (see above)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per --long / --trec study")
    parser.add_argument("--trec", type=int, default=0, metavar="N",
                        help="one study on TREC-6 of up to N trials, budget 64 KB, the 'text' space "
                             "(results/search-trec.json)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    if args.trec:
        with tempfile.TemporaryDirectory() as tmp:
            row = run_study("tpe", 0, args.trec, Path(tmp), timeout=args.timeout, data=TREC_DATA,
                            budget=TREC_BUDGET, space="text")
        print(f"{row['complete']} complete in {row['wall_s']:.0f} s; best <= 64 KB {row['best']}", flush=True)
        path = write_result("search-trec", [row], {"settings": {
            "max_trials": args.trec, "timeout_s": args.timeout, "budget_bytes": TREC_BUDGET, "space": "text",
            "sampler": "tpe", "seed": 0, "threads": args.threads}})
        print(f"wrote {path}")
        return
    if args.long:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(args.seeds):
                row = run_study("tpe", seed, args.long, Path(tmp), timeout=args.timeout)
                rows.append(row)
                print(f"seed {seed}: {row['complete']} complete in {row['wall_s']:.0f} s; best <= 2 KB "
                      f"{row['best_2kb']}; best <= 1 KB {row['best_1kb']}", flush=True)
        path = write_result("search-jv-long", rows, {"settings": {
            "max_trials": args.long, "timeout_s": args.timeout, "seeds": args.seeds, "budget_bytes": BUDGET,
            "space": "tiny", "sampler": "tpe", "threads": args.threads}})
        print(f"wrote {path}")
        return
    samplers = args.samplers.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for sampler in samplers:
                row = run_study(sampler, seed, args.trials, Path(tmp))
                rows.append(row)
                b2 = row["best_2kb"]
                pick = "none" if b2 is None else f"{b2['metric']:.4f} at {b2['size_bytes']} B"
                print(f"{sampler} seed {seed}: hv={row['hypervolume']:.4f} feasible={row['feasible']}/"
                      f"{row['complete']} best<=2KB={pick} {row['wall_s']:.0f}s", flush=True)
    path = write_result("search-jv", rows, {"settings": {"trials": args.trials, "seeds": args.seeds,
                                                         "budget_bytes": BUDGET, "space": "tiny",
                                                         "threads": args.threads}})
    print(search_table(json.loads(path.read_text())))  # the table BENCHMARKS.md renders
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
