"""``lstmlite eval RUN``: re-measure a run dir on its data or on another file."""

from __future__ import annotations

import argparse
import json

from .common import HelpFormatter, example_epilog
from .report import format_tensor_sizes, print_metrics


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a run dir",
        description="Rebuild a run dir's model and measure it on the test split of its data (or on "
                    "--data, prepared the same way: same vocabulary and normalisation).",
        epilog=example_epilog("lstmlite eval runs/jv", "lstmlite eval runs/jv --split val --json",
                              "lstmlite eval runs/jv-int4 --sizes"),
        formatter_class=HelpFormatter)
    parser.add_argument("run", help="run dir")
    parser.add_argument("--data", default=None, help="evaluate on this data instead")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--sizes", action="store_true",
                        help="also list the .lsl file `export --format lsl` would write, tensor by tensor "
                             "(stored precision and bytes; they sum to size_bytes)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import evaluate_run

    metrics = evaluate_run(args.run, source=args.data, split=args.split)
    sizes = _sizes(args.run) if args.sizes else None
    if args.json:
        print(json.dumps(metrics if sizes is None else {**metrics, "tensors": sizes}, indent=2))
        return 0
    print_metrics({**metrics, "test": metrics.get(args.split, {})})
    if sizes is not None:
        print()
        print(format_tensor_sizes(sizes) if sizes else "no .lsl file: the native runtime cannot run this model")
    return 0


def _sizes(run_dir: str) -> list[dict]:
    from ..export.size import account
    from ..io import load_run

    return account(load_run(run_dir).model).tensors
