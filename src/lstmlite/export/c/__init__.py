"""Dependency-free C export: a run dir (or model) → a C99 project for a microcontroller.

:func:`export_c` writes ``model.h`` (typed API: ``lstmlite_model_init`` / ``_reset`` /
``_step`` / ``_run``, sizes as ``#define`` constants, integer error codes), ``model.c``
(weights as ``const`` arrays, static state and scratch, no ``malloc``), the runtime
sources it needs and no others, a Makefile with a host and a Cortex-M target, an
example program and a README with the memory figures. See docs/mcu.md.
:func:`memory_of` gives those memory figures from the same code without writing the
project (the search's RAM objective, :func:`lstmlite.search.objectives.ram_bytes`).

Forms (``form=``):

* ``auto``  -- the weights as the run has them: fp32, or its own int8/int4 codes with
  float activations (the runtime's float core, ``lsl_model.c``);
* ``fp32``  -- float weights (codes dequantized);
* ``int8``  -- int8 weights (per-row scales), float activations;
* ``integer`` -- integer-only (int8 weights and activations, int16 state; DESIGN 5b):
  ``lsl_int.c``, bit-exact with :mod:`lstmlite.reference.integer`; no float and no libm
  on the device. Needs calibration inputs.
* ``tflite`` -- a TFLite-quantized LSTM layer (``TFLiteLSTMParams``, the importer's
  ``TFLiteLSTMModel`` or a ``.tflite`` file) with TFLite's own arithmetic:
  ``lsl_tflite.c``, bit-exact with :mod:`lstmlite.reference.tflite_int` and so with
  TensorFlow Lite Micro; no float and no libm on the device.

Example:
    >>> import torch, tempfile
    >>> from lstmlite.nn import SequenceClassifier
    >>> model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2)
    >>> out = tempfile.mkdtemp()
    >>> project = export_c(model, out, form="integer", calibration=[torch.randn(4, 10, 3)])
    >>> sorted(p.name for p in project.files if p.suffix == ".c")
    ['example.c', 'lsl_int.c', 'model.c', 'startup_cortexm.c']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .float_form import UnsupportedForm, float_model_c
from .integer_form import integer_model_c
from ..preprocessing import Standardization, standardization_of
from .memory import MemoryReport, memory_report, readme_text
from .preprocess import preprocess_header
from .project import write_project
from .tflite_form import tflite_model_c

__all__ = ["export_c", "memory_of", "CPUS", "CProject", "UnsupportedForm", "FORMS", "integer_form_of", "IntegerForm",
           "tflite_params_of"]

log = logging.getLogger(__name__)

FORMS = ("auto", "fp32", "int8", "integer", "tflite")
#: Operators of a .tflite model that form tflite's per-step LSTM project stands in for.
_TFLITE_PASS_THROUGH = frozenset({"QUANTIZE", "DEQUANTIZE", "STRIDED_SLICE"})
#: The advice of a refusal of a module that is no recurrent model (the cells each form has).
_NOT_RECURRENT = "an lstmlite.nn task model, or {cells} layer (torch.nn.LSTM / GRU too)"
#: The targets a project's memory is reported for (``CProject.memory``'s keys).
CPUS = ("cortex-m4", "cortex-m3")


@dataclass
class CProject:
    """A generated project: where it is, what it holds, and what it costs."""

    path: Path
    form: str
    files: list[Path]
    memory: dict[str, MemoryReport]          # per target: "cortex-m4", "cortex-m3"
    info: dict[str, Any] = field(default_factory=dict)
    integer: Any = None                      # IntegerForm of an integer export (for checks)
    tflite: Any = None                       # TFLiteLSTMParams of a tflite export (for checks)
    example: np.ndarray | None = None        # the example program's input
    standardization: Any = None              # the run's input statistics (preprocess.h), or None


@dataclass
class IntegerForm:
    """The integer-only model as the generated C computes it (for the NumPy reference)."""

    params: Any                   # IntegerRecurrentParams
    head: Any = None              # IntegerHead or None
    embedding: np.ndarray | None = None


def _model_of(run_or_model: Any) -> Any:
    if isinstance(run_or_model, (str, Path)):
        from ...io import load_run

        return load_run(run_or_model).model
    return run_or_model


def _float_nearest(model: Any) -> str | None:
    """The nearest supported form :func:`export_c` names when ``--form auto`` refuses
    ``model``, or None where auto exports it: a refusal of the integer form must not point at
    a form that refuses the model too."""
    try:
        _generate(model, "auto", source=False)
    except UnsupportedForm as err:
        return err.nearest or None
    return None


def _check_integer(model: Any) -> None:
    """Raise :class:`UnsupportedForm` for what the integer form cannot hold (before calibrating)."""
    kind = getattr(model, "kind", None)
    rnn = getattr(model, "rnn", model)
    if getattr(rnn, "bidirectional", False):
        raise UnsupportedForm("layer 0: bidirectional layers cannot run step by step on a device; "
                              "nearest supported form: a unidirectional layer")
    if type(rnn).__name__.removeprefix("Parametrized") not in ("LSTM", "GRU"):
        from ...importers.layers import EXTRA_LAYERS

        # an importer-only layer has no C form at all: ONNX is what exports it; a layer the
        # float forms refuse too (grouped LSTM) takes their advice, not "--form auto"
        nearest = ("ONNX, export_onnx / --format onnx" if isinstance(rnn, tuple(EXTRA_LAYERS.values()))
                   else _float_nearest(model) or "--form auto (float activations)")
        if nearest == _NOT_RECURRENT.format(cells="an LSTM, GRU or FastGRNN"):  # no recurrent model at all
            nearest = _NOT_RECURRENT.format(cells="an LSTM or GRU")
        raise UnsupportedForm(f"layer 0: the integer-only form has LSTM and GRU cells, not "
                              f"{type(rnn).__name__.removeprefix('Parametrized')}; nearest supported form: {nearest}")
    projected = [(k, p) for k, p in enumerate(getattr(rnn, "proj_sizes", ())) if p]
    if projected:  # as float_model_c refuses it, before calibrating
        k, p = projected[0]
        raise UnsupportedForm(f"layer {k}: LSTM projection (proj_size={p}) is not in the C export; nearest supported "
                              "form: an LSTM without projection")
    if kind == "classifier" and getattr(model, "pooling", "last") != "last":
        raise UnsupportedForm(f"head: pooling={model.pooling!r} is not in the C export (it runs step by step); "
                              "nearest supported form: pooling=last")
    if kind == "forecaster":
        refused = _float_nearest(model)  # --form auto refuses instance normalisation as well
        raise UnsupportedForm("head: forecasters are not in the integer-only C export; nearest supported form: "
                              f"--form auto{f' with {refused}' if refused else ''}")


def integer_form_of(model: Any, calibration: Iterable[Any] | dict[str, Any], input_bits: int = 8) -> IntegerForm:
    """The integer-only form of an lstmlite task model (recurrent stack, head, embedding).

    Args:
        model: a classifier / language model / tagger (a CTC model) / bare LSTM or GRU layer of
            lstmlite; a model's head is part of the form (a tagger's runs at every step).
        calibration: model inputs to calibrate on (tensors), or a dict from
            :func:`lstmlite.compress.quantize.calibrate.calibrate`.
    """
    import torch

    from ...compress.quantize.calibrate import calibrate
    from ...compress.quantize.integer import integer_params_from_model
    from ...reference.integer_head import quantize_embedding_integer, quantize_head_integer

    if type(model) in (torch.nn.LSTM, torch.nn.GRU):  # converted on entry (DESIGN 1), as --form auto reads them
        from ...nn.layers import from_torch

        model = from_torch(model)
    _check_integer(model)
    kind = getattr(model, "kind", None)
    cal = calibration if isinstance(calibration, dict) else calibrate(model, list(calibration))
    params = integer_params_from_model(model, [], input_bits=input_bits, calibration=cal)
    head = emb = None
    if kind in ("classifier", "lm", "tagger"):  # every head (a tagger's per step, as an LM's)
        head = quantize_head_integer(model.head.weight.detach().double().numpy(),
                                     None if model.head.bias is None else model.head.bias.detach().double().numpy())
    if getattr(model, "embedding", None) is not None:
        emb = quantize_embedding_integer(model.embedding.weight.detach().double().numpy(), params.input_scale,
                                         params.input_bits)
    return IntegerForm(params, head, emb)


def _example_input(info: dict[str, Any], example: np.ndarray | None, rng_seed: int = 0) -> np.ndarray:
    """The example program's input (steps, values): given, or 8 steps of seeded noise."""
    if example is not None:
        return np.asarray(example)
    rng = np.random.default_rng(rng_seed)
    if info["vocab_size"]:
        return rng.integers(1, info["vocab_size"], size=8).astype(np.int32)
    if info["family"] == "tflite":
        lo, hi = -(1 << (info["input_bits"] - 1)), (1 << (info["input_bits"] - 1)) - 1
        return rng.integers(lo, hi + 1, size=(8, info["input_size"])).astype(np.int16)
    if info["family"] == "integer":
        qmax = (1 << (info["input_bits"] - 1)) - 1
        return rng.integers(-qmax, qmax + 1, size=(8, info["input_size"])).astype(np.int16)
    return rng.standard_normal((8, info["input_size"])).astype(np.float32)


