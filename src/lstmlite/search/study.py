"""The Optuna study: multi-objective search under hard budgets (DESIGN decision 7).

Objectives: validation metric (maximised; minimised for error-like metrics), .lsl
bytes, latency (µs per step) and RAM (bytes), all but the metric minimised. Budgets
are constraints (Optuna's ``constraints_func``: a value ≤ 0 is feasible). Storage is a
SQLite file in the output dir by default, or any database URL that workers on many
machines share. A killed worker's trial is noticed by the heartbeat and re-queued.

Example:
    >>> result = search("japanese_vowels", "classify", budget="size=8KB", trials=3, out="runs/s")  # doctest: +SKIP
    >>> result["best"]["size_bytes"] <= 8192                                                     # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from ..io import read_json, write_json
from ..train.metrics import higher_is_better, primary_metric
from .objectives import BUDGET_KEYS, parse_budget
from .space import SearchSpace, load_space
from .pruning import dominated_at_epoch, first_check_epoch, over_budget
from .trial import Pruned, run_trial

__all__ = ["search", "open_study", "pareto_records", "make_sampler", "best_key", "SAMPLERS", "STUDY_NAME",
           "TrialsFailed", "MAX_FAILURES_IN_A_ROW"]

log = logging.getLogger(__name__)

STUDY_NAME = "lstmlite-search"
OBJECTIVES = ("metric", "size_bytes", "latency_us", "ram_bytes")


def _storage(url: str | None, out: Path, heartbeat: int, attempts: int = 5):
    import time
    import warnings

    import optuna
    from optuna.storages import RDBStorage
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    url = url or f"sqlite:///{(out / 'study.db').resolve()}"
    with warnings.catch_warnings():
        # heartbeats are "experimental" in Optuna; the retry callback was renamed in 4.9.
        warnings.simplefilter("ignore")
        retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        if retry_cls is not None:
            retry = {"heartbeat_stale_trial_callback": _RetryAfresh(retry_cls(max_retry=2))}
        else:
            retry = {"failed_trial_callback": _RetryAfresh(optuna.storages.RetryFailedTrialCallback(max_retry=2))}
        for attempt in range(attempts - 1):
            try:
                return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat, **retry)
            except (IntegrityError, OperationalError, ProgrammingError) as exc:
                # Workers started together on a new database all create Optuna's tables:
                # the losers of that race fail on a table that "already exists"
                # (PostgreSQL's ProgrammingError, SQLite's OperationalError) or on the schema
                # version's row the winner wrote first ("UNIQUE constraint failed:
                # alembic_version.version_num" on SQLite, a duplicate key of
                # "alembic_version_pkc" on PostgreSQL); once the winner has made them,
                # creating the storage again finds them.
                if not _schema_race(exc):
                    raise
                log.debug("storage schema being created by another worker; retrying (%s)", exc.orig)
                time.sleep(0.2 * (attempt + 1))
        return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=2 * heartbeat, **retry)


def _schema_race(exc: Exception) -> bool:
    """Whether ``exc``, raised creating an Optuna storage, is another worker creating the same
    new schema at the same moment (a table that already exists, or the schema version's row
    Optuna's alembic table already holds), which creating the storage again gets past."""
    text = str(exc)
    return "already exists" in text or "alembic_version" in text


class _RetryAfresh:
    """Optuna's retry of a dead worker's trial (``retry``), re-queued without the dead
    attempt's user attributes. Optuna copies them into the retry, so a retry kept the
    per-epoch scores (``val_epoch_N``) of epochs it never ran and, when the attempt died
    after recording its figures, its final metric, bytes and run dir: a retry pruned or
    failed early showed them in trials.json and the progress line as its own. The
    parameters and the retry history (system attributes) are kept."""

    def __init__(self, retry: Callable[[Any, Any], None]) -> None:
        self.retry = retry

    def __call__(self, study: Any, trial: Any) -> None:
        import copy

        fresh = copy.copy(trial)
        fresh.user_attrs = {}
        self.retry(study, fresh)


#: Samplers a study may use: multivariate TPE (the default: multi-objective and
#: budget-aware through ``constraints_func``), NSGA-II (constraint-aware too; it needs
#: several generations of 8 before it beats random points) and plain random sampling
#: (the baseline). benchmarks/bench_search.py measures the three at the same trial
#: budget and seeds: TPE's front had the highest hypervolume, hence the default.
SAMPLERS = ("tpe", "nsga2", "random")


def make_sampler(name: str, seed: int):
    """The Optuna sampler called ``name`` (one of :data:`SAMPLERS`), seeded."""
    import warnings

    import optuna

    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    with warnings.catch_warnings():
        # Optuna 5 prefers trial.set_constraint; constraints_func still works everywhere.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=_constraints, population_size=8)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, constraints_func=_constraints, n_startup_trials=8,
                                              multivariate=True)
        return optuna.samplers.RandomSampler(seed=seed)


def open_study(out: Path, storage: str | None, seed: int, metric_higher: bool = True, resume: bool = True,
               heartbeat: int = 10, sampler: str = "tpe"):
    """Create or load the study (directions: metric, bytes, latency, RAM)."""
    import optuna

    directions = ["maximize" if metric_higher else "minimize", "minimize", "minimize", "minimize"]
    return optuna.create_study(study_name=STUDY_NAME, storage=_storage(storage, out, heartbeat),
                               directions=directions, sampler=make_sampler(sampler, seed),
                               load_if_exists=resume)


def _constraints(trial: Any) -> list[float]:
    return list(trial.user_attrs.get("constraints", [0.0]))


def _metric_bar(study: Any) -> tuple[str, float] | None:
    """The study's bar on the validation metric, ``("below", floor)`` from its
    ``prune_below`` attribute for a metric where higher is better (accuracy) or
    ``("above", ceiling)`` from ``prune_above`` for an error (MSE, perplexity); None
    when neither is set. Why two names: a floor on an error would stop the best trials
    (those with the least error), so the attribute that does not fit the metric's
    direction is refused rather than applied."""
    higher = study.directions[0].name == "MAXIMIZE"
    right, wrong = ("prune_below", "prune_above") if higher else ("prune_above", "prune_below")
    if study.user_attrs.get(wrong) is not None:
        kind = "higher is better" if higher else "lower is better"
        raise ValueError(f"the study's {wrong!r} does not fit its metric ({kind}): set {right!r} instead")
    limit = study.user_attrs.get(right)
    return None if limit is None else ("below" if higher else "above", float(limit))


