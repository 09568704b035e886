"""Compression recipes: ordered steps of configs plus fine-tuning or distillation.

A recipe is a YAML or JSON file (DESIGN decision 2)::

    name: tiny                        # optional
    description: distill, prune, factor, int8 QAT
    fits: LSTM/GRU classifiers        # optional: for which models it is meant (--list-recipes)
    train: {lr: 0.003}                # optional TrainConfig overrides for every step
    distill: {temperature: 4.0, alpha: 0.7}   # optional DistillConfig defaults
    steps:
      - student: {width: 0.5}         # a smaller model, trained by distillation
        distill_epochs: 30
      - method: hidden_unit_prune     # a compression config, friendly form ...
        fraction: 0.25
        distill_epochs: 10
      - config: {type: low_rank, version: 1, data: {rank: null, energy: 0.9}}   # ... or canonical
        finetune_epochs: 10
      - method: int8_qat
        distill_epochs: 10

**A step** has at most one compression config and then trains:

* the config, either ``method: NAME`` plus the config's fields at the same level
  (``{method: weight_quant, bits: 4}``), or ``config: {"type", "version", "data"}``
  exactly as a run dir stores it. ``NAME`` is any registered config type (see
  :func:`lstmlite.compress.registered_configs`: ``magnitude_prune``,
  ``gradual_prune``, ``hidden_unit_prune``, ``low_rank``, ``weight_quant``,
  ``fake_quant``, ``embedding_quant``, ``vocab_prune``, ``embedding_low_rank``) or
  one of the shorthands in :data:`ALIASES` (``int8_weight`` = ``weight_quant`` with
  ``bits: 8``, ``int4_qat`` = ``fake_quant`` with ``bits: 4``, …);
* ``targets``: optional list of glob patterns over tensor names
  (``["rnn.weight_hh_*", "head.weight"]``) narrowing the config's tensors; without
  it the method's default tensors are used;
* ``finetune_epochs`` (task loss) **or** ``distill_epochs`` (the distillation loss,
  teacher = the source run's original model), default 0 (no training);
* ``train``: TrainConfig overrides for this step (not ``epochs``);
* ``distill``: DistillConfig overrides for this step (temperature, alpha, hidden_weight);
* ``student``: replace the model by a new one built from its config with these
  changes (``width: 0.5`` scales every layer's hidden size and an LSTM's ``proj_size`` —
  but the last layer of a language model with tied weights, whose width is the embedding's
  (its projection, when it has one); any model key such as
  ``cell: gru`` or ``hidden_size: 32``; a new ``cell`` keeps only the source's
  ``rnn_options`` it takes, such as ``bias``), trained from scratch by distillation (needs
  ``distill_epochs``).

Some fields are derived when the step runs, from the data and the model, so a recipe
is not tuned to one data set:

* ``vocab_prune`` takes ``coverage: c`` instead of ``keep``: the smallest vocabulary
  whose tokens cover the fraction c of the training split's tokens
  (:func:`~lstmlite.compress.embedding.vocab.keep_for_coverage`);
* a ``student``'s ``rnn_options`` ``wrank`` / ``urank`` (FastGRNN) may be a fraction in
  (0, 1): that fraction of the student's hidden size (``wrank``: of min(input, hidden)),
  at least 1.

``gradual_prune`` is scheduled in epochs of its step: ``start_epoch`` (default 0),
``end_epoch`` (default two thirds of the step's epochs) and ``updates`` (mask
updates, default 10) become the config's ``start_step``/``end_step``/``frequency``
from the number of batches per epoch; ``initial_sparsity`` defaults to 0. Epochs
after ``end_epoch`` fine-tune at the final sparsity, and the final sparsity is
enforced on the selected weights whatever epoch validation picks.
``fake_quant`` (QAT) is frozen to fixed scales (``freeze_quantization``) after its
step's training, so the stored model is the deployable post-training form.

Shipped recipes (``int8``, ``prune-agp-80``, ``shrink``, ``shrink-int8``, ``tiny``,
``text-tiny``, ``fastgrnn-tiny``, ``seq2seq-small``; see :func:`list_recipes`) are found
by name.

Example:
    >>> r = parse_recipe({"steps": [{"method": "int8_weight"}]})
    >>> r.steps[0].method, r.steps[0].params
    ('weight_quant', {'bits': 8})
    >>> r.to_dict()["steps"]
    [{'method': 'weight_quant', 'bits': 8}]
"""

from __future__ import annotations

import copy
import fnmatch
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml
from torch import nn

from .._text import ERROR_CHARS, one_line
from ..typed import coerce
from .config import CompressionConfig, config_from_dict
from .distill.config import DistillConfig

__all__ = [
    "Recipe", "RecipeStep", "RecipeError", "ALIASES", "load_recipe", "parse_recipe", "apply_recipe",
    "list_recipes", "find_recipe", "check_recipe_task", "RECIPE_FORMAT_VERSION",
]

log = logging.getLogger(__name__)

RECIPE_FORMAT_VERSION = 1

#: Shorthand method names: alias → (config type, preset fields).
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "int8": ("weight_quant", {"bits": 8}),
    "int8_weight": ("weight_quant", {"bits": 8}),
    "int4": ("weight_quant", {"bits": 4}),
    "int4_weight": ("weight_quant", {"bits": 4}),
    "int8_qat": ("fake_quant", {"bits": 8}),
    "int4_qat": ("fake_quant", {"bits": 4}),
    "qat": ("fake_quant", {}),
    "prune": ("magnitude_prune", {}),
    "agp": ("gradual_prune", {}),
    "gradual": ("gradual_prune", {}),
    "prune_units": ("hidden_unit_prune", {}),
    "lowrank": ("low_rank", {}),
    "embedding_int8": ("embedding_quant", {"bits": 8}),
    "embedding_int4": ("embedding_quant", {"bits": 4}),
}

