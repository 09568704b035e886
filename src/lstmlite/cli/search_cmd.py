"""``lstmlite search``: find models within a device budget (calls :func:`lstmlite.search.search`)."""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from ..data.spec import TASKS
from .._text import one_line
from .common import CliError, HelpFormatter, example_epilog, format_bytes


def _duration(text: str | None) -> float | None:
    """``30m`` / ``2h`` / ``90s`` / ``600`` -> seconds."""
    if text is None:
        return None
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(s|m|h)?", text.strip().lower())
    if not m:
        raise CliError(f"--timeout {text!r}: use seconds or a time like 30m or 2h")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]


#: The pip package that brings a database driver, by the module SQLAlchemy imports for it.
_DRIVER_PACKAGES = {"MySQLdb": "mysqlclient", "psycopg2": "'lstmlite[search]' (psycopg2-binary)",
                    "pymysql": "pymysql", "asyncpg": "asyncpg", "psycopg": "psycopg"}


def check_storage(url: str) -> None:
    """Refuse a ``--storage`` URL the study could not be opened on, before anything is
    written, as one line naming the URL, what is wrong and the fix: not a database URL,
    a database kind SQLAlchemy does not know, its driver not installed, an SQLite file
    whose folder does not exist or that cannot be opened, a server that refuses the
    connection. A new SQLite file is not created here (the search creates it). The URL is
    quoted with its password masked."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    fix = "use sqlite:///PATH/study.db or postgresql+psycopg2://user@host/db"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CliError(f"--storage {url}: not a database URL; {fix}") from None
    url = parsed.render_as_string(hide_password=True)  # as quoted below: no password in a log
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise CliError(f"--storage {url}: unknown database kind {parsed.drivername!r}; {fix}") from None
    try:
        dialect.import_dbapi()
    except ImportError as err:
        module = err.name or parsed.drivername
        package = _DRIVER_PACKAGES.get(module.split(".")[0], module)
        if parsed.drivername == "postgresql" and _importable("psycopg2"):
            # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; lstmlite[search] brings psycopg2
            psycopg2 = parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=True)
            fix = f"write {psycopg2} (psycopg2 is installed)"
        raise CliError(f"--storage {url}: the {parsed.get_backend_name()} driver ({module}) is not installed; "
                       f"pip install {package}, or {fix}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not parsed.query.get("uri"):
        path = Path(parsed.database)
        folder = path.parent
        if not folder.is_dir():
            raise CliError(f"--storage {url}: the folder {folder} does not exist; create it or give an SQLite "
                           f"file in an existing folder")
        if path.exists() and not path.is_file():
            raise CliError(f"--storage {url}: {path} is not a file; give the path of an SQLite file")
        if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
            raise CliError(f"--storage {url}: cannot write {path if path.exists() else folder} (permissions); "
                           f"choose a writable place for the SQLite file")
        if not path.exists():
            return  # the search creates it
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn:
            if parsed.get_backend_name() == "sqlite":
                conn.execute(text("PRAGMA schema_version"))  # reads the header: "file is not a database"
    except SQLAlchemyError as err:
        cause = one_line(str(getattr(err, "orig", None) or err))
        raise CliError(f"--storage {url}: cannot open it ({cause}); check the path, server, user and "
                       f"database name") from None
    finally:
        engine.dispose()


def _importable(module: str) -> bool:
    """Whether ``module`` can be imported here (found, not imported)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _created_folders(out: Path) -> list[Path]:
    """The folders that making ``out`` would create (``out`` first, then its missing
    parents): what a failed run may remove, if still empty."""
    created = []
    path = out.absolute()
    while not path.exists() and path != path.parent:
        created.append(path)
        path = path.parent
    return created


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (innermost first) that exists and is empty; stop at the
    first that holds anything. Never removes a file or a folder with contents."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:  # not empty (or not ours to remove): leave it and those above it
            return


def _size_text(record: dict[str, Any], args: argparse.Namespace) -> str:
    """A trial's size as the summary says it: what its export writes (a seq2seq model's
    three files), or the estimate of a model with no file."""
    size = format_bytes(record["size_bytes"])
    if record.get("size_kind", "lsl") != "lsl":
        return f"{size} (estimated: no .lsl file)"
    if (Path(args.out) / "best" / "config.json").is_file():
        from ..io import read_json

        if read_json(Path(args.out) / "best" / "config.json").get("model", {}).get("kind") == "seq2seq":
            return f"{size} exported (encoder.lsl + decoder.lsl + seq2seq.safetensors)"
    return f"{size} .lsl file"


