"""ONNX's own backend test cases for LSTM, GRU and RNN, run through our importer and layers.

The ``onnx`` package ships the node test generators (onnx/backend/test/case/node/
{lstm,gru,rnn}.py): each case is a single-op graph with inputs and the outputs ONNX's
NumPy reference computed. Every case is either run and matched, or listed in
UNSUPPORTED with the reason. Importing the three generator modules runs only their
cases (collect_testcases("") would build all ~1500 node cases, ~10 s).

Cases ONNX does not ship — PyTorch's GRU form (linear_before_reset=1) with lengths and
initial states — are checked against ONNX Runtime below.
"""

from __future__ import annotations

import importlib

import re

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")

from lstmlite.importers.onnx import UnsupportedOnnxError, import_onnx_node  # noqa: E402

RECURRENT = ("LSTM", "GRU", "RNN")

#: case name → why our layers cannot compute it.
UNSUPPORTED = {
    "test_lstm_with_peepholes": "peephole weights P (nonzero); lstmlite's LSTM has no peephole connections",
}


def _cases() -> dict:
    import onnx.backend.test.case.node as node_cases

    for module in ("lstm", "gru", "rnn"):
        importlib.import_module(f"onnx.backend.test.case.node.{module}")
    found = {c.name: c for c in getattr(node_cases, "_NodeTestCases", [])
             if c.model.graph.node and c.model.graph.node[0].op_type in RECURRENT}
    if not found:  # the private list moved: fall back to the public (slow) collector
        found = {c.name: c for c in node_cases.collect_testcases("")
                 if c.model.graph.node and c.model.graph.node[0].op_type in RECURRENT}
    return found


CASES = _cases()


def _run_case(case) -> list[tuple[np.ndarray, np.ndarray]]:
    node = case.model.graph.node[0]
    names = [i.name for i in case.model.graph.input]
    inputs, expected = case.data_sets[0]
    feeds = dict(zip(names, inputs))
    module = import_onnx_node(node, feeds)
    slots = list(node.input) + [""] * (8 - len(node.input))
    arg = lambda i: torch.from_numpy(feeds[slots[i]]) if slots[i] else None  # noqa: E731
    with torch.no_grad():
        outputs = module(arg(0), arg(4), arg(5), arg(6))
    by_name = dict(zip(node.output, outputs))
    return [(by_name[o.name].numpy(), e) for o, e in zip(case.model.graph.output, expected)]


def test_every_case_is_run_or_listed() -> None:
    assert len(CASES) >= 18, sorted(CASES)  # 6 LSTM, 6 GRU, 6 RNN in onnx 1.15+
    assert set(UNSUPPORTED) <= set(CASES)
    supported = len(CASES) - len(UNSUPPORTED)
    print(f"ONNX recurrent node cases supported: {supported}/{len(CASES)}")
    assert supported >= 17


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_node_case(name: str) -> None:
    case = CASES[name]
    if name in UNSUPPORTED:
        with pytest.raises(UnsupportedOnnxError):
            _run_case(case)
        return
    pairs = _run_case(case)
    assert pairs
    for got, expected in pairs:
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