def _check_example(info: dict[str, Any], example: np.ndarray) -> np.ndarray:
    """The example as the project's input type, or a one-line ``ValueError``: the example
    program steps through it LSTMLITE_MODEL_INPUT_SIZE values at a time, so a row of another
    width would be read past the array's end, and a fraction written as an integer code or
    token id would be truncated without a word (floats are for the float forms)."""
    x = np.asarray(example)
    if info["vocab_size"]:
        lo, hi, shape, what = 0, info["vocab_size"] - 1, "(T,)", "token ids"
    elif info["family"] == "float":
        lo, hi, shape, what = None, None, f"(T, {info['input_size']})", "floats"
    else:  # the integer forms' codes: what lsl_int.c / lsl_tflite.c accept at each width
        bits = info["input_bits"]
        lo, hi, shape, what = -(1 << (bits - 1)), (1 << (bits - 1)) - 1, f"(T, {info['input_size']})", "integers"
    wanted = 1 if info["vocab_size"] else 2
    ok = (x.ndim == wanted and x.shape[0] >= 1 and (wanted == 1 or x.shape[1] == info["input_size"])
          and np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_)
    if ok and lo is None:
        ok = bool(np.isfinite(x).all())
    elif ok:
        ok = bool(np.all(x == np.round(x)) and x.min() >= lo and x.max() <= hi)
    if not ok:
        bounds = "" if lo is None else f" in [{lo}, {hi}]"
        raise ValueError(f"the example must be {shape} {what}{bounds}, one row per step; got {x.dtype} {x.shape}")
    if lo is None:
        return x.astype(np.float32)
    if info["vocab_size"]:
        return x.astype(np.int32)
    return x.astype(np.int8 if info["family"] == "tflite" and info["input_bits"] == 8 else np.int16)


