"""``lstmlite explain RUN --sample K --out DIR``: gate heatmaps and saliency of one sample."""

from __future__ import annotations

import argparse

from .common import CliError, HelpFormatter, example_epilog


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain", help="gate heatmaps and integrated-gradients saliency for one test sample",
        description="Explain test sample K of a run: the gate activations (input, forget, cell candidate, "
                    "output) of every LSTM/GRU layer over time as heatmaps, and saliency per time step and "
                    "feature by integrated gradients (for text: the tokens coloured by saliency). Writes PNGs, "
                    "explanation.json and section.html (an HTML fragment) into DIR. Works on compressed runs.",
        epilog=example_epilog("lstmlite explain runs/jv --sample 0 --out explain/jv",
                              "lstmlite explain runs/jv-int8 --sample 0 --out explain/jv-int8"),
        formatter_class=HelpFormatter)
    parser.add_argument("run", metavar="RUN", help="the run dir")
    parser.add_argument("--sample", type=int, default=0, metavar="K", help="row of the test split (default 0)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the PNGs and section.html (a new or empty one unless --force)")
    parser.add_argument("--force", action="store_true",
                        help="write into a folder that holds files (explain's own are replaced, others kept)")
    parser.add_argument("--steps", type=int, default=64, help="integration points of integrated gradients")
    parser.add_argument("--target", type=int, default=None,
                        help="class (or output index) to explain; default: the model's prediction")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..report import explain, write_explanation
    from ..report.runs import check_outside_runs

    check_outside_runs(Path(args.out), [Path(args.run)])
    if Path(args.out).exists() and not Path(args.out).is_dir():  # it failed as the OS's bare "File exists"
        raise CliError(f"--out {args.out}: a file, not a folder; explain writes a folder of PNGs and section.html "
                       f"(e.g. --out {Path(args.out).with_suffix('')}-explain)")
    held = sorted(p.name for p in Path(args.out).iterdir()) if Path(args.out).is_dir() else []
    if held and not args.force:  # an earlier explanation (or anything else) would be overwritten without a word
        raise CliError(f"--out {args.out}: holds files ({', '.join(held[:3])}{', ...' if len(held) > 3 else ''}); "
                       f"choose a new or empty --out, or add --force to write explain's files into it")
    explanation = explain(args.run, sample=args.sample, steps=args.steps, target=args.target)
    written = write_explanation(explanation, args.out)
    att = explanation.attribution
    print(f"sample {explanation.sample}: true {explanation.label or '-'}, predicted {explanation.predicted or '-'}")
    print(f"integrated gradients of the {att.target}: sum {att.values.sum():.4f}, "
          f"f(x) - f(baseline) {att.f_x - att.f_baseline:.4f}")
    for path in written:
        print(f"wrote {path}")
    return 0
