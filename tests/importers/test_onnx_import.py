"""Whole-graph ONNX import: graphs written by PyTorch's exporters and in tf2onnx's style.

Oracles: the PyTorch module the graph was exported from, and ONNX Runtime running
the graph itself. PyTorch graphs come from both exporters: the TorchScript one
(``dynamo=False``) and the dynamo one (``dynamo=True``, torch.onnx.export's default
since torch 2.9, which needs onnxscript).
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lstmlite.importers import ModelImportError  # noqa: E402
from lstmlite.importers.onnx import UnsupportedOnnxError, import_onnx  # noqa: E402
from lstmlite.io import load_run  # noqa: E402
from lstmlite.nn import LanguageModel, SequenceClassifier  # noqa: E402

VOCAB = 30


class TextModel(nn.Module):
    """What PyTorch users write: Embedding → nn.LSTM/GRU → Linear on the final state."""

    def __init__(self, gru: bool = False, bidirectional: bool = False, batch_first: bool = True,
                 read: str = "state", per_step: bool = False) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 6)
        self.rnn = (nn.GRU if gru else nn.LSTM)(6, 5, num_layers=2, batch_first=batch_first,
                                                bidirectional=bidirectional)
        self.fc = nn.Linear(10 if bidirectional else 5, VOCAB if per_step else 3)
        self.read, self.batch_first, self.bidirectional, self.per_step = read, batch_first, bidirectional, per_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, state = self.rnn(self.emb(x))
        if self.per_step:
            return self.fc(out)
        h = state if isinstance(self.rnn, nn.GRU) else state[0]
        if self.read == "state":
            features = torch.cat([h[-2], h[-1]], 1) if self.bidirectional else h[-1]
        else:  # the output at the last step
            features = out[:, -1] if self.batch_first else out[-1]
        return torch.softmax(self.fc(features), -1)


def _export(module: nn.Module, example: torch.Tensor, exporter: str = "torchscript",
            batch_first: bool = True) -> onnx.ModelProto:
    """The graph of ``module`` from PyTorch's TorchScript or dynamo exporter, batch and time axes dynamic.

    The dynamo exporter is kept quiet (verbose=False: no progress lines; its warnings and
    torch.onnx's log records below ERROR); an export that fails still raises.
    """
    if exporter == "torchscript":
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), (example,), buffer, dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "d0", 1: "d1"}})
        return onnx.load_from_string(buffer.getvalue())
    pytest.importorskip("onnxscript")  # the dev extra installs it
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    axes = {0: batch, 1: time} if batch_first else {0: time, 1: batch}
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module.eval(), (example,), dynamo=True, dynamic_shapes=(axes,),
                                        verbose=False)
    finally:
        logger.setLevel(level)
    return program.model_proto


EXPORTERS = pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])


@pytest.mark.parametrize("kwargs", [
    {},
    {"gru": True, "bidirectional": True, "batch_first": False},
    {"read": "output"},
    {"per_step": True, "gru": True},
    {"per_step": True, "batch_first": False},
], ids=["lstm", "bigru-time-major", "lstm-last-output", "gru-lm", "lstm-lm-time-major"])
@EXPORTERS
def test_pytorch_exported_graph(kwargs: dict, exporter: str) -> None:
    """Both exporters' graphs import and reproduce the module on a new batch and length. The
    dynamo graph computes the Reshape sizes between layers from Shape → Slice → Concat, which
    must not be read as pooling (before, gru-lm came back as a classifier at the last step),
    and its time-major LM output is fixed at the example's 4 steps (a torch 2.13 exporter
    bug: the graph runs at 4 steps only; before, the import died in a raw reshape error)."""
    torch.manual_seed(0)
    module = TextModel(**kwargs)
    batch_first = kwargs.get("batch_first", True)
    shape = (2, 4) if batch_first else (4, 2)
    model = import_onnx(_export(module, torch.randint(0, VOCAB, shape), exporter, batch_first))
    assert isinstance(model, LanguageModel if kwargs.get("per_step") else SequenceClassifier)
    x = torch.randint(0, VOCAB, (3, 9))  # a new batch and length: the import is not tied to the example
    with torch.no_grad():
        expected = module(x if batch_first else x.T)
        ours = model(x)
    if kwargs.get("per_step"):
        ours = ours[0] if batch_first else ours[0].transpose(0, 1)
        assert model.import_info["output_activation"] is None
    else:
        ours = torch.softmax(ours, -1)
        assert model.import_info["output_activation"] == "softmax"
    assert model.import_info["input_layout"] == ("batch_first" if batch_first else "time_major")
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("exporter", ["torchscript", pytest.param("dynamo", marks=pytest.mark.slow)])
def test_bidirectional_read_at_last_output_is_refused(exporter: str) -> None:
    """out[:, -1] of a bidirectional layer gives the backward direction after one step,
    which no lstmlite pooling computes: the verification must catch it."""
    torch.manual_seed(0)
    module = TextModel(bidirectional=True, read="output")
    graph = _export(module, torch.randint(0, VOCAB, (2, 4)), exporter)
    with pytest.raises(ModelImportError, match="does not reproduce"):
        import_onnx(graph)


class FeatureModel(nn.Module):
    """A float-input model (no embedding) as PyTorch users write one: nn.LSTM/GRU on (B, T, F)
    features (or (T, B, F)), then a Linear on the last layer's final state (``read="state"``,
    optionally run from zero states built in forward), on the mean or max over time, or on
    every step (``read="steps"``, a tagger)."""

    def __init__(self, gru: bool = False, bidirectional: bool = False, batch_first: bool = True,
                 read: str = "state", outputs: int = 3, zero_state: bool = False) -> None:
        super().__init__()
        self.rnn = (nn.GRU if gru else nn.LSTM)(4, 5, num_layers=2, batch_first=batch_first,
                                                bidirectional=bidirectional)
        self.fc = nn.Linear(10 if bidirectional else 5, outputs)
        self.read, self.batch_first, self.zero_state = read, batch_first, zero_state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = None
        if self.zero_state:
            h0 = x.new_zeros(self.rnn.num_layers * (2 if self.rnn.bidirectional else 1),
                             x.shape[0 if self.batch_first else 1], self.rnn.hidden_size)
            state = h0 if isinstance(self.rnn, nn.GRU) else (h0, torch.zeros_like(h0))
        out, final = self.rnn(x, state)
        time = 1 if self.batch_first else 0
        if self.read == "steps":
            return self.fc(out)
        if self.read == "mean":
            return self.fc(out.mean(time))
        if self.read == "max":
            return self.fc(out.amax(time))
        h = final if isinstance(self.rnn, nn.GRU) else final[0]
        return self.fc(torch.cat([h[-2], h[-1]], 1) if self.rnn.bidirectional else h[-1])


FEATURE_CASES = {  # id: (FeatureModel kwargs, model class, pooling)
    "bilstm-mean-time-major": (dict(bidirectional=True, read="mean", batch_first=False), "SequenceClassifier", "mean"),
    "lstm-forecaster-zero-state": (dict(outputs=1, zero_state=True), "Forecaster", None),
    "gru-max-zero-state-time-major": (dict(gru=True, read="max", zero_state=True, batch_first=False),
                                      "SequenceClassifier", "max"),
    "bigru-tagger-time-major": (dict(gru=True, bidirectional=True, read="steps", batch_first=False),
                                "SequenceTagger", None),
}
_SLOW_DYNAMO = {"gru-max-zero-state-time-major", "bigru-tagger-time-major"}  # ~2-5 s an export


@pytest.mark.parametrize("case, exporter", [
    pytest.param(case, exporter, id=f"{case}-{exporter}",
                 marks=pytest.mark.slow if exporter == "dynamo" and case in _SLOW_DYNAMO else ())
    for case in FEATURE_CASES for exporter in ("torchscript", "dynamo")])
def test_pytorch_exported_feature_model(case: str, exporter: str) -> None:
    """Float-input models (a bidirectional LSTM pooled by the mean over time, a one-output
    forecaster run from zero states built in forward, max pooling, a bidirectional GRU
    tagger) from both exporters import as the lstmlite model they are, and reproduce the
    PyTorch module on a new batch and length (3, 9)."""
    import lstmlite.nn as lnn

    kwargs, cls, pooling = FEATURE_CASES[case]
    torch.manual_seed(0)
    module = FeatureModel(**kwargs).eval()
    batch_first = kwargs.get("batch_first", True)
    example = torch.randn(2, 4, 4) if batch_first else torch.randn(4, 2, 4)
    model = import_onnx(_export(module, example, exporter, batch_first))
    assert type(model) is getattr(lnn, cls)
    if pooling is not None:
        assert model.pooling == pooling
    x = torch.randn(3, 9, 4)
    with torch.no_grad():
        expected = module(x if batch_first else x.transpose(0, 1))
        ours = model(x)
    if kwargs.get("read") == "steps" and not batch_first:
        ours = ours.transpose(0, 1)
    torch.testing.assert_close(ours.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("nonlinearity", ["tanh", pytest.param("relu", marks=pytest.mark.slow)])
def test_a_dynamo_unrolled_rnn_is_refused_in_one_line_saying_to_export_with_dynamo_false(nonlinearity: str) -> None:
    """torch 2.13's dynamo exporter writes nn.RNN unrolled (per-step MatMul/Tanh, or MatMul/Relu
    for nonlinearity="relu", fixed at the example's length): no RNN node to import. The refusal
    says so in one line and names the way out, which works: the TorchScript exporter's graph of
    the same module imports and reproduces it."""

    class Rnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.fc = nn.RNN(4, 5, nonlinearity=nonlinearity, batch_first=True), nn.Linear(5, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.rnn(x)[1][-1])

    torch.manual_seed(0)
    module = Rnn().eval()
    with pytest.raises(ModelImportError, match=r"no LSTM, GRU or RNN node: its recurrence is unrolled .*"
                                               r"dynamo=False") as refused:
        import_onnx(_export(module, torch.randn(2, 3, 4), "dynamo"))
    assert "\n" not in str(refused.value)
    model = import_onnx(_export(module, torch.randn(2, 3, 4), "torchscript"))
    x = torch.randn(3, 9, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), module(x), rtol=1e-5, atol=1e-6)


def _fixed_steps_graph(steps: int | None, declared: bool = True, head: str = "steps", hidden: int = 4,
                       features: int = 3, classes: int = 3, layers: int = 1):
    """A graph as the dynamo exporter writes a time-major LSTM model: (T, B, F) input → LSTM →
    Y (T, 1, B, H) → Reshape → (T, B, H) ``seq`` → [ReduceMax over time, when ``head="max"``] →
    MatMul + Add. ``steps``: the Reshape's target holds the time length (the graph runs at that
    length only), else Squeeze (any length); ``declared``: the graph's declared shapes say the
    fixed length too (``seq``'s value_info, and a per-step output's), as the dynamo exporter's do.
    ``layers=2``: a first LSTM (Squeezed) feeds the second, whose final state ``Y_h`` (1, B, H)
    is declared too, as the dynamo exporter declares it."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    f32 = lambda *s: rng.normal(0, 0.5, s).astype(np.float32)  # noqa: E731
    arrays = {"W": f32(1, 4 * hidden, features), "R": f32(1, 4 * hidden, hidden), "B": f32(1, 8 * hidden),
              "head_w": f32(hidden, classes), "head_b": f32(classes), "axes0": np.array([0], np.int64),
              "axes1": np.array([1], np.int64), "target": np.array([steps or 0, -1, hidden], np.int64)}
    nodes, states = [], []
    if layers == 2:
        arrays.update(W0=f32(1, 4 * hidden, features), R0=f32(1, 4 * hidden, hidden), B0=f32(1, 8 * hidden))
        arrays["W"] = f32(1, 4 * hidden, hidden)
        nodes += [helper.make_node("LSTM", ["input", "W0", "R0", "B0"], ["Y0"], hidden_size=hidden),
                  helper.make_node("Squeeze", ["Y0", "axes1"], ["seq0"])]
        states = [helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, "b", hidden])]
    nodes += [helper.make_node("LSTM", ["seq0" if layers == 2 else "input", "W", "R", "B"],
                               ["Y", "Y_h" if layers == 2 else ""], hidden_size=hidden),
             helper.make_node("Reshape", ["Y", "target"], ["seq"]) if steps else
             helper.make_node("Squeeze", ["Y", "axes1"], ["seq"])]
    if head == "max":
        nodes.append(helper.make_node("ReduceMax", ["seq", "axes0"], ["feat"], keepdims=0))
    nodes += [helper.make_node("MatMul", ["seq" if head == "steps" else "feat", "head_w"], ["mm"]),
              helper.make_node("Add", ["mm", "head_b"], ["logits"])]
    time = steps if steps and declared else "t"
    graph = helper.make_graph(
        nodes, "fixed", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["t", "b", features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                       [time, "b", classes] if head == "steps" else ["b", classes])],
        initializer=[numpy_helper.from_array(a, n) for n, a in arrays.items()],
        value_info=[helper.make_tensor_value_info("seq", TensorProto.FLOAT, [time, "b", hidden])] + states)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("head, steps, layers", [("steps", 4, 1), ("max", 4, 1), ("steps", 2, 1), ("max", 4, 2)])