def tflite_params_of(source: Any, kernel: str = "micro") -> Any:
    """The :class:`~lstmlite.reference.tflite_int.TFLiteLSTMParams` of ``source``: the
    params themselves, an importer's ``TFLiteLSTMModel``, or a ``.tflite`` file (path or
    bytes; read by :func:`lstmlite.importers.tflite.read_tflite_lstm` with ``kernel``)."""
    return _tflite_model_of(source, kernel)[0]


def _tflite_model_of(source: Any, kernel: str = "micro") -> tuple[Any, bool | None, tuple[int, ...] | None]:
    """:func:`tflite_params_of` with the op's ``time_major`` option and input shape beside
    the params (None where the source is bare ``TFLiteLSTMParams``, which do not hold them)."""
    import torch

    from ...reference.tflite_int import TFLiteLSTMParams

    if isinstance(source, TFLiteLSTMParams):
        return source, None, None
    if isinstance(getattr(source, "params", None), TFLiteLSTMParams):
        return (source.params, *_layout_of(source))
    if isinstance(source, bytes) or (isinstance(source, (str, Path)) and Path(source).suffix == ".tflite"):
        from ...importers.tflite import read_tflite_lstm

        model = read_tflite_lstm(source, kernel=kernel)
        # The project computes the LSTM layer alone, step by step, on the op's integer codes:
        # a model that does more after (or before) it -- a Dense head, a softmax -- would lose
        # that silently. Quantize / Dequantize at the edges and the last-step slice of
        # return_sequences=False change nothing the project's per-step outputs do not hold.
        others = [name for k, name in enumerate(model.operators)
                  if k != model.op_index and name not in _TFLITE_PASS_THROUGH]
        if others:
            where = "the .tflite model" if isinstance(source, bytes) else str(source)
            raise UnsupportedForm(
                f"{where}: computes {', '.join(others)} besides its LSTM, which form tflite does not export (the "
                "project is the LSTM layer alone); nearest supported form: convert the LSTM layer alone to "
                ".tflite, or pass read_tflite_lstm(...)'s model to export_c to export just that layer")
        return model.params, bool(model.time_major), tuple(model.input_shape)
    nearest = "--form integer (lstmlite's own integer-only arithmetic)"
    try:  # a model the integer form refuses as well takes that refusal's advice
        if isinstance(source, torch.nn.Module):
            _check_integer(source)
    except UnsupportedForm as err:
        advice = err.nearest
        if advice:  # another form (--form auto, ONNX) as it stands; a change to the model, in the integer form
            nearest = advice if advice.startswith(("--form", "ONNX")) else f"--form integer with {advice}"
    raise UnsupportedForm(f"form tflite exports a TFLite-quantized LSTM (a .tflite file, TFLiteLSTMParams or "
                          f"read_tflite_lstm's model), not {type(source).__name__}; nearest supported form: "
                          f"{nearest}")


