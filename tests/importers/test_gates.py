"""The public gate-order constants, held to the frameworks themselves: weights of a Keras
layer (run by Keras) or of a PyTorch layer (run as an ONNX node by ONNX Runtime), moved
with :func:`reorder_gates` and these constants, must compute what the framework computes.

The importers and exporters use only some of the constants (Keras LSTM weights are copied
without reordering), so these tests are what holds the others to their documented meaning.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from lstmlite.importers.gates import (KERAS_GRU, KERAS_LSTM, ONNX_GRU, ONNX_LSTM, TORCH_GRU, TORCH_LSTM,
                                      reorder_gates)

KERAS_ORDERS = {"LSTM": KERAS_LSTM, "GRU": KERAS_GRU}
TORCH_ORDERS = {"LSTM": TORCH_LSTM, "GRU": TORCH_GRU}
ONNX_ORDERS = {"LSTM": ONNX_LSTM, "GRU": ONNX_GRU}
# Keras 3's torch backend trips NumPy 2's __array__(copy=...) deprecation on every call.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_keras_orders_move_a_keras_layer_into_pytorch(op: str) -> None:
    """Catches a wrong KERAS_LSTM / KERAS_GRU (e.g. "ifog": c and o swapped), which no importer
    test sees because the Keras importer copies LSTM weights unreordered."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":  # pragma: no cover - another test imported keras first
        pytest.skip("keras runs on another backend in this process")
    rng = np.random.default_rng(0)
    layer = getattr(keras.layers, op)(5, return_sequences=True)  # GRU: reset_after=True, PyTorch's form
    source = keras.Sequential([keras.Input((None, 3)), layer])
    layer.set_weights([w + rng.normal(0, 0.4, w.shape).astype(np.float32) for w in layer.get_weights()])
    kernel, recurrent, bias = layer.get_weights()
    target = getattr(nn, op)(3, 5, batch_first=True)
    order = (KERAS_ORDERS[op], TORCH_ORDERS[op])
    b_ih, b_hh = (bias, np.zeros_like(bias)) if op == "LSTM" else (bias[0], bias[1])
    with torch.no_grad():
        for name, value in (("weight_ih_l0", kernel.T), ("weight_hh_l0", recurrent.T), ("bias_ih_l0", b_ih),
                            ("bias_hh_l0", b_hh)):
            getattr(target, name).copy_(torch.from_numpy(np.ascontiguousarray(reorder_gates(value, *order))))
        x = rng.normal(size=(2, 6, 3)).astype(np.float32)
        ours = target(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(ours, np.asarray(source.predict(x, verbose=0)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_onnx_orders_move_a_pytorch_layer_into_an_onnx_node(op: str) -> None:
    """Catches a wrong ONNX_LSTM / ONNX_GRU / TORCH_* constant, against ONNX Runtime's operator."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    torch.manual_seed(0)
    source = getattr(nn, op)(3, 5)  # time-major, as the ONNX node
    order = (TORCH_ORDERS[op], ONNX_ORDERS[op])
    get = lambda name: getattr(source, name).detach().numpy()  # noqa: E731
    w = reorder_gates(get("weight_ih_l0"), *order)[None]
    r = reorder_gates(get("weight_hh_l0"), *order)[None]
    b = np.concatenate([reorder_gates(get("bias_ih_l0"), *order), reorder_gates(get("bias_hh_l0"), *order)])[None]
    extra = {"linear_before_reset": 1} if op == "GRU" else {}
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y"], hidden_size=5, **extra)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [6, 2, 3])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.ascontiguousarray(a, np.float32), n)
                               for n, a in (("W", w), ("R", r), ("B", b))])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(1).normal(size=(6, 2, 3)).astype(np.float32)
    got = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    with torch.no_grad():
        expected = source(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-5, atol=1e-6)  # Y (T, D, B, H)


def test_reorder_gates_moves_the_blocks_of_a_tensor_along_the_axis_given() -> None:
    """A Keras-style (I, 4H) kernel held as a torch tensor, permuted along axis 1 (columns
    i i f f c c o o, H = 2, written out by hand) to ONNX's i, o, f, c: the tensor path must
    honour ``axis`` as the NumPy one does (catches it always permuting rows) and return a tensor."""
    kernel = torch.tensor([[10, 10, 11, 11, 12, 12, 13, 13]]).repeat(3, 1)  # (3, 8)
    moved = reorder_gates(kernel, KERAS_LSTM, ONNX_LSTM, axis=1)
    assert isinstance(moved, torch.Tensor) and moved.shape == (3, 8)
    assert moved.tolist() == [[10, 10, 13, 13, 11, 11, 12, 12]] * 3


@pytest.mark.parametrize("target", ["ifgx", "iifo"], ids=["foreign_gate", "repeated_gate"])
def test_reorder_gates_refuses_orders_that_do_not_name_the_same_gates(target: str) -> None:
    """An order naming a gate the source lacks, or one gate twice, is a caller's mistake: refused
    naming both orders, not answered with a weight whose blocks are duplicated (catches the
    check reduced to comparing lengths, with which "iifo" returns the input block twice)."""
    with pytest.raises(ValueError, match="do not name the same gates"):
        reorder_gates(np.zeros((8, 3)), TORCH_LSTM, target)
