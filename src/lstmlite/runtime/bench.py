"""Latency of LSTM / GRU inference: lstmlite's runtime against PyTorch, ONNX Runtime and LiteRT.

Every engine runs the same weights (a torch ``nn.LSTM``/``nn.GRU``, random or taken
from a run dir) on the same input, single-threaded unless asked, and reports the
median and 90th percentile of ``reps`` timed repetitions after a warm-up:

* ``sequence`` mode: one call over a whole (B, T, I) batch; time per call.
* ``step`` mode: T calls of one step each with the state carried; time per step
  (each repetition times all T steps and divides by T, so timer overhead is amortised).

Engines take turns repetition by repetition (not one engine's repetitions after the
other's), so a busy spell on a shared machine slows all engines alike.

Each case also reports its arithmetic rate as a fraction of this core's peak MAC
rate, measured by :func:`peak_macs` (fp32 FMA, or int8 VNNI for engines whose
matrix products are int8 x int8), and its largest relative deviation from
torch-fp32, so a fast wrong engine cannot hide. MACs are always the dense model's, so
a sparse engine's rate is the dense work it stands in for.

Engines: ``lstmlite-fp32``, ``lstmlite-int8`` (int8 weights, float activations),
``lstmlite-int8-dyn`` (int8 weights and dynamically quantized 8-bit activations),
``lstmlite-int7-dyn`` (the same with 7-bit weight codes, as ONNX Runtime's
``reduce_range`` on x86 CPUs without VNNI has them: no sign step in the AVX2 kernels,
twice the rounding step), ``lstmlite-int7r-dyn16`` (7-bit codes for the recurrent
matrices only, and the input projections on 16-bit activations: weights
``int7r``, activations ``dynamic16``), ``lstmlite-int7r-dyn16-h7`` (the same with the
state h at 7 bits for the 7-bit recurrent matrices: activations ``dynamic16-h7``, whose
products the AVX2 tables sum in int16 pairs, faster at B >= 4),
``lstmlite-int8-sparse`` / ``lstmlite-int8-sparse-dyn`` (the same with the weight
matrices in the (1, 4)-block sparse form, which pays off once ``sparsity`` zeroes
most blocks; a matrix too dense to gain stays dense int8 in the file, and one stored
sparse runs dense where the kernel table runs it faster so: the case's ``note`` says
which form each matrix ran in), ``torch-fp32``, ``torch-dynamic-int8`` (``torch.ao.quantization.quantize_dynamic``),
``onnxruntime-fp32`` (the ONNX LSTM/GRU operator), ``onnxruntime-int8``
(``onnxruntime.quantization.quantize_dynamic``), and LiteRT (the ``ai-edge-litert``
interpreter on a model converted by TensorFlow's TFLite converter, see
:mod:`lstmlite.runtime.bench_litert`): ``litert-fp32``, ``litert-dynamic-int8``
(dynamic-range int8) and ``litert-int8`` (full integer, float I/O). A LiteRT case
carries a ``note`` (fused op or not, how step mode keeps the state). Engines whose
package is not installed are left out of the default list with a logged line, and are
an error when asked for by name.

Example:
    >>> result = bench(input_size=8, hidden_size=16, seq_len=10, engines=["lstmlite-fp32", "torch-fp32"],
    ...                reps=3, warmup=1)
    >>> sorted(c["engine"] for c in result["cases"])
    ['lstmlite-fp32', 'torch-fp32']
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["ENGINES", "MODES", "bench", "default_engines", "engine_missing", "engine_unfit", "estimate_memory_bytes", "available_memory_bytes", "prune_blocks", "factor_weights", "peak_macs", "machine_info", "format_table", "module_from_run", "stored_form_of_run"]

log = logging.getLogger(__name__)

ENGINES = ("lstmlite-fp32", "lstmlite-int8", "lstmlite-int8-dyn", "lstmlite-int7-dyn", "lstmlite-int7r-dyn16",
           "lstmlite-int7r-dyn16-h7", "lstmlite-int8-sparse",
           "lstmlite-int8-sparse-dyn", "torch-fp32", "torch-dynamic-int8", "onnxruntime-fp32", "onnxruntime-int8",
           "litert-fp32", "litert-dynamic-int8", "litert-int8")
MODES = ("sequence", "step")
# Which peak an engine's matrix products should be compared with.
PEAK_KIND = {"lstmlite-int8-dyn": "int8", "lstmlite-int7-dyn": "int8", "lstmlite-int7r-dyn16": "int8",
             "lstmlite-int7r-dyn16-h7": "int8", "lstmlite-int8-sparse-dyn": "int8",
             "torch-dynamic-int8": "int8", "onnxruntime-int8": "int8", "litert-dynamic-int8": "int8", "litert-int8": "int8"}

_PEAKS: dict[str, float] = {}


def peak_macs(kind: str = "fp32") -> float:
    """Measured peak multiply-accumulates per second of one core (``fp32`` FMA with the
    widest vectors; ``int8``: AVX-512 VNNI, else AVX-VNNI, else AVX2's ``vpmaddubsw``;
    0 when the CPU has none of them). Cached."""
    if kind not in _PEAKS:
        from . import _lsl

        _PEAKS[kind] = float(_lsl.peak_macs(0 if kind == "fp32" else 1, 7))
    return _PEAKS[kind]


def machine_info() -> dict[str, Any]:
    """CPU, ISA, measured peaks and library versions, for the JSON's ``machine``."""
    from . import info as runtime_info

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "lstmlite_isa": runtime_info()["isa"], "lstmlite_best_isa": runtime_info()["best_isa"],
        "avx512_vnni": runtime_info()["avx512_vnni"],
        "peak_fp32_gmacs": round(peak_macs("fp32") / 1e9, 1),
        "peak_int8_gmacs": round(peak_macs("int8") / 1e9, 1),
        "onnxruntime_int8_reduce_range": ort_reduce_range(),
    }
    from .bench_litert import versions as litert_versions

    info.update(litert_versions())
    for name in ("torch", "onnxruntime"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    return info


# ----- the model every engine runs ------------------------------------------------------

def make_module(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, seed: int = 0):
    """A batch-first torch LSTM/GRU with PyTorch's default initialisation."""
    import torch

    torch.manual_seed(seed)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    return cls(input_size, hidden_size, num_layers=num_layers, batch_first=True).eval()


def prune_blocks(module, sparsity: float, block: tuple[int, int] = (1, 4)) -> None:
    """Zero the ``sparsity`` fraction of weight blocks with the smallest magnitude in
    every weight matrix of ``module``, in place -- ``lstmlite.compress``'s block magnitude
    pruning. ``block=(1, 4)`` (four consecutive inputs of one output row) is the pattern
    the ``int8-sparse`` form skips; ``(8, 4)`` (the same four inputs of 8 consecutive
    rows) is one too, which the AVX2 kernels run with one broadcast per 8 rows.
    """
    import torch

    from ..compress.prune.transform import block_mask

    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if sparsity == 0.0:
        return
    with torch.no_grad():
        for _, weight in module.named_parameters():
            if weight.ndim == 2:
                weight.mul_(block_mask(weight, sparsity, tuple(block)).to(weight.dtype))


def factor_weights(module, rank: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Replace every weight matrix W of a one-direction torch LSTM/GRU by its best rank-r
    approximation U V, in place; returns ``{name: (U, V)}`` as float32 arrays.

    Raises:
        ValueError: ``rank`` < 1, or a bidirectional module.
    """
    import torch

    from ..compress.lowrank.transform import factorize

    if rank < 1:
        raise ValueError(f"rank must be at least 1, got {rank}")
    if getattr(module, "bidirectional", False):
        raise ValueError("factor_weights takes one-direction modules")
    factors = {}
    with torch.no_grad():
        for name, weight in module.named_parameters():
            if weight.ndim == 2:
                u, v = factorize(weight, min(rank, *weight.shape))
                weight.copy_(u @ v)
                factors[name] = (u.numpy().astype(np.float32), v.numpy().astype(np.float32))
    return factors


#: lstmlite engines that run a run's stored recurrent form (its int8 codes, low-rank factors)
#: when bench times a run dir; the others (fp32, the 7-bit forms) and the peers run its
#: effective weights as dense float matrices, each in its own form.
STORED_FORM_WEIGHTS = ("int8", "int8-sparse")


def stored_form_of_run(run_dir: str | Path | Any) -> Any:
    """The recurrent layers of a run dir (or of a :class:`~lstmlite.io.Run` already loaded)
    as its exported file stores them (a :class:`~lstmlite.runtime.lsl.ModelSpec` without
    head), when that differs from dense float matrices -- int8 codes or low-rank factors --
    else None. Bench's int8 engines run it, so that they time (and their error measures)
    the run's deployed form rather than its product rounded to int8 afresh."""
    from ..export.lsl import spec_from_module

    spec = spec_from_module(_recurrent_layers_of_run(run_dir)[0])
    return spec if _stored_kinds(spec) else None


def _recurrent_layers_of_run(run_dir: str | Path | Any) -> tuple[Any, bool]:
    """The recurrent layers bench times of a run dir's model (``run_dir`` a path, or a
    :class:`~lstmlite.io.Run` already loaded), and whether it is a seq2seq run: then its
    decoder (what runs per output token; its encoder is bidirectional, which bench does not
    compare), else the model's ``rnn``."""
    from ..io import Run, load_run

    model = (run_dir if isinstance(run_dir, Run) else load_run(run_dir)).model
    seq2seq = getattr(model, "kind", None) == "seq2seq"
    return (model.decoder if seq2seq else model.rnn), seq2seq


def _stored_kinds(spec: Any) -> str:
    """What a spec's recurrent matrices store besides dense floats: 'int8 codes', 'low-rank
    factors', both joined, or ''."""
    from .lsl import LowRankTensor, QTensor

    tensors = [t for layer in spec.layers for d in layer.directions for k, t in d.items() if k.startswith("w_")]
    kinds = []
    if any(isinstance(t, QTensor) or isinstance(t, LowRankTensor) and isinstance(t.u, QTensor) for t in tensors):
        kinds.append("int8 codes")
    if any(isinstance(t, LowRankTensor) for t in tensors):
        kinds.append("low-rank factors")
    return " in ".join(kinds[::-1]) if len(kinds) == 2 else "".join(kinds)


def module_from_run(run_dir: str | Path | Any):
    """The recurrent layers of a run dir's model (or of a :class:`~lstmlite.io.Run` already
    loaded) as a torch nn.LSTM/nn.GRU (effective weights, compression applied), plus its
    cell name.

    Raises:
        ValueError: the run's layers differ in size (pruned unevenly), are
            bidirectional or projected, or are not LSTM/GRU.
    """
    import torch

    from ..export.lsl import _cell_name, _recurrent_state

    rnn, seq2seq = _recurrent_layers_of_run(run_dir)
    if seq2seq:
        log.info("%s is a seq2seq run: benchmarking its decoder's recurrent layers", getattr(run_dir, "path", run_dir))
    cell = _cell_name(rnn)
    if cell not in ("lstm", "gru"):  # the peers (torch, ONNX Runtime) are nn.LSTM / nn.GRU
        raise ValueError(f"bench from a run dir compares LSTM and GRU layers with their peers, not {cell}; "
                         "the native runtime runs it: lstmlite.runtime.load(RUN)")
    sizes = getattr(rnn, "hidden_sizes", [rnn.hidden_size])
    if len(set(sizes)) != 1 or getattr(rnn, "bidirectional", False) or any(getattr(rnn, "proj_sizes", [0])):
        raise ValueError("bench from a run dir needs equal hidden sizes, one direction and no projection")
    module = make_module(cell, rnn.input_size, sizes[0], rnn.num_layers)
    with torch.no_grad():
        state = {k: v.detach().float() for k, v in _recurrent_state(rnn).items()}
        module.load_state_dict(state)
    return module, cell


def _macs_per_step(cell: str, input_size: int, hidden_size: int, num_layers: int) -> int:
    gates = 4 if cell == "lstm" else 3
    total, i = 0, input_size
    for _ in range(num_layers):
        total += gates * hidden_size * (i + hidden_size)
        i = hidden_size
    return total


# ----- engines: each returns (run_sequence(x) -> out, step(x_t) -> out, reset()) --------

Runner = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray], Callable[[], None]]


