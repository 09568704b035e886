"""``lstmlite search``: find models within a device budget (calls :func:`lstmlite.search.search`)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..data.spec import TASKS
from .._text import one_line
from .common import CliError, HelpFormatter, example_epilog, format_bytes


def _duration(text: str | None) -> float | None:
    """``30m`` / ``2h`` / ``90s`` / ``600`` -> seconds."""
    if text is None:
        return None
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(s|m|h)?", text.strip().lower())
    if not m:
        raise CliError(f"--timeout {text!r}: use seconds or a time like 30m or 2h")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search", help="search models within a size/latency/RAM budget (Optuna)",
        description="Train, compress and measure many models and keep those within the budget.\n\n"
                    "Each trial samples the search space (--space, a YAML file; see docs/search.md), trains "
                    "for a few epochs, compresses (pruning, low rank, int weights), fine-tunes, evaluates on "
                    "validation, writes the .lsl file and measures its step latency in the native runtime. "
                    "Objectives: validation metric, .lsl bytes, latency, RAM; the budget is a hard "
                    "constraint. OUT gets study.db (unless --storage), trials/NNNN run dirs, trials.json, "
                    "pareto.json, pareto.png and best/ (the best model within budget, a run dir ready for "
                    "compress/export).",
        epilog=example_epilog(
            "lstmlite search --data japanese_vowels --task classify --budget size=8KB,latency=200us "
            "--trials 20 --out runs/search",
            "lstmlite search --data japanese_vowels --task classify --budget size=2KB --trials 40 "
            "--storage postgresql://user@db/lstmlite --workers 2 --out runs/search",
            "lstmlite search --data japanese_vowels --task classify --trials 40 --out runs/search --resume",
            "lstmlite export runs/search/best --format lsl --out deploy/"),
        formatter_class=HelpFormatter)
    parser.add_argument("--data", required=True, help="built-in name (lstmlite data list) or file path")
    parser.add_argument("--task", choices=TASKS, default=None, help="what to learn")
    parser.add_argument("--budget", default=None, help="hard limits: size=8KB,latency=200us,ram=16KB (any subset)")
    parser.add_argument("--trials", type=int, default=20,
                        help="complete or pruned trials to finish, over all workers (a failed trial is replaced; "
                             "many failures in a row stop the search: docs/search.md)")
    parser.add_argument("--timeout", default=None, help="stop each worker after this long (30m, 2h, 600)")
    parser.add_argument("--space", default="default", help="search space YAML file (default: the shipped one)")
    parser.add_argument("--storage", default=None, help="database URL shared by workers (default: OUT/study.db)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--seed", type=int, default=0, help="sampler and training seed")
    parser.add_argument("--sampler", choices=["tpe", "nsga2", "random"], default="tpe",
                        help="how points are proposed: multivariate TPE (default), NSGA-II, or random "
                             "(the baseline; see BENCHMARKS.md for how they compare)")
    parser.add_argument("--resume", action="store_true", help="continue the study already in the storage")
    parser.add_argument("--no-prune", dest="prune", action="store_false",
                        help="train every point fully: by default a point over the budget before training is "
                             "not trained, and a trial that a finished one beats at the same epoch while being "
                             "as small, lean and fast is stopped (docs/search.md)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..search import TrialsFailed, search

    if args.trials < 1 or args.workers < 1:
        raise CliError("--trials and --workers must be at least 1")
    import logging

    import optuna

    # Optuna's own INFO lines ("Trial 3 finished with values ...", "Using an existing study")
    # repeat the progress lines below in its words: shown with -v only
    optuna.logging.set_verbosity(logging.INFO if args.verbose else logging.WARNING)

    def progress(study: Any, trial: Any) -> None:
        attrs = trial.user_attrs
        if "val_metric" in attrs:
            print(f"trial {trial.number:4d} {trial.state.name.lower():8s} {attrs['metric_name']}="
                  f"{attrs['val_metric']:.4f} size={format_bytes(attrs['size_bytes'])}"
                  f"{'' if attrs['size_kind'] == 'lsl' else ' (estimated)'} latency={attrs['latency_us']:.1f}us/step"
                  f"{'' if attrs['latency_kind'] == 'measured' else ' (MAC model)'} ram={format_bytes(attrs['ram_bytes'])}"
                  f"{' (estimated)' if attrs.get('ram_kind') == 'estimated' else ''}"
                  f" {'ok' if attrs.get('feasible') else 'over budget'}"
                  f"{' (not trained)' if attrs.get('skipped') else ''}", flush=True)
        elif attrs.get("error"):  # a failed trial's cause (search records it), on the trial's one line
            print(f"trial {trial.number:4d} {trial.state.name.lower():8s} {one_line(str(attrs['error']))}",
                  flush=True)
        else:
            print(f"trial {trial.number:4d} {trial.state.name.lower()}", flush=True)

    try:
        result = search(args.data, args.task, budget=args.budget, trials=args.trials, out=args.out,
                        storage=args.storage, workers=args.workers, timeout=_duration(args.timeout),
                        space=args.space, seed=args.seed, resume=args.resume, sampler=args.sampler,
                        prune=args.prune, on_trial=progress)
    except TrialsFailed as err:
        # the trials' own errors (logged above, each in trials.json) say whose fault it is;
        # the stop itself is a finding about this search, reported as "no trial completed" is
        raise CliError(str(err)) from err
    print(f"{result['trials']} trials complete; {len(result['pareto'])} on the Pareto front within budget "
          f"({args.out}/pareto.json, pareto.png)")
    best = result["best"]
    if best is None and result["trials"] == 0:  # nothing trained to the end: no budget to blame
        from collections import Counter
        from pathlib import Path

        from ..io import read_json

        states = Counter(t["state"].lower() for t in read_json(Path(args.out) / "trials.json"))
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none run"
        raise CliError(f"no trial completed ({counts}): failed trials say why above, pruned ones were stopped by "
                       f"the study's prune_below / prune_above bar or a better trial ({args.out}/trials.json)")
    if best is None:  # a finding about the budget, not a fault of ours: exit status 2, as bad input
        raise CliError(f"no trial met the budget {args.budget}; widen --budget or the space "
                       f"({args.out}/trials.json lists every trial's figures)")
    print(f"best within budget: trial {best['trial']} {best['metric_name']}={best['val_metric']:.4f} (val), "
          f"{best['test_metric']:.4f} (test), {best['size_bytes']} .lsl bytes, {best['latency_us']:.1f} us/step "
          f"-> {args.out}/best")
    return 0
