"""A CTC run's test split streamed through the native runtime, frame by frame.

:func:`evaluate_streaming` loads a run dir's model into the runtime (from an exported
.lsl file, or exported in memory as ``export --format lsl`` would), decodes every
utterance of a split one frame at a time with the state carried
(:class:`lstmlite.runtime.stream.StreamingCTC`), and reports the error rates, how
often the streamed transcript equals the PyTorch model's greedy decode, and the
latency per frame and real-time factor of that streaming loop.

Example:
    >>> evaluate_streaming("runs/digits", lsl="out/model.lsl")["rtf"]   # doctest: +SKIP
    0.0009
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import load_run
from . import metrics as M
from .run import load_run_data
from .trainer import predict

__all__ = ["evaluate_streaming"]


def _engine(run: Any, run_dir: str | Path, lsl: str | Path | None):
    """The runtime engine of ``run``: the exported file ``lsl`` (checked to be an export of
    this run's architecture, so a file of another run is named, not run), or the run
    exported in memory."""
    from ..export.lsl import default_weights, spec_from_module, write_lsl
    from ..runtime import load
    from ..runtime.engine import Engine

    spec = spec_from_module(run.model)
    own = Engine(write_lsl(spec, weights=default_weights(spec)))
    if lsl is None:
        return own
    path = Path(lsl)
    if path.is_dir() or not path.exists():  # load() would take a run dir, or name one
        what = "a folder, not an .lsl file" if path.is_dir() else "no such .lsl file"
        raise FileNotFoundError(f"{path}: {what}; lstmlite export {run_dir} --format lsl --out FILE.lsl writes one")
    engine = load(path)
    if _architecture(engine) != _architecture(own):
        raise ValueError(f"{path}: not an export of {run_dir} ({_describe(engine)}; the run is {_describe(own)}); "
                         f"lstmlite export {run_dir} --format lsl writes this run's file")
    return engine


def _architecture(engine: Any) -> tuple:
    """What must match between a run and a file said to be its export: each layer's cell and
    sizes, and the head (the weights' storage form may differ: int8, sparse, ...)."""
    info = engine.info
    layers = tuple((layer["cell"], layer["input_size"], layer["hidden_size"], layer["proj_size"],
                    layer["num_directions"]) for layer in info["layers"])
    return layers, info["input_size"], info["head_mode"], info["n_out"]


def _describe(engine: Any) -> str:
    layers = engine.info["layers"]
    cells = ", ".join(f"{layer['cell']} {layer['input_size']}->{layer['hidden_size']}" for layer in layers)
    kind = engine.meta.get("kind", "model")
    return f"a {kind}: {cells}, {engine.info['n_out']} outputs"


def evaluate_streaming(run_dir: str | Path, lsl: str | Path | None = None, split: str = "test",
                       source: str | None = None, limit: int | None = None, repeats: int = 3,
                       decoder: str = "greedy", beam: int = 8) -> dict[str, Any]:
    """Stream a ctc run's split through the runtime; returns metrics.json-style keys.

    Args:
        run_dir: a run dir of ``--task ctc``.
        lsl: an exported .lsl file of that run (None: export in memory).
        split: ``train`` | ``val`` | ``test``.
        source: another audio list, prepared as the run's data (see ``lstmlite eval --data``).
        limit: stream only the first ``limit`` utterances (quick checks).
        repeats: timed passes; the real-time factor is their median (see
            :func:`~lstmlite.runtime.stream.measure_streaming`).
        decoder: ``greedy`` or ``beam`` (prefix beam search of width ``beam`` over the
            runtime's per-frame logits); the PyTorch reference is decoded the same way.

    Returns:
        ``cer``, ``wer``, ``sequence_accuracy`` of the streamed transcripts,
        ``agreement`` (fraction of utterances whose streamed labels equal PyTorch's
        decode of the same run with the same decoder), ``decoder``, and :func:`measure_streaming`'s timing keys
        (``us_per_frame``, ``p50_us``, ``p90_us``, ``rtf``).
    """
    from ..runtime.engine import isa
    from ..runtime.stream import StreamingCTC, measure_streaming
    from .sequence import PAD_LABEL, decode_batch

    run = load_run(run_dir)
    if run.config.get("task") != "ctc":
        raise ValueError(f"{run_dir}: streaming decoding is for --task ctc runs, not {run.config.get('task')!r}")
    data = load_run_data(run, source)
    part = getattr(data, split)
    if limit is not None:
        part = part.subset(np.arange(min(limit, len(part))))
    engine = _engine(run, run_dir, lsl)
    alphabet = list(data.class_names)
    utterances = [part.x[i, : part.lengths[i]] for i in range(len(part))]
    rec = StreamingCTC(engine, decoder=decoder, beam=beam)
    streamed = [rec.decode(u) for u in utterances]
    logits = predict(run.model, data, part, device=torch.device("cpu"))
    reference = decode_batch(logits, part.lengths, decoder, beam)
    truth = ["".join(alphabet[v] for v in row if v != PAD_LABEL) for row in part.y]
    hyps = ["".join(alphabet[v] for v in row) for row in streamed]
    timing = measure_streaming(engine, utterances, float(data.stats.get("hop_s", 0.01)), repeats=repeats,
                               decoder=decoder, beam=beam)
    return {"task": "ctc", "dataset": data.name, "split": split, "utterances": len(part), "decoder": decoder,
            "engine": f"lstmlite-{isa()}", "cer": M.cer(truth, hyps), "wer": M.wer(truth, hyps),
            "sequence_accuracy": float(np.mean([t == h for t, h in zip(truth, hyps)])),
            "agreement": float(np.mean([a == b for a, b in zip(streamed, reference)])), **timing}
