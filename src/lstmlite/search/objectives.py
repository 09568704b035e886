"""What a trial is judged on: deployable bytes, latency, RAM, and the budget.

* ``deployable_bytes``: the exported ``.lsl`` file's bytes; where the model cannot be
  exported yet, ``size_bytes(model)`` marked ``"estimated"`` (never mixed silently).
* ``latency_us``: median of :meth:`Engine.step` at B=1 over a few hundred steps (a
  pooled classifier, which cannot stream: a 64-step sequence's median time / 64); where
  the runtime cannot load the model, a MAC-count model marked ``"mac-model"``.
* ``ram_bytes``: the RAM of the microcontroller project ``lstmlite export --format c``
  writes for the model (``export_c(model, form="auto")``: the weights as the trial has
  them) on a Cortex-M4 (:data:`RAM_TARGET`): the static recurrent state + the runtime's
  scratch + ``model.c``'s own buffers + the stack of one step -- the generator's
  ``memory[RAM_TARGET].ram``, computed by :func:`lstmlite.export.c.memory_of` without
  writing the project (``ram_kind: "mcu-export"``). Weights are not counted (they live
  in flash). Where the C export refuses the model (bidirectional, LSTM projection,
  pooling over time, grouped LSTM, ...), an estimate marked ``"estimated"``
  (:func:`estimated_ram_bytes`: float32 state + the widest layer's scratch + the head's
  outputs + the float runtime's stack of one step, as an exportable model is charged;
  still on the low side) -- never mixed silently.

Example:
    >>> parse_budget("size=8KB,latency=200us,ram=16KB")
    {'size': 8192, 'latency': 200.0, 'ram': 16384}
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._text import one_line

__all__ = ["parse_budget", "deployable_bytes", "latency_us", "ram_bytes", "estimated_ram_bytes", "BudgetError",
           "BUDGET_KEYS", "RAM_TARGET"]

log = logging.getLogger(__name__)

_UNITS = {"": 1, "b": 1, "kb": 1024, "kib": 1024, "mb": 1024 ** 2, "mib": 1024 ** 2}
_TIME = {"us": 1.0, "ms": 1000.0, "s": 1e6}
#: Nanoseconds per multiply-accumulate assumed by the MAC-count latency model.
NS_PER_MAC = 1.0


#: The core whose RAM the ``ram_bytes`` objective is (a key of ``lstmlite.export.c.CPUS``).
RAM_TARGET = "cortex-m4"

#: Budget item (``parse_budget``'s keys) -> the trial record's field it limits.
BUDGET_KEYS = {"size": "size_bytes", "latency": "latency_us", "ram": "ram_bytes"}


class BudgetError(ValueError):
    """A budget string that cannot be read."""


def parse_budget(text: str | dict[str, Any] | None) -> dict[str, float]:
    """``size=8KB,latency=200us,ram=16KB`` -> ``{"size": bytes, "latency": µs, "ram": bytes}``.

    A latency bounds one step; it may say so (``latency=200us/step``, as the messages print it).

    Example:
        >>> parse_budget("size=2KB,latency=200 us/step")
        {'size': 2048, 'latency': 200.0}
    """
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        return {k: float(v) if k == "latency" else int(v) for k, v in text.items()}
    budget: dict[str, float] = {}
    number = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if key in budget:  # "size=8KB,size=4KB": which one was meant is not ours to guess
            raise BudgetError(f"budget {key} given twice; give each of size=, latency= and ram= once")
        if key in ("size", "ram"):
            m = re.fullmatch(number + r"\s*([a-z]*)", value)
            if not m or m.group(2) not in _UNITS:
                raise BudgetError(f"budget {key}={value!r}: use a byte count like 8KB, 2048 or 1.5MB")
            budget[key] = int(float(m.group(1)) * _UNITS[m.group(2)])
        elif key == "latency":
            m = re.fullmatch(number + r"\s*(us|ms|s)?(?:\s*/\s*step)?", value)  # "/step": as errors print it
            if not m:
                raise BudgetError(f"budget latency={value!r}: use a time like 200us or 1.5ms")
            budget[key] = float(m.group(1)) * _TIME[m.group(2) or "us"]
        else:
            raise BudgetError(f"unknown budget {key!r}; use size=, latency= and ram=")
        if budget[key] <= 0:  # no model is smaller or faster than nothing: every trial would be over
            raise BudgetError(f"budget {key}={value!r}: must be more than 0")
    return budget


def deployable_bytes(model: Any, lsl_path: str | Path) -> tuple[int, str]:
    """Write ``model`` as a .lsl file at ``lsl_path`` and return (file bytes, "lsl").

    The bytes are those ``lstmlite export --format lsl`` writes (the one size
    accountant, :func:`lstmlite.export.size.lsl_image`: same writer, same default
    weight form). When the model cannot be exported (a grouped LSTM today), returns
    (``size_bytes(model)``, "estimated") and writes nothing.
    """
    from ..compress import size_bytes
    from ..export.size import lsl_image
    from ..runtime import Engine

    if getattr(model, "kind", None) == "seq2seq":
        # a seq2seq model deploys as three files (lstmlite.export.seq2seq): its bytes are
        # theirs together; the file kept at lsl_path is decoder.lsl, the step that runs
        # once per output token, which latency_us times
        from ..export.seq2seq import DECODER_FILE, bundle_images

        images = bundle_images(model)
        Path(lsl_path).write_bytes(images[DECODER_FILE])
        return sum(len(b) for b in images.values()), "lsl"
    try:
        data = lsl_image(model)
        Engine(data)  # a file the runtime refuses is not deployable
    except ValueError as err:  # the writer's and loader's one-line "cannot export" errors
        log.info("cannot export to .lsl (%s); using the size estimate", one_line(err, limit=None))
        return int(size_bytes(model)), "estimated"
    Path(lsl_path).write_bytes(data)
    return len(data), "lsl"


def latency_us(lsl_path: str | Path | None, model: Any, steps: int = 300) -> tuple[float, str]:
    """Median µs of one :meth:`Engine.step` at B=1, or a MAC-count estimate.

    Returns (µs, "measured") or (µs, "mac-model") when no .lsl file could be run. For a
    seq2seq model the file is its decoder's (see :func:`deployable_bytes`): the
    recurrent step per output token, without the attention computed around it.
    """
    if lsl_path is not None and Path(lsl_path).exists():
        from ..runtime import Engine

        engine = Engine(Path(lsl_path).read_bytes())
        # a token model steps on one token id per stream; a feature model on one frame
        x = np.zeros(1, np.int64) if engine.vocab_size else np.zeros(engine.input_size, np.float32)
        try:
            engine.step(x)
        except ValueError:
            # a pooled classifier (max / mean over time) cannot stream: time a sequence
            return _sequence_latency_us(engine, x), "measured"
        for _ in range(20):  # warm caches and the branch predictor
            engine.step(x)
        times = np.empty(steps)
        for i in range(steps):
            start = time.perf_counter_ns()
            engine.step(x)
            times[i] = time.perf_counter_ns() - start
        return float(np.median(times)) / 1000.0, "measured"
    return float(model.macs_per_step()) * NS_PER_MAC / 1000.0, "mac-model"


def _sequence_latency_us(engine: Any, x: np.ndarray, length: int = 64, reps: int = 30) -> float:
    """Median µs per step of ``engine.run`` on one sequence of ``length`` steps."""
    seq = np.repeat(x[None, None], length, axis=1) if x.dtype == np.float32 else np.zeros((1, length), np.int64)
    engine.run(seq)  # warm
    times = np.empty(reps)
    for i in range(reps):
        start = time.perf_counter_ns()
        engine.run(seq)
        times[i] = time.perf_counter_ns() - start
    return float(np.median(times)) / 1000.0 / length


def ram_bytes(model: Any) -> tuple[int, str]:
    """RAM of ``model``'s microcontroller project, and how it was found.

    Returns (bytes, "mcu-export"): ``export_c(model, form="auto").memory[RAM_TARGET].ram``
    (state + scratch + model.c's buffers + stack on a Cortex-M4; see the module doc),
    from the generator's own figures without writing the project. When the C export
    refuses the model (its one-line :class:`~lstmlite.export.c.UnsupportedForm`), returns
    (:func:`estimated_ram_bytes`, "estimated").
    """
    from ..export.c import UnsupportedForm, memory_of

    try:
        return int(memory_of(model, form="auto")[RAM_TARGET].ram), "mcu-export"
    except UnsupportedForm as err:  # only what export_c refuses; any other error is a fault, raised
        log.info("no C export (%s); using the RAM estimate", one_line(err, limit=None))
        return estimated_ram_bytes(model), "estimated"


def estimated_ram_bytes(model: Any) -> int:
    """Bytes of float32 state + scratch for B=1 streaming, for a model the C export
    refuses: the recurrent state (h, and c for LSTM, per layer and direction) plus the
    scratch of the widest layer (its gate pre-activations, G·H floats, its input and
    output vectors) and the head's output, plus the float runtime's stack of one step on
    :data:`RAM_TARGET` (``STACK_BYTES``). Why the stack: an exportable model is charged
    it, and without it an unexportable one would look about 1.4 KB leaner than an
    exportable one of the same size, on the Pareto front, in pruning and in the budget.
    Still an estimate, on the low side: the C runtime also keeps a second gate buffer and
    aligns its buffers (for models both can measure, this is 70-84 % of the export's
    figure: a GRU 3->4 1,468 against 1,780 B, an LSTM 40->128 5,152 against 7,364 B)."""
    from ..export.c.memory import STACK_BYTES
    from ..nn import GRU, LSTM

    state, scratch = 0, 0
    for module in model.modules():
        hidden = getattr(module, "hidden_size", None)
        if hidden is None or not hasattr(module, "num_layers"):
            continue
        dirs = 2 if getattr(module, "bidirectional", False) else 1
        gates = 4 if isinstance(module, LSTM) or "LSTM" in type(module).__name__ else (3 if isinstance(module, GRU) else 2)
        # an LSTM with a projection (LSTMP) keeps h and outputs P wide, its cell state H wide
        width = int(getattr(module, "proj_size", 0) or 0) or hidden
        state += module.num_layers * dirs * (hidden + width if gates == 4 else width)
        scratch = max(scratch, gates * hidden + getattr(module, "input_size", 0) + dirs * width)
    head = getattr(model, "head", None)
    n_out = getattr(head, "out_features", 0) if head is not None else 0
    return 4 * (state + scratch + n_out) + STACK_BYTES[("float", RAM_TARGET)]
