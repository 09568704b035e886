"""The generator's memory report: flash (weights + code) and RAM (state + scratch + stack).

Weights, state and scratch are counted exactly from the arrays and buffers the
generator writes. Code cannot be known without compiling, so it comes from
:data:`CODE_BYTES`: the text size of each runtime source and of model.c's own
functions, measured with Debian's arm-none-eabi-gcc 12.2 at ``-Os`` (the Makefile's
default). tests/export/test_c_export.py builds generated projects and checks the
whole report against ``arm-none-eabi-size`` within 5 %, so a change to the runtime
that moves these numbers fails a test until the table is measured again
(``python -m lstmlite.export.c.memory`` prints it).

Example:
    >>> r = MemoryReport(weights=1000, code=4000, state=128, work=256, stack=300)
    >>> r.flash, r.ram
    (5000, 684)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tflite_form import tflite_layout_note

__all__ = ["MemoryReport", "memory_report", "readme_text", "CODE_BYTES", "STACK_BYTES"]

#: code bytes per (file, cpu): text (+ constant tables of a runtime file), arm-none-eabi-gcc 12.2 -Os,
#: as ``python -m lstmlite.export.c.memory`` measured them.
CODE_BYTES: dict[tuple[str, str], int] = {
    ('float:model.c', 'cortex-m3'): 242,
    ('float:model.c', 'cortex-m4'): 242,
    ('integer:model.c', 'cortex-m3'): 258,
    ('integer:model.c', 'cortex-m4'): 258,
    ('lsl_int.c', 'cortex-m3'): 6966,
    ('lsl_int.c', 'cortex-m4'): 7258,
    ('lsl_isa.c', 'cortex-m3'): 1001,
    ('lsl_isa.c', 'cortex-m4'): 1001,
    ('lsl_kern_portable.c', 'cortex-m3'): 2778,
    ('lsl_kern_portable.c', 'cortex-m4'): 2558,
    ('lsl_matrix.c', 'cortex-m3'): 2400,
    ('lsl_matrix.c', 'cortex-m4'): 2464,
    ('lsl_model.c', 'cortex-m3'): 5716,
    ('lsl_model.c', 'cortex-m4'): 5620,
    ('lsl_sparse.c', 'cortex-m3'): 2400,
    ('lsl_sparse.c', 'cortex-m4'): 2404,
    ('lsl_tflite.c', 'cortex-m3'): 5040,
    ('lsl_tflite.c', 'cortex-m4'): 5258,
    ('tflite:model.c', 'cortex-m3'): 244,
    ('tflite:model.c', 'cortex-m4'): 244,
}
#: worst-case stack bytes of one lstmlite_model_step call per (family, cpu), from -fstack-usage.
STACK_BYTES: dict[tuple[str, str], int] = {
    ('float', 'cortex-m3'): 1272,
    ('float', 'cortex-m4'): 1264,
    ('integer', 'cortex-m3'): 512,
    ('integer', 'cortex-m4'): 560,
    ('tflite', 'cortex-m3'): 368,
    ('tflite', 'cortex-m4'): 368,
}


@dataclass
class MemoryReport:
    """Bytes one model costs on one target."""

    weights: int   # const data: weights, biases, multipliers, tables of structs
    code: int      # text of model.c's functions and the runtime sources
    state: int     # recurrent state (static)
    work: int      # scratch (static): the runtime's workspace and model.c's own buffers
    stack: int     # deepest stack of one step

    @property
    def flash(self) -> int:
        return self.weights + self.code

    @property
    def ram(self) -> int:
        return self.state + self.work + self.stack

    @property
    def ram_static(self) -> int:
        """RAM the linker places (.data + .bss): state + scratch."""
        return self.state + self.work

    def as_dict(self) -> dict[str, int]:
        return {"flash": self.flash, "weights": self.weights, "code": self.code, "ram": self.ram,
                "state": self.state, "work": self.work, "stack": self.stack}


def _files(info: dict[str, Any]) -> list[str]:
    from .project import RUNTIME_SOURCES

    return ["model.c"] + RUNTIME_SOURCES[info["family"]][0]


def memory_report(info: dict[str, Any], cpu: str) -> MemoryReport:
    """The report for a generated model (``info`` from :func:`lstmlite.export.c.export_c`)."""
    code = 0
    for name in _files(info):
        key = (f"{info['family']}:{name}" if name == "model.c" else name, cpu)
        code += CODE_BYTES.get(key, 0)
    return MemoryReport(weights=info["weight_bytes"], code=code, state=info["state_bytes"],
                        work=info["work_bytes"] + info.get("wrapper_bytes", 0), stack=STACK_BYTES.get((info["family"], cpu), 0))


def readme_text(info: dict[str, Any], memory: dict[str, MemoryReport], standardization: Any = None) -> str:
    """The generated project's README: what it is, how to build it, what it costs;
    ``standardization`` (:class:`lstmlite.export.preprocessing.Standardization`): the run's
    input statistics, which ``preprocess.h`` applies (the README says so first)."""
    rows = "\n".join(
        f"| {cpu} | {r.flash} | {r.weights} | {r.code} | {r.ram} | {r.state} | {r.work} | {r.stack} |"
        for cpu, r in memory.items())
    integer = info["family"] in ("integer", "tflite")
    inputs = (f"{info['input_size']} int{info['input_bits']} values per step: TFLite's input tensor, "
              "q = round(x / LSTMLITE_MODEL_INPUT_SCALE) + LSTMLITE_MODEL_INPUT_ZERO_POINT"
              if info["family"] == "tflite" else
              "one token id (int32) per step" if info["vocab_size"] else
              (f"{info['input_size']} int16 values per step, each round(x / LSTMLITE_MODEL_INPUT_SCALE) "
               f"clamped to int{info['input_bits']}" if integer else f"{info['input_size']} floats per step"))
    outputs = (f"int{info['input_bits']} h, TFLite's output tensor (zero point LSTMLITE_MODEL_OUTPUT_ZERO_POINT)"
               if info["family"] == "tflite" else
               "int32 head accumulators; logit = value * LSTMLITE_MODEL_OUTPUT_SCALE" if integer and info["has_head"]
               else "int16 h in Q0.15" if integer else "floats")
    layout = "\n\n" + tflite_layout_note(info) if info["family"] == "tflite" else ""
    return f"""# {info['description']}

