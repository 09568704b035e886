"""Printing metrics the same way in every sub-command."""

from __future__ import annotations

from typing import Any

from .common import format_bytes, format_table


def print_metrics(metrics: dict[str, Any], split: str = "test") -> None:
    """``metrics`` (metrics.json's keys) as a table; ``split`` names the split that
    ``metric`` and ``metrics[split]`` were measured on (``lstmlite eval --split``)."""
    rows = [
        ("dataset", metrics.get("dataset", "")),
        # null when the data has no such split (trained with test_fraction=0)
        (f"{split} {metrics['metric_name']}", f"– (no {split} split)" if metrics["metric"] is None else metrics["metric"]),
        ("params", metrics.get("params", "")),
        ("non-zero params", metrics.get("nonzero_params", "")),
        ("size" + (" (estimate: no .lsl file)" if metrics.get("size_basis") == "estimate" else " (.lsl file)"),
         format_bytes(metrics["size_bytes"]) if "size_bytes" in metrics else ""),
        ("MACs / step", metrics.get("macs_per_step", "")),
    ]
    for key in ("macro_f1", "mae_vs_naive", "naive_mae", "rmse"):
        value = metrics.get(split, {}).get(key)
        if value is not None:
            rows.append((f"{split} {key}", value))
    if "best_epoch" in metrics:
        rows.append(("chosen epoch (best validation)", metrics["best_epoch"]))
    if "train_seconds" in metrics:
        rows.append(("train time", f"{metrics['train_seconds']:.1f} s"))
    print(format_table(rows, ["", "value"]))


def format_tensor_sizes(rows: list[dict[str, Any]]) -> str:
    """The per-tensor bytes of a .lsl file (:func:`lstmlite.runtime.lsl.describe_lsl`
    rows) as a table with a total line: what export stored, at which precision."""
    table = [(r["name"], r["dtype"], "x".join(str(d) for d in r["shape"]) or "-", f"{r['bytes']:,}") for r in rows]
    table.append(("total", "-", "-", format_bytes(sum(r["bytes"] for r in rows))))
    return format_table(table, ["tensor", "stored as", "shape", "bytes"])
