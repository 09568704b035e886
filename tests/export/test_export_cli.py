"""``lstmlite export`` and ``lstmlite import`` as a user runs them (through cli.main)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")

from lstmlite.cli.main import main  # noqa: E402
from lstmlite.io import load_run, save_run  # noqa: E402
from lstmlite.nn import SequenceClassifier  # noqa: E402


def test_export_then_import_onnx(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    model = SequenceClassifier(vocab_size=50, embed_dim=8, hidden_size=12, n_classes=3).eval()
    save_run(tmp_path / "run", model, {"task": "classify"})
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--out", str(tmp_path / "deploy")]) == 0
    out = capsys.readouterr().out
    assert "model.onnx" in out and "max abs difference" in out
    path = tmp_path / "deploy" / "model.onnx"
    x = torch.randint(0, 50, (2, 7))
    lengths = torch.tensor([7, 3])
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy(), "lengths": lengths.numpy()})[0]
    np.testing.assert_allclose(got, model(x, lengths).detach().numpy(), rtol=1e-5, atol=1e-6)
    # a second export to the same place is refused, the file kept (no --force for exports)
    written = path.read_bytes()
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--opset", "18",
                 "--out", str(tmp_path / "deploy")]) == 2
    assert f"{path} exists; choose another --out" in capsys.readouterr().err and path.read_bytes() == written

    assert main(["import", "onnx", str(path), "--out", str(tmp_path / "back")]) == 0
    back = load_run(tmp_path / "back")
    assert back.config["import"]["source"] == "onnx"
    torch.testing.assert_close(back.model(x, lengths), model(x, lengths), rtol=0, atol=0)


def test_import_torch_state_dict_with_arch(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    lstm, head = torch.nn.LSTM(4, 6, batch_first=True), torch.nn.Linear(6, 3)
    state = {**{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
             **{f"fc.{k}": v for k, v in head.state_dict().items()}}
    torch.save(state, tmp_path / "w.pt")
    argv = ["import", "torch", str(tmp_path / "w.pt"), "--arch", '{"pooling": "last"}', "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    # importing again over that run dir needs --force (import's --help)
    assert main(argv) == 2
    assert "a run dir already exists here; choose another --out, or --force" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    model = load_run(tmp_path / "run").model
    x = torch.randn(2, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), head(lstm(x)[0][:, -1]))


def test_import_onnx_kind_names_what_the_file_does_not_say(tmp_path, capsys) -> None:
    """--kind decides the model kind of a graph without lstmlite's metadata: a head of
    several outputs reads as a classifier unless --kind forecaster says otherwise (import's
    --help). Catches --kind not passed to import_onnx."""
    import onnx

    from lstmlite.export.onnx import export_onnx
    from lstmlite.nn import Forecaster

    torch.manual_seed(0)
    model = Forecaster(input_size=1, horizon=3, instance_norm=False, hidden_size=4).eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    graph = onnx.load(str(path))
    del graph.metadata_props[:]  # as another exporter writes it
    onnx.save(graph, str(path))
    for kind, expected in ((None, "SequenceClassifier"), ("forecaster", "Forecaster")):
        out = tmp_path / str(kind)
        assert main(["import", "onnx", str(path), "--out", str(out), *(["--kind", kind] if kind else [])]) == 0
        assert type(load_run(out).model).__name__ == expected


def test_errors_are_one_line(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    save_run(tmp_path / "run", SequenceClassifier(input_size=3, hidden_size=4, n_classes=2), {})
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--quantize", "qdq",
                 "--out", str(tmp_path / "q")]) == 2
    assert "quantized weights" in capsys.readouterr().err
    assert main(["import", "keras", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "r")]) == 2
    assert "no such file" in capsys.readouterr().err
    # options of another framework are refused before the file is read (import's --help)
    assert main(["import", "keras", str(tmp_path / "missing.keras"), "--kind", "lm", "--out", str(tmp_path / "r")]) == 2
    assert "--arch/--kind are for torch and onnx imports" in capsys.readouterr().err
    assert main(["import", "onnx", str(tmp_path / "missing.onnx"), "--arch", "{}", "--out", str(tmp_path / "r")]) == 2
    assert "--arch is for torch imports" in capsys.readouterr().err


def test_export_fastgrnn_int4_onnx_through_the_cli(tmp_path, capsys) -> None:
    """FastGRNN exports (a Scan); int4 codes are packed at the default opset and widened, with
    a note and the real file size, at an older one."""
    onnx = pytest.importorskip("onnx")
    from lstmlite.compress import compress_, compression_state
    from lstmlite.compress.quantize import WeightQuantConfig

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, cell="fastgrnn", hidden_size=8, n_classes=3,
                               rnn_options={"urank": 2}).eval()
    compress_(model, WeightQuantConfig(bits=4))
    save_run(tmp_path / "run", model, {"task": "classify", "compression": compression_state(model)})
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--quantize", "qdq",
                 "--out", str(tmp_path / "a.onnx")]) == 0
    out = capsys.readouterr().out
    assert "max abs difference" in out and "stored as int8" not in out
    assert onnx.load(str(tmp_path / "a.onnx")).opset_import[0].version == 21
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--quantize", "qdq", "--opset", "17",
                 "--out", str(tmp_path / "b.onnx")]) == 0
    out = capsys.readouterr().out
    assert "int4 weights stored as int8 codes" in out and "--opset 21" in out
    assert (tmp_path / "b.onnx").stat().st_size > (tmp_path / "a.onnx").stat().st_size


def test_a_quantized_run_exported_without_qdq_is_said_to_hold_float_weights(tmp_path, capsys) -> None:
    """An int8 run's ONNX file without --quantize holds float32 weights (about four times the
    codes' bytes): the command says so and names --quantize qdq, whose file is the smaller
    one; a float run's export says nothing of it. Catches the float storage left unsaid (a
    user quoting the file's size as the int8 model's) and the note printed for float runs."""
    pytest.importorskip("onnx")
    from lstmlite.compress import compress_, compression_state
    from lstmlite.compress.quantize import WeightQuantConfig

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=32, n_classes=3).eval()
    save_run(tmp_path / "float", model, {"task": "classify"})
    compress_(model, WeightQuantConfig(bits=8))
    save_run(tmp_path / "int8", model, {"task": "classify", "compression": compression_state(model)})
    assert main(["export", str(tmp_path / "int8"), "--format", "onnx", "--out", str(tmp_path / "f.onnx")]) == 0
    assert "int8 weights are stored as float32" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "int8"), "--format", "onnx", "--quantize", "qdq",
                 "--out", str(tmp_path / "q.onnx")]) == 0
    assert "stored as float32" not in capsys.readouterr().out
    assert (tmp_path / "q.onnx").stat().st_size < (tmp_path / "f.onnx").stat().st_size / 2
    assert main(["export", str(tmp_path / "float"), "--format", "onnx", "--out", str(tmp_path / "g.onnx")]) == 0
    assert "stored as float32" not in capsys.readouterr().out


def test_unexportable_form_is_one_line_naming_the_layer(tmp_path, capsys) -> None:
    save_run(tmp_path / "run", SequenceClassifier(input_size=3, hidden_size=4, n_classes=2,
                                                  rnn_options={"proj_size": 2}), {})
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "rnn (LSTM, proj_size=2)" in err and "nearest exportable form" in err and err.count("\n") == 1


def test_export_int4_seq2seq_onnx_through_the_cli(tmp_path, capsys) -> None:
    """A seq2seq run trained, compressed with an int4 recipe and exported with --quantize qdq,
    as a user runs them: both graphs store the run's int4 codes as ONNX INT4 at opset 21 and pass
    the command's ONNX Runtime check; an older --opset widens them to int8, says so under the
    sizes, and the files grow."""
    onnx = pytest.importorskip("onnx")
    from lstmlite.compress.quantize import quantized_tensors

    pairs = tmp_path / "p.tsv"
    pairs.write_text("abc\tcba\nbca\tacb\ncab\tbac\nab\tba\n" * 10, encoding="utf-8")
    (tmp_path / "int4.json").write_text('{"steps": [{"method": "int4"}]}', encoding="utf-8")
    assert main(["train", "--data", str(pairs), "--task", "seq2seq", "--out", str(tmp_path / "run"), "--no-progress",
                 "--train.epochs=1", "--model.hidden_size=8", "--model.embed_dim=8"]) == 0
    assert main(["compress", str(tmp_path / "run"), "--recipe", str(tmp_path / "int4.json"),
                 "--out", str(tmp_path / "q4"), "--no-progress"]) == 0
    coded = quantized_tensors(load_run(tmp_path / "q4").model)
    assert coded and {q.bits for q in coded.values()} == {4}
    capsys.readouterr()
    assert main(["export", str(tmp_path / "q4"), "--format", "onnx", "--quantize", "qdq",
                 "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "decoder step logits" in out and "max abs difference" in out and "stored as int8" not in out
    for name in ("encoder.onnx", "decoder_step.onnx"):
        proto = onnx.load(str(tmp_path / "a" / name))
        assert proto.opset_import[0].version == 21
        assert {i.data_type for i in proto.graph.initializer if i.name.endswith(".codes")} == {onnx.TensorProto.INT4}
    assert main(["export", str(tmp_path / "q4"), "--format", "onnx", "--quantize", "qdq", "--opset", "17",
                 "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "int4 weights stored as int8 codes" in out and "--opset 21" in out
    for name in ("encoder.onnx", "decoder_step.onnx"):
        assert (tmp_path / "b" / name).stat().st_size > (tmp_path / "a" / name).stat().st_size


def test_an_onnx_file_that_differs_from_its_model_is_removed_and_fails(tmp_path, monkeypatch, capsys) -> None:
    """The ONNX check is enforced as docs/interop.md says: a file whose ONNX Runtime outputs are
    more than --tolerance from the model's is removed and the command exits 2 (a broken graph,
    stood in for by a check that measures 0.01, never reaches the user's --out)."""
    import lstmlite.export.onnx as onnx_export

    save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
             {"task": "classify"})
    monkeypatch.setattr(onnx_export, "check_onnx", lambda model, path, **kw: 0.01)
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "differs from the model by 1.00e-02" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--tolerance", "0.1",
                 "--out", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").is_file()


