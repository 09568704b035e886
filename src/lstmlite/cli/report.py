"""Printing metrics the same way in every sub-command."""

from __future__ import annotations

from typing import Any

from .common import format_bytes, format_table


def print_metrics(metrics: dict[str, Any]) -> None:
    rows = [
        ("dataset", metrics.get("dataset", "")),
        (f"test {metrics['metric_name']}", metrics["metric"]),
        ("params", metrics.get("params", "")),
        ("non-zero params", metrics.get("nonzero_params", "")),
        ("size", format_bytes(metrics["size_bytes"]) if "size_bytes" in metrics else ""),
        ("MACs / step", metrics.get("macs_per_step", "")),
    ]
    for key in ("macro_f1", "mae_vs_naive", "naive_mae", "rmse"):
        value = metrics.get("test", {}).get(key)
        if value is not None:
            rows.append((f"test {key}", value))
    if "train_seconds" in metrics:
        rows.append(("train time", f"{metrics['train_seconds']:.1f} s"))
    print(format_table(rows, ["", "value"]))