Generated by `lstmlite export RUN --format c`. Plain C99: no `malloc`, no dependency
beyond a C compiler{(", no libm and no float arithmetic (" + ("TFLite-compatible form: the numbers TensorFlow Lite "
   "computes" if info["family"] == "tflite" else "integer-only form") + ")") if integer else ""}.

- `model.h` -- the API: `lstmlite_model_init()`, `lstmlite_model_reset()`,
  `lstmlite_model_step(x, out)`, `lstmlite_model_run(x, steps, out)`; sizes as `#define`s;
  every call returns `LSTMLITE_OK` (0) or a negative `LSTMLITE_ERR_*` code.
- `model.c` -- the weights as `const` arrays (flash), the state and scratch as static buffers.
- `lsl*.c`, `lsl*.h` -- the lstmlite runtime's portable core, unchanged.
- `example.c`, `example_data.h` -- runs an example input and prints every step's outputs.
- `mcu/` -- a start-up file and linker script for QEMU's `mps2-an386` (Cortex-M4) and
  `mps2-an385` (Cortex-M3) boards.

Input: {inputs}. Output ({info['output_size']} values): {outputs}.{layout}{_standardization_text(standardization)}

## Build

    make host && ./build/host/example          # this computer
    make mcu run-mcu                           # Cortex-M4 under qemu-system-arm
    make CPU=cortex-m3 mcu run-mcu             # Cortex-M3 (no DSP, no FPU)
    make size                                  # what the model's objects cost

{"The TFLite-compatible kernel (lsl_tflite.c) is the same plain C on every core." if info["family"] == "tflite"
 else "On a Cortex-M4 the integer kernels use the DSP extension (SMLAD/SXTB16); on a" + chr(10) + "Cortex-M3 they are plain C."}

## Memory (bytes)

| target | flash | weights | code | RAM | state | scratch | stack |
|---|---|---|---|---|---|---|---|
{rows}

