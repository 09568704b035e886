"""LiteRT (TensorFlow Lite) as a peer of ``lstmlite bench``.

The torch module's weights are converted by TensorFlow's TFLite converter into one
``.tflite`` model per form and mode, and run by the ``ai-edge-litert`` interpreter in
the bench process:

* ``litert-fp32``: float weights and activations.
* ``litert-dynamic-int8``: ``optimizations=[tf.lite.Optimize.DEFAULT]`` -- int8 weights,
  activations quantized on the fly (TFLite's "hybrid" kernels).
* ``litert-int8``: full integer, calibrated on random inputs drawn like the bench's
  (standard normal), int8 ops (``TFLITE_BUILTINS_INT8``); the model keeps float input
  and output. Where the converter cannot make every op int8 it falls back to letting
  float ops through, and the case's ``note`` says so.

How the layers are written:

* **LSTM** becomes TFLite's fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (one op per layer,
  batch-major). Keras 3's LSTM converts to a ``WHILE`` loop, so each layer is instead a
  ``tf.function`` carrying the attributes that the converter's Keras-LSTM fusion
  matches (``api_implements="lstm_<uuid>"``, ``time_major``, ``go_backwards``; the
  contract tf.keras 2's LSTM used): arguments ``(x, init_h, init_c, kernel,
  recurrent_kernel, bias)`` with kernel = ``weight_ih.T`` (gate order i, f, c, o is
  PyTorch's i, f, g, o) and bias = ``bias_ih + bias_hh``.
* **GRU** has no fused TFLite op: a Keras 3 ``GRU(reset_after=True, unroll=True)`` per
  layer, i.e. FULLY_CONNECTED and element-wise ops repeated for each of the T steps
  (without ``unroll`` it becomes a ``WHILE`` loop, whose full-integer calibration
  crashed the TF 2.21 converter). Keras' gate order is z, r, h and PyTorch's r, z, n,
  so the gate blocks are swapped; bias is (2, 3H) = (bias_ih, bias_hh).

Step mode (one call on (B, 1, I), the state carried between calls):

* LSTM: the fused op keeps its hidden and cell state in TFLite *variable tensors*,
  updated in place by every invoke (the converter returns no final cell state, so
  explicit state outputs are not possible with the fused op). A step is one invoke of
  the T = 1 model; :meth:`Interpreter.reset_all_variables` starts a new sequence, and the
  sequence-mode runner calls it before every call (its cost is part of the call).
* GRU: explicit state -- inputs ``x`` and ``h0 … h{L-1}``, outputs the step's output and
  every layer's new state, fed back on the next call.

Threads: the interpreter gets ``num_threads=threads``; at 1 (the bench's default) it
starts no worker threads, so it cannot take cores from the engines timed next. Above 1
its pools (ruy, XNNPACK's pthreadpool) may spin briefly after a call, and the Python
API offers no switch to stop that.

Measured on TF 2.21 / ai-edge-litert 2.3 (x86): full-integer LSTM runs TFLite's
integer (8x8_16) LSTM kernel, far slower than the float one here; with two or more
stacked LSTM layers the full-integer model's second layer saturated (relative error
about 2, reported as is; tf_keras 2.21's own stacked ``LSTM`` layers converted the same
way do the same, so it is the converter's, not this module's), while one layer stays
within about 1.5 %.

The conversion imports TensorFlow with ``KERAS_BACKEND=tensorflow``, which the importer
side of lstmlite (``KERAS_BACKEND=torch``) cannot share a process with, so it runs as a
child process (this file run as a script) writing into a temporary directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

# engine -> form passed to the converter
LITERT_FORMS = {"litert-fp32": "fp32", "litert-dynamic-int8": "dynamic-int8", "litert-int8": "int8"}
PIP_HINT = "pip install 'lstmlite[litert]'"
CALIBRATION_SAMPLES = 16
#: what LiteRT's C++ prints on stderr when it applies its default delegate (allocate_tensors)
DELEGATE_INFO = "INFO: Created TensorFlow Lite XNNPACK delegate"


def missing() -> str | None:
    """None when the litert engines can run, else a one-line reason naming the packages."""
    absent = [pip for mod, pip in (("tensorflow", "tensorflow-cpu"), ("ai_edge_litert", "ai-edge-litert"))
              if importlib.util.find_spec(mod) is None]
    if not absent:
        return None
    return f"the litert-* engines need {' and '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} " \
           f"not installed: {PIP_HINT}"


def versions() -> dict[str, str | None]:
    """Installed versions of TensorFlow and ai-edge-litert (without importing them)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for key, dists in (("tensorflow", ("tensorflow-cpu", "tensorflow")), ("ai_edge_litert", ("ai-edge-litert",))):
        out[key] = None
        for dist in dists:
            try:
                out[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


# ----- the bench side: convert in a child, run here -------------------------------------

_CACHE: dict[tuple, dict[str, Any]] = {}


def _key(module, cell: str, batch: int, seq_len: int) -> tuple:
    digest = hash(b"".join(p.detach().numpy().tobytes() for p in module.parameters()))
    return (cell, module.input_size, module.hidden_size, module.num_layers, batch, seq_len, digest)


def convert(module, cell: str, batch: int, seq_len: int, forms: Sequence[str]) -> dict[str, Any]:
    """Convert a batch-first torch nn.LSTM/nn.GRU into ``.tflite`` models, every form of
    ``forms`` (``fp32``, ``dynamic-int8``, ``int8``) in both modes, in one child process.

    Returns ``{"<form>.<mode>": {"model": bytes, "ops": [op names], "note": str}}``;
    results are cached per weights and shape, so asking again converts only new forms.

    Raises:
        RuntimeError: TensorFlow / ai-edge-litert missing, or the conversion failed.
    """
    reason = missing()
    if reason:
        raise RuntimeError(reason)
    cache = _CACHE.setdefault(_key(module, cell, batch, seq_len), {})
    todo = [f for f in forms if f"{f}.sequence" not in cache]
    if not todo:
        return cache
    params = {k: v.detach().numpy().astype(np.float32) for k, v in module.named_parameters()}
    spec = {"cell": cell, "input_size": module.input_size, "hidden_size": module.hidden_size,
            "num_layers": module.num_layers, "batch": batch, "seq_len": seq_len, "forms": todo}
    with tempfile.TemporaryDirectory(prefix="lstmlite-litert-") as tmp:
        np.savez(Path(tmp) / "weights.npz", **params)
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3",
                   CUDA_VISIBLE_DEVICES="", TF_ENABLE_ONEDNN_OPTS="0")
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "convert", tmp], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            errors = [line for line in lines if "Error" in line] or lines[-3:] or [f"exit status {proc.returncode}"]
            raise RuntimeError(f"TFLite conversion of {cell} {todo} failed: {errors[-1].strip()[:300]}")
        meta = json.loads((Path(tmp) / "result.json").read_text())
        for name, info in meta.items():
            cache[name] = {"model": (Path(tmp) / f"{name}.tflite").read_bytes(), **info}
    return cache