def test_a_graph_declaring_a_fixed_length_is_checked_at_that_length(head: str, steps: int, layers: int,
                                                                    caplog) -> None:
    """The dynamo exporter's time-major graph may run only at the example's length, which its
    declared shapes say (a per-step output's, or the value_info of the recurrent output
    sequence before max pooling): the import is checked at that length (it fails at 5 steps),
    says so (import_info["graph_steps"], a warning), and the model takes any length: on 9
    steps it matches ONNX Runtime running the same graph without the fixed Reshape. At 2 steps
    the check's batch is not 2 too, or a time-major (T, B, C) output could not be told from a
    batch-major one (it was refused as not reproducing the graph). Two stacked layers: the
    second's final state, declared (1, B, H), is no sequence and says nothing of the length."""
    from lstmlite.nn import SequenceTagger

    with caplog.at_level(logging.WARNING, logger="lstmlite.importers.onnx"):
        model = import_onnx(_fixed_steps_graph(steps=steps, head=head, layers=layers))
    assert isinstance(model, SequenceTagger if head == "steps" else SequenceClassifier)
    assert model.import_info["graph_steps"] == steps
    assert f"runs at {steps} steps only" in caplog.text and "dynamo=False" in caplog.text
    x = np.random.default_rng(12).normal(size=(9, 3, 3)).astype(np.float32)  # (T, B, F)
    free = _fixed_steps_graph(steps=None, head=head, layers=layers)
    expected = ort.InferenceSession(free.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    with torch.no_grad():
        ours = model(torch.from_numpy(x).transpose(0, 1))
    ours = (ours.transpose(0, 1) if head == "steps" else ours).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    assert "graph_steps" not in import_onnx(free).import_info  # a graph for any length is checked at 5


def test_a_graph_tied_to_a_length_it_does_not_declare_is_refused_in_one_line_naming_the_way_out() -> None:
    """A graph fixed at 4 steps inside (a Reshape) whose output says nothing of it cannot be run
    by the check: refused in one line naming the failing node and what to do (before: a raw
    numpy reshape error from onnx.reference)."""
    with pytest.raises(ModelImportError) as refused:
        import_onnx(_fixed_steps_graph(steps=4, declared=False))
    message = str(refused.value)
    assert "\n" not in message and message.startswith("the graph does not run on the check's random input")
    assert "Reshape" in message and "dynamo=False" in message and "verify=False" in message
    assert isinstance(import_onnx(_fixed_steps_graph(steps=4, declared=False), verify=False), nn.Module)


def _tf2onnx_style_graph(hidden: int = 4, features: int = 3, classes: int = 3, seed: int = 0):
    """The shape tf2onnx gives a Keras LSTM classifier: batch-major input → Transpose →
    LSTM (one bias, the recurrent half zero) → Squeeze(Y_h) → MatMul + Add → Softmax."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.5, (1, 4 * hidden, features)).astype(np.float32)
    r = rng.normal(0, 0.5, (1, 4 * hidden, hidden)).astype(np.float32)
    b = np.concatenate([rng.normal(0, 0.5, (1, 4 * hidden)), np.zeros((1, 4 * hidden))], 1).astype(np.float32)
    kernel = rng.normal(0, 0.5, (hidden, classes)).astype(np.float32)
    bias = rng.normal(0, 0.5, classes).astype(np.float32)
    init = [numpy_helper.from_array(a, n) for a, n in
            [(w, "W"), (r, "R"), (b, "B"), (kernel, "dense/kernel"), (bias, "dense/bias"),
             (np.array([0], np.int64), "axes0")]]
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["x_tm"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["x_tm", "W", "R", "B"], ["Y", "Y_h", "Y_c"], hidden_size=hidden),
        helper.make_node("Squeeze", ["Y_h", "axes0"], ["h"]),
        helper.make_node("MatMul", ["h", "dense/kernel"], ["logits0"]),
        helper.make_node("Add", ["logits0", "dense/bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["dense"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "tf2onnx", [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__1", "unk__2", features])],
        [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["unk__1", classes])], initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tf2onnx")
    onnx.checker.check_model(model)
    return model


def test_tf2onnx_style_graph_matches_onnxruntime(tmp_path) -> None:
    proto = _tf2onnx_style_graph()
    path = tmp_path / "keras.onnx"
    onnx.save(proto, str(path))
    model = import_onnx(path, out=tmp_path / "run")
    assert isinstance(model, SequenceClassifier) and model.pooling == "last"
    x = np.random.default_rng(1).normal(size=(4, 7, 3)).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input_1": x})[0]
    with torch.no_grad():
        ours = torch.softmax(model(torch.from_numpy(x)), -1).numpy()
        from_run = torch.softmax(load_run(tmp_path / "run").model(torch.from_numpy(x)), -1).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(from_run, ours)
    config = load_run(tmp_path / "run").config
    assert config["import"]["source"] == "onnx" and config["import"]["output_activation"] == "softmax"


def test_unsupported_graphs_fail_with_reasons() -> None:
    from onnx import helper

    proto = _tf2onnx_style_graph()
    lstm = next(n for n in proto.graph.node if n.op_type == "LSTM")
    lstm.attribute.append(helper.make_attribute("direction", "reverse"))
    with pytest.raises(UnsupportedOnnxError, match="reverse"):
        import_onnx(proto)

    proto = _tf2onnx_style_graph()
    lstm = next(n for n in proto.graph.node if n.op_type == "LSTM")
    lstm.input.extend(["", "h0"])  # a state fed from outside: a stateful graph, imported as run from zeros
    proto.graph.input.append(helper.make_tensor_value_info("h0", onnx.TensorProto.FLOAT, [1, "b", 4]))
    assert import_onnx(proto).import_info["state_inputs"] == ["h0"]  # verified with h0 = 0
    lstm.input[5] = "h0_const"  # a constant non-zero state has no model form
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.ones((1, 1, 4), np.float32), "h0_const"))
    with pytest.raises(ModelImportError, match="initial_h is not zero"):
        import_onnx(proto)

    with pytest.raises(ModelImportError, match="no LSTM, GRU or RNN"):
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
                                  [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])])
        import_onnx(helper.make_model(graph))


def test_bare_layer_graph_and_run_dir_refusal(tmp_path) -> None:
    from lstmlite.export.onnx import export_onnx
    from lstmlite.nn import GRU

    torch.manual_seed(0)
    layer = GRU(3, 5, num_layers=2).eval()
    back = import_onnx(export_onnx(layer, tmp_path / "l.onnx"))
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(back(x)[0], layer(x)[0], rtol=0, atol=0)
    with pytest.raises(ModelImportError, match="run dir"):
        import_onnx(tmp_path / "l.onnx", out=tmp_path / "run")


def test_verification_holds_every_output_to_its_tolerance(tmp_path, monkeypatch) -> None:
    """ONNX Runtime's own result, perturbed by hand: one output off by 1e-2, or every output off
    by five times the relative tolerance (1e-4), must fail the import: the check holds every
    element to its own tolerance."""
    import lstmlite.importers.onnx as onnx_importer

    path = tmp_path / "keras.onnx"
    onnx.save(_tf2onnx_style_graph(), str(path))
    run_graph = onnx_importer._run_graph

    def off_by_one_element(model, feeds, output):
        out = np.array(run_graph(model, feeds, output))
        out.reshape(-1)[1] += 1e-2
        return out

    def off_by_five_times_rtol(model, feeds, output):
        return np.array(run_graph(model, feeds, output)) * (1 + 5e-4)

    for wrong in (off_by_one_element, off_by_five_times_rtol):
        monkeypatch.setattr(onnx_importer, "_run_graph", wrong)
        with pytest.raises(ModelImportError, match="does not reproduce"):
            import_onnx(path)
    monkeypatch.setattr(onnx_importer, "_run_graph", run_graph)
    assert isinstance(import_onnx(path), SequenceClassifier)


def _hand_graph(pool: str = "last", classes: int = 3, alpha: float = 1.0, beta: float = 1.0,
                h0: bool = False, hidden: int = 4, features: int = 3, seed: int = 0, tail: tuple = ()):
    """A graph written by hand with onnx.helper: (B, T, F) input and int64 lengths → Transpose →
    LSTM (sequence_lens = lengths) → pooling → Gemm(transB=1, alpha, beta). ``pool``: ``last``
    (Squeeze(Y_h)), ``cell`` (Squeeze(Y_c)), ``masked_mean`` (ReduceSum over time / lengths:
    padded steps of Y are zero), ``plain_mean`` (ReduceMean over all T steps, padding included).
    ``h0``: a constant non-zero initial_h. ``tail``: ops applied to the logits in turn (e.g. Softmax)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    f32 = lambda *s: rng.normal(0, 0.5, s).astype(np.float32)  # noqa: E731
    arrays = {"W": f32(1, 4 * hidden, features), "R": f32(1, 4 * hidden, hidden), "B": f32(1, 8 * hidden),
              "head_w": f32(classes, hidden), "head_b": f32(classes), "axes0": np.array([0], np.int64),
              "axes1": np.array([1], np.int64), "h0": f32(1, 1, hidden) + 1.0}
    lstm_inputs = ["x_tm", "W", "R", "B", "seq"] + (["h0_b"] if h0 else [])
    nodes = [helper.make_node("Transpose", ["input"], ["x_tm"], perm=[1, 0, 2]),
             helper.make_node("Cast", ["lengths"], ["seq"], to=TensorProto.INT32)]
    if h0:  # (1, 1, H) broadcast to (1, B, H)
        nodes += [helper.make_node("Shape", ["input"], ["full_shape"]),
                  helper.make_node("Gather", ["full_shape", "axes0"], ["in_shape"], axis=0),  # (B,)
                  helper.make_node("Concat", ["axes1", "in_shape", "hidden_dim"], ["h0_shape"], axis=0),
                  helper.make_node("Expand", ["h0", "h0_shape"], ["h0_b"])]
        arrays["hidden_dim"] = np.array([hidden], np.int64)
    nodes.append(helper.make_node("LSTM", lstm_inputs, ["Y", "Y_h", "Y_c"], hidden_size=hidden))
    if pool in ("last", "cell"):
        nodes.append(helper.make_node("Squeeze", ["Y_h" if pool == "last" else "Y_c", "axes0"], ["feat"]))
    else:
        nodes.append(helper.make_node("Squeeze", ["Y", "axes1"], ["seq_out"]))  # (T, B, H)
        if pool == "plain_mean":
            nodes.append(helper.make_node("ReduceMean", ["seq_out"], ["feat"], axes=[0], keepdims=0))
        else:
            nodes += [helper.make_node("ReduceSum", ["seq_out", "axes0"], ["total"], keepdims=0),
                      helper.make_node("Cast", ["lengths"], ["len_f"], to=TensorProto.FLOAT),
                      helper.make_node("Unsqueeze", ["len_f", "axes1"], ["count"]),
                      helper.make_node("Div", ["total", "count"], ["feat"])]
    nodes.append(helper.make_node("Gemm", ["feat", "head_w", "head_b"], ["logits" if not tail else "gemm"],
                                  transB=1, alpha=alpha, beta=beta))
    for k, op in enumerate(tail):
        nodes.append(helper.make_node(op, ["gemm" if k == 0 else f"tail{k}"],
                                      ["logits" if k == len(tail) - 1 else f"tail{k + 1}"]))
    graph = helper.make_graph(
        nodes, "hand", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", "t", features]),
                        helper.make_tensor_value_info("lengths", TensorProto.INT64, ["b"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", classes])],
        initializer=[numpy_helper.from_array(a, n) for n, a in arrays.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model, arrays


def _ort_and_ours(proto, model, x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": x, "lengths": lengths})[0]
    with torch.no_grad():
        ours = model(torch.from_numpy(x), lengths=torch.from_numpy(lengths)).numpy()
    return ours, expected


def test_masked_mean_pooling_graph_imports_as_mean_and_matches_onnxruntime_on_a_padded_batch() -> None:
    """Sum of Y over time divided by the lengths (the masked mean a hand-written or tf2onnx graph
    has; Y is zero past each length) is our mean pooling; the oracle is ONNX Runtime on a padded
    batch with lengths 7, 4, 1 (catches ReduceSum not being read as mean pooling)."""
    proto, _ = _hand_graph("masked_mean")
    model = import_onnx(proto)
    assert isinstance(model, SequenceClassifier) and model.pooling == "mean"
    x = np.random.default_rng(3).normal(size=(3, 7, 3)).astype(np.float32)
    ours, expected = _ort_and_ours(proto, model, x, np.array([7, 4, 1], np.int64))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_unmasked_mean_over_padded_steps_is_refused_by_the_verification() -> None:
    """ReduceMean over all T steps counts the zero padded outputs, which our mean pooling (over
    valid steps) does not: the two agree only when every sequence is full length, so the
    verification must feed lengths shorter than T (catches a probe with every length = T)."""
    proto, _ = _hand_graph("plain_mean")
    with pytest.raises(ModelImportError, match="does not reproduce"):
        import_onnx(proto)


def test_gemm_alpha_and_beta_are_folded_into_the_head() -> None:
    """Gemm computes alpha * A B^T + beta * C: the imported head is (alpha W, beta b), checked
    against the initializers and against ONNX Runtime (catches alpha or beta ignored)."""
    proto, arrays = _hand_graph("last", alpha=0.5, beta=2.0)
    model = import_onnx(proto)
    np.testing.assert_array_equal(model.head.weight.detach().numpy(), 0.5 * arrays["head_w"])
    np.testing.assert_array_equal(model.head.bias.detach().numpy(), 2.0 * arrays["head_b"])
    x = np.random.default_rng(4).normal(size=(2, 5, 3)).astype(np.float32)
    ours, expected = _ort_and_ours(proto, model, x, np.array([5, 2], np.int64))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_a_pooled_head_with_one_output_is_read_as_a_forecaster() -> None:
    """No metadata, the last state into a one-output Gemm: a one-step forecaster (the rule
    import_onnx documents), matching ONNX Runtime (catches every pooled head read as a classifier)."""
    from lstmlite.nn import Forecaster

    proto, _ = _hand_graph("last", classes=1)
    model = import_onnx(proto)
    assert isinstance(model, Forecaster) and model.horizon == 1
    x = np.random.default_rng(5).normal(size=(3, 6, 3)).astype(np.float32)
    ours, expected = _ort_and_ours(proto, model, x, np.array([6, 3, 2], np.int64))
    np.testing.assert_allclose(ours.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pool, h0, match", [("last", True, "initial_h is not zero"),
                                              ("cell", False, "cell state Y_c")])
def test_constant_initial_state_and_cell_state_head_are_refused_with_their_reason(pool, h0, match) -> None:
    """A constant non-zero initial_h (broadcast by Expand), and a head reading Y_c, have no
    lstmlite form; each is refused naming the reason rather than by a generic failed check
    (catches is_zero calling every constant zero, and the Y_c check dropped)."""
    proto, _ = _hand_graph(pool, h0=h0)
    with pytest.raises(ModelImportError, match=match):
        import_onnx(proto)


def test_verification_holds_a_small_output_to_its_own_relative_tolerance(monkeypatch) -> None:
    """The smallest |logit| of ONNX Runtime's result moved by 1.5 times its own tolerance
    (1e-5 + 1e-4 |e|), an amount still below the tolerance of the largest logit: the import
    must fail (catches a check against atol + rtol * max|expected| instead of per element)."""
    import lstmlite.importers.onnx as onnx_importer

    proto, _ = _hand_graph("last", classes=8)
    run_graph = onnx_importer._run_graph

    def small_output_off(model, feeds, output):
        out = np.array(run_graph(model, feeds, output))
        flat = out.reshape(-1)
        k = int(np.argmin(np.abs(flat)))
        delta = 1.5 * (1e-5 + 1e-4 * abs(flat[k]))
        assert delta < 1e-5 + 1e-4 * np.abs(flat).max()  # only a per-element check sees it
        flat[k] += delta
        return out

    assert isinstance(import_onnx(proto), SequenceClassifier)  # unperturbed, it imports
    monkeypatch.setattr(onnx_importer, "_run_graph", small_output_off)
    with pytest.raises(ModelImportError, match="does not reproduce"):
        import_onnx(proto)


def _two_layer_graph(second_lengths: bool = True, keep: int | None = None, hidden: int = 4, features: int = 3):
    """Two LSTM nodes by hand, time-major input: LSTM → Squeeze(Y) [→ Slice of the first ``keep``
    features] → LSTM (sequence_lens only when ``second_lengths``) → Squeeze(Y_h) → Gemm."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    f32 = lambda *s: rng.normal(0, 0.5, s).astype(np.float32)  # noqa: E731
    mid = keep or hidden
    arrays = {"W0": f32(1, 4 * hidden, features), "R0": f32(1, 4 * hidden, hidden), "W1": f32(1, 4 * hidden, mid),
              "R1": f32(1, 4 * hidden, hidden), "head_w": f32(2, hidden), "axes0": np.array([0], np.int64),
              "axes1": np.array([1], np.int64), "axes2": np.array([2], np.int64), "end": np.array([mid], np.int64)}
    nodes = [helper.make_node("Cast", ["lengths"], ["seq"], to=TensorProto.INT32),
             helper.make_node("LSTM", ["input", "W0", "R0", "", "seq"], ["Y0"], hidden_size=hidden, name="l0"),
             helper.make_node("Squeeze", ["Y0", "axes1"], ["x1"])]
    if keep:
        nodes.append(helper.make_node("Slice", ["x1", "axes0", "end", "axes2"], ["x1s"]))
    nodes += [helper.make_node("LSTM", ["x1s" if keep else "x1", "W1", "R1", "", "seq" if second_lengths else ""],
                               ["Y1", "Y1_h"], hidden_size=hidden, name="l1"),
              helper.make_node("Squeeze", ["Y1_h", "axes0"], ["feat"]),
              helper.make_node("Gemm", ["feat", "head_w"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "two", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["t", "b", features]),
                       helper.make_tensor_value_info("lengths", TensorProto.INT64, ["b"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 2])],
        initializer=[numpy_helper.from_array(a, n) for n, a in arrays.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def test_stacked_nodes_must_share_sequence_lens_and_widths() -> None:
    """A plain two-node stack imports (2 layers, matching ONNX Runtime on a padded time-major
    batch); a second node without sequence_lens, or one reading a Slice of the first node's
    features, is refused naming the reason (catches the sequence_lens agreement check and the
    width check dropped: the first then imports with one node's lengths, the second dies in a
    tensor copy)."""
    proto = _two_layer_graph()
    model = import_onnx(proto)
    assert model.rnn.num_layers == 2 and model.import_info["input_layout"] == "time_major"
    x = np.random.default_rng(6).normal(size=(5, 3, 3)).astype(np.float32)  # (T, B, F)
    lengths = np.array([5, 2, 4], np.int64)
    expected = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": x, "lengths": lengths})[0]
    with torch.no_grad():
        ours = model(torch.from_numpy(x).transpose(0, 1), lengths=torch.from_numpy(lengths)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelImportError, match="different sequence_lens"):
        import_onnx(_two_layer_graph(second_lengths=False))
    with pytest.raises(ModelImportError, match="reads 3 features but node 0 gives 4"):
        import_onnx(_two_layer_graph(keep=3))


def test_one_final_activation_is_dropped_and_a_second_is_refused() -> None:
    """Gemm → Sigmoid imports as logits with output_activation "sigmoid" (sigmoid of ours equals
    ONNX Runtime); Gemm → Softmax → Sigmoid has two activations, which no lstmlite model ends
    with, and is refused naming the second (catches a later activation overwriting the first)."""
    proto, _ = _hand_graph("last", tail=("Sigmoid",))
    model = import_onnx(proto)
    assert model.import_info["output_activation"] == "sigmoid"
    x = np.random.default_rng(7).normal(size=(2, 5, 3)).astype(np.float32)
    ours, expected = _ort_and_ours(proto, model, x, np.array([5, 3], np.int64))
    np.testing.assert_allclose(1 / (1 + np.exp(-ours)), expected, rtol=1e-5, atol=1e-6)
    proto, _ = _hand_graph("last", tail=("Softmax", "Sigmoid"))
    with pytest.raises(ModelImportError, match="Sigmoid node .* after the output layer is not supported"):
        import_onnx(proto)



def test_a_final_log_softmax_is_dropped_and_checked_as_log_probabilities() -> None:
    """Gemm → LogSoftmax imports (its check re-applies log_softmax; the Keras importer's did not)
    with output_activation "log_softmax", and log_softmax of ours equals ONNX Runtime."""
    proto, _ = _hand_graph("last", tail=("LogSoftmax",))
    model = import_onnx(proto)
    assert model.import_info["output_activation"] == "log_softmax"
    x = np.random.default_rng(7).normal(size=(2, 5, 3)).astype(np.float32)
    ours, expected = _ort_and_ours(proto, model, x, np.array([5, 3], np.int64))
    log_probabilities = ours - np.log(np.exp(ours).sum(-1, keepdims=True))
    np.testing.assert_allclose(log_probabilities, expected, rtol=1e-5, atol=1e-6)


def _per_step_softmax_graph(axis: int | None, opset: int = 17, hidden: int = 4, features: int = 3,
                            classes: int = 5, classes_before_time: bool = False):
    """(B, T, F) → LSTM → Y as (B, T, H) → MatMul + Add on every step → Softmax(axis) (default when None);
    ``classes_before_time``: the logits transposed to (B, C, T) before the softmax."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    arrays = {"W": rng.normal(0, 0.5, (1, 4 * hidden, features)).astype(np.float32),
              "R": rng.normal(0, 0.5, (1, 4 * hidden, hidden)).astype(np.float32),
              "hw": rng.normal(size=(hidden, classes)).astype(np.float32),
              "hb": rng.normal(size=(classes,)).astype(np.float32)}
    squeeze = helper.make_node("Squeeze", ["Y", "ax"], ["y"]) if opset >= 13 else helper.make_node(
        "Squeeze", ["Y"], ["y"], axes=[1])
    if opset >= 13:
        arrays["ax"] = np.array([1], np.int64)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["xt", "W", "R"], ["Y"], hidden_size=hidden), squeeze,
             helper.make_node("Transpose", ["y"], ["yb"], perm=[1, 0, 2]),
             helper.make_node("MatMul", ["yb", "hw"], ["mm"]), helper.make_node("Add", ["mm", "hb"], ["logits"])]
    if classes_before_time:
        nodes.append(helper.make_node("Transpose", ["logits"], ["logits_ct"], perm=[0, 2, 1]))
    nodes.append(helper.make_node("Softmax", [nodes[-1].output[0]], ["out"],
                                  **({} if axis is None else {"axis": axis})))
    out_shape = ["b", classes, "t"] if classes_before_time else ["b", "t", classes]
    graph = helper.make_graph(nodes, "per_step", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                ["b", "t", features])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(v, n) for n, v in arrays.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("axis, opset", [(1, 17), (None, 11), (1, 11)])
def test_a_softmax_over_time_is_refused_even_unverified(axis, opset) -> None:
    """A per-step head ending in a softmax over axis 1 of (B, T, C), over time (opset 11's default
    axis 1 flattens time and classes together): before, verify=False imported it recording
    "softmax", i.e. one over the classes, and softmax(logits) then differed from ONNX Runtime by
    0.23. Refused naming the node's axis and the class axis."""
    with pytest.raises(ModelImportError, match=r"Softmax node .* normalises over axis 1 of its rank-3 input, "
                                               r"but the classes are on axis 2"):
        import_onnx(_per_step_softmax_graph(axis, opset), verify=False)


def test_an_opset_11_softmax_flattening_classes_with_time_is_refused() -> None:
    """Before opset 13 Softmax(axis=1) of (B, C, T) logits normalises over C and T together: the
    axis is the classes' own, but the result is no softmax over the classes; refused saying so,
    where a check of the axis alone would let it through."""
    with pytest.raises(ModelImportError, match=r"\(opset 11\) normalises over axes 1 to 2 of its input together"):
        import_onnx(_per_step_softmax_graph(1, 11, classes_before_time=True), verify=False)


@pytest.mark.parametrize("axis, opset", [(-1, 17), (2, 17), (None, 17), (2, 11)])
def test_a_softmax_over_the_classes_of_every_step_imports(axis, opset) -> None:
    """The same graph with the softmax on the last axis (spelled -1, 2 or by opset 13's default)
    imports and verifies; softmax of ours equals ONNX Runtime (the check refuses no right axis)."""
    proto = _per_step_softmax_graph(axis, opset)
    model = import_onnx(proto)
    assert model.import_info["output_activation"] == "softmax"
    x = np.random.default_rng(12).normal(size=(2, 6, 3)).astype(np.float32)
    expected = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    with torch.no_grad():
        ours = torch.softmax(model(torch.from_numpy(x)), -1).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def _head_bias_graph(bias: np.ndarray, op: str, hidden: int = 4, features: int = 3, classes: int = 2):
    """(B, T, F) → LSTM → Squeeze(Y_h) → Gemm(transB=1) with ``bias``, or MatMul + Add(bias)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(13)
    arrays = {"W": rng.normal(0, 0.5, (1, 4 * hidden, features)).astype(np.float32),
              "R": rng.normal(0, 0.5, (1, 4 * hidden, hidden)).astype(np.float32),
              "hb": bias.astype(np.float32), "ax": np.array([0], np.int64)}
    head_w = rng.normal(size=(classes, hidden)).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["xt", "W", "R"], ["Y", "Y_h"], hidden_size=hidden),
             helper.make_node("Squeeze", ["Y_h", "ax"], ["h"])]
    if op == "Gemm":
        nodes.append(helper.make_node("Gemm", ["h", "hw", "hb"], ["out"], transB=1))
        arrays["hw"] = head_w
    else:
        nodes += [helper.make_node("MatMul", ["h", "hw"], ["mm"]), helper.make_node("Add", ["mm", "hb"], ["out"])]
        arrays["hw"] = head_w.T.copy()
    graph = helper.make_graph(nodes, "bias", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                            ["b", "t", features])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", classes])],
                              [numpy_helper.from_array(v, n) for n, v in arrays.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("op", ["Gemm", "MatMul"])
@pytest.mark.parametrize("shape", [(2,), (1, 2), (1,), ()])
def test_a_head_bias_that_broadcasts_over_the_batch_imports(op, shape) -> None:
    """The head's bias as (C,), (1, C) (Keras converters write it so), or one broadcast value:
    (1, C) failed with NumPy's "input operand has more dimensions than allowed"; each imports,
    and ours equals ONNX Runtime on a new batch (a bias read in the wrong order would not)."""
    bias = np.array([0.5, -1.5], np.float32).reshape(shape) if shape not in ((1,), ()) else np.full(shape, 0.75,
                                                                                                  np.float32)
    proto = _head_bias_graph(bias, op)
    onnx.checker.check_model(proto, full_check=True)
    model = import_onnx(proto)
    x = np.random.default_rng(14).normal(size=(3, 5, 3)).astype(np.float32)
    expected = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_a_head_bias_that_cannot_broadcast_is_refused_naming_its_shape() -> None:
    """A (C, 1) bias does not add per class (it broadcasts a (B, C) result to (C, C)): refused
    in one line naming the shape, not reshaped into a (C,) bias nor a raw NumPy error."""
    with pytest.raises(ModelImportError, match=r"the output layer's bias has shape \(2, 1\); expected \(2,\)"):
        import_onnx(_head_bias_graph(np.array([[0.5], [-1.5]], np.float32), "MatMul"), verify=False)


def test_batch_major_layout_graph_imports_as_batch_first() -> None:
    """An LSTM node with layout=1 reading the (B, T, F) graph input directly, Y_h (B, 1, H) into
    the head: the import reads the time axis as 1 (input_layout "batch_first") and matches
    onnx.reference (ONNX Runtime has no layout=1) on a new batch (catches the time axis taken as 0
    whatever the node's layout)."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(8)
    f32 = lambda *s: rng.normal(0, 0.5, s).astype(np.float32)  # noqa: E731
    arrays = {"W": f32(1, 16, 3), "R": f32(1, 16, 4), "B": f32(1, 32), "head_w": f32(2, 4), "axes1": np.array([1])}
    nodes = [helper.make_node("LSTM", ["input", "W", "R", "B"], ["Y", "Y_h"], hidden_size=4, layout=1),
             helper.make_node("Squeeze", ["Y_h", "axes1"], ["feat"]),
             helper.make_node("Gemm", ["feat", "head_w"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "bm", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", "t", 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 2])],
                              initializer=[numpy_helper.from_array(a, n) for n, a in arrays.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model = import_onnx(proto)
    assert model.import_info["input_layout"] == "batch_first"
    x = np.random.default_rng(9).normal(size=(3, 6, 3)).astype(np.float32)
    expected = ReferenceEvaluator(proto).run(None, {"input": x})[0]
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_constant_sequence_lens_is_refused() -> None:
    """sequence_lens from a constant (a graph exported for one fixed batch) cannot become our
    lengths argument: refused with the reason (catches a constant read as 'no lengths', which
    would import a model that ignores the graph's padding)."""
    from onnx import numpy_helper

    proto, _ = _hand_graph("last")
    proto.graph.initializer.append(numpy_helper.from_array(np.array([3, 1], np.int64), "fixed_lengths"))
    for node in proto.graph.node:
        if node.op_type == "Cast" and list(node.input) == ["lengths"]:
            node.input[0] = "fixed_lengths"
    del proto.graph.input[1]  # the lengths input is no longer read
    with pytest.raises(ModelImportError, match="constant sequence_lens"):
        import_onnx(proto)


@pytest.mark.parametrize("build", [
    lambda: __import__("lstmlite.nn", fromlist=["SequenceTagger"]).SequenceTagger(
        input_size=4, hidden_size=6, num_layers=2, n_classes=5),
    lambda: __import__("lstmlite.nn", fromlist=["SequenceTagger"]).SequenceTagger(
        vocab_size=VOCAB, embed_dim=5, hidden_size=6, bidirectional=True, n_classes=4, cell="gru"),
], ids=["features_lstm", "tokens_bigru"])
@pytest.mark.parametrize("metadata", [True, False], ids=["ours", "no_metadata"])
def test_a_tagger_graph_imports_as_a_tagger_matching_onnxruntime_on_a_padded_batch(build, metadata: bool,
                                                                                   tmp_path) -> None:
    """A per-step head that is not a causal next-token LM (feature input, or a bidirectional
    layer) is a tagger. Before, our own tagger's file came back as a bare recurrent layer (the
    embedding and head silently dropped, nothing verified) and a graph without our metadata was
    refused as a 'language model'; catches either."""
    from lstmlite.export.onnx import export_onnx
    from lstmlite.nn import SequenceTagger

    torch.manual_seed(0)
    source = build().eval()
    path = export_onnx(source, tmp_path / "tagger.onnx")
    proto = onnx.load(str(path))
    if not metadata:
        del proto.metadata_props[:]
    model = import_onnx(proto)
    assert isinstance(model, SequenceTagger) and model.import_info["verified_max_error"] < 1e-5
    rng = np.random.default_rng(3)
    x = (rng.integers(0, VOCAB, size=(3, 7)) if source.embedding is not None
         else rng.normal(size=(3, 7, 4)).astype(np.float32))
    lengths = np.array([7, 4, 2], np.int64)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x, "lengths": lengths})[0]
    with torch.no_grad():
        ours = model(torch.from_numpy(x), lengths=torch.from_numpy(lengths)).numpy()
    valid = np.arange(7)[None, :] < lengths[:, None]  # what padded steps hold is the graph's own affair
    np.testing.assert_allclose(ours[valid], expected[valid], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_pooling_is_read_from_the_ops_of_a_file_without_our_metadata(pooling: str, tmp_path) -> None:
    """Our classifier's file after a tool dropped its metadata (no config to say the pooling):
    ReduceMax must be read as max pooling and ReduceMean/ReduceSum as mean, matching ONNX
    Runtime on a padded batch (catches ReduceMax read as mean: the import's own check fails)."""
    from lstmlite.export.onnx import export_onnx

    torch.manual_seed(0)
    source = SequenceClassifier(input_size=3, hidden_size=5, n_classes=4, bidirectional=True, pooling=pooling)
    path = export_onnx(source.eval(), tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    model = import_onnx(proto)
    assert model.config()["pooling"] == pooling
    x = np.random.default_rng(4).normal(size=(3, 7, 3)).astype(np.float32)
    ours, expected = _ort_and_ours(proto, model, x, np.array([7, 4, 1], np.int64))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build", [
    lambda: LanguageModel(vocab_size=VOCAB, embed_dim=5, hidden_size=6, num_layers=2),
    lambda: __import__("lstmlite.nn", fromlist=["SequenceTagger"]).SequenceTagger(
        input_size=4, hidden_size=[6, 5], num_layers=2, n_classes=3, cell="gru"),
], ids=["lm_lstm", "tagger_gru"])
def test_a_streaming_graph_imports_as_the_model_started_from_zero_states(build, tmp_path) -> None:
    """A stateful (streaming) file feeds each node's initial_h / initial_c from graph inputs
    h0_lK / c0_lK. Before, importing it failed with 'initial_h is not zero' though nothing
    was non-zero; now it is our model run from zero states, which ONNX Runtime fed zero
    states must reproduce."""
    from lstmlite.export.onnx import export_onnx

    torch.manual_seed(0)
    source = build().eval()
    path = export_onnx(source, tmp_path / "stream.onnx", stateful=True)
    model = import_onnx(path)
    assert type(model) is type(source) and model.config() == source.config()
    assert model.import_info["state_inputs"] and model.import_info["verified_max_error"] < 1e-5
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2)
    x = (rng.integers(0, VOCAB, size=(3, 6)) if source.embedding is not None
         else rng.normal(size=(3, 6, 4)).astype(np.float32))
    feeds = {"input": x}
    for i in session.get_inputs()[1:]:  # (1, B, H) per layer
        feeds[i.name] = np.zeros((1, 3, i.shape[2]), np.float32)
    expected = session.run([session.get_outputs()[0].name], feeds)[0]
    with torch.no_grad():
        ours = model(torch.from_numpy(x))
    ours = (ours[0] if isinstance(ours, tuple) else ours).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


_ORT_RESHAPE_FAILURE = (
    "[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running Reshape node. Name:'/Reshape' "
    "Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:47 "
    "onnxruntime::ReshapeHelper::ReshapeHelper(...) input_shape_size == size was false. The input tensor\n"
    "cannot be reshaped to the requested shape. Input shape:{1,5,3}, requested shape:{5,3,8}\n")


@pytest.mark.parametrize("error, reason", [
    # ORT's source location dropped, the node and the reason kept, on one line.
    (RuntimeError(_ORT_RESHAPE_FAILURE), "Reshape node '/Reshape': The input tensor cannot be reshaped to the "
                                         "requested shape. Input shape:{1,5,3}, requested shape:{5,3,8}"),
    # Cut with "..." inside 160 characters, the space before the cut dropped.
    (RuntimeError("w" * 156 + " " + "v" * 50), "w" * 156 + "..."),
    (RuntimeError(), "RuntimeError"),  # no message: the type's name, never "()"
])
def test_a_graph_run_failure_is_one_line_naming_the_node_cut_with_an_ellipsis(error, reason) -> None:
    from lstmlite.importers.onnx import _graph_run_reason

    assert _graph_run_reason(error) == reason


def test_a_qdq_file_imports_as_float_and_the_cli_says_so(tmp_path, capsys) -> None:
    """Our int8 QDQ export (weights as DequantizeLinear of int8 codes) imports as the float
    values of those codes: import_info["dequantized"] records it and `lstmlite import`
    says the run is float and how to get codes back (it wrote a run bigger than the file
    without a word). A float file has no such note."""
    from lstmlite.cli.main import main
    from lstmlite.compress import WeightQuantConfig, compress_
    from lstmlite.export.onnx import export_onnx

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=3, hidden_size=8, n_classes=2).eval()
    float_file = export_onnx(model, tmp_path / "float.onnx")
    compress_(model, WeightQuantConfig(bits=8))
    qdq_file = export_onnx(model, tmp_path / "int8.onnx", quantize="qdq")
    assert import_onnx(qdq_file).import_info.get("dequantized") is True
    assert "dequantized" not in import_onnx(float_file).import_info
    assert main(["import", "onnx", str(qdq_file), "--out", str(tmp_path / "run")]) == 0
    assert "imported as their float values, so this run is float" in capsys.readouterr().out
    assert main(["import", "onnx", str(float_file), "--out", str(tmp_path / "run2")]) == 0
    assert "DequantizeLinear" not in capsys.readouterr().out
