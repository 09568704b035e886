"""Import PyTorch recurrent models: ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``, models built around
them, and ``state_dict`` files (read with ``weights_only=True``: no code is unpickled).

Our layers use PyTorch's parameter names and gate order, so weights copy across
unchanged; what an import has to find out is the *structure* around the recurrent
layer. From a state dict (or a module's), the parts are recognised by name and shape:

* the recurrent layer: the keys ``<prefix>weight_ih_l0`` … (cell type from the row
  count: 4H LSTM, 3H GRU, H RNN; layers, directions, hidden sizes, projection and
  bias from the keys present);
* the embedding: a module with a single 2-D ``weight`` whose width is the recurrent
  layer's input size;
* the head: a module with ``weight`` (C, D*H) and ``bias`` (C,), or no bias. A bias-free
  weight that fits both is placed by its module's type (``nn.Embedding`` / ``nn.Linear``),
  or in a bare state dict by its order: an embedding before the recurrent layer, a head after.

An architecture description (``arch``: our model config dict, a JSON file, or a run
dir's ``config.json``) says what the keys cannot: the model ``kind`` and
``pooling``; without one a model with a head is read as a classifier reading the
last step (a language model when the head predicts the embedding's vocabulary).
When a module is given with ``example_input``, the import runs both models and fails
unless they agree (the arbiter for whatever a ``forward`` does that keys don't show).

Example:
    >>> import torch
    >>> lstm = torch.nn.LSTM(8, 16, num_layers=2, batch_first=True)
    >>> layer = import_torch(lstm)
    >>> x = torch.randn(3, 5, 8)
    >>> torch.allclose(layer(x)[0], lstm(x)[0])
    True
"""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .._text import ERROR_CHARS, one_line
from ..nn.layers import GRU, LSTM, RecurrentLayer, from_torch
from ._common import ModelImportError, assemble_model, save_imported
from .layers import SimpleRNN

__all__ = ["import_torch", "load_state_dict_file", "layer_from_state_dict", "read_arch"]

log = logging.getLogger(__name__)

_RNN_KEY = re.compile(r"^(?P<prefix>.*?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)"
                      r"(?P<reverse>_reverse)?$")
