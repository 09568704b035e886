"""Seq2seq models for the native runtime: a bundle of three files.

The runtime's C core runs LSTM/GRU layers; it has no attention operator. So a
:class:`~lstmlite.nn.Seq2Seq` deploys as

* ``encoder.lsl``: the encoder's recurrent layers (float input: embedded tokens);
* ``decoder.lsl``: the decoder's recurrent layers, run one step at a time;
* ``seq2seq.safetensors``: everything around them, which the Python side computes in
  NumPy: the embedding, the bridge, the attention (W_a / W_k, W_q, v), W_c and the
  output layer, plus the model config as metadata. A tensor factored by ``low_rank``
  (W = U V, nothing on top of the product) is stored as its factors ``NAME.u`` and
  ``NAME.v`` (each stored as below), the reader multiplying them out at load. A tensor
  (or factor) the model holds as
  weight-only quantized codes is stored as ``NAME.codes`` (int8) or, for int4 codes,
  ``NAME.codes4`` (uint8, two codes per byte, the even one in the low nibble, an odd row
  padded with a zero nibble; the column counts in the ``lstmlite.int4_cols`` metadata)
  and ``NAME.scale`` (float32 per row); the others as float32. A tensor pruned after it
  was quantized (the mask after the quantizer, so the codes predate it) keeps its codes
  with the mask's zeros applied, which the same scales turn into the masked weights
  exactly, as the ``.lsl`` writer stores it; a tensor whose codes give its effective value
  neither way is stored as its effective floats.

The ``.lsl`` files are written by :func:`lstmlite.export.lsl.write_lsl` (compression
honoured as for every model: int8/int4 codes, sparse blocks, low-rank factors). The
bundle's size is the sum of the three files' bytes (:func:`bundle_bytes`), which is what
``size_bytes`` reports for a seq2seq run.

Example:
    >>> import tempfile
    >>> from lstmlite.nn import Seq2Seq
    >>> model = Seq2Seq(vocab_size=20, embed_dim=8, hidden_size=16)
    >>> files = export_seq2seq_lsl(model, tempfile.mkdtemp())
    >>> sorted(p.name for p in files)
    ['decoder.lsl', 'encoder.lsl', 'seq2seq.safetensors']
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["export_seq2seq_lsl", "bundle_images", "bundle_bytes", "check_seq2seq_lsl", "rounds_float_weights",
           "rounded_reference",
           "SIDE_FILE", "ENCODER_FILE", "DECODER_FILE", "side_tensor_names"]

log = logging.getLogger(__name__)

ENCODER_FILE, DECODER_FILE, SIDE_FILE = "encoder.lsl", "decoder.lsl", "seq2seq.safetensors"


def side_tensor_names(model: Any) -> list[str]:
    """The parameters computed outside the runtime's recurrent layers, by name."""
    return [name for name, _ in model.named_parameters()
            if not name.startswith(("encoder.", "decoder.")) and ".parametrizations." not in name] + \
        _parametrized_side_names(model)


def _parametrized_side_names(model: Any) -> list[str]:
    names = []
    for module_name, module in model.named_modules():
        if module_name.startswith(("encoder", "decoder")) or not hasattr(module, "parametrizations"):
            continue
        if ".parametrizations." in module_name:  # a low-rank factor's own (quantizer) list, not a tensor of the model
            continue
        names += [f"{module_name}.{t}" for t in module.parametrizations.keys()]
    return names


