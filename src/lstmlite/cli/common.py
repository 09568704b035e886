"""Helpers shared by the sub-commands: config files, ``--key=value`` overrides, tables."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from .._text import one_line

__all__ = ["CliError", "read_config_file", "parse_overrides", "format_table", "format_bytes", "example_epilog",
           "add_progress_options", "show_progress"]


class CliError(Exception):
    """An error the CLI reports as one line and a non-zero exit."""


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON or YAML mapping from ``path``."""
    path = Path(path)
    if not path.exists():
        raise CliError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CliError(f"{path}: not valid UTF-8 (byte {err.object[err.start]:#04x} at offset {err.start}); "
                       f"re-save the config as UTF-8") from None
    try:
        loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise CliError(f"{path}: cannot parse config ({one_line(err)})") from None
    if not isinstance(loaded, dict):
        raise CliError(f"{path}: a config file must hold a mapping of sections (data, model, train)")
    return loaded


def _section_of(key: str) -> str:
    """Which config section a bare ``--key`` belongs to (train, data, else model)."""
    from ..data import DataSpec
    from ..train import TrainConfig

    if key in {f.name for f in fields(TrainConfig)}:
        return "train"
    if key in {f.name for f in fields(DataSpec)}:
        return "data"
    return "model"


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _text_options() -> dict[str, bool]:
    """``{"data.label_column": False, "data.test_path": True, …}``: the options typed as
    text (True: also None), whose command-line value is the text as typed. YAML would turn
    ``--data.label_column=yes`` into True and ``=1`` into 1, and no quoting advice brings
    the user's own column name back."""
    from ..data import DataSpec
    from ..train import TrainConfig

    out = {}
    for section, cls in (("data", DataSpec), ("train", TrainConfig)):
        for f in fields(cls):
            kind = str(f.type).replace(" ", "")
            if kind in ("str", "str|None"):
                out[f"{section}.{f.name}"] = kind == "str|None"
    return out


def parse_overrides(extra: Sequence[str]) -> dict[str, Any]:
    """``["--train.epochs=5", "--hidden_size=32"]`` → ``{"train.epochs": 5, "model.hidden_size": 32}``.

    A bare key goes to the section that defines it (TrainConfig, DataSpec, else model).
    Anything not of the form ``--key=value`` is an error.
    """
    overrides: dict[str, Any] = {}
    text_options = _text_options() if extra else {}
    for item in extra:
        if not item.startswith("--") or "=" not in item:
            raise CliError(f"unexpected argument {item!r}; options go as --key=value (e.g. --train.epochs=5)")
        key, value = item[2:].split("=", 1)
        key = key.replace("-", "_")
        if "." not in key:
            key = f"{_section_of(key)}.{key}"
        parsed = _parse_value(value)
        if key in text_options:  # the text as typed; null/~ still unsets an optional one
            parsed = None if text_options[key] and parsed is None else value
        overrides[key] = parsed
    return overrides


def refuse_existing_file(path: str | Path, option: str, force: bool) -> None:
    """Refuse to write the file ``option`` names over one that exists, unless ``force``
    (the command's ``--force``); a folder there is refused either way.

    Raises:
        CliError: naming the path and what to do.
    """
    path = Path(path)
    if path.is_dir():
        raise CliError(f"{path} is a folder; {option} names a file to write")
    if path.exists() and not force:
        raise CliError(f"{path} exists; choose another {option}, or add --force to replace it")


def format_bytes(n: float) -> str:
    """Bytes in binary units: KiB = 1,024 B, MiB = 1,024 KiB.

    Example:
        >>> format_bytes(1087), format_bytes(2048), format_bytes(3 * 1024 ** 2)
        ('1,087 B (1.06 KiB)', '2,048 B (2.00 KiB)', '3,145,728 B (3.00 MiB)')
    """
    if abs(n) < 1024:
        return f"{n:,.0f} B"
    scaled, unit = float(n), "B"
    for unit in ("KiB", "MiB", "GiB"):
        scaled /= 1024
        if abs(scaled) < 1024:
            break
    return f"{n:,.0f} B ({scaled:.2f} {unit})"


def format_table(rows: Iterable[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain aligned text table: floats to 4 decimals, integers grouped by thousands.

    Example:
        >>> print(format_table([("params", 20553)], ["", "value"]))
                value
        ------  ------
        params  20,553
    """
    cells = [[str(h) for h in header]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    # counts (params, MACs) grouped by thousands as the byte sizes beside them are
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def example_epilog(*examples: str) -> str:
    return "examples:\n" + "\n".join(f"  {e}" for e in examples)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps our hand-wrapped descriptions and examples as written, and adds an option's
    default to its help where the help does not already say it (``--reps`` showed no 30)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and "default" not in text and default is not None
                and default is not argparse.SUPPRESS and not isinstance(default, bool) and default != []
                and not isinstance(action, argparse._CountAction)):  # -v's 0 says nothing
            text += " (default: %(default)s)"
        return text


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--quiet`` (and the older ``--no-progress``) on a sub-command.

    Progress bars are drawn on a terminal only; see :func:`show_progress`. ``--quiet``
    hides the bars and nothing else: notes (``train``'s line naming the training defaults
    the data chose) and warnings still go to stderr, as docs/training.md promises.
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--progress", action="store_true",
                       help="draw progress bars even when stderr is not a terminal (default: terminal only)")
    group.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                       help="hide the progress bars, nothing else (notes such as train's defaults line, and "
                            "warnings, still print on stderr)")


def show_progress(args: argparse.Namespace, stream: Any = None) -> bool:
    """Whether to draw progress bars: ``--quiet`` never, ``--progress`` always, else only
    when stderr (where the bars go) is a terminal, so logs don't fill with carriage returns.

    Example:
        >>> import argparse, io
        >>> show_progress(argparse.Namespace(progress=False, quiet=False), io.StringIO())
        False
        >>> show_progress(argparse.Namespace(progress=True, quiet=False), io.StringIO())
        True
    """
    if getattr(args, "quiet", False):
        return False
    if getattr(args, "progress", False):
        return True
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def add_nproc_option(parser: argparse.ArgumentParser) -> None:
    """``--nproc N``: run the command as N torchrun processes on this machine (DDP)."""
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="train with N processes on this machine (DDP through torchrun, gloo on CPU; "
                             "train.batch_size is the global batch, a multiple of N; see docs/training.md)")


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out


def launch_nproc(args: argparse.Namespace) -> int:
    """Re-run this very command (``args.argv`` without ``--nproc``) as ``args.nproc``
    torchrun processes; a failed process is one line (its own error is printed above)."""
    from ..train import distributed as D

    if args.nproc < 1:
        raise CliError(f"--nproc must be at least 1, got {args.nproc}")
    if D.env_world_size() > 1:
        raise CliError("--nproc: already running under torchrun (WORLD_SIZE is set); drop --nproc")
    code = D.launch(args.nproc, _without_nproc(list(args.argv)))
    if code != 0:
        raise CliError(f"--nproc {args.nproc}: a process failed (exit {code}; its error is above); fix it and "
                       f"rerun (lstmlite train: add --resume to continue from --out's checkpoints; lstmlite "
                       f"compress starts again)")
    return 0


def is_other_rank() -> bool:
    """True in torchrun's processes other than rank 0: they print nothing (rank 0 does)."""
    from ..train import distributed as D

    return D.env_world_size() > 1 and D.env_rank() != 0
