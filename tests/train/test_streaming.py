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
