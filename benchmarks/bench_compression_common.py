"""Shared parts of the compression benchmarks (issue 3).

* :class:`TorchMirror` — the same classifier built from ``torch.nn`` modules (nn.LSTM,
  nn.Embedding, nn.Linear) holding an lstmlite model's weights, so that PyTorch's
  ``torch.ao.quantization.quantize_dynamic`` can be applied to *the same model*.
* :func:`dynamic_quant_bytes` — the bytes quantize_dynamic's model stores, counted
  tensor by tensor (int8 weights + their scale / zero point, fp32 biases, float
  tensors it left alone), and :func:`torch_save_bytes` — its ``torch.save``
  serialisation, for reference.
* :func:`summarise` — per-seed results → one results row (DESIGN "Benchmark results").
* :func:`export_check` — issue 10: every row's model is written as a ``.lsl`` file
  (``lstmlite export --format lsl``'s writer, through a saved run dir like the CLI, or
  from memory when the run dir does not round-trip), ``file_bytes`` is that file's size,
  checked against ``size_bytes``; the file is loaded into the native runtime and
  ``runtime_agreement`` is the fraction of test samples whose argmax agrees with PyTorch's.
  A form that cannot be exported has ``file_bytes: None`` and a ``note``.

Rows: ``metric`` is the mean over seeds (test split unless said), ``metric_std`` the
sample std, ``size_bytes`` the LARGEST deployable size over the seeds (so a size bound
holds for every seed), ``baseline_metric`` / ``baseline_size_bytes`` those of the fp32
model each compressed model came from (same seed, same run), ``delta_vs_baseline`` the
mean of the per-seed differences metric − baseline_metric.
"""

from __future__ import annotations

import copy
import io
import statistics
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmlite.compress import size_bytes
from lstmlite.io import nonzero_params
from lstmlite.train import evaluate
from lstmlite.train.trainer import iterate_batches


