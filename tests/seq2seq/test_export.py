"""Seq2seq deployment: the ONNX encoder + decoder-step graphs in ONNX Runtime and the
native bundle (runtime LSTM/GRU steps + NumPy attention) against the PyTorch model,
float and int8; the bundle's bytes are the run's size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite.compress import compress_
from lstmlite.compress.quantize import WeightQuantConfig
from lstmlite.export.onnx_seq2seq import OnnxSeq2Seq, check_seq2seq_onnx, export_seq2seq_onnx
from lstmlite.export.seq2seq import check_seq2seq_lsl, export_seq2seq_lsl
from lstmlite.export.size import account
from lstmlite.nn import Seq2Seq
from lstmlite.runtime.seq2seq import NativeSeq2Seq

from .conftest import native_vs_torch

VARIANTS = [
    dict(attention="luong", score="general", cell="lstm", bidirectional=True),
    dict(attention="luong", score="dot", cell="gru", bidirectional=True, decoder_hidden_size=16),
    dict(attention="bahdanau", cell="lstm", bidirectional=False, decoder_layers=2),
    dict(attention="none", cell="gru", bidirectional=True, num_layers=2),
]


def _model(quantized: bool, **kw) -> Seq2Seq:
    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=15, embed_dim=6, hidden_size=8, max_target_len=6, **kw).eval()
    with torch.no_grad():  # sharper than the initialisation, so argmax decisions are clear
        for p in model.parameters():
            p.mul_(2.5)
    if quantized:
        compress_(model, WeightQuantConfig(bits=8))
    return model


def _batch():
    rng = np.random.default_rng(1)
    x = rng.integers(4, 15, size=(5, 7))
    lengths = np.array([7, 5, 3, 1, 6])
    x[np.arange(7)[None, :] >= lengths[:, None]] = 0
    return x, lengths


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['attention']}-{v['cell']}")
def test_onnx_and_native_match_pytorch(tmp_path, variant, quantized):
    from lstmlite.seq2seq import decode_torch

    model = _model(quantized, **variant)
    x, lengths = _batch()
    export_seq2seq_onnx(model, tmp_path / "onnx", quantize="qdq" if quantized else None)
    assert check_seq2seq_onnx(model, tmp_path / "onnx", x, lengths) < 1e-4
    paths = export_seq2seq_lsl(model, tmp_path / "lsl")
    native = NativeSeq2Seq(tmp_path / "lsl")
    assert native_vs_torch(model, native, x, lengths) < 1e-4
    # the same search over each engine's step gives the same outputs
    for decoder in ("greedy", "beam"):
        expected = decode_torch(model, x, lengths, decoder, beam=3)
        assert native.decode(x, lengths, decoder, beam=3) == expected
        assert OnnxSeq2Seq(tmp_path / "onnx").decode(x, lengths, decoder, beam=3) == expected
        # min_len and a max_len below the model's bound the outputs as PyTorch's search does
        long = decode_torch(model, x, lengths, decoder, beam=3, min_len=4)
        assert native.decode(x, lengths, decoder, beam=3, min_len=4) == long
        assert max(map(len, long)) > 4  # the premise: max_len=4 cuts some output
        short = decode_torch(model, x, lengths, decoder, beam=3, min_len=4, max_len=4)
        assert native.decode(x, lengths, decoder, beam=3, min_len=4, max_len=4) == short
    # size_bytes is the three files' bytes
    assert account(model).size_bytes == sum(p.stat().st_size for p in paths)


def test_int8_bundle_is_smaller_and_stores_codes(tmp_path):
    from safetensors.numpy import load_file

    def big():
        return Seq2Seq(vocab_size=40, embed_dim=32, hidden_size=64, attention="bahdanau")

    plain = account(big()).size_bytes
    model = compress_(big(), WeightQuantConfig(bits=8))
    assert account(model).size_bytes < plain / 3  # 4x on the matrices; scales and biases stay fp32
    export_seq2seq_lsl(model, tmp_path)
    side = load_file(str(tmp_path / "seq2seq.safetensors"))
    for name in ("embedding.weight", "attn_key.weight", "attn_query.weight", "combine.weight", "head.weight",
                 "bridge.weight"):
        assert side[f"{name}.codes"].dtype == np.int8 and f"{name}" not in side


def _onnx_gate_order(codes: np.ndarray, cell: str) -> np.ndarray:
    """PyTorch's gate blocks (LSTM i,f,g,o / GRU r,z,n) in ONNX's order (i,o,f,c / z,r,h), written out."""
    blocks = np.split(codes, 4 if cell == "lstm" else 3)
    return np.concatenate([blocks[i] for i in ((0, 3, 1, 2) if cell == "lstm" else (1, 0, 2))])


@pytest.mark.parametrize("variant", [VARIANTS[0], VARIANTS[2], VARIANTS[1]],
                         ids=lambda v: f"{v['attention']}-{v['cell']}")
def test_int4_model_exports_int4_codes_that_onnx_runtime_runs(tmp_path, variant, caplog):
    """The `int4` recipe step on a seq2seq model, exported with quantize="qdq": every tensor the
    compression quantized is an ONNX INT4 initializer (opset 21, chosen for it) holding the
    compression's own codes, packed two per byte, and its codes + fp32 scales cost what
    `stored_bytes` says int4 costs; ONNX Runtime computes the quantized model's step logits and
    decodes what PyTorch decodes."""
    import onnx

    from lstmlite.compress.quantize import quantized_tensors, stored_bytes
    from lstmlite.compress.recipe import parse_recipe
    from lstmlite.export.onnx import read_export_metadata
    from lstmlite.seq2seq import decode_torch

    model = _model(False, **variant)
    compress_(model, parse_recipe({"steps": [{"method": "int4"}]}).steps[0].config())
    ours = quantized_tensors(model)
    assert ours and {q.bits for q in ours.values()} == {4}
    paths = export_seq2seq_onnx(model, tmp_path / "q4", quantize="qdq")
    stored = {}  # ONNX name → (codes tensor, scale tensor, zero point tensor), both graphs
    for path in paths:
        proto = onnx.load(str(path))
        assert proto.opset_import[0].version == 21
        assert read_export_metadata(path)["int4"] == "int4"
        inits = {i.name: i for i in proto.graph.initializer}
        for name, init in inits.items():
            if name.endswith(".codes"):
                base = name[: -len(".codes")]
                stored[base] = (init, inits[f"{base}.scale"], inits[f"{base}.zero_point"])
        assert sum(n.op_type == "DequantizeLinear" for n in proto.graph.node) == \
            sum(n.endswith(".codes") for n in inits)
    # where each quantized parameter lands: Linear / embedding weights by name, the recurrent
    # matrices as the W / R inputs of the LSTM / GRU node, directions stacked
    expected = {}
    for name, q in ours.items():
        part, _, leaf = name.partition(".")
        if part in ("encoder", "decoder"):
            kind, layer = leaf.split("_l")
            label = "W" if kind == "weight_ih" else "R"
            key = f"{part}.{label}_l{layer.removesuffix('_reverse')}"
            expected.setdefault(key, []).append((layer.endswith("_reverse"), q))
        else:
            expected[name] = [(False, q)]
    assert set(stored) == set(expected)
    for key, parts in expected.items():
        codes, scale, zero = stored[key]
        parts = [q for _, q in sorted(parts, key=lambda p: p[0])]  # forward first, then reverse
        want = np.concatenate([_onnx_gate_order(q.codes.numpy(), model.cell) if key.startswith(("encoder.", "decoder."))
                               else q.codes.numpy()
                               for q in parts])
        assert codes.data_type == onnx.TensorProto.INT4 and zero.data_type == onnx.TensorProto.INT4
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(codes).reshape(want.shape), want)
        assert not onnx.numpy_helper.to_array(zero).any()
        # two codes per byte, one fp32 scale per row: what the compression counts for int4
        assert len(codes.raw_data) == (want.size + 1) // 2
        assert len(codes.raw_data) + 4 * int(np.prod(scale.dims)) == \
            sum(stored_bytes(q.codes.shape, 4) for q in parts)
    x, lengths = _batch()
    assert check_seq2seq_onnx(model, tmp_path / "q4", x, lengths) < 1e-4
    for decoder in ("greedy", "beam"):
        assert OnnxSeq2Seq(tmp_path / "q4").decode(x, lengths, decoder, beam=3) == \
            decode_torch(model, x, lengths, decoder, beam=3)
    # an explicit older opset widens the codes to int8, says so, and records it
    with caplog.at_level("WARNING", logger="lstmlite.export"):
        wide = export_seq2seq_onnx(model, tmp_path / "q8", opset=17, quantize="qdq")
    assert "stored as int8 codes" in caplog.text
    for path in wide:
        proto = onnx.load(str(path))
        assert read_export_metadata(path)["int4"] == "int8"
        assert {i.data_type for i in proto.graph.initializer if i.name.endswith(".codes")} == {onnx.TensorProto.INT8}
    assert check_seq2seq_onnx(model, tmp_path / "q8", x, lengths) < 1e-4


def test_int4_bundle_packs_side_codes_two_per_byte(tmp_path):
    """An int4 model's bundle stores each quantized tensor outside the recurrent layers (embedding,
    attention, bridge, combine, head) as its own int4 codes packed two per byte (low nibble first)
    + fp32 per-row scales, no float copy, so those tensors cost what stored_bytes says int4 costs
    and the whole bundle (the run's size_bytes) is smaller than the same model's int8 bundle; the
    native runtime decodes what PyTorch decodes from it."""
    from safetensors.numpy import load_file

    from lstmlite.compress.quantize import quantized_tensors, stored_bytes
    from lstmlite.seq2seq import decode_torch

    def big(bits):
        torch.manual_seed(0)
        # odd widths: rows of odd length end in a padding nibble
        return compress_(Seq2Seq(vocab_size=40, embed_dim=31, hidden_size=63, attention="bahdanau",
                                 max_target_len=6).eval(), WeightQuantConfig(bits=bits))

    model = big(4)
    paths = export_seq2seq_lsl(model, tmp_path)
    side = load_file(str(tmp_path / "seq2seq.safetensors"))
    coded = {k: q for k, q in quantized_tensors(model).items() if not k.startswith(("encoder.", "decoder."))}
    assert set(coded) == {"embedding.weight", "attn_key.weight", "attn_query.weight", "attn_v.weight",
                          "combine.weight", "head.weight", "bridge.weight"}
    for name, q in coded.items():
        packed = side[f"{name}.codes4"]
        rows, cols = q.codes.shape
        assert packed.dtype == np.uint8 and packed.shape == (rows, (cols + 1) // 2) and name not in side
        low, high = (packed & 0xF).astype(np.int8), (packed >> 4).astype(np.int8)
        nibbles = np.stack([low, high], -1).reshape(rows, -1)[:, :cols]
        np.testing.assert_array_equal(np.where(nibbles >= 8, nibbles - 16, nibbles), q.codes.numpy())
        assert packed.nbytes + side[f"{name}.scale"].nbytes == stored_bytes(q.codes.shape, 4)
    sizes = account(model).size_bytes
    assert sizes == sum(p.stat().st_size for p in paths)
    assert sizes < account(big(8)).size_bytes * 0.6  # 8 → 4 bits on every matrix; scales, biases stay fp32
    x, lengths = _batch()
    native = NativeSeq2Seq(tmp_path)
    assert native_vs_torch(model, native, x, lengths) < 1e-4
    assert native.decode(x, lengths, "beam", beam=3) == decode_torch(model, x, lengths, "beam", beam=3)


def test_qdq_needs_a_quantized_model(tmp_path):
    """quantize="qdq" on a float seq2seq model is refused naming what to do, as export_onnx refuses
    it (docs/interop.md), and writes nothing; catches the float pair written silently as if QDQ, and a
    model whose only codes are low-rank factors (written as the float product) being told to quantize
    what it did quantize."""
    from torch.nn.utils import parametrize

    from lstmlite.compress.lowrank.config import LowRankConfig

    with pytest.raises(ValueError, match="needs a model with quantized weights"):
        export_seq2seq_onnx(_model(False, **VARIANTS[0]), tmp_path / "q", quantize="qdq")
    assert not (tmp_path / "q").exists() or not any((tmp_path / "q").iterdir())
    factored = compress_(_model(False, **VARIANTS[0]), LowRankConfig(rank=2))
    compress_(factored, WeightQuantConfig(bits=8), filter=lambda fqn, module, name: parametrize.is_parametrized(
        module, name))  # only the factors are quantized
    with pytest.raises(ValueError, match=r"^quantize='qdq': none of this seq2seq model's quantized tensors .*low-rank "
                                         r"factor.*--format lsl"):
        export_seq2seq_onnx(factored, tmp_path / "p", quantize="qdq")
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


@pytest.mark.parametrize("where", ["head", "encoder"])
def test_the_checks_see_a_model_that_differs_from_its_files(tmp_path, where):
    """The checks the CLI holds to ``--tolerance`` report a difference when the files are not the
    model's: one output bias moved by 0.5 after export is seen as 0.5 in the ONNX pair's logits
    and as a log-probability change in the bundle, a scaled encoder as a change in both; catches a
    check that compares the runner with itself, reads a stale model, or returns 0."""
    model = _model(False, **VARIANTS[0])
    x, lengths = _batch()
    export_seq2seq_onnx(model, tmp_path / "onnx")
    export_seq2seq_lsl(model, tmp_path / "lsl")
    assert check_seq2seq_onnx(model, tmp_path / "onnx", x, lengths) < 1e-4  # the premise: same model
    with torch.no_grad():
        if where == "head":
            model.head.bias[3] += 0.5
        else:
            model.encoder.weight_ih_l0.mul_(1.5)
    onnx_error = check_seq2seq_onnx(model, tmp_path / "onnx", x, lengths)
    assert onnx_error >= 0.5 - 1e-4 if where == "head" else onnx_error > 1e-2
    assert check_seq2seq_lsl(model, tmp_path / "lsl", x, lengths) > 1e-2


@pytest.mark.parametrize("source,error", [([[-1, 5, 6]], "token id -1 is outside this model's vocabulary"),
                                          ([[15, 5, 6]], "token id 15 is outside this model's vocabulary"),
                                          ([[4.7, 5.0, 6.0]], "integer token ids")],
                         ids=["negative", "past-vocab", "float"])
def test_native_bundle_refuses_source_ids_outside_the_vocabulary(tmp_path, source, error):
    """The bundle looks source ids up in NumPy, where -1 is the last embedding row and a
    float 4.7 indexes (after a cast) row 4: such a source decoded silently as another
    sentence, where PyTorch's nn.Embedding raises. Refused as the runtime's Engine
    refuses token ids, naming the id; a valid source still decodes as PyTorch does."""
    from lstmlite.seq2seq import decode_torch

    model = _model(False, **VARIANTS[0])
    export_seq2seq_lsl(model, tmp_path / "lsl")
    native = NativeSeq2Seq(tmp_path / "lsl")
    with pytest.raises(ValueError, match=error):
        native.decode(np.array(source), np.array([3]))
    good = np.array([[4, 5, 6]])
    assert native.decode(good, [3]) == decode_torch(model, good, np.array([3]))


@pytest.mark.parametrize("limits,error", [(dict(max_len=0), "max_len must be a whole number of tokens, at least 1, got 0"),
                                          (dict(max_len=-1), "at least 1, got -1"),
                                          (dict(max_len=2.5), "at least 1, got 2.5"),
                                          (dict(min_len=-1), "min_len must be a whole number of tokens, at least 0")])
def test_every_decoder_refuses_a_length_limit_it_cannot_keep(tmp_path, limits, error):
    """PyTorch's, the native bundle's and the ONNX pair's decode refuse max_len 0 (read as the
    model's default) and -1 (decoded nothing), as beam_search already refused them; None still
    means the model's max_target_len."""
    from lstmlite.seq2seq import decode_torch

    model = _model(False, **VARIANTS[0])
    x, lengths = _batch()
    export_seq2seq_lsl(model, tmp_path / "lsl")
    export_seq2seq_onnx(model, tmp_path / "onnx")
    runners = [lambda **kw: decode_torch(model, x, lengths, **kw), NativeSeq2Seq(tmp_path / "lsl").decode,
               OnnxSeq2Seq(tmp_path / "onnx").decode]
    for decode in runners[:2]:
        for decoder in ("greedy", "beam"):
            with pytest.raises(ValueError, match=error):
                decode(**({} if decode is runners[0] else {"x": x, "lengths": lengths}), decoder=decoder, **limits)
    if "min_len" not in limits:  # the ONNX pair's decode takes no min_len
        with pytest.raises(ValueError, match=error):
            runners[2](x, lengths, "beam", **limits)
    assert decode_torch(model, x, lengths, max_len=None) == decode_torch(model, x, lengths, max_len=model.max_target_len)


def test_every_decoder_refuses_a_decoder_name_it_does_not_know(tmp_path):
    """PyTorch's, the native bundle's and the ONNX pair's decode name the two decoders when
    given another ("Greedy", a typo): the ONNX pair's ran beam search for any name but
    "greedy", so a mistyped greedy quietly decoded another way."""
    from lstmlite.seq2seq import decode_torch

    model = _model(False, **VARIANTS[0])
    x, lengths = _batch()
    export_seq2seq_lsl(model, tmp_path / "lsl")
    export_seq2seq_onnx(model, tmp_path / "onnx")
    for decode in (lambda *a: decode_torch(model, *a), NativeSeq2Seq(tmp_path / "lsl").decode,
                   OnnxSeq2Seq(tmp_path / "onnx").decode):
        with pytest.raises(ValueError, match="decoder must be greedy or beam, got 'Greedy'"):
            decode(x, lengths, "Greedy")


def _without_eos() -> tuple[Seq2Seq, np.ndarray, np.ndarray]:
    """A model that never emits </s> or another special (their biases pushed down by 30),
    so every output runs to max_target_len (5), and 8 sources of 5 tokens."""
    torch.manual_seed(0)
    model = Seq2Seq(vocab_size=7, embed_dim=6, hidden_size=8, max_target_len=5, attention="luong").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.5)
        model.head.bias[:4] -= 30.0
    return model, np.random.default_rng(0).integers(4, 7, size=(8, 5)), np.full(8, 5)

