"""Build a generated project for the host, run its example, and compare the outputs with
what they must be: the integer reference (:mod:`lstmlite.reference.integer`, exactly)
for the integer-only form, TFLite's (:mod:`lstmlite.reference.tflite_int`, exactly) for
the tflite form, the model itself (PyTorch) for the float forms -- for ``int8``, the model
with its float weight matrices rounded to the int8 codes that form stores
(:func:`int8_reference`), so that the check measures the C, not the rounding.

Example:
    >>> from lstmlite.nn import SequenceClassifier                # doctest: +SKIP
    >>> project = export_c(SequenceClassifier(input_size=3, hidden_size=4), "out")  # doctest: +SKIP
    >>> check_on_host(project, model, project.example)  # max abs difference, scale  # doctest: +SKIP
    (2.9e-08, 0.41)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_host_example", "expected_outputs", "check_on_host", "int8_reference"]


#: where :func:`check_on_host` keeps what the host build of the example printed: the output
#: a board running the same example should print (docs/mcu.md, the project's README)
EXPECTED_OUTPUT = "example_expected.txt"


def run_host_example(path: Any, timeout: float = 300, keep_as: str | None = None) -> np.ndarray:
    """``make host`` and run the example; returns (steps, outputs) int64 or float32.
    ``keep_as``: also write what it printed to that file of the project."""
    for tool in ("make", "cc"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"no {tool} on PATH: cannot build the C project for the host")
    build = subprocess.run(["make", "-s", "host"], cwd=path, capture_output=True, text=True, timeout=timeout)
    if build.returncode != 0:
        raise RuntimeError(f"the generated C does not build: {(build.stderr or build.stdout).strip().splitlines()[-1:]}")
    run = subprocess.run([f"{path}/build/host/example"], capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"the example failed: {run.stdout.strip().splitlines()[-1:]}")
    if keep_as is not None:
        (Path(path) / keep_as).write_text(run.stdout)
    rows = [line.split(":", 1)[1].split() for line in run.stdout.splitlines() if re.match(r"step \d+:", line)]
    if not rows:
        raise RuntimeError("the example printed no outputs")
    if rows[0] and all(re.fullmatch(r"[0-9a-f]{8}", v) for v in rows[0]) and "float" in open(
            f"{path}/model.h").read().split("lstmlite_output_t;")[0].splitlines()[-1]:
        return np.array([[int(v, 16) for v in r] for r in rows], dtype=np.uint32).view(np.float32)
    return np.array([[int(v) for v in r] for r in rows], dtype=np.int64)


def int8_reference(model: Any) -> Any:
    """What the ``int8`` form computes, as a PyTorch model: a copy of ``model`` whose float
    weight matrices (recurrent, embedding, head; low-rank ones factor by factor) carry the
    per-row int8 codes the export rounds them to; matrices the model quantized itself keep
    their own codes, as the export keeps them (:func:`lstmlite.export.lsl.rounded_reference`).
    Where no PyTorch model computes the project (a low-rank product under a mask), the model."""
    from ..lsl import rounded_reference

    try:
        return rounded_reference(model, "int8")
    except ValueError:
        return model


def expected_outputs(project: Any, model: Any, example: np.ndarray) -> np.ndarray:
    """Every step's output the example must print (see the module doc)."""
    if getattr(project, "tflite", None) is not None:  # TFLite's arithmetic, in NumPy integers
        from ...reference.tflite_int import tflite_lstm_sequence

        return tflite_lstm_sequence(project.tflite, np.asarray(example, np.int64)[None])[0][0].astype(np.int64)
    if project.integer is not None:
        from ...reference.integer import integer_lstm_sequence
        from ...reference.integer_gru import integer_gru_sequence
        from ...reference.integer_head import integer_head_forward

        form = project.integer
        x_q = form.embedding[example] if form.embedding is not None else example
        seq = integer_lstm_sequence if form.params.cell == "lstm" else integer_gru_sequence
        h = seq(form.params, np.asarray(x_q, np.int64)[None])[0][0]
        return integer_head_forward(form.head, h) if form.head is not None else h.astype(np.int64)
    import torch

    if getattr(project, "form", None) == "int8":  # the export rounded float matrices: so does the reference
        model = int8_reference(model)
    with torch.no_grad():  # step t's output = the model on the prefix x[:t + 1]
        x = torch.as_tensor(example[None])
        rows = []
        for t in range(len(example)):
            y = model(x[:, :t + 1])
            y = y[0] if isinstance(y, tuple) else y
            if getattr(model, "kind", None) == "forecaster":  # (B, horizon[, targets]): flat, horizon-major
                rows.append(y[0].reshape(-1))
            else:  # a per-step model's (B, T, C): the last step's; a classifier's (B, C)
                rows.append(y[0, -1] if y.ndim == 3 else y[0])
        return torch.stack(rows).double().numpy()


def check_on_host(project: Any, model: Any, example: np.ndarray) -> tuple[float, float]:
    """(largest |C output - expected|, largest |expected|) over the example; the first is
    0 for an exact integer match. What the host build printed is kept in the project as
    :data:`EXPECTED_OUTPUT`, for a check on the board without Python."""
    got = run_host_example(project.path, keep_as=EXPECTED_OUTPUT)
    expected = expected_outputs(project, model, example)
    if got.shape != expected.shape:
        raise RuntimeError(f"the C project printed {got.shape} outputs, expected {expected.shape}")
    return float(np.max(np.abs(got.astype(np.float64) - expected))), float(np.max(np.abs(expected)))
