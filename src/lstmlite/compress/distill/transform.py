"""Train a student from a teacher with the lstmlite trainer.

:func:`distill` runs :func:`lstmlite.train.train` on the student with an
``extra_loss`` that turns the trainer's task loss into the distillation objective of
:mod:`lstmlite.compress.distill.loss`. The trainer computes ``task + extra``; with

    extra = α · T² · KL(softmax(t/T) ‖ softmax(s/T)) − α · task + β · MSE(P h_s, h_t)

the optimised loss is exactly ``α · T² · KL + (1 − α) · task + β · MSE``. The teacher
runs in eval mode under ``torch.no_grad()`` on every batch (no cached logits, so data
augmentation or shuffling never goes stale); only the student (and the projection
``P``, while training) receive gradients. Model selection stays on the validation
split's task metric, as for any training.

Example:
    >>> from lstmlite.nn import SequenceClassifier
    >>> teacher = SequenceClassifier(input_size=3, hidden_size=32, n_classes=2)
    >>> student = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)
    >>> result = distill(teacher, student, data, DistillConfig(temperature=2.0))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from .config import DistillConfig
from .loss import _check_same_output, distill_objective, task_loss

__all__ = ["distill", "fold_teacher_logits", "make_distill_loss", "hidden_projection"]

log = logging.getLogger(__name__)


class _HeadInput:
    """Keeps what a model's ``head`` read in the model's latest forward: the hidden
    features. A head called once per step (a Bahdanau seq2seq decoder's teacher forcing
    runs one step at a time) gives its (B, H) inputs stacked over the steps, (B, S, H),
    as a head called once on every step gives them."""

    def __init__(self, model: nn.Module) -> None:
        self._inputs: list[Tensor] = []
        self._active = False
        self._handles = [model.register_forward_pre_hook(self._start), model.register_forward_hook(self._stop),
                         model.head.register_forward_pre_hook(self._hook)]

    def _start(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._inputs, self._active = [], True

    def _stop(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self._active = False

    def _hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self._active:  # not the step-by-step decoding of validation, which calls no forward
            self._inputs.append(args[0])

    @property
    def value(self) -> Tensor | None:
        if not self._inputs:
            return None
        return self._inputs[0] if len(self._inputs) == 1 else torch.stack(self._inputs, dim=1)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


class _StudentWithProjection(nn.Module):
    """The student plus the hidden-state projection, so the trainer's optimizer (built
    from ``model.parameters()``) trains both; forward is the student's."""

    def __init__(self, student: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.projection = projection

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.student(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # validation sees the student: a seq2seq student is decoded through its encode /
        # step / max_target_len, which the wrapper passes on
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("student"), name)


def fold_teacher_logits(teacher_logits: Tensor, n_keep: int, temperature: float, unk_id: int = 1) -> Tensor:
    """A teacher's LM logits over a vocabulary of V tokens → logits over the first ``n_keep``.

    Used when the student's vocabulary was pruned to the ``n_keep`` most frequent
    tokens (ids ≥ n_keep became ``<unk>``): the teacher's probability of ``<unk>`` at
    temperature T becomes the sum of its ``<unk>`` and dropped-token probabilities, so
    ``softmax(folded / T)`` is exactly the teacher's distribution over the student's
    vocabulary.

    Args:
        teacher_logits: (..., V).
        n_keep: the student's vocabulary size (≤ V).
        temperature: the T the soft targets use.
        unk_id: the id dropped tokens map to.

    Returns:
        (..., n_keep) logits.
    """
    v = teacher_logits.shape[-1]
    if n_keep >= v:
        return teacher_logits
    scaled = teacher_logits / temperature
    folded = scaled[..., :n_keep].clone()
    merged = torch.cat([scaled[..., unk_id:unk_id + 1], scaled[..., n_keep:]], dim=-1)
    folded[..., unk_id] = torch.logsumexp(merged, dim=-1)
    return folded * temperature


def hidden_projection(student: nn.Module, teacher: nn.Module, seed: int) -> nn.Linear:
    """The fresh projection P (H_s → H_t) of the hidden-matching term, seeded.

    Args:
        student, teacher: task models with a Linear ``head``; P maps what the
            student's head reads (``head.in_features``) to what the teacher's reads.
        seed: seeds P's initialisation, so a run is repeatable (and a test can rebuild
            the initial P to check that training moved it).

    Example:
        >>> from lstmlite.nn import SequenceClassifier
        >>> p = hidden_projection(SequenceClassifier(input_size=3, hidden_size=4),
        ...                       SequenceClassifier(input_size=3, hidden_size=8), seed=0)
        >>> tuple(p.weight.shape)
        (8, 4)
    """
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return nn.Linear(student.head.in_features, teacher.head.in_features)
    finally:
        torch.random.set_rng_state(generator_state)  # leave the caller's random stream as it was


def _forward(model: nn.Module, task: str, batch: Any) -> Tensor:
    if task == "seq2seq":  # teacher-forced logits (B, S, V) over the batch's longest target
        from ...train.seq2seq import trim_targets

        return model(batch.x, batch.lengths, trim_targets(batch.y))
    if task == "lm":
        return model(batch.x)[0]
    return model(batch.x, batch.lengths)


def _check_pair(teacher: nn.Module, student: nn.Module) -> None:
    for name, m in (("teacher", teacher), ("student", student)):
        if not isinstance(getattr(m, "head", None), nn.Linear):
            raise ValueError(f"the {name} has no Linear 'head'; distill works on lstmlite task models")
    if getattr(teacher, "kind", None) != getattr(student, "kind", None):
        raise ValueError(f"teacher ({getattr(teacher, 'kind', '?')}) and student ({getattr(student, 'kind', '?')}) "
                         "are different kinds of model")
    t_vocab, s_vocab = getattr(teacher, "vocab_size", 0), getattr(student, "vocab_size", 0)
    if bool(t_vocab) != bool(s_vocab) or s_vocab > t_vocab:
        raise ValueError(f"the student's input vocabulary ({s_vocab}) must be the teacher's ({t_vocab}) "
                         "or a frequency-pruned prefix of it")
    if getattr(student, "kind", None) != "lm" and teacher.head.out_features != student.head.out_features:
        raise ValueError(f"teacher has {teacher.head.out_features} outputs, the student "
                         f"{student.head.out_features}; they must solve the same task")


def make_distill_loss(
    teacher: nn.Module,
    task: str,
    config: DistillConfig,
    projection: nn.Module | None,
    student_hidden: _HeadInput | None,
    teacher_hidden: _HeadInput | None,
) -> Callable[[nn.Module, Any, Tensor], Tensor]:
    """The trainer ``extra_loss`` that makes ``task + extra`` the distillation objective."""

    def extra(model: nn.Module, batch: Any, output: Tensor) -> Tensor:
        with torch.no_grad():
            teacher_output = _forward(teacher, task, batch)
        if task == "lm" and teacher_output.shape[-1] > output.shape[-1]:
            teacher_output = fold_teacher_logits(teacher_output, output.shape[-1], config.temperature)
        _check_same_output(output, teacher_output)
        hidden = {}
        if projection is not None:
            hidden = {"student_hidden": student_hidden.value, "teacher_hidden": teacher_hidden.value,
                      "projection": projection}
        total = distill_objective(task, output, teacher_output, batch.y, config, lengths=batch.lengths, **hidden)
        return total - task_loss(task, output, batch.y, batch.lengths)

    return extra


def distill(
    teacher: nn.Module | str | Path,
    student: nn.Module,
    data: Any,
    config: DistillConfig | None = None,
    train_config: Any = None,
    out_dir: str | Path | None = None,
    callbacks: Sequence[Any] = (),
    extra_loss: Callable[[nn.Module, Any, Tensor], Tensor] | None = None,
    progress: bool | str = True,
) -> Any:
    """Train ``student`` on ``data`` with soft targets from ``teacher``.

    Args:
        teacher: a trained task model, or a run dir (its model is loaded).
        student: the model to train (any size; may carry compression
            parametrizations, which then train as usual).
        data: a :class:`lstmlite.data.TaskData` (classify, lm or forecast).
        config: temperature, alpha, hidden_weight (default :class:`DistillConfig`).
        train_config: a :class:`lstmlite.train.TrainConfig` (epochs, lr, …).
        out_dir: checkpoints go under ``out_dir/checkpoints`` (None: none).
        callbacks: trainer callbacks (e.g. a pruning schedule on the student).
        extra_loss: another ``f(model, batch, output)`` term to add (e.g. a
            group-lasso penalty); it receives the student.
        progress: show a progress bar (a string: its label, see :func:`lstmlite.train.train`).

    Returns:
        the trainer's :class:`~lstmlite.train.TrainResult` (``extra["distill"]`` holds
        the config, ``extra["hidden_projection"]`` the trained P when
        ``hidden_weight > 0``); ``student`` is left holding its best validation weights.
    """
    from ...io import load_run
    from ...train.trainer import TrainConfig, select_device, train

    config = config or DistillConfig()
    train_config = train_config or TrainConfig()
    if isinstance(teacher, (str, Path)):
        teacher = load_run(teacher).model
    if teacher is student:
        raise ValueError("the teacher and the student are the same model object")
    _check_pair(teacher, student)
    device = select_device(train_config.device)
    teacher_device = next(teacher.parameters()).device
    teacher_was_training = teacher.training
    teacher.to(device).eval()

    projection = student_hook = teacher_hook = None
    model: nn.Module = student
    if config.hidden_weight > 0:
        projection = hidden_projection(student, teacher, train_config.seed)
        student_hook, teacher_hook = _HeadInput(student), _HeadInput(teacher)
        model = _StudentWithProjection(student, projection)
    loss = make_distill_loss(teacher, data.task, config, projection, student_hook, teacher_hook)
    if extra_loss is not None:
        user_loss = extra_loss

        def combined(m: nn.Module, batch: Any, output: Tensor) -> Tensor:
            return loss(m, batch, output) + user_loss(student, batch, output)

        objective = combined
    else:
        objective = loss
    log.info("distilling: T=%g alpha=%g hidden_weight=%g", config.temperature, config.alpha, config.hidden_weight)
    try:
        result = train(model, data, train_config, out_dir=out_dir, callbacks=callbacks, extra_loss=objective,
                       progress=progress)
    finally:
        for hook in (student_hook, teacher_hook):
            if hook is not None:
                hook.remove()
        teacher.to(teacher_device).train(teacher_was_training)
    result.extra["distill"] = config.to_dict()
    if projection is not None:
        # P is thrown away after training (the student never carries it), but it is the
        # evidence that the hidden term trained: callers and tests can inspect it.
        result.extra["hidden_projection"] = projection.cpu().eval()
    return result