def test_every_decoder_searches_with_the_beam_width_it_is_given(tmp_path):
    """A model whose width-1 and width-4 beams disagree on a row (</s> and the other
    specials pushed out, so every output runs to max_len and only the search decides):
    the native bundle's and the ONNX pair's beam decode equal PyTorch's at each width.
    Catches: an engine's decode searching with a fixed width whatever ``beam`` says."""
    from lstmlite.seq2seq import decode_torch

    model, x, lengths = _without_eos()
    export_seq2seq_lsl(model, tmp_path / "lsl")
    export_seq2seq_onnx(model, tmp_path / "onnx")
    native, onnx_pair = NativeSeq2Seq(tmp_path / "lsl"), OnnxSeq2Seq(tmp_path / "onnx")
    by_width = {beam: decode_torch(model, x, lengths, "beam", beam=beam) for beam in (1, 4)}
    assert by_width[1] != by_width[4]  # the premise: the width changes an output
    for beam, expected in by_width.items():
        assert native.decode(x, lengths, "beam", beam=beam) == expected
        assert onnx_pair.decode(x, lengths, "beam", beam=beam) == expected


def test_every_decoder_stops_at_the_max_len_it_is_given(tmp_path):
    """Outputs that would run to the model's max_target_len (5) stop at a max_len of 3 in
    PyTorch's, the native bundle's and the ONNX pair's greedy and beam decode, with the
    same tokens. Catches: an engine's decode ignoring max_len (the model's bound used)."""
    from lstmlite.seq2seq import decode_torch

    model, x, lengths = _without_eos()
    export_seq2seq_lsl(model, tmp_path / "lsl")
    export_seq2seq_onnx(model, tmp_path / "onnx")
    native, onnx_pair = NativeSeq2Seq(tmp_path / "lsl"), OnnxSeq2Seq(tmp_path / "onnx")
    for decoder in ("greedy", "beam"):
        assert {len(r) for r in decode_torch(model, x, lengths, decoder, beam=2)} == {5}
        expected = decode_torch(model, x, lengths, decoder, beam=2, max_len=3)
        assert {len(r) for r in expected} == {3}
        assert native.decode(x, lengths, decoder, beam=2, max_len=3) == expected
        assert onnx_pair.decode(x, lengths, decoder, beam=2, max_len=3) == expected