def _lstmlite(module, batch: int, weights: str, activations: str, factors: dict | None = None,
              threads: int = 1, notes: dict | None = None, name: str = "", seq_len: int = 1,
              stored: Any = None) -> Runner:
    from .engine import MIN_MACS_PER_THREAD, Engine
    from ..export.lsl import spec_from_module
    from .lsl import LowRankTensor

    said = []
    if stored is not None and weights in STORED_FORM_WEIGHTS:  # a run's own codes / factors, as its file holds them
        spec = copy.deepcopy(stored)
        said.append(f"runs the run's stored {_stored_kinds(stored)}, as its .lsl file does")
    else:
        spec = spec_from_module(module)
    for name, (u, v) in (factors or {}).items():  # "weight_hh_l0" -> layer 0, "w_hh"
        kind, layer = name.rsplit("_l", 1)
        spec.layers[int(layer)].directions[0][kind.replace("weight", "w")] = LowRankTensor(u, v)
    engine = Engine(spec, weights=weights, activations=activations, threads=threads)
    layer = engine.info["layers"][0]
    if layer["weights"] == "int8-sparse":  # which form each matrix runs in
        said.append(f"runs W_ih {layer['runs_ih']}, W_hh {layer['runs_hh']} (the faster form here)")
    used = engine.threads_for(batch, seq_len)
    if used < threads:  # too little work per thread (Engine.threads_for)
        said.append(f"runs on {used} of {threads} threads: under {MIN_MACS_PER_THREAD / 1e6:g} M multiply-adds "
                    "a thread")
    if notes is not None and said:
        notes[name] = "; ".join(said)
    state = engine.new_state(batch)
    return (engine.run, lambda x_t: engine.step(x_t, state), state.reset)