def _objective_factory(space: SearchSpace, data_config: dict[str, Any], out: Path, budget: dict[str, float],
                       seed: int, prune: bool = True, cap: int | None = None) -> Callable[[Any], tuple[float, ...]]:
    """The objective of one worker; ``cap``: the study's total of finished trials (see
    :func:`_check_slot`), None for no cap."""
    import optuna

    def objective(trial: "optuna.Trial") -> tuple[float, ...]:
        try:
            return attempt(trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:  # the search was stopped: trials.json says so, not a bare FAIL
            _record_error(trial, INTERRUPTED)
            raise
        except Exception as exc:
            # the cause, kept with the trial (trials.json, and the error when trials keep failing)
            _record_error(trial, f"{type(exc).__name__}: {exc}", over_cap=isinstance(exc, OverCap))
            raise

    def attempt(trial: "optuna.Trial") -> tuple[float, ...]:
        if cap is not None:
            _check_slot(trial.study, trial.number, cap)  # before sampling or training anything
        point = space.sample(trial)
        number = trial.number
        profile: dict[str, Any] = {}
        epochs = int(point.get("epochs", 4))

        def skip_if(measured: dict[str, Any]) -> str | None:
            # A point over the budget before training stays over it: not trained (see pruning.py).
            profile.update(measured)
            over = over_budget(measured, budget)
            return f"over budget before training ({', '.join(over)})" if over else None

        def report(epoch: int, value: float) -> None:
            trial.set_user_attr(f"val_epoch_{epoch}", value)
            try:
                bar = _metric_bar(trial.study)
            except ValueError:
                # a bar that does not fit the metric stops the search (this worker after this
                # trial; search() then raises it), not just the trial: optimize() would catch it
                try:
                    trial.study.stop()
                except RuntimeError:  # a trial asked for outside optimize(): nothing to stop
                    pass
                raise
            if bar is not None and epoch >= max(1, epochs // 2):
                side, limit = bar
                if (value < limit) if side == "below" else (value > limit):
                    raise Pruned(f"val metric {value:.3f} {side} {limit:.3f} at epoch {epoch}")
            if prune and profile and epoch >= first_check_epoch(epochs) and epoch < epochs:
                by = dominated_at_epoch(value, epoch, profile, _completed_records(trial.study),
                                        higher=trial.study.directions[0].name == "MAXIMIZE")
                if by is not None:
                    raise Pruned(f"dominated at epoch {epoch} by trial {by} (as small, as lean, as fast, "
                                 f"better at the same epoch)")

        run_dir = out / "trials" / f"{number:04d}"
        if run_dir.exists():  # left by a study started anew in an old --out: start clean
            shutil.rmtree(run_dir)  # (a retried trial has a new number; see _set_aside_runs)
        try:
            record = run_trial(point, data_config, run_dir, seed=seed + number, report=report,
                               skip_if=skip_if if prune else None)
        except Pruned as why:
            log.info("trial %d pruned: %s", number, why)
            raise optuna.TrialPruned(str(why)) from None
        cons = [record[key] - limit for name, limit in budget.items() for key in [BUDGET_KEYS[name]]]
        trial.set_user_attr("constraints", cons or [0.0])
        for key, value in record.items():
            if key != "point":
                trial.set_user_attr(key, value)
        trial.set_user_attr("feasible", all(c <= 0 for c in cons))
        return record["val_metric"], record["size_bytes"], record["latency_us"], record["ram_bytes"]

    return objective


def _record_error(trial: Any, error: str, over_cap: bool = False) -> None:
    """Keep why ``trial`` failed as its ``error`` attribute (and, ``over_cap``, the
    :data:`OVER_CAP` mark: no fault of the trial's, not a failure in a row), if the storage
    still takes it."""
    try:
        if over_cap:
            trial.set_user_attr(OVER_CAP, True)
        trial.set_user_attr("error", error)
    except Exception as lost:  # noqa: BLE001 - e.g. failed as stale by another worker meanwhile
        log.debug("trial %d's error not recorded: %s", trial.number, lost)


#: The ``error`` of a trial failed because the search was stopped (Ctrl-C, SIGTERM).
INTERRUPTED = "interrupted"


class _BriefInterrupts(logging.Filter):
    """Put on Optuna's logger of failed trials (``optuna.study._optimize``) while a worker
    optimises: a trial failed by KeyboardInterrupt (Ctrl-C, or a signal stopping the
    search) is logged as one line, ``trial N stopped: the search was interrupted``, rather
    than as Optuna's warning with the traceback of wherever the interrupt landed (in every
    worker, at every stop: nothing wrong to look at) and its ``Trial N failed with value
    None`` line after; one failed as past the cap (:class:`OverCap`, a worker's trial past
    ``trials``) is not logged at all. A trial failed by anything else keeps both, traceback
    included.
    Optuna writes the trial's number only into its message, hence it is read from there;
    should the wording change, an interrupt still loses its traceback."""

    _NUMBER = re.compile(r"Trial (\d+) failed")

    def __init__(self) -> None:
        super().__init__()
        self.stopped: set[str] = set()  # the numbers (as written) of the trials interrupted
        self.over_cap: set[str] = set()  # and of those failed as past the cap (not logged at all)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        number = self._NUMBER.match(message)
        if record.exc_info is not None and isinstance(record.exc_info[1], KeyboardInterrupt):
            record.msg = "trial %s stopped: the search was interrupted"
            record.args = (number.group(1) if number else "?",)
            record.exc_info = record.exc_text = None
            if number:
                self.stopped.add(number.group(1))
            return True
        if record.exc_info is not None and isinstance(record.exc_info[1], OverCap):
            # a trial a worker started past the cap, failed unrun on purpose: nothing went wrong
            if number:
                self.over_cap.add(number.group(1))
            return False
        return not (number and number.group(1) in self.stopped | self.over_cap and "failed with value" in message)


def _completed_records(study: Any) -> list[dict[str, Any]]:
    """What :func:`dominated_at_epoch` needs of every completed, trained trial."""
    from optuna.trial import TrialState

    records = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        if "size_bytes" not in a or a.get("skipped"):
            continue
        epochs = {k[len("val_epoch_"):]: v for k, v in a.items() if k.startswith("val_epoch_")}
        records.append({"trial": t.number, "size_bytes": a["size_bytes"], "ram_bytes": a["ram_bytes"],
                        "latency_us": a["latency_us"], "feasible": a.get("feasible", True),
                        "val_metric": a.get("val_metric"), "val_epochs": epochs})
    return records


#: The states a trial counts towards ``trials`` in (a failed trial is replaced).
COUNTED = ("COMPLETE", "PRUNED")


class OverCap(RuntimeError):
    """A trial asked for when the study's finished trials and those running before it
    already make its total: it is failed before anything is sampled or trained, with the
    user attribute :data:`OVER_CAP` set (see :func:`_failed_over_cap`)."""


#: The user attribute (True) of a trial failed as past the cap (:class:`OverCap`).
OVER_CAP = "over_cap"


def _failed_over_cap(trial: Any) -> bool:
    """Whether ``trial`` failed as past the cap (:class:`OverCap`): its :data:`OVER_CAP`
    attribute. Studies written before the attribute have only the recorded error, which
    starts with ``OverCap:``; that prefix is read as the fallback, so an old study is still
    read right."""
    if trial.user_attrs.get(OVER_CAP):
        return True
    return str(trial.user_attrs.get("error", "")).startswith(f"{OverCap.__name__}:")


def _counts(trials: list[Any], before: int | None = None) -> tuple[int, int]:
    """(complete or pruned trials, running trials) among a study's ``trials``
    (``study.get_trials()``); with ``before``, only the running trials numbered below it."""
    done = running = 0
    for t in trials:
        if t.state.name in COUNTED:
            done += 1
        elif t.state.name == "RUNNING" and (before is None or t.number < before):
            running += 1
    return done, running


#: Failed trials in a row after which a search stops (:class:`TrialsFailed`): a failed
#: trial is replaced, so one that fails every time would be replaced for ever.
MAX_FAILURES_IN_A_ROW = 10


class TrialsFailed(RuntimeError):
    """Raised by :func:`search` when :data:`MAX_FAILURES_IN_A_ROW` trials failed one after
    another; the message names the first one's error and where its run dir went."""


def _failures_in_a_row(trials: list[Any], first: int = 0) -> list[Any]:
    """The failed trials among a study's ``trials`` (``study.get_trials()``) numbered from
    ``first`` (this search's) after the last one that completed or was pruned, oldest
    first. Running and waiting trials are passed over, and so are those failed as past the
    cap (:class:`OverCap`: no fault of theirs)."""
    failed = []
    for t in sorted(trials, key=lambda t: t.number, reverse=True):
        if t.number < first or t.state.name in COUNTED:
            break
        if t.state.name == "FAIL" and not _failed_over_cap(t):
            failed.append(t)
    return failed[::-1]


def _failures_text(out: Path, failed: list[Any]) -> str:
    """What :class:`TrialsFailed` says: how many failed, the first one's error and run dir."""
    first = failed[0]
    cause = first.user_attrs.get("error") or "its worker stopped (no heartbeat; the process died)"
    run_dir = out / "trials" / f"{first.number:04d}{FAILED_SUFFIX}"
    wrote = f"what it wrote is in {run_dir}" if run_dir.is_dir() else "it wrote no run dir"
    return (f"search stopped: {len(failed)} trials in a row failed (trials {first.number} to {failed[-1].number}); "
            f"trial {first.number} failed with {cause}; {wrote}; the log above has each failure's traceback "
            f"and {out / 'trials.json'} each trial's error")


def _check_slot(study: Any, number: int, cap: int) -> None:
    """Raise :class:`OverCap` when trial ``number`` would take the study past ``cap``
    complete or pruned trials: those already finished plus those running that were asked
    for before it make ``cap``. Two workers that both found room (each read the count
    before the other asked for its trial) thus run one trial, not two: the later one
    yields (ordered by trial number, which the storage gives in the order trials are
    created)."""
    done, ahead = _counts(study.get_trials(deepcopy=False), before=number)
    if done + ahead >= cap:
        raise OverCap(f"trial {number} not run: the study holds {done} finished and {ahead} running trials "
                      f"of its {cap}")


#: What a failed trial's run dir is renamed to end with: ``trials/NNNN.failed``.
FAILED_SUFFIX = ".failed"
#: What a pruned trial's run dir is renamed to end with: ``trials/NNNN.pruned``.
PRUNED_SUFFIX = ".pruned"


def _set_aside_runs(out: Path, trials: list[Any]) -> list[Path]:
    """Rename the run dir of each failed or pruned trial among a study's ``trials``
    (``study.get_trials()``) found under
    ``out/trials`` from ``NNNN`` to ``NNNN.failed`` or ``NNNN.pruned``, with a log line
    (a warning for a failure); returns the new paths.

    A trial fails when its worker dies (its heartbeat goes stale: Optuna then re-queues its
    parameters as a trial with a *new* number) or when it raises; it is pruned when stopped
    as hopeless. Either way it may have written some or all of ``trials/NNNN/`` (a model
    saved before the failure or the stop, or half a run), which no report counts:
    trials.json says FAIL or PRUNED and names no run dir. Set aside, ``trials/NNNN/`` only
    ever holds a trial that completed. Safe with many workers at once (the one that
    renames first wins; the others find nothing to move)."""
    from optuna.trial import TrialState

    suffixes = {TrialState.FAIL: FAILED_SUFFIX, TrialState.PRUNED: PRUNED_SUFFIX}
    retried_as = {}
    for t in trials:
        history = t.system_attrs.get("retry_history")
        if history:
            retried_as[history[-1]] = t.number
    moved = []
    for t in trials:
        if t.state not in suffixes:
            continue
        run_dir = out / "trials" / f"{t.number:04d}"
        if not run_dir.is_dir():
            continue
        target = run_dir.with_name(run_dir.name + suffixes[t.state])
        try:
            if target.exists():  # from an older study in the same --out
                shutil.rmtree(target)
            run_dir.rename(target)
        except OSError as exc:  # another worker set it aside first
            log.debug("trial %d's run dir not set aside here: %s", t.number, exc)
            continue
        if t.state == TrialState.PRUNED:  # a search's ordinary business, not a fault
            log.info("trial %d pruned: what it wrote is set aside as %s, not a result", t.number, target)
        else:
            retry = f"; its parameters are retried as trial {retried_as[t.number]}" if t.number in retried_as else ""
            log.warning("trial %d failed: what it wrote is set aside as %s, not a result%s", t.number, target, retry)
        moved.append(target)
    return moved


def _wait_for_room(study: Any, cap: int, deadline: float | None = None, every_s: float = 1.0,
                   out: Path | None = None, first: int = 0) -> bool:
    """Whether this worker should start another trial: False once ``cap`` trials are
    complete or pruned (or past ``deadline``, a ``time.monotonic()`` value); True when the
    finished and running ones make fewer. Between the two (other workers' trials running
    would make ``cap``) it waits, so that a trial of theirs that fails, or whose worker
    dies (failed once its heartbeat is stale), is replaced here rather than the study
    ending short. False too once :data:`MAX_FAILURES_IN_A_ROW` trials numbered from
    ``first`` (this search's) failed in a row (:func:`_failures_in_a_row`; :func:`search`
    then raises :class:`TrialsFailed`). With ``out``, the run dirs of failed trials (stale
    ones failed here included) and pruned ones are set aside there (:func:`_set_aside_runs`)."""
    import time
    import warnings

    import optuna

    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)  # once a poll: a query of the (shared) storage
        if out is not None:
            _set_aside_runs(out, trials)
        done, running = _counts(trials)
        if done >= cap or (deadline is not None and time.monotonic() >= deadline):
            return False
        if len(_failures_in_a_row(trials, first)) >= MAX_FAILURES_IN_A_ROW:
            return False
        if done + running < cap:
            return True
        time.sleep(every_s)


def _worker(args: dict[str, Any]) -> None:
    """One worker process (or the only worker, in the caller's): load the study and
    optimise until the total trial cap of complete or pruned trials.

    Optuna's ``MaxTrialsCallback`` counts the finished trials after each one, so two
    workers that both see one trial missing both start one (a study of ``--trials 2`` on
    two workers ended with 3 complete): here a worker starts a trial only when the
    finished trials plus those running make fewer than the cap (:func:`_wait_for_room`),
    and a trial that still slipped past (two workers reading the count at once) fails
    before it runs (:func:`_check_slot`). ``optimize`` gets no ``n_trials`` (it would count
    failed trials: one worker with ``--trials 2`` and a trial that failed ended with one
    complete); :func:`_wait_for_room` stops it, at the cap or after
    :data:`MAX_FAILURES_IN_A_ROW` failures in a row (``args["first"]``: the study's first
    trial number of this search)."""
    import time

    import optuna

    # a spawned worker starts from Optuna's default (INFO: a line per trial, beside the caller's
    # own): it logs as much as the process that started the search asked for
    optuna.logging.set_verbosity(args.get("optuna_verbosity", optuna.logging.get_verbosity()))
    out = Path(args["out"])
    study = open_study(out, args["storage"], args["seed"] + args["worker"], args["higher"], resume=True,
                       heartbeat=args["heartbeat"], sampler=args["sampler"])
    cap = args["trials"]
    objective = _objective_factory(load_space(args["space"]), args["data_config"], out, args["budget"],
                                   args["seed"], prune=args["prune"], cap=cap)
    deadline = None if args["timeout"] is None else time.monotonic() + args["timeout"]
    first = int(args.get("first", 0))
    if not _wait_for_room(study, cap, deadline, out=out, first=first):
        return

    def room(study: Any, trial: Any) -> None:
        if not _wait_for_room(study, cap, deadline, out=out, first=first):
            study.stop()

    callbacks = ([args["on_trial"]] if args.get("on_trial") else []) + [room]
    # Any Exception a trial raises fails that trial, which is replaced (up to
    # MAX_FAILURES_IN_A_ROW in a row): optimize() re-raises the types it is not given, so
    # a narrower tuple ended a one-worker search at a KeyError or OSError while, with
    # several workers, only that worker's process died. KeyboardInterrupt and SystemExit
    # are not Exceptions: they still stop the worker at once.
    brief = _BriefInterrupts()
    optuna_log = logging.getLogger("optuna.study._optimize")  # where Optuna logs a failed trial
    optuna_log.addFilter(brief)
    try:
        study.optimize(objective, n_trials=None, timeout=args["timeout"], callbacks=callbacks, catch=(Exception,))
    finally:
        optuna_log.removeFilter(brief)


def pareto_records(study: Any) -> list[dict[str, Any]]:
    """The feasible Pareto-optimal trials' records (all four objectives)."""
    from optuna.trial import TrialState

    feasible = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.user_attrs.get("feasible", True)]
    front = []
    for t in feasible:
        dominated = any(_dominates(o.values, t.values, study.directions) for o in feasible if o is not t)
        if not dominated:
            front.append(_record(t))
    return sorted(front, key=lambda r: r["size_bytes"])


