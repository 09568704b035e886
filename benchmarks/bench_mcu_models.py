"""Microcontroller benchmark of real models (issue 12): flash, RAM and instructions per
time step on a Cortex-M4 (QEMU mps2-an386) for the JapaneseVowels small-file models, an
LSTM-64 int8 and the TREC ``text-tiny`` model, each beside its MACs per step and the
test accuracy of its own run.

Every model is trained here, with one seed (0), by the recipe and settings of the
benchmark its row comes from (nothing is tuned here):

* JapaneseVowels LSTM-64 (``bench_baselines.py`` "jv", data seed 0) -- the teacher;
* ``recipe fastgrnn-tiny``, ``recipe int8``: the shipped recipes on that run dir
  (``lstmlite compress RUN --recipe NAME``);
* FastGRNN-32 distilled + int8 QAT / + int4 QAT, FastGRNN-32 urank 8 + 50 % sparse + int8
  QAT: ``bench_compression_jv.py``'s functions and settings (the ≤ 2 KB rows);
* the ≤ 1 KB model: the compression table has none, so it is the 30-minute search's
  choice within 1,024 B for seed 0 (``results/search-jv-long.json``: FastGRNN-8, int8),
  retrained from that trial's point with the search's own trial function;
* LSTM-64 integer-only: the teacher in the integer-only C form (int8 weights and
  activations, int16 state), calibrated on 64 training series; its accuracy is that of
  the integer NumPy reference (which the C matches bit for bit) on the test split;
* TREC ``text-tiny``: the recipe on the reference text model. The TREC baseline of
  ``bench_baselines.py`` pools by max over time, which the C export does not run (it runs
  step by step); here the reference model keeps its last state (DESIGN's reference text
  model: Embedding(10000, 128) -> LSTM(128) -> Dense), otherwise the same settings.

Each model goes through ``lstmlite.export_c`` (form ``auto``: the weights as the run stores
them, float activations; or ``integer``), is compiled with bench_mcu.py's compiler and flags
(-O2) and its steps are counted with bench_mcu.py's exact counter (QEMU -singlestep
trace between two markers); flash and static RAM are ``arm-none-eabi-size`` of the model's
objects (model.c + runtime sources), stack is the generator's estimate.

    python benchmarks/bench_mcu_models.py [--quick] [--steps 8]

Writes benchmarks/results/mcu-models.json (``--quick``: mcu-models-quick.json, 1-epoch
models, for checking the script only).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _common import write_result
from bench_mcu import BOARD, CPU_FLAGS, HERE, OPT, build_and_count, sh

log = logging.getLogger("bench_mcu_models")

JV_BASELINE = {
    "data": {"source": "japanese_vowels", "task": "classify", "val_fraction": 0.2, "seed": 0},
    "model": {"cell": "lstm", "hidden_size": 64},
    "train": {"epochs": 60, "batch_size": 16, "lr": 3e-3, "patience": 15, "seed": 0},
}
TREC_DIR = HERE.parents[1] / "shared" / "data" / "trec"
TREC_LAST = {  # bench_baselines.py "trec" with pooling="last" (see the module doc)
    "data": {"source": str(TREC_DIR / "train_5500.label"), "format": "trec",
             "test_path": str(TREC_DIR / "TREC_10.label"), "task": "classify",
             "level": "word", "max_vocab": 10000, "val_fraction": 0.1, "seed": 0},
    "model": {"cell": "lstm", "embed_dim": 128, "hidden_size": 128, "dropout": 0.5, "pooling": "last"},
    "train": {"epochs": 20, "batch_size": 32, "lr": 2e-3, "patience": 6, "weight_decay": 1e-4, "seed": 0},
}
ANCHORS = [  # quoted, not measured here
    {"model": "FastGRNN (Kusupati et al. 2018)", "dataset": "HAR-2", "metric": 0.9559, "size_bytes": 3 * 1024,
     "size_text": "3 KB"},
    {"model": "FastGRNN (Kusupati et al. 2018)", "dataset": "Google-12", "metric": 0.9210,
     "size_bytes": int(5.5 * 1024), "size_text": "5.5 KB"},
]


def _search_1kb_point() -> dict[str, Any]:
    """The 30-minute search's choice within 1,024 B for seed 0, plus the tiny space's fixed settings."""
    rows = json.loads((HERE / "results" / "search-jv-long.json").read_text())["rows"]
    best = next(r for r in rows if r["seed"] == 0)["best_1kb"]
    from lstmlite.search.space import load_space

    fixed = dict(load_space("tiny").fixed)
    return {**fixed, **best["params"]}


def _quick(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    config["train"]["epochs"] = 1
    return config


def _test_accuracy(model: torch.nn.Module, data: Any) -> float:
    from lstmlite.train import evaluate, primary_metric_name

    return float(evaluate(model, data, data.test, device=torch.device("cpu"))[primary_metric_name(data)])


def jv_models(work: Path, quick: bool) -> list[dict[str, Any]]:
    """The JapaneseVowels models: (name, method, model, data, test metric, form)."""
    import bench_compression_jv as cj
    from lstmlite.compress import MagnitudePruneConfig, compress_, distill
    from lstmlite.compress.recipe import apply_recipe
    from lstmlite.nn import SequenceClassifier
    from lstmlite.search.trial import run_trial
    from lstmlite.train import TrainConfig, fit, load_run_data

    seed = 0
    run = fit(_quick(JV_BASELINE) if quick else JV_BASELINE, work / "jv-lstm64", progress=False)
    teacher, data = run.model, load_run_data(run)
    out = [dict(name="LSTM-64 fp32 (baseline)", method="baseline", model=teacher, data=data,
                metric=run.metrics["metric"], form="auto")]
    over = {"epochs": 1} if quick else None
    for recipe, name in (("int8", "LSTM-64 int8 weights (recipe int8)"),
                         ("fastgrnn-tiny", "FastGRNN-32 urank 8, 50 % sparse, int8 (recipe fastgrnn-tiny)")):
        new = apply_recipe(run.path, recipe, work / f"jv-{recipe}", data=data, train_overrides={"seed": seed},
                           max_epochs=1 if quick else None, progress=False)
        out.append(dict(name=name, method=f"recipe {recipe}", model=new.model, data=data,
                        metric=new.metrics["metric"], form="auto"))
    out.insert(2, dict(name="LSTM-64 integer-only (int8 weights and activations)", method="baseline, integer C form",
                       model=teacher, data=data, metric=None, form="integer"))

    def seeded(config: TrainConfig) -> TrainConfig:
        return TrainConfig(**{**config.to_dict(), "seed": seed, **(over or {})})

    cj.QAT_FINETUNE = seeded(cj.QAT_FINETUNE)
    torch.manual_seed(seed)
    student = SequenceClassifier(input_size=data.input_size, n_classes=data.n_classes, **cj.STUDENT)
    distill(teacher, student, data, cj.KD, seeded(cj.STUDENT_TRAIN), progress=False)
    for bits in (8, 4):
        m = cj.qat(student, teacher, data, bits, seed)
        out.append(dict(name=f"FastGRNN-32 distilled + int{bits} QAT", method=f"FastGRNN-32 distilled + int{bits} QAT",
                        model=m, data=data, metric=_test_accuracy(m, data), form="auto"))
    torch.manual_seed(seed)
    low = SequenceClassifier(input_size=data.input_size, n_classes=data.n_classes, **cj.STUDENT_LR)
    distill(teacher, low, data, cj.KD, seeded(cj.STUDENT_TRAIN), progress=False)
    compress_(low, MagnitudePruneConfig(sparsity=0.5))
    distill(teacher, low, data, cj.KD, seeded(cj.QAT_FINETUNE), progress=False)
    m = cj.qat(low, teacher, data, 8, seed)
    out.append(dict(name="FastGRNN-32 urank 8 + 50 % sparse + int8 QAT",
                    method="FastGRNN-32 urank 8 + 50 % sparse + int8 QAT", model=m, data=data,
                    metric=_test_accuracy(m, data), form="auto"))

    point = _search_1kb_point()
    if quick:
        point["epochs"] = 1
    record = run_trial(point, {"source": "japanese_vowels", "task": "classify"}, work / "jv-search-1kb", seed=seed)
    from lstmlite.io import load_run

    trial = load_run(record["run_dir"])
    out.append(dict(name=f"{point['cell'].upper() if point['cell'] != 'fastgrnn' else 'FastGRNN'}-{point['hidden_size']}"
                         f" int{point['weight_bits']} (search, ≤ 1 KB choice)",
                    method="search (tpe) best ≤ 1,024 B, seed 0", model=trial.model, data=load_run_data(trial),
                    metric=record["test_metric"], form="auto"))
    for row in out:
        row["dataset"] = "japanese_vowels"
    return out


def trec_models(work: Path, quick: bool) -> list[dict[str, Any]]:
    from lstmlite.compress.recipe import apply_recipe
    from lstmlite.io import load_run
    from lstmlite.train import fit, load_run_data

    run = fit(_quick(TREC_LAST) if quick else TREC_LAST, work / "trec-last", progress=False)
    tiny = apply_recipe(run.path, "text-tiny", work / "trec-text-tiny", max_epochs=1 if quick else None,
                        progress=False)
    tiny_run = load_run(tiny.path)
    return [dict(name="TREC text-tiny (reference model, last state)", method="recipe text-tiny", dataset="trec-6",
                 model=tiny.model, data=load_run_data(tiny_run), metric=tiny.metrics["metric"], form="auto",
                 baseline_metric=run.metrics["metric"])]


def integer_accuracy(form: Any, data: Any) -> float:
    """Test accuracy of the integer form (its NumPy reference) on every test series: x_q = clamp(round(x / scale)), the
    reference's h at the series' last step, the integer head's arg-max."""
    from lstmlite.reference.integer import integer_lstm_sequence
    from lstmlite.reference.integer_head import integer_head_forward

    p = form.params
    qmax = (1 << (p.input_bits - 1)) - 1
    x_q = np.clip(np.round(data.test.x / p.input_scale), -qmax, qmax).astype(np.int64)
    h = integer_lstm_sequence(p, x_q)[0]                       # (B, T, H)
    last = h[np.arange(len(x_q)), data.test.lengths - 1]        # (B, H)
    logits = integer_head_forward(form.head, last)
    return float(np.mean(np.argmax(logits, axis=1) == data.test.y))


