"""Task models: sequence classifier, language model, forecaster.

Every model is ``[embedding] → recurrent layer (rnn) → head`` with the recurrent
layer chosen by name (``cell``), reports ``macs_per_step()`` and ``params()``, and
round-trips through ``config()`` / :func:`build_model` (what a run dir stores).

The reference text model of DESIGN.md is
``SequenceClassifier(vocab_size=10000, embed_dim=128, hidden_size=128, n_classes=6)``:
Embedding(10000, 128) → LSTM(128) → Dense(6) (softmax lives in the loss).

Example:
    >>> import torch
    >>> model = SequenceClassifier(input_size=12, hidden_size=32, n_classes=9)
    >>> model(torch.randn(4, 20, 12), lengths=torch.tensor([20, 15, 9, 3])).shape
    torch.Size([4, 9])
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn

from .cells import FastGRNN, GroupedLSTM
from .layers import GRU, LSTM

__all__ = ["SequenceClassifier", "LanguageModel", "Forecaster", "SequenceTagger", "build_model", "build_recurrent",
           "CELLS", "cell_options"]


def _cells() -> dict[str, type[nn.Module]]:
    return {"lstm": LSTM, "gru": GRU, "glstm": GroupedLSTM, "fastgrnn": FastGRNN}


CELLS = tuple(_cells())


def build_recurrent(cell: str, **kwargs: Any) -> nn.Module:
    """Build a recurrent layer by name: ``lstm``, ``gru``, ``glstm`` or ``fastgrnn``."""
    cells = _cells()
    if cell not in cells:
        raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(cells)}")
    return cells[cell](**kwargs)


def cell_options(cell: str) -> set[str]:
    """Names of the keyword options ``cell``'s layer takes (what ``rnn_options`` may hold).

    Example:
        >>> sorted(cell_options("fastgrnn"))[:3]
        ['batch_first', 'bidirectional', 'dropout']
    """
    cells = _cells()
    if cell not in cells:
        raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(cells)}")
    params = inspect.signature(cells[cell].__init__).parameters
    options = {name for name in params if name not in ("self", "input_size", "hidden_size", "num_layers")}
    if cells[cell] is GRU:
        options.discard("proj_size")  # the shared constructor takes it; only an LSTM has projections
    return options


def _count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class _TaskModel(nn.Module):
    """Common parts: optional embedding, the recurrent layer, config and counts."""

    kind = ""

    def __init__(
        self,
        input_size: int = 0,
        vocab_size: int = 0,
        embed_dim: int = 0,
        cell: str = "lstm",
        hidden_size: int | list[int] = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        rnn_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if (input_size > 0) == (vocab_size > 0):
            raise ValueError("give exactly one of input_size (feature input) or vocab_size (token input)")
        if vocab_size and embed_dim <= 0:
            raise ValueError("token input needs embed_dim > 0")
        if not 0.0 <= dropout < 1.0:  # as the layers: nn.Dropout(1.0) would zero every head input
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size = int(input_size)
        self.vocab_size = int(vocab_size)
        self.embed_dim = int(embed_dim) if vocab_size else 0
        self.cell = cell
        self.dropout = float(dropout)
        self.rnn_options = dict(rnn_options or {})
        # What the task model sets itself: in rnn_options it was used but then missing from
        # config() (so a rebuilt model differed), and batch_first=False ran the recurrence
        # over the batch axis of the (B, T, F) input the model feeds.
        owned = sorted(set(self.rnn_options) & {"input_size", "hidden_size", "num_layers", "bidirectional",
                                                "dropout", "batch_first"})
        if owned:
            raise ValueError(f"rnn_options cannot set {', '.join(owned)}: the task model sets "
                             f"{'it' if len(owned) == 1 else 'them'} (inputs are (B, T, F)); give input_size, "
                             f"hidden_size, num_layers, bidirectional and dropout as model options")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0) if vocab_size else None
        rnn_kwargs: dict[str, Any] = {
            "input_size": self.embed_dim or self.input_size,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            **self.rnn_options,
        }
        if bidirectional:
            rnn_kwargs["bidirectional"] = True
        if dropout and num_layers > 1:
            rnn_kwargs["dropout"] = dropout
        self.rnn = build_recurrent(cell, **rnn_kwargs)
        self.drop = nn.Dropout(dropout)

    def _embed(self, x: Tensor) -> Tensor:
        if self.embedding is None:
            if x.dim() != 3:
                raise ValueError(f"feature input must be (B, T, F), got shape {tuple(x.shape)}")
            return x
        if x.dim() != 2:
            raise ValueError(f"token input must be (B, T) integer ids, got shape {tuple(x.shape)}")
        return self.embedding(x)

    def _base_config(self) -> dict[str, Any]:
        rnn_config = self.rnn.config()
        return {
            "kind": self.kind,
            "input_size": self.input_size,
            "vocab_size": self.vocab_size,
            "embed_dim": self.embed_dim,
            "cell": self.cell,
            "hidden_size": rnn_config["hidden_size"],
            "num_layers": rnn_config["num_layers"],
            "bidirectional": bool(getattr(self.rnn, "bidirectional", False)),
            "dropout": self.dropout,
            "rnn_options": {k: v for k, v in rnn_config.items()
                            if k not in ("input_size", "hidden_size", "num_layers", "bidirectional", "dropout",
                                         "batch_first")},
        }

    def params(self) -> int:
        """Number of parameters (embedding included)."""
        return _count_params(self)

    def macs_per_step(self) -> int:
        """MACs per time step per sequence: the recurrent layers, plus per-step heads.

        An embedding lookup costs no MACs; a classifier's or forecaster's head runs
        once per sequence and is not counted here.
        """
        return int(self.rnn.macs_per_step())


def _last_step(output: Tensor, lengths: Tensor | None) -> Tensor:
    """Output at each sequence's last valid step: (B, T, F) → (B, F)."""
    if lengths is None:
        return output[:, -1]
    index = (torch.as_tensor(lengths, device=output.device) - 1).clamp(min=0)
    return output[torch.arange(output.shape[0], device=output.device), index]