def test_the_onnx_pair_export_refuses_an_opset_or_quantize_it_does_not_write(tmp_path):
    """export_seq2seq_onnx refuses, as export_onnx does and before anything is written, an opset
    below 14 (one line naming the range) and a quantize value other than None / "qdq" -- even
    on a quantized model that "qdq" would export. Catches either check dropped (opset 13 then
    writes a pair; quantize="int8" writes a QDQ pair as if "qdq" had been asked)."""
    quantized = _model(True, **VARIANTS[0])
    with pytest.raises(ValueError, match="opset 13 is too old; lstmlite writes opsets 14 to"):
        export_seq2seq_onnx(_model(False, **VARIANTS[0]), tmp_path / "old", opset=13)
    with pytest.raises(ValueError, match="quantize must be None or 'qdq', got 'int8'"):
        export_seq2seq_onnx(quantized, tmp_path / "int8", quantize="int8")
    for folder in ("old", "int8"):
        assert not (tmp_path / folder).exists() or not any((tmp_path / folder).iterdir())


@pytest.mark.parametrize("fault", ["second_step_off", "token_ignored"])
def test_the_onnx_check_compares_every_step_along_the_greedy_path(tmp_path, monkeypatch, fault):
    """check_seq2seq_onnx compares the pair's step logits with the model's at every step (up to
    max_target_len, 6 here), each step fed the model's own greedy token. A decoder step that is
    wrong only at its second call (one logit +0.5), or one that reads BOS whatever token it is
    given, must be reported: catches a check that compares the first step only, keeps only the
    last step's difference, or feeds BOS at every step (so a runner ignoring its tokens looks
    right)."""
    from lstmlite.nn.seq2seq import BOS_ID

    model = _model(False, **VARIANTS[0])
    x, lengths = _batch()
    export_seq2seq_onnx(model, tmp_path)
    assert check_seq2seq_onnx(model, tmp_path, x, lengths) < 1e-4  # the premise: the files are the model
    real_step, calls = OnnxSeq2Seq.step, []

    def step(self, tokens, state, memory):
        calls.append(np.array(tokens))
        if fault == "token_ignored":
            tokens = np.full_like(tokens, BOS_ID)
        logits, state = real_step(self, tokens, state, memory)
        if fault == "second_step_off" and len(calls) == 2:
            logits = logits.copy()
            logits[:, 5] += 0.5
        return logits, state

    monkeypatch.setattr(OnnxSeq2Seq, "step", step)
    difference = check_seq2seq_onnx(model, tmp_path, x, lengths)
    assert len(calls) == model.max_target_len == 6
    if fault == "second_step_off":
        assert difference >= 0.5 - 1e-4
    else:
        assert any((c != BOS_ID).any() for c in calls)  # the premise: the greedy path leaves BOS
        assert difference > 1e-2