def _trial_counts(out: str | Path) -> Counter[str]:
    """``{state: n}`` over ``OUT/trials.json`` (lower-case states, as ``complete``), with
    ``not_trained``: the complete trials over the budget before training (``skipped``),
    and failed trials failed as past the trial cap left out (no fault of theirs)."""
    from ..io import read_json

    counts: Counter[str] = Counter()
    for t in read_json(Path(out) / "trials.json"):
        if t.get("over_cap"):
            continue
        counts[t["state"].lower()] += 1
        if t["state"] == "COMPLETE" and t.get("skipped"):
            counts["not_trained"] += 1
        elif t["state"] == "COMPLETE" and t.get("feasible") is False:
            counts["over_after_training"] += 1  # trained, and its model came out over the budget
    return counts


def summary_line(out: str | Path, result: dict[str, Any]) -> str:
    """The line after the trials: how many ran (complete or pruned: what ``--trials``
    counts), how many of them trained a model (and of those, how many came out over the
    budget), how many were over the budget before training (recorded, not trained), then
    the Pareto front's size. Without
    ``OUT/trials.json`` only the complete trials are known."""
    front = f"{len(result['pareto'])} on the Pareto front within budget ({out}/pareto.json, pareto.png)"
    if not (Path(out) / "trials.json").is_file():
        return f"{result['trials']} trials complete; {front}"
    c = _trial_counts(out)
    counted = c["complete"] + c["pruned"]
    text = (f"{counted} trials, {c['complete'] - c['not_trained']} trained"
            + (f" ({c['over_after_training']} of them over budget)" if c["over_after_training"] else "")
            + f", {c['not_trained']} over budget (not trained)")
    if c["pruned"]:
        text += f", {c['pruned']} pruned (stopped early)"
    if c["fail"]:
        text += f", {c['fail']} failed and replaced"
    return f"{text}; {front}"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search", help="search models within a size/latency/RAM budget (Optuna)",
        description="Train, compress and measure many models and keep those within the budget.\n\n"
                    "Each trial samples the search space (--space, a YAML file; see docs/search.md), trains "
                    "for a few epochs, compresses (pruning, low rank, int weights), fine-tunes, evaluates on "
                    "validation, writes the .lsl file and measures its step latency in the native runtime. "
                    "Objectives: validation metric, .lsl bytes, latency, RAM; the budget is a hard "
                    "constraint. OUT gets study.db (unless --storage), trials/NNNN run dirs, trials.json, "
                    "pareto.json, pareto.png and best/ (the best model within budget, a run dir ready for "
                    "compress/export).",
        epilog=example_epilog(
            "lstmlite search --data japanese_vowels --task classify --budget size=8KB,latency=200us "
            "--trials 20 --out runs/search",
            "lstmlite search --data japanese_vowels --task classify --budget size=2KB --trials 40 "
            "--storage postgresql+psycopg2://user@db/lstmlite --workers 2 --out runs/search",
            "lstmlite search --data japanese_vowels --task classify --trials 40 --out runs/search --resume",
            "lstmlite export runs/search/best --format lsl --out deploy/"),
        formatter_class=HelpFormatter)
    parser.add_argument("--data", required=True, help="built-in name (lstmlite data list) or file path")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="what to learn (default: the data's own task)")
    parser.add_argument("--budget", default=None,
                        help="hard limits: size=8KB,latency=200us,ram=16KB (any subset; default: none)")
    parser.add_argument("--trials", type=int, default=20,
                        help="complete or pruned trials to finish, over all workers (a failed trial is replaced; "
                             "many failures in a row stop the search: docs/search.md)")
    parser.add_argument("--timeout", default=None,
                        help="stop each worker after this long (30m, 2h, 600; default: no limit)")
    parser.add_argument("--space", default="default",
                        help="a shipped space (default, tiny, text) or a search space YAML file (default: default)")
    parser.add_argument("--storage", default=None, help="database URL shared by workers (default: OUT/study.db)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--seed", type=int, default=0, help="sampler and training seed")
    parser.add_argument("--sampler", choices=["tpe", "nsga2", "random"], default="tpe",
                        help="how points are proposed: multivariate TPE (default), NSGA-II, or random "
                             "(the baseline; see BENCHMARKS.md for how they compare)")
    parser.add_argument("--resume", action="store_true", help="continue the study already in the storage")
    parser.add_argument("--no-prune", dest="prune", action="store_false",
                        help="train every point fully: by default a point over the budget before training is "
                             "not trained, and a trial that a finished one beats at the same epoch while being "
                             "as small, lean and fast is stopped (docs/search.md)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..search import TrialsFailed, search
    from ..search.study import OVER_CAP

    if args.trials < 1 or args.workers < 1:
        raise CliError("--trials and --workers must be at least 1")
    import logging

    import optuna

    # Optuna's own INFO lines ("Trial 3 finished with values ...", "Using an existing study")
    # repeat the progress lines below in its words: shown with -v only
    optuna.logging.set_verbosity(logging.INFO if args.verbose else logging.WARNING)

    def progress(study: Any, trial: Any) -> None:
        attrs = trial.user_attrs
        if attrs.get(OVER_CAP):  # a worker's trial past --trials, failed unrun: not one the user asked for
            return
        if "val_metric" in attrs:
            # a point over the budget before training has no measured metric: the untrained
            # model's, stored for the sampler, is not shown as if it were one
            metric = "-" if attrs.get("skipped") else f"{attrs['val_metric']:.4f}"
            print(f"trial {trial.number:4d} {trial.state.name.lower():8s} {attrs['metric_name']}="
                  f"{metric} size={format_bytes(attrs['size_bytes'])}"
                  f"{'' if attrs['size_kind'] == 'lsl' else ' (estimated)'} latency={attrs['latency_us']:.1f}us/step"
                  f"{'' if attrs['latency_kind'] == 'measured' else ' (MAC model)'} ram={format_bytes(attrs['ram_bytes'])}"
                  f"{' (estimated)' if attrs.get('ram_kind') == 'estimated' else ''}"
                  f" {'ok' if attrs.get('feasible') else 'over budget'}"
                  f"{' (not trained)' if attrs.get('skipped') else ''}", flush=True)
        elif attrs.get("error"):  # a failed trial's cause (search records it), on the trial's one line
            print(f"trial {trial.number:4d} {trial.state.name.lower():8s} {one_line(str(attrs['error']))}",
                  flush=True)
        else:
            print(f"trial {trial.number:4d} {trial.state.name.lower()}", flush=True)

    if args.storage is not None:
        check_storage(args.storage)  # before --out is made: a bad URL leaves nothing behind
    created = _created_folders(Path(args.out))
    try:
        result = search(args.data, args.task, budget=args.budget, trials=args.trials, out=args.out,
                        storage=args.storage, workers=args.workers, timeout=_duration(args.timeout),
                        space=args.space, seed=args.seed, resume=args.resume, sampler=args.sampler,
                        prune=args.prune, on_trial=progress)
    except TrialsFailed as err:
        # the trials' own errors (logged above, each in trials.json) say whose fault it is;
        # the stop itself is a finding about this search, reported as "no trial completed" is
        raise CliError(str(err)) from err
    except BaseException:
        _remove_if_empty(created)  # a run that failed before writing anything leaves no --out it made
        raise
    print(summary_line(args.out, result))
    best = result["best"]
    if best is None and result["trials"] == 0:  # nothing trained to the end: no budget to blame
        from ..io import read_json

        states = Counter(t["state"].lower() for t in read_json(Path(args.out) / "trials.json"))
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none run"
        raise CliError(f"no trial completed ({counts}): failed trials say why above, pruned ones were stopped by "
                       f"the study's prune_below / prune_above bar or a better trial ({args.out}/trials.json)")
    if best is None:  # a finding about the budget, not a fault of ours: exit status 2, as bad input
        raise CliError(f"no trial met the budget {args.budget}; widen --budget or the space "
                       f"({args.out}/trials.json lists every trial's figures)")
    print(f"best within budget: trial {best['trial']} {best['metric_name']}={best['val_metric']:.4f} (val), "
          f"{best['test_metric']:.4f} (test), {_size_text(best, args)}, {best['latency_us']:.1f} us/step "
          f"-> {args.out}/best")
    return 0
