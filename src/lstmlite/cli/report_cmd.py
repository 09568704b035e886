"""``lstmlite report RUN… --out report.html``: one self-contained HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import HelpFormatter, example_epilog, refuse_existing_file


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write an HTML report comparing run dirs",
        description="Write one self-contained HTML file (inline images and styles, nothing loaded from the "
                    "network): a comparison table, accuracy against exported size with the Pareto front, a "
                    "model card per run, per-tensor sparsity/bits/rank, training curves, confusion matrices "
                    "and the per-class accuracy change of a compressed run against the run it came from.",
        epilog=example_epilog("lstmlite report runs/jv runs/jv-int8 --out report.html",
                              "lstmlite report runs/jv runs/jv-small --bench bench.json --explain 0 --out r.html"),
        formatter_class=HelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run dirs to report on")
    parser.add_argument("--out", required=True, help="the HTML file to write (a new file unless --force)")
    parser.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    parser.add_argument("--bench", action="append", default=[], metavar="FILE",
                        help="a `lstmlite bench --json` file: latency per engine for the runs whose architecture "
                             "it times (repeatable)")
    parser.add_argument("--explain", type=int, default=None, metavar="K",
                        help="also explain test sample K of every run (gates, integrated gradients)")
    parser.add_argument("--title", default="lstmlite report", help="the page title")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report import write_report

    out = Path(args.out)
    if not out.is_dir():  # a folder is write_report's error
        refuse_existing_file(out, "--out", args.force)
    path = write_report(args.runs, args.out, bench=args.bench, explain_sample=args.explain, title=args.title)
    print(f"wrote {path}")
    return 0
