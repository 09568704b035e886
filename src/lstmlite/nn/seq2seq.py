"""Encoder–decoder with attention (``--task seq2seq``): :class:`Seq2Seq`.

Tokens of one shared vocabulary (``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2, ``</s>`` 3, then
the data's tokens) go through one embedding into

* an **encoder**: LSTM or GRU, optionally bidirectional, outputs H_i (B, T, C), C = D*H;
* a **bridge**: the decoder's initial hidden state of every layer,
  ``tanh(W_b [h_fwd_last; h_bwd_first] + b)`` (c_0 = 0 for an LSTM);
* a **decoder**: LSTM or GRU fed the previous target token, and an attention named by
  ``attention``:

  - ``luong`` (Luong et al. 2015, no input feeding): s_t = RNN(E y_{t-1}, s_{t-1});
    score_i = s_t^T W_a H_i (``score="general"``) or s_t^T H_i (``score="dot"``,
    needs C == decoder hidden size); a = softmax over the valid source steps;
    ctx_t = Σ a_i H_i; h~_t = tanh(W_c [ctx_t; s_t]); logits = W_o h~_t + b_o.
  - ``bahdanau`` (Bahdanau et al. 2015, additive): score_i = v^T tanh(W_q s_{t-1} + b_q
    + W_k H_i); ctx_t as above; s_t = RNN([E y_{t-1}; ctx_t], s_{t-1}); the same
    h~_t and logits.
  - ``none``: s_t = RNN(E y_{t-1}, s_{t-1}); logits = W_o s_t (the bridge carries the
    whole source).

Every piece is a standard lstmlite LSTM/GRU, ``nn.Linear`` or ``nn.Embedding``, so the
compression methods apply to encoder, decoder and attention alike.

Training is teacher-forced (:meth:`Seq2Seq.forward`); decoding goes one step at a time
(:meth:`Seq2Seq.step`) under :mod:`lstmlite.seq2seq`'s greedy and beam search.

Example:
    >>> import torch
    >>> m = Seq2Seq(vocab_size=20, embed_dim=8, hidden_size=16, attention="bahdanau")
    >>> x = torch.randint(4, 20, (3, 7)); y = torch.randint(4, 20, (3, 5))
    >>> m(x, torch.tensor([7, 5, 2]), y).shape
    torch.Size([3, 5, 20])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .layers import GRU, LSTM

__all__ = ["Seq2Seq", "Memory", "ATTENTIONS", "SCORES", "BOS_ID", "EOS_ID", "SEQ2SEQ_SPECIALS", "select_state"]

ATTENTIONS = ("luong", "bahdanau", "none")
SCORES = ("general", "dot")
#: the specials after ``<pad>`` (0) and ``<unk>`` (1) in a seq2seq vocabulary
SEQ2SEQ_SPECIALS = ("<s>", "</s>")
BOS_ID, EOS_ID = 2, 3
_NEG = -1.0e9  # a masked score: exp underflows to exactly 0 in float32

DecoderState = list[Any]  # per decoder layer: LSTM (h (1, B, H), c (1, B, H)); GRU h (1, B, H)


@dataclass
class Memory:
    """What the decoder attends to, computed once per source batch.

    Attributes:
        values: (B, T, C) encoder outputs H_i.
        keys: (B, T, K) what the score reads: W_a H_i (luong general), H_i (dot),
            W_k H_i (bahdanau), or None (no attention).
        mask: (B, T) bool, True on valid source steps.
    """

    values: Tensor
    keys: Tensor | None
    mask: Tensor

    def select(self, index: Tensor) -> Memory:
        """Rows ``index`` (hypotheses of a beam share one source row)."""
        return Memory(self.values[index], None if self.keys is None else self.keys[index], self.mask[index])


def select_state(state: DecoderState, index: Tensor) -> DecoderState:
    """Decoder state rows ``index`` (B',) of the batch dimension."""
    return [tuple(t[:, index] for t in s) if isinstance(s, tuple) else s[:, index] for s in state]


def _masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """softmax over the last axis of scores (..., T) where mask (B, T) is True."""
    while mask.dim() < scores.dim():
        mask = mask.unsqueeze(1)
    return scores.masked_fill(~mask, _NEG).softmax(-1)


class Seq2Seq(nn.Module):
    """Attention encoder–decoder over one token vocabulary (see the module doc).

    Args:
        vocab_size: tokens, specials included (``<pad> <unk> <s> </s>`` first).
        embed_dim: embedding size E (shared by encoder and decoder).
        cell: ``lstm`` | ``gru`` (encoder and decoder).
        hidden_size: encoder units per direction H.
        num_layers: encoder layers.
        bidirectional: a bidirectional encoder (C = 2H).
        decoder_hidden_size: decoder units (default: ``hidden_size``).
        decoder_layers: decoder layers.
        attention: ``luong`` | ``bahdanau`` | ``none``.
        score: Luong's score, ``general`` (s^T W_a H) or ``dot`` (s^T H).
        attention_size: Bahdanau's hidden size A (default: decoder hidden size).
        dropout: dropout on embeddings and on h~ in training.
        max_target_len: the decoding length limit (tokens before ``</s>``), filled in
            from the training targets.

    forward(x, lengths, y): x (B, T) source ids, lengths (B,), y (B, S) target ids
    ending in ``</s>`` (0-padded) → teacher-forced logits (B, S, V).
    """

    kind = "seq2seq"

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        cell: str = "lstm",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        decoder_hidden_size: int = 0,
        decoder_layers: int = 1,
        attention: str = "luong",
        score: str = "general",
        attention_size: int = 0,
        dropout: float = 0.0,
        max_target_len: int = 64,
        input_size: int = 0,
    ) -> None:
        super().__init__()
        if input_size:
            raise ValueError("a seq2seq model reads token ids (vocab_size), not features (input_size)")
        if cell not in ("lstm", "gru"):
            raise ValueError(f"a seq2seq model's cell must be lstm or gru, got {cell!r}")
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
        if score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
        if vocab_size < 5 or embed_dim < 1 or hidden_size < 1 or max_target_len < 1:
            raise ValueError("vocab_size must be at least 5 (4 specials and a token); embed_dim, hidden_size "
                             "and max_target_len at least 1")
        # Named here: the layers would blame num_layers / hidden_size, or torch a negative dimension.
        for name, value, low in (("num_layers", num_layers, 1), ("decoder_layers", decoder_layers, 1),
                                 ("decoder_hidden_size", decoder_hidden_size, 0),
                                 ("attention_size", attention_size, 0)):
            if value < low:
                raise ValueError(f"{name} must be at least {low}{' (0: the default)' if low == 0 else ''}, "
                                 f"got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layer = LSTM if cell == "lstm" else GRU
        self.vocab_size, self.embed_dim, self.cell = int(vocab_size), int(embed_dim), cell
        self.attention, self.score, self.dropout = attention, score, float(dropout)
        self.max_target_len = int(max_target_len)
        dec_h = int(decoder_hidden_size) or int(hidden_size)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.encoder = layer(embed_dim, hidden_size, num_layers=num_layers, bidirectional=bool(bidirectional))
        enc_c = self.encoder.output_size  # C
        self.bridge = nn.Linear(enc_c, dec_h * decoder_layers)
        dec_in = embed_dim + (enc_c if attention == "bahdanau" else 0)
        self.decoder = layer(dec_in, dec_h, num_layers=decoder_layers)
        if attention == "luong" and score == "general":
            self.attn_key = nn.Linear(enc_c, dec_h, bias=False)  # W_a
        elif attention == "luong":
            if enc_c != dec_h:
                raise ValueError(f"dot attention needs the encoder output size ({enc_c}) to equal the decoder's "
                                 f"hidden size ({dec_h}); use score=general or set decoder_hidden_size={enc_c}")
            self.attn_key = None
        elif attention == "bahdanau":
            size = int(attention_size) or dec_h
            self.attn_key = nn.Linear(enc_c, size, bias=False)  # W_k
            self.attn_query = nn.Linear(dec_h, size)  # W_q, b_q
            self.attn_v = nn.Linear(size, 1, bias=False)  # v
        else:
            self.attn_key = None
        self.combine = nn.Linear(enc_c + dec_h, dec_h, bias=False) if attention != "none" else None  # W_c
        self.head = nn.Linear(dec_h, vocab_size)  # W_o, b_o
        self.drop = nn.Dropout(dropout)

    # ----- config ------------------------------------------------------------------
    @property
    def decoder_hidden_size(self) -> int:
        return int(self.decoder.hidden_size)

    def config(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "vocab_size": self.vocab_size, "embed_dim": self.embed_dim, "cell": self.cell,
            "hidden_size": int(self.encoder.hidden_size), "num_layers": int(self.encoder.num_layers),
            "bidirectional": bool(self.encoder.bidirectional), "decoder_hidden_size": self.decoder_hidden_size,
            "decoder_layers": int(self.decoder.num_layers), "attention": self.attention, "score": self.score,
            "attention_size": int(self.attn_v.in_features) if self.attention == "bahdanau" else 0,
            "dropout": self.dropout, "max_target_len": self.max_target_len,
        }

    def params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def macs_per_step(self) -> int:
        """Decoder MACs per output token (recurrent layers, attention combine, head),
        the attention scores counted for one source step."""
        macs = int(self.decoder.macs_per_step()) + self.head.in_features * self.head.out_features
        if self.combine is not None:
            macs += self.combine.in_features * self.combine.out_features
        return macs

    # ----- encoder -----------------------------------------------------------------
    def encode(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Memory, DecoderState]:
        """Source ids x (B, T) → (:class:`Memory`, the decoder's initial state)."""
        if x.dim() != 2:
            raise ValueError(f"source must be (B, T) token ids, got shape {tuple(x.shape)}")
        if lengths is None:
            lengths = (x != 0).sum(1).clamp(min=1)
        lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
        x = x[:, : int(lengths.max())]
        values, _ = self.encoder(self.drop(self.embedding(x)), lengths=lengths)  # (B, T, C)
        mask = torch.arange(values.shape[1])[None, :] < lengths[:, None]  # (B, T)
        mask = mask.to(values.device)
        return Memory(values, self._keys(values), mask), self.initial_state(values, lengths)

    def _keys(self, values: Tensor) -> Tensor | None:
        if self.attention == "none":
            return None
        return values if self.attn_key is None else self.attn_key(values)

    def summary(self, values: Tensor, lengths: Tensor) -> Tensor:
        """(B, C) source summary: last valid forward output, first backward output."""
        rows = torch.arange(values.shape[0], device=values.device)
        last = (torch.as_tensor(lengths, device=values.device) - 1).clamp(min=0)
        h = self.encoder.hidden_sizes[-1]
        if self.encoder.bidirectional:
            return torch.cat([values[rows, last, :h], values[:, 0, h:]], dim=-1)
        return values[rows, last]

    def initial_state(self, values: Tensor, lengths: Tensor) -> DecoderState:
        """Decoder state of every layer from the bridge: h = tanh(W_b summary + b), c = 0."""
        h0 = torch.tanh(self.bridge(self.summary(values, lengths)))  # (B, L*Hd)
        hd = self.decoder_hidden_size
        state: DecoderState = []
        for k in range(self.decoder.num_layers):
            h = h0[:, k * hd:(k + 1) * hd].unsqueeze(0).contiguous()  # (1, B, Hd)
            state.append((h, torch.zeros_like(h)) if self.cell == "lstm" else h)
        return state

    # ----- attention -----------------------------------------------------------------
    def attend(self, query: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """Context and weights for queries (B, S, Hd): → ctx (B, S, C), weights (B, S, T)."""
        if self.attention == "bahdanau":
            # v^T tanh(W_q q + b_q + W_k H): (B, S, 1, A) + (B, 1, T, A) → (B, S, T)
            energy = torch.tanh(self.attn_query(query).unsqueeze(2) + memory.keys.unsqueeze(1))
            scores = self.attn_v(energy).squeeze(-1)
        else:
            scores = query @ memory.keys.transpose(1, 2)  # (B, S, T)
        weights = _masked_softmax(scores, memory.mask)
        return weights @ memory.values, weights

    @staticmethod
    def _top(state: DecoderState) -> Tensor:
        """The top decoder layer's h (B, Hd)."""
        top = state[-1]
        return (top[0] if isinstance(top, tuple) else top)[0]

    def _output(self, s: Tensor, ctx: Tensor | None) -> Tensor:
        if self.combine is None:
            return self.head(self.drop(s))
        return self.head(self.drop(torch.tanh(self.combine(torch.cat([ctx, s], dim=-1)))))

    # ----- decoding --------------------------------------------------------------------
    def step(self, token: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoder step: previous tokens (B,) → (logits (B, V), new state, attention
        weights (B, T) or None)."""
        emb = self.drop(self.embedding(token)).unsqueeze(1)  # (B, 1, E)
        weights = None
        if self.attention == "bahdanau":
            ctx, weights = self.attend(self._top(state).unsqueeze(1), memory)  # (B, 1, C)
            emb = torch.cat([emb, ctx], dim=-1)
        out, state = self.decoder(emb, state)  # (B, 1, Hd)
        s = out[:, 0]
        if self.attention == "luong":
            ctx, weights = self.attend(s.unsqueeze(1), memory)
        logits = self._output(s, None if self.attention == "none" else ctx[:, 0])
        return logits, state, None if weights is None else weights[:, 0]

    def forward(self, x: Tensor, lengths: Tensor | None, y: Tensor) -> Tensor:
        """Teacher forcing: the decoder reads ``<s>`` then y's tokens → logits (B, S, V)."""
        memory, state = self.encode(x, lengths)
        prev = torch.cat([torch.full_like(y[:, :1], BOS_ID), y[:, :-1]], dim=1)  # (B, S)
        if self.attention == "bahdanau":  # the context depends on s_{t-1}: one step at a time
            logits = []
            for t in range(prev.shape[1]):
                step_logits, state, _ = self.step(prev[:, t], state, memory)
                logits.append(step_logits)
            return torch.stack(logits, dim=1)
        out, _ = self.decoder(self.drop(self.embedding(prev)), state)  # (B, S, Hd): one fused call
        ctx = self.attend(out, memory)[0] if self.attention == "luong" else None
        return self._output(out, ctx)
