"""FastGRNN in ONNX (a Scan of standard operators) and int4 DequantizeLinear, run in ONNX Runtime.

Oracles: ONNX Runtime, an independent implementation of every operator in the graph,
against our PyTorch model on the same inputs (dynamic batch/time, padded batches);
the compression package's own integer codes for what the file stores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lstmlite import compress  # noqa: E402
from lstmlite.compress import quantize  # noqa: E402
from lstmlite.export.onnx import INT4_OPSET, METADATA_KEY, export_onnx  # noqa: E402
from lstmlite.nn import LSTM, Forecaster, LanguageModel, SequenceClassifier  # noqa: E402
from lstmlite.nn.cells import FastGRNN  # noqa: E402

#: what a FastGRNN graph may contain: no recurrent op, no custom op
STANDARD_OPS = {"MatMul", "Add", "Sub", "Mul", "Sigmoid", "Tanh", "Where", "Cast", "Identity", "Scan", "Transpose",
                "Shape", "Gather", "Concat", "ConstantOfShape", "Unsqueeze", "Squeeze", "Range", "Less", "Reshape",
                "Gemm", "DequantizeLinear", "ReduceSum", "ReduceMax", "Div", "Max", "Slice", "ReduceMean"}

MODELS = {
    "classifier": lambda: SequenceClassifier(input_size=4, cell="fastgrnn", hidden_size=6, n_classes=3),
    "two_layers_lowrank_tanh_gate_mean": lambda: SequenceClassifier(
        input_size=4, cell="fastgrnn", hidden_size=[6, 5], num_layers=2, n_classes=3, pooling="mean",
        rnn_options={"wrank": 2, "urank": 3, "gate_nonlinearity": "tanh", "update_nonlinearity": "sigmoid"}),
    "language_model": lambda: LanguageModel(vocab_size=20, embed_dim=5, cell="fastgrnn", hidden_size=7),
    "forecaster": lambda: Forecaster(input_size=4, cell="fastgrnn", hidden_size=6, horizon=3),
    "bare_layer": lambda: FastGRNN(4, [6, 5], num_layers=2, urank=2),
}


def _randomised(model):
    """EdgeML's init (biases 1, ν ≈ 0) hides mistakes in the bias / ζ / ν terms: spread them."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() < 2:
                p.normal_(0.0, 0.7)
    return model.eval()


def _run_both(model, session, batch, steps, generator):
    lm = isinstance(model, LanguageModel)
    if getattr(model, "embedding", None) is not None:
        x = torch.randint(0, model.embedding.num_embeddings, (batch, steps), generator=generator)
    else:
        x = torch.randn(batch, steps, getattr(model, "rnn", model).input_size, generator=generator)
    feeds = {"input": x.numpy()}
    lengths = None
    if "lengths" in [i.name for i in session.get_inputs()]:
        lengths = torch.clamp(steps - 2 * torch.arange(batch), min=1)
        feeds["lengths"] = lengths.numpy()
    with torch.no_grad():
        if lm:
            ours = [model(x)[0]]
        elif not hasattr(model, "head"):
            out, states = model(x)
            ours = [out, *states]
        else:
            ours = [model(x, lengths)]
    return session.run(None, feeds), [t.numpy() for t in ours]


