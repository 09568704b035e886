"""Baselines of issue 2: test-split metrics, model chosen on validation, mean ± std over seeds.

Cases (hyper-parameters fixed here in advance, never tuned on test):
    japanese_vowels  LSTM-64 classifier            accuracy   (target ≥ 0.965)
    basic_motions    LSTM-64, batch 8              accuracy   (target ≥ 0.95)
    trec             reference text model          accuracy   (target ≥ 0.87)
                     Embedding(10000,128) → LSTM(128) → Dense(6)
    shakespeare      char LM, 2 × 256 LSTM         val bits/char, with training time
    airline          LSTM-32 forecaster            MAE vs seasonal naive

    python benchmarks/bench_baselines.py [--cases jv,bm,trec,lm,airline] [--seeds 3]
Writes benchmarks/results/baselines.json; run dirs go to a temp folder (or --keep DIR).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import write_result
from lstmlite.train import fit

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CASES = {
    "jv": {
        "data": {"source": "japanese_vowels", "task": "classify", "val_fraction": 0.2},
        "model": {"cell": "lstm", "hidden_size": 64},
        "train": {"epochs": 60, "batch_size": 16, "lr": 3e-3, "patience": 15},
    },
    "bm": {
        "data": {"source": "basic_motions", "task": "classify", "val_fraction": 0.2},
        "model": {"cell": "lstm", "hidden_size": 64},
        # no early stopping: with 8 validation series, accuracy plateaus early (chosen on validation)
        "train": {"epochs": 100, "batch_size": 8, "lr": 3e-3, "patience": 0},
    },
    "trec": {
        "data": {"source": str(SHARED / "trec" / "train_5500.label"), "format": "trec",
                 "test_path": str(SHARED / "trec" / "TREC_10.label"), "task": "classify",
                 "level": "word", "max_vocab": 10000, "val_fraction": 0.1},
        # max pooling over the LSTM's outputs: validation 0.887 against 0.854 for the last
        # state (3 seeds each, same training settings); still Embedding → LSTM(128) → Dense
        "model": {"cell": "lstm", "embed_dim": 128, "hidden_size": 128, "dropout": 0.5, "pooling": "max"},
        "train": {"epochs": 20, "batch_size": 32, "lr": 2e-3, "patience": 6, "weight_decay": 1e-4},
    },
    "lm": {
        "data": {"source": str(SHARED / "tinyshakespeare" / "input.txt"), "task": "lm", "level": "char",
                 "seq_len": 100, "val_fraction": 0.1, "test_fraction": 0.0},
        "model": {"cell": "lstm", "embed_dim": 64, "hidden_size": 256, "num_layers": 2, "dropout": 0.2},
        # a small CPU budget: 4 epochs of 140 steps (560 Adam steps); bits per char is far
        # from converged at this budget (see BENCHMARKS.md)
        "train": {"epochs": 4, "batch_size": 64, "lr": 3e-3, "patience": 0, "schedule": "cosine"},
    },
    "airline": {
        "data": {"source": "airline", "task": "forecast", "seq_len": 24, "horizon": 12},
        "model": {"cell": "lstm", "hidden_size": 32},
        "train": {"epochs": 200, "batch_size": 16, "lr": 3e-3, "patience": 40},
    },
}


def run_case(name: str, seeds: int, root: Path) -> dict:
    metrics, seconds = [], []
    extra: dict[str, list] = {}
    last = None
    for seed in range(seeds):
        config = {k: dict(v) for k, v in CASES[name].items()}
        config["train"]["seed"] = seed
        config["data"]["seed"] = 0  # the same split for every seed: seeds vary the model
        started = time.perf_counter()
        run = fit(config, root / f"{name}-seed{seed}", progress=False)
        seconds.append(time.perf_counter() - started)
        m = run.metrics
        value = m["val"][m["metric_name"]] if name == "lm" else m["metric"]
        metrics.append(value)
        for key in ("naive_mae", "mae_vs_naive", "macro_f1"):
            if key in m["test"]:
                extra.setdefault(key, []).append(m["test"][key])
        last = m
        print(f"{name} seed {seed}: {m['metric_name']} {value:.4f} ({seconds[-1]:.0f} s)", flush=True)
    row = {
        "dataset": last["dataset"] if name not in ("trec", "lm") else {"trec": "trec-6", "lm": "tinyshakespeare"}[name],
        "model": CASES[name]["model"],
        "method": "baseline",
        "metric_name": last["metric_name"] + (" (val)" if name == "lm" else ""),
        "metric": statistics.mean(metrics),
        "metric_std": statistics.stdev(metrics) if len(metrics) > 1 else 0.0,
        "metric_per_seed": metrics,
        "seeds": len(metrics),
        "params": last["params"],
        "nonzero_params": last["nonzero_params"],
        "size_bytes": last["size_bytes"],
        "macs_per_step": last["macs_per_step"],
        "train_seconds_mean": statistics.mean(seconds),
        "train": CASES[name]["train"],
    }
    for key, values in extra.items():
        row[f"{key}_mean"] = statistics.mean(values)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--keep", default=None, help="keep run dirs here")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="lstmlite-baselines-"))
    rows = []
    for name in args.cases.split(","):
        rows.append(run_case(name, args.seeds, root))
        # one file per case, written as soon as the case ends (a long run can be cut short)
        path = write_result(f"baselines-{name}", rows[-1:])
        print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
