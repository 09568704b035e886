"""``lstmlite compress``: a run dir + a recipe → a new, compressed run dir."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import (CliError, HelpFormatter, add_nproc_option, add_progress_options, example_epilog, format_bytes,
                     format_table, is_other_rank, launch_nproc, parse_overrides, show_progress)


def _shipped() -> list[str]:
    """The shipped recipes' names, read from the folder (as ``lstmlite.compress.list_recipes``
    does) so the help never lists fewer or others, without importing the compression code."""
    from pathlib import Path

    return sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "recipes").glob("*.yaml"))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compress", help="compress a run with a recipe and write a new run dir",
        description="Apply a compression recipe (pruning, quantization, low-rank, distillation, embedding "
                    "compression; ordered steps, each optionally fine-tuned or distilled from the original) "
                    "to the model of RUN, evaluate it on the run's test split, and write a new run dir "
                    "(config.json with the compression state, model.safetensors, metrics.json with the "
                    "baseline, recipe.json). RUN itself is never changed.\n\n"
                    f"--recipe takes a YAML/JSON file or the name of a shipped recipe: {', '.join(_shipped())}; "
                    "lstmlite compress --list-recipes says what each does and for which models it fits. Training "
                    "options of every step can be overridden with --train.KEY=VALUE (e.g. --train.lr=0.0005 "
                    "--train.device=cpu).",
        epilog=example_epilog(
            "lstmlite compress runs/jv --recipe int8 --out runs/jv-int8",
            "lstmlite compress runs/jv --recipe fastgrnn-tiny --out runs/jv-tiny",
            "lstmlite compress runs/trec --recipe text-tiny --out runs/trec-tiny",
            "lstmlite compress runs/trec --recipe my-recipe.yaml --out runs/trec-small",
            "lstmlite compress runs/jv --recipe shrink --max-epochs 2 --out runs/jv-try   # a quick trial",
            "lstmlite compress --list-recipes"),
        formatter_class=HelpFormatter)
    parser.add_argument("run", nargs="?", metavar="RUN", help="the run dir to compress")
    parser.add_argument("--recipe", help="recipe file (YAML/JSON) or shipped recipe name")
    parser.add_argument("--out", help="new run dir to create")
    parser.add_argument("--force", action="store_true",
                        help="replace a run dir of lstmlite's at --out (a folder holding other files is still refused)")
    parser.add_argument("--data", help="fine-tune and evaluate on this data (default: the run's own data)")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="cap every step's epochs (quick trials; default: the recipe's own)")
    add_nproc_option(parser)
    parser.add_argument("--list-recipes", action="store_true", help="list the shipped recipes and exit")
    parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)  # refused in one line (run())
    add_progress_options(parser)
    parser.add_argument("--json", action="store_true",
                        help="print the new run's metrics (with baseline_metric, baseline_size_bytes) as JSON")
    parser.set_defaults(func=run, accepts_overrides=True)


def _train_overrides(extra: list[str]) -> dict[str, Any]:
    overrides = parse_overrides(extra)
    out = {}
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        if section != "train":
            raise CliError(f"--{key}: compress takes only training overrides (--train.KEY=VALUE)")
        out[name] = value
    return out


def _ratio(before: float, after: float) -> str:
    if not before or not after:
        return ""
    return f"{before / after:.1f}x smaller" if after < before else f"{after / before:.2f}x larger" \
        if after > before else "same"


def comparison_table(metrics: dict[str, Any]) -> str:
    """Before/after table of a compressed run's metrics.json (uses ``baseline``)."""
    base = metrics.get("baseline", {})
    name = metrics["metric_name"]
    metric_change = metrics["metric"] - base["metric"] if "metric" in base else None
    rows = [
        (f"test {name}", base.get("metric", ""), metrics["metric"],
         "" if metric_change is None else f"{metric_change:+.4f}"),
    ]
    # a model the runtime cannot run (G-LSTM) has no .lsl file: its size is the estimate, and says so
    size_label = "size (estimate: no .lsl file)" if metrics.get("size_basis") == "estimate" else "size"
    for key, label in (("params", "params"), ("nonzero_params", "non-zero params"),
                       ("size_bytes", size_label), ("macs_per_step", "MACs / step")):
        before, after = base.get(key), metrics.get(key)
        show = format_bytes if key == "size_bytes" else (lambda v: v)
        rows.append((label, "" if before is None else show(before), "" if after is None else show(after),
                     _ratio(before or 0, after or 0)))
    return format_table(rows, ["", "before", "after", "change"])


def run(args: argparse.Namespace) -> int:
    from ..compress.recipe import apply_recipe, list_recipes, load_recipe

    if args.list_recipes:
        for name in list_recipes():
            recipe = load_recipe(name)
            print(f"{name}: {recipe.description}")
            if recipe.fits:
                print(f"  fits: {recipe.fits}")
            print(f"  tasks: {', '.join(recipe.tasks) if recipe.tasks else 'any'}")
        return 0
    if args.resume:
        raise CliError("--resume: a recipe keeps no checkpoints (its run dir is written once, after the last step), "
                       "so an interrupted compress starts again: run the same command without --resume")
    missing = [flag for flag, value in (("RUN", args.run), ("--recipe", args.recipe), ("--out", args.out))
               if not value]
    if missing:
        raise CliError(f"missing {', '.join(missing)}: lstmlite compress RUN --recipe FILE_OR_NAME --out DIR")
    overrides = _train_overrides(args.overrides)
    recipe = load_recipe(args.recipe)  # a bad recipe is one line here, before any process starts
    if args.nproc != 1:
        return launch_nproc(args)
    data = None
    if args.data:
        from ..io import load_run
        from ..train import load_run_data

        data = load_run_data(load_run(args.run), args.data)
    result = apply_recipe(args.run, recipe, args.out, data=data, max_epochs=args.max_epochs,
                          train_overrides=overrides, progress=show_progress(args), overwrite=args.force)
    if is_other_rank():
        return 0  # under torchrun rank 0 prints
    if args.json:
        print(json.dumps({**result.metrics, "run_dir": str(result.path)}, indent=2, default=str))
        return 0
    print(f"recipe {recipe.name}: {len(recipe.steps)} step(s) on {result.metrics.get('dataset', '')}")
    print(comparison_table(result.metrics))
    print(f"run dir: {result.path}")
    return 0
