"""The distillation objective, written out term by term.

For a classifier (one distribution per sequence) and a language model (one per
token), with student logits s, teacher logits t, labels y, temperature T, soft
weight α and hidden weight β:

    L = α · T² · KL(softmax(t / T) ‖ softmax(s / T))      soft targets
      + (1 − α) · CE(s, y)                                  the task loss
      + β · MSE(P h_s, h_t)                                 hidden-state matching

KL is summed over classes and averaged over positions (sequences for a classifier,
every token of every window for a language model, the valid steps of a tagger or CTC
model and the target tokens of a seq2seq model), so it is on the same per-example
scale as the cross-entropy the trainer uses. Padding never counts: a tagger's and a
CTC model's steps past each row's length and a seq2seq model's padding positions after
the target's ``</s>`` (id 0, the id the task loss ignores) are left out of the soft and
the hidden term, as the task losses leave them out (:func:`valid_positions`). The T² factor keeps the soft-target
gradient magnitude independent of T (Hinton, Vinyals & Dean 2015, section 2).
``h_s`` / ``h_t`` are what each model's head reads (the pooled sequence feature of a
classifier, the per-step RNN output of a language model) and ``P`` a learned linear
map from the student's width to the teacher's; MSE averages over all elements (of the
valid positions).

A forecaster's outputs are real values, so its soft term is ``MSE(s, t)`` (no
temperature): ``L = α · MSE(s, t) + (1 − α) · MSE(s, y) + β · MSE(P h_s, h_t)``.

Example:
    >>> import torch
    >>> s, t = torch.zeros(2, 3), torch.zeros(2, 3)
    >>> float(kd_loss(s, t, temperature=4.0))
    0.0
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .config import DistillConfig

__all__ = ["kd_loss", "hidden_match_loss", "task_loss", "distill_objective", "valid_positions"]


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float,
            mask: Tensor | None = None) -> Tensor:
    """``T² · mean over positions of KL(softmax(t/T) ‖ softmax(s/T))``.

    Args:
        student_logits: (..., C) — (B, C) for a classifier, (B, T, V) for an LM.
        teacher_logits: the same shape as ``student_logits``.
        temperature: T > 0.
        mask: the positions that count, shaped as the logits without C (e.g. (B, T),
            True = valid); None: every position. The mean is over the valid ones.

    Returns:
        a scalar tensor (differentiable in ``student_logits``).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    classes = student_logits.shape[-1]
    s = student_logits.float().reshape(-1, classes) / temperature
    t = teacher_logits.float().reshape(-1, classes) / temperature
    log_p_student = F.log_softmax(s, dim=-1)
    log_p_teacher = F.log_softmax(t, dim=-1)
    if mask is not None:
        keep = _flat_mask(mask, student_logits.shape[:-1])
        # sum p (log p − log q) per valid position, averaged over the valid positions
        rows = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)
        return (rows * keep).sum() / keep.sum().clamp(min=1) * (temperature ** 2)
    # kl_div(input=log q, target=log p, log_target=True) = sum p (log p − log q); batchmean
    # divides by the rows, i.e. positions.
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * (temperature ** 2)


def _flat_mask(mask: Tensor, positions: torch.Size) -> Tensor:
    if tuple(mask.shape) != tuple(positions):
        raise ValueError(f"mask {tuple(mask.shape)} does not match the positions {tuple(positions)}")
    return mask.reshape(-1).float()


def valid_positions(task: str, output: Tensor, y: Tensor, lengths: Tensor | None = None) -> Tensor | None:
    """Which output positions are real, (B, T) bool, or None when all are.

    ``tag`` / ``ctc``: the steps before each row's length (``lengths``; None: no
    padding); ``seq2seq``: the target positions that are not padding (``y`` ≠ 0, over
    the teacher-forced length of ``output``); other tasks: None.
    """
    if task in ("tag", "ctc") and lengths is not None:
        steps = torch.arange(output.shape[1], device=output.device)
        return steps[None, :] < torch.as_tensor(lengths, device=output.device)[:, None]
    if task == "seq2seq":
        return y[:, : output.shape[1]] != 0
    return None


