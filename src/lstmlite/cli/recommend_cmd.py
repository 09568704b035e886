"""``lstmlite recommend``: which model should I choose? (calls :func:`lstmlite.search.recommend.recommend`)."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from ..data.spec import TASKS
from .common import CliError, HelpFormatter, example_epilog, refuse_existing_file


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recommend", help="propose a search space and budget for your data and device",
        description="From the task, the data's size and the device budget, propose a starting search space "
                    "and budget, explained in plain words; --space-out writes the space for lstmlite search. "
                    "A size or RAM budget that no model of the proposed space meets is an error (exit status "
                    "2) naming the smallest figure that would fit.",
        epilog=example_epilog(
            "lstmlite recommend --task classify --data japanese_vowels --budget size=2KB",
            "lstmlite recommend --task classify --data japanese_vowels --budget size=2KB --space-out space.yaml"),
        formatter_class=HelpFormatter)
    parser.add_argument("--data", required=True, help="built-in name or file path")
    parser.add_argument("--task", choices=TASKS, default=None, help="what to learn (default: the data's own task)")
    parser.add_argument("--budget", default=None, help="size=8KB,latency=200us,ram=16KB (any subset; default: none)")
    parser.add_argument("--space-out", default=None,
                        help="write the proposed search space YAML here (a new file unless --force)")
    parser.add_argument("--force", action="store_true", help="replace the --space-out file if it exists")
    parser.set_defaults(func=run)


def _unmet(space: Any, data_config: dict[str, Any], budget: dict[str, float]) -> dict[str, tuple[int, str]]:
    """``{key: (figure, what)}`` for each ``size`` / ``ram`` limit of ``budget`` that even
    the smallest model of ``space`` exceeds, as search's pre-check measures it
    (:func:`lstmlite.search.feasible.unmet_limits`): the smallest figure and a phrase
    naming it and its model. Empty when the space has a model within them (or too many
    combinations to measure, which search does not check either)."""
    from ..search.feasible import shown_point, unmet_limits

    unmet: dict[str, tuple[int, str]] = {}
    for key, (figure, point, kind) in unmet_limits(space, data_config, budget).items():
        where = " (estimated: no C export of it)" if kind == "estimated" else " in its C project on a Cortex-M4"
        what = (f"its smallest model's file is {int(figure):,} B" if key == "size"
                else f"its leanest model needs {int(figure):,} B of RAM{where}")
        unmet[key] = (int(figure), f"{what} ({shown_point(space, point)})")
    return unmet


def _raised(budget: dict[str, float], unmet: dict[str, tuple[int, str]]) -> str:
    """``budget`` as a ``--budget`` value, each unmet limit raised to the smallest figure.

    Example:
        >>> _raised({"size": 10, "latency": 0.5}, {"size": (385, "")})
        'size=385B,latency=0.5us'
    """
    from ..search.recommend import _microseconds

    return ",".join(f"latency={_microseconds(v, grouped=False)}us" if k == "latency"
                    else f"{k}={unmet.get(k, (int(v), ''))[0]}B" for k, v in budget.items())


def run(args: argparse.Namespace) -> int:
    from ..data import DataSpec, load_data
    from ..search import load_space
    from ..search.feasible import check_feasible
    from ..search.objectives import BudgetError
    from ..search.recommend import recommend

    if args.space_out:
        refuse_existing_file(args.space_out, "--space-out", args.force)  # before the data is read
    spec = {"source": args.data, **({"task": args.task} if args.task else {})}
    data = load_data(DataSpec.from_dict(spec))
    rec = recommend(data.task, n_train=len(data.train.y), input_size=int(data.input_size or 0),
                    budget=args.budget, text=data.vocab is not None, data=data)
    print(f"For {data.name} ({data.task}, {len(data.train.y):,} training examples):")
    for line in rec["explanation"]:
        print(f"  - {line}")
    data_config = {"source": args.data, "task": data.task}
    unmet = _unmet(load_space(rec["space"]), data_config, rec["budget"])
    if unmet:  # search would refuse this budget: no command to print, nor a space to write
        raise CliError(f"no model of the proposed space fits --budget {args.budget}: "
                       f"{' and '.join(what for _, what in unmet.values())}; "
                       f"use --budget {_raised(rec['budget'], unmet)} or more")
    budget = f" --budget {args.budget}" if args.budget else ""
    command = f"lstmlite search --data {args.data} --task {data.task}{budget}"
    tail = f"--trials {rec['trials']} --out runs/search"
    if args.space_out:
        with open(args.space_out, "w") as f:
            yaml.safe_dump(rec["space"], f, sort_keys=False)
        print(f"search space written to {args.space_out}; run:")
        print(f"  {command} --space {args.space_out} {tail}")
        return 0
    try:  # the command below searches the shipped default space, not the one proposed
        check_feasible(load_space("default"), data_config, rec["budget"])
    except BudgetError:
        print("the shipped default search space has no model within this budget: write the proposed one and "
              "search it:")
        print(f"  lstmlite recommend --data {args.data} --task {data.task}{budget} --space-out space.yaml")
        print(f"  {command} --space space.yaml {tail}")
        return 0
    print(f"  {command} {tail}")
    return 0
