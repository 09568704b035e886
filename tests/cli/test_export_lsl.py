"""``lstmlite export --format lsl``: the file loads in the runtime and matches the model; and
the refusals every format shares (an --out named for another format, an --opset out of range,
a check beyond a --tolerance the user gave)."""

import numpy as np
import pytest
import torch

from lstmlite.cli.main import main
from lstmlite.io import load_run, save_run
from lstmlite.nn import SequenceClassifier


def test_export_lsl_matches_model(tmp_path, capsys):
    torch.manual_seed(0)
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=5, hidden_size=16, n_classes=3).eval(),
                   {"task": "classify"})
    assert main(["export", str(run), "--format", "lsl", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "max abs difference" in out
    from lstmlite.runtime import load

    x = np.random.default_rng(1).standard_normal((3, 7, 5)).astype(np.float32)
    expected = load_run(run).model(torch.as_tensor(x)).detach().numpy()
    got = load(tmp_path / "out" / "model.lsl").run(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # a second export to the same place is refused, nothing overwritten
    assert main(["export", str(run), "--format", "lsl", "--out", str(tmp_path / "out")]) == 2


def test_export_block_pruned_run_as_int8_sparse(tmp_path, capsys):
    """A run pruned by lstmlite.compress with (1, 4) blocks exports as int8-sparse: a
    smaller file the runtime reads as sparse, with the int8 model's outputs."""
    from lstmlite.compress import MagnitudePruneConfig, compress_, compression_state
    from lstmlite.runtime import load

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=12, hidden_size=64, n_classes=4).eval()
    compress_(model, MagnitudePruneConfig(sparsity=0.75, block=(1, 4)))
    run = save_run(tmp_path / "run", model, {"task": "classify", "compression": compression_state(model)})
    for weights in ("int8", "int8-sparse"):
        assert main(["export", str(run), "--format", "lsl", "--weights", weights,
                     "--out", str(tmp_path / weights / "model.lsl")]) == 0
    capsys.readouterr()
    dense, sparse = load(tmp_path / "int8" / "model.lsl"), load(tmp_path / "int8-sparse" / "model.lsl")
    assert sparse.info["layers"][0]["weights"] == "int8-sparse"
    # the payload of a dense int8 file: codes, a float scale per row, float biases
    params = [p for _, p in model.named_parameters()]
    dense_int8 = sum(p.numel() + 4 * p.shape[0] if p.ndim == 2 else 4 * p.numel() for p in params)
    for weights in ("int8", "int8-sparse"):  # int8 keeps the pruned matrices bitmask-sparse
        assert (tmp_path / weights / "model.lsl").stat().st_size < 0.7 * dense_int8
    x = np.random.default_rng(1).standard_normal((3, 9, 12)).astype(np.float32)
    np.testing.assert_allclose(sparse.run(x), dense.run(x), rtol=1e-5, atol=1e-6)
    expected = load_run(run).model(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(sparse.run(x), expected, atol=0.05)  # int8 weights vs float


def test_an_export_that_differs_from_its_model_is_removed_and_fails(tmp_path, monkeypatch, capsys):
    from lstmlite.runtime import Engine

    torch.manual_seed(0)
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=5, hidden_size=16, n_classes=3).eval(),
                   {"task": "classify"})
    real_run = Engine.run
    monkeypatch.setattr(Engine, "run", lambda self, x, **kw: real_run(self, x, **kw) + 0.5)  # a broken runtime
    assert main(["export", str(run), "--format", "lsl", "--out", str(tmp_path / "out")]) == 2
    assert "differs from the model" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.lsl").exists()
    monkeypatch.undo()
    # a float run exported as int8: the rounding is reported, not held to the tolerance
    assert main(["export", str(run), "--format", "lsl", "--weights", "int8", "--out", str(tmp_path / "q")]) == 0
    assert "at export" in capsys.readouterr().out


@pytest.mark.parametrize("weights", ["int8", "int4", "int7r"])
def test_a_float_run_rounded_at_export_is_checked_against_the_same_codes(weights, tmp_path, monkeypatch, capsys):
    """--weights int8 / int4 / int7r round a float run's matrices: the file is held to --tolerance
    against the run carrying those same codes (lstmlite.export.lsl.rounded_reference), where it was
    only printed beside the float run, so a runtime that computed the rounded file wrongly passed."""
    from lstmlite.runtime import Engine

    torch.manual_seed(0)
    model = SequenceClassifier(vocab_size=30, embed_dim=6, hidden_size=16, n_classes=3, num_layers=2).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # weights large enough that rounding them moves the logits past 1e-3
    run = save_run(tmp_path / "run", model, {"task": "classify"})
    assert main(["export", str(run), "--format", "lsl", "--weights", weights, "--out", str(tmp_path / "ok")]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("native runtime vs"))
    assert f"same {weights} codes" in line and float(line.rsplit(" ", 1)[1]) <= 1e-5
    rounding = float(out.split("by up to ")[1].split()[0])
    assert rounding > 1e-3  # the premise: against the float run this would exceed --tolerance
    real_run = Engine.run
    monkeypatch.setattr(Engine, "run", lambda self, x, **kw: real_run(self, x, **kw) + 0.01)  # a broken runtime
    assert main(["export", str(run), "--format", "lsl", "--weights", weights, "--out", str(tmp_path / "bad")]) == 2
    assert "differs from the model" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_a_partly_quantized_run_exports_exactly_and_reports_rounding_when_asked(tmp_path, capsys):
    """Recurrent weights quantized, embedding and head float: the default (auto)
    export keeps each as the model has it, so the file is exact and held to the
    tolerance; --weights int8 rounds the float two, which is reported, not enforced."""
    from lstmlite.compress import WeightQuantConfig, compress_, compression_state
    from lstmlite.compress.targets import recurrent_weight_filter
    from lstmlite.nn import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(vocab_size=50, embed_dim=32, hidden_size=64).eval()
    compress_(model, WeightQuantConfig(bits=8), filter=recurrent_weight_filter())
    run = save_run(tmp_path / "run", model, {"task": "lm", "compression": compression_state(model)})
    assert main(["export", str(run), "--format", "lsl", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "at export" not in out  # exact: held to --tolerance
    listing = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith(("emb ", "l0.0.w_hh "))}
    assert listing == {"emb": "fp32", "l0.0.w_hh": "int8"}
    assert main(["export", str(run), "--format", "lsl", "--weights", "int8", "--out", str(tmp_path / "b")]) == 0
    assert "at export" in capsys.readouterr().out


def _export_forms(tmp_path, forms):
    """A small classifier's run dir, exported with --format lsl once per weight form to
    tmp_path / FORM / model.lsl; returns the run dir."""
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=12, hidden_size=32, n_classes=4).eval()
    run = save_run(tmp_path / "run", model, {"task": "classify"})
    for weights in forms:
        assert main(["export", str(run), "--format", "lsl", "--weights", weights,
                     "--out", str(tmp_path / weights / "model.lsl")]) == 0
    return run


def test_export_int7_writes_7_bit_codes_in_int8_bytes(tmp_path, capsys):
    """--weights int7: every matrix row's codes reach +-63 and no further (ONNX Runtime's
    reduce_range weights), in a file of exactly the int8 export's bytes, whose outputs
    stay near the float model's (within int8-like rounding, flagged not enforced)."""
    from lstmlite.runtime import load
    from lstmlite.runtime.lsl import QTensor, read_lsl

    run = _export_forms(tmp_path, ("int8", "int7"))
    capsys.readouterr()
    int7, int8 = (tmp_path / "int7" / "model.lsl").read_bytes(), (tmp_path / "int8" / "model.lsl").read_bytes()
    assert len(int7) == len(int8)
    codes = [t.q for layer in read_lsl(int7).layers for d in layer.directions for t in d.values()
             if isinstance(t, QTensor)]
    assert codes and all(np.abs(q.astype(int)).max(axis=1).tolist() == [63] * q.shape[0] for q in codes)
    x = np.random.default_rng(1).standard_normal((3, 9, 12)).astype(np.float32)
    expected = load_run(run).model(torch.as_tensor(x)).detach().numpy()
    for acts in ("float", "dynamic"):
        np.testing.assert_allclose(load(tmp_path / "int7" / "model.lsl", activations=acts).run(x), expected,
                                   atol=0.05)


def test_export_int7r_writes_7_bit_codes_for_the_recurrent_matrices_only(tmp_path, capsys):
    """--weights int7r: W_hh's rows reach +-63 and no further, W_ih's and the head's
    +-127, in a file of the int8 export's bytes that the runtime runs with dynamic16
    activations near the float model."""
    from lstmlite.runtime import load
    from lstmlite.runtime.lsl import read_lsl

    run = _export_forms(tmp_path, ("int8", "int7r"))
    capsys.readouterr()
    int7r = (tmp_path / "int7r" / "model.lsl").read_bytes()
    assert len(int7r) == len((tmp_path / "int8" / "model.lsl").read_bytes())
    spec = read_lsl(int7r)
    tops = {name: np.abs(t.q.astype(int)).max(axis=1) for layer in spec.layers for d in layer.directions
            for name, t in d.items() if name.startswith("w_")}
    assert set(tops) == {"w_ih", "w_hh"}
    assert tops["w_hh"].tolist() == [63] * len(tops["w_hh"])
    assert tops["w_ih"].tolist() == [127] * len(tops["w_ih"])
    assert np.abs(spec.head_weight.q.astype(int)).max() == 127
    x = np.random.default_rng(1).standard_normal((3, 9, 12)).astype(np.float32)
    expected = load_run(run).model(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(load(tmp_path / "int7r" / "model.lsl", activations="dynamic16").run(x), expected,
                               atol=0.05)


@pytest.mark.parametrize("table", ["avx2", "portable"])
def test_export_says_which_sparse_matrices_this_cpu_runs_dense(tmp_path, capsys, table, restore_isa):
    """75 % (1, 4)-sparse: the AVX2 kernels run it dense (the export says so and names the
    matrices); the portable ones keep it sparse (nothing said)."""
    from lstmlite import runtime as rt
    from lstmlite.compress import MagnitudePruneConfig, compress_, compression_state

    if table not in rt.supported_isas():
        pytest.skip(f"this CPU lacks {table} (it runs {', '.join(rt.supported_isas())})")
    torch.manual_seed(0)
    model = SequenceClassifier(input_size=12, hidden_size=64, n_classes=4).eval()
    compress_(model, MagnitudePruneConfig(sparsity=0.75, block=(1, 4)))
    run = save_run(tmp_path / "run", model, {"task": "classify", "compression": compression_state(model)})
    rt.set_isa(table)
    assert main(["export", str(run), "--format", "lsl", "--weights", "int8-sparse",
                 "--out", str(tmp_path / "model.lsl")]) == 0
    out = capsys.readouterr().out
    if table == "avx2":
        assert "on this CPU (avx2 kernels) layer 0 W_ih, layer 0 W_hh will run dense" in out
    else:
        assert "will run dense" not in out


def test_weights_fp32_of_a_quantized_run_says_its_codes_are_kept(tmp_path, capsys):
    """``--weights fp32`` keeps float matrices float, but a quantized run's matrices keep
    their own codes (write_lsl's rule): the command says so, and the file is the int8 one
    (its bytes those of ``auto``'s file); a float run's fp32 export prints no such line.
    Catches the codes kept silently under a form that names float."""
    from lstmlite.compress import compress_, compression_state
    from lstmlite.compress.quantize import WeightQuantConfig

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=16, n_classes=3).eval()
    save_run(tmp_path / "float", model, {"task": "classify"})
    compress_(model, WeightQuantConfig(bits=8))
    save_run(tmp_path / "int8", model, {"task": "classify", "compression": compression_state(model)})
    for name, weights in (("int8", "fp32"), ("int8", "auto"), ("float", "fp32")):
        assert main(["export", str(tmp_path / name), "--format", "lsl", "--weights", weights,
                     "--out", str(tmp_path / f"{name}-{weights}.lsl")]) == 0
        said = "quantized matrices keep their own codes" in capsys.readouterr().out
        assert said == (name == "int8" and weights == "fp32"), (name, weights)
    assert (tmp_path / "int8-fp32.lsl").stat().st_size == (tmp_path / "int8-auto.lsl").stat().st_size


def _quantized_run(tmp_path, bits: int):
    """A small classifier's run dir with its weights quantized to ``bits`` (weight_quant)."""
    from lstmlite.compress import compress_, compression_state
    from lstmlite.compress.quantize import WeightQuantConfig

    torch.manual_seed(0)
    model = SequenceClassifier(input_size=4, hidden_size=16, n_classes=3).eval()
    compress_(model, WeightQuantConfig(bits=bits))
    return save_run(tmp_path / f"int{bits}", model, {"task": "classify", "compression": compression_state(model)})


def test_weights_of_fewer_bits_than_the_runs_codes_are_refused(tmp_path, capsys):
    """--weights int4 (or int7 / int7r) of a run whose weights are already int8 codes exits 2 in
    one line naming the run's form and the fix, writing nothing, where it wrote the run's int8
    file (the table saying int8, the bytes int8's) as if int4 had been honoured; int8 of that run
    is as asked, and int8 of an int4 run (its codes kept, a smaller file) says so."""
    run = _quantized_run(tmp_path, 8)
    for weights in ("int4", "int7", "int7r"):
        out = tmp_path / f"{weights}.lsl"
        assert main(["export", str(run), "--format", "lsl", "--weights", weights, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--weights {weights}: this run's weights are already int8 codes" in err, err
        assert f"not {weights}" in err and "--weights auto (int8)" in err and err.count("\n") == 1
        assert ("int4_weight" in err) == (weights == "int4")
        assert not out.exists()
    assert main(["export", str(run), "--format", "lsl", "--weights", "int8", "--out", str(tmp_path / "8.lsl")]) == 0
    assert "keep their own codes" not in capsys.readouterr().out
    run4 = _quantized_run(tmp_path, 4)
    assert main(["export", str(run4), "--format", "lsl", "--weights", "int4", "--out", str(tmp_path / "44.lsl")]) == 0
    assert "keep their own codes" not in capsys.readouterr().out
    assert main(["export", str(run4), "--format", "lsl", "--weights", "int8", "--out", str(tmp_path / "48.lsl")]) == 0
    assert "--weights int8 rounds float matrices to int8; this run's int4 matrices" in capsys.readouterr().out


@pytest.mark.parametrize("fmt, out, takes", [
    ("lsl", "x38.onnx", "--format lsl takes a .lsl file path or a folder (e.g. --out {tmp}/x38.lsl)"),
    ("onnx", "x37.lsl", "--format onnx takes a .onnx file path or a folder (e.g. --out {tmp}/x37.onnx)"),
    ("lsl", "x.tflite", "lstmlite writes no .tflite file"),
    ("onnx", "x.c", "--format c writes a project folder"),
    ("c", "x.h", "--format c takes a folder (e.g. --out {tmp}/x/)"),
    ("c", "x.onnx", "a .onnx path is for --format onnx"),
])
def test_an_out_named_for_another_format_is_refused(fmt, out, takes, tmp_path, capsys):
    """An --out whose extension names another format's artefact exits 2 in one line saying what
    --format takes, with nothing written, where --format lsl --out x38.onnx wrote
    x38.onnx/model.lsl (a folder named .onnx); --help says what --out takes per format."""
    torch.manual_seed(0)
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
                   {"task": "classify"})
    assert main(["export", str(run), "--format", fmt, "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path / out}: " in err and takes.format(tmp=tmp_path) in err and err.count("\n") == 1, err
    assert not (tmp_path / out).exists()
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "onnx: a .onnx file path or a folder" in text and "lsl: a .lsl file path or a folder" in text
    assert "c: a folder (the C project)" in text


@pytest.mark.parametrize("opset", [99, 29, 13, 9])
def test_an_opset_out_of_range_names_the_supported_range(opset, tmp_path, monkeypatch, capsys):
    """--opset outside 14 .. the installed onnx's newest exits 2 naming that range before any
    graph is built, where --opset 99 reached onnx and printed its own 'Unsupported
    opset-version.'; the newest itself is written."""
    import lstmlite.export.onnx as onnx_export

    newest = onnx_export.max_opset()
    if opset == 29:
        opset = newest + 1
    torch.manual_seed(0)
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=4, hidden_size=6, n_classes=3).eval(),
                   {"task": "classify"})
    real_build = onnx_export.build_onnx_model

    def build(*args, **kw):
        raise AssertionError("a graph was built for an opset out of range")

    monkeypatch.setattr(onnx_export, "build_onnx_model", build)
    assert main(["export", str(run), "--format", "onnx", "--opset", str(opset), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert f"opset {opset} is" in err and f"lstmlite writes opsets 14 to {newest}" in err, err
    assert "Unsupported" not in err and not (tmp_path / "x.onnx").exists()
    monkeypatch.setattr(onnx_export, "build_onnx_model", real_build)
    assert main(["export", str(run), "--format", "onnx", "--opset", str(newest), "--no-check",
                 "--out", str(tmp_path / "top.onnx")]) == 0


def test_a_tolerance_the_user_gave_is_not_a_bug_to_report(tmp_path, monkeypatch, capsys):
    """A check beyond a --tolerance the user gave, but within the default, says so and names the
    default, with no 'Please report' (it is their bar, not our bug); beyond the default, with
    or without --tolerance, it still asks for a report. --help shows the default."""
    from lstmlite.runtime import Engine

    torch.manual_seed(0)
    run = save_run(tmp_path / "run", SequenceClassifier(input_size=5, hidden_size=16, n_classes=3).eval(),
                   {"task": "classify"})
    real_run = Engine.run
    monkeypatch.setattr(Engine, "run", lambda self, x, **kw: real_run(self, x, **kw) + 1e-5)  # within 1e-3
    assert main(["export", str(run), "--format", "lsl", "--tolerance", "1e-7", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "(> --tolerance 1e-07), over the --tolerance you gave (the default is 0.001" in err, err
    assert "Please report" not in err and err.count("\n") == 1
    assert not (tmp_path / "a" / "model.lsl").exists()
    monkeypatch.setattr(Engine, "run", lambda self, x, **kw: real_run(self, x, **kw) + 0.5)  # a broken runtime
    for flags in ([], ["--tolerance", "1e-7"], ["--tolerance", "0.1"]):
        assert main(["export", str(run), "--format", "lsl", *flags, "--out", str(tmp_path / "b")]) == 2
        assert "Please report this with the run dir." in capsys.readouterr().err, flags
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "(default 0.001)" in " ".join(capsys.readouterr().out.split())