def runner(engine: str, module, cell: str, batch: int, seq_len: int, threads: int = 1,
           forms: Sequence[str] | None = None):
    """``(run_sequence, step, reset, note)`` for one litert engine; ``forms`` are the
    litert forms of the whole bench run, converted together on first use."""
    from ai_edge_litert.interpreter import Interpreter

    form = LITERT_FORMS[engine]
    models = convert(module, cell, batch, seq_len, sorted(set(forms or ()) | {form}))
    seq_info, step_info = models[f"{form}.sequence"], models[f"{form}.step"]
    seq = Interpreter(model_content=seq_info["model"], num_threads=threads)
    stp = Interpreter(model_content=step_info["model"], num_threads=threads)
    with _without_native_lines(DELEGATE_INFO):  # the default XNNPACK delegate is applied here, and says so
        seq.allocate_tensors()
        stp.allocate_tensors()
    layers, hidden = module.num_layers, module.hidden_size
    note = seq_info["note"]

    if cell == "lstm":  # the fused op's state lives in variable tensors (see the module doc)
        x_in, y_out = seq.get_input_details()[0]["index"], seq.get_output_details()[0]["index"]
        sx_in, sy_out = stp.get_input_details()[0]["index"], stp.get_output_details()[0]["index"]

        def run(x: np.ndarray) -> np.ndarray:
            seq.reset_all_variables()
            seq.set_tensor(x_in, x)
            seq.invoke()
            return seq.get_tensor(y_out)

        def step(x_t: np.ndarray) -> np.ndarray:
            stp.set_tensor(sx_in, x_t[:, None])
            stp.invoke()
            return stp.get_tensor(sy_out)[:, 0]

        return run, step, stp.reset_all_variables, note

    sig_in = seq.get_signature_runner().get_input_details()
    sig_out = seq.get_signature_runner().get_output_details()
    x_in, y_out = sig_in["x"]["index"], sig_out["output_0"]["index"]
    step_in = stp.get_signature_runner().get_input_details()
    step_out = stp.get_signature_runner().get_output_details()
    sx_in, sy_out = step_in["x"]["index"], step_out["output_0"]["index"]
    h_in = [step_in[f"h{k}"]["index"] for k in range(layers)]
    h_out = [step_out[f"output_{k + 1}"]["index"] for k in range(layers)]
    zeros = np.zeros((batch, hidden), np.float32)
    holder: dict[str, list[np.ndarray]] = {"h": [zeros] * layers}

    def run(x: np.ndarray) -> np.ndarray:
        seq.set_tensor(x_in, x)
        seq.invoke()
        return seq.get_tensor(y_out)

    def step(x_t: np.ndarray) -> np.ndarray:
        stp.set_tensor(sx_in, x_t[:, None])
        for idx, h in zip(h_in, holder["h"]):
            stp.set_tensor(idx, h)
        stp.invoke()
        holder["h"] = [stp.get_tensor(idx) for idx in h_out]
        return stp.get_tensor(sy_out)[:, 0]

    def reset() -> None:
        holder["h"] = [zeros] * layers

    return run, step, reset, note