def _side_tensors(model: Any) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Side tensors as stored: int8 codes (5..8 bits), or int4 codes (2..4 bits) packed two per byte, + per-row scales
    where the model has codes; a tensor factored by low_rank (nothing on top of the product) as its factors
    ``NAME.u`` and ``NAME.v``, each as codes where quantized; and the int4 tensors' column counts (the packing
    pads odd rows)."""
    import torch

    from ..compress.quantize import quantized_tensors
    from .lsl import _low_rank_factors, fitted_codes, pack_nibbles

    quant = quantized_tensors(model)
    out: dict[str, np.ndarray] = {}
    int4_cols: dict[str, int] = {}

    def put(name: str, value: np.ndarray, q: Any) -> None:
        """``value`` (the effective tensor) as ``q``'s codes where they give it, else as
        float32: the .lsl writer's test (:func:`~lstmlite.export.lsl.fitted_codes`), which also
        takes the codes with the mask's zeros applied for a tensor pruned after quantizing."""
        if q is not None and q.bits <= 8 and q.codes.dim() == 2 and tuple(q.codes.shape) == value.shape:
            cols = q.codes.shape[1]
            fitted = fitted_codes(name, q, value)  # contiguous: safetensors writes raw buffers
            if fitted is not None:
                if q.bits <= 4:  # 2..4-bit codes two per byte, as the .lsl files and ONNX store them
                    out[f"{name}.codes4"] = pack_nibbles(fitted.q)
                    int4_cols[name] = int(cols)
                else:
                    out[f"{name}.codes"] = fitted.q
                out[f"{name}.scale"] = fitted.scale
                return
        out[name] = np.ascontiguousarray(value, dtype=np.float32)

    with torch.no_grad():
        for name in sorted(set(side_tensor_names(model))):
            module_name, attr = name.rsplit(".", 1)
            module = model.get_submodule(module_name)
            factors = _low_rank_factors(module, attr)
            if factors is not None:  # W = U V stored as U and V (fewer bytes), as the .lsl files store them
                for which, value, key in (("u", factors.u, "original0"), ("v", factors.v, "original1")):
                    put(f"{name}.{which}", np.asarray(value, np.float32), quant.get(f"{name}.{key}"))
                continue
            value = getattr(module, attr).detach().cpu().numpy()  # effective (masks, products applied)
            put(name, value, quant.get(name))
    return out, int4_cols


def _layer_specs(model: Any) -> dict[str, Any]:
    """The encoder's and decoder's :class:`~lstmlite.runtime.lsl.ModelSpec`, by ``.lsl`` file name."""
    from .lsl import spec_from_module

    return {ENCODER_FILE: spec_from_module(model.encoder), DECODER_FILE: spec_from_module(model.decoder)}


def bundle_images(model: Any, weights: str | None = None, specs: dict[str, Any] | None = None) -> dict[str, bytes]:
    """The three files' bytes, by file name (see the module doc); ``specs``: the layers' specs
    when the caller has built them already."""
    from safetensors.numpy import save

    from .lsl import default_weights, write_lsl

    images = {}
    for file, spec in (specs or _layer_specs(model)).items():
        images[file] = write_lsl(spec, weights=default_weights(spec, weights))
    config = {k: v for k, v in model.config().items()}
    tensors, int4_cols = _side_tensors(model)
    metadata = {"lstmlite.seq2seq": json.dumps(config)}
    if int4_cols:  # only when there are int4 codes: other bundles keep their bytes
        metadata["lstmlite.int4_cols"] = json.dumps(int4_cols)
    images[SIDE_FILE] = save(tensors, metadata=metadata)
    return images


def bundle_bytes(model: Any, weights: str | None = None) -> int:
    """Deployed size of a seq2seq model: the bytes of its three exported files."""
    return sum(len(b) for b in bundle_images(model, weights).values())


def export_seq2seq_lsl(source: Any, out_dir: str | Path, weights: str | None = None) -> list[Path]:
    """Write ``encoder.lsl``, ``decoder.lsl`` and ``seq2seq.safetensors`` into ``out_dir``.

    Args:
        source: a :class:`~lstmlite.nn.Seq2Seq`, or a run dir of one.
        out_dir: the folder to write (created).
        weights: the ``.lsl`` files' weight form (see :func:`lstmlite.export.lsl.default_weights`).

    Returns:
        the three paths. Each ``.lsl`` file is loaded into the runtime before it is put
        in place, and the bundle is decoded once by :class:`lstmlite.runtime.seq2seq.NativeSeq2Seq`.

    Raises:
        ValueError: ``weights`` of fewer bits than the model's own codes
            (:func:`lstmlite.export.lsl.wider_codes_refusal`). Nothing is written.
    """
    from ..runtime.engine import Engine
    from .lsl import source_run_of, wider_codes_refusal

    model = source
    if not hasattr(source, "encoder"):
        from ..io import load_run

        model = load_run(source).model
    specs = _layer_specs(model)
    refusal = wider_codes_refusal({f"{file} ": spec for file, spec in specs.items()}, weights,
                                  None if hasattr(source, "encoder") else source_run_of(source))
    if refusal is not None:
        raise ValueError(refusal)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = bundle_images(model, weights, specs)
    for name, data in images.items():
        if name.endswith(".lsl"):
            Engine(data)  # refuse to write a file the runtime cannot load (before writing any)
    paths = []
    for name, data in images.items():
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(out / name)
        paths.append(out / name)
    log.info("wrote %s: %s (%d bytes in all)", out, ", ".join(images), sum(map(len, images.values())))
    return paths