def _dominates(a: list[float], b: list[float], directions: list[Any]) -> bool:
    better = False
    for x, y, d in zip(a, b, directions):
        sx, sy = (x, y) if d.name == "MINIMIZE" else (-x, -y)
        if sx > sy:
            return False
        better |= sx < sy
    return better


def _record(trial: Any) -> dict[str, Any]:
    attrs = {k: v for k, v in trial.user_attrs.items() if not k.startswith("val_epoch_") and k != "constraints"}
    return {"trial": trial.number, **attrs, "params": dict(trial.params)}


def _as_reported(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as trials.json gives it: a point over the budget before training (its
    ``skipped`` reason) has no measured metric, so its ``val_metric`` and ``val_loss``
    are null there. The storage keeps the untrained model's figures, the objective value
    the sampler needs for a complete trial; shown, they read as a trained model's."""
    if not record.get("skipped"):
        return record
    return {**record, "val_metric": None, "val_loss": None}


def search(data: str | dict[str, Any], task: str | None = None, budget: str | dict[str, Any] | None = None,
           trials: int = 20, out: str | Path = "search", storage: str | None = None, workers: int = 1,
           timeout: float | None = None, space: str | Path | dict[str, Any] = "default", seed: int = 0,
           resume: bool = False, heartbeat: int = 10, sampler: str = "tpe", prune: bool = True,
           on_trial: Callable[[Any, Any], None] | None = None) -> dict[str, Any]:
    """Search the space for models within ``budget``; write ``out``.

    Args:
        data: a built-in data set name or file path, or a full ``data`` config section.
        task: ``classify`` | ``lm`` | ``forecast`` (None: the data's own).
        budget: ``"size=8KB,latency=200us,ram=16KB"`` (any subset) or a dict of bytes/µs.
        trials: completed (or pruned) trials the study stops at, over all workers; a
            failed trial is replaced, up to :data:`MAX_FAILURES_IN_A_ROW` failures in a row.
        out: output dir: ``study.db``, ``trials/NNNN/`` run dirs (``NNNN.failed``, ``NNNN.pruned``: what a
            failed or pruned trial wrote), ``pareto.json``,
            ``pareto.png``, ``trials.json``, ``best/`` (the best model within budget).
        storage: a database URL shared by workers (default: ``sqlite:///OUT/study.db``).
        workers: processes started here, all on the same study (SIGINT or SIGTERM to this
            process stops them too; see Raises).
        timeout: seconds each worker may run (None: no limit).
        space: a shipped space name, a YAML file, or a dict (see docs/search.md).
        resume: continue the study already in ``storage`` (else it must be new).
        sampler: ``tpe`` (default), ``nsga2`` or ``random`` (see :data:`SAMPLERS`).
        prune: stop hopeless trials (:mod:`lstmlite.search.pruning`): points over the
            budget before training are not trained, and a trial dominated at equal
            epochs by a completed one is stopped.

    Returns:
        ``{"best": record or None, "pareto": [records], "trials": n_complete, "out": str}``.

    Raises:
        TrialsFailed: :data:`MAX_FAILURES_IN_A_ROW` trials failed in a row (the outputs
            are written first; the message names the first one's error and run dir).
        KeyboardInterrupt: Ctrl-C, or SIGTERM (with one worker, called in the main thread,
            where SIGTERM's handler is the default: the trial running fails, as at Ctrl-C;
            neither stops a storage call or Optuna's own bookkeeping, and the handlers
            are restored afterwards); with ``workers`` > 1, also SIGINT or SIGTERM sent
            to this process alone: its worker processes are stopped first (each fails
            the trial it was running; one still running after :data:`STOP_GRACE_S` is
            killed).
    """
    from .feasible import check_buildable, check_feasible

    out = Path(out)
    data_config = dict(data) if isinstance(data, dict) else {"source": str(data)}
    if task:
        data_config["task"] = task
    parsed_budget = parse_budget(budget)
    loaded_space = load_space(space)  # fail fast on a bad space, before any process starts
    check_buildable(loaded_space, data_config, seed)  # on a value that fits no model of the data's task
    check_feasible(loaded_space, data_config, parsed_budget, seed)  # and on a budget no model of it meets
    _check_search_out(out, resume)  # before anything is written into it
    out.mkdir(parents=True, exist_ok=True)
    space_arg = space.to_dict() if isinstance(space, SearchSpace) else (
        str(space) if isinstance(space, Path) else space)
    higher = _metric_higher(data_config)
    make_sampler(sampler, seed)  # fail fast on an unknown name
    study = open_study(out, storage, seed, higher, resume=True, heartbeat=heartbeat, sampler=sampler)
    if resume is False and len(study.trials) > 0:
        raise FileExistsError(f"{out}: the study already has trials; pass resume=True (--resume) to continue it")
    if len(study.trials) > 0:
        _check_resume(out, study, parsed_budget, loaded_space, data_config)
    study.set_user_attr("space", _as_stored(loaded_space.to_dict()))
    _metric_bar(study)  # a bar that does not fit the metric, set before the search: refused before any trial
    study.set_user_attr("budget", parsed_budget)
    study.set_user_attr("data", data_config)
    args = {"out": str(out), "storage": storage, "seed": seed, "higher": higher, "space": space_arg,
            "data_config": data_config, "budget": parsed_budget, "trials": trials, "timeout": timeout,
            "heartbeat": heartbeat, "worker": 0, "on_trial": on_trial, "sampler": sampler,
            "prune": prune, "optuna_verbosity": _optuna_verbosity(), "logging": _logging_setup(),
            "first": len(study.trials)}
    if workers <= 1:
        with _InterruptsOutsideStorage():  # SIGTERM as Ctrl-C, neither inside a storage call nor Optuna's
            _worker(args)
    else:
        ctx = mp.get_context("spawn")  # fresh interpreters: no forked torch threads or DB handles
        procs = [ctx.Process(target=_worker_process, args=({**args, "worker": i, "on_trial": None},))
                 for i in range(workers)]
        followed = open_study(out, storage, seed, higher, resume=True) if on_trial is not None else None
        before = _finished(followed) if followed is not None else set()  # a resumed study's, not reported again
        # Ctrl-C in a terminal reaches every worker (one process group), but a SIGINT or
        # SIGTERM sent to this process alone (a job scheduler, a supervising script) did not:
        # the workers ran on, and exiting here waited for them (multiprocessing joins its
        # children at exit) or, killed, left them running trials with no parent. Noted rather
        # than raised here, so this process is never stopped inside a storage read with the
        # database locked while the workers it stops write their trials' failure.
        with _Signals() as signals:
            try:
                for p in procs:
                    p.start()
                if followed is not None:
                    _follow(procs, followed, on_trial, before, stop=signals)
                _join(procs, signals)
            except BaseException:
                _stop_workers(procs)
                raise
            if signals.received is not None:
                _stop_workers(procs)
                _set_aside_runs(out, study.get_trials(deepcopy=False))  # those they ran, failed as they stopped
                raise KeyboardInterrupt
    result = write_outputs(out, storage, seed, higher)
    final = open_study(out, storage, seed, higher, resume=True)
    _metric_bar(final)  # a bar set during the search stopped it
    failed = _failures_in_a_row(final.get_trials(deepcopy=False), args["first"])
    if len(failed) >= MAX_FAILURES_IN_A_ROW:  # the workers stopped on them (_wait_for_room)
        raise TrialsFailed(_failures_text(out, failed))
    return result


#: Seconds a worker process is given to stop (its trial failed, as Ctrl-C fails it) before it is killed.
STOP_GRACE_S = 10.0


def _worker_process(args: dict[str, Any]) -> None:
    """:func:`_worker` in a worker process of :func:`search`: SIGTERM (the parent stopping
    it, :func:`_stop_workers`) interrupts it as Ctrl-C does, so Optuna fails the trial it
    was running rather than leaving it RUNNING, and neither interrupts a storage call or
    Optuna's bookkeeping (:func:`_interrupt_outside_storage`); an interrupted worker then
    exits at once with status 130 (the trial's state is in the storage already: the
    interpreter's teardown, seconds with torch loaded, is skipped)."""
    import os
    import signal
    import sys

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt_outside_storage)
    _apply_logging_setup(args.get("logging"))
    try:
        _worker(args)
    except KeyboardInterrupt:
        # what a worker process does at its end before the interpreter's teardown (Python's
        # Process._bootstrap calls it): multiprocessing's finalizers (they unlink the semaphore
        # tqdm makes, which the resource tracker would report as leaked), then the logs
        import multiprocessing.util

        multiprocessing.util._exit_function()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


