"""Microcontroller benchmark (issue 12): flash, RAM and instructions per time step on a
Cortex-M4 (QEMU mps2-an386) for an integer-only LSTM from `lstmlite export --format c`,
beside CMSIS-NN's `arm_lstm_unidirectional_s8` on an LSTM of the same shape, both built
with the same compiler and flags.

Instructions are counted exactly: QEMU runs with `-singlestep` (one guest instruction
per translation block) and `-d exec,nochain` (a trace line for every block executed,
none skipped by chaining), so the trace lines between the two calls of `bench_marker()`
in benchmarks/mcu/bench_*.c are the instructions executed in between, one each. (The
`-icount` + SysTick alternative counts 25 MHz ticks of 40 instructions on this board.)
CMSIS-NN is compiled from ../shared/peers/cmsis-nn (never copied here).

    python benchmarks/bench_mcu.py [--input-size 32 --hidden-size 64 --steps 8] [--name mcu-lstm64]

Writes benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from _common import write_result
from lstmlite.export.c import export_c
from lstmlite.nn import LSTM

HERE = Path(__file__).resolve().parent
PEER = HERE.parents[1] / "shared" / "peers" / "cmsis-nn"  # ../shared/peers beside the checkout
if not PEER.is_dir():  # a worktree sits at /work/wt-*, the shared folder at /work/shared
    PEER = Path("/work/shared/peers/cmsis-nn")
CPU_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
OPT = ["-O2", "-ffunction-sections", "-fdata-sections"]  # CMSIS-NN's README: -O2
BOARD = "mps2-an386"


def sh(cmd: list[str], cwd: Path | None = None) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}...: {r.stderr[-2000:]}")
    return r.stdout


def compile_objs(sources: list[Path], out: Path, includes: list[Path], defines: tuple[str, ...] = ()) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    objs = []
    for src in sources:
        obj = out / (src.stem + ".o")
        sh(["arm-none-eabi-gcc", *CPU_FLAGS, *OPT, "-std=c99", *defines, *[f"-I{i}" for i in includes], "-c",
            str(src), "-o", str(obj)])
        objs.append(obj)
    return objs


def link(objs: list[Path], elf: Path, mcu: Path, libs: tuple[str, ...] = ()) -> None:
    sh(["arm-none-eabi-gcc", *CPU_FLAGS, "-nostartfiles", "--specs=rdimon.specs", "-T", str(mcu / "mps2.ld"),
        "-Wl,--gc-sections", "-o", str(elf), *map(str, objs), *libs])


def count_instructions(elf: Path, work: Path, stdout: list[str] | None = None) -> tuple[int, dict[str, int]]:
    """Instructions executed between the two calls of bench_marker() (see the module doc),
    and how many of them each function executed; the program's output is appended to
    ``stdout`` when given."""
    marker = [line.split()[0] for line in sh(["arm-none-eabi-nm", str(elf)]).splitlines()
              if line.endswith(" bench_marker")]
    pc = f"{int(marker[0], 16) & ~1:08x}"
    log = work / "trace.log"
    run = subprocess.run(["qemu-system-arm", "-M", BOARD, "-nographic", "-semihosting", "-singlestep",
                          "-d", "exec,nochain", "-D", str(log), "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=1800)
    if run.returncode != 0 or not run.stdout.startswith("rc 0"):
        raise RuntimeError(f"{elf.name} failed: {run.stdout} {run.stderr[-500:]}")
    if stdout is not None:
        stdout.append(run.stdout)
    seen, count = 0, 0
    by_function: dict[str, int] = {}
    pattern = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/[^]]*\] ?(\S*)")
    with log.open() as f:
        for line in f:
            m = pattern.match(line)
            if not m:
                continue
            if m.group(1).endswith(pc[-8:]) and int(m.group(1), 16) == int(pc, 16):
                seen += 1
                if seen == 2:
                    break
                continue
            if seen == 1:
                count += 1
                by_function[m.group(2)] = by_function.get(m.group(2), 0) + 1
    log.unlink()
    if seen != 2:
        raise RuntimeError(f"{elf.name}: bench_marker seen {seen} times in the trace")
    # from the first marker's return to the second marker's call, both included
    return count, dict(sorted(by_function.items(), key=lambda kv: -kv[1]))


def symbol_bytes(elf: Path, keep) -> int:
    """Sum of the sizes of the ELF's symbols whose name passes ``keep``."""
    total = 0
    for line in sh(["arm-none-eabi-nm", "-S", "--size-sort", str(elf)]).splitlines():
        parts = line.split()
        if len(parts) == 4 and keep(parts[3]):
            total += int(parts[1], 16)
    return total