# ----- PyTorch's own dynamic quantization, on the same model ---------------------------------
class TorchMirror(nn.Module):
    """``[nn.Embedding] → nn.LSTM/nn.GRU → pooling → nn.Linear`` with the weights of an
    lstmlite ``SequenceClassifier`` (unidirectional, single or stacked; pooling "last",
    "mean" or "max" over the valid steps, as the model's).

    lstmlite's recurrent layers use PyTorch's parameter names and gate order, so the
    state dicts load one into the other; :func:`mirror` checks the outputs agree.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        cfg = model.config()
        if cfg.get("bidirectional") or cfg["cell"] not in ("lstm", "gru"):
            raise ValueError("the mirror covers unidirectional lstm/gru classifiers")
        self.pooling = cfg.get("pooling", "last")
        hidden = cfg["hidden_size"]
        if isinstance(hidden, list):
            raise ValueError("the mirror needs one hidden size for every layer")
        self.embedding = (nn.Embedding(cfg["vocab_size"], cfg["embed_dim"], padding_idx=0)
                          if cfg["vocab_size"] else None)
        cls = nn.LSTM if cfg["cell"] == "lstm" else nn.GRU
        self.rnn = cls(cfg["embed_dim"] or cfg["input_size"], hidden, num_layers=cfg["num_layers"], batch_first=True)
        self.head = nn.Linear(hidden, cfg["n_classes"])

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.embedding is not None:
            x = self.embedding(x.contiguous())  # the quantized embedding op needs contiguous ids
        if lengths is None:
            out, _ = self.rnn(x)
            valid = torch.ones(out.shape[:2], dtype=torch.bool)
            last = out[:, -1]
        else:
            lengths = lengths.cpu().clamp(min=1)
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            packed_out, state = self.rnn(packed)
            h = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c); GRU: h
            last = h[-1]
            out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
            valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]  # (B, T)
        if self.pooling == "last":
            features = last
        elif self.pooling == "mean":
            features = (out * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        else:
            features = out.masked_fill(~valid[..., None], float("-inf")).amax(1)
        return self.head(features)


def mirror(model: nn.Module, data: Any) -> TorchMirror:
    """A :class:`TorchMirror` of ``model`` (fp32); raises if its test logits differ."""
    m = TorchMirror(model)
    state = {k: v for k, v in copy.deepcopy(model).state_dict().items()}
    m.load_state_dict(state)
    m.eval()
    ours, theirs = logits(model, data, data.test), logits(m, data, data.test)
    if not np.allclose(ours, theirs, atol=1e-4):
        raise AssertionError(f"mirror differs from the lstmlite model: max |Δ| {np.abs(ours - theirs).max():.2e}")
    return m


@torch.no_grad()
def logits(model: nn.Module, data: Any, split: Any) -> np.ndarray:
    model.eval()
    out = [model(b.x, b.lengths).float() for b in iterate_batches(split, 256, torch.device("cpu"))]
    return torch.cat(out).numpy()


def accuracy(model: nn.Module, data: Any, split: Any) -> float:
    return float((logits(model, data, split).argmax(-1) == split.y).mean())


def quantize_dynamic(model: TorchMirror, embedding: bool = False) -> nn.Module:
    """``torch.ao.quantization.quantize_dynamic`` int8 of the recurrent layer and the head
    (its defaults: per-tensor symmetric int8 weights, fp32 biases); with ``embedding``
    also the embedding rows (``float_qparams_weight_only_qconfig``: uint8 rows with a
    float scale and zero point per row), which the defaults leave in fp32."""
    from torch.ao import quantization as tq

    spec: dict[Any, Any] = {nn.LSTM: tq.default_dynamic_qconfig, nn.GRU: tq.default_dynamic_qconfig,
                            nn.Linear: tq.default_dynamic_qconfig}
    if embedding:
        spec[nn.Embedding] = tq.float_qparams_weight_only_qconfig
    return tq.quantize_dynamic(copy.deepcopy(model), spec, dtype=torch.qint8)


def _qtensor_bytes(t: torch.Tensor) -> int:
    """int8 values + 4-byte scale and 4-byte zero point (per tensor or per channel)."""
    if not t.is_quantized:
        return t.numel() * t.element_size()
    if t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        groups = 1
    else:
        groups = t.q_per_channel_scales().numel()
    return t.numel() * t.element_size() + groups * 8


def dynamic_quant_bytes(qmodel: nn.Module) -> int:
    """Bytes quantize_dynamic's model stores, tensor by tensor: each int8 weight at one
    byte per value plus a 4-byte scale and a 4-byte zero point (per tensor, or per row
    for embedding rows), biases and untouched tensors in fp32. This is smaller than its
    ``torch.save`` file (see :func:`torch_save_bytes`), which adds packing metadata."""
    from torch.ao.nn.quantized import dynamic as nnqd
    from torch.ao.nn import quantized as nnq

    total = 0
    for module in qmodel.modules():
        if isinstance(module, nnqd.LSTM) or isinstance(module, nnqd.GRU):
            for w in module.get_weight().values():
                total += _qtensor_bytes(w)
            for b in module.get_bias().values():
                total += b.numel() * b.element_size()
        elif isinstance(module, nnqd.Linear):
            total += _qtensor_bytes(module.weight())
            bias = module.bias()
            total += 0 if bias is None else bias.numel() * bias.element_size()
        elif isinstance(module, nnq.Embedding):
            total += _qtensor_bytes(module.weight())
        elif isinstance(module, (nn.Linear, nn.Embedding, nn.LSTM, nn.GRU)):
            total += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
    return int(total)


def torch_save_bytes(qmodel: nn.Module) -> int:
    """Length of ``torch.save(qmodel.state_dict())`` in memory (benchmark use only)."""
    buffer = io.BytesIO()
    torch.save(qmodel.state_dict(), buffer)
    return buffer.getbuffer().nbytes


# ----- rows --------------------------------------------------------------------------------
def measure(model: nn.Module, data: Any, split: str = "test", run_dir: Any = None) -> dict[str, Any]:
    """Metric on ``split`` plus the model's counts (deployable bytes of the model as given:
    pass it un-finalized so quantization and masks count at their stored size)."""
    from lstmlite.train import primary_metric_name

    name = primary_metric_name(data)
    result = evaluate(model, data, getattr(data, split), device=torch.device("cpu"))
    from lstmlite.train.run import model_metrics

    deployed = model_metrics(model)
    return {
        "metric_name": name,
        "metric": float(result[name]),
        "val_metric": float(evaluate(model, data, data.val, device=torch.device("cpu"))[name])
        if split != "val" else float(result[name]),
        "params": int(model.params()) if hasattr(model, "params") else sum(p.numel() for p in model.parameters()),
        "nonzero_params": int(nonzero_params(model)),
        "size_bytes": int(deployed["size_bytes"]),  # metrics.json's: the .lsl image's bytes
        "size_basis": deployed["size_basis"],
        "estimate_bytes": int(size_bytes(model)),    # lstmlite.compress.size_bytes (storage estimate)
        "macs_per_step": deployed["macs_per_step"],
        **export_check(model, data, split, run_dir=run_dir),
    }


def export_check(model: nn.Module, data: Any, split: str = "test", run_dir: Any = None,
                 max_samples: int = 2000) -> dict[str, Any]:
    """Export ``model`` (or the run dir ``run_dir``) to .lsl the way ``lstmlite export
    --format lsl`` does, return ``file_bytes`` and ``runtime_agreement`` (fraction of the
    first ``max_samples`` samples of ``split`` whose argmax agrees with PyTorch's; for a
    language model over every position of those windows), or ``file_bytes: None`` and
    a ``note`` saying why not."""
    import tempfile
    from pathlib import Path

    from lstmlite import runtime
    from lstmlite.export.lsl import export_lsl, spec_from_module, write_lsl, default_weights
    from lstmlite.io import save_run

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lstmlite-bench-export-") as tmp:
        path = Path(tmp) / "model.lsl"
        try:
            if run_dir is None:
                run_dir = Path(tmp) / "run"
                from lstmlite.compress import compression_state

                save_run(run_dir, model, {"task": data.task, "compression": compression_state(model)})
            export_lsl(run_dir, path)
            out["export_path"] = "run dir → export_lsl"
        except Exception as err:  # noqa: BLE001 - recorded in the row
            try:
                spec = spec_from_module(model)
                write_lsl(spec, weights=default_weights(spec), path=path)
                runtime.load(path)
                out["export_path"] = f"in memory (run dir export failed: {type(err).__name__}: {err})"[:300]
            except Exception as err2:  # noqa: BLE001
                return {"file_bytes": None, "runtime_agreement": None,
                        "note": f"cannot export to .lsl: {type(err2).__name__}: {err2}"[:300]}
        out["file_bytes"] = path.stat().st_size
        if data.task == "forecast":
            out["runtime_agreement"] = None
            return out
        engine = runtime.load(path)
        ev = getattr(data, split)
        torch_pred, native_pred = [], []
        model.eval()
        seen = 0
        with torch.no_grad():
            for b in iterate_batches(ev, 64, torch.device("cpu")):
                if seen >= max_samples:
                    break
                ours = model(b.x, b.lengths)
                ours = (ours[0] if isinstance(ours, tuple) else ours).float().numpy()  # an LM: (logits, state)
                x = b.x.numpy()
                x = x.astype(np.int64) if data.task == "lm" or getattr(model, "vocab_size", 0) else x.astype(np.float32)
                native = engine.run(x, None if b.lengths is None else b.lengths.numpy())
                torch_pred.append(ours.argmax(-1).ravel())
                native_pred.append(np.asarray(native).argmax(-1).ravel())
                seen += len(b.y)
        a, n = np.concatenate(torch_pred), np.concatenate(native_pred)
        out["runtime_agreement"] = float((a == n).mean())
        out["runtime_samples"] = int(min(seen, len(ev.y)))
    return out


def summarise(dataset: str, method: str, model_desc: Any, per_seed: list[dict[str, Any]],
              baselines: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-seed measurements (and their baselines, same order) → one results row."""
    metrics = [r["metric"] for r in per_seed]
    base = [b["metric"] for b in baselines]
    size = max(r["size_bytes"] for r in per_seed)
    base_size = max(b["size_bytes"] for b in baselines)
    row = {
        "dataset": dataset,
        "model": model_desc,
        "method": method,
        "metric_name": per_seed[0]["metric_name"],
        "metric": statistics.mean(metrics),
        "metric_std": statistics.stdev(metrics) if len(metrics) > 1 else 0.0,
        "metric_per_seed": metrics,
        "val_metric_per_seed": [r.get("val_metric") for r in per_seed],
        "seeds": len(metrics),
        "params": per_seed[-1]["params"],
        "nonzero_params": round(statistics.mean(r["nonzero_params"] for r in per_seed)),
        "size_bytes": size,
        "macs_per_step": per_seed[-1]["macs_per_step"],
        "baseline_metric": statistics.mean(base),
        "baseline_size_bytes": base_size,
        "size_ratio": base_size / size,
        "delta_vs_baseline": statistics.mean(m - b for m, b in zip(metrics, base)),
        "delta_std": statistics.stdev([m - b for m, b in zip(metrics, base)]) if len(metrics) > 1 else 0.0,
    }
    for key in per_seed[0]:
        if key not in row and key not in ("metric", "val_metric", "file_bytes", "runtime_agreement") and isinstance(per_seed[0][key], (int, float)):
            values = [r[key] for r in per_seed]
            row[key if key.endswith("_bytes") else f"{key}_mean"] = (
                max(values) if key.endswith("_bytes") else statistics.mean(values))
    # issue 10: the size is the exported file's bytes
    files = [r.get("file_bytes") for r in per_seed]
    base_files = [b.get("file_bytes") for b in baselines]
    row["file_bytes"] = None if None in files else max(files)
    row["file_bytes_per_seed"] = files
    row["baseline_file_bytes"] = None if None in base_files else max(base_files)
    row["size_bytes_per_seed"] = [r["size_bytes"] for r in per_seed]
    row["size_bytes_equals_file_bytes"] = (None if None in files else
                                           all(r["size_bytes"] == r["file_bytes"] for r in per_seed))
    if row["file_bytes"] is not None and row["baseline_file_bytes"] is not None:
        row["size_ratio"] = row["baseline_file_bytes"] / row["file_bytes"]
    else:
        row["size_ratio_estimate"] = row.pop("size_ratio")
        row["size_ratio"] = None
    agree = [r.get("runtime_agreement") for r in per_seed]
    row["runtime_agreement_per_seed"] = agree
    row["runtime_agreement"] = None if None in agree else min(agree)
    notes = sorted({r["note"] for r in per_seed if r.get("note")})
    if notes:
        row["note"] = "; ".join(notes)
    paths = sorted({r["export_path"] for r in per_seed if r.get("export_path")})
    if paths:
        row["export_path"] = paths
    row.update(extra or {})
    return row


