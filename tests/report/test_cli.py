"""``lstmlite report`` and ``lstmlite explain`` (src/lstmlite/cli/report_cmd.py, explain_cmd.py),
run in-process as a user runs them."""

from lstmlite.cli.main import main


def test_report_command(jv_runs, tmp_path, capsys):
    out = tmp_path / "sub" / "report.html"
    assert main(["report", str(jv_runs[0]), str(jv_runs[1]), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_explain_command(jv_runs, tmp_path, capsys):
    assert main(["explain", str(jv_runs[1]), "--sample", "1", "--out", str(tmp_path / "ex")]) == 0
    printed = capsys.readouterr().out
    assert "integrated gradients" in printed and (tmp_path / "ex" / "saliency.png").exists()


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