#: Modules whose code a worker is not interrupted in: a commit cut short there left the
#: trial RUNNING (Optuna could not record its failure) and the database possibly locked.
_STORAGE_MODULES = ("optuna.storages", "sqlalchemy", "sqlite3", "psycopg2")


#: Optuna's telling of a trial's result: our code runs inside it too (the samplers call
#: _constraints there), and is not interrupted there either.
_TELL_MODULES = ("optuna.study._tell",)
_NEVER_INTERRUPTED = _STORAGE_MODULES + _TELL_MODULES


def _interruptible(frame: Any) -> bool:
    """Whether a KeyboardInterrupt raised in ``frame`` (the code a signal interrupted) leaves
    the study consistent: not inside a storage call or Optuna's telling of a result
    (anywhere up the stack), and not in Optuna's own code around the objective. Otherwise
    the nearest frame that is Optuna's or ours decides: ours (the objective, our callbacks)
    may stop; Optuna's (asking for a trial) may not. Optuna's ``_run_trial`` handles a
    KeyboardInterrupt from the objective only: one raised while it tells the result left
    that trial RUNNING and replaced the interrupt with an UnboundLocalError (its
    ``finally`` reads a state the interrupted call never returned)."""
    nearest = None
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(_NEVER_INTERRUPTED):
            return False
        package = module.split(".", 1)[0]
        if nearest is None and package in ("optuna", "lstmlite"):
            nearest = package
        frame = frame.f_back
    return nearest != "optuna"