def _torch(module, batch: int, quantized: bool) -> Runner:
    import torch

    if quantized:
        import warnings

        with warnings.catch_warnings():  # torch.ao.quantization is deprecated but still the API
            warnings.simplefilter("ignore")
            # quantize_dynamic swaps children only: wrap the layer so it is a child.
            module = torch.ao.quantization.quantize_dynamic(
                torch.nn.Sequential(module), {torch.nn.LSTM, torch.nn.GRU}, dtype=torch.qint8)[0]
        if isinstance(module, (torch.nn.LSTM, torch.nn.GRU)):
            raise RuntimeError("torch quantize_dynamic did not quantize the layer")
    holder: dict[str, Any] = {"state": None}

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x))[0].numpy()

    def step(x_t: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out, holder["state"] = module(torch.from_numpy(x_t)[:, None], holder["state"])
            return out.numpy()

    def reset() -> None:
        holder["state"] = None

    return run, step, reset


def _onnx_weights(module, layer: int, cell: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch gate order (LSTM i f g o, GRU r z n) → ONNX (LSTM i o f c, GRU z r h)."""
    p = {k: v.detach().numpy() for k, v in module.named_parameters()}
    h = module.hidden_size
    order = [0, 3, 1, 2] if cell == "lstm" else [1, 0, 2]

    def reorder(t: np.ndarray) -> np.ndarray:
        return np.concatenate([t[g * h:(g + 1) * h] for g in order], axis=0)

    w = reorder(p[f"weight_ih_l{layer}"])[None]
    r = reorder(p[f"weight_hh_l{layer}"])[None]
    b = np.concatenate([reorder(p[f"bias_ih_l{layer}"]), reorder(p[f"bias_hh_l{layer}"])])[None]
    return w.astype(np.float32), r.astype(np.float32), b.astype(np.float32)


def onnx_model(module, cell: str):
    """The torch module as an ONNX graph of LSTM/GRU operators (seq-first layout).

    Inputs: X (T, B, I), and per layer initial_h{k} (and initial_c{k}) (1, B, H).
    Outputs: Y (T, B, H) of the top layer, and per layer Y_h{k} (and Y_c{k}).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, layers = module.hidden_size, module.num_layers
    op = "LSTM" if cell == "lstm" else "GRU"
    nodes, inits, inputs, outputs = [], [], [], []
    inputs.append(helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", module.input_size]))
    x = "X"
    for k in range(layers):
        w, r, b = _onnx_weights(module, k, cell)
        inits += [numpy_helper.from_array(w, f"W{k}"), numpy_helper.from_array(r, f"R{k}"),
                  numpy_helper.from_array(b, f"B{k}")]
        state_in = [f"initial_h{k}"] + ([f"initial_c{k}"] if cell == "lstm" else [])
        state_out = [f"Y_h{k}"] + ([f"Y_c{k}"] if cell == "lstm" else [])
        for name in state_in:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, "B", h]))
        for name in state_out:
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, "B", h]))
        attrs = {"hidden_size": h}
        if cell == "gru":
            attrs["linear_before_reset"] = 1  # PyTorch's GRU
        node_inputs = [x, f"W{k}", f"R{k}", f"B{k}", "", f"initial_h{k}"] + ([f"initial_c{k}"] if cell == "lstm" else [])
        nodes.append(helper.make_node(op, node_inputs, [f"Y4_{k}", *state_out], **attrs))
        nodes.append(helper.make_node("Squeeze", [f"Y4_{k}", "axis1"], [f"Y{k}"]))
        x = f"Y{k}"
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    nodes.append(helper.make_node("Identity", [x], ["Y"]))
    outputs.insert(0, helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", "B", h]))
    graph = helper.make_graph(nodes, f"lstmlite_bench_{op}", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def estimate_memory_bytes(input_size: int, hidden_size: int, seq_len: int, batch: int, num_layers: int,
                          cell: str = "lstm", engines: Sequence[str] = ENGINES) -> int:
    """About how many bytes a :func:`bench` call holds at once: every engine keeps its
    own copy of the fp32 weights (the peers and the packed runtime alike, plus the
    torch oracle and the file the runtime loads from), and each run holds the inputs,
    the gate pre-activations and the outputs of the whole batch.

    Example:
        >>> estimate_memory_bytes(40, 128, 100, 1, 1) < 10 * 2**20
        True
    """
    gates = 4 if cell == "lstm" else 3
    weights = 0
    size_in = input_size
    for _ in range(num_layers):
        weights += 4 * gates * hidden_size * (size_in + hidden_size + 2)
        size_in = hidden_size
    activations = 4 * batch * seq_len * (input_size + (gates + 2) * hidden_size) * 2
    return int(weights * (len(engines) + 2) + activations * max(len(engines), 1))


def available_memory_bytes() -> int | None:
    """Memory the OS says a new allocation can get (Linux ``MemAvailable``), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def ort_reduce_range() -> bool:
    """Whether ONNX Runtime's int8 quantizer should use 7-bit weights on this CPU.

    On x86 without VNNI, ONNX Runtime multiplies u8 activations by s8 weights with
    ``vpmaddubsw``, whose int16 pair sums saturate: with full 8-bit weights the
    quantized LSTM's relative error reached 0.25-0.44 on an AVX2-only EPYC. ONNX
    Runtime's own advice for such CPUs is ``reduce_range=True`` (7-bit weights), which
    keeps the pair sums in range; VNNI (AVX-512 or AVX-VNNI) and ARM have no such limit
    and keep 8 bits. So the peer runs at its best on the CPU at hand.
    """
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False
    from . import supported_isas

    return not any(name.endswith("vnni") for name in supported_isas())


#: how ONNX Runtime's quantizer starts its advice to pre-process the graph first
ORT_PREPROCESS_ADVICE = "Please consider to run pre-processing before quantization"


class _DropOrtPreprocessAdvice(logging.Filter):
    """Drops ONNX Runtime's advice to pre-process, which it logs on the root logger.

    Why: the bench's graph is one LSTM node, and onnxruntime.quantization's
    quant_pre_process changes nothing that matters for it (measured on Zen 4 at
    I=40/H=128 and I=128/H=256: the same DynamicQuantizeLSTM node, outputs equal to the
    bit, the same median time); the advice only told bench users to do something that
    would not change the numbers. Anything else on the root logger passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(ORT_PREPROCESS_ADVICE)


def _onnxruntime(module, cell: str, batch: int, quantized: bool, threads: int) -> Runner:
    import onnx

    from ..export.onnx import _onnxruntime_session

    model = onnx_model(module, cell)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, path)
        if quantized:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            qpath = Path(tmp) / "model.int8.onnx"
            advice = _DropOrtPreprocessAdvice()
            logging.getLogger().addFilter(advice)
            try:
                quantize_dynamic(str(path), str(qpath), weight_type=QuantType.QInt8,
                                 reduce_range=ort_reduce_range())
            finally:
                logging.getLogger().removeFilter(advice)
            ops = {n.op_type for n in onnx.load(qpath).graph.node}
            if not any(o.startswith("DynamicQuantize") for o in ops):
                log.warning("onnxruntime quantize_dynamic left the %s graph in float (%s)", cell, sorted(ops))
            path = qpath
        # without spinning: idle workers would take the cores the engines timed next need
        session = _onnxruntime_session(path, threads)
    h, layers = module.hidden_size, module.num_layers
    names = [f"initial_h{k}" for k in range(layers)] + ([f"initial_c{k}" for k in range(layers)] if cell == "lstm" else [])
    out_names = ["Y"] + [f"Y_h{k}" for k in range(layers)] + ([f"Y_c{k}" for k in range(layers)] if cell == "lstm" else [])
    zeros = {n: np.zeros((1, batch, h), np.float32) for n in names}
    holder: dict[str, Any] = {"state": dict(zeros)}

    def run(x: np.ndarray) -> np.ndarray:
        # ONNX wants (T, B, I); the transpose is part of the call, as a user would do it.
        y = session.run(["Y"], {"X": np.ascontiguousarray(x.transpose(1, 0, 2)), **zeros})[0]
        return y.transpose(1, 0, 2)

    def step(x_t: np.ndarray) -> np.ndarray:
        res = session.run(out_names, {"X": x_t[None], **holder["state"]})
        holder["state"] = {n.replace("Y_h", "initial_h").replace("Y_c", "initial_c"): v
                           for n, v in zip(out_names[1:], res[1:])}
        return res[0][0]

    def reset() -> None:
        holder["state"] = dict(zeros)

    return run, step, reset


# lstmlite engine -> (weight form, activations)
LSTMLITE_FORMS = {
    "lstmlite-fp32": ("fp32", "float"), "lstmlite-int8": ("int8", "float"), "lstmlite-int8-dyn": ("int8", "dynamic"),
    "lstmlite-int7-dyn": ("int7", "dynamic"), "lstmlite-int7r-dyn16": ("int7r", "dynamic16"),
    "lstmlite-int7r-dyn16-h7": ("int7r", "dynamic16-h7"),
    "lstmlite-int8-sparse": ("int8-sparse", "float"), "lstmlite-int8-sparse-dyn": ("int8-sparse", "dynamic"),
}


def engine_missing(engine: str) -> str | None:
    """None when ``engine`` can run here, else a one-line reason naming the pip package."""
    from . import bench_litert

    if engine in bench_litert.LITERT_FORMS:
        return bench_litert.missing()
    if engine.startswith("onnxruntime-"):
        absent = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if absent:
            return f"{engine} needs {' and '.join(absent)}: pip install 'lstmlite[onnx]'"
    return None


def engine_unfit(engine: str, rank: int = 0) -> str | None:
    """None when ``engine`` can time the case, else why not: the 7-bit states of
    ``lstmlite-int7r-dyn16-h7`` need the recurrent matrices in full form, so it cannot run
    ``rank``-R factors."""
    if rank and LSTMLITE_FORMS.get(engine, ("", ""))[1] == "dynamic16-h7":
        return ("cannot run --rank: its 7-bit states need the recurrent matrices in full form; time "
                "lstmlite-int7r-dyn16 instead")
    return None


def default_engines(engines: Sequence[str] = ENGINES, rank: int = 0) -> tuple[list[str], list[str]]:
    """The engines of ``engines`` that can run here (and time a ``rank``-R case), and one
    line per group left out."""
    kept, skipped = [], {}
    for engine in engines:
        reason = engine_missing(engine) or engine_unfit(engine, rank)
        if reason:
            skipped.setdefault(reason, []).append(engine)
        else:
            kept.append(engine)
    return kept, [f"skipping {', '.join(names)}: {reason}" for reason, names in skipped.items()]


def _runner(engine: str, module, cell: str, batch: int, threads: int, factors: dict | None = None,
            seq_len: int = 1, litert_forms: Sequence[str] = (), notes: dict | None = None,
            stored: Any = None) -> Runner:
    if engine in LSTMLITE_FORMS:
        return _lstmlite(module, batch, *LSTMLITE_FORMS[engine], factors, threads, notes, engine, seq_len, stored)
    if engine == "torch-fp32":
        return _torch(module, batch, quantized=False)
    if engine == "torch-dynamic-int8":
        return _torch(module, batch, quantized=True)
    if engine == "onnxruntime-fp32":
        return _onnxruntime(module, cell, batch, False, threads)
    if engine == "onnxruntime-int8":
        return _onnxruntime(module, cell, batch, True, threads)
    from . import bench_litert

    if engine in bench_litert.LITERT_FORMS:
        run, step, reset, note = bench_litert.runner(engine, module, cell, batch, seq_len, threads, litert_forms)
        if notes is not None:
            notes[engine] = note
        return run, step, reset
    raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")


# ----- timing ----------------------------------------------------------------------------

def _times_interleaved(calls: dict[Any, Callable[[], Any]], reps: int, warmup: int) -> dict[Any, np.ndarray]:
    """Microseconds of each call, the engines taking turns repetition by repetition, so
    that a slow spell of a shared machine hits every engine alike and the ratios
    between engines stay meaningful."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    out = {name: np.empty(reps) for name in calls}
    for i in range(reps):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            out[name][i] = (time.perf_counter() - start) * 1e6
    return out


def _rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(got.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


def bench(
    input_size: int = 40,
    hidden_size: int = 128,
    seq_len: int = 100,
    batch: int = 1,
    engines: Sequence[str] | None = None,
    modes: Sequence[str] = ("sequence",),
    threads: int = 1,
    reps: int = 30,
    warmup: int = 5,
    cell: str = "lstm",
    num_layers: int = 1,
    module: Any = None,
    seed: int = 0,
    sparsity: float = 0.0,
    rank: int = 0,
    sparse_block: tuple[int, int] = (1, 4),
    one_thread_beside: bool = False,
    stored: Any = None,
) -> dict[str, Any]:
    """Time every engine in every mode on one model size.

    Args:
        input_size, hidden_size, num_layers, cell: the model (ignored when ``module``,
            a batch-first torch nn.LSTM/nn.GRU, is given).
        seq_len, batch: T and B of the input.
        engines, modes: what to time (see the module docstring); ``engines=None``
            means every engine whose packages are installed (the rest are logged).
        threads: intra-op threads of torch and ONNX Runtime (without spinning, so idle
            workers do not slow the engine timed next); lstmlite splits the batch over
            as many in whole-sequence runs (streaming steps use one thread each).
        reps, warmup: timed and untimed repetitions; medians need reps >= 30 to be
            quoted in BENCHMARKS.md.
        sparsity: fraction of weight blocks zeroed (:func:`prune_blocks`) before
            any engine sees the weights, so every engine runs the same pruned model and
            only the ``*-sparse`` engines skip the zeros.
        sparse_block: the pruned blocks' (rows, columns): (1, 4) or (8, 4).
        one_thread_beside: with ``threads`` > 1, also time every lstmlite engine on one
            thread in sequence mode, in a loop of their own where each engine's
            ``threads``-thread twin takes turns with it (cases with ``threads`` 1, and
            ``twin_threads`` and ``twin_median_us``, the twin's median in that loop): the
            ratio of the two then comes from one loop of our engines, not from two runs a
            shared machine may run at different speeds, nor with a peer's thread pool
            between them.
        rank: when > 0, every weight matrix is replaced by its best rank-``rank``
            approximation U V (truncated SVD, :func:`lstmlite.compress.lowrank.factorize`);
            the lstmlite engines run the two factors, the peers the product (the same
            weights either way).
        stored: ``module``'s layers as a run stores them (:func:`stored_form_of_run`):
            the lstmlite-int8 engines (int8, int8-dyn, int8-sparse*) run it -- the run's
            own codes and factors, its deployed form -- and the others ``module``.
            Ignored with ``sparsity`` or ``rank`` (they change the weights first).

    Returns:
        ``{"machine": {...}, "cases": [...]}``: one case per engine and mode with
        ``engine, input_size, hidden_size, seq_len, batch, mode, median_us, p90_us``
        (DESIGN.md) plus ``cell, num_layers, threads, reps, macs, gmacs_per_s,
        peak_kind, peak_fraction, max_rel_err`` (and ``note`` for LiteRT cases). In
        step mode the times are per step.

    Raises:
        RuntimeError: an engine asked for by name whose package is not installed.
        ValueError: an engine asked for by name that cannot time the case
            (:func:`engine_unfit`).
    """
    import torch

    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if engines is None:
        engines, skipped = default_engines(rank=rank)
        for line in skipped:
            log.warning("%s", line)
    for engine in engines:
        if engine in ENGINES and engine_missing(engine):
            raise RuntimeError(engine_missing(engine))
        unfit = engine_unfit(engine, rank)
        if unfit:
            raise ValueError(f"{engine} {unfit}")
    if module is None:
        module = make_module(cell, input_size, hidden_size, num_layers, seed)
    else:
        cell = "lstm" if isinstance(module, torch.nn.LSTM) else "gru"
        input_size, hidden_size, num_layers = module.input_size, module.hidden_size, module.num_layers
    if sparsity:
        module = copy.deepcopy(module)
        prune_blocks(module, sparsity, sparse_block)
    factors = None
    if rank:
        module = copy.deepcopy(module)
        factors = factor_weights(module, rank)
    if sparsity or rank:
        stored = None
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, seq_len, input_size)).astype(np.float32)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            reference = module(torch.from_numpy(x))[0].numpy().astype(np.float64)
        macs_step = _macs_per_step(cell, input_size, hidden_size, num_layers) * batch
        from .bench_litert import LITERT_FORMS

        litert_forms = [LITERT_FORMS[e] for e in engines if e in LITERT_FORMS]
        notes: dict[str, str] = {}
        runners = {engine: _runner(engine, module, cell, batch, threads, factors, seq_len, litert_forms, notes,
                                   stored) for engine in engines}
        # one_thread_beside: our engines again on one thread (lstmlite takes its thread count
        # per call, not globally), timed in a loop of their own beside their N-thread twins,
        # with no peer in between whose thread pool could still be busy
        alone = {engine: _runner(engine, module, cell, batch, 1, factors, seq_len, litert_forms, notes, stored)
                 for engine in engines if one_thread_beside and threads > 1 and engine in LSTMLITE_FORMS}
        steps = [np.ascontiguousarray(x[:, t]) for t in range(seq_len)]
        macs_of = {"sequence": macs_step * seq_len, "step": macs_step}

        def timed(group: dict[Any, Runner], mode: str,
                  checked: Callable[[Any], bool] = lambda key: True) -> tuple[dict[Any, np.ndarray], dict[Any, float]]:
            """Each runner's times (per step in step mode), interleaved, and the error of
            those ``checked`` says to check."""
            calls: dict[Any, Callable[[], Any]] = {}
            errors: dict[Any, float] = {}
            for key, (run, step, reset) in group.items():
                if mode == "sequence":
                    calls[key] = (lambda run=run: run(x))
                    if checked(key):
                        errors[key] = _rel_err(run(x), reference)
                else:
                    def whole(step=step, reset=reset) -> list[np.ndarray]:
                        reset()
                        return [step(s) for s in steps]

                    calls[key] = whole
                    if checked(key):
                        got = np.stack([np.asarray(o).reshape(batch, -1) for o in whole()], axis=1)
                        errors[key] = _rel_err(got, reference)
            times = _times_interleaved(calls, reps, warmup)
            return {k: t / (seq_len if mode == "step" else 1) for k, t in times.items()}, errors

        def case(engine: str, mode: str, t_us: np.ndarray, error: float, engine_threads: int) -> dict[str, Any]:
            median = float(np.median(t_us))
            kind = PEAK_KIND.get(engine, "fp32")
            peak = peak_macs(kind) or peak_macs("fp32")
            rate = macs_of[mode] / (median * 1e-6)
            log.info("%s %s (%d thread(s)): median %.1f us", engine, mode, engine_threads, median)
            return {
                "engine": engine, "input_size": input_size, "hidden_size": hidden_size, "seq_len": seq_len,
                "batch": batch, "mode": mode, "median_us": round(median, 3),
                "p90_us": round(float(np.percentile(t_us, 90)), 3),
                "cell": cell, "num_layers": num_layers, "threads": engine_threads,
                "reps": reps, "macs": int(macs_of[mode]), "gmacs_per_s": round(rate / 1e9, 3),
                "peak_kind": kind, "peak_fraction": round(rate / peak, 5) if peak else None,
                "max_rel_err": float(f"{error:.3g}"), "sparsity": sparsity, "rank": rank,
                **({"sparse_block": list(sparse_block)} if sparsity else {}),
                **({"note": notes[engine]} if engine in notes else {}),
            }

        cases = []
        for mode in modes:
            times, errors = timed(runners, mode)
            cases += [case(engine, mode, times[engine], errors[engine], threads) for engine in engines]
            if alone and mode == "sequence":  # a step runs on one thread anyway
                pairs = {(e, n): r for e in alone for n, r in ((threads, runners[e]), (1, alone[e]))}
                # the N-thread twins' errors are their rows' above: only their times are new
                times, errors = timed(pairs, mode, checked=lambda key: key[1] == 1)
                for engine in alone:
                    cases.append({**case(engine, mode, times[(engine, 1)], errors[(engine, 1)], 1),
                                  "twin_threads": threads,
                                  "twin_median_us": round(float(np.median(times[(engine, threads)])), 3)})
    finally:
        torch.set_num_threads(old_threads)
    return {"machine": machine_info(), "cases": cases}


def format_table(cases: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of cases, with each engine's time relative to torch-fp32.

    The median and p90 are in the row's ``unit``: ``us/step`` for a step-mode case (its
    time divided by T), ``us/sequence`` for a sequence-mode one (one call of T steps), as
    the report's latency table and plot name them (:func:`lstmlite.report.metrics.latency_unit`).
    """
    def shape(c: dict[str, Any]) -> tuple:  # a one_thread_beside row has no torch-fp32 on its threads: "-"
        return c["input_size"], c["hidden_size"], c["seq_len"], c["batch"], c["mode"], c.get("threads", 1)

    base = {shape(c): c["median_us"] for c in cases if c["engine"] == "torch-fp32"}
    header = ["engine", "I", "H", "T", "B", "mode", "median", "p90", "unit", "x torch-fp32", "% peak", "rel err"]
    mixed = len({c.get("threads", 1) for c in cases}) > 1  # one_thread_beside: say which is which
    rows = []
    for c in cases:
        ref = base.get(shape(c))
        unit = "us/step" if c["mode"] == "step" else "us/sequence"
        name = f"{c['engine']} ({c['threads']} thread{'s' if c['threads'] > 1 else ''})" if mixed else c["engine"]
        rows.append([name, c["input_size"], c["hidden_size"], c["seq_len"], c["batch"], c["mode"],
                     f"{c['median_us']:.1f}", f"{c['p90_us']:.1f}", unit,
                     f"{c['median_us'] / ref:.3f}" if ref else "-",
                     f"{100 * c['peak_fraction']:.1f}" if c.get("peak_fraction") is not None else "-",
                     f"{c['max_rel_err']:.1e}"])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).rjust(w) for v, w in zip(r, widths)) for r in [header, *rows]]
    return "\n".join(lines)