def rounds_float_weights(model: Any, weights: str | None) -> bool:
    """Whether the bundle's ``.lsl`` files, written with ``weights``, round float matrices of the
    encoder or decoder (see :func:`lstmlite.export.lsl.rounds_float_weights`): the bundle then
    computes the model up to that rounding, not exactly."""
    from .lsl import default_weights, rounds_float_weights as rounds

    return any(rounds(spec, default_weights(spec, weights)) for spec in _layer_specs(model).values())


def rounded_reference(model: Any, weights: str | None) -> Any:
    """What a bundle written with ``weights`` computes, as a PyTorch model: a copy whose
    encoder and decoder carry the per-row codes their ``.lsl`` files round float matrices to
    (:func:`lstmlite.export.lsl.rounded_reference`, layer by layer), the side tensors as the
    bundle stores them (the model's own codes or floats: ``weights`` does not round them).
    The oracle of a bundle exported with ``--weights int8`` / ``int4`` from a float run.

    Raises:
        ValueError: no PyTorch model computes the layer's file (see the function above).
    """
    import copy

    from .lsl import default_weights, rounded_reference as rounded_layer, spec_from_module

    reference = copy.deepcopy(model).eval()
    for name in ("encoder", "decoder"):
        layer = getattr(reference, name)
        setattr(reference, name, rounded_layer(layer, default_weights(spec_from_module(layer), weights)))
    return reference


def check_seq2seq_lsl(model: Any, folder: str | Path, x: np.ndarray, lengths: np.ndarray) -> float:
    """Largest abs difference between the bundle's (:class:`~lstmlite.runtime.seq2seq.NativeSeq2Seq`)
    and the model's step log-probabilities over a batch, each step fed the model's own greedy
    token (as :func:`lstmlite.export.onnx_seq2seq.check_seq2seq_onnx` checks the ONNX pair)."""
    from ..runtime.seq2seq import NativeSeq2Seq

    return _greedy_step_difference(model, NativeSeq2Seq(folder), x, lengths, log_probs=True)


def _greedy_step_difference(model: Any, runner: Any, x: np.ndarray, lengths: np.ndarray, log_probs: bool) -> float:
    """Largest abs difference between ``runner``'s and the model's step outputs over a batch
    (up to 12 steps), each step fed the model's own greedy token: the check of an exported
    pair or bundle. ``runner`` has ``encode(x, lengths) -> (memory, state)`` and
    ``step(prev, state, memory) -> (outputs, state)``; ``log_probs``: its outputs are
    log-probabilities (the native bundle), else logits (the ONNX pair)."""
    import torch

    from ..nn.seq2seq import BOS_ID

    model = model.eval()
    memory_r, state_r = runner.encode(x, lengths)
    worst = 0.0
    with torch.no_grad():
        memory, state = model.encode(torch.as_tensor(np.asarray(x, np.int64)), torch.as_tensor(lengths))
        prev = torch.full((len(x),), BOS_ID, dtype=torch.long)
        for _ in range(min(model.max_target_len, 12)):
            logits, state, _ = model.step(prev, state, memory)
            got, state_r = runner.step(prev.numpy(), state_r, memory_r)
            expected = logits.log_softmax(-1) if log_probs else logits
            worst = max(worst, float(np.max(np.abs(got - expected.numpy()))))
            prev = logits.argmax(-1)
    return worst