def hidden_match_loss(student_hidden: Tensor, teacher_hidden: Tensor, projection: nn.Module,
                      mask: Tensor | None = None) -> Tensor:
    """``mean((projection(h_s) − h_t)²)``.

    Args:
        student_hidden: (..., H_s), e.g. (B, H_s) or (B, T, H_s).
        teacher_hidden: (..., H_t), the same leading shape.
        projection: maps H_s → H_t (an ``nn.Linear``).
        mask: the positions that count, shaped as the leading dims (e.g. (B, T));
            None: all. The mean is over the valid positions' elements.
    """
    projected = projection(student_hidden.float())
    if projected.shape != teacher_hidden.shape:
        raise ValueError(f"projected student hidden {tuple(projected.shape)} does not match the teacher's "
                         f"{tuple(teacher_hidden.shape)}")
    if mask is None:
        return F.mse_loss(projected, teacher_hidden.float())
    keep = _flat_mask(mask, projected.shape[:-1])
    squared = ((projected - teacher_hidden.float()) ** 2).reshape(-1, projected.shape[-1]).sum(-1)
    return (squared * keep).sum() / (keep.sum().clamp(min=1) * projected.shape[-1])


def task_loss(task: str, output: Tensor, y: Tensor, lengths: Tensor | None = None) -> Tensor:
    """The trainer's own task loss (cross-entropy per sequence / token / step, CTC, or MSE).

    ``lengths`` (B,) are the valid frames, which CTC needs (None: every frame).
    """
    if task == "seq2seq":  # per target token; padding (0) ignored
        from ...train.seq2seq import seq2seq_loss

        return seq2seq_loss(output, y)
    if task in ("tag", "ctc"):
        from ...train.sequence import ctc_loss, tag_loss

        return ctc_loss(output, y, lengths) if task == "ctc" else tag_loss(output, y)
    if task == "classify":
        return F.cross_entropy(output.float(), y)
    if task == "lm":
        return F.cross_entropy(output.float().reshape(-1, output.shape[-1]), y.reshape(-1))
    if task == "forecast":
        return F.mse_loss(output.float(), y.float())
    raise ValueError(f"unknown task {task!r}")


def distill_objective(
    task: str,
    student_output: Tensor,
    teacher_output: Tensor,
    y: Tensor,
    config: DistillConfig,
    student_hidden: Tensor | None = None,
    teacher_hidden: Tensor | None = None,
    projection: nn.Module | None = None,
    lengths: Tensor | None = None,
) -> Tensor:
    """The whole distillation loss L of the module doc (a scalar).

    Args:
        task: ``classify`` | ``lm`` | ``forecast`` | ``tag`` | ``ctc`` | ``seq2seq``.
        student_output, teacher_output: logits (B, C) / (B, T, V), or forecasts.
        y: labels (B,) / next tokens (B, T) / targets.
        config: temperature, alpha, hidden_weight.
        student_hidden, teacher_hidden, projection: needed when ``hidden_weight > 0``.
        lengths: (B,) valid steps: the CTC task loss needs them, and a tagger's or CTC
            model's soft and hidden terms leave the steps past them out (per-frame
            distributions of the valid frames only; see :func:`valid_positions`).
    """
    if task == "forecast":
        soft = F.mse_loss(student_output.float(), teacher_output.float())
        mask = None
    else:
        mask = valid_positions(task, student_output, y, lengths)
        soft = kd_loss(student_output, teacher_output, config.temperature, mask)
    loss = config.alpha * soft + (1.0 - config.alpha) * task_loss(task, student_output, y, lengths)
    if config.hidden_weight > 0:
        if student_hidden is None or teacher_hidden is None or projection is None:
            raise ValueError("hidden_weight > 0 needs the student and teacher hidden states and a projection")
        hidden_mask = mask if mask is not None and student_hidden.dim() == mask.dim() + 1 else None
        loss = loss + config.hidden_weight * hidden_match_loss(student_hidden, teacher_hidden, projection,
                                                               hidden_mask)
    return loss


def _check_same_output(student_output: Tensor, teacher_output: Tensor) -> None:
    if student_output.shape != teacher_output.shape:
        raise ValueError(
            f"teacher and student outputs differ in shape ({tuple(teacher_output.shape)} vs "
            f"{tuple(student_output.shape)}): they must solve the same task with the same classes / vocabulary"
        )

