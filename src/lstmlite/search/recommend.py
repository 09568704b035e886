"""``recommend``: from task, data size and budget, a starting space and budget in plain words.

The rules are simple and stated: the size budget bounds the hidden size. Given the data,
the bound is exact: the largest hidden size (a multiple of 4) whose GRU, with the
space's smallest weight width and embedding, exports a ``.lsl`` file within the budget,
measured as the search measures a trial before training
(:func:`~lstmlite.search.trial.profile_model`). Without the data, it is estimated from
the parameter count × bytes per weight (+ ~1 KB of header and head), which can be a few
per cent off either way. Small data sets favour small models and fewer epochs' worth of
capacity.

Example:
    >>> rec = recommend("classify", n_train=270, input_size=12, budget="size=2KB")
    >>> rec["space"]["params"]["weight_bits"]["choices"]
    [8]
"""

from __future__ import annotations

from typing import Any, Callable

from .objectives import parse_budget

__all__ = ["recommend"]

_GATES = {"lstm": 4, "gru": 3}


def _microseconds(value: float, grouped: bool = True) -> str:
    """A time in µs as a budget line gives it: up to 3 decimals, trailing zeros dropped,
    and one under a thousandth of a µs to its first significant digits (never "0");
    thousands grouped unless ``grouped`` is False (a ``--budget`` value, whose commas
    separate the items).

    Example:
        >>> _microseconds(200.0), _microseconds(0.1), _microseconds(1e6), _microseconds(0.00025)
        ('200', '0.1', '1,000,000', '0.00025')
        >>> _microseconds(3000.0, grouped=False)
        '3000'
    """
    decimals = 3 if not 0 < abs(value) < 0.001 else 12
    text = f"{value:,.{decimals}f}" if grouped else f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".")


def _max_hidden(size: int | None, input_size: int, cell: str, bits: int) -> int:
    """The estimate from the parameter count (no data at hand)."""
    if size is None:
        return 128
    usable = max(size - 1024, 256) * 8 // bits  # weights that fit after ~1 KB of header and head
    g = _GATES[cell]
    hidden = 4
    while g * (hidden + 4) * (input_size + hidden + 4) <= usable:
        hidden += 4
    return hidden


def _exported_profile(data: Any, cell: str, hidden: int, bits: int, embed_dim: int | None,
                      vocab: int | None = None) -> dict[str, Any]:
    """``{"size": .lsl bytes, "ram": RAM bytes, "ram_kind": ...}`` of an untrained ``cell`` model of
    ``hidden`` units for ``data`` (text: its embedding ``embed_dim`` wide, with ``vocab``
    rows when the vocabulary is cut to that many, as ``max_vocab`` does), compressed to
    ``bits``-bit weights: what the search's budget check sees for that point."""
    import torch

    from ..nn.models import build_model
    from ..train.run import _fill_data_sizes, default_model_config
    from .trial import profile_model

    config = {**default_model_config(data), "cell": cell, "hidden_size": hidden}
    if embed_dim is not None:
        config["embed_dim"] = embed_dim
    torch.manual_seed(0)
    config = _fill_data_sizes(config, data)
    if vocab is not None:
        config["vocab_size"] = min(vocab, int(config["vocab_size"]))
    model = build_model(config)
    point = {"cell": cell, "hidden_size": hidden, "weight_bits": bits}
    profile = profile_model(model, point)
    return {"size": int(profile["size_bytes"]), "ram": int(profile["ram_bytes"]), "ram_kind": profile["ram_kind"]}


def _exported_bytes(data: Any, cell: str, hidden: int, bits: int, embed_dim: int | None,
                    vocab: int | None = None) -> int:
    """The .lsl bytes of :func:`_exported_profile`'s model."""
    return _exported_profile(data, cell, hidden, bits, embed_dim, vocab)["size"]