# ----- beyond ONNX's cases: checked against ONNX Runtime --------------------------------------
def _node_model(node, inputs: dict[str, np.ndarray], outputs: list[str]):
    from onnx import TensorProto, helper

    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                    for n, v in inputs.items()]
    graph_outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs]
    graph = helper.make_graph([node], "g", graph_inputs, graph_outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("op, extra", [
    ("GRU", {"linear_before_reset": 1}),
    ("GRU", {"linear_before_reset": 0}),
    ("LSTM", {}),
    ("RNN", {"activations": ["Relu", "Relu"]}),
])
@pytest.mark.parametrize("direction", ["bidirectional", "reverse"])
def test_lengths_and_initial_state_vs_onnxruntime(op: str, extra: dict, direction: str) -> None:
    """Padded rows of different lengths: a backward direction runs from each sequence's
    own last valid step, not from the end of the padded batch (direction="reverse"
    alone takes its own path through the importer)."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import helper

    rng = np.random.default_rng(0)
    steps, batch, inp, hidden, d = 5, 3, 4, 6, 2 if direction == "bidirectional" else 1
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    f32 = lambda *s: rng.normal(0, 0.5, s).astype(np.float32)  # noqa: E731
    feeds = {"X": f32(steps, batch, inp), "W": f32(d, gates * hidden, inp), "R": f32(d, gates * hidden, hidden),
             "B": f32(d, 2 * gates * hidden), "seq": np.array([5, 2, 4], np.int32), "h0": f32(d, batch, hidden)}
    inputs = ["X", "W", "R", "B", "seq", "h0"]
    outputs = ["Y", "Y_h"]
    if op == "LSTM":
        feeds["c0"] = f32(d, batch, hidden)
        inputs.append("c0")
        outputs.append("Y_c")
    node = helper.make_node(op, inputs, outputs, hidden_size=hidden, direction=direction, **extra)
    session = ort.InferenceSession(_node_model(node, feeds, outputs).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    module = import_onnx_node(node, feeds)
    with torch.no_grad():
        got = module(*(torch.from_numpy(feeds[n]) for n in ["X", "seq", "h0"]),
                     torch.from_numpy(feeds["c0"]) if op == "LSTM" else None)
    for ours, theirs in zip(got, expected):
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attrs, match", [
    ({"clip": 2.0}, "clip"),
    ({"activations": ["Sigmoid", "Relu", "Tanh"]}, "activations"),
    ({"input_forget": 1}, "input_forget"),
])
def test_unsupported_lstm_attributes_are_refused(attrs: dict, match: str) -> None:
    from onnx import helper

    rng = np.random.default_rng(0)
    node = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=2, **attrs)
    tensors = {"W": rng.normal(size=(1, 8, 3)), "R": rng.normal(size=(1, 8, 2))}
    with pytest.raises(UnsupportedOnnxError, match=match):
        import_onnx_node(node, tensors)


@pytest.mark.parametrize("op, activations, extra", [
    ("LSTM", ["Sigmoid", "Tanh", "Tanh"], {}),
    ("GRU", ["Sigmoid", "Tanh"], {"linear_before_reset": 1}),
])
def test_default_activations_written_out_for_both_directions_are_accepted(op, activations, extra) -> None:
    """A bidirectional node may spell out its default activations, one list per direction (six
    names for an LSTM, as some exporters write them): that is the default maths, imported and
    matching ONNX Runtime. Catches the list compared with one direction's defaults only, which
    refuses such a node as using unsupported activations."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import helper

    rng = np.random.default_rng(3)
    steps, batch, inp, hidden, gates = 5, 2, 3, 4, {"LSTM": 4, "GRU": 3}[op]
    f32 = lambda *s: rng.normal(0, 0.5, s).astype(np.float32)  # noqa: E731
    feeds = {"X": f32(steps, batch, inp), "W": f32(2, gates * hidden, inp), "R": f32(2, gates * hidden, hidden),
             "B": f32(2, 2 * gates * hidden)}
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=hidden, direction="bidirectional",
                            activations=activations * 2, **extra)
    expected = ort.InferenceSession(_node_model(node, feeds, ["Y", "Y_h"]).SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, feeds)
    module = import_onnx_node(node, feeds)
    with torch.no_grad():
        got = module(torch.from_numpy(feeds["X"]))
    for ours, theirs in zip(got, expected):
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-6)