def _interrupt_outside_storage(signum: int, frame: Any) -> None:
    """A signal handler raising :class:`KeyboardInterrupt`, as Python's SIGINT handler
    does, unless the interrupted code (``frame`` and its callers) is a storage call or
    Optuna's own bookkeeping (:func:`_interruptible`): then it asks for SIGALRM 50 ms later
    and tries again from there."""
    import signal

    if not _interruptible(frame):
        signal.signal(signal.SIGALRM, _interrupt_outside_storage)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        return
    raise KeyboardInterrupt


class _InterruptsOutsideStorage:
    """Within it (a one-worker search, run in the calling process), SIGTERM interrupts the
    search as Ctrl-C does, and neither interrupts a storage call or Optuna's bookkeeping
    (:func:`_interrupt_outside_storage`): SIGTERM's default ended the process at once, its
    trial left RUNNING until its heartbeat went stale, and Ctrl-C inside a commit could
    leave it so too. Only a signal whose handler is Python's default is taken (a program's
    own handler, or one ignored, stays), only in the main thread (where Python allows
    signal handlers); the handlers before are restored on leaving. An interrupt deferred
    out of a storage call (or Optuna's bookkeeping) and still pending on leaving is raised
    then rather than lost (or left to SIGALRM's default, which ends the process)."""

    def __init__(self) -> None:
        self.before: dict[int, Any] = {}

    def __enter__(self) -> "_InterruptsOutsideStorage":
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self
        for signum, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
            if signal.getsignal(signum) is default:
                self.before[signum] = signal.signal(signum, _interrupt_outside_storage)
        if self.before:  # a deferred interrupt takes SIGALRM (_interrupt_outside_storage)
            self.before[signal.SIGALRM] = signal.getsignal(signal.SIGALRM)
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        import signal

        pending = (signal.SIGALRM in self.before and signal.getsignal(signal.SIGALRM) is _interrupt_outside_storage
                   and signal.getitimer(signal.ITIMER_REAL)[0] > 0)
        if pending:
            signal.setitimer(signal.ITIMER_REAL, 0)
        _restore_handlers(self.before)
        self.before = {}
        if pending and exc_type is None:
            raise KeyboardInterrupt


