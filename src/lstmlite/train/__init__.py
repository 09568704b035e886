"""Training: the loop, metrics, checkpoints, and config → run dir (``fit``)."""

from .metrics import accuracy, bits_per_token, macro_f1, mae, perplexity, rmse
from .run import (apply_overrides, default_model_config, default_train_config, default_train_note, evaluate_run, fit,
                  load_run_data, model_metrics, split_time_steps)
from .trainer import TrainConfig, TrainResult, evaluate, predict, primary_metric_name, train

__all__ = [
    "TrainConfig", "TrainResult", "train", "evaluate", "predict", "primary_metric_name",
    "fit", "evaluate_run", "load_run_data", "default_model_config", "default_train_config", "default_train_note",
    "split_time_steps", "apply_overrides", "model_metrics",
    "accuracy", "macro_f1", "perplexity", "bits_per_token", "mae", "rmse",
]
