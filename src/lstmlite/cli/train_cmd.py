"""``lstmlite train``: data + config → a trained run dir."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from ..data.spec import TASKS
from .common import (CliError, HelpFormatter, add_nproc_option, add_progress_options, example_epilog, is_other_rank,
                     launch_nproc, parse_overrides, read_config_file, show_progress)
from .report import print_metrics


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model and write a run dir",
        description="Train an LSTM-family model on a built-in data set or your file, choose the best "
                    "epoch on the validation split, report the test split, and write a run dir "
                    "(config.json, model.safetensors, metrics.json, history.json, checkpoints/).\n\n"
                    "Options beyond these come from --config FILE (JSON/YAML with sections data, model, "
                    "train) and --key=value overrides, e.g. --train.epochs=20 --model.hidden_size=32 "
                    "--model.cell=gru --data.seq_len=200; a bare --epochs=20 goes to the section that "
                    "knows the key. Unknown keys are errors.",
        epilog=example_epilog(
            "lstmlite train --data japanese_vowels --task classify --out runs/jv",
            "lstmlite train --data basic_motions --task classify --train.batch_size=8 --out runs/bm",
            "lstmlite train --data data/trec/train_5500.label --task classify "
            "--data.test_path=data/trec/TREC_10.label --out runs/trec",
            "lstmlite train --data data/tinyshakespeare/input.txt --task lm --out runs/shakespeare",
            "lstmlite train --data airline --task forecast --out runs/airline",
            "lstmlite train --data data/digits --task ctc --out runs/digits   # after lstmlite data make spoken-digits",
            "lstmlite train --data pos.tsv --task tag --out runs/pos          # token<TAB>label lines",
            "lstmlite train --data data/textnorm/pairs.tsv --task seq2seq --model.attention=bahdanau "
            "--out runs/textnorm   # source<TAB>target lines; after lstmlite data make text-norm",
            "lstmlite train --data japanese_vowels --out runs/jv --resume   # continue an interrupted run",
            "lstmlite train --data digits --nproc 2 --out runs/digits      # 2 processes (DDP), see docs/training.md",
            "torchrun --standalone --nproc_per_node=2 -m lstmlite train --data digits --out runs/digits"),
        formatter_class=HelpFormatter)
    parser.add_argument("--data", required=False, help="built-in name (lstmlite data list) or file path")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="what to learn (default: classify, or the data's own task)")
    parser.add_argument("--config", help="JSON/YAML file with sections data, model, train")
    parser.add_argument("--out", required=True, help="run dir to create")
    parser.add_argument("--resume", action="store_true", help="continue from --out's last checkpoint")
    parser.add_argument("--force", action="store_true",
                        help="replace a run dir of lstmlite's at --out (a folder holding other files is still refused)")
    add_nproc_option(parser)
    add_progress_options(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    parser.set_defaults(func=run, accepts_overrides=True)


def build_config(args: argparse.Namespace) -> dict:
    from ..train import apply_overrides

    config = read_config_file(args.config) if args.config else {}
    data = dict(config.get("data", {}))
    if args.data:
        data["source"] = args.data
    if args.task:
        data["task"] = args.task
    if "source" not in data:
        raise CliError("no data given: pass --data NAME_OR_PATH (see lstmlite data list)")
    config["data"] = data
    return apply_overrides(config, parse_overrides(args.overrides))


def _check_nproc_batch(config: dict, nproc: int) -> None:
    """Refuse, once and before any process starts, a global batch that ``nproc`` processes
    cannot split evenly. The data are loaded for it: the default batch is theirs
    (:func:`lstmlite.train.default_train_config`: 16 or 8 on a small training split, 64
    on a large one), and a count that divides TrainConfig's 32 but not the data's would
    otherwise be refused by each process, one line per process."""
    from ..train.run import resolve_config

    data, _, train = resolve_config(config)  # errors in the config or the data: one line here, too
    if train.batch_size % nproc == 0:
        return
    default = "" if "batch_size" in config.get("train", {}) else \
        f" (the default for a training split of {len(data.train):,} sequences)"
    raise CliError(f"train.batch_size={train.batch_size}{default} is not a multiple of --nproc {nproc} (it is the "
                   f"global batch, split evenly over the processes): choose a multiple of {nproc}")


#: Exit status after Ctrl-C: the shell's 128 + SIGINT, as for every other command.
EXIT_INTERRUPTED = 130


def _interrupted_line(args: argparse.Namespace, started: float) -> str:
    """What ``lstmlite train`` prints after Ctrl-C: ``interrupted``, and how to continue
    when --out holds a checkpoint of this run, the command given again with --resume
    (without --force, which would start over).

    A checkpoint is this run's unless --force was replacing an older run whose
    checkpoints were not removed yet (written before ``started``); a folder with a
    config.json is finished, or replaced part way, and is not resumed.

    Example::

        _interrupted_line(args, started)
        # 'interrupted after epoch 28 of 400 (saved in runs/jv/checkpoints); to continue, run the same command with
        #  --resume: lstmlite train --data japanese_vowels --out runs/jv --resume'
    """
    out = Path(args.out)
    meta_path = out / "checkpoints" / "last.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        fresh = not args.force or meta_path.stat().st_mtime >= started
    except (OSError, ValueError):
        meta, fresh = None, False
    if not isinstance(meta, dict) or not fresh or (out / "config.json").exists():
        return "interrupted"
    argv = [a for a in getattr(args, "argv", None) or [] if a != "--force"]
    command = "lstmlite " + shlex.join(argv + ([] if "--resume" in argv else ["--resume"])) if argv else \
        "lstmlite train ... --resume"
    epochs = ((meta.get("config") or {}).get("train") or {}).get("epochs")
    at = f" after epoch {meta.get('epoch')}" + (f" of {epochs}" if epochs else "") if meta.get("epoch") else ""
    return (f"interrupted{at} (saved in {meta_path.parent}); to continue, run the same command with --resume: "
            f"{command}")


def run(args: argparse.Namespace) -> int:
    from ..train import distributed as D

    started = time.time()
    try:
        return _run(args)
    except KeyboardInterrupt:
        if D.env_world_size() > 1:
            raise  # one of torchrun's processes: its launcher (--nproc) says how to continue
        # on a line of its own (the trainer has closed its bar), and never as an error
        print(_interrupted_line(args, started), file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    from ..train import fit

    config = build_config(args)
    if args.nproc != 1:
        if args.nproc > 1:
            _check_nproc_batch(config, args.nproc)
        return launch_nproc(args)
    # the training options the data chose, and why (stderr: --json keeps stdout for the metrics)
    result = fit(config, args.out, resume=args.resume, progress=show_progress(args), overwrite=args.force,
                 on_defaults=lambda line: print(line, file=sys.stderr))
    if is_other_rank():
        return 0  # under torchrun rank 0 prints the metrics
    if args.json:
        print(json.dumps({**result.metrics, "run_dir": str(result.path)}, indent=2, default=str))
        return 0
    print_metrics(result.metrics)
    print(f"run dir: {result.path}")
    return 0
