"""Read TFLite Micro's LSTM conformance vectors (CMSIS-NN's unit-test headers) into
:class:`lstmlite.reference.tflite_int.TFLiteLSTMParams` plus inputs and expected outputs.

The vectors live outside the project, in ``../shared/peers/tflm-lstm-testdata`` (one
folder per case: ``config_data.h`` with ``#define``s, one header per array). They were
made by converting a Keras LSTM to TFLite and running TFLite Micro's interpreter, so
their ``output`` is TFLite's answer. Only the headers that ``test_data.h`` includes are
read (lstm_2 and lstm_one_time_step also carry stale files of an older generator).

Conventions of the headers, as CMSIS-NN's kernel reads them: ``INPUT_ZERO_POINT`` is the
*offset added* to the input (= -z_x), ``OUTPUT_ZERO_POINT`` is z_h itself, shifts are
TFLite's (negative = right), ``CELL_CLIP`` is the quantized clip.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmlite.reference.tflite_int import GATES, TFLiteGate, TFLiteLSTMParams

#: The folder of vector sets; LSTMLITE_TFLM_VECTORS overrides it.
VECTOR_ROOT = Path(os.environ.get(
    "LSTMLITE_TFLM_VECTORS", Path(__file__).resolve().parents[2] / "shared" / "peers" / "tflm-lstm-testdata"))
if not VECTOR_ROOT.is_dir():  # a worktree sits at /work/wt-*, the shared folder at /work/shared
    VECTOR_ROOT = Path("/work/shared/peers/tflm-lstm-testdata")

INT8_CASES = ("lstm_1", "lstm_2", "lstm_one_time_step", "lstm_stateful_batch_major_multibatch")
ALL_CASES = INT8_CASES + tuple(c + "_s16" for c in INT8_CASES)

_DTYPES = {"int8_t": np.int8, "int16_t": np.int16, "int32_t": np.int32, "int64_t": np.int64}


@dataclass
class VectorCase:
    """One vector set: params, input (B, T, I) batch-major, expected output (B, T, H)."""

    name: str
    params: TFLiteLSTMParams
    x: np.ndarray
    expected: np.ndarray
    time_major: bool
    x_file_order: np.ndarray        # the input as stored ((T, B, I) when time_major)
    expected_file_order: np.ndarray


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    text = path.read_text()
    out = {}
    for m in re.finditer(r"const\s+(\w+)\s+(\w+)\[(\d+)\]\s*=\s*\{([^}]*)\}", text):
        ctype, name, n, body = m.groups()
        values = np.array([int(v) for v in body.replace("\n", " ").split(",") if v.strip()], dtype=np.int64)
        if len(values) != int(n):
            raise ValueError(f"{path}: {name} has {len(values)} values, declared {n}")
        out[name] = values.astype(_DTYPES[ctype])
    return out


def available() -> bool:
    return VECTOR_ROOT.is_dir() and all((VECTOR_ROOT / c / "test_data.h").is_file() for c in ALL_CASES)


def load_case(name: str) -> VectorCase:
    folder = VECTOR_ROOT / name
    prefix = name.upper() + "_"
    cfg = {m.group(1)[len(prefix):]: m.group(2) for m in re.finditer(
        r"#define\s+(\w+)\s+(\S+)", (folder / "config_data.h").read_text()) if m.group(1).startswith(prefix)}
    included = re.findall(r'#include\s+"(\w+)\.h"', (folder / "test_data.h").read_text())
    arrays: dict[str, np.ndarray] = {}
    for header in included:
        if header != "config_data":
            arrays.update({k[len(name) + 1:]: v for k, v in _read_arrays(folder / f"{header}.h").items()})
    b, t, i, h = (int(cfg[k]) for k in ("BATCH_SIZE", "TIME_STEPS", "INPUT_SIZE", "HIDDEN_SIZE"))
    integer = {k: int(v) for k, v in cfg.items() if re.fullmatch(r"-?\d+", v)}

    def gate(g: str) -> TFLiteGate:
        G = g.upper()
        return TFLiteGate(arrays[f"{g}_gate_input_weights"].reshape(h, i), arrays[f"{g}_gate_hidden_weights"].reshape(h, h),
                          arrays[f"{g}_gate_bias"], integer[f"{G}_GATE_INPUT_MULTIPLIER"], integer[f"{G}_GATE_INPUT_SHIFT"],
                          integer[f"{G}_GATE_HIDDEN_MULTIPLIER"], integer[f"{G}_GATE_HIDDEN_SHIFT"])

    bits = 16 if arrays["input_tensor"].dtype == np.int16 else 8
    params = TFLiteLSTMParams(
        *(gate(g) for g in GATES),
        input_zero_point=-integer["INPUT_ZERO_POINT"], output_zero_point=integer["OUTPUT_ZERO_POINT"],
        cell_scale_power=integer["CELL_SCALE_POWER"],
        forget_cell_multiplier=integer["FORGET_TO_CELL_MULTIPLIER"], forget_cell_shift=integer["FORGET_TO_CELL_SHIFT"],
        input_cell_multiplier=integer["INPUT_TO_CELL_MULTIPLIER"], input_cell_shift=integer["INPUT_TO_CELL_SHIFT"],
        output_multiplier=integer["OUTPUT_MULTIPLIER"], output_shift=integer["OUTPUT_SHIFT"],
        cell_clip=integer["CELL_CLIP"], activation_bits=bits)
    time_major = cfg["TIME_MAJOR"] == "true"
    x_file, y_file = arrays["input_tensor"], arrays["output"]
    if time_major:
        x_f, y_f = x_file.reshape(t, b, i), y_file.reshape(t, b, h)
        x, y = x_f.transpose(1, 0, 2), y_f.transpose(1, 0, 2)
    else:
        x_f, y_f = x_file.reshape(b, t, i), y_file.reshape(b, t, h)
        x, y = x_f, y_f
    return VectorCase(name, params, np.ascontiguousarray(x), np.ascontiguousarray(y), time_major, x_f, y_f)
