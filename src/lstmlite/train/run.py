"""From a data spec and a config to a finished run dir: ``fit`` and ``evaluate_run``.

A run config has three sections, each overridable with ``--section.key=value``:

    {"data": DataSpec fields, "model": model constructor fields, "train": TrainConfig fields}

Sizes the data decide (input features, vocabulary, classes, horizon) are filled in
from the loaded data, so a config never has to repeat them.

Example:
    >>> run = fit({"data": {"source": "japanese_vowels"}, "train": {"epochs": 2}}, "runs/jv")  # doctest: +SKIP
    >>> run.metrics["metric_name"], run.metrics["metric"]                                      # doctest: +SKIP
    ('accuracy', 0.95)
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..io import Run, check_out_dir, load_run, nonzero_params, save_run
from ..nn.models import build_model
from . import distributed as D
from .trainer import TrainConfig, evaluate, primary_metric_name, require_rows, train

__all__ = ["fit", "evaluate_run", "default_model_config", "default_train_config", "default_train_note",
           "split_time_steps", "resolve_config", "model_metrics", "apply_overrides", "load_run_data"]

log = logging.getLogger(__name__)

TASK_TO_KIND = {"classify": "classifier", "lm": "lm", "forecast": "forecaster", "tag": "tagger", "ctc": "tagger",
                "seq2seq": "seq2seq"}


def default_model_config(data: Any) -> dict[str, Any]:
    """A sensible model for the data: small LSTMs for sensors, the reference text model
    (Embedding(10000, 128) → LSTM(128) → Dense) for text, 2×256 for char LMs."""
    if data.task == "classify" and data.vocab is not None:
        return {"cell": "lstm", "embed_dim": 128, "hidden_size": 128}
    if data.task == "classify":
        return {"cell": "lstm", "hidden_size": 64}
    if data.task == "lm":
        return {"cell": "lstm", "embed_dim": 64, "hidden_size": 256, "num_layers": 2}
    if data.task == "tag":
        return {"cell": "lstm", "embed_dim": 64, "hidden_size": 64}
    if data.task == "seq2seq":
        # char-level text normalization: a small bidirectional encoder, Luong attention
        return {"cell": "lstm", "embed_dim": 32, "hidden_size": 64, "bidirectional": True, "attention": "luong"}
    if data.task == "ctc":
        # unidirectional, so the native runtime can stream it frame by frame
        return {"cell": "lstm", "hidden_size": 96}
    return {"cell": "lstm", "hidden_size": 32}


#: A training split this small (fewer than four of TrainConfig's batches of 32) makes one to
#: three optimizer steps a pass, so TrainConfig's 30 epochs and patience 10 stop long before
#: the model has learnt: `lstmlite train --data basic_motions` (32 series) scored 0.20, below
#: chance; `--data airline` (81 windows) lost to the seasonal naive forecast (1.20 times its MAE).
SMALL_SPLIT = 128
#: Training options for a small split: bench_baselines' settings for airline and
#: basic_motions (batch 8 there, for fewer than 64 sequences). At most 8 steps a pass,
#: 200 epochs are at most 1,600 optimizer steps; patience 40 lets the validation metric
#: wander on a few series without stopping the run.
SMALL_SPLIT_TRAIN: dict[str, Any] = {"batch_size": 16, "lr": 3e-3, "epochs": 200, "patience": 40}
#: Time steps (training sequences times their lengths, summed over the passes) a default
#: run trains on at most. TrainConfig's 30 passes over tinyshakespeare's 8,923 windows of
#: 100 characters (892,300 time steps a pass) are 8,370 steps of batch 32 through the
#: default 2x256 LSTM: hours on a 2-core laptop. A split of more than a 30th of this
#: (66,666 time steps) trains for ``LARGE_SPLIT_TIME_STEPS // its time steps`` passes
#: instead (at least one): 2 on tinyshakespeare.
LARGE_SPLIT_TIME_STEPS = 2_000_000
#: Training options for a large split, besides its epochs: bench_baselines' language-model
#: settings (its 4 passes reached well below the unigram entropy), larger steps at a higher
#: rate, so that the few passes still learn; the cosine schedule (TrainConfig's) then
#: anneals over them.
LARGE_SPLIT_TRAIN: dict[str, Any] = {"batch_size": 64, "lr": 3e-3}


def split_time_steps(split: Any) -> int:
    """Time steps in a data split: its sequences' lengths summed (padding not counted),
    or rows times the padded length where the split records no lengths."""
    if split.lengths is not None:
        return int(np.asarray(split.lengths).sum())
    steps = int(split.x.shape[1]) if split.x.ndim >= 2 else 1
    return len(split) * steps


def _default_train(data: Any) -> tuple[dict[str, Any], str]:
    """The rule behind :func:`default_train_config`: the options and why (``""``: none)."""
    n = len(data.train)
    if n < SMALL_SPLIT:
        options = {**SMALL_SPLIT_TRAIN, "batch_size": 8 if n < SMALL_SPLIT // 2 else 16}
        return options, (f"a small training split ({n} sequences, under {SMALL_SPLIT}): more passes, "
                         f"smaller batches")
    steps = split_time_steps(data.train)
    general = TrainConfig().epochs
    epochs = max(1, LARGE_SPLIT_TIME_STEPS // max(steps, 1))
    if epochs >= general:
        return {}, ""
    why = (f"a large training split ({n:,} sequences, {steps:,} time steps): {general} passes would be "
           f"{general * steps:,} time steps, a default run trains on at most {LARGE_SPLIT_TIME_STEPS:,}")
    return {**LARGE_SPLIT_TRAIN, "epochs": int(epochs)}, why


def default_train_config(data: Any) -> dict[str, Any]:
    """Training options the data call for, under the user's own (``{}``: TrainConfig's).

    A training split of fewer than 128 sequences (``SMALL_SPLIT``) trains with batch 16
    (8 under 64 sequences), lr 3e-3, 200 epochs and patience 40 (``SMALL_SPLIT_TRAIN``).
    A large one, whose 30 passes would be more than 2,000,000 time steps
    (``LARGE_SPLIT_TIME_STEPS``; time steps are the sequences' lengths summed, see
    :func:`split_time_steps`), trains for as many passes as that budget holds (at least
    one) with batch 64 and lr 3e-3 (``LARGE_SPLIT_TRAIN``), cosine-annealed over them.
    Any other split: TrainConfig's defaults.

    Example (airline's 81 training windows; tinyshakespeare's 8,923 windows of 100
    characters)::

        default_train_config(load_data(DataSpec(source="airline", task="forecast")))
        # {'batch_size': 16, 'lr': 0.003, 'epochs': 200, 'patience': 40}
        default_train_config(load_data(DataSpec(source="input.txt", task="lm")))
        # {'batch_size': 64, 'lr': 0.003, 'epochs': 2}
    """
    return _default_train(data)[0]


def default_train_note(data: Any, given: dict[str, Any] | None = None) -> str | None:
    """One line naming the training options :func:`default_train_config` chose for ``data``
    and why, leaving out those the user set in ``given`` (the config's train section);
    None when it chose none that stand.

    Example::

        default_train_note(shakespeare, {"epochs": 5})
        # 'train defaults for this data: batch_size=64, lr=0.003 (a large training split (...'
    """
    options, why = _default_train(data)
    chosen = {k: v for k, v in options.items() if k not in (given or {})}
    if not chosen:
        return None
    listed = ", ".join(f"{k}={v}" for k, v in chosen.items())
    return f"train defaults for this data: {listed} ({why}; set train.KEY to choose otherwise)"


def _fill_data_sizes(model_config: dict[str, Any], data: Any) -> dict[str, Any]:
    config = {"kind": TASK_TO_KIND[data.task], **model_config}
    if data.task == "seq2seq":
        config["vocab_size"] = len(data.vocab)
        config.pop("input_size", None)
        config.setdefault("max_target_len", int(data.stats.get("max_target_len", 64)))
        return config
    if data.vocab is not None:
        config["vocab_size"] = len(data.vocab)
        config.setdefault("embed_dim", 128)
        config["input_size"] = 0
    else:
        config["input_size"] = data.input_size
        config.pop("vocab_size", None)
        config.pop("embed_dim", None)
    if data.task in ("classify", "tag", "ctc"):
        config["n_classes"] = data.n_classes
    if data.task == "forecast":
        config["horizon"] = int(data.train.y.shape[1])
    if data.task == "lm":
        config.pop("input_size", None)
    return config


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply ``{"train.epochs": 5, "model.hidden_size": 32}`` onto a sectioned config."""
    config = copy.deepcopy(config)
    for dotted, value in overrides.items():
        if "." not in dotted:
            raise ValueError(f"override {dotted!r} must name a section: data.KEY, model.KEY or train.KEY")
        section, key = dotted.split(".", 1)
        if section not in ("data", "model", "train"):
            raise ValueError(f"unknown config section {section!r} in {dotted!r}; use data, model or train")
        config.setdefault(section, {})[key] = value
    return config


def resolve_config(config: dict[str, Any]):
    """Validate a sectioned config and load its data. Returns (data, model_cfg, train_cfg)."""
    from ..data import DataSpec, load_data

    unknown = set(config) - {"data", "model", "train"}
    if unknown:
        raise ValueError(f"unknown config section(s) {sorted(unknown)}; use data, model and train")
    if "source" not in config.get("data", {}):
        raise ValueError("the config names no data: set data.source (a built-in name or a file path)")
    spec = DataSpec.from_dict(config["data"])
    data = load_data(spec)
    model_config = {**default_model_config(data), **config.get("model", {})}
    train_config = TrainConfig.from_dict({**default_train_config(data), **config.get("train", {})})
    return data, _fill_data_sizes(model_config, data), train_config


def model_metrics(model: nn.Module) -> dict[str, Any]:
    """params, nonzero_params, size_bytes, macs_per_step and size_basis.

    ``size_bytes`` is the byte count of the .lsl file ``lstmlite export --format lsl``
    writes for the model and ``macs_per_step`` what the native runtime executes per
    step (see :mod:`lstmlite.export.size`); ``size_basis`` is ``"lsl"``, or
    ``"estimate"`` for a model the runtime cannot run (then the compression storage
    estimate and the model's own MAC count).
    """
    from ..export.size import account

    deployed = account(model)
    return {
        "params": int(model.params()) if hasattr(model, "params") else int(sum(p.numel() for p in model.parameters())),
        "nonzero_params": nonzero_params(model),
        "size_bytes": deployed.size_bytes,
        "macs_per_step": deployed.macs_per_step,
        "size_basis": deployed.basis,
    }


def _metrics_json(model: nn.Module, data: Any, test: dict[str, float] | None, val: dict[str, float]) -> dict[str, Any]:
    """metrics.json's keys; ``test`` None (no test split): ``metric`` null, ``test`` empty."""
    name = primary_metric_name(data)
    return {
        "task": data.task,
        "dataset": data.name,
        "metric_name": name,
        "metric": None if test is None else test[name],
        **model_metrics(model),
        "test": test or {},
        "val": val,
    }


def fit(config: dict[str, Any], out: str | Path, resume: bool = False, progress: bool = True,
        overwrite: bool = False, on_defaults: Callable[[str], None] | None = None) -> Run:
    """Train a model as ``config`` says and write the run dir ``out``.

    Args:
        config: ``{"data": {...}, "model": {...}, "train": {...}}`` (see module doc).
        out: the run dir to create (must not already hold a run, unless ``resume``).
        resume: continue an interrupted run from ``out/checkpoints``.
        overwrite: replace a run dir of ours at ``out`` (the CLI's ``--force``); once the
            config and data have loaded, its manifest and checkpoints are removed, so it
            reads as unfinished until the new run is saved. Folders holding files
            lstmlite did not write are refused all the same.
        on_defaults: called (by rank 0, before training) with :func:`default_train_note`'s
            line when the data chose training options the config leaves unset (the CLI
            prints it); None: the line is logged at INFO.

    Returns:
        the finished :class:`lstmlite.io.Run` (model holds the best validation weights;
        ``metrics`` are on the test split).

    Under torchrun (``WORLD_SIZE`` > 1) every process calls this: it joins the process
    group, trains with DDP (see :mod:`lstmlite.train.distributed`), and rank 0 alone
    checks ``out``, evaluates the test split and writes the run dir; every rank returns
    the same metrics.
    """
    device = str((config.get("train") or {}).get("device", "auto"))
    D.join_process_group(device)
    with D.lockstep():
        return _fit(config, Path(out), resume, progress, overwrite, on_defaults)


def _data_sha256(data: Any) -> str:
    """SHA-256 of what training reads: every split's arrays, the classes, the vocabulary."""
    import hashlib
    import json

    import numpy as np

    h = hashlib.sha256()
    for name, split in data.splits.items():
        for array in (split.x, split.y, split.lengths):
            array = np.ascontiguousarray(array)
            h.update(f"{name} {array.dtype} {array.shape}".encode())
            h.update(array.tobytes())
    h.update(json.dumps([list(data.class_names), data.vocab.tokens if data.vocab is not None else None]).encode())
    return h.hexdigest()


def _checkpoint_fingerprint(out: Path) -> dict[str, Any] | None:
    """The fingerprint an interrupted run's last checkpoint recorded, if it can be read
    (a missing or broken one is reported by the checkpoint loader itself)."""
    import json

    from .checkpoint import CHECKPOINT_VERSION, META_FILE

    try:
        meta = json.loads((out / "checkpoints" / META_FILE).read_text(encoding="utf-8"))
        config = meta.get("config") if meta.get("checkpoint_version") == CHECKPOINT_VERSION else None
    except (OSError, ValueError, AttributeError):
        return None
    return config if isinstance(config, dict) else None


def _check_fit_out(out: Path, resume: bool, replace: bool) -> None:
    if (out / "config.json").exists() and not replace:
        raise FileExistsError(f"{out}: a finished run dir already exists; choose another --out, or --force to "
                              f"replace it")
    check_out_dir(out, overwrite=replace)  # before any epoch: a folder of someone else's files is refused now
    if out.exists() and not resume and not replace and (out / "checkpoints").exists():
        raise FileExistsError(f"{out}: holds an interrupted run; pass --resume to continue it, or --force to "
                              f"start over")


def _fit(config: dict[str, Any], out: Path, resume: bool, progress: bool, overwrite: bool,
         on_defaults: Callable[[str], None] | None = None) -> Run:
    replace = overwrite and not resume
    D.on_main(lambda: _check_fit_out(out, resume, replace))  # rank 0 looks; all ranks stop on its error
    data, model_config, train_config = resolve_config(config)
    note = default_train_note(data, config.get("train"))
    if note is not None and D.is_main():
        (on_defaults or log.info)(note)
    # before any epoch, not after the last one: the run dir reports the test split, unless
    # test_fraction=0 asked for none (bench_baselines' lm case reports val)
    no_test = len(data.test) == 0 and data.spec.test_path is None and data.spec.test_fraction == 0
    require_rows(data, ("train", "val") if no_test else ("train", "val", "test"),
                 "training picks its epoch on val and reports test: give more data or larger "
                 "--data.val_fraction / --data.test_fraction")
    if replace and out.exists() and D.is_main():
        # the old run is replaced from here on: unfinished (no manifest), no checkpoints to resume
        (out / "manifest.json").unlink(missing_ok=True)
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    torch.manual_seed(train_config.seed)
    model = build_model(model_config)
    if D.is_main():
        log.info("training %s on %s: %d parameters", model_config["kind"], data.name, model.params())
    # A resumed run must be the same run: same data, model and training options.
    fingerprint = {"data": data.spec.to_dict(), "model": model_config, "train": train_config.to_dict()}
    # The spec names the file, not its contents: a file edited between the interruption and
    # --resume (labels fixed, rows added at the same vocabulary size) would otherwise
    # continue the run on other data, and pick its best epoch across two val sets.
    digest = _data_sha256(data)
    recorded = _checkpoint_fingerprint(out) if resume else None
    if recorded is None or "data_sha256" in recorded:  # checkpoints of older versions have none
        fingerprint["data_sha256"] = digest
    if recorded is not None:
        from .checkpoint import META_FILE, CheckpointError, refuse_other_options

        meta_path = out / "checkpoints" / META_FILE
        # The options first: one changed since the interruption (a forgotten --config
        # setting data.val_fraction) changes the arrays too, and it is what to name; the
        # arrays alone differ only when the data did (a file edited in between).
        refuse_other_options(meta_path, {k: v for k, v in recorded.items() if k != "data_sha256"},
                             {k: v for k, v in fingerprint.items() if k != "data_sha256"})
        if recorded.get("data_sha256", digest) != digest:
            raise CheckpointError(f"{meta_path}: --resume on other data than the interrupted run ({data.name} has "
                                  f"changed since: its arrays differ); resume on the data as it was, or start a "
                                  f"new --out")
    result = train(model, data, train_config, out_dir=out, resume=resume, progress=progress,
                   fingerprint=fingerprint)
    # the epochs an interrupted run did before --resume included (the checkpoint carries
    # their time), not only this process's part
    seconds = result.extra["train_seconds"]
    model.cpu()
    run_config = {
        "task": data.task,
        "data": data.spec.to_dict(),
        "train": train_config.to_dict(),
        "stats": data.stats,
        "class_names": list(data.class_names),
    }
    vocab = data.vocab.to_dict() if data.vocab is not None else None

    def finish() -> dict[str, Any]:
        test = None
        if no_test:  # a number measured on nothing would read as a perfect score
            log.warning("%s: no test split (test_fraction=0): metrics.json has no test metric (metric: null)",
                        data.name)
        else:
            test = evaluate(model, data, data.test, train_config.eval_batch_size, torch.device("cpu"))
        val = evaluate(model, data, data.val, train_config.eval_batch_size, torch.device("cpu"))
        metrics = {**_metrics_json(model, data, test, val), "best_epoch": result.best_epoch,
                   "train_seconds": round(seconds, 2)}
        save_run(out, model, run_config, metrics=metrics, history=result.history, vocab=vocab, overwrite=True)
        return metrics

    metrics = D.on_main(finish)  # the run dir is written once, by rank 0
    if D.is_main():
        return load_run(out)
    # other ranks: the same run, from memory (--out need not be shared for this)
    return Run(path=out, model=model.eval(), config=run_config, metrics=metrics, history=result.history,
               vocab=vocab)


def load_run_data(run: Run, source: str | None = None):
    """The data a run was trained on, or ``source`` prepared as the run's data was.

    Another source is re-expressed in the run's terms: token ids through the run's
    vocabulary (unknown words become ``<unk>``), labels in the run's class order, and
    features/targets with the run's normalisation, so the model sees what it learned.
    """
    from ..data import DataError, DataFileNotFoundError, DataSpec, Vocabulary, load_data
    from ..io import CONFIG_FILE, RunDirError

    if not isinstance(run.config.get("data"), dict):
        # an imported model: it was trained elsewhere, so only the user knows its data
        if source is None:
            raise RunDirError(f"{run.path / CONFIG_FILE}: the run records no data (an imported model?); "
                              f"pass --data NAME_OR_PATH prepared as the model was trained")
        spec = {"task": run.config.get("task", "classify")}
    else:
        spec = dict(run.config["data"])
    if source is None:
        try:
            return load_data(DataSpec.from_dict(spec))
        except DataFileNotFoundError as err:
            # the path is the one given to train, relative to the folder it ran in
            raise DataFileNotFoundError(f"{err} (the data {run.path} was trained on: run from the folder train ran "
                                        f"in, put the file back, or pass --data PATH)") from None
    trained_on, official_test = spec.get("source"), spec.get("test_path")
    if official_test and isinstance(trained_on, str) and _same_file(source, trained_on):
        # without its test file the training file is carved into train/val/test afresh:
        # its "test" rows were training rows, and the score would be inflated silently
        raise DataError(f"{source}: the file this run was trained on (its test file: {official_test}); as --data "
                        f"its val and test rows would be rows the model trained on: evaluate without --data")
    spec["source"] = source
    for key in ("format", "test_path"):
        spec.pop(key, None)
    # Encode with the run's vocabulary from the start: a vocabulary built from the other
    # file's own training part would turn every word the run knows but that part lacks
    # (or has fewer than min_freq times) into <unk>, and no remapping can undo that.
    vocab = Vocabulary.from_dict(run.vocab) if run.vocab is not None else None
    # Likewise the run's classes: the other file may hold one class only, or a tag only
    # in the rows its own split makes val/test; the run's label set covers both.
    task = run.config.get("task", spec.get("task"))
    classes = list(run.config.get("class_names") or []) or None
    if task not in ("classify", "tag"):
        classes = None  # ctc's are the characters of the transcripts, realigned below
    try:
        data = load_data(DataSpec.from_dict(spec), vocab=vocab, class_names=classes)
    except DataError as err:
        # advice naming data options ("use a smaller seq_len or a larger fraction") asks
        # for what --data FILE cannot change: they are the run's, and the error says so
        if not any(word in str(err) for word in ("seq_len", "horizon", "fraction")):
            raise
        keys = {"lm": ("seq_len",), "forecast": ("seq_len", "horizon")}.get(task, ()) + ("val_fraction", "test_fraction")
        shown = {k: spec[k] for k in keys if spec.get(k) is not None}
        raise DataError(f"{err} (--data reads {source} with the run's own data options"
                        f"{': ' + ', '.join(f'{k}={v}' for k, v in shown.items()) if shown else ''}; give a file "
                        "that fits them)") from None
    return _align_to_run(data, run)


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name the same existing file."""
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _align_to_run(data: Any, run: Run) -> Any:
    import numpy as np

    from ..data import DataError, Vocabulary

    run_stats = run.config.get("stats") or {}
    # the features per step the model reads; checked here, where re-normalising with the
    # run's statistics would otherwise fail as a bare NumPy broadcast error
    features = len(run_stats["mean"]) if "mean" in run_stats else (run.config.get("model") or {}).get("input_size")
    if data.vocab is None and features and data.input_size != features:
        raise DataError(f"{data.name}: {data.input_size} feature(s) per step, but the run was trained on {features}; "
                        f"evaluate on data with the run's features")
    if data.vocab is not None and run.vocab is None:
        from ..io import VOCAB_FILE, RunDirError

        raise RunDirError(f"{run.path / VOCAB_FILE}: missing, so the text of {data.name} cannot be turned into the "
                          f"token ids this model was trained on; import or train the run with its vocabulary")
    if data.vocab is not None and run.vocab is not None:
        run_vocab = Vocabulary.from_dict(run.vocab)
        remap = np.array([run_vocab.id(token) for token in data.vocab.tokens], dtype=np.int64)
        for split in data.splits.values():
            split.x = remap[split.x]
            if data.task in ("lm", "seq2seq"):  # targets are tokens of the same vocabulary
                split.y = remap[split.y]
        data.vocab = run_vocab
    run_classes = list(run.config.get("class_names") or [])
    if data.task in ("tag", "ctc") and run_classes and list(data.class_names) != run_classes:
        _realign_labels(data, run_classes)
    if data.task == "classify" and run_classes and list(data.class_names) != run_classes:
        missing = sorted(set(data.class_names) - set(run_classes))
        if missing:
            raise ValueError(f"{data.name}: labels {missing[:5]} were not seen when the run was trained; evaluate on "
                             f"data labelled with the run's classes ({', '.join(map(str, run_classes[:5]))}"
                             f"{', ...' if len(run_classes) > 5 else ''})")
        order = np.array([run_classes.index(name) for name in data.class_names], dtype=np.int64)
        for split in data.splits.values():
            split.y = order[split.y]
        data.class_names, data.n_classes = run_classes, len(run_classes)
    if data.vocab is None and "mean" in run_stats and "mean" in data.stats:
        old_mean, old_std = np.asarray(data.stats["mean"]), np.asarray(data.stats["std"])
        new_mean, new_std = np.asarray(run_stats["mean"]), np.asarray(run_stats["std"])
        for split in data.splits.values():
            valid = (np.arange(split.x.shape[1])[None, :] < split.lengths[:, None])[..., None]
            raw = split.x * old_std + old_mean
            split.x = np.where(valid, (raw - new_mean) / new_std, 0.0).astype(split.x.dtype)
            if data.task == "forecast":
                t_old = (data.stats["target_mean"], data.stats["target_std"])
                t_new = (run_stats["target_mean"], run_stats["target_std"])
                split.y = ((split.y * t_old[1] + t_old[0] - t_new[0]) / t_new[1]).astype(split.y.dtype)
                if split.naive is not None:
                    split.naive = ((split.naive * t_old[1] + t_old[0] - t_new[0]) / t_new[1]).astype(
                        split.naive.dtype)
        data.stats = {**data.stats, **{k: v for k, v in run_stats.items()
                                       if k in ("mean", "std", "target_mean", "target_std")}}
    return data


def _realign_labels(data: Any, run_classes: list[str]) -> None:
    """Per-step labels (tag) or transcript characters (ctc) of another file in the run's
    label order, padding kept; a label the run never saw is an error."""
    import numpy as np

    from .sequence import PAD_LABEL

    missing = sorted(set(data.class_names) - set(run_classes))
    if missing:
        raise ValueError(f"{data.name}: labels {missing[:5]} were not seen when the run was trained")
    order = np.array([run_classes.index(c) for c in data.class_names], dtype=np.int64)
    for split in data.splits.values():
        split.y = np.where(split.y == PAD_LABEL, PAD_LABEL, order[split.y.clip(min=0)])
    data.class_names, data.n_classes = list(run_classes), len(run_classes)


def evaluate_run(run_dir: str | Path, source: str | None = None, split: str = "test",
                 decoder: str = "greedy", beam: int | None = None) -> dict[str, Any]:
    """Re-evaluate a run dir on its data (or on ``source``); returns metrics.json-style keys.

    ``decoder``: ctc and seq2seq runs, ``greedy`` (as training reports) or ``beam``:
    ctc prefix beam search (:func:`lstmlite.ctc.beam_decode`), width ``beam`` (default
    8); seq2seq beam search (:func:`lstmlite.seq2seq.beam_search`), width ``beam``
    (default 4).
    """
    run = load_run(run_dir)
    data = load_run_data(run, source)
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    require_rows(data, (split,), "evaluate another --split, or on more data")
    if decoder != "greedy" and data.task not in ("ctc", "seq2seq"):
        raise ValueError(f"decoder={decoder!r} applies to ctc and seq2seq runs only")
    if decoder != "greedy" and data.task == "seq2seq":
        from .seq2seq import evaluate_seq2seq

        beam = beam or 4
        results = {**evaluate_seq2seq(run.model, data, getattr(data, split), decoder=decoder, beam=beam),
                   "decoder": decoder, "beam": beam}
    elif decoder != "greedy":
        from .sequence import evaluate_ctc
        from .trainer import predict

        part = getattr(data, split)
        logits = predict(run.model, data, part, device=torch.device("cpu"))
        beam = beam or 8
        results = {**evaluate_ctc(logits, part, list(data.class_names), decoder=decoder, beam=beam),
                   "decoder": decoder, "beam": beam}
    else:
        results = evaluate(run.model, data, getattr(data, split), device=torch.device("cpu"))
    name = primary_metric_name(data)
    return {"task": data.task, "dataset": data.name, "split": split, "metric_name": name,
            "metric": results[name], **model_metrics(run.model), split: results}
