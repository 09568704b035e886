"""Shared bits of the benchmark scripts: machine description and result files.

Results go to ``benchmarks/results/<benchmark>.json`` as
``{"benchmark", "date", "machine": {...}, "rows": [...]}`` (DESIGN.md).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What ran the benchmark: CPU model, cores, library versions."""
    import numpy
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def write_result(benchmark: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{benchmark}.json"
    payload = {"benchmark": benchmark, "date": _dt.date.today().isoformat(), "machine": machine(),
               **(extra or {}), "rows": rows}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
