"""The ``lstmlite`` command: one sub-command per public function (DESIGN decision 9).

Errors are one clear line and a non-zero exit; ``--debug`` shows the traceback.
:func:`error_line` is the one place their format is decided: a problem with the
user's input (a ``ValueError`` such as ``DataError``/``RunDirError``/``ConfigValueError``,
an ``OSError`` such as a missing or read-only path, a ``CliError``, a bad option)
exits with status 2; anything else is a bug of ours, reported as an internal error
with status 1. docs/errors.md lists the cases (tests/cli/test_error_cases.py).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from typing import NoReturn, Sequence

from .common import CliError, HelpFormatter, example_epilog

#: Sub-command modules, each with ``add_parser(subparsers)``; order is the --help order.
COMMANDS = ["demo", "data", "train", "eval", "compress", "export", "import", "bench", "search", "recommend",
            "report", "explain"]


#: Exit status of an error in the user's input (as argparse's own errors), and of a bug of ours.
EXIT_USAGE, EXIT_INTERNAL = 2, 1
#: Exceptions that describe the user's input, files or machine (not our code);
#: NotImplementedError is a request for a form lstmlite does not offer (its message names
#: the nearest one that it does).
USER_ERRORS = (CliError, ValueError, OSError, NotImplementedError)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are our one line (argparse prints the usage above them)."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        print(f"{self.prog}: error: {message}; see {self.prog} --help", file=sys.stderr)
        sys.exit(EXIT_USAGE)


#: The fix for the OS errors a user meets writing files.
_OS_FIXES = {
    errno.ENOSPC: "; free space on that disk or choose another --out",
    errno.EDQUOT: "; free space on that disk or choose another --out",
    errno.EROFS: "; choose a writable --out (or fix its permissions)",
    errno.EACCES: "; choose a writable --out (or fix its permissions)",
    errno.EPERM: "; choose a writable --out (or fix its permissions)",
}


def error_line(command: str, err: BaseException) -> tuple[str, int]:
    """The one line and the exit status reporting ``err`` from ``lstmlite COMMAND``.

    Example:
        >>> error_line("eval", FileNotFoundError("runs/x: not a run dir"))
        ('lstmlite eval: error: runs/x: not a run dir', 2)
        >>> error_line("eval", KeyError("data"))[1]
        1
    """
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, OSError) and err.strerror and text.startswith("[Errno"):
        # the OS's own wording ("[Errno 28] No space left on device: 'x'") made one of ours
        text = f"{err.filename}: {err.strerror}" if err.filename is not None else err.strerror
        text += _OS_FIXES.get(err.errno, "")
    if isinstance(err, USER_ERRORS):
        return f"lstmlite {command}: error: {text}", EXIT_USAGE
    return (f"lstmlite {command}: internal error ({type(err).__name__}: {text}); rerun with --debug and report it",
            EXIT_INTERNAL)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    _accept_global_options(parser)
    return parser


#: where a subcommand at nesting depth N counts its own -v (``verbose_after_N``)
_VERBOSE_AFTER = "verbose_after_"


def _accept_global_options(parser: argparse.ArgumentParser, depth: int = 1) -> None:
    """Let every subcommand (and a subcommand's own subcommands) take ``--debug`` and
    ``-v`` after its name too, as an error line's "rerun with --debug" invites: ``lstmlite
    eval RUN --debug`` as well as ``lstmlite --debug eval RUN``. Their default is left out
    (SUPPRESS) so a subcommand that does not see them keeps what the top level parsed.
    Each level counts its -v apart (argparse parses a subcommand into a fresh namespace,
    so one shared count would restart from 0); :func:`_verbosity` adds them up."""
    for action in parser._actions:  # argparse keeps a parser's subcommands in a _SubParsersAction
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for sub in action.choices.values():
            sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks on errors (also before the subcommand)")
            sub.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                             dest=f"{_VERBOSE_AFTER}{depth}",
                             help="more logging (-v info, -vv debug; also before the subcommand)")
            _accept_global_options(sub, depth + 1)


def _verbosity(args: argparse.Namespace) -> int:
    """Every -v given, before and after the subcommand's name (``-v train -v``: 2)."""
    return args.verbose + sum(value for key, value in vars(args).items() if key.startswith(_VERBOSE_AFTER))


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
    args.verbose = _verbosity(args)  # what a command reads (search: optuna's logging)
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
            return EXIT_USAGE if isinstance(err, USER_ERRORS) else EXIT_INTERNAL
        # under torchrun each line names its process: "lstmlite train (rank 1): error: ..."
        line, status = error_line(args.command if rank is None else f"{args.command} (rank {rank})", err)
        print(line, file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
