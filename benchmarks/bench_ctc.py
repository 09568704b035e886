"""Speech-to-text (CTC) on synthesized spoken digits: baseline CER, the shipped recipes'
CER and exported file bytes, and streaming speed of the native runtime beside PyTorch
and ONNX Runtime, per seed.

Per seed: synthesize ``--n`` utterances with espeak-ng (data seed 0, shared by all
seeds), train the baseline (``lstmlite train --task ctc`` with the settings below; the
epoch with the best validation CER is kept), apply the shipped ``int8`` and
``shrink-int8`` recipes, export each model to .lsl and to a stateful ONNX graph
(``export_onnx(..., stateful=True)``; int8 weights as QDQ), and stream the test split
frame by frame:

- ``lstmlite-<isa>``: :class:`lstmlite.runtime.stream.StreamingCTC` over ``Engine.step``
  (one thread), from the exported .lsl file;
- ``onnxruntime``: the same loop over :class:`lstmlite.export.OnnxStream` (one thread,
  no spinning), from the exported .onnx file, the state fed back each frame;
- ``torch-fp32 (lstmlite.nn)`` (baseline only): ``SequenceTagger.forward_stream`` one frame
  at a time with the state carried (one thread, no_grad);
- ``torch-fp32 (nn.LSTM)`` (baseline only): the same with plain ``torch.nn.LSTM`` +
  ``nn.Linear`` holding the same weights (checked equal first): what a PyTorch user
  would stream.

Every engine decodes greedily as frames arrive (:class:`lstmlite.ctc.GreedyStream`);
latency per frame includes the decoder's update; the real-time factor (RTF) is
processing time / audio time (``frames * hop``), the median of 3 passes. Agreement is
the fraction of test utterances whose streamed transcript equals the PyTorch model's
greedy decode. Beam decoding (prefix beam search, width 8) is scored on PyTorch's
logits and, streamed, on the runtime's. The test split is only evaluated at the end.

    python benchmarks/bench_ctc.py [--n 1000] [--epochs 60] [--seeds 3]
Writes benchmarks/results/ctc.json and prints its table (benchmarks/render.py's ``ctc``).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from _common import write_result
from render import ctc_table
from lstmlite.compress.recipe import apply_recipe
from lstmlite.ctc import GreedyStream
from lstmlite.data.synth import make_spoken_digits
from lstmlite.export.lsl import export_lsl
from lstmlite.export.onnx import OnnxStream, export_onnx
from lstmlite.io import load_run
from lstmlite.runtime.stream import time_streaming
from lstmlite.train import evaluate_run, fit, load_run_data
from lstmlite.train.sequence import decode_batch
from lstmlite.train.streaming import evaluate_streaming
from lstmlite.train.trainer import predict

log = logging.getLogger("bench_ctc")
RECIPES = ("int8", "shrink-int8")
SPEED_KEYS = ("us_per_frame", "p50_us", "p90_us", "rtf")


def peer_streaming(step: Callable[[np.ndarray], np.ndarray], reset: Callable[[], None],
                   utterances: list[np.ndarray], hop_s: float) -> tuple[dict[str, float], list[list[int]]]:
    """A peer's streaming loop (``step``: one frame (1, 1, F) → logits (1, 1, C), greedy
    decoding as frames arrive) timed as our runtime's is
    (:func:`lstmlite.runtime.stream.time_streaming`, 3 passes), and its transcripts."""
    decoder = GreedyStream()

    def push(frame: np.ndarray) -> None:
        decoder.push(step(frame[None, None])[0, 0])

    def start() -> None:
        reset()
        decoder.reset()

    timing = time_streaming(push, start, utterances, hop_s, repeats=3)
    labels = []
    for utterance in utterances:  # the transcripts, untimed
        start()
        for frame in np.ascontiguousarray(utterance, np.float32):
            push(frame)
        labels.append(list(decoder.labels))
    return {k: timing[k] for k in SPEED_KEYS}, labels


def torch_streaming(model: torch.nn.Module, utterances: list[np.ndarray], hop_s: float
                    ) -> tuple[dict[str, float], list[list[int]]]:
    """The streaming loop in PyTorch: ``model.forward_stream`` one frame at a time."""
    state: list[Any] = [None]

    def step(frame: np.ndarray) -> np.ndarray:
        logits, state[0] = model.forward_stream(torch.from_numpy(frame), state[0])
        return logits.numpy()

    def reset() -> None:
        state[0] = None

    model.eval()
    with torch.no_grad():
        return peer_streaming(step, reset, utterances, hop_s)


def onnx_streaming(path: Path, utterances: list[np.ndarray], hop_s: float
                   ) -> tuple[dict[str, float], list[list[int]]]:
    """The streaming loop in ONNX Runtime over a stateful export (state fed back each frame)."""
    stream = OnnxStream(path, threads=1)
    return peer_streaming(stream.step, stream.reset, utterances, hop_s)


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


def train_config(data_dir: Path, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    return {"data": {"source": str(data_dir), "task": "ctc", "seed": 0, "hop_ms": args.hop_ms},
            "model": {"hidden_size": args.hidden},
            "train": {"epochs": args.epochs, "lr": args.lr, "seed": seed, "patience": 0, "batch_size": 32}}


def measure_method(method: str, run_dir: Path, base: Any, work: Path, seed: int, args: argparse.Namespace
                   ) -> dict[str, Any]:
    """One row: the run's test CER (greedy and beam), its exported files, and every engine streaming it."""
    run = load_run(run_dir)
    data = load_run_data(run)
    part = data.test
    utterances = [part.x[i, : part.lengths[i]] for i in range(len(part))]
    hop_s = float(data.stats["hop_s"])
    lsl = export_lsl(run_dir, work / f"{run_dir.name}.lsl")
    quantized = method != "baseline"
    onnx_path = export_onnx(run.model, work / f"{run_dir.name}.onnx", stateful=True,
                            quantize="qdq" if quantized else None)
    streamed = evaluate_streaming(run_dir, lsl=lsl)
    streamed_beam = evaluate_streaming(run_dir, lsl=lsl, decoder="beam", beam=args.beam, repeats=1)
    beam = evaluate_run(run_dir, decoder="beam", beam=args.beam)
    logits = predict(run.model, data, part, device=torch.device("cpu"))
    reference = decode_batch(logits, part.lengths)

    def agreement(labels: list[list[int]]) -> float:
        return float(np.mean([a == b for a, b in zip(labels, reference)]))

    speeds = {streamed["engine"]: {k: streamed[k] for k in SPEED_KEYS}}
    agreements = {streamed["engine"]: streamed["agreement"]}
    speeds["onnxruntime"], labels = onnx_streaming(onnx_path, utterances, hop_s)
    agreements["onnxruntime"] = agreement(labels)
    if method == "baseline":
        speeds["torch-fp32 (lstmlite.nn)"], labels = torch_streaming(run.model, utterances, hop_s)
        agreements["torch-fp32 (lstmlite.nn)"] = agreement(labels)
        mirror = TorchMirror(run.model).eval()
        with torch.no_grad():  # the mirror is the same function: check before timing it
            x = torch.from_numpy(utterances[0])[None]
            torch.testing.assert_close(mirror.forward_stream(x)[0], run.model(x), rtol=1e-4, atol=1e-4)
        speeds["torch-fp32 (nn.LSTM)"], labels = torch_streaming(mirror, utterances, hop_s)
        agreements["torch-fp32 (nn.LSTM)"] = agreement(labels)
    row = {
        "dataset": f"spoken-digits-{args.n}", "model": f"LSTM-{args.hidden} CTC", "method": method, "seed": seed,
        "metric_name": "cer", "metric": run.metrics["metric"], "wer": run.metrics["test"]["wer"],
        "beam_cer": beam["test"]["cer"], "beam": args.beam,
        "params": run.metrics["params"], "nonzero_params": run.metrics["nonzero_params"],
        "hidden_size": run.model.rnn.hidden_size,
        # sizes are the files exported in this run
        "size_bytes": lsl.stat().st_size, "file_bytes": lsl.stat().st_size, "onnx_bytes": onnx_path.stat().st_size,
        "baseline_metric": base.metrics["metric"],
        "streamed_cer": streamed["cer"], "streamed_beam_cer": streamed_beam["cer"],
        "runtime_agreement": streamed["agreement"], "runtime_beam_agreement": streamed_beam["agreement"],
        "agreement": agreements, "frames": streamed["frames"], "hop_s": hop_s, "stream": speeds,
        "train_seconds": run.metrics.get("train_seconds"),
    }
    log.info("%s seed %d: CER %.4f (beam %.4f), %d B, agreement %s, %s", method, seed, row["metric"],
             row["beam_cer"], row["file_bytes"], agreements, {k: round(v["p50_us"], 1) for k, v in speeds.items()})
    return row