def bar_chart(cases: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Horizontal bars of median time per engine (PNG), one panel per size, mode, weight
    compression (sparsity, block shape, rank), thread count, cell and layer count, each
    named in its title where it is not the default. An engine timed more than once in one
    panel (identical cases, e.g. a result list given twice) gets one bar per time, labelled
    ``engine #1``, ``engine #2``, … in the order given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = _bar_chart_figure(plt, cases)
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _distinct_names(names: Sequence[str]) -> list[str]:
    """Bar labels for one panel: an engine named more than once (the same case timed twice,
    e.g. a result list concatenated with itself) becomes ``engine #1``, ``engine #2``, … in
    the order given, so each time gets its own bar (a categorical axis draws equal names at
    one place, one bar hidden behind the other); an engine named once keeps its name."""
    counts = {n: names.count(n) for n in names}
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if counts[n] == 1:
            out.append(n)
            continue
        seen[n] = seen.get(n, 0) + 1
        out.append(f"{n} #{seen[n]}")
    repeated = sorted(n for n, k in counts.items() if k > 1)
    if repeated:
        log.info("bar chart: %s timed more than once in one panel; labelled #1, #2, ...", ", ".join(repeated))
    return out


def _bar_chart_figure(plt: Any, cases: Sequence[dict[str, Any]]) -> Any:
    """The figure of :func:`bar_chart` (``plt``: pyplot, imported by the caller), apart so
    tests can read its panels and bars. Each panel's axis names its unit as the tables do
    (``µs per step``, ``µs per sequence (T=100)``: :func:`lstmlite.report.metrics.latency_unit`)."""
    from ..report.metrics import latency_unit  # here, not at the top: lstmlite.report imports matplotlib

    groups: dict[tuple, list[dict[str, Any]]] = {}
    for c in cases:  # one panel per size, mode, weight compression, threads and model: the
        # bars are placed by engine name, so two cases of one engine in a panel would overlap
        block = "x".join(str(v) for v in c.get("sparse_block") or ())
        key = (c["input_size"], c["hidden_size"], c["seq_len"], c["batch"], c["mode"], c.get("sparsity", 0.0),
               c.get("rank", 0), block, c.get("threads", 1), str(c.get("cell", "lstm")), c.get("num_layers", 1))
        groups.setdefault(key, []).append(c)
    fig, axes = plt.subplots(len(groups), 1, figsize=(7, 1.2 + 0.45 * len(cases)), squeeze=False)
    for ax, (key, group) in zip(axes[:, 0], groups.items()):
        names = _distinct_names([c["engine"] for c in group])
        values = [c["median_us"] for c in group]
        ax.barh(names, values, color=["tab:green" if n.startswith("lstmlite") else "tab:gray" for n in names])
        ax.set_xscale("log")
        sparsity, rank, block, threads, cell, layers = key[5:]
        extra = ((f", {100 * sparsity:.0f} %{' ' + block if block else ''} blocks pruned" if sparsity else "")
                 + (f", rank {rank}" if rank else "") + (f", {threads} threads" if threads != 1 else "")
                 + (f", {cell.upper()}" if cell != "lstm" else "") + (f", {layers} layers" if layers != 1 else ""))
        ax.set_title(f"I={key[0]} H={key[1]} T={key[2]} B={key[3]} {key[4]}{extra}", fontsize=9)
        # a panel is one mode and one T, so its first case gives the unit of every bar
        ax.set_xlabel(f"median {latency_unit(group[0])}, log scale (lower is better)", fontsize=8)
        ax.invert_yaxis()
    fig.tight_layout()
    return fig
