"""Seq2seq decoding over the native runtime: encoder and decoder steps in C, attention
in NumPy, greedy and beam search from :mod:`lstmlite.seq2seq`.

:class:`NativeSeq2Seq` loads the bundle :func:`lstmlite.export.seq2seq.export_seq2seq_lsl`
writes. The C runtime has no attention operator, so per output token it runs

1. (Bahdanau) the attention over the encoder outputs with the previous decoder h, NumPy;
2. the decoder's recurrent step in the runtime (:meth:`Engine.step`, batch = live
   hypotheses, state carried as NumPy arrays between calls);
3. (Luong) the attention with the new h, then W_c and the output layer, NumPy.

The encoder is one :meth:`Engine.run` over the embedded source (bidirectional layers
included).

Example:
    >>> import tempfile, numpy as np
    >>> from lstmlite.nn import Seq2Seq
    >>> from lstmlite.export.seq2seq import export_seq2seq_lsl
    >>> folder = tempfile.mkdtemp()
    >>> _ = export_seq2seq_lsl(Seq2Seq(vocab_size=20, embed_dim=8, hidden_size=16, max_target_len=5), folder)
    >>> native = NativeSeq2Seq(folder)
    >>> len(native.decode(np.array([[5, 6, 7]]), np.array([3]))[0]) <= 5
    True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .engine import Engine, _lengths, token_ids
from .lsl import unpack_nibbles

__all__ = ["NativeSeq2Seq"]

_BOS, _EOS = 2, 3  # lstmlite.nn.seq2seq.BOS_ID / EOS_ID (the runtime imports no torch code)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


class NativeSeq2Seq:
    """A seq2seq bundle loaded into the native runtime (see the module doc).

    Args:
        folder: holds ``encoder.lsl``, ``decoder.lsl`` and ``seq2seq.safetensors``.
        activations: the engines' activations (``float`` or ``dynamic``, see :class:`Engine`).
    """

    def __init__(self, folder: str | Path, activations: str = "float") -> None:
        from safetensors import safe_open

        folder = Path(folder)
        for name in ("encoder.lsl", "decoder.lsl", "seq2seq.safetensors"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder / name}: missing; export the run with "
                                        "`lstmlite export RUN --format lsl --out DIR`")
        self.encoder = Engine((folder / "encoder.lsl").read_bytes(), activations=activations)
        self.decoder = Engine((folder / "decoder.lsl").read_bytes(), activations=activations)
        with safe_open(str(folder / "seq2seq.safetensors"), framework="numpy") as f:
            self.config: dict[str, Any] = json.loads(f.metadata()["lstmlite.seq2seq"])
            int4_cols = json.loads(f.metadata().get("lstmlite.int4_cols", "{}"))
            raw = {k: f.get_tensor(k) for k in f.keys()}
        self.w: dict[str, np.ndarray] = {}
        for key, value in raw.items():
            if key.endswith(".codes"):
                base = key[: -len(".codes")]
                self.w[base] = value.astype(np.float32) * raw[f"{base}.scale"][:, None]
            elif key.endswith(".codes4"):  # int4 codes, two per byte
                base = key[: -len(".codes4")]
                codes = unpack_nibbles(value, int(int4_cols[base]))
                self.w[base] = codes.astype(np.float32) * raw[f"{base}.scale"][:, None]
            elif not key.endswith(".scale"):
                self.w[key] = value.astype(np.float32)
        for key in [k for k in self.w if k.endswith(".u")]:  # a low-rank tensor: W = U V
            base = key[: -len(".u")]
            self.w[base] = self.w.pop(key) @ self.w.pop(f"{base}.v")
        self.attention = self.config["attention"]
        self.lstm = self.config["cell"] == "lstm"
        self.hd = int(self.config["decoder_hidden_size"])
        self.layers = int(self.config["decoder_layers"])
        self.max_target_len = int(self.config["max_target_len"])
        self._states: dict[int, Any] = {}

    # ----- pieces -------------------------------------------------------------------------
    def _linear(self, name: str, x: np.ndarray) -> np.ndarray:
        y = x @ self.w[f"{name}.weight"].T
        bias = self.w.get(f"{name}.bias")
        return y if bias is None else y + bias

    def encode(self, x: np.ndarray, lengths: np.ndarray) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Source ids x (B, T), lengths (B,) → (memory: values (B, T, C), keys, mask (B, T);
        initial decoder state: per layer h (B, Hd) [and c])."""
        # checked, not cast: NumPy's lookup below takes id -1 as the last embedding row
        # and a float id 4.7 as 4, and decodes the wrong source silently
        x = token_ids(x, self.w["embedding.weight"].shape[0]).astype(np.int64)
        if x.ndim != 2:
            raise ValueError(f"expected (B, T) source token ids, got shape {x.shape}")
        lengths = _lengths(lengths, x.shape[0], x.shape[1]).astype(np.int64)
        steps = int(lengths.max())
        emb = self.w["embedding.weight"][x[:, :steps]]  # (B, T, E)
        values = self.encoder.run(np.ascontiguousarray(emb, np.float32), lengths=lengths)  # (B, T, C)
        mask = np.arange(steps)[None, :] < lengths[:, None]
        keys = None
        if self.attention != "none":
            keys = values @ self.w["attn_key.weight"].T if "attn_key.weight" in self.w else values
        h = int(self.config["hidden_size"])
        rows = np.arange(len(x))
        if self.config["bidirectional"]:
            summary = np.concatenate([values[rows, lengths - 1, :h], values[:, 0, h:]], axis=-1)
        else:
            summary = values[rows, lengths - 1]
        h0 = np.tanh(self._linear("bridge", summary))  # (B, L*Hd)
        state = []
        for k in range(self.layers):
            hk = np.ascontiguousarray(h0[:, k * self.hd:(k + 1) * self.hd], np.float32)
            state += [hk, np.zeros_like(hk)] if self.lstm else [hk]
        return {"values": values, "keys": keys, "mask": mask}, state

    def _attend(self, query: np.ndarray, memory: dict[str, np.ndarray]) -> np.ndarray:
        """query (K, Hd) → context (K, C)."""
        if self.attention == "bahdanau":
            energy = np.tanh((query @ self.w["attn_query.weight"].T + self.w["attn_query.bias"])[:, None, :]
                             + memory["keys"])  # (K, T, A)
            scores = energy @ self.w["attn_v.weight"][0]  # (K, T)
        else:
            scores = np.einsum("kth,kh->kt", memory["keys"], query)
        weights = _softmax(np.where(memory["mask"], scores, -1.0e9))
        return np.einsum("kt,ktc->kc", weights, memory["values"])

    def _stream(self, batch: int):
        if batch not in self._states:
            self._states[batch] = self.decoder.new_state(batch)
        return self._states[batch]

    def step(self, tokens: np.ndarray, state: list[np.ndarray], memory: dict[str, np.ndarray]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One decoder step for K hypotheses: tokens (K,) → (log-probabilities (K, V), new state).

        ``memory`` rows must match the K hypotheses (see :meth:`decode`)."""
        k = len(tokens)
        emb = self.w["embedding.weight"][np.asarray(tokens, np.int64)]  # (K, E)
        top = state[-2] if self.lstm else state[-1]  # the top layer's h: (K, Hd)
        if self.attention == "bahdanau":
            emb = np.concatenate([emb, self._attend(top, memory)], axis=-1)
        stream = self._stream(k)
        # the runtime's layout (lsl.h): per layer, h (K x H) then c (K x H)
        stream._set(np.concatenate([s.reshape(-1) for s in state]))  # states the runtime computed
        s = self.decoder.step(np.ascontiguousarray(emb, np.float32), stream).reshape(k, self.hd)
        flat = stream.values()
        size = k * self.hd
        new_state = [flat[i * size:(i + 1) * size].reshape(k, self.hd) for i in range(len(state))]
        if self.attention == "none":
            logits = self._linear("head", s)
        else:
            if self.attention == "luong":
                ctx = self._attend(s, memory)
            else:
                ctx = emb[:, -memory["values"].shape[-1]:]
            logits = self._linear("head", np.tanh(np.concatenate([ctx, s], axis=-1) @ self.w["combine.weight"].T))
        return _log_softmax(logits), new_state

    # ----- decoding -----------------------------------------------------------------------
    def decode(self, x: np.ndarray, lengths: np.ndarray, decoder: str = "greedy", beam: int = 4,
               max_len: int | None = None, min_len: int = 0) -> list[list[int]]:
        """Token ids per source row (``</s>`` dropped), by greedy or beam search over the
        runtime's decoder step; ``max_len`` defaults to the model's ``max_target_len``."""
        from ..seq2seq import beam_search, decode_limits, greedy_search

        if decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder must be greedy or beam, got {decoder!r}")
        max_len = decode_limits(max_len, min_len, self.max_target_len)
        memory, state = self.encode(x, lengths)
        out = []
        for row in range(len(memory["values"])):
            mem = {k: None if v is None else v[row:row + 1] for k, v in memory.items()}
            st = [s[row:row + 1] for s in state]

            def step(tokens: np.ndarray, s: list[np.ndarray], mem: dict = mem) -> tuple[np.ndarray, Any]:
                rows = np.zeros(len(tokens), np.int64)
                return self.step(tokens, s, {k: None if v is None else v[rows] for k, v in mem.items()})

            def reorder(s: list[np.ndarray], index: np.ndarray) -> list[np.ndarray]:
                return [t[index] for t in s]

            if decoder == "greedy":
                out.append(greedy_search(step, st, _BOS, _EOS, max_len, min_len))
            else:
                out.append(beam_search(step, st, reorder, _BOS, _EOS, beam, max_len, min_len)[0])
        return out
