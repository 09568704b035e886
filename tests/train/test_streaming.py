"""evaluate_streaming: a ctc run's split streamed through the native runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lstmlite.ctc import greedy_decode
from lstmlite.data.synth import make_spoken_digits
from lstmlite.io import load_run
from lstmlite.runtime.stream import StreamingCTC
from lstmlite.train import fit, load_run_data
from lstmlite.train import metrics as M
from lstmlite.train.sequence import PAD_LABEL
from lstmlite.train.streaming import evaluate_streaming
from lstmlite.train.trainer import predict


@pytest.fixture(scope="module")
def ctc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ctc run on synthesized spoken digits (one or two per utterance, so the
    utterances differ in length and the shorter ones are padded)."""
    root = tmp_path_factory.mktemp("ctcrun")
    data_dir = make_spoken_digits(root / "digits", n=16, seed=0, max_digits=2)
    fit({"data": {"source": str(data_dir), "task": "ctc", "val_fraction": 0.25, "test_fraction": 0.25},
         "model": {"hidden_size": 16}, "train": {"epochs": 2, "batch_size": 4}}, root / "run", progress=False)
    return root / "run"


@pytest.mark.parametrize("split, limit", [("test", None), ("val", 3)])
def test_streams_each_utterance_of_the_named_split_to_its_length(ctc_run: Path, monkeypatch: pytest.MonkeyPatch,
                                                                split: str, limit: int | None) -> None:
    """Each utterance of the named split (the first ``limit`` of them) is streamed with
    exactly its valid frames, and the error rates are those of PyTorch's greedy decode
    of the same frames.

    Catches: the padded rows streamed whole (padding frames after each utterance), the
    split or limit ignored."""
    streamed: list[np.ndarray] = []
    decode = StreamingCTC.decode

    def spy(self: StreamingCTC, frames: np.ndarray) -> list[int]:
        streamed.append(np.array(frames))
        return decode(self, frames)

    monkeypatch.setattr(StreamingCTC, "decode", spy)
    result = evaluate_streaming(ctc_run, split=split, limit=limit, repeats=1)

    run = load_run(ctc_run)
    data = load_run_data(run)
    part = getattr(data, split)
    n = len(part) if limit is None else limit
    assert result["utterances"] == n and result["split"] == split
    assert len(set(part.lengths.tolist())) > 1 and part.lengths.min() < part.x.shape[1]  # the premise: padding
    assert [len(f) for f in streamed] == part.lengths[:n].tolist()
    for k, frames in enumerate(streamed):
        np.testing.assert_array_equal(frames, part.x[k, : part.lengths[k]])

    logits = predict(run.model, data, part, device=torch.device("cpu"))
    alphabet = list(data.class_names)
    truth = ["".join(alphabet[v] for v in row if v != PAD_LABEL) for row in part.y[:n]]
    reference = ["".join(alphabet[v] for v in greedy_decode(logits[k], int(part.lengths[k]))) for k in range(n)]
    assert result["agreement"] == 1.0  # the runtime decodes as PyTorch does (tests/runtime checks the logits)
    assert result["cer"] == pytest.approx(M.cer(truth, reference))
    assert result["wer"] == pytest.approx(M.wer(truth, reference))


def test_refuses_a_run_that_is_not_ctc(tmp_path: Path) -> None:
    """A classify run is refused with the task named, not streamed."""
    rows = "\n".join(f"{'good fine' if i % 2 else 'bad poor'},{'pos' if i % 2 else 'neg'}" for i in range(40))
    (tmp_path / "t.csv").write_text("text,label\n" + rows + "\n", encoding="utf-8")
    fit({"data": {"source": str(tmp_path / "t.csv"), "task": "classify"}, "model": {"hidden_size": 4},
         "train": {"epochs": 1}}, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="'classify'"):
        evaluate_streaming(tmp_path / "run")


def test_an_lsl_file_of_another_model_is_named_not_streamed(ctc_run: Path, tmp_path: Path) -> None:
    """--lsl must be an export of the run: a file of another architecture (here the same
    run widened to 24 hidden units, its head unchanged) is refused naming the file, both
    architectures and the command that writes the run's own; a missing path and a folder
    are named as such. It said "streaming CTC needs a per-step head" for a classifier's file
    and streamed any tagger of the same output size."""
    from lstmlite.export.lsl import default_weights, spec_from_module, write_lsl
    from lstmlite.nn import build_model

    config = load_run(ctc_run).model.config()
    other = tmp_path / "other.lsl"
    spec = spec_from_module(build_model({**config, "hidden_size": 24}))
    other.write_bytes(write_lsl(spec, weights=default_weights(spec)))
    with pytest.raises(ValueError) as caught:
        evaluate_streaming(ctc_run, lsl=other, limit=1, repeats=1)
    message = str(caught.value)
    assert message.startswith(f"{other}: not an export of {ctc_run} (a tagger: lstm 20->24, 10 outputs; the run is "
                              f"a tagger: lstm 20->16, 10 outputs)") and message.endswith(
        f"lstmlite export {ctc_run} --format lsl writes this run's file")
    with pytest.raises(FileNotFoundError, match=f"^{tmp_path / 'nope.lsl'}: no such .lsl file; lstmlite export"):
        evaluate_streaming(ctc_run, lsl=tmp_path / "nope.lsl", limit=1, repeats=1)
    with pytest.raises(FileNotFoundError, match=f"^{tmp_path}: a folder, not an .lsl file"):
        evaluate_streaming(ctc_run, lsl=tmp_path, limit=1, repeats=1)


def test_an_int8_export_of_the_run_is_streamed(ctc_run: Path, tmp_path: Path) -> None:
    """The architecture check compares sizes and head, not the storage form: the run's own
    file with int8 weights streams (a check comparing every layer's weight form refused it)."""
    from lstmlite.export.lsl import spec_from_run, write_lsl

    path = tmp_path / "int8.lsl"
    path.write_bytes(write_lsl(spec_from_run(ctc_run), weights="int8"))
    result = evaluate_streaming(ctc_run, lsl=path, limit=2, repeats=1)
    assert result["utterances"] == 2 and 0.0 <= result["agreement"] <= 1.0
