"""Seq2seq models to ONNX: an encoder graph and a decoder-step graph.

Written with ``onnx.helper`` like :mod:`lstmlite.export.onnx` (standard ``LSTM`` / ``GRU``
operators, weights in ONNX gate order, weight-only quantized tensors as int8 / int4 codes +
``DequantizeLinear`` with ``quantize="qdq"``, int4 packed two per byte at opset 21 as
``export_onnx`` does). Batch B, source length T dynamic:

``encoder.onnx``
    inputs ``input`` (B, T) int64 source ids, ``lengths`` (B,) int64;
    outputs ``memory`` (B, T, C) encoder outputs, ``keys`` (B, T, K) what attention
    scores read (absent with ``attention="none"``), ``h0`` (L, B, Hd) the decoder's
    initial h (the bridge) and, for an LSTM, ``c0`` (zeros).

``decoder_step.onnx``
    inputs ``token`` (B,) int64 previous token, ``h`` (L, B, Hd) [``c``], ``memory``,
    [``keys``], ``lengths``; outputs ``logits`` (B, V), ``h_out`` [``c_out``].

A decoding loop (greedy or beam, :mod:`lstmlite.seq2seq`) feeds each step's ``h_out``
back as ``h``: :class:`OnnxSeq2Seq` does that in ONNX Runtime.

Example:
    >>> import tempfile
    >>> from lstmlite.nn import Seq2Seq
    >>> paths = export_seq2seq_onnx(Seq2Seq(vocab_size=20, embed_dim=8, hidden_size=16), tempfile.mkdtemp())
    >>> [p.name for p in paths]
    ['encoder.onnx', 'decoder_step.onnx']
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .onnx import (DEFAULT_OPSET, INT4_OPSET, _f32, _Graph, _int4_storage, _no_codes_reason, _quantized_weights,
                   _recurrent_stack, _stacked_codes, _version, _weight, check_opset, recurrent_layers_for_onnx)

__all__ = ["build_seq2seq_onnx", "export_seq2seq_onnx", "OnnxSeq2Seq", "check_seq2seq_onnx"]

log = logging.getLogger(__name__)

_NEG = -1.0e9  # masked attention score, as lstmlite.nn.seq2seq


def _linear3d(g: _Graph, x: str, model: Any, name: str, quant: dict, out_features: int, bias: bool) -> str:
    """nn.Linear on (B, T, F) as Gemm over the flattened steps (see export.onnx: not MatMul)."""
    module = model.get_submodule(name)
    flat = g.one("Reshape", [x, g.ints(f"{name}.flat", [-1, module.in_features])])
    inputs = [flat, _weight(g, f"{name}.weight", module.weight, quant, f"{name}.weight")]
    if bias:
        inputs.append(g.const(f"{name}.bias", _f32(module.bias)))
    y = g.one("Gemm", inputs, transB=1)
    bt = g.one("Slice", [g.one("Shape", [x]), g.ints(f"{name}.bt0", [0]), g.ints(f"{name}.bt1", [2])])
    return g.one("Reshape", [y, g.one("Concat", [bt, g.ints(f"{name}.out", [out_features])], axis=0)])


def _gemm(g: _Graph, x: str, model: Any, name: str, quant: dict) -> str:
    module = model.get_submodule(name)
    inputs = [x, _weight(g, f"{name}.weight", module.weight, quant, f"{name}.weight")]
    if module.bias is not None:
        inputs.append(g.const(f"{name}.bias", _f32(module.bias)))
    return g.one("Gemm", inputs, transB=1)


def _finish(g: _Graph, inputs: list, outputs: list, name: str, opset: int, model: Any, quant: dict) -> Any:
    import json

    import onnx
    from onnx import helper

    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="lstmlite",
                              producer_version=_version())
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    recorded = {"type": "Seq2Seq", "graph": name, "config": model.config(), "quantized": sorted(quant)}
    if _int4_storage(quant, g) is not None:  # as export_onnx: only when there are int4 codes
        recorded["int4"] = _int4_storage(quant, g)
    if g.int4_as_int8:
        log.warning("%s: %d int4 tensor(s) stored as int8 codes, one per byte: opset %d has no int4 "
                    "DequantizeLinear (opset %d or newer packs them two per byte)", name, g.int4_as_int8, opset,
                    INT4_OPSET)
    helper.set_model_props(proto, {"lstmlite.model_config": json.dumps(recorded)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def build_seq2seq_onnx(model: Any, opset: int | None = None, quantize: str | None = None) -> tuple[Any, Any]:
    """The (encoder, decoder step) ``ModelProto`` pair of a :class:`~lstmlite.nn.Seq2Seq`."""
    from onnx import TensorProto, helper

    check_opset(opset)  # as export_onnx: one line naming the range, before anything is built
    model = model.eval()
    if quantize not in (None, "qdq"):
        raise ValueError(f"quantize must be None or 'qdq', got {quantize!r}")
    # masked: a tensor pruned after it was quantized keeps its codes with the mask's zeros, as
    # export_onnx, the .lsl files and the native bundle store it
    quant = _quantized_weights(model) if quantize else {}
    if quantize and not quant:  # as export_onnx: a "QDQ" pair of float graphs would mislead
        raise ValueError(_no_codes_reason(model, "this seq2seq model's"))
    if opset is None:  # as export_onnx: the opset that packs int4 codes two per byte when there are any
        opset = INT4_OPSET if any(q.bits <= 4 for q in quant.values()) else DEFAULT_OPSET
    lstm = model.cell == "lstm"
    hd, layers = model.decoder_hidden_size, model.decoder.num_layers
    enc_c = model.encoder.output_size
    attention = model.attention
    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    info = helper.make_tensor_value_info

    # ----- encoder --------------------------------------------------------------------------
    g = _Graph(opset)
    table = _weight(g, "embedding.weight", model.embedding.weight, quant, "embedding.weight")
    x = g.one("Transpose", [g.one("Gather", [table, "input"], axis=0)], perm=[1, 0, 2])  # (T, B, E)
    seq_lens = g.one("Cast", ["lengths"], to=TensorProto.INT32)
    seq, states = _recurrent_stack(g, recurrent_layers_for_onnx(model.encoder), x, seq_lens, "encoder", quant,
                                   "encoder.")
    g.node("Transpose", [seq], outputs=["memory"], perm=[1, 0, 2])  # (B, T, C)
    outputs = [info("memory", f32, ["batch", "time", enc_c])]
    if attention != "none":
        if model.attn_key is None:  # dot scores read the encoder outputs themselves
            g.node("Identity", ["memory"], outputs=["keys"])
            key_size = enc_c
        else:
            key_size = model.attn_key.out_features
            g.node("Identity", [_linear3d(g, "memory", model, "attn_key", quant, key_size, False)],
                   outputs=["keys"])
        outputs.append(info("keys", f32, ["batch", "time", key_size]))
    # Y_h of the top layer: forward at each row's last valid step, backward at step 0
    summary = g.one("Reshape", [g.one("Transpose", [states[-1][0]], perm=[1, 0, 2]), g.ints("summary.bf", [0, -1])])
    h0 = g.one("Tanh", [_gemm(g, summary, model, "bridge", quant)])  # (B, L*Hd)
    h0 = g.one("Reshape", [h0, g.ints("h0.blh", [0, layers, hd])])
    g.node("Transpose", [h0], outputs=["h0"], perm=[1, 0, 2])  # (L, B, Hd)
    outputs.append(info("h0", f32, [layers, "batch", hd]))
    if lstm:
        g.node("Mul", ["h0", g.const("c0.zero", np.array(0.0, np.float32))], outputs=["c0"])
        outputs.append(info("c0", f32, [layers, "batch", hd]))
    encoder = _finish(g, [info("input", i64, ["batch", "time"]), info("lengths", i64, ["batch"])], outputs,
                      "encoder", opset, model, quant)

    # ----- decoder step ---------------------------------------------------------------------
    g = _Graph(opset)
    inputs = [info("token", i64, ["batch"]), info("h", f32, [layers, "batch", hd])]
    if lstm:
        inputs.append(info("c", f32, [layers, "batch", hd]))
    inputs.append(info("memory", f32, ["batch", "time", enc_c]))
    if attention != "none":
        inputs.append(info("keys", f32, ["batch", "time", key_size]))
    inputs.append(info("lengths", i64, ["batch"]))
    table = _weight(g, "embedding.weight", model.embedding.weight, quant, "embedding.weight")
    emb = g.one("Gather", [table, "token"], axis=0)  # (B, E)
    steps = g.one("Gather", [g.one("Shape", ["memory"]), g.ints("mask.time_axis", [1])], axis=0)
    t_range = g.one("Range", [g.const("mask.start", np.array(0, np.int64)),
                              g.one("Squeeze", [steps, g.ints("mask.axis0", [0])]),
                              g.const("mask.delta", np.array(1, np.int64))])
    valid = g.one("Less", [g.one("Unsqueeze", [t_range, g.ints("mask.t", [0])]),
                           g.one("Unsqueeze", ["lengths", g.ints("mask.b", [1])])])  # (B, T)

    def attend(query: str) -> str:
        if attention == "bahdanau":
            q = g.one("Unsqueeze", [_gemm(g, query, model, "attn_query", quant), g.ints("attn.q1", [1])])
            energy = g.one("Tanh", [g.one("Add", [q, "keys"])])  # (B, T, A)
            scores = _linear3d(g, energy, model, "attn_v", quant, 1, False)  # (B, T, 1)
            scores = g.one("Squeeze", [scores, g.ints("attn.s2", [2])])
        else:
            scores = g.one("Squeeze", [g.one("MatMul", ["keys", g.one("Unsqueeze", [query, g.ints("attn.q2", [2])])]),
                                       g.ints("attn.s2", [2])])  # (B, T)
        weights = g.one("Softmax", [g.one("Where", [valid, scores, g.const("attn.neg", np.array(_NEG, np.float32))])],
                        axis=-1)
        ctx = g.one("MatMul", [g.one("Unsqueeze", [weights, g.ints("attn.w1", [1])]), "memory"])  # (B, 1, C)
        return g.one("Squeeze", [ctx, g.ints("attn.c1", [1])])

    step_in = emb
    if attention == "bahdanau":
        top = g.one("Squeeze", [g.one("Gather", ["h", g.ints("h.top", [layers - 1])], axis=0),
                                g.ints("h.top_axis", [0])])  # (B, Hd)
        bctx = attend(top)
        step_in = g.one("Concat", [emb, bctx], axis=-1)
    x = g.one("Unsqueeze", [step_in, g.ints("dec.t", [0])])  # (1, B, I)
    h_outs, c_outs = [], []
    for k, layer in enumerate(recurrent_layers_for_onnx(model.decoder)):
        w, r, b = layer.onnx_tensors()
        mats = []
        for which, (label, dense) in enumerate((("W", w), ("R", r))):
            coded = _stacked_codes(layer, which, quant, "decoder.") if quant else None
            mats.append(g.const(f"decoder.{label}_l{k}", dense) if coded is None
                        else g.dequantized(f"decoder.{label}_l{k}", *coded))
        sl = [g.ints(f"dec.s{k}", [k]), g.ints(f"dec.e{k}", [k + 1])]
        h_k = g.one("Slice", ["h", *sl])
        node_in = [x, *mats, g.const(f"decoder.B_l{k}", b), "", h_k]
        if lstm:
            node_in.append(g.one("Slice", ["c", *sl]))
        outs = g.node(layer.op, node_in, n_out=3 if lstm else 2, name=f"decoder.{layer.op.lower()}_l{k}",
                      hidden_size=layer.hidden_size, **layer.attrs)
        x = g.one("Squeeze", [outs[0], g.ints(f"dec.y{k}", [1])])  # (1, 1, B, Hd) → (1, B, Hd)
        h_outs.append(outs[1])
        if lstm:
            c_outs.append(outs[2])
    s = g.one("Squeeze", [x, g.ints("dec.squeeze_t", [0])])  # (B, Hd)
    if attention == "none":
        logits = _gemm(g, s, model, "head", quant)
    else:
        ctx = attend(s) if attention == "luong" else bctx
        combined = g.one("Tanh", [_gemm(g, g.one("Concat", [ctx, s], axis=-1), model, "combine", quant)])
        logits = _gemm(g, combined, model, "head", quant)
    g.node("Identity", [logits], outputs=["logits"])
    outputs = [info("logits", f32, ["batch", model.vocab_size])]
    g.node("Concat", h_outs, outputs=["h_out"], axis=0)
    outputs.append(info("h_out", f32, [layers, "batch", hd]))
    if lstm:
        g.node("Concat", c_outs, outputs=["c_out"], axis=0)
        outputs.append(info("c_out", f32, [layers, "batch", hd]))
    decoder = _finish(g, inputs, outputs, "decoder_step", opset, model, quant)
    return encoder, decoder


def export_seq2seq_onnx(source: Any, out_dir: str | Path, opset: int | None = None,
                        quantize: str | None = None) -> list[Path]:
    """Write ``encoder.onnx`` and ``decoder_step.onnx`` into ``out_dir`` (see the module doc).

    Args:
        source: a :class:`~lstmlite.nn.Seq2Seq` or a run dir of one.
        out_dir: the folder to write (created).
        opset: ONNX opset (default 17, or 21 when ``quantize="qdq"`` meets int4 codes).
        quantize: ``"qdq"`` stores weight-quantized tensors as codes + DequantizeLinear: int8
            codes as INT8, int4 (2-4-bit) codes as ONNX INT4, two per byte, at opset 21 or newer
            (at an older explicit opset as INT8, with a warning), as :func:`~lstmlite.export.onnx.export_onnx`.

    Returns:
        the two paths, each written to a temporary name and renamed.
    """
    import onnx

    model = source
    if not hasattr(source, "encoder"):  # a run dir
        from ..io import load_run

        model = load_run(source).model
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, proto in zip(("encoder.onnx", "decoder_step.onnx"), build_seq2seq_onnx(model, opset, quantize)):
        tmp = out / f".{name}.tmp"
        onnx.save_model(proto, str(tmp))
        tmp.replace(out / name)
        paths.append(out / name)
    log.info("wrote %s", ", ".join(map(str, paths)))
    return paths


class OnnxSeq2Seq:
    """Greedy / beam decoding with the two graphs in ONNX Runtime.

    Example:
        >>> import tempfile, numpy as np
        >>> from lstmlite.nn import Seq2Seq
        >>> folder = tempfile.mkdtemp()
        >>> _ = export_seq2seq_onnx(Seq2Seq(vocab_size=20, embed_dim=8, hidden_size=16, max_target_len=4), folder)
        >>> len(OnnxSeq2Seq(folder).decode(np.array([[5, 6]]), np.array([2]))[0]) <= 4
        True
    """

    def __init__(self, folder: str | Path) -> None:
        import json

        import onnx

        from .onnx import _onnxruntime_session

        folder = Path(folder)
        self.encoder = _onnxruntime_session(folder / "encoder.onnx")
        self.decoder = _onnxruntime_session(folder / "decoder_step.onnx")
        meta = {p.key: p.value for p in onnx.load(str(folder / "encoder.onnx")).metadata_props}
        self.config = json.loads(meta["lstmlite.model_config"])["config"]
        self.lstm = self.config["cell"] == "lstm"
        self.keys = self.config["attention"] != "none"

    def encode(self, x: np.ndarray, lengths: np.ndarray) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """→ (memory feeds, [h0 (L, B, Hd), c0])."""
        x = np.asarray(x, np.int64)[:, : int(np.max(lengths))]
        names = [o.name for o in self.encoder.get_outputs()]
        outs = dict(zip(names, self.encoder.run(None, {"input": x, "lengths": np.asarray(lengths, np.int64)})))
        memory = {"memory": outs["memory"], "lengths": np.asarray(lengths, np.int64)}
        if self.keys:
            memory["keys"] = outs["keys"]
        return memory, [outs["h0"], outs["c0"]] if self.lstm else [outs["h0"]]

    def step(self, tokens: np.ndarray, state: list[np.ndarray], memory: dict[str, np.ndarray]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
        """tokens (K,) → (logits (K, V), new state); memory rows match the K tokens."""
        feeds = {"token": np.asarray(tokens, np.int64), "h": state[0], **memory}
        if self.lstm:
            feeds["c"] = state[1]
        outs = self.decoder.run(None, feeds)
        return outs[0], list(outs[1:])

    def decode(self, x: np.ndarray, lengths: np.ndarray, decoder: str = "greedy", beam: int = 4,
               max_len: int | None = None) -> list[list[int]]:
        from ..seq2seq import beam_search, decode_limits, greedy_search

        if decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder must be greedy or beam, got {decoder!r}")
        max_len = decode_limits(max_len, 0, self.config["max_target_len"])
        memory, state = self.encode(x, lengths)
        out = []
        for row in range(len(x)):
            mem = {k: v[row:row + 1] for k, v in memory.items()}
            st = [s[:, row:row + 1] for s in state]

            def step(tokens: np.ndarray, s: list, mem: dict = mem) -> tuple[np.ndarray, list]:
                rows = np.zeros(len(tokens), np.int64)
                logits, s = self.step(tokens, s, {k: v[rows] for k, v in mem.items()})
                z = logits - logits.max(-1, keepdims=True)
                return z - np.log(np.exp(z).sum(-1, keepdims=True)), s

            if decoder == "greedy":
                out.append(greedy_search(step, st, 2, 3, max_len))
            else:
                out.append(beam_search(step, st, lambda s, i: [t[:, i] for t in s], 2, 3, beam, max_len)[0])
        return out


def check_seq2seq_onnx(model: Any, folder: str | Path, x: np.ndarray, lengths: np.ndarray) -> float:
    """Largest abs difference between ONNX Runtime's and the model's teacher-forced step
    logits over a batch (each step fed the model's own greedy token)."""
    from .seq2seq import _greedy_step_difference

    return _greedy_step_difference(model, OnnxSeq2Seq(folder), x, lengths, log_probs=False)