def test_seq2seq_lsl_export_is_held_to_the_tolerance(tmp_path, capsys, monkeypatch) -> None:
    """`export --format lsl` of a seq2seq run checks the bundle's step log-probabilities against the
    model and holds them to --tolerance as every other export: an honest bundle prints its difference
    and passes; a bundle whose side file's head is off (the writer planted wrong) fails the command in
    one line and leaves none of its three files; float weights rounded by --weights int4 are held to
    it against the run carrying the same codes. --stateful / --no-lengths / --probabilities, which the seq2seq ONNX pair cannot honour,
    are refused in one line with nothing written. Catches the CLI printing "k/64 identical" and
    exiting 0 whatever the bundle computes, and the ONNX flags silently dropped."""
    import lstmlite.export.seq2seq as s2s

    pairs = tmp_path / "p.tsv"
    pairs.write_text("abc\tcba\nbca\tacb\ncab\tbac\nab\tba\n" * 10, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--data", str(pairs), "--task", "seq2seq", "--out", str(run), "--no-progress",
                 "--train.epochs=1", "--model.hidden_size=8", "--model.embed_dim=4"]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--format", "lsl", "--out", str(tmp_path / "ok")]) == 0
    out = capsys.readouterr().out
    error = float(re.search(r"log-probabilities: max abs difference (\S+)", out).group(1))
    assert error < 1e-5

    side = s2s._side_tensors

    def off(model):  # a wrong writer: the head stored 1.5 times too large
        tensors, cols = side(model)
        return {k: v * 1.5 if k == "head.weight" else v for k, v in tensors.items()}, cols

    monkeypatch.setattr(s2s, "_side_tensors", off)
    assert main(["export", str(run), "--format", "lsl", "--out", str(tmp_path / "bad")]) != 0
    err = capsys.readouterr().err
    assert "differ from the model" in err and "--tolerance" in err and err.count("\n") == 1
    assert not [p for p in (tmp_path / "bad").iterdir()]
    monkeypatch.undo()

    # float encoder / decoder rounded to int4 by the export: held to --tolerance against the run
    # carrying the same codes (export.seq2seq.rounded_reference), where the float run is ~1e-2 away
    assert main(["export", str(run), "--format", "lsl", "--weights", "int4", "--out", str(tmp_path / "r4")]) == 0
    out = capsys.readouterr().out
    error = float(re.search(r"against the run with the same int4 codes: max abs difference (\S+)\)", out).group(1))
    assert error < 1e-5
    monkeypatch.setattr(s2s, "_side_tensors", off)
    assert main(["export", str(run), "--format", "lsl", "--weights", "int4", "--out", str(tmp_path / "r4bad")]) != 0
    assert "differ from the model" in capsys.readouterr().err
    assert not [p for p in (tmp_path / "r4bad").iterdir()]
    monkeypatch.undo()
    for flag in ("--stateful", "--no-lengths", "--probabilities"):
        assert main(["export", str(run), "--format", "onnx", flag, "--out", str(tmp_path / "o")]) != 0
        err = capsys.readouterr().err
        assert err.startswith("lstmlite export: error: " + flag) and "seq2seq" in err and err.count("\n") == 1
        assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


