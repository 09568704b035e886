"""``lstmlite demo``: the whole tool on built-in data, in a few minutes on a laptop.

1. train an fp32 LSTM baseline on JapaneseVowels (chosen on validation);
2. quantize it to int8 weights (post-training, per-channel) and re-measure;
3. run the int8 model in the native C runtime, check it against PyTorch on the
   test split, and time both on one thread;
4. write ``report.html`` (comparison, accuracy vs size, model cards with the
   latencies measured in step 3, per-class change, gates and saliency of test
   sample 0 for both models) and print its path.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import HelpFormatter, add_progress_options, example_epilog, format_bytes, format_table, show_progress


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
    parser.add_argument("--force", action="store_true",
                        help="replace the run dirs (OUT/baseline, OUT/int8) of an earlier demo in --out")
    add_progress_options(parser)
    parser.set_defaults(func=run)


def demo_config(quick: bool) -> dict:
    return {
        "data": {"source": "japanese_vowels", "task": "classify", "val_fraction": 0.2},
        "model": {"cell": "lstm", "hidden_size": 64},
        "train": {"epochs": 3 if quick else 60, "batch_size": 16, "lr": 3e-3, "patience": 15},
    }


def _latency_us(fn, reps: int) -> tuple[float, float]:
    """(median, p90) of ``reps`` calls, in microseconds."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1e6, times[min(len(times) - 1, int(0.9 * len(times)))] * 1e6


def _bench_json(torch_us: tuple[float, float], native_us: tuple[float, float], input_size: int, hidden: int,
                steps: int) -> dict:
    """Step 3's timings in the ``lstmlite bench --json`` form (whole model, one sequence)."""
    from ..runtime.bench import machine_info

    common = {"input_size": input_size, "hidden_size": hidden, "seq_len": steps, "batch": 1, "mode": "sequence",
              "threads": 1, "what": "whole model (recurrent layer + head), timed by lstmlite demo"}
    return {"machine": machine_info(), "cases": [
        {"engine": "torch-fp32", **common, "median_us": torch_us[0], "p90_us": torch_us[1]},
        {"engine": "lstmlite-int8", **common, "median_us": native_us[0], "p90_us": native_us[1]}]}


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .. import runtime
    from ..compress import WeightQuantConfig, compress_, compression_state
    from ..io import check_out_dir, load_run, save_run
    from ..train import evaluate, fit, load_run_data, model_metrics

    out = Path(args.out) if args.out else Path(f"lstmlite-demo-{time.strftime('%Y%m%d-%H%M%S')}")
    for run_dir in (out / "baseline", out / "int8"):  # before minutes of training, not after
        check_out_dir(run_dir, overwrite=args.force)
    print(f"lstmlite demo: LSTM-64 on japanese_vowels ({'quick' if args.quick else 'full'}), writing {out}\n")

    print("1/4 training the fp32 baseline ...")
    baseline = fit(demo_config(args.quick), out / "baseline", progress=show_progress(args), overwrite=args.force)
    data = load_run_data(baseline)

    print("2/4 quantizing to int8 weights (per output channel) ...")
    model = load_run(out / "baseline").model
    compress_(model, WeightQuantConfig(bits=8))
    int8_test = evaluate(model, data, data.test)
    # The baseline's training facts (chosen epoch, time) are not the int8 model's: no training here.
    inherited = {k: v for k, v in baseline.metrics.items() if k not in ("best_epoch", "train_seconds")}
    int8_metrics = {**inherited, "metric": int8_test["accuracy"], "test": int8_test,
                    "val": evaluate(model, data, data.val),
                    **model_metrics(model), "baseline_metric": baseline.metrics["metric"],
                    "baseline_size_bytes": baseline.metrics["size_bytes"]}
    config = {k: v for k, v in baseline.config.items() if k not in ("model", "format_version")}
    int8_metrics["source_run"] = str(out / "baseline")
    save_run(out / "int8", model, {**config, "compression": compression_state(model), "recipe": "int8",
                                   "source_run": str(out / "baseline")}, metrics=int8_metrics, vocab=baseline.vocab,
             overwrite=args.force)

    print("3/4 running the int8 model in the native runtime ...")
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
            torch_lat = _latency_us(lambda: fp32_model(torch.as_tensor(one)), 50)
        native_lat = _latency_us(lambda: engine.run(one), 50)
    finally:
        torch.set_num_threads(threads)

    torch_us, native_us = torch_lat[0], native_lat[0]
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

    print("\n4/4 writing the report ...")
    from ..io import write_json
    from ..report import write_report

    write_json(out / "bench.json", _bench_json(torch_lat, native_lat, int(x.shape[2]),
                                                  int(baseline.config["model"]["hidden_size"]), int(one.shape[1])))
    report = write_report([out / "baseline", out / "int8"], out / "report.html", bench=[out / "bench.json"],
                          explain_sample=0, title="lstmlite demo: LSTM-64 on JapaneseVowels, fp32 vs int8")
    print(f"report: {report} (open it in a browser)")
    print("next: lstmlite eval RUN | lstmlite export RUN --format onnx|lsl --out DIR | lstmlite bench RUN")
    return 0
