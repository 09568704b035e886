"""``lstmlite demo``: the whole tool on built-in data, in a few minutes on a laptop.

1. train an fp32 LSTM baseline on JapaneseVowels (chosen on validation);
2. quantize it to int8 weights (post-training, per-channel) and re-measure;
3. run the int8 model in the native C runtime, check it against PyTorch on the
   test split, and time both on one thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import HelpFormatter, example_epilog, format_bytes, format_table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="train, compress and run a model on built-in data",
        description="Train an LSTM baseline on the built-in JapaneseVowels speaker-recognition data "
                    "(UCR/UEA, shipped with aeon: no download), quantize it to int8, run it in the native "
                    "C runtime (checked against PyTorch), and print accuracy, size and latency side by "
                    "side. Leaves run dirs you can pass to eval, compress, export and bench.",
        epilog=example_epilog("lstmlite demo", "lstmlite demo --quick --out /tmp/demo"),
        formatter_class=HelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few epochs only (a smoke test)")
    parser.add_argument("--out", default=None, help="where to write the run dirs (default: ./lstmlite-demo-TIME)")
    parser.set_defaults(func=run)


def demo_config(quick: bool) -> dict:
    return {
        "data": {"source": "japanese_vowels", "task": "classify", "val_fraction": 0.2},
        "model": {"cell": "lstm", "hidden_size": 64},
        "train": {"epochs": 3 if quick else 60, "batch_size": 16, "lr": 3e-3, "patience": 15},
    }


def _median_us(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e6


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .. import runtime
    from ..compress import WeightQuantConfig, compress_, compression_state
    from ..io import load_run, save_run
    from ..train import evaluate, fit, load_run_data, model_metrics

    out = Path(args.out) if args.out else Path(f"lstmlite-demo-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"lstmlite demo: LSTM-64 on japanese_vowels ({'quick' if args.quick else 'full'}), writing {out}\n")

    print("1/3 training the fp32 baseline ...")
    baseline = fit(demo_config(args.quick), out / "baseline", progress=True)
    data = load_run_data(baseline)

    print("2/3 quantizing to int8 weights (per output channel) ...")
    model = load_run(out / "baseline").model
    compress_(model, WeightQuantConfig(bits=8))
    int8_test = evaluate(model, data, data.test)
    int8_metrics = {**baseline.metrics, "metric": int8_test["accuracy"], "test": int8_test,
                    **model_metrics(model), "baseline_metric": baseline.metrics["metric"],
                    "baseline_size_bytes": baseline.metrics["size_bytes"]}
    config = {k: v for k, v in baseline.config.items() if k not in ("model", "format_version")}
    save_run(out / "int8", model, {**config, "compression": compression_state(model)}, metrics=int8_metrics,
             vocab=baseline.vocab)

    print("3/3 running the int8 model in the native runtime ...")
    engine = runtime.load(out / "int8")
    x, lengths = data.test.x, data.test.lengths
    with torch.no_grad():
        torch_logits = model(torch.as_tensor(x), torch.as_tensor(lengths)).numpy()
    native_logits = engine.run(x, lengths=lengths)
    native_accuracy = float(np.mean(native_logits.argmax(-1) == data.test.y))
    max_diff = float(np.max(np.abs(native_logits - torch_logits)))
    one = x[:1, : int(lengths[0])]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fp32_model = baseline.model
        with torch.no_grad():
            torch_us = _median_us(lambda: fp32_model(torch.as_tensor(one)), 50)
        native_us = _median_us(lambda: engine.run(one), 50)
    finally:
        torch.set_num_threads(threads)

    rows = [
        ("fp32 baseline (PyTorch)", baseline.metrics["metric"], format_bytes(baseline.metrics["size_bytes"]),
         f"{torch_us:.0f} us"),
        ("int8 weights (PyTorch)", int8_test["accuracy"], format_bytes(int8_metrics["size_bytes"]), ""),
        ("int8 weights (native runtime)", native_accuracy, format_bytes(int8_metrics["size_bytes"]),
         f"{native_us:.0f} us"),
    ]
    print()
    print(format_table(rows, ["model", "test accuracy", "size", f"latency, 1 sequence of {one.shape[1]} steps"]))
    print(f"\nnative runtime vs PyTorch int8 on {len(x)} test sequences: max |logit difference| {max_diff:.2e}")
    print(f"run dirs: {out / 'baseline'} (fp32), {out / 'int8'} (int8)")
    print("next: lstmlite eval RUN | lstmlite export RUN --format onnx|lsl --out DIR | lstmlite bench RUN")
    return 0