def test_zero_peepholes_are_accepted() -> None:
    from onnx import helper

    rng = np.random.default_rng(0)
    node = helper.make_node("LSTM", ["X", "W", "R", "", "", "", "", "P"], ["Y"], hidden_size=2)
    tensors = {"W": rng.normal(size=(1, 8, 3)), "R": rng.normal(size=(1, 8, 2)), "P": np.zeros((1, 6))}
    module = import_onnx_node(node, tensors)
    assert module(torch.randn(4, 2, 3))[0].shape == (4, 1, 2, 2)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_batch_major_layout_with_initial_states_vs_onnx_reference(direction: str) -> None:
    """layout=1: X (B, T, I), initial_h / initial_c (B, D, H), outputs batch-major too; the
    oracle is onnx.reference (ONNX Runtime has no layout=1)."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(2)
    steps, batch, inp, hidden = 4, 3, 2, 5
    d = 2 if direction == "bidirectional" else 1
    f32 = lambda *s: rng.normal(0, 0.5, s).astype(np.float32)  # noqa: E731
    feeds = {"X": f32(batch, steps, inp), "W": f32(d, 4 * hidden, inp), "R": f32(d, 4 * hidden, hidden),
             "B": f32(d, 8 * hidden), "h0": f32(batch, d, hidden), "c0": f32(batch, d, hidden)}
    outputs = ["Y", "Y_h", "Y_c"]
    node = helper.make_node("LSTM", ["X", "W", "R", "B", "", "h0", "c0"], outputs, hidden_size=hidden,
                            direction=direction, layout=1)
    expected = ReferenceEvaluator(_node_model(node, feeds, outputs)).run(None, feeds)
    module = import_onnx_node(node, feeds)
    with torch.no_grad():
        got = module(torch.from_numpy(feeds["X"]), None, torch.from_numpy(feeds["h0"]), torch.from_numpy(feeds["c0"]))
    for ours, theirs in zip(got, expected):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-6)


def test_peepholes_with_one_nonzero_entry_are_refused() -> None:
    """P is all zeros except one weight: that one peephole changes the cell, so the node must be
    refused (catches a check that only refuses P when every entry is non-zero)."""
    from onnx import helper

    rng = np.random.default_rng(0)
    node = helper.make_node("LSTM", ["X", "W", "R", "", "", "", "", "P"], ["Y"], hidden_size=2)
    p = np.zeros((1, 6))
    p[0, 4] = 0.5
    tensors = {"W": rng.normal(size=(1, 8, 3)), "R": rng.normal(size=(1, 8, 2)), "P": p}
    with pytest.raises(UnsupportedOnnxError, match="peephole"):
        import_onnx_node(node, tensors)


def test_bidirectional_rnn_with_different_activations_per_direction_is_refused() -> None:
    """ONNX lets each direction of an RNN have its own activation (Tanh forward, Relu backward);
    our SimpleRNN has one nonlinearity, so the node must be refused, not run with the first one
    (catches a check that reads only activations[0])."""
    from onnx import helper

    rng = np.random.default_rng(0)
    node = helper.make_node("RNN", ["X", "W", "R"], ["Y"], hidden_size=2, direction="bidirectional",
                            activations=["Tanh", "Relu"])
    tensors = {"W": rng.normal(size=(2, 2, 3)), "R": rng.normal(size=(2, 2, 2))}
    with pytest.raises(UnsupportedOnnxError, match="activations"):
        import_onnx_node(node, tensors)


def test_hidden_size_attribute_must_fit_the_weights() -> None:
    """hidden_size=3 on a node whose W and R are for H = 2 (R (1, 8, 2)): the node is malformed
    and refused naming the shapes, not imported with H taken from R (catches the attribute ignored)."""
    from lstmlite.importers import ModelImportError

    rng = np.random.default_rng(0)
    node = onnx.helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=3)
    with pytest.raises(ModelImportError, match="do not fit hidden_size=3"):
        import_onnx_node(node, {"W": rng.normal(size=(1, 8, 3)), "R": rng.normal(size=(1, 8, 2))})


_WRONG_BIAS_SHAPES = {  # (gates, hidden) -> B's shape
    "too_short": lambda gates, hidden: (1, 5),
    "input_half_only": lambda gates, hidden: (1, gates * hidden),
    "two_directions": lambda gates, hidden: (2, 2 * gates * hidden),
    "flat": lambda gates, hidden: (2 * gates * hidden,),
}


@pytest.mark.parametrize("op, gates", [("LSTM", 4), ("GRU", 3), ("RNN", 1)])
@pytest.mark.parametrize("wrong", sorted(_WRONG_BIAS_SHAPES))
def test_a_bias_that_does_not_fit_the_node_is_refused_naming_its_shape(op, gates, wrong) -> None:
    """B of the wrong shape (too short, only the input half, an extra direction, 1-D): refused
    in one line naming B's shape and the shape ONNX wants, not torch's "The size of tensor a
    must match" from the copy, nor a half-bias copied into the input gates silently."""
    from lstmlite.importers import ModelImportError

    hidden = 2
    b_shape = _WRONG_BIAS_SHAPES[wrong](gates, hidden)
    rng = np.random.default_rng(0)
    node = onnx.helper.make_node(op, ["X", "W", "R", "B"], ["Y"], hidden_size=hidden)
    tensors = {"W": rng.normal(size=(1, gates * hidden, 3)), "R": rng.normal(size=(1, gates * hidden, hidden)),
               "B": rng.normal(size=b_shape)}
    with pytest.raises(ModelImportError, match=rf"B {re.escape(str(b_shape))} does not fit hidden_size=2, "
                                               rf"1 direction\(s\): ONNX wants \(1, {2 * gates * hidden}\)"):
        import_onnx_node(node, tensors)