def example_of(row: dict[str, Any], steps: int) -> np.ndarray:
    """The first test sequence's first ``steps`` steps, as the generated example takes it."""
    data = row["data"]
    n = int(min(steps, data.test.lengths[0]))
    x = data.test.x[0][:n]
    return np.asarray(x, np.int32 if np.issubdtype(x.dtype, np.integer) else np.float32)


def measure_row(row: dict[str, Any], work: Path, steps: int) -> dict[str, Any]:
    from lstmlite.export.c import export_c
    from lstmlite.train.run import model_metrics

    model, data = row["model"], row["data"]
    name = row["method"].replace(" ", "_").replace("/", "_").replace(",", "")
    example = example_of(row, steps)
    calibration = None
    if row["form"] == "integer":
        n = min(64, len(data.train.x))
        calibration = [{"x": torch.as_tensor(data.train.x[:n]), "lengths": torch.as_tensor(data.train.lengths[:n])}]
    project = export_c(model, work / name, form=row["form"], calibration=calibration,
                       example=None if row["form"] == "integer" else example)
    if row["form"] == "integer":
        p = project.integer.params
        qmax = (1 << (p.input_bits - 1)) - 1
        example = np.clip(np.round(example / p.input_scale), -qmax, qmax).astype(np.int16)
        project = export_c(project.integer, work / name, form="integer", example=example)
        row["metric"] = integer_accuracy(project.integer, data)
    sources = sorted(p.name for p in project.files if p.suffix == ".c" and p.name not in ("example.c", "startup_cortexm.c"))
    built, _ = build_and_count(project, sources, work, name,
                               ("-DLSL_NO_SIMD",),  # as the generated Makefile: the portable core only
                               () if row["form"] == "integer" else ("-lm",))
    flash, ram_static = built["flash_bytes"], built["ram_static_bytes"]
    count, by_function = built["instructions"], built["by_function"]
    steps_run = int(project.example.shape[0])
    report = project.memory["cortex-m4"]
    metrics = model_metrics(model)
    out = {"dataset": row["dataset"], "model": row["name"], "method": row["method"], "form": row["form"],
           "metric_name": "accuracy", "metric": row["metric"], "params": metrics["params"],
           "nonzero_params": metrics["nonzero_params"],
           # the run's .lsl bytes; the integer-only form has no .lsl (c_weight_bytes are its constants)
           "size_bytes": None if row["form"] == "integer" else metrics["size_bytes"],
           "macs_per_step": metrics["macs_per_step"], "c_weight_bytes": report.weights,
           "flash_bytes": flash, "ram_static_bytes": ram_static, "stack_bytes_estimate": report.stack,
           "ram_bytes": ram_static + report.stack, "report_flash_bytes_Os": report.flash,
           "report_ram_bytes": report.ram, "steps": steps_run, "instructions": count,
           "instructions_per_step": count / steps_run,
           "instructions_per_mac": count / steps_run / max(metrics["macs_per_step"], 1),
           "top_functions": dict(list(by_function.items())[:6]), "cell": project.info["cell"],
           "hidden_size": project.info["hidden_size"]}
    if "baseline_metric" in row:
        out["baseline_metric"] = row["baseline_metric"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8, help="time steps counted per model (default 8)")
    ap.add_argument("--quick", action="store_true", help="1-epoch models: check the script, not a result")
    ap.add_argument("--only", choices=("jv", "trec"), default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lstmlite-mcu-models-") as tmp:
        work = Path(tmp)
        models = []
        if args.only in (None, "jv"):
            models += jv_models(work / "runs", args.quick)
            print(f"JapaneseVowels models trained ({time.perf_counter() - started:.0f} s)", flush=True)
        if args.only in (None, "trec"):
            models += trec_models(work / "runs", args.quick)
            print(f"TREC model trained ({time.perf_counter() - started:.0f} s)", flush=True)
        for row in models:
            r = measure_row(row, work / "c", args.steps)
            rows.append(r)
            print(f"{r['model']:60s} acc {r['metric']:.4f}  {r['macs_per_step']:7d} MACs/step  "
                  f"{r['instructions_per_step']:9.0f} instr/step  flash {r['flash_bytes']:7d} B  "
                  f"RAM {r['ram_bytes']:6d} B", flush=True)
    name = "mcu-models-quick" if args.quick else "mcu-models" + (f"-{args.only}" if args.only else "")
    path = write_result(name, rows, {
        "board": BOARD, "compiler": sh(["arm-none-eabi-gcc", "--version"]).splitlines()[0],
        "flags": " ".join(CPU_FLAGS + OPT), "counter": "qemu -singlestep -d exec,nochain (exact; bench_mcu.py)",
        "seed": 0, "anchors_not_measured": ANCHORS, "seconds": round(time.perf_counter() - started),
        "notes": "flash and static RAM: arm-none-eabi-size of model.c and the runtime sources at -O2; "
                 "stack: the generator's -Os estimate; accuracy: each model's test split (integer form: "
                 "the integer reference, which the C matches bit for bit)"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
