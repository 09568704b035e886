"""``lstmlite import``'s command layer: --kind, --force, --no-verify and a bad --arch
reach (or stop) the importers, and the table printed says what was imported. The
importers' numerics are their own tests'; here the oracle is the source model (PyTorch,
ONNX Runtime through the importer's check) and the run dir written."""

from __future__ import annotations

import json
import re

import pytest
import torch

from lstmlite.cli.main import main
from lstmlite.io import load_run, read_json
from lstmlite.nn import SequenceClassifier

# Keras 3's torch backend trips NumPy 2's __array__(copy=...) deprecation on every call.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _state_dict(tmp_path):
    torch.manual_seed(0)
    lstm, head = torch.nn.LSTM(4, 6, batch_first=True), torch.nn.Linear(6, 3)
    state = {**{f"lstm.{k}": v for k, v in lstm.state_dict().items()},
             **{f"fc.{k}": v for k, v in head.state_dict().items()}}
    torch.save(state, tmp_path / "w.pt")
    return tmp_path / "w.pt"


def _onnx_file(tmp_path):
    pytest.importorskip("onnxruntime")
    from lstmlite.export.onnx import export_onnx

    torch.manual_seed(0)
    return export_onnx(SequenceClassifier(input_size=3, hidden_size=4, n_classes=2).eval(), tmp_path / "m.onnx")


def _table(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\s*(.+?)\s{2,}(\S.*)$", line)
        if m:
            rows[m.group(1).strip()] = m.group(2).strip()
    return rows


def test_torch_kind_decides_the_model_kind(tmp_path, capsys):
    """A state dict does not say what its head predicts: --kind forecaster makes the same
    weights a Forecaster (the default reading is a classifier). Catches --kind not given
    to the torch importer."""
    path = _state_dict(tmp_path)
    for kind, expected in ((None, "SequenceClassifier"), ("forecaster", "Forecaster")):
        out = tmp_path / str(kind)
        assert main(["import", "torch", str(path), "--arch", '{"pooling": "last"}', "--out", str(out),
                     *(["--kind", kind] if kind else [])]) == 0
        assert type(load_run(out).model).__name__ == expected
    assert _table(capsys.readouterr().out)["model"] == "Forecaster"


def test_torch_kind_conflicting_with_arch_is_refused_and_agreement_accepted(tmp_path, capsys):
    """--arch naming one kind (as JSON or as a run dir's config) and --kind another is a
    one-line error naming both, before --out is written; the same kind in both imports.
    Catches --kind silently overriding the kind in --arch (it made a Forecaster from an
    --arch saying classifier)."""
    path = _state_dict(tmp_path)
    run_dir = tmp_path / "classifier"  # a run dir whose config.json says kind classifier
    assert main(["import", "torch", str(path), "--arch", '{"pooling": "last"}', "--out", str(run_dir)]) == 0
    assert read_json(run_dir / "config.json")["model"]["kind"] == "classifier"
    capsys.readouterr()
    for arch in ('{"kind": "classifier", "pooling": "last"}', str(run_dir)):
        out = tmp_path / "refused"
        assert main(["import", "torch", str(path), "--arch", arch, "--kind", "forecaster", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("lstmlite import: error: --arch says kind 'classifier'")
        assert "--kind says 'forecaster'" in err[0]
        assert not out.exists()
    agreed = [('{"kind": "forecaster", "pooling": "last"}', "forecaster", "Forecaster"),
              (str(run_dir), "classifier", "SequenceClassifier")]
    for i, (arch, kind, expected) in enumerate(agreed):
        out = tmp_path / f"agreed{i}"
        assert main(["import", "torch", str(path), "--arch", arch, "--kind", kind, "--out", str(out)]) == 0
        assert type(load_run(out).model).__name__ == expected


def test_bad_arch_json_is_one_line(tmp_path, capsys):
    """Catches JSON that does not parse taken as a file name (the error then names a file
    '{"pooling": ' that was never meant)."""
    path = _state_dict(tmp_path)
    assert main(["import", "torch", str(path), "--arch", '{"pooling": ', "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lstmlite import: error: --arch is not valid JSON")
    assert not (tmp_path / "r").exists()


def test_onnx_force_replaces_a_run_dir_and_no_verify_skips_the_check(tmp_path, capsys):
    """An ONNX import over an existing run dir is refused without --force and replaces it
    with it; the import is checked against ONNX Runtime (its largest difference printed
    and recorded) unless --no-verify. Catches --force or --no-verify not given to the ONNX
    importer."""
    path = _onnx_file(tmp_path)
    out = tmp_path / "run"
    assert main(["import", "onnx", str(path), "--out", str(out)]) == 0
    rows = _table(capsys.readouterr().out)
    assert float(rows["max difference vs source"]) < 1e-5
    assert "verified_max_error" in read_json(out / "config.json")["import"]
    assert main(["import", "onnx", str(path), "--out", str(out)]) == 2
    assert "a run dir already exists here; choose another --out, or --force" in capsys.readouterr().err
    assert main(["import", "onnx", str(path), "--out", str(out), "--force", "--no-verify"]) == 0
    rows = _table(capsys.readouterr().out)
    assert "max difference vs source" not in rows
    assert "verified_max_error" not in read_json(out / "config.json")["import"]


def test_keras_table_names_the_dropped_softmax_and_force_and_no_verify_reach_it(tmp_path, capsys):
    """A Keras classifier ending in softmax: the table says the softmax was dropped, the
    size is the run's bytes, and the import was checked against Keras (a difference row);
    --no-verify drops the check and --force is needed to write over the run. Catches the
    activation row always "none", the size row from another figure, and --force or
    --no-verify not given to the Keras importer."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras runs on another backend in this process")
    from keras import layers as L

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, 3)), L.GRU(4), L.Dense(2, activation="softmax")])
    model.save(tmp_path / "m.keras")
    out = tmp_path / "run"
    assert main(["import", "keras", str(tmp_path / "m.keras"), "--out", str(out)]) == 0
    rows = _table(capsys.readouterr().out)
    assert rows["output activation dropped"] == "softmax"
    size = json.loads((out / "metrics.json").read_text())["size_bytes"]
    assert rows["size"].startswith(f"{size:,} B") and float(rows["max difference vs source"]) < 1e-4
    assert main(["import", "keras", str(tmp_path / "m.keras"), "--out", str(out)]) == 2
    assert "a run dir already exists here" in capsys.readouterr().err
    assert main(["import", "keras", str(tmp_path / "m.keras"), "--out", str(out), "--force", "--no-verify"]) == 0
    assert "max difference vs source" not in _table(capsys.readouterr().out)


@pytest.mark.parametrize("framework, what", [("onnx", "an ONNX"), ("keras", "a Keras"), ("torch", "a torch.save"),
                                             ("tflite", "a TFLite")])
def test_every_importer_names_an_lsl_file_given_to_it(tmp_path, capsys, framework, what):
    """An .lsl file given to any importer is named as one, with what runs it, and nothing is
    written. Each importer has its own path to the file (ONNX through read_model_file, a
    torch.save file through torch.load, a .tflite file through its flatbuffer reader, a
    Keras path by its extension): torch and TFLite called the file truncated or corrupt,
    Keras said "expected a .keras or .h5 file"."""
    lsl = tmp_path / "model.lsl"
    lsl.write_bytes(b"LSTMLITE\x05\x00" + bytes(40))
    assert main(["import", framework, str(lsl), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"error: {lsl}: not {what} file but an lstmlite .lsl file (the native runtime's model), which needs " \
           f"no import: lstmlite.runtime.load(path) runs it" in err
    assert not (tmp_path / "out").exists()