@pytest.mark.parametrize("fmt,argv,named", [
    ("lsl", ["--form", "integer", "--calibrate", "5"], "--form, --calibrate: for --format c, not --format lsl"),
    ("lsl", ["--no-check"], "--no-check: for --format onnx, not --format lsl (the .lsl file is always checked"),
    ("lsl", ["--opset", "17", "--data", "japanese_vowels"], "--data, --opset: for --format c / --format onnx"),
    ("onnx", ["--weights", "int8"], "--weights: for --format lsl, not --format onnx"),
    ("onnx", ["--tflite-kernel", "lite"], "--tflite-kernel: for --format c, not --format onnx"),
])
def test_an_option_of_another_format_is_refused(tmp_path, capsys, fmt, argv, named):
    """An option only another format reads, given with --format lsl or onnx, is one line naming
    where it belongs, with nothing written, as --format c refuses theirs: --form integer
    --calibrate 5 with --format lsl wrote the run's float weights without a word."""
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
                   {"task": "classify"})
    assert main(["export", str(run), "--format", fmt, *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
    assert not (tmp_path / "out").exists()
    # each format still takes its own options
    assert main(["export", str(run), "--format", "lsl", "--weights", "int8", "--out", str(tmp_path / "own")]) == 0


def test_no_lengths_and_probabilities_shape_the_graph(tmp_path, capsys) -> None:
    """--no-lengths drops the 'lengths' input and --probabilities ends the graph with Softmax
    (export's --help): run in ONNX Runtime, the file takes 'input' alone and gives the
    softmax of the model's logits, computed here with torch.softmax. Catches either option
    not passed on to export_onnx (a 'lengths' input, or logits)."""
    torch.manual_seed(0)
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
                   {"task": "classify"})
    out = tmp_path / "p.onnx"
    assert main(["export", str(run), "--format", "onnx", "--no-lengths", "--probabilities", "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out))
    assert [i.name for i in session.get_inputs()] == ["input"]
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    probabilities = session.run(None, {"input": x})[0]
    with torch.no_grad():
        expected = torch.softmax(load_run(run).model(torch.as_tensor(x)), dim=-1).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_a_check_that_measures_nan_fails(tmp_path, monkeypatch, capsys) -> None:
    """A check whose difference is NaN (the file computes NaN where the model does not) fails
    as a difference beyond --tolerance does, however large the tolerance: NaN compares false
    with every number. Catches the check written as ``error > tolerance``, which lets NaN
    through."""
    import lstmlite.export.onnx as onnx_export

    save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
             {"task": "classify"})
    monkeypatch.setattr(onnx_export, "check_onnx", lambda model, path, **kw: float("nan"))
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--tolerance", "1e9",
                 "--out", str(tmp_path / "m.onnx")]) == 2
    assert "differs from the model by nan (> --tolerance 1e+09)" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_no_check_skips_the_onnx_runtime_check(tmp_path, monkeypatch, capsys) -> None:
    """--no-check writes the file without running it in ONNX Runtime (export's --help): a
    check that would fail (it measures 1.0) is never reached, and nothing claims a
    comparison. Catches --no-check ignored."""
    import lstmlite.export.onnx as onnx_export

    save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
             {"task": "classify"})
    monkeypatch.setattr(onnx_export, "check_onnx", lambda model, path, **kw: 1.0)
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--no-check",
                 "--out", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").is_file() and "ONNX Runtime vs" not in capsys.readouterr().out
