"""Training speed of our LSTM layer against torch.nn.LSTM, fwd + bwd, in one run.

Case of issue 2: B=32, T=100, I=40, H=128, float32, CPU. The two are timed
interleaved (A, B, A, B, ...) so machine noise hits both alike; the result is the
ratio of medians (speed ratio = torch time / our time; ≥ 0.8 is the target).

Second case, padded variable-length batches (JapaneseVowels-like: B=32, T=29, I=12, H=32,
lengths 7..29): our layer with ``lengths`` (no packing) against ``torch.nn.LSTM`` on a
``PackedSequence`` (pack + run + unpack timed), same weights, interleaved.

    python benchmarks/bench_train_speed.py [--reps 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from _common import write_result
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmlite.nn import from_torch


def time_fwd_bwd(module: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    out, _ = module(x)
    out.sum().backward()
    return time.perf_counter() - start


def padded_case(reps: int) -> list[dict]:
    """Variable-length batch: our ``lengths`` path against PyTorch's PackedSequence path."""
    B, T, I, H = 32, 29, 12, 32
    torch.manual_seed(1)
    reference = torch.nn.LSTM(I, H, batch_first=True)
    ours = from_torch(reference)
    lengths = torch.randint(7, T + 1, (B,))
    lengths[0] = T
    x = torch.randn(B, T, I) * (torch.arange(T)[None, :, None] < lengths[:, None, None])

    def packed() -> float:
        start = time.perf_counter()
        out, _ = reference(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        pad_packed_sequence(out, batch_first=True, total_length=T)[0].sum().backward()
        return time.perf_counter() - start

    def with_lengths() -> float:
        start = time.perf_counter()
        out, _ = ours(x, lengths=lengths)
        out.sum().backward()
        return time.perf_counter() - start

    # same numbers first: the speed of a wrong answer is not quoted
    ref_out = pad_packed_sequence(reference(pack_padded_sequence(x, lengths, batch_first=True,
                                                                 enforce_sorted=False))[0],
                                  batch_first=True, total_length=T)[0]
    max_err = (ours(x, lengths=lengths)[0] - ref_out).abs().max().item()
    if max_err > 1e-5:
        raise SystemExit(f"padded case: our layer differs from PyTorch's by {max_err:.2e}; not timing it")
    for _ in range(3):
        packed(), with_lengths()
    times = {"torch.nn.LSTM (PackedSequence)": [], "lstmlite.nn.LSTM (lengths)": []}
    for _ in range(reps):
        times["torch.nn.LSTM (PackedSequence)"].append(packed())
        times["lstmlite.nn.LSTM (lengths)"].append(with_lengths())
    return [{"case": "padded", "engine": k, "batch": B, "seq_len": T, "input_size": I, "hidden_size": H,
             "median_ms": round(statistics.median(v) * 1e3, 3),
             "p90_ms": round(sorted(v)[int(0.9 * len(v))] * 1e3, 3), "max_abs_err_vs_torch": max_err}
            for k, v in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    B, T, I, H = 32, 100, 40, 128
    torch.manual_seed(0)
    reference = torch.nn.LSTM(I, H, batch_first=True)
    ours = from_torch(reference)
    x = torch.randn(B, T, I)
    for _ in range(3):  # warm-up
        time_fwd_bwd(reference, x), time_fwd_bwd(ours, x)
    times = {"torch.nn.LSTM": [], "lstmlite.nn.LSTM": []}
    for _ in range(args.reps):
        times["torch.nn.LSTM"].append(time_fwd_bwd(reference, x))
        times["lstmlite.nn.LSTM"].append(time_fwd_bwd(ours, x))
    medians = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    ratio = medians["torch.nn.LSTM"] / medians["lstmlite.nn.LSTM"]
    rows = [{"engine": k, "batch": B, "seq_len": T, "input_size": I, "hidden_size": H,
             "median_ms": round(v, 3), "p90_ms": round(sorted(times[k])[int(0.9 * len(times[k]))] * 1e3, 3)}
            for k, v in medians.items()]
    rows.append({"speed_ratio_vs_torch": round(ratio, 3), "target": 0.8, "met": ratio >= 0.8})
    rows += padded_case(args.reps)
    path = write_result("train_speed", rows, {"threads": args.threads, "reps": args.reps})
    print(f"torch {medians['torch.nn.LSTM']:.2f} ms, ours {medians['lstmlite.nn.LSTM']:.2f} ms, "
          f"speed ratio {ratio:.3f} -> {path}")


if __name__ == "__main__":
    main()
