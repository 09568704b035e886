"""Knowledge distillation: a teacher run's soft targets train a smaller student.

See :mod:`.loss` for the objective and :func:`distill` for the training entry point.
"""

from .config import DistillConfig
from .loss import distill_objective, hidden_match_loss, kd_loss
from .transform import distill, fold_teacher_logits

__all__ = ["DistillConfig", "distill", "kd_loss", "hidden_match_loss", "distill_objective", "fold_teacher_logits"]
