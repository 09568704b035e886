"""The ``lstmlite`` command: one sub-command per public function (DESIGN decision 9).

Errors are one clear line and a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from .common import HelpFormatter, example_epilog

#: Sub-command modules, each with ``add_parser(subparsers)``; order is the --help order.
COMMANDS = ["demo", "data", "train", "eval", "compress", "export", "import", "bench", "search", "recommend",
            "report", "explain"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlite",
        description="Make LSTM-family models small and fast: train, compress, export and run them.",
        epilog=example_epilog("lstmlite demo", "lstmlite data list",
                              "lstmlite train --data japanese_vowels --task classify --out runs/jv",
                              "lstmlite eval runs/jv", "lstmlite SUBCOMMAND --help"),
        formatter_class=HelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name in COMMANDS:
        importlib.import_module(f"lstmlite.cli.{name}_cmd").add_parser(subparsers)
    return parser


def _torchrun_rank() -> int | None:
    """This process's rank when torchrun started more than one, else None."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    return int(os.environ.get("RANK", "0") or 0)


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    args.argv = argv  # what a launcher (train --nproc) re-runs in each process
    rank = _torchrun_rank()
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    # under torchrun only rank 0 talks; the others report errors only
    logging.basicConfig(level=level if rank is None or rank == 0 else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s" if rank is None
                        else f"%(levelname)s [rank {rank}] %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI reports every failure as one line
        if args.debug:
            raise
        if getattr(err, "quiet", False):  # another process reported it already
            return 1
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = f" (rank {rank})" if rank is not None else ""
        print(f"lstmlite {args.command}: error{where}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
