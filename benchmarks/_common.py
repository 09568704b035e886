"""Shared bits of the benchmark scripts: machine description and result files.

Results go to ``benchmarks/results/<benchmark>.json`` as
``{"benchmark", "date", "machine": {...}, "rows": [...]}`` (DESIGN.md).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
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


def c_compiler(source: str) -> str:
    """The first of gcc, cc and clang on PATH, to build ``source`` (named in the error).

    Raises SystemExit, naming the source, when there is none."""
    for cc in ("gcc", "cc", "clang"):
        if shutil.which(cc):
            return cc
    raise SystemExit(f"no C compiler (gcc, cc or clang) to build {source}")


def x86_has(flag: str) -> bool:
    """Whether this is an x86-64 CPU whose /proc/cpuinfo flags list ``flag`` (``"avx2"``).

    >>> x86_has("no-such-flag")
    False
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        return flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def write_result(benchmark: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{benchmark}.json"
    payload = {"benchmark": benchmark, "date": _dt.date.today().isoformat(), "machine": machine(),
               **(extra or {}), "rows": rows}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