class _Signals:
    """Within it, SIGINT and SIGTERM are noted (``received``: the first one's number) rather
    than raised in whatever this process is doing; SIGTERM's default would end the process
    at once. The handlers before are restored on leaving. Outside the main thread (where
    Python allows no signal handler) it notes nothing, nor for a signal whose handler was
    installed from C (Python can read it only as None and could not put it back)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.before: dict[int, Any] = {}

    def note(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum

    def __enter__(self) -> "_Signals":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            # a handler installed from C (getsignal: None) could not be put back: left alone
            self.before = {s: signal.signal(s, self.note) for s in (signal.SIGINT, signal.SIGTERM)
                           if signal.getsignal(s) is not None}
        return self

    def __exit__(self, *exc: Any) -> None:
        _restore_handlers(self.before)
        self.before = {}


def _restore_handlers(before: dict[int, Any]) -> None:
    """Put back the signal handlers ``before`` maps (signal number -> the handler that
    ``signal.signal`` returned). A None there is a handler not set from Python, which
    cannot be put back (``signal.signal`` refuses None): that signal keeps ours. Neither
    context manager takes SIGINT or SIGTERM from such a handler; SIGALRM, which a deferred
    interrupt takes, may come from one."""
    import signal

    for signum, handler in before.items():
        if handler is not None:
            signal.signal(signum, handler)


def _join(procs: list[Any], signals: _Signals, every_s: float = 0.2) -> None:
    """Wait for the processes ``procs`` to exit, or for ``signals`` to note a signal."""
    for p in procs:
        while signals.received is None and p.is_alive():
            p.join(every_s)


def _stop_workers(procs: list[Any], grace_s: float = STOP_GRACE_S) -> None:
    """Stop those of the worker processes ``procs`` still running: SIGTERM (each fails its
    running trial and exits, :func:`_worker_process`), then SIGKILL for any still alive
    after ``grace_s`` seconds (its trial stays RUNNING until its heartbeat goes stale, then
    is failed and retried as a dead worker's when the study is resumed)."""
    import time

    alive = [p for p in procs if p.is_alive()]
    if not alive:
        return
    log.warning("stopping %d worker processes", len(alive))
    for p in alive:
        p.terminate()
    deadline = time.monotonic() + grace_s
    for p in alive:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in alive:
        if p.is_alive():
            log.warning("worker process %d did not stop in %g s: killed", p.pid, grace_s)
            p.kill()
            p.join()


def _logging_setup() -> dict[str, Any] | None:
    """This process's logging as a spawned worker can repeat it: the root logger's level and
    its first handler's format (the CLI's ``logging.basicConfig``), or None when the root
    logger has no handler (a program that configured no logging: its workers stay as
    silent as it is)."""
    root = logging.getLogger()
    if not root.handlers:
        return None
    formatter = root.handlers[0].formatter
    return {"level": root.level, "format": formatter._fmt if formatter is not None else None}


def _apply_logging_setup(setup: dict[str, Any] | None) -> None:
    """In a spawned worker, log as the process that started the search does
    (:func:`_logging_setup`): a spawned interpreter starts with no handler, and lstmlite's
    NullHandler keeps Python's last-resort one from printing, so a worker's warnings (a
    trial's run dir set aside, a busy machine) were lost."""
    if setup is not None:
        logging.basicConfig(level=setup["level"], format=setup["format"] or logging.BASIC_FORMAT)


def _optuna_verbosity() -> int:
    """Optuna's log level in this process (what its workers are given)."""
    import optuna

    return int(optuna.logging.get_verbosity())


def _finished(study: Any) -> set[int]:
    """The numbers of the study's finished trials (complete, pruned or failed)."""
    return {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}


def _follow(procs: list[Any], study: Any, on_trial: Callable[[Any, Any], None], seen: set[int],
            every_s: float = 1.0, stop: _Signals | None = None) -> None:
    """Call ``on_trial(study, trial)`` here, in the parent, for each trial the worker
    processes finish that is not in ``seen``, until they have all exited (or ``stop`` has
    noted a signal). The callback is not sent to them: a spawned process gets its arguments
    pickled, and a closure (the CLI's progress line) does not pickle, so the parent follows
    the shared storage."""
    import time

    seen = set(seen)
    while True:
        running = any(p.is_alive() for p in procs)  # read before the trials: none finishes unseen
        for trial in study.get_trials(deepcopy=False):
            if trial.state.is_finished() and trial.number not in seen:
                seen.add(trial.number)
                on_trial(study, trial)
        if not running:
            return
        waited = 0.0
        while waited < every_s:  # in steps, so that a noted signal is seen within one
            if stop is not None and stop.received is not None:
                return
            time.sleep(min(0.2, every_s - waited))
            waited += 0.2


def _as_stored(value: Any) -> Any:
    """``value`` as a study attribute reads back (JSON: tuples become lists)."""
    import json

    return json.loads(json.dumps(value))


def _budget_text(budget: dict[str, Any]) -> str:
    """``budget`` as error messages show it: ``size=8192 B,latency=200 us/step`` (the
    latency budget bounds one step, as the progress lines' ``us/step`` say)."""
    units = {"size": " B", "ram": " B", "latency": " us/step"}
    return ",".join(f"{k}={v:g}{units.get(k, '')}" for k, v in budget.items()) or "none"


#: What a search writes into its --out (SQLite's side files included).
SEARCH_ENTRIES = frozenset({"study.db", "study.db-journal", "study.db-wal", "study.db-shm", "trials", "trials.json",
                            "pareto.json", "pareto.png", "best"})
#: Of those, what holds a search's results.
_RESULT_ENTRIES = frozenset({"trials", "trials.json", "pareto.json", "best"})


def _check_search_out(out: str | Path, resume: bool) -> None:
    """Refuse an ``out`` folder whose contents a search would lose: one holding anything a
    search does not write (a user's files, a run dir), or -- without ``resume`` -- another
    search's results (its best/, trials/ and tables are replaced as the new study writes its
    own, which a study in other storage than ``OUT/study.db`` would otherwise do silently).

    Raises:
        FileExistsError: naming the folder, what is in it and what to do.
    """
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder; --out names the folder the search writes "
                              "(study.db, trials/, best/, ...)")
    from ..io import _is_our_temp  # the run dirs' rule for a killed write's temp file, not a copy of it

    names = {e.name for e in out.iterdir() if not _is_our_temp(e)}
    foreign = sorted(names - SEARCH_ENTRIES)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise FileExistsError(f"{out}: holds files lstmlite search did not write ({shown}); choose a new or "
                              "empty --out")
    results = sorted(names & _RESULT_ENTRIES)
    if results and not resume:
        raise FileExistsError(f"{out}: a search's results are here ({', '.join(results)}); --resume to continue "
                              "its study, or choose a new or empty --out")


