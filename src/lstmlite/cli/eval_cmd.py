"""``lstmlite eval RUN``: re-measure a run dir on its data or on another file."""

from __future__ import annotations

import argparse
import json

from .common import HelpFormatter, example_epilog
from .report import print_metrics


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a run dir",
        description="Rebuild a run dir's model and measure it on the test split of its data (or on "
                    "--data, prepared the same way: same vocabulary and normalisation).",
        epilog=example_epilog("lstmlite eval runs/jv", "lstmlite eval runs/jv --split val --json"),
        formatter_class=HelpFormatter)
    parser.add_argument("run", help="run dir")
    parser.add_argument("--data", default=None, help="evaluate on this data instead")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import evaluate_run

    metrics = evaluate_run(args.run, source=args.data, split=args.split)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        metrics = {**metrics, "test": metrics.get(args.split, {})}
        print_metrics(metrics)
    return 0