def one_seed(seed: int, data_dir: Path, work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    base_dir = work / f"base-{seed}"
    started = time.perf_counter()
    base = fit(train_config(data_dir, seed, args), base_dir, progress=False)
    log.info("seed %d: baseline trained in %.0f s", seed, time.perf_counter() - started)
    runs = [("baseline", base_dir)]
    for recipe in RECIPES:
        out = work / f"{recipe}-{seed}"
        started = time.perf_counter()
        apply_recipe(base_dir, recipe, out, progress=False)
        log.info("seed %d: recipe %s in %.0f s", seed, recipe, time.perf_counter() - started)
        runs.append((f"recipe {recipe}", out))
    rows = [measure_method(method, run_dir, base, work, seed, args) for method, run_dir in runs]
    for row in rows:
        row["baseline_size_bytes"] = rows[0]["file_bytes"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="utterances to synthesize")
    parser.add_argument("--epochs", type=int, default=60, help="baseline training epochs")
    parser.add_argument("--hidden", type=int, default=96)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--hop-ms", type=float, default=10.0)
    parser.add_argument("--beam", type=int, default=8, help="beam width of the beam-decoding columns")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="reuse a spoken-digits folder made with seed 0")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data_dir = args.data or make_spoken_digits(work / "digits", n=args.n, seed=0)
        rows = [row for seed in range(args.seeds) for row in one_seed(seed, data_dir, work, args)]
        config = train_config(data_dir, 0, args)
    settings = {k: v for k, v in vars(args).items() if k != "data"}
    settings["train_config"] = {**config, "data": {**config["data"], "source": f"spoken-digits n={args.n} seed=0"}}
    settings["recipes"] = list(RECIPES)
    path = write_result("ctc", rows, {"settings": settings, "seeds": args.seeds})
    print(ctc_table(json.loads(path.read_text())))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