_TOP_KEYS = {"version", "name", "description", "fits", "tasks", "train", "distill", "steps"}
_STEP_KEYS = {"method", "config", "targets", "finetune_epochs", "distill_epochs", "train", "distill", "student"}
_SCHEDULE_KEYS = {"start_epoch", "end_epoch", "updates"}
#: step fields computed from the data when the step runs: method → keys
_DERIVED_KEYS = {"vocab_prune": {"coverage"}}
_GRADUAL = "gradual_prune"
_FAKE_QUANT = "fake_quant"
_VOCAB_PRUNE = "vocab_prune"


class RecipeError(ValueError):
    """A recipe that cannot be read or applied; the message names the file and step."""


# ----- the recipe objects ---------------------------------------------------------------------
@dataclass
class RecipeStep:
    """One step: an optional compression config, then training (see the module doc).

    ``method`` is the config's ``type_name`` (None for a pure training step),
    ``params`` its fields as written, ``schedule`` the epoch keys of ``gradual_prune``,
    ``derived`` the fields computed from the data when the step runs (``coverage``).
    """

    method: Optional[str] = None
    params: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, Any] = field(default_factory=dict)
    targets: Optional[list[str]] = None
    finetune_epochs: int = 0
    distill_epochs: int = 0
    train: dict[str, Any] = field(default_factory=dict)
    distill: dict[str, Any] = field(default_factory=dict)
    student: Optional[dict[str, Any]] = None

    @property
    def epochs(self) -> int:
        return self.finetune_epochs or self.distill_epochs

    def config(self, steps_per_epoch: int = 100, epochs: Optional[int] = None,
               data: Any = None) -> Optional[CompressionConfig]:
        """The compression config, with ``gradual_prune``'s epochs turned into steps and
        derived fields (``coverage``) computed from ``data``.

        Args:
            steps_per_epoch: optimizer steps per epoch of the data being trained on.
            epochs: the step's epochs as run (default: as written).
            data: the :class:`~lstmlite.data.TaskData` the step runs on (None: derived
                fields get a placeholder, for validation only).
        """
        if self.method is None:
            return None
        params = dict(self.params)
        if "coverage" in self.derived:
            from .embedding.vocab import keep_for_coverage

            params["keep"] = 3 if data is None else keep_for_coverage(data, self.derived["coverage"])
        if self.method == _GRADUAL:
            params = {**self._gradual_steps(steps_per_epoch, self.epochs if epochs is None else epochs), **params}
            params.setdefault("initial_sparsity", 0.0)
        return config_from_dict({"type": self.method, "version": _config_version(self.method), "data": params})

    def ramp_epochs(self, steps_per_epoch: int, epochs: int) -> int:
        """Epochs of a gradual_prune step during which the masks change."""
        cfg = self.config(steps_per_epoch, epochs)
        return min(epochs, max(1, math.ceil(cfg.end_step / steps_per_epoch)))  # type: ignore[union-attr]

    def _gradual_steps(self, steps_per_epoch: int, epochs: int) -> dict[str, int]:
        if "start_step" in self.params or "end_step" in self.params:
            return {}
        start = float(self.schedule.get("start_epoch", 0))
        end = float(self.schedule.get("end_epoch", max(1, round(2 * epochs / 3)) if epochs else 1))
        if epochs and self.epochs and epochs < self.epochs:  # capped (max_epochs): keep the schedule's shape
            start, end = start * epochs / self.epochs, end * epochs / self.epochs
        end = min(end, epochs) if epochs else end
        if epochs and start >= end:
            # Otherwise the ramp collapses to one step at start_epoch: the whole sparsity at
            # once, at a time the recipe did not ask for (or after the training ends).
            raise ValueError(f"start_epoch ({start:g}) must be before end_epoch ({end:g}, within the step's "
                             f"{epochs} epochs); set an end_epoch after start_epoch")
        start_step = int(round(start * steps_per_epoch))
        end_step = max(start_step + 1, int(round(end * steps_per_epoch)))
        updates = int(self.schedule.get("updates", 10))
        return {"start_step": start_step, "end_step": end_step,
                "frequency": max(1, (end_step - start_step) // max(updates, 1))}

    def filter(self) -> Optional[Callable[[str, nn.Module, str], bool]]:
        """The tensor filter of ``targets`` (None: the method's default)."""
        if self.targets is None:
            return None
        patterns = list(self.targets)

        def accept(fqn: str, module: nn.Module, name: str) -> bool:
            full = f"{fqn}.{name}" if fqn else name
            return any(fnmatch.fnmatchcase(full, p) for p in patterns)

        return accept

    def to_dict(self) -> dict[str, Any]:
        """The friendly form, as :func:`parse_recipe` reads it."""
        out: dict[str, Any] = {}
        if self.method is not None:
            out["method"] = self.method
            out.update(copy.deepcopy(self.params))
            out.update(self.schedule)
            out.update(self.derived)
        if self.targets is not None:
            out["targets"] = list(self.targets)
        if self.student is not None:
            out["student"] = dict(self.student)
        if self.finetune_epochs:
            out["finetune_epochs"] = self.finetune_epochs
        if self.distill_epochs:
            out["distill_epochs"] = self.distill_epochs
        if self.train:
            out["train"] = dict(self.train)
        if self.distill:
            out["distill"] = dict(self.distill)
        return out


@dataclass
class Recipe:
    """An ordered list of :class:`RecipeStep` plus recipe-wide train/distill settings."""

    steps: list[RecipeStep]
    name: str = ""
    description: str = ""
    fits: str = ""
    train: dict[str, Any] = field(default_factory=dict)
    distill: dict[str, Any] = field(default_factory=dict)
    #: the tasks (lstmlite.data.TASKS) whose runs it applies to; empty: any
    tasks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": RECIPE_FORMAT_VERSION}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        if self.fits:
            out["fits"] = self.fits
        if self.tasks:
            out["tasks"] = list(self.tasks)
        if self.train:
            out["train"] = dict(self.train)
        if self.distill:
            out["distill"] = dict(self.distill)
        out["steps"] = [s.to_dict() for s in self.steps]
        return out

    def distill_config(self, step: RecipeStep) -> DistillConfig:
        return DistillConfig.from_dict({**self.distill, **step.distill})


# ----- parsing ---------------------------------------------------------------------------------
def _config_version(type_name: str) -> int:
    from .registry import registered_configs

    return registered_configs()[type_name].version


def _known_methods() -> list[str]:
    from .registry import registered_configs

    return sorted(set(registered_configs()) | set(ALIASES))


def _nonneg_int(value: Any, what: str) -> int:
    # any spelling of a whole number (20, 20.0, "20", "2e1"), as configs take them
    number = coerce(value, int, what) if not isinstance(value, bool) else value
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return number


def _check_train(overrides: Any, what: str) -> dict[str, Any]:
    from ..train.trainer import TrainConfig

    if not isinstance(overrides, dict):
        raise ValueError(f"{what} must be a mapping of TrainConfig options, got {type(overrides).__name__}")
    if "epochs" in overrides:
        raise ValueError(f"{what}: set epochs per step with finetune_epochs / distill_epochs, not train.epochs")
    TrainConfig.from_dict(dict(overrides))  # unknown keys and bad values fail here
    return dict(overrides)


def _check_distill(overrides: Any, what: str) -> dict[str, Any]:
    if not isinstance(overrides, dict):
        raise ValueError(f"{what} must be a mapping of DistillConfig options, got {type(overrides).__name__}")
    DistillConfig.from_dict(dict(overrides))
    return dict(overrides)


def _refuse_unknown_keys(method: str, config_type: Any, fields: dict[str, Any], extra: set[str]) -> None:
    """Refuse a method step's keys that are neither its config's, nor step keys, nor the
    method's own extras (a gradual schedule's epochs); the message lists all three, so the
    key a typo missed is among them (the config's own error listed only its fields)."""
    import dataclasses

    own = {f.name for f in dataclasses.fields(config_type) if f.init}
    unknown = sorted(set(fields) - own - extra)
    if unknown:
        parts = [f"its keys: {', '.join(sorted(own | extra))}"] if own | extra else []
        raise ValueError(f"unknown key(s) {unknown} for method {method!r}; " + "; ".join(
            parts + [f"step keys: {', '.join(sorted(_STEP_KEYS - {'config'}))}"]))


def _parse_step(raw: Any, recipe_distill: dict[str, Any]) -> RecipeStep:
    from .registry import registered_configs

    if not isinstance(raw, dict):
        raise ValueError(f"a step must be a mapping, got {type(raw).__name__}")
    step = RecipeStep()
    if "method" in raw and "config" in raw:
        raise ValueError("give either method (friendly form) or config ({type, version, data}), not both")
    fields = {k: v for k, v in raw.items() if k not in _STEP_KEYS}
    if "config" in raw:
        if fields:
            raise ValueError(f"unknown step key(s) {sorted(fields)} beside config; "
                             f"step keys are {sorted(_STEP_KEYS)}")
        config = config_from_dict(raw["config"])
        step.method, step.params = config.type_name, config.to_dict()["data"]
    elif "method" in raw:
        method = raw["method"]
        if not isinstance(method, str):
            raise ValueError(f"method must be a name, got {method!r}")
        type_name, preset = ALIASES.get(method, (method, {}))
        if type_name not in registered_configs():
            raise ValueError(f"unknown method {method!r}; known: {', '.join(_known_methods())}")
        for key, value in preset.items():
            if key in fields and fields[key] != value:
                raise ValueError(f"method {method!r} means {key}={value!r}; it cannot be given {key}={fields[key]!r}")
        derived = _DERIVED_KEYS.get(type_name, set())
        step.derived = {k: fields.pop(k) for k in list(fields) if k in derived}
        if "coverage" in step.derived:
            coverage = step.derived["coverage"]
            if not isinstance(coverage, bool):  # "0.85" and 0.85 alike (YAML reads 1e-1 as text)
                coverage = step.derived["coverage"] = coerce(coverage, float, "coverage")
            if isinstance(coverage, bool) or not isinstance(coverage, (int, float)) or not 0 < coverage <= 1:
                raise ValueError(f"coverage must be a fraction in (0, 1], got {coverage!r}")
            if "keep" in fields:
                raise ValueError("give keep (a vocabulary size) or coverage (a share of training tokens), not both")
        if type_name == _GRADUAL:
            step.schedule = {k: fields.pop(k) for k in list(fields) if k in _SCHEDULE_KEYS}
            in_steps = sorted(k for k in ("start_step", "end_step", "frequency") if k in fields)
            if step.schedule and in_steps:
                # given start/end_step the epoch keys were dropped, and frequency replaced updates
                raise ValueError(f"give the schedule in epochs ({', '.join(sorted(step.schedule))}) or in steps "
                                 f"({', '.join(in_steps)}), not both")
            for key, value in list(step.schedule.items()):
                if not isinstance(value, bool):
                    # epochs may be fractional (end_epoch: 2.5); a count of mask updates may not
                    value = step.schedule[key] = coerce(value, int if key == "updates" else float, key)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{key} must be a non-negative number, got {value!r}")
                if key == "updates" and value < 1:
                    raise ValueError(f"updates (mask updates over the ramp) must be at least 1, got {value!r}")
        _refuse_unknown_keys(method, registered_configs()[type_name], fields,
                             _SCHEDULE_KEYS | {"start_step", "end_step", "frequency"} if type_name == _GRADUAL
                             else set(derived))
        step.method, step.params = type_name, {**preset, **fields}
    elif fields:
        raise ValueError(f"unknown step key(s) {sorted(fields)}; a config needs method: NAME "
                         f"(step keys are {sorted(_STEP_KEYS)})")
    step.finetune_epochs = _nonneg_int(raw.get("finetune_epochs", 0), "finetune_epochs")
    step.distill_epochs = _nonneg_int(raw.get("distill_epochs", 0), "distill_epochs")
    if step.finetune_epochs and step.distill_epochs:
        raise ValueError("give finetune_epochs or distill_epochs, not both")
    if "targets" in raw:
        targets = raw["targets"]
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
            raise ValueError(f"targets must be a list of tensor-name patterns, got {raw['targets']!r}")
        if step.method is None:
            raise ValueError("targets needs a method")
        step.targets = targets
    step.train = _check_train(raw.get("train", {}), "train")
    step.distill = _check_distill(raw.get("distill", {}), "distill")
    if step.distill and not step.distill_epochs:
        raise ValueError("distill settings need distill_epochs")
    DistillConfig.from_dict({**recipe_distill, **step.distill})
    if "student" in raw:
        student = raw["student"]
        if not isinstance(student, dict) or not student:
            raise ValueError(f"student must be a non-empty mapping of model changes, got {student!r}")
        if "width" in student:
            width = student["width"]
            if not isinstance(width, bool):  # any number spelling, as configs take them
                student = {**student, "width": coerce(width, float, "student width")}
                width = student["width"]
            if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width:
                raise ValueError(f"student width must be a positive number, got {width!r}")
            if "hidden_size" in student:
                # the explicit sizes would replace the scaled ones: width would do nothing (in a
                # seq2seq model it would scale the decoder alone)
                raise ValueError("student: give width (a scale of the current sizes) or hidden_size, not both")
        if not step.distill_epochs:
            raise ValueError("a student is trained by distillation: give distill_epochs")
        step.student = dict(student)
    if step.method is None and not step.epochs:
        raise ValueError("an empty step: give a method (or config), or epochs of training")
    if step.method is not None:
        if step.method == _GRADUAL and not step.epochs and "end_step" not in step.params:
            raise ValueError("gradual_prune prunes while training: give finetune_epochs or distill_epochs")
        step.config(steps_per_epoch=100)  # validate the fields now, with the method's own messages
    return step


def parse_recipe(obj: Any, source: str = "<recipe>") -> Recipe:
    """Build a :class:`Recipe` from the loaded YAML/JSON mapping (or a bare list of steps).

    Raises:
        RecipeError: one line naming ``source`` and the step that is wrong.
    """
    if isinstance(obj, list):
        obj = {"steps": obj}
    if not isinstance(obj, dict):
        raise RecipeError(f"{source}: a recipe is a mapping with 'steps' (or a list of steps), "
                          f"got {type(obj).__name__}")
    unknown = sorted(set(obj) - _TOP_KEYS)
    if unknown:
        raise RecipeError(f"{source}: unknown key(s) {unknown}; a recipe has {sorted(_TOP_KEYS)}")
    version = obj.get("version", RECIPE_FORMAT_VERSION)
    if isinstance(version, bool) or version != RECIPE_FORMAT_VERSION:  # True == 1 in Python: not a version
        raise RecipeError(f"{source}: recipe version {version!r} is not supported (this lstmlite reads "
                          f"{RECIPE_FORMAT_VERSION})")
    steps = obj.get("steps")
    if not isinstance(steps, list) or not steps:
        raise RecipeError(f"{source}: 'steps' must be a non-empty list")
    for key in ("name", "description", "fits"):
        if not isinstance(obj.get(key, ""), str):
            raise RecipeError(f"{source}: {key} must be a string")
    tasks = _check_tasks(obj.get("tasks", []), source)
    try:
        train = _check_train(obj.get("train", {}), "train")
        distill = _check_distill(obj.get("distill", {}), "distill")
    except (ValueError, TypeError) as err:
        raise RecipeError(f"{source}: {err}") from None
    parsed = []
    for i, raw in enumerate(steps):
        label = raw.get("method") or ("config" if "config" in raw else "train") if isinstance(raw, dict) else "?"
        try:
            parsed.append(_parse_step(raw, distill))
        except (ValueError, TypeError) as err:
            raise RecipeError(f"{source}: step {i + 1} ({label}): {err}") from None
    return Recipe(steps=parsed, name=obj.get("name", ""), description=obj.get("description", ""),
                  fits=obj.get("fits", ""), train=train, distill=distill, tasks=tasks)


def _check_tasks(tasks: Any, source: str) -> list[str]:
    """``tasks:``, a list of task names (``lstmlite.data.TASKS``), checked."""
    from ..data.spec import TASKS

    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise RecipeError(f"{source}: tasks must be a list of task names ({', '.join(TASKS)})")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise RecipeError(f"{source}: unknown task(s) {unknown} in tasks; tasks are {', '.join(TASKS)}")
    return list(tasks)


def check_recipe_task(recipe: Recipe, task: str) -> None:
    """Refuse a recipe whose ``tasks`` leave out ``task`` (the run's), in one line naming
    the recipe's ``fits`` and where to look for another.

    Example:
        >>> check_recipe_task(load_recipe("seq2seq-small"), "classify")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lstmlite.compress.recipe.RecipeError: recipe seq2seq-small is for seq2seq runs, not this classify run...
    """
    if recipe.tasks and task not in recipe.tasks:
        fits = f" It fits {' '.join(recipe.fits.split())}." if recipe.fits else ""
        raise RecipeError(f"recipe {recipe.name or '(unnamed)'} is for {' / '.join(recipe.tasks)} runs, not this "
                          f"{task} run.{fits} lstmlite compress --list-recipes shows the others")


# ----- finding and loading ------------------------------------------------------------------------
def _shipped_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> list[str]:
    """Names of the recipes shipped with lstmlite (``--recipe NAME``)."""
    directory = _shipped_dir()
    return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe file: ``name_or_path`` if it exists, else the shipped recipe of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = _shipped_dir() / f"{name_or_path}.yaml"
    if shipped.is_file() and path.suffix == "" and len(path.parts) == 1:
        return shipped
    known = ", ".join(list_recipes()) or "none"
    raise RecipeError(f"{name_or_path}: no such recipe file, and not a shipped recipe (shipped: {known})")


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Read a recipe from a YAML or JSON file, or a shipped recipe by name.

    Example:
        >>> load_recipe("int8").steps[0].method
        'weight_quant'
    """
    path = find_recipe(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        obj = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise RecipeError(f"{path}: cannot parse recipe ({one_line(err)})") from None
    recipe = parse_recipe(obj, str(path))
    if not recipe.name:
        recipe.name = path.stem
    return recipe


def _as_recipe(recipe: Recipe | dict | list | str | Path) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, (dict, list)):
        return parse_recipe(recipe)
    return load_recipe(recipe)


# ----- applying -----------------------------------------------------------------------------------
def _student_config(model_config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    config = dict(model_config)
    changes = dict(changes)
    width = changes.pop("width", None)
    if width is not None:
        hidden = config["hidden_size"]
        sizes = hidden if isinstance(hidden, list) else [hidden] * int(config.get("num_layers", 1))
        scaled = [max(1, int(round(h * width))) for h in sizes]
        if config.get("tie_weights") and not config.get("rnn_options", {}).get("proj_size"):
            scaled[-1] = sizes[-1]  # a tied LM's last layer feeds the embedding matrix: its width is fixed
        sizes = scaled
        config["hidden_size"] = sizes if len(set(sizes)) > 1 else sizes[0]
        options = config.get("rnn_options") or {}
        if options.get("proj_size"):
            config["rnn_options"] = {**options, "proj_size": _scaled_projections(config, options["proj_size"], width)}
        if config.get("kind") == "seq2seq":  # the decoder and Bahdanau's attention shrink with the encoder
            for key in ("decoder_hidden_size", "attention_size"):
                if config.get(key):
                    config[key] = max(1, int(round(config[key] * width)))
    unknown = sorted(set(changes) - set(config))
    if unknown:
        raise ValueError(f"student: unknown model option(s) {unknown}; known: {sorted(config)} and width")
    new_cell = changes.get("cell", config.get("cell"))
    if new_cell != config.get("cell") and "rnn_options" in config and "rnn_options" not in changes:
        # The source's options belong to its own cell (an LSTM's proj_size, a G-LSTM's groups,
        # a FastGRNN's wrank): keep those the new cell also takes (bias, impl), drop the rest.
        from ..nn.models import cell_options

        accepted = cell_options(str(new_cell))
        config["rnn_options"] = {k: v for k, v in config["rnn_options"].items() if k in accepted}
    config.update(changes)
    options = config.get("rnn_options")
    if isinstance(options, dict) and any(_is_fraction(options.get(k)) for k in ("wrank", "urank")):
        config["rnn_options"] = _ranks_from_fractions(config, dict(options))
    return config


def _scaled_projections(config: dict[str, Any], proj: int | list[int], width: float) -> int | list[int]:
    """An LSTM's proj_size scaled with its (already scaled) layers, each kept below its
    layer's hidden size, as nn.LSTM requires (0, no projection, for a 1-unit layer); a tied
    language model's last projection feeds the embedding matrix and keeps its width."""
    hidden = config["hidden_size"]
    sizes = hidden if isinstance(hidden, list) else [hidden] * int(config.get("num_layers", 1))
    projs = proj if isinstance(proj, list) else [proj] * len(sizes)
    out = []
    for k, (p, h) in enumerate(zip(projs, sizes)):
        if p and not (config.get("tie_weights") and k == len(sizes) - 1):
            p = min(max(1, int(round(p * width))), h - 1)
        out.append(p)
    return out if len(set(out)) > 1 else out[0]


def _is_fraction(value: Any) -> bool:
    return isinstance(value, float) and 0.0 < value < 1.0


def _ranks_from_fractions(config: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """``urank: 0.25`` → a quarter of the (smallest) hidden size; ``wrank`` of min(input, hidden)."""
    hidden = config["hidden_size"]
    h = min(hidden) if isinstance(hidden, list) else int(hidden)
    inputs = config.get("input_size") or config.get("embed_dim") or h
    for key, base in (("urank", h), ("wrank", min(int(inputs), h))):
        if _is_fraction(options.get(key)):
            options[key] = max(1, int(round(options[key] * base)))
    return options


def _build_student(model: nn.Module, changes: dict[str, Any], seed: int) -> nn.Module:
    import torch

    from ..nn.models import build_model

    config = _student_config(model.config(), changes)
    torch.manual_seed(seed)
    try:
        return build_model(config)
    except TypeError as err:
        raise ValueError(f"student: {err}") from None


def _check_targets(model: nn.Module, patterns: list[str]) -> None:
    """Refuse ``targets`` that name no tensor of the model: the method would then change
    nothing and say so only in an INFO log line (a typo such as ``rnn.weights_*``).
    A pattern that alone matches nothing is a warning: a recipe may be written for several
    kinds of model (``embedding.weight`` on one without an embedding)."""
    from .targets import iter_tensors

    names = [f"{fqn}.{name}" if fqn else name for fqn, _, name in iter_tensors(model)]
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if len(unmatched) == len(patterns):
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise ValueError(f"targets {patterns} match no tensor of the model (its tensors: {shown})")
    if unmatched:
        log.warning("targets %s match no tensor of the model", unmatched)


def _compressed_form(model: nn.Module) -> tuple:
    """What a compression step changes: the model's compression record, its config and its
    tensors' names and shapes (a student or a structured prune changes the last two)."""
    from .api import compression_state

    shapes = tuple((name, tuple(t.shape)) for name, t in model.state_dict().items())
    return json.dumps(compression_state(model), sort_keys=True, default=str), json.dumps(
        model.config(), sort_keys=True, default=str), shapes


def _steps_per_epoch(data: Any, batch_size: int) -> int:
    return max(1, math.ceil(len(data.train.y) / batch_size))


def _step_label(recipe: Recipe, index: int, step: RecipeStep) -> str:
    """``recipe NAME step N (METHOD)``: how errors and progress bars name a step."""
    return f"recipe {recipe.name or ''} step {index} ({step.method or 'train'})".replace("  ", " ")


def _step_epochs(step: RecipeStep, max_epochs: Optional[int]) -> int:
    return step.epochs if max_epochs is None else min(step.epochs, max_epochs)


def _transform(model: nn.Module, step: RecipeStep, data: Any, train_config: Any,
               epochs: int) -> tuple[nn.Module, Optional[CompressionConfig], Any]:
    """What ``step`` does to the model before it trains: the student it builds, the
    compression it attaches (``targets`` checked first), and for vocabulary pruning the
    data remapped to the kept ids. Returns ``(model, config or None, data)``; ``data`` is
    the same object unless the vocabulary shrank."""
    from .api import compress_
    from .embedding.vocab import remap_data

    if step.student is not None:
        model = _build_student(model, step.student, train_config.seed)
    config = step.config(_steps_per_epoch(data, train_config.batch_size), epochs, data)
    if config is not None:
        if step.targets is not None:
            _check_targets(model, step.targets)
        before = _compressed_form(model)
        compress_(model, config, step.filter())
        if step.targets is None and _compressed_form(model) == before:
            # explicit targets matching nothing are refused (_check_targets); a method's own
            # defaults may miss on some models (an embedding step on a feature model)
            log.warning("step %s changes nothing in this model: none of its tensors is one %s compresses by "
                        "default (give targets: to choose them)", step.method, step.method)
        if step.method == _VOCAB_PRUNE and getattr(data, "vocab_size", 0) > config.keep:
            data = remap_data(data, config.keep)
    return model, config, data


def _preflight(model: nn.Module, recipe: Recipe, data: Any, base_train: dict[str, Any],
               max_epochs: Optional[int]) -> None:
    """Apply every step's compression, untrained, to a copy of ``model``, so that a step
    that cannot apply to this model is refused before any training, not after the steps
    before it have trained for minutes (text-tiny on a language model whose head shares
    the embedding failed at step 4, after about four minutes of distillation).

    Raises:
        RecipeError: naming the step, the reason and the recipe's ``fits`` line.
    """
    trial = copy.deepcopy(model)
    package_log = logging.getLogger("lstmlite")
    level = package_log.level
    # the real run logs each step's notes (targets matching part of the model, ...) once
    package_log.setLevel(logging.ERROR)
    try:
        _try_steps(trial, recipe, data, base_train, max_epochs)
    finally:
        package_log.setLevel(level)


def _try_steps(trial: nn.Module, recipe: Recipe, data: Any, base_train: dict[str, Any],
               max_epochs: Optional[int]) -> None:
    import torch

    from ..train.trainer import TrainConfig
    from .quantize.transform import freeze_quantization

    with torch.random.fork_rng(devices=[]):  # a student's seeding must not move the real run's draws
        for index, step in enumerate(recipe.steps, start=1):
            label = _step_label(recipe, index, step)
            try:
                epochs = _step_epochs(step, max_epochs)
                train_config = TrainConfig.from_dict({**base_train, **step.train, "epochs": max(epochs, 1)})
                trial, _, data = _transform(trial, step, data, train_config, epochs)
                if step.method == _FAKE_QUANT:
                    freeze_quantization(trial)
            except (ValueError, TypeError) as err:
                reason = one_line(err, limit=2 * ERROR_CHARS)  # ours, or torch's (which can run to kilobytes)
                fits = f" This recipe fits {' '.join(recipe.fits.split())}." if recipe.fits else ""
                raise RecipeError(f"{label}: {reason}. Found before any training.{fits}") from None


def _train_step(model, teacher, data, step: RecipeStep, recipe: Recipe, train_config, callbacks, progress):
    from ..train.trainer import train

    from .distill.transform import distill

    if step.distill_epochs:
        return distill(teacher, model, data, recipe.distill_config(step), train_config, callbacks=callbacks,
                       progress=progress)
    return train(model, data, train_config, callbacks=callbacks, progress=progress)


def apply_recipe(
    run_dir: str | Path,
    recipe: Recipe | dict | list | str | Path,
    out_dir: str | Path,
    data: Any = None,
    max_epochs: Optional[int] = None,
    train_overrides: Optional[dict[str, Any]] = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Any:
    """Apply ``recipe`` to the model of ``run_dir`` and write a NEW run dir ``out_dir``
    (``overwrite``: replace a run dir of ours already there, the CLI's ``--force``).

    Args:
        run_dir: the source run (never modified). Its model is also the teacher of
            every ``distill_epochs`` step.
        recipe: a :class:`Recipe`, its mapping, a file path, or a shipped recipe name.
        out_dir: the run dir to create (must not hold a run).
        data: the :class:`~lstmlite.data.TaskData` to fine-tune and evaluate on
            (default: the data the source run was trained on, rebuilt from its spec).
        max_epochs: cap every step's epochs (quick trials and tests).
        train_overrides: TrainConfig overrides on top of the recipe's (``lr``, ``device``…).
        progress: progress bars.

    Writes ``config.json`` (the source's config with ``compression`` state and
    ``recipe``/``source_run``), ``model.safetensors``, ``metrics.json`` (test-split
    metrics plus ``baseline_metric``, ``baseline_size_bytes`` and ``baseline`` — the
    source model measured here on the same split), ``history.json`` (each trained
    epoch, with its ``step``), ``recipe.json`` (the recipe and what each step did)
    and, for token input, ``vocab.json`` (rewritten after vocabulary pruning).

    Returns:
        the new run, as :func:`lstmlite.io.load_run` reads it back.

    Under torchrun (``WORLD_SIZE`` > 1) every process calls this: each fine-tune and
    distillation step trains with DDP (:mod:`lstmlite.train.distributed`; the recipe's
    masks and schedules see the same weights and step counts on every rank) and rank 0
    alone writes ``out_dir``.
    """
    from ..train import distributed as D

    D.join_process_group(str((train_overrides or {}).get("device", "auto")))
    with D.lockstep():
        return _apply_recipe(run_dir, recipe, out_dir, data, max_epochs, train_overrides, progress, overwrite)


def _apply_recipe(run_dir, recipe, out_dir, data, max_epochs, train_overrides, progress, overwrite) -> Any:
    import torch

    from ..io import Run, RunDirError, check_out_dir, load_run, save_run
    from ..train import distributed as D
    from ..train.run import _metrics_json, load_run_data, model_metrics
    from ..train.trainer import TrainConfig, evaluate, primary_metric_name, require_rows
    from ..export.size import account
    from .api import compression_state
    from .embedding.vocab import prune_vocab
    from .prune.schedule import PruningScheduler
    from .prune.transform import Mask
    from .quantize.transform import freeze_quantization

    recipe = _as_recipe(recipe)
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    # before the fine-tuning, not after it; rank 0 looks (it may tidy temp files), all stop on its error
    D.on_main(lambda: check_out_dir(out_dir, overwrite=overwrite))
    if out_dir.resolve() == run_dir.resolve():
        raise RunDirError(f"{out_dir}: the output must be a new run dir, not the source run; choose another --out")
    if max_epochs is not None and max_epochs < 0:
        raise ValueError(f"max_epochs must be >= 0, got {max_epochs}")
    if train_overrides and "epochs" in train_overrides:
        # each step's own epochs replace it, so it would be ignored (--train.epochs=1 trained on)
        raise ValueError("train.epochs does not apply to a recipe (each step sets finetune_epochs / distill_epochs); "
                         "cap every step with max_epochs (--max-epochs) instead")
    if train_overrides:
        _check_train(train_overrides, "train")  # unknown keys and bad values now, not after the baseline
    source = load_run(run_dir)
    teacher = load_run(run_dir).model if any(s.distill_epochs for s in recipe.steps) else None
    if data is None:
        data = load_run_data(source)  # refuses a run that records no data (an imported one), naming --data
    model = source.model
    metric_name = primary_metric_name(data)
    device = torch.device("cpu")
    require_rows(data, ("test",), "compress reports the test metric before and after: pass --data with a test "
                                  "split (the run was trained with test_fraction=0?)")
    base_train = {k: v for k, v in source.config.get("train", {}).items() if k != "epochs"}
    base_train = {**base_train, **recipe.train, **(train_overrides or {}), "checkpoint": False}
    check_recipe_task(recipe, data.task)  # before the baseline is measured and any step trains
    _preflight(model, recipe, data, base_train, max_epochs)
    baseline_test = evaluate(model, data, data.test, device=device)
    baseline = {"metric_name": metric_name, "metric": baseline_test[metric_name], **model_metrics(model)}
    run_config = {k: copy.deepcopy(v) for k, v in source.config.items()
                  if k not in ("format_version", "model", "compression", "recipe", "source_run")}
    if getattr(data, "spec", None) is not None and hasattr(data.spec, "to_dict") and "data" not in run_config:
        spec = data.spec.to_dict()
        if spec:
            run_config["data"] = spec
    vocab = source.vocab
    history: list[dict[str, Any]] = []
    applied: list[dict[str, Any]] = []

    for index, step in enumerate(recipe.steps, start=1):
        label = _step_label(recipe, index, step)
        epochs = _step_epochs(step, max_epochs)
        mode = "distill" if step.distill_epochs else "fine-tune"
        bar_label: bool | str = f"{label}, {mode}" if progress else False  # bars say what runs
        try:
            train_config = TrainConfig.from_dict({**base_train, **step.train, "epochs": max(epochs, 1)})
        except ValueError as err:
            raise RecipeError(f"{label}: {err}") from None
        record: dict[str, Any] = {"step": index, "method": step.method, "epochs": epochs,
                                  "mode": "distill" if step.distill_epochs else "finetune" if epochs else "none"}
        try:
            model, config, pruned_data = _transform(model, step, data, train_config, epochs)
            if step.student is not None:
                record["student"] = model.config()
            if config is not None:
                record["config"] = config.to_dict()
                if pruned_data is not data:
                    data = pruned_data
                    if isinstance(run_config.get("data"), dict):
                        run_config["data"]["max_vocab"] = config.keep
                    if vocab is not None:
                        vocab = prune_vocab(vocab, config.keep)
                    if data.task == "lm":
                        log.warning("vocabulary pruned to %d tokens: the language model's %s is now measured on "
                                    "the pruned vocabulary (dropped tokens count as <unk>), so it is not "
                                    "comparable with the baseline's", config.keep, metric_name)
            # the gradual masks this step attached: an earlier gradual step's are finished
            own = {m.group for m in model.modules() if isinstance(m, Mask) and m.config is config}
            if step.method == _GRADUAL and not epochs:
                # No training to ramp over (max_epochs=0): the final sparsity all at once, as a
                # trained gradual step ends; otherwise the masks stayed at initial_sparsity.
                scheduler = PruningScheduler(model, groups=own)
                scheduler.step(config.end_step)
                record["sparsity"] = scheduler.current_sparsity()
            if epochs:
                results = []
                if step.method == _GRADUAL:
                    steps_per_epoch = _steps_per_epoch(data, train_config.batch_size)
                    ramp = step.ramp_epochs(steps_per_epoch, epochs)
                    scheduler = PruningScheduler(model, groups=own)
                    ramp_config = TrainConfig.from_dict({**train_config.to_dict(), "epochs": ramp, "patience": 0})
                    results.append(_train_step(model, teacher, data, step, recipe, ramp_config, [scheduler],
                                               bar_label))
                    # Validation may pick an epoch from before the final sparsity: enforce it.
                    scheduler.step(config.end_step)
                    if epochs > ramp:
                        rest = TrainConfig.from_dict({**train_config.to_dict(), "epochs": epochs - ramp})
                        results.append(_train_step(model, teacher, data, step, recipe, rest, [], bar_label))
                    record["sparsity"] = scheduler.current_sparsity()
                else:
                    results.append(_train_step(model, teacher, data, step, recipe, train_config, [], bar_label))
                for phase, result in enumerate(results):
                    history += [{"step": index, "phase": phase, **h} for h in result.history]
                record["best_val"] = results[-1].best_val
                record["best_epoch"] = results[-1].best_epoch
            if step.method == _FAKE_QUANT:
                freeze_quantization(model)
        except RecipeError:
            raise
        except (ValueError, TypeError) as err:
            # training: ours, or torch's (an argument TypeError can run to kilobytes)
            raise RecipeError(f"{label}: {one_line(err, limit=2 * ERROR_CHARS)}") from None
        model.cpu()
        record["size_bytes"] = account(model).size_bytes
        applied.append(record)
        log.info("%s: size %d bytes", label, record["size_bytes"])

    model.cpu().eval()
    run_config["compression"] = compression_state(model)
    run_config["recipe"] = recipe.name
    run_config["source_run"] = str(run_dir)
    vocab = vocab.to_dict() if hasattr(vocab, "to_dict") else vocab

    def finish() -> dict[str, Any]:
        test = evaluate(model, data, data.test, device=device)
        val = evaluate(model, data, data.val, device=device)
        metrics = {**_metrics_json(model, data, test, val),
                   "baseline_metric": baseline["metric"], "baseline_size_bytes": baseline["size_bytes"],
                   "baseline": baseline, "recipe": recipe.name, "source_run": str(run_dir)}
        # recipe.json is written with the rest, before the manifest that marks the run dir finished
        save_run(out_dir, model, run_config, metrics=metrics, history=history, vocab=vocab, overwrite=overwrite,
                 extra={"recipe.json": {"recipe": recipe.to_dict(), "source_run": str(run_dir), "applied": applied}})
        return metrics

    metrics = D.on_main(finish)  # written once, by rank 0
    if D.is_main():
        return load_run(out_dir)
    return Run(path=out_dir, model=model, config=run_config, metrics=metrics, history=history, vocab=vocab)