def fmt_pct(x: float) -> str:
    return f"{100 * x:.2f}"


def markdown_table(rows: list[dict[str, Any]], percent: bool = True) -> str:
    """A markdown table of rows (metric in % for accuracies, as is otherwise); size is the
    exported .lsl file's bytes, × smaller is computed from file bytes."""
    lines = ["| dataset | method | metric | mean ± std (seeds) | Δ vs fp32 | file bytes | × smaller | "
             "runtime agreement | params (non-zero) | MACs/step | target |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = r["metric_name"] == "accuracy"
        scale = 100 if acc else 1
        unit = " %" if acc else ""
        val = f"{scale * r['metric']:.2f} ± {scale * r['metric_std']:.2f}{unit} ({r['seeds']})"
        delta = f"{scale * r['delta_vs_baseline']:+.2f}" + (" pt" if acc else "")
        if not acc and r.get("delta_relative") is not None:
            delta += f" ({100 * r['delta_relative']:+.2f} %)"
        target = r.get("target", "")
        if target:
            target += " ✔" if r.get("meets_target") else " ✘"
        size = f"{r['file_bytes']:,}" if r.get("file_bytes") is not None else "no file"
        if r.get("file_bytes") is not None and not r.get("size_bytes_equals_file_bytes"):
            size += f" (size_bytes {r['size_bytes']:,}!)"
        ratio = f"{r['size_ratio']:.1f}" if r.get("size_ratio") is not None else "—"
        agree = (f"{100 * r['runtime_agreement']:.2f} %" if r.get("runtime_agreement") is not None else "—")
        lines.append(
            f"| {r['dataset']} | {r['method']} | {r['metric_name']} | {val} | {delta} | {size} | "
            f"{ratio} | {agree} | {r['params']:,} ({r['nonzero_params']:,}) | {r['macs_per_step'] or '-'} | "
            f"{target} |")
    return "\n".join(lines)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    import time

    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started
