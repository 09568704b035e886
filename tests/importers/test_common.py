"""assemble_model, the importers' shared builder: the shapes it refuses, each with its reason.

The importers filter most mismatches before they get here (the PyTorch importer picks the head
and embedding by width), so these are checked on the builder itself; the oracle is the shape
arithmetic written out in each case.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmlite.importers import ModelImportError
from lstmlite.importers._common import assemble_model, check_error, read_model_file
from lstmlite.nn import LSTM, LanguageModel


@pytest.mark.parametrize("kind, extra, match", [
    # LSTM(6 -> 4): a head must read 4 features, an embedding must give 6.
    ("classifier", {"head_weight": torch.zeros(2, 5)}, "the head reads 5 features but the recurrent layer gives 4"),
    ("classifier", {"head_weight": torch.zeros(2, 4), "embedding": torch.zeros(10, 7)},
     "the embedding has 7 features but the recurrent layer reads 6"),
    # A per-step head over 3 classes with a 10-token vocabulary is a tagger, not a language model.
    ("lm", {"head_weight": torch.zeros(3, 4), "embedding": torch.zeros(10, 6), "pooling": "none"},
     "not a language model over the 10-token vocabulary"),
])
def test_assemble_model_refuses_mismatched_parts(kind: str, extra: dict, match: str) -> None:
    """Catches each width / vocabulary check dropped (build_model or the weight copy would then
    fail with a bare shape error, or a tagger would import as a language model)."""
    with pytest.raises(ModelImportError, match=match):
        assemble_model(LSTM(6, 4), kind, **extra)


def test_assemble_model_language_model_with_matching_parts() -> None:
    """The same parts with a 10-output head are a language model whose weights are the ones given."""
    embedding, head = torch.randn(10, 6), torch.randn(10, 4)
    model = assemble_model(LSTM(6, 4), "lm", embedding=embedding, head_weight=head, pooling="none")
    assert isinstance(model, LanguageModel)
    assert torch.equal(model.embedding.weight, embedding) and torch.equal(model.head.weight, head)
    assert torch.equal(model.head.bias, torch.zeros(10))  # a missing bias is zero


# A parser's error quoted by read_model_file: one line, cut with "..." inside 160 characters,
# the type's name when the parser gave no message (the lstmlite._text.one_line rule).
@pytest.mark.parametrize("error, quoted", [
    (ValueError("Wire format\nwas corrupt:\t" + "x" * 300), "Wire format was corrupt: " + "x" * 132 + "..."),
    (OSError(), "OSError"),
])
def test_read_model_file_quotes_the_parser_error_on_one_line_cut_with_an_ellipsis(tmp_path, error, quoted):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\0")

    def reader(_: str):
        raise error

    with pytest.raises(ModelImportError) as caught:
        read_model_file(path, "ONNX", reader)
    assert str(caught.value) == (f"{path}: not a readable ONNX file, truncated or corrupt ({quoted}); "
                                 f"re-save it from its framework")


@pytest.mark.parametrize("head, named, what", [
    (b"LSTMLITE\x05\x00", "not an ONNX file but an lstmlite .lsl file", "ONNX"),
    (b"\x1c\x00\x00\x00TFL3\x00\x00", "not an ONNX file but a TFLite model: lstmlite import tflite FILE", "ONNX"),
    (b"\x89HDF\r\n\x1a\n", "not a safetensors file but a Keras HDF5 file: lstmlite import keras FILE",
     "safetensors"),
])
def test_a_file_of_another_format_is_named_not_called_corrupt(tmp_path, head, named, what):
    """`lstmlite import onnx model.lsl` said the .lsl file was truncated or corrupt and to
    re-save it; a file whose first bytes are another known format's is named as that, with
    where it goes. Its own reader failing on it is still "not readable" (a broken file)."""
    path = tmp_path / "model.bin"
    path.write_bytes(head + b"\0" * 32)

    def reader(_: str):
        raise ValueError("Wire format was corrupt")

    with pytest.raises(ModelImportError) as caught:
        read_model_file(path, what, reader)
    assert str(caught.value).startswith(f"{path}: {named}")
    with pytest.raises(ModelImportError, match="not a readable Keras HDF5 file, truncated or corrupt"):
        read_model_file(tmp_path.joinpath("k.h5").write_bytes(b"\x89HDF\r\n\x1a\n") and tmp_path / "k.h5",
                        "Keras HDF5", reader)


def test_check_error_bounds_each_element_by_the_expected_magnitude_not_ours() -> None:
    """The rule is |expected - ours| <= atol + rtol * |expected|, worked by hand: with rtol 0.5,
    ours 1.9 against expected 1.0 is 0.9 off, over the 0.5 allowed (it would pass, 0.9 <= 0.95,
    if the bound were taken from ours); 1.4 is within it. Catches the tolerance scaled by our
    own output, which lets a model that overshoots pass a loose check."""
    expected = np.array([1.0])
    assert check_error(expected, np.array([1.9]), rtol=0.5, atol=0.0) == (pytest.approx(0.9), False)
    assert check_error(expected, np.array([1.4]), rtol=0.5, atol=0.0) == (pytest.approx(0.4), True)


def test_read_model_file_lets_a_missing_framework_through_unwrapped(tmp_path) -> None:
    """A reader that cannot import its framework (``import keras`` failing) raises ImportError
    saying what to install; that must reach the user as it is, not as "not a readable ... file,
    truncated or corrupt; re-save it", which sends them to re-export a file that is fine."""
    path = tmp_path / "m.keras"
    path.write_bytes(b"PK\x03\x04")

    def reader(_: str):
        raise ImportError("reading .keras files needs Keras 3: pip install 'lstmlite[keras]'")

    with pytest.raises(ImportError, match="needs Keras 3") as caught:
        read_model_file(path, "Keras", reader)
    assert not isinstance(caught.value, ModelImportError)
