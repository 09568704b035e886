"""``lstmlite report`` and ``lstmlite explain`` (src/lstmlite/cli/report_cmd.py, explain_cmd.py),
run in-process as a user runs them."""

import json

import pytest

from lstmlite.cli.main import main


def test_report_command(jv_runs, tmp_path, capsys):
    """The page is written where --out says, titled with --title, with an explanation of
    test sample --explain K for each run and the latencies of a --bench file that times the
    runs' architecture (catches the title dropped for the default one, and --explain or
    --bench not passed to write_report)."""
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"machine": {}, "cases": [{  # I=12, H=8: the jv runs' LSTM
        "engine": "lstmlite-fp32", "input_size": 12, "hidden_size": 8, "seq_len": 7, "batch": 1, "mode": "sequence",
        "median_us": 42.0, "p90_us": 50.0}]}))
    out = tmp_path / "sub" / "report.html"
    assert main(["report", str(jv_runs[0]), str(jv_runs[1]), "--out", str(out), "--title", "JV & int8",
                 "--explain", "0", "--bench", str(bench)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<title>JV &amp; int8</title>" in html
    assert all(f"Explanation: {run.name}" in html for run in jv_runs)
    assert "lstmlite-fp32 (sequence, T=7, B=1)" in html


def test_explain_command(jv_runs, tmp_path, capsys) -> None:
    """explain --sample K --target C --steps N writes the explanation that the API's
    explain(RUN, sample=K, steps=N, target=C) computes (catches an option not passed on:
    sample 0, the predicted class or 64 steps explained instead)."""
    from lstmlite.report import explain

    argv = ["explain", str(jv_runs[1]), "--sample", "1", "--target", "2", "--steps", "8", "--out", str(tmp_path / "ex")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "integrated gradients" in printed and (tmp_path / "ex" / "saliency.png").exists()
    written = json.loads((tmp_path / "ex" / "explanation.json").read_text())
    expected = explain(jv_runs[1], sample=1, steps=8, target=2).to_json()
    assert {k: written[k] for k in ("sample", "target", "integration_steps", "label")} == {
        k: expected[k] for k in ("sample", "target", "integration_steps", "label")}
    assert written["attribution_sum"] == pytest.approx(expected["attribution_sum"], rel=1e-5, abs=1e-6)


def test_explain_defaults_and_printed_numbers_are_the_written_ones(jv_runs, tmp_path, capsys) -> None:
    """Without --sample and --steps: test sample 0 and 64 points, as the help and
    docs/report.md say; the printed sum and f(x) - f(baseline) are explanation.json's own
    (read back). Catches a default that differs from the docs and a printed number that is
    not the written one (f(x) alone printed as the difference)."""
    assert main(["explain", str(jv_runs[0]), "--out", str(tmp_path / "ex")]) == 0
    printed = capsys.readouterr().out
    written = json.loads((tmp_path / "ex" / "explanation.json").read_text())
    assert (written["sample"], written["integration_steps"]) == (0, 64)
    assert printed.startswith("sample 0:")
    assert f"sum {written['attribution_sum']:.4f}, f(x) - f(baseline) " \
           f"{written['f_x'] - written['f_baseline']:.4f}" in printed


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmlite report: error:") and len(err.strip().splitlines()) == 1


def test_nothing_is_written_into_a_run_dir(jv_runs, capsys):
    run = jv_runs[0]
    before = sorted(p.name for p in run.iterdir())
    assert main(["report", str(run), "--out", str(run / "report.html")]) == 2
    assert "inside the run dir" in capsys.readouterr().err
    assert main(["explain", str(run), "--out", str(run / "explain")]) == 2
    assert "inside the run dir" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before


def test_nothing_is_written_deeper_inside_a_run_dir(tmp_path, capsys):
    """A run dir is never edited in place at any depth: --out run/figs/report.html and
    run/a/b/explain are refused like run/report.html (refused before the run is read, so
    an empty folder stands in for the run), and nothing appears under it; a sibling folder
    whose name merely starts with the run's (run-report/) is not inside it. Catches a check
    of the direct children only (out.parent == run), which let report write run/figs/."""
    from lstmlite.report.runs import check_outside_runs

    run = tmp_path / "run"
    run.mkdir()
    assert main(["report", str(run), "--out", str(run / "figs" / "report.html")]) == 2
    assert "inside the run dir" in capsys.readouterr().err
    assert main(["explain", str(run), "--out", str(run / "a" / "b" / "explain")]) == 2
    assert "inside the run dir" in capsys.readouterr().err
    assert list(run.iterdir()) == []
    for inside in (run, run / "x.html", run / "figs" / "x.html", run / "a" / "b" / "c"):
        with pytest.raises(ValueError, match="inside the run dir"):
            check_outside_runs(inside, [run])
    check_outside_runs(tmp_path / "run-report" / "report.html", [run])  # a sibling, not inside


def test_a_folder_given_as_the_report_file_is_refused_naming_a_file(jv_runs, tmp_path, capsys):
    """--out naming an existing folder is refused in one line that gives a file to write,
    before any run is read, and leaves the folder as it was. Catches the error the rename
    gave ('.NAME.XXXX.tmp: Is a directory', naming a temp file the user never made)."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert main(["report", str(jv_runs[0]), "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"error: {folder}: is a folder; give the HTML file to write, e.g. {folder / 'report.html'}" in err
    assert ".tmp" not in err and sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


def test_an_existing_report_file_is_kept_unless_force(jv_runs, tmp_path, capsys):
    """--out naming an existing file is refused in one line naming --force, and the file
    keeps its bytes; with --force it is replaced by the report. Catches the silent
    overwrite (a typo'd --out replaced whatever file it named) and a --force not honoured."""
    page = tmp_path / "notes.html"
    page.write_text("mine")
    assert main(["report", str(jv_runs[0]), "--out", str(page)]) == 2
    err = capsys.readouterr().err
    assert f"error: {page} exists; choose another --out, or add --force to replace it" in err
    assert page.read_text() == "mine"
    assert main(["report", str(jv_runs[0]), "--out", str(page), "--force"]) == 0
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_an_explain_folder_holding_files_is_kept_unless_force(jv_runs, tmp_path, capsys):
    """explain --out naming a folder that holds files (an earlier explanation) is refused in
    one line naming them and --force, before anything is computed, and the files keep their
    bytes; with --force explain's files are written over theirs and the others are left.
    It overwrote an earlier explanation's PNGs and JSON without a word."""
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "explanation.json").write_text("mine")
    (folder / "notes.txt").write_text("kept")
    assert main(["explain", str(jv_runs[0]), "--steps", "2", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"error: --out {folder}: holds files (explanation.json, notes.txt); choose a new or empty --out, or add " \
           f"--force to write explain's files into it" in err
    assert (folder / "explanation.json").read_text() == "mine"
    assert main(["explain", str(jv_runs[0]), "--steps", "2", "--out", str(folder), "--force"]) == 0
    assert json.loads((folder / "explanation.json").read_text())["integration_steps"] == 2
    assert (folder / "notes.txt").read_text() == "kept"


def test_a_file_given_as_the_explain_folder_is_refused_naming_a_folder(jv_runs, tmp_path, capsys):
    """explain --out naming an existing file (report.html) is refused in one line that
    says it writes a folder, and the file is left as it was; it failed with the OS's bare
    "File exists"."""
    page = tmp_path / "report.html"
    page.write_text("mine")
    assert main(["explain", str(jv_runs[0]), "--out", str(page)]) == 2
    err = capsys.readouterr().err
    assert f"--out {page}: a file, not a folder; explain writes a folder" in err and "File exists" not in err
    assert page.read_text() == "mine"


def test_explain_prints_the_true_and_the_predicted_class_each_as_itself(jv_runs, tmp_path, capsys) -> None:
    """On a test sample the run gets wrong (found by a plain forward pass over the test
    split), explain's first line names the true class and the predicted one as
    explanation.json records them, which differ here. Planted and failing it: the two
    printed the other way round (indistinguishable on a sample the run gets right)."""
    import torch

    from lstmlite.data import load_data
    from lstmlite.io import load_run

    run = load_run(jv_runs[0])
    test = load_data(run.config["data"]).test
    with torch.no_grad():
        predicted = [int(run.model(torch.as_tensor(test.x[k, : int(test.lengths[k])]).unsqueeze(0))[0].argmax())
                     for k in range(len(test))]
    sample = next(k for k, p in enumerate(predicted) if p != int(test.y[k]))
    assert main(["explain", str(jv_runs[0]), "--sample", str(sample), "--steps", "2", "--out", str(tmp_path)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    written = json.loads((tmp_path / "explanation.json").read_text())
    names = run.config["class_names"]
    assert (written["label"], written["predicted"]) == (names[int(test.y[sample])], names[predicted[sample]])
    assert first == f"sample {sample}: true {written['label']}, predicted {written['predicted']}"
