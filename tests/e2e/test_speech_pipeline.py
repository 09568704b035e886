"""A speech user's path, as the CLI runs it: synthesize spoken digits → train a CTC
model → int8 recipe → export .lsl → stream the test set frame by frame through the
native runtime, whose transcripts must equal the PyTorch model's. And the same
train → compress → export → runtime path for a tagger."""

from __future__ import annotations

import json

import numpy as np
import torch

from lstmlite.cli.main import main
from lstmlite.ctc import greedy_decode
from lstmlite.data.synth import make_spoken_digits
from lstmlite.io import load_run, read_json
from lstmlite.runtime import Engine
from lstmlite.runtime.stream import StreamingCTC
from lstmlite.train import load_run_data
from lstmlite.train.trainer import predict

RECIPE = "int8"  # the shipped recipe, by name


def test_speech_train_compress_export_stream(tmp_path, capsys):
    data_dir = make_spoken_digits(tmp_path / "digits", n=16, seed=0, max_digits=2)
    run, small, exported = tmp_path / "run", tmp_path / "run-int8", tmp_path / "lsl"
    assert main(["train", "--data", str(data_dir), "--task", "ctc", "--out", str(run), "--no-progress",
                 "--train.epochs=2", "--train.batch_size=4", "--model.hidden_size=16",
                 "--data.val_fraction=0.25", "--data.test_fraction=0.25"]) == 0
    metrics = read_json(run / "metrics.json")
    assert metrics["task"] == "ctc" and metrics["metric_name"] == "cer"
    assert {"cer", "wer", "sequence_accuracy", "loss"} <= set(metrics["test"])
    assert main(["compress", str(run), "--recipe", RECIPE, "--out", str(small), "--no-progress"]) == 0
    assert read_json(small / "metrics.json")["size_bytes"] < metrics["size_bytes"]
    assert main(["export", str(small), "--format", "lsl", "--out", str(exported)]) == 0
    lsl = exported / "model.lsl"
    assert lsl.stat().st_size == read_json(small / "metrics.json")["size_bytes"]
    capsys.readouterr()

    assert main(["eval", str(small), "--stream", "--lsl", str(lsl), "--json"]) == 0
    streamed = json.loads(capsys.readouterr().out)
    assert streamed["agreement"] == 1.0 and streamed["utterances"] == 4
    assert streamed["rtf"] > 0 and streamed["us_per_frame"] > 0

    # frame by frame, the runtime's logits are the PyTorch int8 model's
    compressed = load_run(small)
    data = load_run_data(compressed)
    logits = predict(compressed.model, data, data.test, device=torch.device("cpu"))
    engine = Engine(lsl.read_bytes())
    rec = StreamingCTC(engine)
    for k in range(len(data.test)):
        n = int(data.test.lengths[k])
        rec.reset()
        frames = np.stack([engine.step(f, rec.state) for f in data.test.x[k, :n]])
        np.testing.assert_allclose(frames, logits[k, :n], rtol=1e-4, atol=1e-4)
        assert rec.decode(data.test.x[k, :n]) == greedy_decode(logits[k], n)


def test_tagger_train_compress_export_run(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(40):
        words = [("the", "DET"), (str(rng.choice(["cat", "dog"])), "NOUN"), ("runs", "VERB")]
        lines.append("".join(f"{w}\t{t}\n" for w, t in words))
    (tmp_path / "pos.tsv").write_text("\n".join(lines))
    run, small = tmp_path / "run", tmp_path / "run-int8"
    assert main(["train", "--data", str(tmp_path / "pos.tsv"), "--task", "tag", "--out", str(run), "--no-progress",
                 "--train.epochs=2", "--model.hidden_size=8", "--model.embed_dim=8"]) == 0
    assert read_json(run / "metrics.json")["metric_name"] == "accuracy"
    assert main(["compress", str(run), "--recipe", RECIPE, "--out", str(small), "--no-progress"]) == 0
    assert main(["export", str(small), "--format", "lsl", "--out", str(tmp_path / "lsl")]) == 0
    compressed = load_run(small)
    data = load_run_data(compressed)
    expected = predict(compressed.model, data, data.test, device=torch.device("cpu"))
    got = Engine((tmp_path / "lsl" / "model.lsl").read_bytes()).run(data.test.x, lengths=data.test.lengths)
    for k, n in enumerate(data.test.lengths):
        np.testing.assert_allclose(got[k, :n], expected[k, :n], rtol=1e-4, atol=1e-4)


def test_frame_tagger_train_compress_export_run(tmp_path):
    """--task tag on real-valued frames (.npz, a label per step): the same path."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 12, 3)).astype(np.float32)
    y = (np.cumsum(x[:, :, 0], axis=1) > 0).astype(np.int64)  # needs memory of earlier frames
    np.savez(tmp_path / "frames.npz", x=x, y=y, lengths=rng.integers(4, 13, size=60))
    run, small = tmp_path / "run", tmp_path / "run-int8"
    assert main(["train", "--data", str(tmp_path / "frames.npz"), "--task", "tag", "--out", str(run),
                 "--no-progress", "--train.epochs=2", "--model.hidden_size=8"]) == 0
    metrics = read_json(run / "metrics.json")
    assert metrics["task"] == "tag" and metrics["metric_name"] == "accuracy"
    assert main(["compress", str(run), "--recipe", RECIPE, "--out", str(small), "--no-progress"]) == 0
    assert main(["export", str(small), "--format", "lsl", "--out", str(tmp_path / "lsl")]) == 0
    compressed = load_run(small)
    data = load_run_data(compressed)
    assert data.input_size == 3 and compressed.model.embedding is None
    expected = predict(compressed.model, data, data.test, device=torch.device("cpu"))
    got = Engine((tmp_path / "lsl" / "model.lsl").read_bytes()).run(data.test.x, lengths=data.test.lengths)
    for k, n in enumerate(data.test.lengths):
        np.testing.assert_allclose(got[k, :n], expected[k, :n], rtol=1e-4, atol=1e-4)