def _check_resume(out: Path, study: Any, budget: dict[str, float], space: SearchSpace,
                  data: dict[str, Any] | None = None) -> None:
    """Refuse to continue a study under another budget, space or data than its trials had: a
    trial's feasibility (the Pareto front, best/) and the sampler's constraints are the
    budget's it ran under, trials on other data are not comparable (best/ could be a model
    of the other data set), and Optuna cannot sample a categorical parameter whose
    choices changed (every new trial would fail). Studies from before the space was
    stored are not checked for it."""
    old_data = study.user_attrs.get("data")
    if data is not None and old_data is not None and old_data != data:
        def said(config: dict[str, Any]) -> str:
            return ", ".join(f"{k}={v}" for k, v in sorted(config.items()))

        raise ValueError(f"{out}: the study's trials ran on --data/--task {said(old_data)}, not {said(data)}: "
                         "resume with the same --data and --task, or search anew in another --out")
    old_budget = study.user_attrs.get("budget")
    if old_budget is not None and old_budget != _as_stored(budget):
        raise ValueError(f"{out}: the study's trials ran under --budget {_budget_text(old_budget)}, not "
                         f"{_budget_text(budget)}: resume with the same --budget, or search anew in another --out")
    old_space, new_space = study.user_attrs.get("space"), _as_stored(space.to_dict())
    if old_space is not None and old_space != new_space:
        changed = sorted({k for part in ("params", "fixed")  # a key moved between the parts: named once
                          for k in set(old_space.get(part, {})) | set(new_space[part])
                          if old_space.get(part, {}).get(k) != new_space[part].get(k)})
        raise ValueError(f"{out}: the study's trials were sampled from another search space ({', '.join(changed)} "
                         "changed): resume with the same --space, or search anew in another --out")


