"""Speech-to-text (CTC) on synthesized spoken digits: baseline CER, the int8 recipe's
CER and exported file bytes, and streaming speed of the native runtime beside PyTorch.

Per seed: synthesize ``--n`` utterances with espeak-ng (data seed 0, shared by all
seeds), train the baseline (``lstmlite train --task ctc`` settings below; the epoch
with the best validation CER is kept), apply the shipped ``int8`` recipe, export both
to .lsl, and stream the test split frame by frame:

- ``lstmlite-<isa>``: :class:`lstmlite.runtime.stream.StreamingCTC` over ``Engine.step``
  (one thread), from the exported file;
- ``torch-fp32 (lstmlite.nn)``: the same loop in PyTorch, ``SequenceTagger.forward_stream``
  one frame at a time with the state carried (one thread, no_grad), same greedy decoder;
- ``torch-fp32 (nn.LSTM)``: the same with plain ``torch.nn.LSTM`` + ``nn.Linear`` holding the
  same weights (checked equal first): what a PyTorch user would stream.

Latency per frame includes the greedy decoder's update; the real-time factor (RTF) is
processing time / audio time (``frames * hop``). ``runtime_agreement`` is the fraction
of test utterances whose streamed transcript equals the PyTorch model's greedy decode.
The test split is only evaluated at the end.

    python benchmarks/bench_ctc.py [--n 1000] [--epochs 30] [--seeds 1]
Writes benchmarks/results/ctc.json and prints its table (benchmarks/render.py's ``ctc``).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _common import write_result
from render import ctc_table
from lstmlite.compress.recipe import apply_recipe
from lstmlite.ctc import GreedyStream
from lstmlite.data.synth import make_spoken_digits
from lstmlite.export.lsl import export_lsl
from lstmlite.io import load_run
from lstmlite.train import fit, load_run_data
from lstmlite.train.streaming import evaluate_streaming

log = logging.getLogger("bench_ctc")


def torch_streaming(model: torch.nn.Module, utterances: list[np.ndarray], hop_s: float,
                    repeats: int = 3) -> dict[str, float]:
    """PyTorch's per-frame latency and RTF for the same streaming loop, measured as
    :func:`lstmlite.runtime.stream.measure_streaming` measures ours (one untimed
    warm-up utterance; RTF = median over ``repeats`` passes)."""
    times: list[int] = []
    totals: list[int] = []
    clock = time.perf_counter_ns
    model.eval()
    with torch.no_grad():
        warm = torch.from_numpy(np.ascontiguousarray(utterances[0], np.float32))[None]
        model.forward_stream(warm)
        for _ in range(repeats):
            first = len(times)
            _one_pass(model, utterances, times, clock)
            totals.append(sum(times[first:]))
    us = np.asarray(times, np.float64) / 1e3
    frames = len(us) // repeats
    return {"frames": int(frames), "us_per_frame": float(us.mean()), "p50_us": float(np.percentile(us, 50)),
            "p90_us": float(np.percentile(us, 90)), "rtf": float(np.median(totals) / 1e9 / (frames * hop_s))}


def _one_pass(model: torch.nn.Module, utterances: list[np.ndarray], times: list[int], clock: Any) -> None:
    with torch.no_grad():
        for utterance in utterances:
            state, decoder = None, GreedyStream()
            frames = torch.from_numpy(np.ascontiguousarray(utterance, np.float32))[None, :, None, :]
            for t in range(frames.shape[1]):
                start = clock()
                logits, state = model.forward_stream(frames[:, t], state)
                decoder.push(logits[0, 0].numpy())
                times.append(clock() - start)


class TorchMirror(torch.nn.Module):
    """The baseline as plain ``torch.nn.LSTM`` + ``nn.Linear`` with the same weights: what
    a PyTorch user would stream, without lstmlite's layer (its parametrization hooks)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        rnn = model.rnn
        self.lstm = torch.nn.LSTM(model.input_size, rnn.hidden_size, rnn.num_layers, batch_first=True)
        self.lstm.load_state_dict({k: v for k, v in rnn.state_dict().items() if k in self.lstm.state_dict()})
        self.head = torch.nn.Linear(model.head.in_features, model.head.out_features)
        self.head.load_state_dict(model.head.state_dict())

    def forward_stream(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        out, state = self.lstm(x, state)
        return self.head(out), state


def one_seed(seed: int, data_dir: Path, work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    config = {"data": {"source": str(data_dir), "task": "ctc", "seed": 0, "hop_ms": args.hop_ms},
              "model": {"hidden_size": args.hidden},
              "train": {"epochs": args.epochs, "lr": args.lr, "seed": seed, "patience": 0, "batch_size": 32}}
    int8_dir = work / f"int8-{seed}"
    if args.baseline_run is not None:  # a baseline trained before (see --baseline-run)
        base_dir = args.baseline_run
        base = load_run(base_dir)
    else:
        base_dir = work / f"base-{seed}"
        base = fit(config, base_dir, progress=False)
    apply_recipe(base_dir, "int8", int8_dir, progress=False)
    rows = []
    for method, run_dir in (("baseline", base_dir), ("recipe int8", int8_dir)):
        run = load_run(run_dir)
        lsl = export_lsl(run_dir, work / f"{run_dir.name}.lsl")
        streamed = evaluate_streaming(run_dir, lsl=lsl)
        data = load_run_data(run)
        utterances = [data.test.x[i, : data.test.lengths[i]] for i in range(len(data.test))]
        torch_speed = {}
        if method == "baseline":
            torch_speed["torch-fp32 (lstmlite.nn)"] = torch_streaming(run.model, utterances, data.stats["hop_s"])
            mirror = TorchMirror(run.model).eval()
            with torch.no_grad():  # the mirror is the same function: check before timing it
                x = torch.from_numpy(utterances[0])[None]
                torch.testing.assert_close(mirror.forward_stream(x)[0], run.model(x), rtol=1e-4, atol=1e-4)
            torch_speed["torch-fp32 (nn.LSTM)"] = torch_streaming(mirror, utterances, data.stats["hop_s"])
        rows.append({
            "dataset": f"spoken-digits-{args.n}", "model": f"LSTM-{args.hidden} CTC", "method": method, "seed": seed,
            "metric_name": "cer", "metric": run.metrics["metric"], "wer": run.metrics["test"]["wer"],
            "params": run.metrics["params"], "nonzero_params": run.metrics["nonzero_params"],
            # sizes are the files exported in this run (a --baseline-run's metrics.json may
            # predate a .lsl format change)
            "size_bytes": lsl.stat().st_size, "file_bytes": lsl.stat().st_size,
            "baseline_metric": base.metrics["metric"],
            "baseline_size_bytes": rows[0]["file_bytes"] if rows else lsl.stat().st_size,
            "streamed_cer": streamed["cer"], "runtime_agreement": streamed["agreement"],
            "frames": streamed["frames"], "hop_s": data.stats["hop_s"],
            "stream": {engine: {k: speed[k] for k in ("us_per_frame", "p50_us", "p90_us", "rtf")}
                       for engine, speed in [(streamed["engine"], streamed), *torch_speed.items()]},
            "train_seconds": base.metrics.get("train_seconds") if method == "baseline" else None,
        })
        log.info("%s seed %d: CER %.4f, %d B, agreement %.3f, %s", method, seed, rows[-1]["metric"],
                 rows[-1]["file_bytes"], streamed["agreement"], rows[-1]["stream"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="utterances to synthesize")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=96)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--hop-ms", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="reuse a spoken-digits folder made with seed 0")
    parser.add_argument("--baseline-run", type=Path, default=None,
                        help="use this trained ctc run dir as the baseline instead of training one (one seed; "
                             "its own config.json says how it was trained and is copied into the result)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data_dir = args.data or make_spoken_digits(work / "digits", n=args.n, seed=0)
        rows = [row for seed in range(args.seeds) for row in one_seed(seed, data_dir, work, args)]
    settings = {k: v for k, v in vars(args).items() if k not in ("data", "baseline_run")}
    if args.baseline_run is not None:
        baseline = load_run(args.baseline_run)
        settings = {"baseline_run": {"data": baseline.config["data"], "model": baseline.model.config(),
                                     "train": baseline.config["train"],
                                     "best_epoch": baseline.metrics.get("best_epoch"),
                                     "train_seconds": baseline.metrics.get("train_seconds")}}
    path = write_result("ctc", rows, {"settings": settings, "seeds": args.seeds})
    print(ctc_table(json.loads(path.read_text())))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
