"""Where the sparse int8 kernels stop beating the dense ones, per kernel table.

For each kernel table this CPU runs (forced one after the other) and each pruning block
shape -- (1, 4), (8, 4), (16, 4) -- an LSTM (I=40, H=128) is pruned to a sweep of
sparsities, stored ``int8-sparse`` and run kept sparse (``keep_sparse=True``) beside
the same codes dense (``int8``), with dynamic and float activations, B=1, whole
sequences of T=100, the four engines interleaved repetition by repetition. Each point
records the sparse / dense time ratio, the *slot fill* of W_ih and W_hh (slots of the
sparse layout over the dense column blocks: the share of the dense products the sparse
kernels still do) and the form the runtime picks by itself at load (``runs_hh``).
The crossover is the W_hh fill where the ratio reaches 1 (linear between the sweep's
points): the runtime's limits (``sparse_fill_limit`` in lsl_sparse.c) come from it.

    python benchmarks/bench_sparse_crossover.py --out benchmarks/results/sparse-crossover-zen4.json
    python benchmarks/render.py              # the docs/runtime.md table
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _common import machine  # benchmarks/ is the script's folder

BLOCKS = [(1, 4), (8, 4), (16, 4)]
SPARSITIES = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]
TABLES = ["avx2", "avx2-vnni", "avx512", "avx512-vnni", "neon", "neon-dotprod"]


def slot_fill(w: np.ndarray) -> float:
    """The sparse layout's slots over the dense column blocks for float weights ``w``
    (rows, cols): per 16-row panel and 128-column window, its longest row's kept (1, 4)
    blocks (a block is kept when any of its 4 weights is non-zero)."""
    rows, cols = w.shape
    quads = -(-cols // 4)
    padded = np.zeros((rows, 4 * quads), w.dtype)
    padded[:, :cols] = w
    kept = np.abs(padded.reshape(rows, quads, 4)).sum(-1) > 0
    slots = sum(int(kept[p:p + 16, q:q + 32].sum(1).max()) for p in range(0, rows, 16) for q in range(0, quads, 32))
    return slots / (-(-rows // 16) * quads)


def _medians(calls: dict, seconds: float) -> dict[str, float]:
    times = {k: [] for k in calls}
    end = time.perf_counter() + seconds * len(calls)
    while time.perf_counter() < end:
        for k, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) * 1e6 for k, v in times.items()}


def crossover(points: list[dict], act: str) -> float | None:
    """The W_hh fill where sparse / dense reaches 1, linear between neighbouring points
    (sorted by fill); None when the sweep never crosses."""
    pts = sorted((p["fill_hh"], p[f"ratio_{act}"]) for p in points if p["stored_sparse"])
    for (f0, r0), (f1, r1) in zip(pts, pts[1:]):
        if (r0 - 1) * (r1 - 1) <= 0 and r1 != r0:
            return round(f0 + (1 - r0) * (f1 - f0) / (r1 - r0), 3)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sparse-crossover.json")
    parser.add_argument("--seconds", type=float, default=0.8, help="timing per engine and point (default 0.8)")
    args = parser.parse_args(argv)

    from lstmlite import runtime as rt
    from lstmlite.export.lsl import spec_from_module, write_lsl
    from lstmlite.runtime.bench import make_module, prune_blocks

    tables = [t for t in TABLES if t in rt.supported_isas()]
    x = np.random.default_rng(0).standard_normal((1, 100, 40)).astype(np.float32)
    rows = []
    try:
        for table in tables:
            rt.set_isa(table)
            for block in BLOCKS:
                points = []
                for sparsity in SPARSITIES:
                    module = make_module("lstm", 40, 128)
                    prune_blocks(module, sparsity, block)
                    spec = spec_from_module(module)
                    data = write_lsl(spec, weights="int8-sparse")
                    engines = {f"{form}_{act}": rt.Engine(data if form == "sparse" else spec, weights="int8",
                                                          activations=act, keep_sparse=True)
                               for form in ("sparse", "dense") for act in ("dynamic", "float")}
                    auto = rt.Engine(data, activations="dynamic").info["layers"][0]
                    t = _medians({k: (lambda e=e: e.run(x)) for k, e in engines.items()}, args.seconds)
                    point = {
                        "sparsity": sparsity,
                        "fill_ih": round(slot_fill(module.weight_ih_l0.detach().numpy()), 3),
                        "fill_hh": round(slot_fill(module.weight_hh_l0.detach().numpy()), 3),
                        "stored_sparse": engines["sparse_dynamic"].info["layers"][0]["runs_hh"] == "int8-sparse",
                        "auto_runs_ih": auto["runs_ih"], "auto_runs_hh": auto["runs_hh"],
                        **{f"{k}_us": round(v, 1) for k, v in t.items()},
                        "ratio_dynamic": round(t["sparse_dynamic"] / t["dense_dynamic"], 3),
                        "ratio_float": round(t["sparse_float"] / t["dense_float"], 3),
                    }
                    points.append(point)
                    print(f"{table} {block} {sparsity:.2f}: fill {point['fill_ih']}/{point['fill_hh']} "
                          f"dyn {point['ratio_dynamic']} float {point['ratio_float']} auto {auto['runs_hh']}",
                          flush=True)
                rows.append({"table": table, "block": list(block), "points": points,
                             "crossover_dynamic": crossover(points, "dynamic"),
                             "crossover_float": crossover(points, "float")})
    finally:
        rt.set_isa("auto")
    result = {"benchmark": "sparse-crossover", "date": time.strftime("%Y-%m-%d"), "machine": machine(),
              "model": "LSTM I=40 H=128, T=100, B=1, whole sequences", "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