def _final_features(rnn: nn.Module, output: Tensor, state: list, lengths: Tensor | None) -> Tensor:
    """Summary vector of a sequence: last valid step forward, first step backward."""
    if getattr(rnn, "bidirectional", False):
        half = output.shape[-1] // 2
        return torch.cat([_last_step(output[..., :half], lengths), output[:, 0, half:]], dim=-1)
    return _last_step(output, lengths)


class SequenceClassifier(_TaskModel):
    """Sequence → class logits: ``[Embedding] → RNN → Dense(n_classes)``.

    Args:
        input_size: features per step for real-valued input (or 0 with ``vocab_size``).
        vocab_size, embed_dim: token input through an embedding (padding id 0).
        cell: ``lstm`` | ``gru`` | ``glstm`` | ``fastgrnn``.
        hidden_size, num_layers, bidirectional, dropout: the recurrent stack.
        n_classes: output classes.
        pooling: ``last`` (state at each sequence's last valid step), ``mean`` or ``max``
            over valid steps.

    forward(x, lengths=None): x (B, T, F) float or (B, T) int64 → logits (B, n_classes).
    """

    kind = "classifier"

    def __init__(self, n_classes: int = 2, pooling: str = "last", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        if pooling not in ("last", "mean", "max"):
            raise ValueError(f"pooling must be last, mean or max, got {pooling!r}")
        self.n_classes = int(n_classes)
        self.pooling = pooling
        self.head = nn.Linear(self.rnn.output_size, n_classes)

    def features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The pooled sequence representation the head reads: (B, D*H)."""
        output, state = self.rnn(self._embed(x), lengths=lengths)
        if self.pooling == "last":
            return _final_features(self.rnn, output, state, lengths)
        mask = _valid_mask(output, lengths)  # (B, T, 1)
        if self.pooling == "mean":
            return (output * mask).sum(1) / mask.sum(1).clamp(min=1)
        return output.masked_fill(mask == 0, float("-inf")).amax(1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.head(self.drop(self.features(x, lengths)))

    def config(self) -> dict[str, Any]:
        return {**self._base_config(), "n_classes": self.n_classes, "pooling": self.pooling}


def _valid_mask(output: Tensor, lengths: Tensor | None) -> Tensor:
    steps = torch.arange(output.shape[1], device=output.device)
    if lengths is None:
        return torch.ones(output.shape[0], output.shape[1], 1, device=output.device, dtype=output.dtype)
    valid = steps[None, :] < torch.as_tensor(lengths, device=output.device)[:, None]
    return valid.unsqueeze(-1).to(output.dtype)


class LanguageModel(_TaskModel):
    """Next-token model: ``Embedding → RNN → Dense(vocab)``, optionally with tied weights.

    Tying (Press & Wolf 2017) shares the embedding matrix with the output layer,
    which needs the RNN's output size to equal ``embed_dim``.

    forward(x, state=None): x (B, T) int64 → (logits (B, T, V), state) so text can be
    fed in chunks with the state carried.
    """

    kind = "lm"

    def __init__(self, vocab_size: int, embed_dim: int = 64, tie_weights: bool = False, **kwargs: Any) -> None:
        kwargs.pop("input_size", None)
        if kwargs.get("bidirectional"):
            raise ValueError("a language model cannot be bidirectional: it would see the future")
        super().__init__(vocab_size=vocab_size, embed_dim=embed_dim, **kwargs)
        self.tie_weights = bool(tie_weights)
        self.head = nn.Linear(self.rnn.output_size, vocab_size)
        if tie_weights:
            if self.rnn.output_size != embed_dim:
                raise ValueError(
                    f"tie_weights needs the RNN output size ({self.rnn.output_size}) to equal embed_dim ({embed_dim})"
                )
            self.head.weight = self.embedding.weight

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        output, state = self.rnn(self._embed(x), state)
        return self.head(self.drop(output)), state

    def macs_per_step(self) -> int:
        return int(self.rnn.macs_per_step()) + self.head.in_features * self.head.out_features

    def config(self) -> dict[str, Any]:
        return {**self._base_config(), "tie_weights": self.tie_weights}


class Forecaster(_TaskModel):
    """Window of a series → the next ``horizon`` values: ``RNN → Dense(horizon * targets)``.

    The targets are the first ``targets`` input features. With ``instance_norm``
    (the default; RevIN, Kim et al. 2022) each window's mean is subtracted from its
    input and added back to the forecast, so the network models the shape of the
    series around its current level and a trending series (airline passengers)
    does not leave the range seen in training.

    forward(x, lengths=None): x (B, T, F) → (B, horizon) (or (B, horizon, targets)
    when ``targets`` > 1).
    """

    kind = "forecaster"

    def __init__(self, input_size: int = 1, horizon: int = 12, targets: int = 1, instance_norm: bool = True,
                 **kwargs: Any) -> None:
        kwargs.pop("vocab_size", None)
        kwargs.pop("embed_dim", None)
        super().__init__(input_size=input_size, **kwargs)
        if horizon < 1 or targets < 1 or targets > input_size:
            raise ValueError("horizon must be at least 1 and targets between 1 and input_size")
        self.horizon = int(horizon)
        self.targets = int(targets)
        self.instance_norm = bool(instance_norm)
        self.head = nn.Linear(self.rnn.output_size, horizon * targets)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        level = None
        if self.instance_norm:
            mask = _valid_mask(x, lengths)  # (B, T, 1)
            # where(), not a product with the mask: NaN padding times 0 is NaN, which made the
            # level and so every forecast of the row NaN (the runtime ignores padding too)
            valid = (mask > 0).expand_as(x)
            level = torch.where(valid, x, 0.0).sum(1, keepdim=True) / mask.sum(1, keepdim=True)  # (B, 1, F)
            x = torch.where(valid, x - level, 0.0)
        output, state = self.rnn(self._embed(x), lengths=lengths)
        y = self.head(self.drop(_final_features(self.rnn, output, state, lengths)))
        y = y.view(-1, self.horizon, self.targets)
        if level is not None:
            y = y + level[:, :, : self.targets]
        return y[..., 0] if self.targets == 1 else y

    def config(self) -> dict[str, Any]:
        return {**self._base_config(), "horizon": self.horizon, "targets": self.targets,
                "instance_norm": self.instance_norm}


class SequenceTagger(_TaskModel):
    """One output per step: ``[Embedding] → RNN → Dense(n_classes)`` at every step.

    Serves ``--task tag`` (a label per token or frame) and ``--task ctc`` (per-frame
    scores over blank + characters, trained with CTC loss; class 0 is the blank). A
    unidirectional tagger is causal, so the native runtime can run it one frame at a
    time with the state carried (streaming recognition); a bidirectional one needs
    whole sequences.

    forward(x, lengths=None): x (B, T, F) float or (B, T) int64 → logits (B, T, n_classes).

    Example:
        >>> import torch
        >>> m = SequenceTagger(input_size=13, hidden_size=16, n_classes=12)
        >>> m(torch.randn(2, 50, 13)).shape
        torch.Size([2, 50, 12])
    """

    kind = "tagger"

    def __init__(self, n_classes: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.n_classes = int(n_classes)
        self.head = nn.Linear(self.rnn.output_size, n_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        output, _ = self.rnn(self._embed(x), lengths=lengths)  # (B, T, D*H)
        return self.head(self.drop(output))  # (B, T, n_classes)

    def forward_stream(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Chunk by chunk with the state carried (streaming in PyTorch): x (B, t, F) →
        (logits (B, t, n_classes), state). Unidirectional taggers only."""
        if getattr(self.rnn, "bidirectional", False):
            raise ValueError("a bidirectional tagger needs whole sequences; it cannot stream")
        output, state = self.rnn(self._embed(x), state)
        return self.head(output), state

    def macs_per_step(self) -> int:
        # the head runs at every step, unlike a classifier's
        return int(self.rnn.macs_per_step()) + self.head.in_features * self.head.out_features

    def config(self) -> dict[str, Any]:
        return {**self._base_config(), "n_classes": self.n_classes}


def _model_kinds() -> dict[str, type[nn.Module]]:
    from .seq2seq import Seq2Seq

    return {"classifier": SequenceClassifier, "lm": LanguageModel, "forecaster": Forecaster,
            "tagger": SequenceTagger, "seq2seq": Seq2Seq}


MODEL_KINDS: dict[str, type[nn.Module]] = _model_kinds()


def build_model(config: dict[str, Any]) -> nn.Module:
    """Rebuild a task model from its ``config()`` dict (what ``config.json`` stores).

    Example:
        >>> m = SequenceClassifier(input_size=6, hidden_size=16, n_classes=4)
        >>> build_model(m.config()).config() == m.config()
        True
    """
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(MODEL_KINDS)}")
    cls = MODEL_KINDS[kind]
    inits = [cls.__init__, _TaskModel.__init__] if issubclass(cls, _TaskModel) else [cls.__init__]
    known = set().union(*(inspect.signature(f).parameters for f in inits))
    unknown = set(config) - known - {"self", "kwargs"}
    if unknown:
        raise ValueError(f"unknown model option(s) {sorted(unknown)} for {kind}; known: "
                         f"{sorted(known - {'self', 'kwargs'})}")
    from ..typed import coerce_kwargs

    return cls(**coerce_kwargs(inits, config, "model"))