def sizes(objs: list[Path]) -> tuple[int, int]:
    total = sh(["arm-none-eabi-size", "-t", *map(str, objs)]).strip().splitlines()[-1].split()
    text, data, bss = (int(v) for v in total[:3])
    return text + data, data + bss


def bench_ours(inp: int, hidden: int, steps: int, work: Path) -> dict:
    torch.manual_seed(0)
    model = LSTM(inp, hidden, batch_first=True).eval()
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(0, 1, (32, 20, inp)), dtype=torch.float32)
    example = rng.integers(-127, 128, size=(steps, inp)).astype(np.int16)
    project = export_c(model, work / "ours", form="integer", calibration=[x], example=example)
    row, _ = build_and_count(project, ["model.c", "lsl_int.c"], work, "ours")
    return {"engine": "lstmlite-integer", **row}


def build_and_count(project, sources: list[str], work: Path, tag: str, defines: tuple[str, ...] = (),
                    libs: tuple[str, ...] = ()) -> tuple[dict, str]:
    """Build a generated project's ``sources`` (model.c and its runtime files) with
    bench_ours.c for the Cortex-M4, count its instructions between the markers; the row's
    measured fields and what the program printed."""
    p = project.path
    model_objs = compile_objs([p / s for s in sources], work / f"{tag}-o", [p], defines)
    objs = model_objs + compile_objs([HERE / "mcu" / "bench_ours.c", p / "mcu" / "startup_cortexm.c"],
                                     work / f"{tag}-o", [p], defines)
    elf = work / f"{tag}.elf"
    link(objs, elf, p / "mcu", libs)
    flash, ram = sizes(model_objs)
    printed: list[str] = []
    count, by_function = count_instructions(elf, work, printed)
    report = project.memory["cortex-m4"]
    return ({"instructions": count, "by_function": by_function, "flash_bytes": flash, "ram_static_bytes": ram,
             "report_flash_bytes_Os": report.flash, "report_ram_bytes": report.ram, "weight_bytes": report.weights},
            printed[0])


def _peer_arrays(inp: int, hidden: int, steps: int) -> dict[str, np.ndarray]:
    """The weights, biases and input bench_cmsis gives CMSIS-NN (same generator, same order)."""
    rng = np.random.default_rng(0)
    return {"w_ih": rng.integers(-127, 128, 4 * hidden * inp), "w_hh": rng.integers(-127, 128, 4 * hidden * hidden),
            "bias": rng.integers(-2000, 2000, 4 * hidden), "input": rng.integers(-127, 128, steps * inp)}


def bench_tflite(inp: int, hidden: int, steps: int, work: Path) -> dict:
    """The TFLite-compatible form (``export_c(..., form="tflite")``) of the LSTM CMSIS-NN
    runs: the same weights, biases, multipliers and input (bench_cmsis.c's values). Its
    last output is checked against lstmlite.reference.tflite_int."""
    from lstmlite.reference.tflite_int import TFLiteGate, TFLiteLSTMParams, tflite_lstm_sequence

    a = _peer_arrays(inp, hidden, steps)
    w_ih, w_hh, bias = a["w_ih"].reshape(4, hidden, inp), a["w_hh"].reshape(4, hidden, hidden), a["bias"].reshape(4, hidden)
    gates = [TFLiteGate(w_ih[k], w_hh[k], bias[k], 1518500250, -9, 1518500250, -9) for k in range(4)]
    params = TFLiteLSTMParams(*gates, input_zero_point=0, output_zero_point=0, cell_scale_power=-11,
                              forget_cell_multiplier=1 << 30, forget_cell_shift=-14, input_cell_multiplier=1 << 30,
                              input_cell_shift=-18, output_multiplier=1 << 30, output_shift=-15, cell_clip=32767)
    x = a["input"].reshape(steps, inp)
    project = export_c(params, work / "tflite", form="tflite", example=x)
    row, printed = build_and_count(project, ["model.c", "lsl_tflite.c"], work, "tflite")
    expected = int(tflite_lstm_sequence(params, x[None])[0][0, -1, 0])
    got = int(printed.split("out0")[1].split()[0])
    if got != expected:
        raise RuntimeError(f"the TFLite-compatible build printed h[0] = {got}, the reference {expected}")
    return {"engine": "lstmlite-tflite", **row, "last_output_equals_reference": True}


