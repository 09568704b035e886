"""``lstmlite eval RUN`` (src/lstmlite/cli/eval_cmd.py): the split and the beam width
it is asked for, checked against :func:`lstmlite.train.evaluate_run` called directly."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from lstmlite.cli.main import main
from lstmlite.train import evaluate_run


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_json_reports_the_split_asked_for(digits_run: Path, split: str, capsys: pytest.CaptureFixture) -> None:
    """``--split S --json`` prints what ``evaluate_run(RUN, split=S)`` returns.
    Catches --split not passed on (every split measured on test)."""
    assert main(["eval", str(digits_run), "--split", split, "--json"]) == 0
    expected = json.loads(json.dumps(evaluate_run(digits_run, split=split)))  # CPU evaluation is deterministic
    assert json.loads(capsys.readouterr().out) == expected and split in expected


@pytest.mark.parametrize("beam, code", [(0, 2), (1, 0)])
def test_beam_width_must_be_at_least_1(digits_run: Path, beam: int, code: int, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    """--beam 0 is refused in one line (exit 2); 1, the smallest width, is accepted (handed
    to a stand-in of the streaming evaluation: a ctc run needs synthesized speech).
    Catches an off-by-one check that refuses a beam of 1."""
    streaming = importlib.import_module("lstmlite.train.streaming")
    monkeypatch.setattr(streaming, "evaluate_streaming", lambda run_dir, **kwargs: {"beam": kwargs["beam"]})
    assert main(["eval", str(digits_run), "--stream", "--decoder", "beam", "--beam", str(beam), "--json"]) == code
    captured = capsys.readouterr()
    assert ("the beam width must be at least 1" in captured.err) is (code == 2)
    if code == 0:
        assert json.loads(captured.out) == {"beam": 1}


def test_a_beam_width_without_beam_decoding_is_refused(digits_run: Path, capsys: pytest.CaptureFixture) -> None:
    """--beam 4 with the default greedy decoder (or on a classifier) was ignored without a
    word; it is refused in one line naming --decoder beam."""
    assert main(["eval", str(digits_run), "--beam", "4"]) == 2
    err = capsys.readouterr().err
    assert "--beam 4 is the width of --decoder beam" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("split", ["val", "test"])
def test_the_table_names_the_split_it_measured(digits_run: Path, split: str, capsys: pytest.CaptureFixture) -> None:
    """The table of ``--split val`` labels its rows "val accuracy" / "val macro_f1" with the
    validation split's values; it used to call them "test accuracy" (a real bug, fixed)."""
    expected = evaluate_run(digits_run, split=split)
    assert main(["eval", str(digits_run), "--split", split]) == 0
    rows = {line.rsplit(None, 1)[0]: line.rsplit(None, 1)[1] for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows[f"{split} accuracy"] == f"{expected[split]['accuracy']:.4f}"
    assert rows[f"{split} macro_f1"] == f"{expected[split]['macro_f1']:.4f}"
    assert not {f"{other} accuracy" for other in ("train", "val", "test") if other != split} & rows.keys()


def test_lsl_alone_means_streaming(digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--lsl FILE streams as --stream does (eval's --help: the file to run "with --stream"),
    so on a classifier it is refused in one line, not silently dropped for a plain
    evaluation. Catches --lsl read only together with --stream."""
    assert main(["eval", str(digits_run), "--lsl", str(tmp_path / "model.lsl")]) == 2
    err = capsys.readouterr().err
    assert "streaming decoding is for --task ctc runs, not 'classify'" in err and len(err.strip().splitlines()) == 1


def test_stream_passes_its_options_on(digits_run: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture) -> None:
    """``--stream`` hands --split, --data, --lsl, --decoder and --beam to
    :func:`lstmlite.train.streaming.evaluate_streaming`, and a beam search without --beam is
    8 wide (eval's --help: "default: 8 for ctc"). A ctc run needs synthesized speech, so a
    stand-in records the call and returns one metric. Catches --split or --decoder dropped
    for streaming (the test split greedily decoded instead), and seq2seq's width 4 used."""
    streaming = importlib.import_module("lstmlite.train.streaming")  # lstmlite.train.train is a function

    calls: list[dict] = []

    def record(run_dir, **kwargs):
        calls.append({"run": str(run_dir), **kwargs})
        return {"cer": 0.25}

    monkeypatch.setattr(streaming, "evaluate_streaming", record)
    assert main(["eval", str(digits_run), "--stream", "--split", "val", "--decoder", "beam", "--data", "digits",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"cer": 0.25}
    assert main(["eval", str(digits_run), "--lsl", "m.lsl", "--beam", "3", "--decoder", "beam", "--json"]) == 0
    assert calls == [
        {"run": str(digits_run), "lsl": None, "split": "val", "source": "digits", "decoder": "beam", "beam": 8},
        {"run": str(digits_run), "lsl": "m.lsl", "split": "test", "source": None, "decoder": "beam", "beam": 3}]


def test_a_null_metric_reads_as_no_split_not_none(capsys: pytest.CaptureFixture) -> None:
    """metrics.json of a run trained with test_fraction=0 holds ``"metric": null``: the table
    train and eval print says the split is missing, not "None". Catches the null printed
    as Python's None."""
    from lstmlite.cli.report import print_metrics

    print_metrics({"dataset": "digits", "metric_name": "accuracy", "metric": None, "params": 10})
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("test accuracy"))
    assert row.split("  ", 1)[1].strip() == "– (no test split)"