def test_the_bundle_check_compares_log_probabilities_with_the_models(tmp_path):
    """check_seq2seq_lsl holds the native bundle's step outputs, which are log-probabilities, to
    the model's log_softmax: a correct bundle checks at float rounding, as the ONNX pair's logits
    check does. Catches the bundle's log-probabilities compared with the model's raw logits (a
    correct bundle then fails the CLI's --tolerance by the log-partition, several units)."""
    from lstmlite.nn.seq2seq import BOS_ID

    model = _model(False, **VARIANTS[2])
    x, lengths = _batch()
    export_seq2seq_lsl(model, tmp_path)
    with torch.no_grad():
        memory, state = model.encode(torch.as_tensor(x), torch.as_tensor(lengths))
        logits = model.step(torch.full((len(x),), BOS_ID), state, memory)[0]
    assert float(torch.logsumexp(logits, -1).abs().min()) > 0.1  # the premise: logits are not log-probabilities
    assert check_seq2seq_lsl(model, tmp_path, x, lengths) < 1e-4


def test_only_an_int4_bundle_names_int4_columns_in_its_side_file(tmp_path):
    """seq2seq.safetensors records ``lstmlite.int4_cols`` only when it holds int4 codes, so
    float and int8 bundles keep the bytes they had before int4 side codes existed (read with
    safetensors' own metadata reader). Catches the key written into every bundle."""
    from safetensors import safe_open

    for weights, quantized in ((None, False), ("int8", False), (None, True)):
        folder = tmp_path / f"{weights}-{quantized}"
        export_seq2seq_lsl(_model(quantized, attention="luong", score="general"), folder, weights=weights)
        with safe_open(str(folder / "seq2seq.safetensors"), framework="numpy") as f:
            metadata = f.metadata()
        assert "lstmlite.seq2seq" in metadata and "lstmlite.int4_cols" not in metadata, (weights, quantized)


