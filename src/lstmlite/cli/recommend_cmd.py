"""``lstmlite recommend``: which model should I choose? (calls :func:`lstmlite.search.recommend.recommend`)."""

from __future__ import annotations

import argparse

import yaml

from ..data.spec import TASKS
from .common import HelpFormatter, example_epilog


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recommend", help="propose a search space and budget for your data and device",
        description="From the task, the data's size and the device budget, propose a starting search space "
                    "and budget, explained in plain words; --space-out writes the space for lstmlite search.",
        epilog=example_epilog(
            "lstmlite recommend --task classify --data japanese_vowels --budget size=2KB",
            "lstmlite recommend --task classify --data japanese_vowels --budget size=2KB --space-out space.yaml"),
        formatter_class=HelpFormatter)
    parser.add_argument("--data", required=True, help="built-in name or file path")
    parser.add_argument("--task", choices=TASKS, default=None, help="what to learn")
    parser.add_argument("--budget", default=None, help="size=8KB,latency=200us,ram=16KB (any subset)")
    parser.add_argument("--space-out", default=None, help="write the proposed search space YAML here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import DataSpec, load_data
    from ..search.recommend import recommend

    spec = {"source": args.data, **({"task": args.task} if args.task else {})}
    data = load_data(DataSpec.from_dict(spec))
    rec = recommend(data.task, n_train=len(data.train.y), input_size=int(data.input_size or 0),
                    budget=args.budget, text=data.vocab is not None, data=data)
    print(f"For {data.name} ({data.task}, {len(data.train.y):,} training examples):")
    for line in rec["explanation"]:
        print(f"  - {line}")
    if args.space_out:
        with open(args.space_out, "w") as f:
            yaml.safe_dump(rec["space"], f, sort_keys=False)
        print(f"search space written to {args.space_out}; run:")
    budget = f" --budget {args.budget}" if args.budget else ""
    space = f" --space {args.space_out}" if args.space_out else ""
    print(f"  lstmlite search --data {args.data} --task {data.task}{budget}{space} --trials {rec['trials']} --out runs/search")
    return 0