_OUTPUT_ACTIVATIONS = {
    None: lambda t: t,
    "softmax": lambda t: torch.softmax(t, -1),
    "log_softmax": lambda t: torch.log_softmax(t, -1),
    "sigmoid": torch.sigmoid,
}


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file, never unpickling code.

    ``torch.load(..., weights_only=True)`` refuses anything but tensors and plain
    containers. A training checkpoint holding the weights under ``state_dict`` /
    ``model_state_dict`` / ``model`` is accepted too.
    """
    from ._common import read_model_file, refuse_other_format

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(read_model_file(path, "safetensors", load_file))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; check the path")
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle refusal and corrupt files alike
        # torch names the class it refused ("Unsupported global: GLOBAL torch.nn...LSTM") only
        # for a pickled object; a truncated archive or another format fails otherwise.
        if "Unsupported global" in str(err):
            raise ModelImportError(f"{path}: cannot be read with weights_only=True: it holds pickled objects "
                                   "(a whole module); save model.state_dict() (or safetensors) instead of the "
                                   "module") from None
        refuse_other_format(path, "torch.save")
        raise ModelImportError(f"{path}: not a readable torch.save file, truncated or corrupt "
                               f"({type(err).__name__}); re-save it with torch.save(model.state_dict(), ...)"
                               ) from None
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise ModelImportError(f"{path}: does not hold a state dict (a mapping of names to tensors)")
    return dict(loaded)


def read_arch(arch: dict[str, Any] | str | Path | None) -> dict[str, Any]:
    if arch is None:
        return {}
    if isinstance(arch, dict):
        return dict(arch.get("model", arch))
    path = Path(arch)
    if path.is_dir():
        path = path / "config.json"
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: architecture file not found") from None
    except json.JSONDecodeError as err:
        raise ModelImportError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(loaded, dict):
        raise ModelImportError(f"{path}: an architecture must be a JSON object (our model config)")
    return dict(loaded.get("model", loaded))  # a run dir's config.json keeps it under "model"


def layer_from_state_dict(state: Mapping[str, Tensor], prefix: str = "", cell: str | None = None,
                          nonlinearity: str = "tanh") -> RecurrentLayer:
    """Build our recurrent layer from PyTorch-named tensors ``<prefix>weight_ih_l0`` ….

    Args:
        state: the tensors (other keys are ignored).
        prefix: the recurrent module's key prefix, e.g. ``"lstm."``.
        cell: ``lstm`` | ``gru`` | ``rnn``; default from the row count (4H, 3H, H).
        nonlinearity: for ``rnn``: ``tanh`` or ``relu`` (a state dict does not say).
    """
    keys = {}
    for name, tensor in state.items():
        match = _RNN_KEY.match(name)
        if match and match["prefix"] == prefix:
            keys[(match["kind"], int(match["layer"]), bool(match["reverse"]))] = tensor
    if ("weight_ih", 0, False) not in keys:
        raise ModelImportError(f"no recurrent weights {prefix}weight_ih_l0 in the state dict")
    num_layers = 1 + max(layer for _, layer, _ in keys)
    bidirectional = any(rev for _, _, rev in keys)
    bias = ("bias_ih", 0, False) in keys
    hidden, proj = [], []
    for k in range(num_layers):
        if ("weight_hh", k, False) not in keys:
            raise ModelImportError(f"{prefix}weight_hh_l{k} is missing")
        rows = keys[("weight_ih", k, False)].shape[0]
        w_hr = keys.get(("weight_hr", k, False))
        h = int(w_hr.shape[1]) if w_hr is not None else int(keys[("weight_hh", k, False)].shape[1])
        hidden.append(h)
        proj.append(int(w_hr.shape[0]) if w_hr is not None else 0)
        gates = rows // h if rows % h == 0 else 0
        if cell is None:
            if gates not in (1, 3, 4):
                raise ModelImportError(f"{prefix}weight_ih_l{k} has {rows} rows for hidden size {h}: not an "
                                       "LSTM (4H), GRU (3H) or RNN (H)")
            cell = {4: "lstm", 3: "gru", 1: "rnn"}[gates]
        elif gates != {"lstm": 4, "gru": 3, "rnn": 1}.get(cell):
            raise ModelImportError(f"{prefix}weight_ih_l{k} has {rows} rows: not a {cell} of hidden size {h}")
    kwargs: dict[str, Any] = dict(input_size=int(keys[("weight_ih", 0, False)].shape[1]),
                                  hidden_size=hidden if len(set(hidden)) > 1 else hidden[0],
                                  num_layers=num_layers, bias=bias, bidirectional=bidirectional)
    if cell == "lstm":
        layer: RecurrentLayer = LSTM(**kwargs, proj_size=proj if len(set(proj)) > 1 else proj[0])
    elif cell == "gru":
        layer = GRU(**kwargs)
    elif cell == "rnn":
        layer = SimpleRNN(**kwargs, nonlinearity=nonlinearity)
    else:
        raise ModelImportError(f"unknown cell {cell!r}; expected lstm, gru or rnn")
    sub = {name[len(prefix):]: t for name, t in state.items()
           if name.startswith(prefix) and _RNN_KEY.match(name) and _RNN_KEY.match(name)["prefix"] == prefix}
    try:
        layer.load_state_dict({k: v.float() for k, v in sub.items()}, strict=True)
    except RuntimeError as err:
        # torch's first line is only "Error(s) in loading state_dict for LSTM:"; the keys
        # missing, unexpected or of the wrong size follow it, and are the useful part:
        # twice the usual room, so a list of several keys survives the cut.
        detail = str(err).replace(f"Error(s) in loading state_dict for {type(layer).__name__}:", "", 1)
        raise ModelImportError(f"the recurrent weights under {prefix!r} do not form a {cell}: "
                               f"{one_line(detail, limit=2 * ERROR_CHARS)}") from None
    return layer.eval()


def _modules_by_prefix(state: Mapping[str, Tensor], skip: str) -> dict[str, dict[str, Tensor]]:
    groups: dict[str, dict[str, Tensor]] = {}
    for name, tensor in state.items():
        if name.startswith(skip) and _RNN_KEY.match(name) and _RNN_KEY.match(name)["prefix"] == skip:
            continue
        module, _, leaf = name.rpartition(".")
        groups.setdefault(module, {})[leaf] = tensor
    return groups


def _settle_embedding_or_head(name: str, state: Mapping[str, Tensor], prefix: str, module_types: Mapping[str, str],
                              embeddings: dict, heads: dict) -> None:
    """Keep ``name`` as either the embedding or the head, when its weight fits both.

    A bias-free ``(C, H)`` weight is a head, or an embedding of C tokens when H is also
    the recurrent input size; only its position tells: a state dict lists a module's
    parts in the order they were registered, an embedding before the recurrent layer,
    a head after it. (A module source says it plainly: its ``nn.Embedding`` /
    ``nn.Linear`` types settle it before this is reached.)
    """
    keys = list(state)
    weight_key = f"{name}.weight" if name else "weight"
    first_recurrent = next(i for i, k in enumerate(keys) if k.startswith(prefix) and _RNN_KEY.match(k))
    before = keys.index(weight_key) < first_recurrent
    log.info("state dict: %r, a bias-free %s weight, read as the %s (it comes %s the recurrent layer)",
             name, tuple(state[weight_key].shape), "embedding" if before else "head",
             "before" if before else "after")
    (heads if before else embeddings).pop(name)


def _from_state_dict(state: Mapping[str, Tensor], arch: dict[str, Any],
                     module_types: Mapping[str, str] | None = None) -> nn.Module:
    """Our model from a state dict; ``module_types`` (module name → ``embedding`` / ``linear``)
    when the dict came from a module, whose layer types say what shapes alone may not."""
    from ..nn.models import build_model

    module_types = module_types or {}

    if "kind" in arch and "cell" in arch:  # a full lstmlite config: the keys should be ours
        model = build_model(arch)
        ours = model.state_dict()
        if set(state) <= set(ours) and set(ours) - set(state) <= _tied_keys(model):
            model.load_state_dict({k: v.to(ours[k].dtype) for k, v in state.items()}, strict=False)
            return model.eval()
    parametrized = sorted(k for k in state if ".parametrizations." in k)
    if parametrized:  # torch.nn.utils.parametrize names: a compressed lstmlite run's weights
        raise ModelImportError(
            f"the state dict holds parametrized tensors ({parametrized[0]}, …): the weights of a compressed "
            "lstmlite run (masks, codes, factors beside the originals), which a plain import cannot rebuild; use "
            "that run dir itself (lstmlite.io.load_run), or import the weights of the model after "
            "lstmlite.compress.finalize()")
    prefixes = {m["prefix"] for m in map(_RNN_KEY.match, state) if m and m["kind"] == "weight_ih" and m["layer"] == "0"}
    if len(prefixes) != 1:
        raise ModelImportError(f"expected one recurrent layer in the state dict, found {len(prefixes)} "
                               f"({sorted(prefixes)}); pass key_map to rename keys")
    prefix = prefixes.pop()
    rnn = layer_from_state_dict(state, prefix, arch.get("cell"), arch.get("nonlinearity", "tanh"))
    groups = _modules_by_prefix(state, prefix)
    embeddings = {m: p for m, p in groups.items() if set(p) == {"weight"} and p["weight"].dim() == 2
                  and p["weight"].shape[1] == rnn.input_size and module_types.get(m, "embedding") == "embedding"}
    heads = {m: p for m, p in groups.items() if set(p) <= {"weight", "bias"} and "weight" in p
             and p["weight"].dim() == 2 and p["weight"].shape[1] == rnn.output_size
             and module_types.get(m, "linear") == "linear"}
    for name in set(embeddings) & set(heads):  # a bias-free (C, H) weight with H == the input size
        _settle_embedding_or_head(name, state, prefix, module_types, embeddings, heads)
    if len(embeddings) > 1 or len(heads) > 1:
        raise ModelImportError(f"ambiguous state dict: embedding candidates {sorted(embeddings)}, head candidates "
                               f"{sorted(heads)}; pass key_map to name them")
    leftover = set(groups) - set(embeddings) - set(heads)
    if leftover:
        raise ModelImportError(f"state dict entries lstmlite cannot place: {sorted(leftover)[:5]} (an lstmlite "
                               "model is [embedding →] recurrent layer → one linear head)")
    embedding = next(iter(embeddings.values()))["weight"].float() if embeddings else None
    head = next(iter(heads.values())) if heads else None
    kind = arch.get("kind")
    if kind is None:
        if head is None:
            kind = "layer"
        elif embedding is not None and head["weight"].shape[0] == embedding.shape[0] and not rnn.bidirectional:
            kind = "lm"  # a bidirectional layer sees the future: it cannot predict the next token
        else:
            kind = "classifier" if head["weight"].shape[0] > 1 else "forecaster"
        log.info("state dict read as a %s (pass arch={'kind': ...} to say otherwise)", kind)
    pooling = arch.get("pooling", "none" if kind in ("lm", "tagger") else "last")
    extra: dict[str, Any] = {}
    if kind == "forecaster":
        extra = {"horizon": arch.get("horizon"), "targets": arch.get("targets", 1),
                 "instance_norm": bool(arch.get("instance_norm", False))}
    return assemble_model(rnn, kind, embedding=embedding,
                          head_weight=None if head is None else head["weight"].float(),
                          head_bias=None if head is None or "bias" not in head else head["bias"].float(),
                          pooling=pooling, **extra)


def _tied_keys(model: nn.Module) -> set[str]:
    state = model.state_dict()
    ptrs: dict[int, str] = {}
    tied = set()
    for name, t in state.items():
        if t.data_ptr() in ptrs:
            tied.add(name)
        ptrs.setdefault(t.data_ptr(), name)
    return tied


def _renamed_key(name: str, key_map: Mapping[str, str] | None) -> str:
    """``name`` with the first ``key_map`` prefix it starts with replaced."""
    for old, new in (key_map or {}).items():
        if name.startswith(old):
            return new + name[len(old):]
    return name


def _apply_key_map(state: Mapping[str, Tensor], key_map: Mapping[str, str] | None) -> dict[str, Tensor]:
    return {_renamed_key(name, key_map): tensor for name, tensor in state.items()}


def _from_module(module: nn.Module, arch: dict[str, Any], key_map: Mapping[str, str] | None) -> nn.Module:
    from ..nn.models import Forecaster, LanguageModel, SequenceClassifier

    if isinstance(module, (SequenceClassifier, LanguageModel, Forecaster, RecurrentLayer)):
        return copy.deepcopy(module).eval()
    if isinstance(module, (nn.LSTM, nn.GRU)):
        return from_torch(module).eval()
    if isinstance(module, nn.RNN):
        layer = SimpleRNN(module.input_size, module.hidden_size, module.num_layers, module.bias, module.batch_first,
                          float(module.dropout), module.bidirectional, nonlinearity=module.nonlinearity)
        layer.load_state_dict(module.state_dict())
        return layer.eval()
    recurrent = [m for m in module.modules() if isinstance(m, (nn.RNNBase, RecurrentLayer))]
    if len(recurrent) != 1:
        raise ModelImportError(f"{type(module).__name__} holds {len(recurrent)} recurrent modules; lstmlite imports "
                               "a model with exactly one nn.LSTM / nn.GRU / nn.RNN (stack layers with num_layers)")
    arch = dict(arch)
    if isinstance(recurrent[0], nn.RNN):
        arch.setdefault("cell", "rnn")
        arch.setdefault("nonlinearity", recurrent[0].nonlinearity)
    # Only parameters and buffers that carry weights; e.g. BatchNorm's running stats
    # would be left over and refused, which is right: we have no such layer.
    state = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    types = {name: "embedding" if isinstance(m, nn.Embedding) else "linear" for name, m in module.named_modules()
             if isinstance(m, (nn.Embedding, nn.Linear))}
    # Renamed as the keys are (a map's prefix may end mid-name), then back to module names.
    renamed_types = {_renamed_key(f"{name}.weight", key_map).rpartition(".")[0]: kind for name, kind in types.items()}
    return _from_state_dict(_apply_key_map(state, key_map), arch, renamed_types)


def _check_against(module: nn.Module, model: nn.Module, example: Tensor | tuple, atol: float) -> str | None:
    """Run both on ``example``; return the output activation that makes them agree, else raise.

    A module whose recurrent layer is not batch-first takes (T, B, ...) input; our
    task models take (B, T, ...), so the example is transposed for ours (and a
    per-step output transposed back).
    """
    args = example if isinstance(example, tuple) else (example,)
    recurrent = [m for m in module.modules() if isinstance(m, nn.RNNBase)]
    time_major = bool(recurrent) and not recurrent[0].batch_first and not isinstance(model, RecurrentLayer)
    ours_args = (args[0].transpose(0, 1), *args[1:]) if time_major else args
    with torch.no_grad():
        expected = module.eval()(*args)
        expected = expected[0] if isinstance(expected, (tuple, list)) else expected
        ours = model(*ours_args)
        ours = ours[0] if isinstance(ours, (tuple, list)) else ours
    if time_major and ours.dim() == 3:
        ours = ours.transpose(0, 1)
    best = float("inf")
    for name, fn in _OUTPUT_ACTIVATIONS.items():
        candidate = fn(ours)
        if candidate.shape != expected.shape:
            continue
        error = float((candidate - expected).abs().max())
        best = min(best, error)
        if error <= atol + 1e-4 * float(expected.abs().max()):
            return name
    raise ModelImportError(
        f"the imported model does not reproduce {type(module).__name__} on example_input (best max error {best:.3g}); "
        "its forward does something lstmlite's models do not (pass arch to set kind/pooling)")


def import_torch(
    source: nn.Module | str | Path | Mapping[str, Tensor],
    arch: dict[str, Any] | str | Path | None = None,
    out: str | Path | None = None,
    *,
    example_input: Tensor | tuple | None = None,
    key_map: Mapping[str, str] | None = None,
    atol: float = 1e-5,
    overwrite: bool = False,
) -> nn.Module:
    """Bring a PyTorch recurrent model into lstmlite (``overwrite``: replace a run dir of
    ours at ``out``, the CLI's ``--force``).

    Args:
        source: ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (→ our layer), a module holding
            one of them (→ a task model), an lstmlite model (copied), a state dict, or
            a ``.pt``/``.pth``/``.safetensors`` file of one.
        arch: what the weights do not say: our model config (``kind``, ``pooling``,
            ``horizon``, …; a full lstmlite config rebuilds the model exactly), as a
            dict, JSON file or run dir.
        out: when given, also write the model as a run dir there.
        example_input: for a module source, an input to run both models on; the
            import fails unless they agree (within ``atol``, after the softmax /
            log-softmax / sigmoid the module may end with).
        key_map: prefix renames applied to the state dict first, e.g.
            ``{"encoder.": "rnn.", "decoder.": "head."}``.

    Returns:
        Our model (eval mode); ``model.import_info`` records the source.
    """
    arch_dict = read_arch(arch)
    if out is not None:
        from ..io import check_out_dir

        check_out_dir(out, overwrite=overwrite)  # before the import's work, not after it
    info: dict[str, Any] = {"source": "torch"}
    if isinstance(source, nn.Module):
        model = _from_module(source, arch_dict, key_map)
        info["module"] = type(source).__name__
        if example_input is not None:
            info["output_activation"] = _check_against(source, model, example_input, atol)
            info["verified"] = True
    else:
        if isinstance(source, (str, Path)):
            info["file"] = str(source)
            state = load_state_dict_file(source)
        elif isinstance(source, Mapping):
            state = dict(source)
        else:
            raise TypeError(f"import_torch expects a module, a state dict or a file, got {type(source).__name__}")
        if example_input is not None:
            raise ValueError("example_input needs a module source (a state dict cannot be run)")
        model = _from_state_dict(_apply_key_map(state, key_map), arch_dict)
    model.import_info = info
    if out is not None:
        save_imported(out, model, info, overwrite=overwrite)
    return model