def _largest(lo: int, hi: int, fits: Callable[[int], bool]) -> int:
    """The largest n in [lo, hi] with ``fits(n)``, by bisection: ``fits(lo)`` holds and
    ``fits`` holds up to some n and not past it (bytes grow with the size searched)."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _max_hidden_exported(limits: dict[str, int], data: Any, bits: int, cap: int, embed_dim: int | None,
                         vocab: int | None = None) -> tuple[int, dict[str, Any], bool]:
    """The largest multiple of 4 (at most ``cap``) whose GRU keeps within every limit in
    ``limits`` (``size``: exported bytes, ``ram``: its RAM); 4 when none does. Returns
    (hidden, its profile, whether it fits)."""
    profiles: dict[int, dict[str, Any]] = {}

    def fits(units: int) -> bool:  # a GRU of 4 * units hidden units
        profiles[units] = _exported_profile(data, "gru", 4 * units, bits, embed_dim, vocab)
        return all(profiles[units][key] <= limit for key, limit in limits.items())

    if not fits(1):
        return 4, profiles[1], False
    units = _largest(1, max(cap // 4, 1), fits)
    return 4 * units, profiles[units], True


def _largest_vocab(data: Any, bits: int, size: int, embed_dim: int) -> int | None:
    """The most vocabulary entries (``max_vocab``: ``<pad>`` and ``<unk>`` included, at
    least 3) with which the smallest text model (a GRU of 4 units, ``embed_dim`` wide)
    exports within ``size`` bytes; None when even 3 do not fit."""
    def fits(vocab: int) -> bool:
        return _exported_bytes(data, "gru", 4, bits, embed_dim, vocab) <= size

    return _largest(3, len(data.vocab), fits) if fits(3) else None


def _beyond(top: int, cap: int) -> str:
    """Why no larger hidden size is proposed: the budget (``top`` below the data's ``cap``),
    or the amount of training data (the cap itself)."""
    if top < cap:
        return "a larger one would not fit the budget"
    return "a larger model would need more data than you have"


def recommend(task: str, n_train: int, input_size: int, budget: str | dict[str, Any] | None = None,
              text: bool = False, data: Any = None) -> dict[str, Any]:
    """A proposal: ``{"space": {...}, "budget": {...}, "trials": n, "explanation": [lines]}``.

    Args:
        data: the loaded data set (:func:`lstmlite.data.load_data`); with it and a size
            or RAM budget, the hidden-size bound is measured in exported bytes and the
            RAM the search charges (the module doc), which is what ``lstmlite recommend``
            does. Without it, estimated from the size budget alone.
    """
    limits = parse_budget(budget)
    size = int(limits["size"]) if "size" in limits else None
    why: list[str] = []
    bits = [8] if size is not None and size <= 8192 else [32, 8]
    if bits == [8]:
        why.append(f"The size budget ({size:,} bytes) is tight, so every weight is stored as int8 (4x smaller "
                   "than float32, usually within a point of accuracy).")
    elif size is None:
        why.append("No size budget was given, so both float32 and int8 weights are tried.")
    else:
        why.append(f"The size budget ({size:,} bytes) leaves room, so both float32 and int8 weights are tried.")
    cap = 256 if n_train > 20000 else 64
    # a seq2seq model's encoder and decoder are LSTMs or GRUs (lstmlite.nn.Seq2Seq): no FastGRNN
    fastgrnn = size is not None and size <= 4096 and task != "seq2seq"
    embed_choices = [8, 16, 32]
    vocab_choices: list[int] = []
    if text and size is not None and data is not None and data.vocab is not None:
        full = len(data.vocab)
        if _exported_bytes(data, "gru", 4, bits[-1], embed_choices[0]) > size:
            # the whole vocabulary does not fit: keep the most frequent words, leaving a
            # quarter of the budget to the recurrent layer and head
            kept = _largest_vocab(data, bits[-1], 3 * size // 4, embed_choices[0])
            if kept is not None:
                # a language model's or seq2seq model's targets are the same words: a search over
                # max_vocab would reward fewer words (easier targets), so it is fixed at k
                cut_targets = task in ("lm", "seq2seq")
                vocab_choices = [kept] if cut_targets else sorted({max(3, kept // 2), kept})
                why.append(f"The whole vocabulary ({full:,} entries) does not fit the budget, so only the most frequent "
                           f"words are kept: max_vocab {' or '.join(map(str, vocab_choices))} (with <pad> and <unk>; "
                           "the rest read as <unk>), where the smallest model takes at most three quarters of "
                           "the budget" + (" -- fixed, not searched: the targets are the same words, and fewer "
                                           "words would score better on easier targets." if cut_targets else "."))
    inputs = "text input" if text else f"{input_size} input features"
    ram = int(limits["ram"]) if "ram" in limits else None
    bounded = {k: v for k, v in (("size", size), ("ram", ram)) if v is not None}
    if bounded and data is not None:
        top, profile, ok = _max_hidden_exported(bounded, data, bits[-1], cap, embed_choices[0] if text else None,
                                                vocab_choices[0] if vocab_choices else None)
        # the RAM is the C project's where the C export takes the model, else an estimate
        ram_said = (f"needs {profile['ram']:,} bytes of RAM on a Cortex-M4" if profile["ram_kind"] == "mcu-export"
                    else f"needs about {profile['ram']:,} bytes of RAM (estimated: the C export does not take it)")
        costs = f"exports {profile['size']:,} bytes and {ram_said}"
        if not ok:
            over = " and ".join(f"the {k} budget ({v:,} bytes)" for k, v in bounded.items() if profile[k] > v)
            raise_ = " or keep fewer words (max_vocab)" if text and profile["size"] > bounded.get("size", 1 << 62) else ""
            # FastGRNN, tried below a 4 KB budget, is smaller than any GRU: lstmlite recommend
            # measures the proposed space's smallest model and says whether any fits
            none = "No GRU or LSTM" if fastgrnn else "No model"
            fallback = "; only a FastGRNN might, else raise the budget" if fastgrnn else "; raise the budget"
            why.append(f"{none} fits the budget: {'an int8' if bits[-1] == 8 else 'a'} GRU of 4 units"
                       f"{', embedding 8 wide' if text else ''} {costs}, over {over}{fallback}{raise_}.")
        else:
            why.append(f"With {n_train:,} training examples and {inputs}, hidden sizes up to "
                       f"{top} fit the budget (a GRU of {top} units {costs}; an LSTM of the same width is a third "
                       f"larger); {_beyond(top, cap)}.")
    else:
        top = min(_max_hidden(size, input_size, "gru", bits[-1]), cap)
        if size is not None:
            why.append(f"With {n_train:,} training examples and {inputs}, hidden sizes up to {top} fit the budget "
                       f"(estimated from the parameter count); {_beyond(top, cap)}.")
        else:  # nothing bounds the size: the cap for this much data does
            why.append(f"With {n_train:,} training examples and {inputs}, hidden sizes up to {top} are tried "
                       "(no size budget bounds them); a larger model would need more data than you have.")
    cells = ["gru", "lstm"] + (["fastgrnn"] if fastgrnn else [])
    why.append(f"Cells tried: {', '.join(cells)} (GRU has 3/4 of an LSTM's weights"
               + ("; FastGRNN is far smaller for very tight budgets)." if fastgrnn else ").")
               + (" A seq2seq model's encoder and decoder are LSTMs or GRUs only." if task == "seq2seq" else ""))
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
        params["embed_dim"] = {"choices": embed_choices}
        why.append("The text embedding is usually most of a text model's bytes, so small embeddings are searched.")
    fixed: dict[str, Any] = {"epochs": epochs}
    if vocab_choices and task in ("lm", "seq2seq"):
        fixed["max_vocab"] = vocab_choices[0]
    elif vocab_choices:
        params["max_vocab"] = {"choices": vocab_choices}
    if "latency" in limits:
        why.append(f"Latency ({_microseconds(limits['latency'])} us per step) is measured in the native runtime "
                   "on this machine; measure on the target device for a firm answer.")
    return {"space": {"params": params, "fixed": fixed}, "budget": limits, "trials": trials,
            "explanation": why}
