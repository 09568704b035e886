"""DataSpec: auto resolution, validation, JSON round trip."""

from __future__ import annotations

import json

import pytest

from lstmlite.data import DataError, DataSpec, as_spec


@pytest.mark.parametrize(
    "source, task, fmt, level, seq_len",
    [
        ("corpus.txt", "lm", "txt", "char", 100),
        ("reviews.csv", "classify", "csv", "word", 100),
        ("reviews.JSONL", "classify", "jsonl", "word", 100),
        ("train_5500.label", "classify", "trec", "word", 100),
        ("Toy_TRAIN.ts", "classify", "ts", "word", 100),
        ("x.npz", "classify", "npz", "word", 100),
        ("sales.npy", "forecast", "npy", "char", 24),
        ("airline", "forecast", None, "char", 24),
        ("digits", "classify", None, "word", 100),
    ],
)
def test_auto_fields_resolve(source, task, fmt, level, seq_len):
    spec = DataSpec(source)
    assert (spec.task, spec.format, spec.level, spec.seq_len) == (task, fmt, level, seq_len)


def test_season_defaults():
    assert DataSpec("airline").season == 12
    assert DataSpec("s.npy").season == 1
    assert DataSpec("digits").season is None


def test_json_round_trip_is_exact():
    spec = DataSpec("data/q.csv", level="char", max_len=30, seed=3, val_fraction=0.2, test_path="data/t.csv")
    again = DataSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert again.to_dict() == spec.to_dict()


def test_cli_strings_are_coerced():
    spec = as_spec("corpus.txt", seq_len="64", val_fraction="0.05", seed="7")
    assert (spec.seq_len, spec.val_fraction, spec.seed) == (64, 0.05, 7)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"source": "nosuch"}, ["unknown built-in", "airline", "digits", "japanese_vowels"]),
        ({"source": "x.dat"}, ["x.dat", "no such file"]),
        ({"source": "x.csv", "format": "xml"}, ["unknown format", "xml"]),
        ({"source": "x.txt", "task": "classify"}, ["x.txt", "'lm'"]),
        ({"source": "airline", "task": "classify"}, ["airline", "forecast"]),
        ({"source": "digits", "test_path": "t.csv"}, ["test_path"]),
        ({"source": "x.csv", "task": "regress"}, ["unknown task"]),
        ({"source": "x.txt", "seq_len": 0}, ["seq_len"]),
        ({"source": "x.txt", "seq_len": 2.5}, ["seq_len", "integer"]),
        ({"source": "x.txt", "seq_len": "ten"}, ["seq_len", "integer"]),
        ({"source": "x.csv", "val_fraction": 1.0}, ["val_fraction"]),
        ({"source": "x.csv", "val_fraction": 0.6, "test_fraction": 0.5}, ["leaves no training"]),
        ({"source": "x.csv", "val_fraction": 0.5, "test_fraction": 0.5}, ["leaves no training"]),  # exactly 1
        ({"source": "x.csv", "level": "byte"}, ["level"]),
        ({"source": "x.label", "label_level": "medium"}, ["label_level"]),
        ({"source": "x.csv", "max_vocab": 2}, ["max_vocab"]),
        ({"source": ""}, ["source"]),
    ],
)
def test_invalid_specs_raise_one_clear_line(kwargs, words):
    with pytest.raises(DataError) as info:
        DataSpec(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    assert isinstance(info.value, ValueError)


def test_unknown_keys_are_errors():
    with pytest.raises(DataError, match="unknown data option.*seqlen"):
        DataSpec.from_dict({"source": "x.txt", "seqlen": 5})
    with pytest.raises(DataError, match="seqlen"):
        as_spec("x.txt", seqlen=5)


def test_replace_revalidates_and_reinfers_format():
    spec = DataSpec("a.csv", seed=1)
    other = spec.replace(source="b.jsonl")
    assert other.format == "jsonl" and other.seed == 1
    with pytest.raises(DataError):
        spec.replace(val_fraction=2.0)


@pytest.mark.parametrize("header", ["", "audio\ttranscript\n"], ids=["no-header", "header"])
def test_a_tsv_listing_audio_files_is_an_audio_list(tmp_path, header: str) -> None:
    """A .tsv whose first data line starts with an audio file name is ``audio``, whether or not
    an ``audio<TAB>transcript`` header comes first; a CoNLL token file stays ``tsv``.
    Catches the header line itself being taken as the first data line."""
    from lstmlite.data.spec import infer_format

    listing = tmp_path / "mine.tsv"
    listing.write_text(header + "wav/a.wav\t1 2\nwav/b.flac\t3\n", encoding="utf-8")
    assert infer_format(str(listing)) == "audio"
    conll = tmp_path / "pos.tsv"
    conll.write_text("the\tDET\ncat\tNOUN\n", encoding="utf-8")
    assert infer_format(str(conll)) == "tsv"