def bench_cmsis(inp: int, hidden: int, steps: int, work: Path, mcu: Path) -> dict:
    a = _peer_arrays(inp, hidden, steps)

    def arr(name: str, values: np.ndarray, ctype: str) -> str:
        return f"static const {ctype} {name}[{values.size}] = {{{', '.join(str(int(v)) for v in values.reshape(-1))}}};\n"

    data = (f"#define INPUT {inp}\n#define HIDDEN {hidden}\n#define STEPS {steps}\n"
            + arr("w_ih", a["w_ih"], "int8_t") + arr("w_hh", a["w_hh"], "int8_t") + arr("bias", a["bias"], "int32_t")
            + arr("zero_bias", np.zeros(hidden, np.int64), "int32_t") + arr("input", a["input"], "int8_t"))
    (work / "cmsis").mkdir(exist_ok=True)
    (work / "cmsis" / "cmsis_data.h").write_text(data)
    sources = [s for d in ("LSTMFunctions", "NNSupportFunctions", "ActivationFunctions", "BasicMathFunctions")
               for s in sorted((PEER / "Source" / d).glob("*.c"))
               if not any(k in s.name for k in ("_f16", "_f32", "_flt"))]  # the integer kernels
    includes = [PEER / "Include", work / "cmsis"]
    lib_objs = compile_objs(sources, work / "cmsis-o", includes)
    objs = compile_objs([HERE / "mcu" / "bench_cmsis.c", mcu / "startup_cortexm.c"], work / "cmsis-main", includes)
    elf = work / "cmsis.elf"
    link(objs + lib_objs, elf, mcu)
    weights = symbol_bytes(elf, lambda n: n in ("w_ih", "w_hh", "bias", "zero_bias"))
    code = symbol_bytes(elf, lambda n: n.startswith("arm_"))  # the CMSIS-NN functions linked in
    ram = symbol_bytes(elf, lambda n: n in ("temp1", "temp2", "cell", "hidden"))
    count, by_function = count_instructions(elf, work)
    return {"engine": "cmsis-nn-s8", "instructions": count, "by_function": by_function, "flash_bytes": weights + code,
            "ram_static_bytes": ram, "weight_bytes": weights}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--hidden-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--name", default="mcu-lstm64")
    args = ap.parse_args()
    inp, hidden, steps = args.input_size, args.hidden_size, args.steps
    macs = 4 * hidden * (inp + hidden)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ours = bench_ours(inp, hidden, steps, work)
        peer = bench_cmsis(inp, hidden, steps, work, work / "ours" / "mcu")
        tfl = bench_tflite(inp, hidden, steps, work)
        for r in (ours, peer, tfl):
            r.update(model=f"LSTM {inp}->{hidden} int8", input_size=inp, hidden_size=hidden, steps=steps,
                     macs_per_step=macs, instructions_per_step=r["instructions"] / steps,
                     instructions_per_mac=r["instructions"] / steps / macs)
            rows.append(r)
            print(f"{r['engine']:18s} {r['instructions_per_step']:10.0f} instructions/step "
                  f"({r['instructions_per_mac']:.2f}/MAC), flash {r['flash_bytes']} B, RAM {r['ram_static_bytes']} B")
    ratio = rows[0]["instructions_per_step"] / rows[1]["instructions_per_step"]
    ratio_tflite = rows[2]["instructions_per_step"] / rows[1]["instructions_per_step"]
    print(f"lstmlite / CMSIS-NN instructions per step: {ratio:.2f} (TFLite-compatible form: {ratio_tflite:.2f})")
    path = write_result(args.name, rows, {
        "board": BOARD, "compiler": sh(["arm-none-eabi-gcc", "--version"]).splitlines()[0],
        "flags": " ".join(CPU_FLAGS + OPT), "counter": "qemu -singlestep -d exec,nochain (exact)",
        "ratio_instructions_ours_over_cmsis": ratio,
        "ratio_instructions_tflite_over_cmsis": ratio_tflite,
        "notes": "lstmlite keeps h in int16 (int8 x int16 products); CMSIS-NN's s8 LSTM keeps h in int8; "
                 "lstmlite-tflite is the TFLite-compatible form (export_c form='tflite', lsl_tflite.c) of the "
                 "LSTM CMSIS-NN runs (same weights, biases, multipliers and input): TFLite Micro's arithmetic",
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