# ----- the child: build TF models and convert (imports TensorFlow) -----------------------

@contextlib.contextmanager
def _without_native_lines(*prefixes: str) -> Iterator[None]:
    """Run the body with file descriptor 2 (where C++ code writes, below Python's
    ``sys.stderr``) sent to a temporary file; afterwards write back to stderr every line
    that does not start with one of ``prefixes``: a warning or an error still shows, the
    interpreter's INFO line beside ``bench``'s table does not.

    Example:
        >>> with _without_native_lines("INFO: "):
        ...     _ = os.write(2, b"INFO: noise\\n")
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not line.startswith(prefixes))
            if kept:
                os.write(2, kept.encode())


def _lstm_layer_fn(tf):
    """One LSTM layer as the function the converter fuses into UNIDIRECTIONAL_SEQUENCE_LSTM."""
    import uuid

    def standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        # inputs (B, T, I) batch-major; the body is what TF runs, the converter replaces it.
        h, c, outs = init_h, init_c, []
        for x in tf.unstack(inputs, axis=1):
            z = tf.matmul(x, kernel) + tf.matmul(h, recurrent_kernel) + bias  # (B, 4H) i f c o
            i, f, g, o = tf.split(z, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            outs.append(h)
        outputs = tf.stack(outs, axis=1)
        return outputs[:, -1], outputs, h, c, tf.constant(1.0)  # last, sequence, h, c, "runtime"

    return tf.function(standard_lstm, autograph=False, experimental_attributes={
        "api_implements": f"lstm_{uuid.uuid4()}", "api_preferred_device": "CPU",
        "time_major": False, "go_backwards": False})


def _lstm_concrete(tf, weights: dict, spec: dict, steps: int):
    b, h, layers = spec["batch"], spec["hidden_size"], spec["num_layers"]
    fns = [_lstm_layer_fn(tf) for _ in range(layers)]
    consts = []
    for k in range(layers):
        consts.append((tf.constant(weights[f"weight_ih_l{k}"].T.copy()),  # (I, 4H), gates i f c o
                       tf.constant(weights[f"weight_hh_l{k}"].T.copy()),  # (H, 4H)
                       tf.constant(weights[f"bias_ih_l{k}"] + weights[f"bias_hh_l{k}"])))  # (4H,)

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((b, steps, spec["input_size"]), tf.float32, name="x")])
        def forward(self, x):
            zeros = tf.zeros((b, h), tf.float32)
            for fn, (kernel, recurrent, bias) in zip(fns, consts):
                x = fn(x, zeros, zeros, kernel, recurrent, bias)[1]
            return x

    model = Model()
    return model, model.forward.get_concrete_function()


def _gru_keras(weights: dict, spec: dict, steps: int, stateful_io: bool):
    import keras

    b, h, layers = spec["batch"], spec["hidden_size"], spec["num_layers"]
    x = keras.Input(batch_shape=(b, steps, spec["input_size"]), name="x")
    states = [keras.Input(batch_shape=(b, h), name=f"h{k}") for k in range(layers)] if stateful_io else []
    y, outs, grus = x, [], []
    order = [1, 0, 2]  # Keras z r h from PyTorch r z n

    def reorder(t):
        return np.concatenate([t[g * h:(g + 1) * h] for g in order], axis=0)

    for k in range(layers):
        gru = keras.layers.GRU(h, return_sequences=True, return_state=stateful_io, reset_after=True, unroll=True)
        if stateful_io:
            y, h_new = gru(y, initial_state=states[k])
            outs.append(h_new)
        else:
            y = gru(y)
        grus.append(gru)
    model = keras.Model([x, *states] if stateful_io else x, [y, *outs] if stateful_io else y)
    for k, gru in enumerate(grus):
        gru.set_weights([reorder(weights[f"weight_ih_l{k}"]).T.copy(), reorder(weights[f"weight_hh_l{k}"]).T.copy(),
                         np.stack([reorder(weights[f"bias_ih_l{k}"]), reorder(weights[f"bias_hh_l{k}"])])])
    return model


def _convert_one(tf, weights: dict, spec: dict, form: str, mode: str) -> tuple[bytes, str]:
    steps = spec["seq_len"] if mode == "sequence" else 1
    if spec["cell"] == "lstm":
        module, concrete = _lstm_concrete(tf, weights, spec, steps)
        make = lambda: tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)  # noqa: E731
        shapes = {"x": (spec["batch"], steps, spec["input_size"])}
    else:
        model = _gru_keras(weights, spec, steps, stateful_io=(mode == "step"))
        make = lambda: tf.lite.TFLiteConverter.from_keras_model(model)  # noqa: E731
        shapes = {i.name: tuple(i.shape) for i in model.inputs}
    note = ""
    converter = make()
    if form in ("dynamic-int8", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if form == "int8":
        rng = np.random.default_rng(1)

        def representative():
            # Inputs drawn like the bench's (GRU states near their usual range). The step
            # model is calibrated on as many steps as the sequences hold, so the state
            # that the LSTM carries in its variables between invokes reaches its usual range.
            for _ in range(CALIBRATION_SAMPLES * (spec["seq_len"] if mode == "step" else 1)):
                yield {name: rng.standard_normal(shape).astype(np.float32) * (1.0 if name == "x" else 0.5)
                       for name, shape in shapes.items()}

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        try:
            return converter.convert(), note
        except Exception as exc:  # noqa: BLE001 -- the converter raises its own error types
            # its first line, by hand: this runs in the script child, outside the package (no one_line)
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            note = f"some ops left in float (int8-only conversion failed: {first[:120]})"
            converter = make()
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                   tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert(), note


def _ops_and_int8_tensors(model: bytes) -> tuple[list[str], int]:
    """The model's op names, and how many of its tensors hold int8 values (its quantized
    weights, for a dynamic-range model), from one interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    ops = sorted({d["op_name"] for d in interpreter._get_ops_details()})
    return ops, sum(d["dtype"] == np.int8 for d in interpreter.get_tensor_details())


