"""Text normalization (seq2seq): baseline exact match, the int8 recipe, beam vs greedy,
exported bytes, and agreement of the native runtime and ONNX Runtime with PyTorch.

Data: ``lstmlite data make text-norm`` pairs (``--n`` of them, data seed 0 shared by all
seeds): dates, times, numbers and money written in en/de/fr/es/it (CLDR via Babel) ↔
ISO form, char level, split 80/10/10. Per seed: train the default seq2seq model
(bidirectional LSTM encoder, Luong "general" attention; the epoch with the best
validation exact match is kept), apply the shipped ``int8`` and ``seq2seq-small``
(half-width student distilled for 30 epochs, then int8) recipes, and for each model:

- test exact match with greedy decoding and with beam search (width ``--beam``), BLEU,
  chrF (sacrebleu, character tokenization for BLEU) and CER (jiwer);
- export the native bundle (encoder.lsl + decoder.lsl + seq2seq.safetensors) and the ONNX
  pair (encoder.onnx + decoder_step.onnx; int8 as QDQ), and decode the whole test split
  greedily with each: ``native_agreement`` / ``onnx_agreement`` are the fractions of
  test sources whose output equals PyTorch's.

    python benchmarks/bench_seq2seq.py [--n 3000] [--epochs 30] [--seeds 3]
Writes benchmarks/results/seq2seq.json and prints its table (benchmarks/render.py's ``seq2seq``).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _common import write_result
from render import seq2seq_table
from lstmlite.compress.recipe import apply_recipe
from lstmlite.data.textnorm import make_text_norm
from lstmlite.export.onnx_seq2seq import OnnxSeq2Seq, export_seq2seq_onnx
from lstmlite.export.seq2seq import export_seq2seq_lsl
from lstmlite.io import load_run
from lstmlite.runtime.seq2seq import NativeSeq2Seq
from lstmlite.seq2seq import decode_torch
from lstmlite.train import fit, load_run_data
from lstmlite.train.seq2seq import evaluate_seq2seq

log = logging.getLogger("bench_seq2seq")


def _agreement(a: list[list[int]], b: list[list[int]]) -> float:
    return float(np.mean([x == y for x, y in zip(a, b)]))


def one_seed(seed: int, pairs: Path, work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    config = {"data": {"source": str(pairs), "task": "seq2seq", "seed": 0},
              "model": {"hidden_size": args.hidden, "embed_dim": args.embed, "attention": args.attention},
              "train": {"epochs": args.epochs, "lr": args.lr, "seed": seed, "patience": 0, "batch_size": 32}}
    base_dir, int8_dir, small_dir = work / f"base-{seed}", work / f"int8-{seed}", work / f"small-{seed}"
    base = fit(config, base_dir, progress=False)
    apply_recipe(base_dir, "int8", int8_dir, progress=False)
    apply_recipe(base_dir, "seq2seq-small", small_dir, progress=False)
    rows: list[dict[str, Any]] = []
    for method, run_dir in (("baseline", base_dir), ("recipe int8", int8_dir),
                            ("recipe seq2seq-small", small_dir)):
        run = load_run(run_dir)
        data = load_run_data(run)
        test = data.test
        greedy = evaluate_seq2seq(run.model, data, test, decoder="greedy")
        beam = evaluate_seq2seq(run.model, data, test, decoder="beam", beam=args.beam)
        lsl_files = export_seq2seq_lsl(run.model, work / f"{run_dir.name}-lsl")
        onnx_files = export_seq2seq_onnx(run.model, work / f"{run_dir.name}-onnx",
                                         quantize="qdq" if method != "baseline" else None)
        ours = decode_torch(run.model, test.x, test.lengths)
        native = NativeSeq2Seq(work / f"{run_dir.name}-lsl").decode(test.x, test.lengths)
        onnx = OnnxSeq2Seq(work / f"{run_dir.name}-onnx").decode(test.x, test.lengths)
        lsl_bytes = sum(p.stat().st_size for p in lsl_files)
        rows.append({
            "dataset": f"text-norm-{args.n}",
            "model": f"BiLSTM-{run.model.config()['hidden_size']} + {args.attention} attention",
            "method": method, "seed": seed, "metric_name": "exact_match", "metric": greedy["exact_match"],
            "beam_exact_match": beam["exact_match"], "beam": args.beam,
            "bleu": greedy["bleu"], "chrf": greedy["chrf"], "cer": greedy["cer"],
            "params": run.metrics["params"], "nonzero_params": run.metrics["nonzero_params"],
            "size_bytes": lsl_bytes, "lsl_bytes": lsl_bytes,
            "onnx_bytes": sum(p.stat().st_size for p in onnx_files),
            "baseline_metric": base.metrics["metric"],
            "baseline_size_bytes": rows[0]["size_bytes"] if rows else lsl_bytes,
            "native_agreement": _agreement(native, ours), "onnx_agreement": _agreement(onnx, ours),
            "test_pairs": len(test), "train_seconds": base.metrics.get("train_seconds"),
            "best_epoch": base.metrics.get("best_epoch"),
        })
        log.info("%s seed %d: %s", method, seed, {k: rows[-1][k] for k in (
            "metric", "beam_exact_match", "size_bytes", "native_agreement", "onnx_agreement")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="text-norm pairs to generate")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--embed", type=int, default=32)
    parser.add_argument("--attention", default="luong", choices=["luong", "bahdanau", "none"])
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pairs = make_text_norm(work / "textnorm", n=args.n, seed=0)
        rows = [row for seed in range(args.seeds) for row in one_seed(seed, pairs, work, args)]
    path = write_result("seq2seq", rows, {"settings": vars(args), "seeds": args.seeds})
    print(seq2seq_table(json.loads(path.read_text())))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
