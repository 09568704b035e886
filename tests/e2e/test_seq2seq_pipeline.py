"""A text-normalization user's path, as the CLI runs it: make text-norm pairs → train a
seq2seq model → evaluate with beam search → int8 recipe → export the native bundle and
the ONNX pair; the native bundle's bytes are the run's size_bytes and its greedy outputs
equal PyTorch's."""

from __future__ import annotations

import json

import pytest

from lstmlite.cli.main import main
from lstmlite.io import load_run, read_json
from lstmlite.runtime.seq2seq import NativeSeq2Seq
from lstmlite.seq2seq import decode_torch
from lstmlite.train import load_run_data


def test_text_norm_train_compress_export(tmp_path, capsys):
    data = tmp_path / "tn"
    assert main(["data", "make", "text-norm", "--out", str(data), "--n", "120", "--seed", "1"]) == 0
    run, small = tmp_path / "run", tmp_path / "run-int8"
    assert main(["train", "--data", str(data / "pairs.tsv"), "--task", "seq2seq", "--out", str(run), "--no-progress",
                 "--train.epochs=1", "--model.hidden_size=16", "--model.embed_dim=8",
                 "--model.attention=bahdanau"]) == 0
    metrics = read_json(run / "metrics.json")
    assert metrics["task"] == "seq2seq" and metrics["metric_name"] == "exact_match"
    assert {"exact_match", "bleu", "chrf", "cer", "loss"} <= set(metrics["test"])
    assert metrics["size_basis"] == "lsl"
    capsys.readouterr()
    assert main(["eval", str(run), "--decoder", "beam", "--beam", "3", "--json"]) == 0
    beam = json.loads(capsys.readouterr().out)
    assert beam["test"]["decoder"] == "beam" and beam["test"]["beam"] == 3
    assert main(["compress", str(run), "--recipe", "int8", "--out", str(small), "--no-progress"]) == 0
    small_metrics = read_json(small / "metrics.json")
    assert small_metrics["size_bytes"] < metrics["size_bytes"] / 2
    assert main(["export", str(small), "--format", "lsl", "--out", str(tmp_path / "lsl")]) == 0
    files = sorted(p.name for p in (tmp_path / "lsl").iterdir())
    assert files == ["decoder.lsl", "encoder.lsl", "seq2seq.safetensors"]
    assert sum(p.stat().st_size for p in (tmp_path / "lsl").iterdir()) == small_metrics["size_bytes"]
    assert main(["export", str(small), "--format", "onnx", "--quantize", "qdq", "--out", str(tmp_path / "onnx")]) == 0
    out = capsys.readouterr().out
    assert "max abs difference" in out and "identical" in out
    model = load_run(small).model
    test = load_run_data(load_run(small)).test
    native = NativeSeq2Seq(tmp_path / "lsl").decode(test.x, test.lengths)
    assert native == decode_torch(model, test.x, test.lengths)


def test_cli_errors_are_one_line(tmp_path, capsys):
    path = tmp_path / "bad.tsv"
    path.write_text("a\tb\tc\n", encoding="utf-8")
    # the CLI's error exit (main.py returns 1 for every library error)
    assert main(["train", "--data", str(path), "--task", "seq2seq", "--out", str(tmp_path / "r")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.tsv: line 1" in err[0] and "Traceback" not in err[0]


@pytest.mark.slow
def test_text_norm_is_learned(tmp_path):
    """The default model learns text normalization (minutes on one core)."""
    assert main(["data", "make", "text-norm", "--out", str(tmp_path / "tn"), "--n", "3000"]) == 0
    assert main(["train", "--data", str(tmp_path / "tn" / "pairs.tsv"), "--task", "seq2seq", "--out",
                 str(tmp_path / "run"), "--no-progress", "--train.epochs=30", "--train.lr=0.003"]) == 0
    assert read_json(tmp_path / "run" / "metrics.json")["metric"] > 0.8

