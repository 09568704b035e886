"""``lstmlite export --format lsl``: the file loads in the runtime and matches the model."""

import numpy as np
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
    assert main(["export", str(run), "--format", "lsl", "--out", str(tmp_path / "out")]) == 1