def test_a_bundle_the_runtime_cannot_load_is_not_written(tmp_path, monkeypatch):
    """export_seq2seq_lsl loads each .lsl image into the runtime before writing any file: a
    decoder image the runtime refuses leaves the folder without a single file (no encoder.lsl
    beside a missing decoder). Fault injected: Engine refuses the second image it is given.
    Catches the pre-write load dropped."""
    import lstmlite.runtime.engine as engine_module

    real, seen = engine_module.Engine, []

    def refusing(data, *args, **kwargs):
        seen.append(len(data))
        if len(seen) == 2:
            raise ValueError("the runtime refuses this file")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(engine_module, "Engine", refusing)
    with pytest.raises(ValueError, match="the runtime refuses this file"):
        export_seq2seq_lsl(_model(False, attention="luong", score="general"), tmp_path / "out")
    assert len(seen) == 2 and list((tmp_path / "out").iterdir()) == []


def test_a_bundle_rounds_floats_when_only_its_decoder_is_float():
    """rounds_float_weights asks both .lsl files: a model whose encoder holds its own int8
    codes and whose decoder is float rounds the decoder under weights="int8" (True), and not
    under "fp32" or when both hold codes. Catches the encoder asked alone."""
    from lstmlite.export.seq2seq import rounds_float_weights

    model = _model(False, attention="luong", score="general")
    compress_(model, WeightQuantConfig(bits=8), filter=lambda fqn, module, name: fqn.startswith("encoder"))
    assert rounds_float_weights(model, "int8")
    assert not rounds_float_weights(model, "fp32")
    assert not rounds_float_weights(_model(True, attention="luong", score="general"), "int8")