def best_key(record: dict[str, Any], higher: bool = True) -> tuple[float, float, int]:
    """How the best trial is chosen: validation metric, then -- a small validation split
    ties often -- lower validation loss, then fewer bytes."""
    import math

    loss = record.get("val_loss")
    loss = math.inf if loss is None or math.isnan(loss) else loss
    return (record["val_metric"] if higher else -record["val_metric"], -loss, -record["size_bytes"])


def _metric_higher(data_config: dict[str, Any]) -> bool:
    """Whether the data's primary metric is better higher: the task is the data's own
    when the config names none (``airline`` and a ``.npy`` series forecast, a ``.txt``
    file models language, an audio folder is ``ctc``), resolved as the trials resolve it
    (:class:`~lstmlite.data.DataSpec`), never assumed to be a classifier's."""
    from ..data import DataSpec

    spec = DataSpec.from_dict(data_config)
    return higher_is_better(primary_metric(spec.task, spec.level))


def write_outputs(out: Path, storage: str | None, seed: int = 0, higher: bool = True) -> dict[str, Any]:
    """Write ``pareto.json``, ``trials.json``, ``pareto.png`` and ``best/`` from the study,
    after setting aside failed and pruned trials' run dirs (``trials/NNNN.failed``,
    ``trials/NNNN.pruned``)."""
    study = open_study(out, storage, seed, higher, resume=True)
    from optuna.trial import TrialState

    stored = study.get_trials(deepcopy=False)
    _set_aside_runs(out, stored)  # one no worker here has set aside yet (one that raised out of optimize)
    trials = [dict(_as_reported(_record(t)), state=t.state.name) for t in stored]
    write_json(out / "trials.json", trials)
    front = pareto_records(study)
    best = None
    if front:
        best = max(front, key=lambda r: best_key(r, higher))
    write_json(out / "pareto.json", {"objectives": list(OBJECTIVES), "budget": study.user_attrs.get("budget", {}),
                                     "pareto": front, "best": best})
    _plot(out / "pareto.png", trials, front)
    best_dir = out / "best"
    if best is not None:
        if best_dir.exists():
            shutil.rmtree(best_dir)
        if Path(best["run_dir"]).exists():
            shutil.copytree(best["run_dir"], best_dir)
        else:  # run by a worker on another machine (--storage): no best/ rather than an older trial's
            log.warning("best trial %d's run dir %s is not on this machine: no %s (copy it from there)",
                        best["trial"], best["run_dir"], best_dir)
    complete = sum(1 for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE)
    return {"best": best, "pareto": front, "trials": complete, "out": str(out)}


def _plot(path: Path, trials: list[dict[str, Any]], front: list[dict[str, Any]]) -> None:
    """Metric against .lsl bytes: all trials grey, the Pareto front in colour."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed; no pareto.png (pip install lstmlite[report])")
        return
    fig = _pareto_figure(plt, trials, front)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pareto_figure(plt: Any, trials: list[dict[str, Any]], front: list[dict[str, Any]]) -> Any:
    """The figure of :func:`_plot` (``plt``: pyplot, imported by the caller), apart so tests
    can read its points."""
    done = [t for t in trials if "size_bytes" in t and t.get("val_metric") is not None]  # not: untrained
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.scatter([t["size_bytes"] for t in done], [t["val_metric"] for t in done], c="0.7", label="trials")
    ax.scatter([t["size_bytes"] for t in front], [t["val_metric"] for t in front], c="C3", label="Pareto (feasible)")
    ax.set_xlabel(".lsl bytes")
    ax.set_ylabel("validation metric")
    ax.legend()
    fig.tight_layout()
    return fig