Flash = weights + code; RAM = state + scratch + stack. Code and stack are the
generator's figures for arm-none-eabi-gcc 12.2 at `-Os`; weights, state and scratch
are exact. `make size` shows the compiled numbers.

## Check it on the board

`example_expected.txt` (written by `lstmlite export` when it built and checked the example
on its host) is what `example` printed there. Run the same example on the board
(`make run-mcu`, or its output on your UART) and compare: {"the same numbers, bit for bit"
if integer else "the same values to float32 rounding (the hex bits may differ in the last places between compilers)"}.
"""


def _standardization_text(standardization: Any) -> str:
    """The README's paragraph on preprocess.h (empty for a model without input statistics)."""
    if standardization is None:
        return ""
    text = ("\n\n**Standardise the inputs first.** The model was trained on standardised features: "
            "each raw value becomes (raw - mean) / std with the training split's statistics. Raw sensor "
            "values give wrong answers and no error. `preprocess.h` (header only) holds the statistics: "
            "`lstmlite_model_prepare(raw, x)` turns one step's raw floats into the model's input")
    if standardization.target_mean is not None:
        text += (", and `lstmlite_model_forecast_value(out[k])` turns a forecast into the series' units "
                 "(the model predicts the standardised target)")
    return text + "."


def measure(cpus: tuple[str, ...] = ("cortex-m4", "cortex-m3")) -> tuple[dict, dict]:
    """Measure :data:`CODE_BYTES` and :data:`STACK_BYTES` by compiling two small
    generated projects (needs arm-none-eabi-gcc); prints them as Python literals."""
    import subprocess
    import tempfile
    from pathlib import Path

    import numpy as np
    import torch

    from lstmlite.export.c import export_c
    from lstmlite.nn import SequenceClassifier

    code: dict[tuple[str, str], int] = {}
    stack: dict[tuple[str, str], int] = {}
    from lstmlite.reference.tflite_int import TFLiteGate, TFLiteLSTMParams

    model = SequenceClassifier(input_size=3, hidden_size=4, n_classes=2)
    gate = TFLiteGate(np.ones((4, 3)), np.ones((4, 4)), np.zeros(4), 1 << 30, -3, 1 << 30, -3)
    layer = TFLiteLSTMParams(gate, gate, gate, gate, input_zero_point=-128, output_zero_point=0,
                             cell_scale_power=-12, forget_cell_multiplier=1 << 30, forget_cell_shift=-14,
                             input_cell_multiplier=1 << 30, input_cell_shift=-17,
                             output_multiplier=1 << 30, output_shift=-22)
    with tempfile.TemporaryDirectory() as tmp:
        for family, form in (("integer", "integer"), ("float", "fp32"), ("tflite", "tflite")):
            out = Path(tmp) / family
            project = export_c(layer if form == "tflite" else model, out, form=form,
                               calibration=[torch.randn(2, 4, 3)] if form == "integer" else None)
            for cpu in cpus:
                subprocess.run(["make", "-s", f"CPU={cpu}", "size"], cwd=out, check=True, capture_output=True)
                for obj in sorted((out / "build" / cpu).glob("*.o")):
                    sizes = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], check=True, capture_output=True,
                                           text=True).stdout
                    name = obj.with_suffix(".c").name
                    # model.c's constants are the weights (counted exactly); a runtime
                    # file's constants (activation tables) count as its code
                    kinds = (".text",) if name == "model.c" else (".text", ".rodata", ".data")
                    text = sum(int(line.split()[1]) for line in sizes.splitlines() if line.startswith(kinds))
                    code[(f"{family}:{name}" if name == "model.c" else name, cpu)] = text
                frames = [int(line.split()[-2]) for su in (out / "build" / cpu).glob("*.su")
                          for line in su.read_text().splitlines()]
                # a step goes at most four calls deep (step -> runtime step -> matmul -> kernel)
                stack[(family, cpu)] = sum(sorted(frames)[-4:])
            del project
    return code, stack


if __name__ == "__main__":
    code_bytes, stack_bytes = measure()
    print("CODE_BYTES =", code_bytes)
    print("STACK_BYTES =", stack_bytes)
