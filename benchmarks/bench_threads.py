"""What two threads can do for a batch on this machine: each CPU's own speed, and the
2-thread / 1-thread ratio, measured in one run.

Issue 11 asks 2 threads to take <= 0.6x the 1-thread time at B = 32 (an LSTM, I=40,
H=128, T=100). lstmlite cuts the batch into one chunk per thread, of equal rows, each a
whole ``lsl_model_run`` of its rows, so a 2-thread run lasts as long as the slower of
the two CPUs takes for half the batch. On a shared host the CPUs a guest sees need not
run alike. Per form (fp32, int8 with float activations, dynamic int8), with every
timing of a form taken in turn, repetition by repetition:

- per CPU this process may use, one thread pinned to it: half the batch
  (``half_batch_us``) and the whole batch (``whole_batch_us``);
- unpinned, as a user runs it: the whole batch on 1 and on 2 threads
  (``one_thread_us``, ``two_threads_us``, ``two_over_one``; ``two_threads_used`` is 1
  where the batch holds too little work for two, ``Engine.threads_for``);
- ``even_split_bound``: the slowest CPU's half batch over the fastest CPU's whole batch,
  the best an even split can do on these CPUs (the goal is reachable only where it is
  <= 0.6); ``half_over_whole``: on the fastest CPU, half the batch over the whole
  (0.5 when the work is linear in the batch: no serial part to blame);
- ``small``: a small batch (B = 4, T = 10: 3.4 M multiply-adds) on 1 thread and on 2
  threads forced, beside what ``Engine.threads_for`` picks for it (why a run with little
  work per thread takes fewer: ``MIN_MACS_PER_THREAD`` in lstmlite/runtime/engine.py).

    python benchmarks/bench_threads.py --name zen3
Writes benchmarks/results/threads-<name>.json (name the CPU: the file is per machine).
Linux only for the pinned timings (``os.sched_setaffinity``); elsewhere they are left out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

FORMS = {"fp32": ("fp32", "float"), "int8": ("int8", "float"), "int8-dyn": ("int8", "dynamic")}


def _median_us(times: list[float]) -> float:
    return round(statistics.median(times) * 1e6, 1)


def _timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure_form(spec: Any, weights: str, activations: str, batch: int, seq_len: int, reps: int,
                 cpus: list[int] | None) -> dict[str, Any]:
    """One form's timings (see the module's docstring); ``cpus``: those to pin to, or None
    to leave the pinned timings out."""
    from lstmlite import runtime as rt

    rng = np.random.default_rng(0)
    whole = rng.standard_normal((batch, seq_len, spec.layers[0].input_size)).astype(np.float32)
    half = whole[: batch // 2].copy()
    one, two = (rt.Engine(spec, weights=weights, activations=activations, threads=n) for n in (1, 2))
    pinned: dict[int, dict[str, list[float]]] = {c: {"half": [], "whole": []} for c in cpus or []}
    unpinned: dict[str, list[float]] = {"one": [], "two": []}
    everywhere = os.sched_getaffinity(0) if cpus else None
    for rep in range(reps + 1):  # the first repetition warms up and is dropped
        for cpu, times in pinned.items():
            os.sched_setaffinity(0, {cpu})
            try:
                t_half, t_whole = _timed(lambda: one.run(half)), _timed(lambda: one.run(whole))
            finally:
                os.sched_setaffinity(0, everywhere)
            if rep:
                times["half"].append(t_half)
                times["whole"].append(t_whole)
        t_one, t_two = _timed(lambda: one.run(whole)), _timed(lambda: two.run(whole))
        if rep:
            unpinned["one"].append(t_one)
            unpinned["two"].append(t_two)
    row: dict[str, Any] = {"one_thread_us": _median_us(unpinned["one"]),
                           "two_threads_us": _median_us(unpinned["two"]),
                           "two_threads_used": two.threads_for(batch, seq_len)}  # 1 when too little work
    row["two_over_one"] = round(row["two_threads_us"] / row["one_thread_us"], 3)
    if pinned:
        row["cpus"] = [{"cpu": c, "half_batch_us": _median_us(t["half"]), "whole_batch_us": _median_us(t["whole"])}
                       for c, t in pinned.items()]
        row.update(bounds(row["cpus"]))
    return row


def measure_small(spec: Any, weights: str, activations: str, batch: int = 4, seq_len: int = 10,
                  reps: int = 60) -> dict[str, Any]:
    """A small batch's medians on 1 thread and on 2 threads forced (every run split, as
    before ``Engine.threads_for``), unpinned, taking turns; and the threads run() picks."""
    from lstmlite import runtime as rt
    from lstmlite.runtime import engine as engine_module

    x = np.random.default_rng(1).standard_normal((batch, seq_len, spec.layers[0].input_size)).astype(np.float32)
    one, two = (rt.Engine(spec, weights=weights, activations=activations, threads=n) for n in (1, 2))
    picked = two.threads_for(batch, seq_len)
    times: dict[str, list[float]] = {"one": [], "two": []}
    default = engine_module.MIN_MACS_PER_THREAD
    engine_module.MIN_MACS_PER_THREAD = 1  # split whatever the work
    try:
        for rep in range(reps + 1):
            t_one, t_two = _timed(lambda: one.run(x)), _timed(lambda: two.run(x))
            if rep:
                times["one"].append(t_one)
                times["two"].append(t_two)
    finally:
        engine_module.MIN_MACS_PER_THREAD = default
    return {"batch": batch, "seq_len": seq_len, "one_thread_us": _median_us(times["one"]),
            "two_threads_forced_us": _median_us(times["two"]), "threads_picked": picked}


def bounds(cpus: list[dict[str, Any]]) -> dict[str, Any]:
    """From the pinned medians: the slowest CPU's half batch over the fastest CPU's whole
    batch (``even_split_bound``), the fastest CPU's half over its whole
    (``half_over_whole``), and the slowest CPU's half batch over the fastest's
    (``slowest_over_fastest``).

    >>> bounds([{"cpu": 0, "half_batch_us": 4.0, "whole_batch_us": 8.0},
    ...         {"cpu": 1, "half_batch_us": 3.0, "whole_batch_us": 6.0}])
    {'even_split_bound': 0.667, 'half_over_whole': 0.5, 'slowest_over_fastest': 1.333}
    """
    fastest = min(cpus, key=lambda c: c["whole_batch_us"])
    slowest_half = max(c["half_batch_us"] for c in cpus)
    return {"even_split_bound": round(slowest_half / fastest["whole_batch_us"], 3),
            "half_over_whole": round(fastest["half_batch_us"] / fastest["whole_batch_us"], 3),
            "slowest_over_fastest": round(slowest_half / min(c["half_batch_us"] for c in cpus), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="the CPU's short name in the result file's name (zen3, xeon, ...)")
    ap.add_argument("--batch", type=int, default=32, help="sequences in the whole batch (default 32, even)")
    ap.add_argument("--seq-len", type=int, default=100, help="time steps (default 100)")
    ap.add_argument("--reps", type=int, default=60, help="repetitions, medians kept (default 60)")
    args = ap.parse_args(argv)
    if args.batch < 2 or args.batch % 2 or args.reps < 1:
        ap.error("--batch must be even and at least 2, --reps at least 1")

    from lstmlite.export.lsl import spec_from_module
    from lstmlite.runtime.bench import make_module

    spec = spec_from_module(make_module("lstm", 40, 128))
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else None
    if cpus is not None and len(cpus) < 2:
        print(f"this process may run on CPU {cpus[0]} only: 2 threads share it")
    rows = []
    for form, (weights, activations) in FORMS.items():
        row = {"form": form, **measure_form(spec, weights, activations, args.batch, args.seq_len, args.reps, cpus),
               "small": measure_small(spec, weights, activations, reps=args.reps)}
        rows.append(row)
        pinned = ", ".join(f"CPU {c['cpu']} {c['half_batch_us']:.0f} / {c['whole_batch_us']:.0f} us"
                           for c in row.get("cpus", []))
        print(f"{form:9} 1 thread {row['one_thread_us']:.0f} us, 2 threads {row['two_threads_us']:.0f} us "
              f"({row['two_over_one']:.2f}); half / whole batch pinned: {pinned or 'not measured'}"
              + (f"; an even split's bound {row['even_split_bound']:.2f}" if "even_split_bound" in row else ""))
        small = row["small"]
        print(f"{'':9} B={small['batch']} T={small['seq_len']}: 1 thread {small['one_thread_us']:.0f} us, "
              f"2 threads forced {small['two_threads_forced_us']:.0f} us; run() picks {small['threads_picked']}")
    path = write_result(f"threads-{args.name}", rows,
                        {"settings": {"model": "LSTM I=40 H=128", "batch": args.batch, "seq_len": args.seq_len,
                                      "reps": args.reps, "goal": "two_over_one <= 0.6 (issue 11)"}})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
