"""``recommend``: from task, data size and budget, a starting space and budget in plain words.

The rules are simple and stated: a model's .lsl bytes are about its parameter count ×
bytes per weight (+ ~1 KB header/head), so the budget bounds the hidden size per cell
and bit width; small data sets favour small models and fewer epochs' worth of capacity.

Example:
    >>> rec = recommend("classify", n_train=270, input_size=12, budget="size=2KB")
    >>> rec["space"]["params"]["weight_bits"]["choices"]
    [8]
"""

from __future__ import annotations

from typing import Any

from .objectives import parse_budget

__all__ = ["recommend"]

_GATES = {"lstm": 4, "gru": 3}


def _max_hidden(size: int | None, input_size: int, cell: str, bits: int) -> int:
    if size is None:
        return 128
    usable = max(size - 1024, 256) * 8 // bits  # weights that fit after ~1 KB of header and head
    g = _GATES[cell]
    hidden = 4
    while g * (hidden + 4) * (input_size + hidden + 4) <= usable:
        hidden += 4
    return hidden


def recommend(task: str, n_train: int, input_size: int, budget: str | dict[str, Any] | None = None,
              text: bool = False) -> dict[str, Any]:
    """A proposal: ``{"space": {...}, "budget": {...}, "trials": n, "explanation": [lines]}``."""
    limits = parse_budget(budget)
    size = int(limits["size"]) if "size" in limits else None
    why: list[str] = []
    bits = [8] if size is not None and size <= 8192 else [32, 8]
    if bits == [8]:
        why.append(f"The size budget ({size} bytes) is tight, so every weight is stored as int8 (4x smaller "
                   "than float32, usually within a point of accuracy).")
    else:
        why.append("The size budget leaves room, so both float32 and int8 weights are tried.")
    top = min(_max_hidden(size, input_size, "gru", bits[-1]), 256 if n_train > 20000 else 64)
    why.append(f"With {n_train} training examples and {input_size} input features, hidden sizes up to "
               f"{top} fit the budget; a larger model would need more data than you have.")
    cells = ["gru", "lstm"] + (["fastgrnn"] if size is not None and size <= 4096 else [])
    why.append(f"Cells tried: {', '.join(cells)} (GRU has 3/4 of an LSTM's weights; FastGRNN is far smaller "
               "for very tight budgets).")
    sparsity = [0.0, 0.5] if top >= 16 else [0.0]
    if len(sparsity) > 1:
        why.append("Pruning half the weights is tried too: larger but sparse models often beat small dense ones.")
    epochs = 30 if n_train < 2000 else 10
    trials = 40 if size is not None else 20
    why.append(f"Each trial trains {epochs} epochs (stopped early when hopeless); {trials} trials are a good start.")
    params: dict[str, Any] = {
        "cell": {"choices": cells}, "hidden_size": {"low": 4, "high": max(top, 8), "step": 4},
        "weight_bits": {"choices": bits}, "sparsity": {"choices": sparsity},
        "lr": {"low": 0.003, "high": 0.03, "log": True},
    }
    if text:
        params["embed_dim"] = {"choices": [8, 16, 32]}
        why.append("The text embedding is usually most of a text model's bytes, so small embeddings are searched.")
    if "latency" in limits:
        why.append(f"Latency ({limits['latency']:.0f} us per step) is measured in the native runtime on this "
                   "machine; measure on the target device for a firm answer.")
    return {"space": {"params": params, "fixed": {"epochs": epochs}}, "budget": limits, "trials": trials,
            "explanation": why}