def _child(workdir: str) -> None:
    import tensorflow as tf

    work = Path(workdir)
    spec = json.loads((work / "spec.json").read_text())
    weights = dict(np.load(work / "weights.npz"))
    result = {}
    for form in spec["forms"]:
        for mode in ("sequence", "step"):
            model, note = _convert_one(tf, weights, spec, form, mode)
            ops, int8_tensors = _ops_and_int8_tensors(model)
            if spec["cell"] == "lstm":
                fused = "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops
                text = "fused UNIDIRECTIONAL_SEQUENCE_LSTM" if fused else "LSTM NOT fused"
                text += "; state in the op's variable tensors" if mode == "step" else ""
            else:
                text = "no fused GRU op in TFLite: Keras GRU(unroll=True), one op group per step"
                text += "; explicit state inputs/outputs" if mode == "step" else ""
            text += f" [{form}; ops: {', '.join(ops)}]" + (f"; {note}" if note else "")
            if form == "dynamic-int8" and not int8_tensors:
                # the converter leaves small weight tensors float (under 1,024 values), and
                # then the row times a float model under an int8 name: say so
                text += "; NO weight quantized (the converter kept every weight tensor float): this row runs float"
            if spec["cell"] == "lstm" and form == "int8" and spec["num_layers"] > 1:
                text += ("; stacked full-integer LSTM layers after the first saturated with TF 2.21's converter "
                         "(tf_keras' LSTM too): error reported as is")
            name = f"{form}.{mode}"
            (work / f"{name}.tflite").write_bytes(model)
            result[name] = {"ops": ops, "note": text, "fused": "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops}
    (work / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "convert":
        sys.exit("usage: bench_litert.py convert WORKDIR")
    _child(sys.argv[2])