def _layout_of(model: Any) -> tuple[bool | None, tuple[int, ...] | None]:
    """An importer's ``TFLiteLSTMModel``'s ``time_major`` and input shape (None if absent)."""
    time_major = getattr(model, "time_major", None)
    shape = getattr(model, "input_shape", None)
    return (None if time_major is None else bool(time_major)), (None if shape is None else tuple(shape))


def _check_options(form: str, input_bits: int, tflite_kernel: str) -> None:
    """Refuse a form's option given with another form, which would ignore it (one line)."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    if input_bits != 8 and form != "integer":
        raise ValueError(f"input_bits is for form='integer' (its first layer's input width); form {form!r} takes "
                         "float inputs (or a .tflite file's own width): leave it at 8")
    if tflite_kernel != "micro" and form != "tflite":
        raise ValueError(f"tflite_kernel is for form='tflite' (a .tflite file's LSTM); form {form!r} runs lstmlite's "
                         "own arithmetic: leave it at 'micro'")


def export_c(
    run_or_model: Any,
    out_dir: str | Path,
    form: str = "auto",
    calibration: Iterable[Any] | dict[str, Any] | None = None,
    example: np.ndarray | None = None,
    input_bits: int = 8,
    tflite_kernel: str = "micro",
    standardization: Standardization | None = None,
) -> CProject:
    """Write a self-contained C99 project for a run dir's model (or a model object).

    Args:
        run_or_model: a run dir path, or an lstmlite task model / recurrent layer, or an
            :class:`IntegerForm` (integer parameters made elsewhere; ``form="integer"``,
            no calibration); for ``form="tflite"``: a ``.tflite`` file, a
            ``TFLiteLSTMParams`` or ``read_tflite_lstm``'s model.
        out_dir: the project folder (created; files in it are overwritten).
        form: ``auto`` | ``fp32`` | ``int8`` | ``integer`` | ``tflite`` (see the module doc).
        calibration: for ``integer``: model inputs to take the ranges from (e.g. a few
            training batches), or a calibration dict. Required for that form.
        example: the example program's input: (T, I) floats (float forms), (T, I)
            int16 codes (integer form), (T, I) int8/int16 codes (tflite form, as TFLite's
            input tensor holds them), or (T,) token ids; default 8 seeded random steps.
        input_bits: integer form: width of the first layer's input, 8 or 16.
        tflite_kernel: tflite form read from a file: ``micro`` (TensorFlow Lite Micro's
            arithmetic, the default) or ``lite`` (desktop TFLite / LiteRT's).
        standardization: the input statistics the model was trained with
            (:func:`lstmlite.export.preprocessing.standardization_of`); default: a run dir's
            own. With them the project gets ``preprocess.h`` (raw values → the model's
            inputs; a forecaster's outputs → the series' units) and its README says so.

    Returns a :class:`CProject` with the files and the memory report per Cortex-M target.

    Raises:
        UnsupportedForm: one line naming the layer and the nearest supported form.
    """
    _check_options(form, input_bits, tflite_kernel)
    if form != "tflite":
        from .._tflite_source import tflite_source_name

        where = tflite_source_name(run_or_model)
        if where is not None:  # before a run dir is looked for at a file's path
            raise UnsupportedForm(f"{where}: a TFLite-quantized LSTM exports with TFLite's own integer arithmetic, "
                                  f"not form {form!r}; nearest supported form: form='tflite'")
    if form == "tflite":
        return _export_tflite(*_tflite_model_of(run_or_model, tflite_kernel), Path(out_dir), example)
    out = Path(out_dir)
    info, constants, integer = _generate(run_or_model, form, calibration, input_bits)
    example_arr = _check_example(info, _example_input(info, example))
    memory = _memory(info)
    standardization = _standardization(run_or_model, info, standardization)
    files = write_project(out, info, constants, example_arr, readme_text(info, memory, standardization),
                          None if standardization is None else preprocess_header(info, standardization))
    log.info("wrote a C project to %s (%s, %d bytes of weights)", out, info["form"], info["weight_bytes"])
    return CProject(path=out, form=info["form"], files=files, memory=memory, info=info, integer=integer,
                    example=example_arr, standardization=standardization)


def _standardization(run_or_model: Any, info: dict[str, Any],
                     given: Standardization | None) -> Standardization | None:
    """The input statistics of the project: ``given``, else a run dir's own; None for a
    model object without ``given`` (it carries none) or token input."""
    if info["vocab_size"] > 0 or info["family"] == "tflite":
        return None
    standardization = given if given is not None else (
        standardization_of(run_or_model) if isinstance(run_or_model, (str, Path)) else None)
    if standardization is not None and len(standardization.mean) != info["input_size"]:
        raise ValueError(f"{run_or_model}: config.json's stats hold {len(standardization.mean)} features, the model "
                         f"reads {info['input_size']}; the run dir is inconsistent (re-train or re-compress it)")
    return standardization


def _generate(run_or_model: Any, form: str, calibration: Iterable[Any] | dict[str, Any] | None = None,
              input_bits: int = 8, source: bool = True) -> tuple[dict[str, Any], str, Any]:
    """What the project of ``run_or_model`` in ``form`` (not ``tflite``) holds: its ``info``
    (sizes, buffers: what :func:`memory_report` reads), ``model.c``'s constants and the
    :class:`IntegerForm` of an integer export. :func:`export_c` writes these;
    :func:`memory_of` reports them. ``source=False``: the float forms count the constants'
    bytes without formatting them (the constants returned are then incomplete)."""
    given = run_or_model if isinstance(run_or_model, IntegerForm) else None
    if given is not None and form != "integer":
        raise ValueError(f"an IntegerForm exports as form='integer', not {form!r}")
    model = None if given is not None else _model_of(run_or_model)
    integer = None
    if form == "integer":
        if given is None and calibration is None:
            raise ValueError("the integer form needs calibration inputs (calibration=[batches])")
        integer = given if given is not None else integer_form_of(model, calibration, input_bits)
        gen = integer_model_c(integer.params, integer.head, integer.embedding)
        p = integer.params
        info = dict(family="integer", form="integer", cell=p.cell, num_layers=p.num_layers,
                    hidden_size=gen.hidden_size, vocab_size=gen.vocab_size, input_size=p.input_size,
                    output_size=gen.output_size, state_values=gen.state_values, state_bytes=2 * gen.state_values,
                    work_bytes=gen.work_bytes, weight_bytes=gen.weight_bytes, has_head=integer.head is not None,
                    input_bits=p.input_bits, input_scale=p.input_scale,
                    output_scale=(integer.head.scale * 2.0**-15) if integer.head is not None else 2.0**-15)
        constants = gen.source
    else:
        from ..lsl import spec_from_module

        try:
            spec = spec_from_module(model)
        except ValueError as err:  # a cell the runtime has no kernel for (grouped LSTM)
            message = str(err).replace("the native runtime", "the C export")
            if message.endswith(")") and " (nearest exportable form: " in message:
                message = message[:-1].replace(" (nearest exportable form: ", "; nearest supported form: ")
            if "nearest supported form: " not in message:  # a module that is no recurrent model at all
                message += "; nearest supported form: " + _NOT_RECURRENT.format(cells="an LSTM, GRU or FastGRNN")
            raise UnsupportedForm(f"layer 0: {message}") from None
        gen = float_model_c(spec, form, source=source)
        info = dict(family="float", form=form, cell=spec.layers[0].cell, num_layers=len(spec.layers),
                    hidden_size=spec.layers[-1].hidden_size, vocab_size=gen.vocab_size,
                    input_size=spec.layers[0].input_size, output_size=gen.output_size,
                    state_values=gen.state_floats, state_bytes=4 * gen.state_floats, work_bytes=gen.work_bytes,
                    weight_bytes=gen.weight_bytes, has_head=spec.head_mode != "none", matrices=gen.forms)
        constants = gen.source
    # model.c's own static buffers beside the runtime's scratch: the ready flag, and h
    # (+ the embedded token) for the integer form or a discard output for the float one
    info["wrapper_bytes"] = 4 + (2 * info["hidden_size"] + (2 * info["input_size"] if info["vocab_size"] else 0)
                                 if info["family"] == "integer" else 4 * info["output_size"])
    kind = getattr(model, "kind", "rnn")
    info["description"] = (f"{info['num_layers']}-layer {info['cell'].upper()} {kind}, hidden {info['hidden_size']}, "
                           f"form {info['form']}")
    return info, constants, integer


def _memory(info: dict[str, Any]) -> dict[str, MemoryReport]:
    """The memory report of a generated model on every target (:data:`CPUS`)."""
    return {cpu: memory_report(info, cpu) for cpu in CPUS}


def memory_of(
    run_or_model: Any,
    form: str = "auto",
    calibration: Iterable[Any] | dict[str, Any] | None = None,
    input_bits: int = 8,
    tflite_kernel: str = "micro",
) -> dict[str, MemoryReport]:
    """The memory report :func:`export_c` would return as ``CProject.memory`` (per target:
    flash, RAM = state + scratch + model.c's buffers + stack), computed by the same code
    without writing a file (nor, in the float forms, formatting the weights as C text):
    milliseconds, what the search's RAM objective calls once per trial. Arguments as for
    :func:`export_c`.

    Raises:
        UnsupportedForm: what :func:`export_c` refuses, with the same one-line message.
    """
    _check_options(form, input_bits, tflite_kernel)
    if form == "tflite":
        return _memory(_tflite_generate(_tflite_model_of(run_or_model, tflite_kernel)[0])[0])
    return _memory(_generate(run_or_model, form, calibration, input_bits, source=False)[0])


def _tflite_generate(params: Any, time_major: bool | None = None,
                     input_shape: tuple[int, ...] | None = None) -> tuple[dict[str, Any], str]:
    """The tflite form's ``info`` and ``model.c`` constants (see :mod:`.tflite_form`);
    ``time_major`` / ``input_shape``: the op's, where the source gave them (model.h and the
    README say how one sequence of that input tensor is fed, step by step)."""
    gen = tflite_model_c(params)
    H = gen.hidden_size
    info = dict(family="tflite", form="tflite", cell="lstm", num_layers=1, hidden_size=H, vocab_size=0,
                input_size=gen.input_size, output_size=H, state_values=2 * H, state_bytes=gen.state_bytes,
                work_bytes=gen.work_bytes, weight_bytes=gen.weight_bytes, has_head=False,
                input_bits=gen.activation_bits, kernel=params.kernel,
                input_zero_point=int(params.input_zero_point), output_zero_point=int(params.output_zero_point),
                input_scale=params.input_scale, output_scale=params.output_scale,
                time_major=time_major, tflite_input_shape=input_shape,
                wrapper_bytes=4)  # model.c's ready flag
    info["description"] = (f"TFLite-quantized LSTM {gen.input_size} -> {H}, int{gen.activation_bits} activations, "
                           f"form tflite ({'TensorFlow Lite Micro' if params.kernel == 'micro' else 'desktop TFLite'}"
                           " arithmetic)")
    return info, gen.source


def _export_tflite(params: Any, time_major: bool | None, input_shape: tuple[int, ...] | None, out: Path,
                   example: np.ndarray | None) -> CProject:
    """export_c's tflite form (see :mod:`.tflite_form`)."""
    info, constants = _tflite_generate(params, time_major, input_shape)
    if time_major:
        # The op's time_major only says how a batch of sequences lies in its tensor; the project
        # runs one sequence step by step, so nothing is lost, but the tensor is not what it reads.
        log.info("the .tflite LSTM is time-major (input %s = (T, B, I)): the C project runs one sequence at a "
                 "time, so sequence b's steps are input[:, b, :], one after another (model.h says so)",
                 input_shape)
    example_arr = _check_example(info, _example_input(info, example))  # TFLite's activation range
    memory = _memory(info)
    files = write_project(out, info, constants, example_arr, readme_text(info, memory))
    log.info("wrote a C project to %s (tflite, %d bytes of weights)", out, info["weight_bytes"])
    return CProject(path=out, form="tflite", files=files, memory=memory, info=info, tflite=params,
                    example=example_arr)
