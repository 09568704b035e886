"""Compression benchmarks of issue 3 on the tiny-shakespeare char LM (2 × 256 LSTM,
embedding 64, the "lm" case of ``bench_baselines.py``), under a REDUCED, EQUAL budget.

Full training does not fit the 2 shared cores, so every model gets the same budget:

    phase 1   dense training, ``PRETRAIN`` epochs (cosine)                  → D
    phase 2   from D, ``CONTINUE`` more epochs (cosine, lower lr) of
                dense training                  → the fp32 baseline of every row
                gradual pruning to 80 %         (Zhu & Gupta cubic schedule, masks final
                                                 after 60 % of the phase's steps)
                int4 quantization-aware training (fake-quant weights, per-row mse scales)
    int8 PTQ  of the fp32 baseline (no training)

so a compressed model and its baseline saw exactly the same steps (one seed). By
default all 100-character windows of the training part are used: 4 + 3 epochs, 980
optimizer steps per model, 1,820 in all, ~13 min on 2 shared cores (a converged
2 × 256 model needs many more). ``--train-windows N --pretrain-epochs E1
--continue-epochs E2`` runs another budget, written to
``compression-lm-<N>w-<E1>+<E2>e.json``. The text is split contiguously 80 / 10 / 10 %
(train / val / test; the baseline case has no test part). Epochs are chosen on
validation bits per char (for pruning: among epochs with the final masks); the rows
report TEST bits per char, and ``delta_relative`` = (bpc − baseline) / baseline.

Targets: 80 % sparsity ≤ +3 %; int8 PTQ ≤ +1 %; int4 QAT ≤ +3 %.

    python benchmarks/bench_compression_lm.py [--train-windows N --pretrain-epochs E1 --continue-epochs E2]
Writes benchmarks/results/compression-lm.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _common import write_result
from bench_compression_common import markdown_table, measure, summarise
from lstmlite.compress import (
    FakeQuantConfig, GradualPruneConfig, PruningScheduler, WeightQuantConfig, compress_, freeze_quantization,
)
from lstmlite.nn.models import build_model
from lstmlite.train import TrainConfig, train
from lstmlite.train.run import resolve_config

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA = {"source": str(SHARED / "tinyshakespeare" / "input.txt"), "task": "lm", "level": "char",
        "seq_len": 100, "val_fraction": 0.1, "test_fraction": 0.1, "seed": 0}
MODEL = {"cell": "lstm", "embed_dim": 64, "hidden_size": 256, "num_layers": 2, "dropout": 0.2}
PRETRAIN = TrainConfig(epochs=4, batch_size=64, lr=3e-3, patience=0, schedule="cosine", seed=0)
CONTINUE = TrainConfig(epochs=3, batch_size=64, lr=1.5e-3, patience=0, schedule="cosine", seed=1)
SPARSITY = 0.8
PRUNE_END_FRACTION = 0.6     # masks reach SPARSITY after this share of phase 2's steps
PRUNE_FREQUENCY = 10         # steps between mask updates
TRAIN_WINDOWS = 0           # 0: every training window


def subset(data: Any, n: int, seed: int = 0) -> Any:
    """The same data with a fixed random ``n`` of the training windows."""
    if n <= 0 or n >= len(data.train.y):
        return data
    new = copy.copy(data)
    index = np.sort(np.random.default_rng(seed).choice(len(data.train.y), size=n, replace=False))
    split = copy.copy(data.train)
    split.x, split.y, split.lengths = split.x[index], split.y[index], split.lengths[index]
    new.train = split
    return new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-windows", type=int, default=TRAIN_WINDOWS, help="0: all training windows")
    parser.add_argument("--pretrain-epochs", type=int, default=PRETRAIN.epochs)
    parser.add_argument("--continue-epochs", type=int, default=CONTINUE.epochs)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    pretrain = TrainConfig(**{**PRETRAIN.to_dict(), "epochs": args.pretrain_epochs})
    cont = TrainConfig(**{**CONTINUE.to_dict(), "epochs": args.continue_epochs})
    default = (args.train_windows, pretrain.epochs, cont.epochs) == (TRAIN_WINDOWS, PRETRAIN.epochs, CONTINUE.epochs)
    name = "compression-lm" if default else (
        f"compression-lm-{args.train_windows or 'all'}w-{pretrain.epochs}+{cont.epochs}e")
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    data, model_config, _ = resolve_config({"data": DATA, "model": MODEL})
    data = subset(data, args.train_windows)
    steps_per_epoch = math.ceil(len(data.train.y) / cont.batch_size)
    total = cont.epochs * steps_per_epoch

    def phase(label: str, fn):
        t = time.perf_counter()
        result = fn()
        print(f"{label}: {time.perf_counter() - t:.0f} s", flush=True)
        return result

    torch.manual_seed(PRETRAIN.seed)
    dense = build_model(model_config)
    phase("phase 1 dense", lambda: train(dense, data, pretrain, progress=False))

    baseline = copy.deepcopy(dense)
    phase("phase 2 dense", lambda: train(baseline, data, cont, progress=False))
    out: dict[str, dict[str, Any]] = {"baseline": measure(baseline, data)}
    out["after phase 1 (dense, half budget)"] = measure(dense, data)
    out["int8 PTQ per-channel"] = measure(compress_(copy.deepcopy(baseline), WeightQuantConfig(8)), data)
    out["int4 PTQ per-channel (mse; no training)"] = measure(
        compress_(copy.deepcopy(baseline), WeightQuantConfig(4, scale_method="mse")), data)

    pruned = copy.deepcopy(dense)
    prune_config = GradualPruneConfig(0.0, SPARSITY, start_step=0, end_step=int(PRUNE_END_FRACTION * total),
                                      frequency=PRUNE_FREQUENCY)
    compress_(pruned, prune_config)
    scheduler = PruningScheduler(pruned)
    phase("phase 2 gradual pruning", lambda: train(pruned, data, cont, callbacks=[scheduler], progress=False))
    out[f"gradual prune {int(SPARSITY * 100)} %"] = {**measure(pruned, data),
                                                    "weight_sparsity": scheduler.current_sparsity()}

    qat = copy.deepcopy(dense)
    compress_(qat, FakeQuantConfig(bits=4, scale_method="mse"))
    phase("phase 2 int4 QAT", lambda: train(qat, data, cont, progress=False))
    out["int4 QAT per-channel (mse)"] = measure(freeze_quantization(qat), data)

    base = out["baseline"]
    rows = []
    targets = {"int8 PTQ per-channel": 0.01, f"gradual prune {int(SPARSITY * 100)} %": 0.03,
               "int4 QAT per-channel (mse)": 0.03}
    for method, measured in out.items():
        row = summarise("tinyshakespeare (char)", method, MODEL, [measured], [base])
        row["delta_relative"] = (row["metric"] - row["baseline_metric"]) / row["baseline_metric"]
        if method in targets:
            row["target"] = f"≤ +{targets[method]:.0%} bits/char"
            row["meets_target"] = row["delta_relative"] <= targets[method]
        rows.append(row)
    settings = {"data": DATA, "train_windows": len(data.train.y), "steps_per_epoch": steps_per_epoch,
                "pretrain": pretrain.to_dict(), "continue": cont.to_dict(), "prune": prune_config.to_dict(),
                "threads": args.threads, "seconds": round(time.perf_counter() - started)}
    path = write_result(name, rows, {"settings": settings})
    print(markdown_table(rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