def _close(got, expected, rel):
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= rel * max(1.0, float(np.max(np.abs(expected))))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fastgrnn_exports_as_a_scan_of_standard_ops(name, tmp_path):
    torch.manual_seed(0)
    model = _randomised(MODELS[name]())
    path = export_onnx(model, tmp_path / "f.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    scans = [n for n in proto.graph.node if n.op_type == "Scan"]
    assert len(scans) == len(getattr(model, "rnn", model).hidden_sizes)  # one Scan per layer
    body_ops = {n.op_type for s in scans for n in s.attribute[0].g.node}
    assert {"MatMul", "Sigmoid", "Tanh"} <= body_ops
    assert {n.op_type for n in proto.graph.node} | body_ops <= STANDARD_OPS
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(1)
    for batch, steps in [(3, 7), (1, 2), (5, 11)]:  # dynamic axes, padded batches
        got, expected = _run_both(model, session, batch, steps, generator)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            _close(g, e, 1e-5)


def _compressed_fastgrnn(bits):
    """The fastgrnn-tiny form: factored W and U, half the weights pruned, then quantized."""
    torch.manual_seed(0)
    model = _randomised(SequenceClassifier(input_size=12, cell="fastgrnn", hidden_size=32, n_classes=9,
                                           rnn_options={"wrank": 4, "urank": 8}))
    compress.compress_(model, compress.MagnitudePruneConfig(sparsity=0.5))
    compress.compress_(model, quantize.WeightQuantConfig(bits=bits))
    return model.eval()


def _session(path, level):
    """``level`` "basic": the graph as written; "all": ONNX Runtime's default, with the
    fusions a deployment gets (e.g. DequantizeLinear + MatMul → MatMulNBits with int8
    activations, which the export must not trigger)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _codes(proto):
    return {i.name[:-len(".codes")]: i for i in proto.graph.initializer if i.name.endswith(".codes")}


def test_int4_weights_are_stored_as_onnx_int4(tmp_path):
    model = _compressed_fastgrnn(bits=4)
    path = export_onnx(model, tmp_path / "q4.onnx", quantize="qdq")  # opset chosen for int4
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == INT4_OPSET
    codes = _codes(proto)
    ours = quantize.quantized_tensors(model)
    assert set(codes) == set(ours)  # every quantized matrix, the low-rank factors included
    for name, tensor in codes.items():
        assert tensor.data_type == onnx.TensorProto.INT4
        assert len(tensor.raw_data) == (ours[name].codes.numel() + 1) // 2  # two codes per byte
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(tensor), ours[name].codes.numpy())
    assert json.loads(proto.metadata_props[0].value)["int4"] == "int4"
    for level in ("basic", "all"):
        got, expected = _run_both(model, _session(path, level), 4, 9, torch.Generator().manual_seed(2))
        _close(got[0], expected[0], 1e-5)


def test_int4_falls_back_to_int8_codes_before_opset_21(tmp_path, caplog):
    model = _compressed_fastgrnn(bits=4)
    packed = export_onnx(model, tmp_path / "q4.onnx", quantize="qdq")
    with caplog.at_level("WARNING", logger="lstmlite.export.onnx"):
        wide = export_onnx(model, tmp_path / "q8.onnx", quantize="qdq", opset=17)
    assert "int4 tensor(s) stored as int8 codes" in caplog.text
    proto = onnx.load(str(wide))
    assert all(t.data_type == onnx.TensorProto.INT8 for t in _codes(proto).values())
    assert json.loads(proto.metadata_props[0].value)["int4"] == "int8"
    stored = sum(q.codes.numel() for q in quantize.quantized_tensors(model).values())
    # the int8 form holds one byte per code, the packed form half of that
    assert wide.stat().st_size - packed.stat().st_size >= stored // 2 - 8
    got, expected = _run_both(model, _session(wide, "all"), 3, 6, torch.Generator().manual_seed(3))
    _close(got[0], expected[0], 1e-5)


def test_int8_fastgrnn_keeps_int8_codes_at_the_default_opset(tmp_path):
    model = _compressed_fastgrnn(bits=8)
    path = export_onnx(model, tmp_path / "q8.onnx", quantize="qdq")
    # the deployed form (all of ONNX Runtime's fusions) computes what the model computes
    got, expected = _run_both(model, _session(path, "all"), 4, 9, torch.Generator().manual_seed(4))
    _close(got[0], expected[0], 1e-5)
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == 17
    assert all(t.data_type == onnx.TensorProto.INT8 for t in _codes(proto).values())
    assert "int4" not in json.loads(proto.metadata_props[0].value)


def test_a_form_that_cannot_be_exported_fails_with_one_line_naming_layer_and_nearest_form(tmp_path):
    with pytest.raises(NotImplementedError) as err:
        export_onnx(SequenceClassifier(input_size=4, hidden_size=6, n_classes=2, rnn_options={"proj_size": 3}),
                    tmp_path / "p.onnx")
    message = str(err.value)
    assert "\n" not in message and "rnn (LSTM, proj_size=3)" in message and "nearest exportable form" in message
    assert not (tmp_path / "p.onnx").exists()
    with pytest.raises(NotImplementedError, match="nearest exportable form"):
        export_onnx(LSTM(4, 6, proj_size=3), tmp_path / "p.onnx")


def test_metadata_names_the_scan_form(tmp_path):
    model = MODELS["classifier"]()
    proto = onnx.load(str(export_onnx(model, tmp_path / "f.onnx")))
    props = {p.key: p.value for p in proto.metadata_props}
    assert "Scan" in props["lstmlite.note"]
    assert json.loads(props[METADATA_KEY])["config"]["cell"] == "fastgrnn"


def test_a_fastgrnn_file_is_refused_by_the_importer_in_one_line(tmp_path):
    from lstmlite.importers.onnx import ModelImportError, import_onnx

    path = export_onnx(MODELS["classifier"](), tmp_path / "f.onnx")
    with pytest.raises(ModelImportError, match="Scan loop .* import the run dir"):
        import_onnx(path)


def test_a_bare_layer_with_lengths_zeroes_padded_outputs_and_keeps_each_rows_last_state(tmp_path):
    """A bare FastGRNN stack exported with a lengths input: past each row's length the output is
    0 and the state stays the row's last valid one (h_n per layer), as the PyTorch layer gives;
    a row of length 2 of 7 steps makes both visible. Catches the Scan body's padded step output
    left as the carried state (no mask product) or the state updated on padded steps (no
    Where), and the lengths ignored altogether."""
    model = _randomised(FastGRNN(4, [6, 5], num_layers=2, urank=2))
    path = export_onnx(model, tmp_path / "l.onnx", lengths=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 7, 4, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([7, 4, 2])
    got = session.run(None, {"input": x.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        out, states = model(x, lengths=lengths)
    assert not out[2, 2:].any()  # the premise: the layer zeroes padded steps
    for g, e in zip(got, [out, *states], strict=True):
        _close(g, e.numpy(), 1e-5)
