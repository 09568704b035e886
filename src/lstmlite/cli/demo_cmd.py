"""``lstmlite demo``: the whole tool on built-in data, in a few minutes on a laptop."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import HelpFormatter, example_epilog
from .report import print_metrics


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="train a baseline on built-in data and show the results",
        description="Train an LSTM baseline on the built-in JapaneseVowels speaker-recognition data "
                    "(UCR/UEA, shipped with aeon: no download), pick the epoch on validation, report "
                    "the test split, and leave a run dir you can pass to eval, compress, export and bench.",
        epilog=example_epilog("lstmlite demo", "lstmlite demo --quick --out /tmp/demo"),
        formatter_class=HelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few epochs only (a smoke test)")
    parser.add_argument("--out", default=None, help="where to write the run dirs (default: ./lstmlite-demo-TIME)")
    parser.set_defaults(func=run)


def demo_config(quick: bool) -> dict:
    return {
        "data": {"source": "japanese_vowels", "task": "classify"},
        "model": {"cell": "lstm", "hidden_size": 64},
        "train": {"epochs": 3 if quick else 40, "batch_size": 16, "lr": 3e-3, "patience": 10},
    }


def run(args: argparse.Namespace) -> int:
    from ..train import fit

    out = Path(args.out) if args.out else Path(f"lstmlite-demo-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"lstmlite demo: LSTM-64 on japanese_vowels ({'quick' if args.quick else 'full'}), writing {out}")
    baseline = fit(demo_config(args.quick), out / "baseline", progress=True)
    print("\nbaseline (fp32 LSTM):")
    print_metrics(baseline.metrics)
    print(f"\nrun dir: {baseline.path}")
    return 0
