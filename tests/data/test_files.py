"""Users' files: every format on small files written here, and every error path."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from lstmlite.data import DataError, DataFileNotFoundError, load_data, word_tokens

QUESTIONS = [
    ("NUM:date", "When did the war end ?"),
    ("HUM:ind", "Who wrote Hamlet ?"),
    ("LOC:city", "What city is the capital of France ?"),
    ("NUM:count", "How many legs does a spider have ?"),
    ("HUM:ind", "Who painted the Mona Lisa ?"),
    ("LOC:country", "Which country has the most people ?"),
    ("NUM:date", "When was the telephone invented ?"),
    ("HUM:gr", "What band sang Yesterday ?"),
    ("LOC:city", "Where is the Eiffel Tower ?"),
    ("NUM:money", "How much does a stamp cost ?"),
]


def _write(path: Path, text: str, encoding: str = "utf-8") -> str:
    path.write_bytes(text.encode(encoding))
    return str(path)


def _csv_rows(n: int = 20) -> list[tuple[str, str]]:
    return [
        (f'"a ""{k}"" great, film"' if k % 2 else f"awful movie number {k}", "pos" if k % 2 else "neg")
        for k in range(n)
    ]


# ---------------------------------------------------------------- text classification
def test_csv_text_classification(tmp_path):
    lines = ["id,text,label"] + [f"{k},{t},{y}" for k, (t, y) in enumerate(_csv_rows())]
    path = _write(tmp_path / "reviews.csv", "\n".join(lines) + "\n")
    data = load_data(path, val_fraction=0.2, test_fraction=0.2)
    assert data.name == path and data.task == "classify" and data.input_size == 0
    assert data.class_names == ["neg", "pos"] and (len(data.train), len(data.val), len(data.test)) == (12, 4, 4)
    assert data.train.x.dtype == np.int64 and data.train.x.ndim == 2
    # the quoted comma stays in the text: 'a "1" great, film' → a " 1 " great , film
    texts = {
        tuple(data.vocab.decode(row[:n])) for split in data.splits.values() for row, n in zip(split.x, split.lengths)
    }
    assert ("a", '"', "1", '"', "great", ",", "film") in texts
    assert ("awful", "movie", "number", "0") in texts
    # the vocabulary comes from the training rows only: numbers of val/test rows are unknown
    train_words = {w for row, n in zip(data.train.x, data.train.lengths) for w in data.vocab.decode(row[:n])}
    assert set(data.vocab.tokens[2:]) == train_words


def test_csv_test_path_and_label_only_in_test(tmp_path):
    train = _write(tmp_path / "train.csv", "text,label\n" + "".join(f"text {k},{'ab'[k % 2]}\n" for k in range(10)))
    test = _write(tmp_path / "test.csv", "text,label\nnew text,a\nmore,b\n")
    data = load_data(train, test_path=test)
    assert len(data.test) == 2 and len(data.train) + len(data.val) == 10
    bad = _write(tmp_path / "bad_test.csv", "text,label\nnew text,a\nodd one,c\n")
    with pytest.raises(DataError, match=r"bad_test\.csv: line 3: label 'c' appears in the test data but not in"):
        load_data(train, test_path=bad)


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("text,category\nhi,a\n", r"bad\.csv: line 1: no column 'label'"),
        ("text,label\nhi,a\nthere,b\nno label here\n", r"bad\.csv: line 4: 1 fields, the header has 2"),
        ("text,label\nhi,a\nx,y,z\n", r"bad\.csv: line 3: 3 fields"),
        ("text,label\nhi,a\nthere,\n", r"bad\.csv: line 3: empty 'label'"),
        ("text,label\n", r"bad\.csv: no data rows"),
        ("", r"bad\.csv: empty file"),
        ("text,label\nhi,a\n!!! ,b\n   ,a\n", r"bad\.csv: line 4: the text has no tokens"),
        ("text,label\nhi,a\nthere,a\n", r"bad\.csv: only one class"),
    ],
)
def test_malformed_csv(tmp_path, content, pattern):
    path = _write(tmp_path / "bad.csv", content)
    with pytest.raises(DataError, match=pattern) as info:
        load_data(path)
    assert "\n" not in str(info.value)


def test_csv_that_is_not_utf8_names_the_line_and_byte(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nhello,a\ncaf\u00e9,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv: line 3 is not valid UTF-8 \(byte 0xe9"):
        load_data(str(path))


def test_jsonl_text_classification_and_errors(tmp_path):
    rows = [{"body": f"sample text {k}", "y": k % 3} for k in range(30)]
    path = _write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    data = load_data(path, text_column="body", label_column="y")
    assert data.class_names == ["0", "1", "2"] and len(data.train) + len(data.val) + len(data.test) == 30
    # integer labels keep their value as the class index
    for split in data.splits.values():
        for row, n, y in zip(split.x, split.lengths, split.y):
            number = int(data.vocab.decode(row[:n])[-1]) if data.vocab.decode(row[:n])[-1] != "<unk>" else None
            if number is not None:
                assert number % 3 == y
    bad = [
        ('{"body": "x", "y": 1}\n{"body": "x"\n', r"line 2: invalid JSON"),
        ('{"body": "x", "y": 1}\n{"body": "x", "z": 1}\n', r"line 2: no key 'y'"),
        ('{"body": 3, "y": 1}\n', r"line 1: 'body' must be a string"),
        ('{"body": "x", "y": 1.5}\n', r"line 1: 'y' must be a string or an integer"),
        ('[1, 2]\n', r"line 1: expected a JSON object"),
        ('\n\n', r"no data rows"),
    ]
    for content, pattern in bad:
        p = _write(tmp_path / "bad.jsonl", content)
        with pytest.raises(DataError, match=r"bad\.jsonl: " + pattern):
            load_data(p, text_column="body", label_column="y")
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"body": "ok", "y": 1}\n{"body": "\xff", "y": 2}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: line 2 is not valid UTF-8 \(byte 0xff"):
        load_data(str(p), text_column="body", label_column="y")


def test_trec_latin1_file_loads_with_a_warning(tmp_path, caplog):
    lines = [f"{label} {text}" for label, text in QUESTIONS * 3]
    lines[4] = "HUM:ind Who was Pel\u00e9 ?"  # é is 0xE9 in Latin-1: not valid UTF-8
    path = tmp_path / "train_5500.label"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="lstmlite.data"):
        data = load_data(str(path), val_fraction=0.1, test_fraction=0.2)
    messages = [r.getMessage() for r in caplog.records]
    assert any("line 5 is not valid UTF-8" in m and "latin-1" in m for m in messages)
    assert data.class_names == ["HUM", "LOC", "NUM"]
    assert "pelé" in data.vocab  # decoded as Latin-1, lowercased
    assert len(data.train) + len(data.val) + len(data.test) == 30
    fine = load_data(str(path), label_level="fine")
    assert fine.class_names == sorted({label for label, _ in QUESTIONS}) and fine.n_classes == 7


def test_trec_folder_finds_train_and_test(tmp_path) -> None:
    """A TREC folder's train*.label is the training file and TREC_10.label the test file, even
    beside another test*.label. Catches the test*.label glob tried first."""
    _write(tmp_path / "train_5500.label", "".join(f"{l} {t}\n" for l, t in QUESTIONS * 2))
    _write(tmp_path / "TREC_10.label", "".join(f"{l} {t}\n" for l, t in QUESTIONS[:4]))
    _write(tmp_path / "test_other.label", "".join(f"{l} {t}\n" for l, t in QUESTIONS[:3]))  # TREC_10 wins
    data = load_data(str(tmp_path))
    assert data.name == str(tmp_path) and len(data.test) == 4 and len(data.train) + len(data.val) == 20
    assert data.spec.test_path.endswith("TREC_10.label")
    again = load_data(data.spec)
    assert again.train.x.tobytes() == data.train.x.tobytes()


@pytest.mark.parametrize(
    "bad_line, what",
    [
        ("what is this ?", "no label"),
        ("NUM:date", "no text"),
        ("num:date When ?", "lowercase coarse"),
        ("NUM When ?", "no colon"),
    ],
)
def test_bad_trec_line_names_the_line(tmp_path, bad_line, what):
    lines = [f"{l} {t}" for l, t in QUESTIONS]
    lines.insert(6, bad_line)
    path = _write(tmp_path / "q.label", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"q\.label: line 7: expected 'COARSE:fine question words'"):
        load_data(path)


# ---------------------------------------------------------------- language modelling
def test_txt_char_language_model(tmp_path):
    text = "".join(f"line {k}: the quick brown fox\n" for k in range(50))
    path = _write(tmp_path / "corpus.txt", text)
    data = load_data(path, seq_len=16)
    n = len(text)
    n_val = n_test = int(np.floor(0.1 * n + 0.5))
    train_end = n - n_val - n_test
    train_text, val_text, test_text = text[:train_end], text[train_end : n - n_test], text[n - n_test :]
    assert data.task == "lm" and data.input_size == 0 and data.n_classes == 0
    assert data.train.x.shape == ((len(train_text) - 1) // 16, 16) and data.val.x.shape == ((n_val - 1) // 16, 16)
    # windows are contiguous, non-overlapping, targets shifted by one
    assert "".join(data.vocab.decode(data.train.x.reshape(-1))) == train_text[: data.train.x.size]
    assert "".join(data.vocab.decode(data.train.y.reshape(-1))) == train_text[1 : data.train.x.size + 1]
    assert "".join(data.vocab.decode(data.test.x[0])) == test_text[:16]
    assert "".join(data.vocab.decode(data.val.y[0])) == val_text[1:17]
    # vocabulary from the train part only
    assert set(data.vocab.tokens[2:]) == set(train_text)


def test_txt_word_level_and_unknown_words(tmp_path):
    text = "the cat sat on the mat.\n" * 40 + "a zebra appeared.\n" * 10
    path = _write(tmp_path / "w.txt", text)
    data = load_data(path, level="word", seq_len=5, val_fraction=0.05, test_fraction=0.1)
    assert data.spec.level == "word" and "\n" in data.vocab and "cat" in data.vocab
    assert "zebra" not in data.vocab  # only in the test part
    words = word_tokens(text, keep_newlines=True)
    n_test = int(np.floor(0.1 * len(words) + 0.5))
    expected = [w if w in data.vocab else "<unk>" for w in words[len(words) - n_test :][:5]]
    assert data.vocab.decode(data.test.x[0]) == expected


def test_txt_too_short_and_empty(tmp_path):
    path = _write(tmp_path / "short.txt", "abcdefghij" * 5)
    with pytest.raises(DataError, match=r"short\.txt: the val part has 5 tokens, fewer than seq_len \+ 1 = 11"):
        load_data(path, seq_len=10)
    assert len(load_data(path, seq_len=4).val) == 1
    assert len(load_data(path, seq_len=4, val_fraction=0.0).val) == 0
    empty = _write(tmp_path / "empty.txt", "")
    with pytest.raises(DataError, match=r"empty\.txt: no text"):
        load_data(empty)


# ---------------------------------------------------------------- arrays
def _ts_file(path: Path, cases, labels, classes) -> str:
    header = [
        "# a toy problem", "@problemName Toy", "@timeStamps false", "@missing false", "@univariate false",
        f"@dimensions {cases[0].shape[0]}", "@equalLength false", f"@classLabel true {' '.join(classes)}", "@data",
    ]
    rows = [
        ":".join(",".join(f"{v:g}" for v in channel) for channel in case) + f":{label}"
        for case, label in zip(cases, labels)
    ]
    return _write(path, "\n".join(header + rows) + "\n")


def test_ts_files_with_official_test_sibling(tmp_path) -> None:
    """A NAME_TRAIN.ts uses its NAME_TEST.ts sibling as the test split (rows in file order,
    values as written), and one without a sibling has its test split carved from it.
    Catches a sibling path taken without checking that the file exists."""
    rng = np.random.default_rng(0)
    cases = [np.round(rng.normal(size=(2, 3 + k % 4)), 3) for k in range(20)]
    labels = ["x" if k % 2 else "y" for k in range(20)]
    train = _ts_file(tmp_path / "Toy_TRAIN.ts", cases, labels, ["x", "y"])
    _ts_file(tmp_path / "Toy_TEST.ts", cases[:6], labels[:6], ["x", "y"])
    data = load_data(train, val_fraction=0.2)
    assert data.spec.test_path.endswith("Toy_TEST.ts") and len(data.test) == 6
    assert data.train.x.shape[1:] == (6, 2) and data.input_size == 2
    mean, std = np.array(data.stats["mean"]), np.array(data.stats["std"])
    for k in range(6):  # test rows in file order, de-normalised = the values written
        n = data.test.lengths[k]
        np.testing.assert_allclose(data.test.x[k, :n] * std + mean, cases[k].T, rtol=1e-5, atol=1e-5)
        assert data.class_names[data.test.y[k]] == labels[k]
    # a _TRAIN.ts without a _TEST.ts sibling: the test split is carved from it (20 rows in all)
    alone = _ts_file(tmp_path / "Solo_TRAIN.ts", cases, labels, ["x", "y"])
    solo = load_data(alone, val_fraction=0.2, test_fraction=0.2)
    assert solo.spec.test_path is None and (len(solo.train), len(solo.val), len(solo.test)) == (12, 4, 4)


def test_ts_file_loads_like_the_builtin(builtin_data):
    """aeon's own JapaneseVowels_TRAIN.ts (with its _TEST sibling) gives the built-in's arrays."""
    import aeon

    path = Path(aeon.__file__).parent / "datasets" / "data" / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts"
    if not path.exists():
        pytest.skip("aeon's JapaneseVowels .ts files are not installed")
    from_file, builtin = load_data(str(path)), builtin_data["japanese_vowels"]
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(from_file.splits[name].x, builtin.splits[name].x)
        np.testing.assert_array_equal(from_file.splits[name].y, builtin.splits[name].y)


def test_malformed_ts(tmp_path):
    path = _write(tmp_path / "bad.ts", "@problemName Bad\n@classLabel true a b\n@data\n1,2,3:a\n1,2:b:zz\n")
    with pytest.raises(DataError, match=r"bad\.ts: not a readable \.ts file"):
        load_data(path)


def test_npz_classification_with_lengths(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 7, 3))
    lengths = rng.integers(2, 8, size=30)
    y = np.arange(30) % 3
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y, lengths=lengths)
    data = load_data(str(path), val_fraction=0.2, test_fraction=0.2)
    assert data.class_names == ["0", "1", "2"] and data.input_size == 3
    assert (len(data.train), len(data.val), len(data.test)) == (18, 6, 6)
    mean, std = np.array(data.stats["mean"]), np.array(data.stats["std"])
    # every loaded row (de-normalised) is an original row cut to its length, with its label
    originals = {(x[k, : lengths[k]].astype(np.float32).round(4).tobytes()): int(y[k]) for k in range(30)}
    for split in data.splits.values():
        for k in range(len(split)):
            n = split.lengths[k]
            row = (split.x[k, :n] * std + mean).astype(np.float32).round(4)
            assert originals[row.tobytes()] == split.y[k]
            assert not split.x[k, n:].any()
    # training stats: NumPy over the valid steps of the training rows
    train_rows = [(split_row * std + mean)[:n] for split_row, n in zip(data.train.x, data.train.lengths)]
    np.testing.assert_allclose(np.concatenate(train_rows).mean(0), mean, atol=1e-5)


def test_npz_errors(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, x=np.zeros((4, 3, 2)))
    with pytest.raises(DataError, match=r"bad\.npz: no array 'y' \(arrays: x\)"):
        load_data(str(p))
    np.savez(p, x=np.zeros((4, 3, 2)), y=np.array([{"a": 1}] * 4, dtype=object))
    with pytest.raises(DataError, match=r"bad\.npz: .*allow_pickle"):
        load_data(str(p))
    np.savez(p, x=np.zeros((4, 3, 2)), y=np.zeros(3))
    with pytest.raises(DataError, match=r"'y' must have shape \(4,\)"):
        load_data(str(p))
    np.savez(p, x=np.zeros((4, 3, 2)), y=np.arange(4), lengths=np.array([1, 2, 4, 3]))
    with pytest.raises(DataError, match=r"row index 2: length 4 outside 1\.\.3"):
        load_data(str(p))
    p.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"bad\.npz: not a readable \.npz file"):
        load_data(str(p))


@pytest.mark.parametrize("task, y", [("classify", np.arange(4)), ("tag", np.arange(12).reshape(4, 3) % 2)])
def test_npz_rows_are_checked_alike_for_classify_and_tag(tmp_path, task, y):
    """Both .npz readers (a label per row, a label per step) share the row checks: a row of
    length 0 and a non-finite value inside a row's length are refused naming the row, and a
    non-finite value past a row's length is padding, read as nothing. Only the classify path
    was tested; a tag reader with its own, laxer row loop would pass everything else."""
    p = tmp_path / "rows.npz"
    np.savez(p, x=np.ones((4, 3, 2)), y=y, lengths=np.array([3, 0, 2, 3]))
    with pytest.raises(DataError, match=r"rows\.npz: row index 1: length 0 outside 1\.\.3"):
        load_data(str(p), task=task)
    x = np.ones((4, 3, 2))
    x[2, 1, 0] = np.inf
    np.savez(p, x=x, y=y, lengths=np.array([3, 1, 2, 3]))
    with pytest.raises(DataError, match=r"rows\.npz: row index 2: non-finite values in 'x'"):
        load_data(str(p), task=task)
    x[2, 1, 0], x[1, 2, 1] = 1.0, np.nan  # row 1 is one step long: its third step is padding
    np.savez(p, x=x, y=y, lengths=np.array([3, 1, 2, 3]))
    assert load_data(str(p), task=task, val_fraction=0.0, test_fraction=0.0).train.x.shape[0] == 4


def test_npy_forecast_multivariate(tmp_path):
    t = np.arange(200, dtype=np.float64)
    series = np.stack([10 + np.sin(2 * np.pi * t / 7) + 0.01 * t, np.cos(t)], axis=1)  # (200, 2)
    path = tmp_path / "s.npy"
    np.save(path, series)
    data = load_data(str(path), seq_len=14, horizon=5, season=7)
    assert data.task == "forecast" and data.input_size == 2
    assert data.train.x.shape[1:] == (14, 2) and data.test.y.shape[1:] == (5,)
    train_end = data.stats["train_end"]
    np.testing.assert_allclose(data.stats["mean"], series[:train_end].mean(0))
    np.testing.assert_allclose(data.stats["std"], series[:train_end].std(0))
    np.testing.assert_allclose(data.denormalize(data.test.y[-1]), series[-5:, 0], rtol=1e-5)
    # seasonal naive (season 7) from the last test origin, in original units
    origin = len(series) - 5
    np.testing.assert_allclose(data.denormalize(data.test.naive[-1]), series[origin - 7 : origin - 2, 0], rtol=1e-5)
    np.save(path, np.zeros((25,)))
    with pytest.raises(DataError, match=r"s\.npy: a series of 25 points is too short"):
        load_data(str(path), seq_len=14, horizon=5)
    np.save(path, np.array([1.0, np.nan, 2.0]))
    with pytest.raises(DataError, match=r"time step 1: missing"):
        load_data(str(path))


# ---------------------------------------------------------------- generic errors
@pytest.mark.parametrize("name", ["notes", "reviews.csv"])
def test_a_folder_of_no_known_kind_says_give_a_file(tmp_path, name):
    """A folder that is neither an audio folder nor a TREC folder is refused as such.
    Catches: the advice "cannot tell the format from the extension; pass format=…", which
    only leads to "is not a file" (the folder named reviews.csv too)."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "readme.md").write_text("x")
    with pytest.raises(DataError, match=rf"{name}: a folder holding no manifest.tsv \(audio\) and no \*.label files "
                                        r"\(TREC\); give a data file"):
        load_data(str(folder))


def test_missing_file_unknown_builtin_unknown_format(tmp_path):
    with pytest.raises(DataFileNotFoundError, match=r"nope\.csv: no such file") as info:
        load_data(str(tmp_path / "nope.csv"))
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
    with pytest.raises(DataError, match=r"unknown built-in data set 'japanese_vowel'.*japanese_vowels"):
        load_data("japanese_vowel")
    weird = _write(tmp_path / "d.parquet", "x")
    with pytest.raises(DataError, match=r"d\.parquet: cannot tell the format"):
        load_data(weird)
    with pytest.raises(DataFileNotFoundError, match=r"no such file"):
        load_data(str(tmp_path / "no_extension"))
    empty = _write(tmp_path / "empty.label", "\n\n")
    with pytest.raises(DataError, match=r"empty\.label: no questions"):
        load_data(empty)
    train = _write(tmp_path / "t.csv", "text,label\na,b\nc,d\n")
    with pytest.raises(DataFileNotFoundError, match=r"gone\.csv: no such test file"):
        load_data(train, test_path=str(tmp_path / "gone.csv"))


# ---------------------------------------------------------------- a given vocabulary
@pytest.mark.parametrize("name, text, task", [
    ("r.csv", "text,label\n" + "".join(f"w{k},{'ab'[k % 2]}\n" for k in range(10)), "classify"),
    ("c.txt", "ab" * 160 + "cd" * 20 + "ef" * 20, "lm"),  # train | val | test: letters of their own
    ("t.tsv", "".join(f"w{k}\t{'AB'[k % 2]}\nv{k}\t{'BA'[k % 2]}\n\n" for k in range(10)), "tag"),
    ("p.tsv", "".join(f"{chr(97 + k)}{chr(98 + k)}\t{chr(98 + k)}{chr(97 + k)}\n" for k in range(10)), "seq2seq"),
], ids=["csv-classify", "txt-lm", "tsv-tag", "tsv-seq2seq"])
def test_a_given_vocabulary_encodes_every_split(tmp_path, name, text, task):
    """``load_data(..., vocab=V)`` (how a run reads another file) encodes every split with
    V: a token of V that the file's own training part lacks keeps its id, not ``<unk>``.
    Each token here occurs once (lm: val and test have letters of their own), so a
    vocabulary built from the training part would leave val and test all ``<unk>``.
    Catches: the vocabulary ignored, or rebuilt from the file's training part."""
    from lstmlite.data import Vocabulary
    from lstmlite.data.pairs import SEQ2SEQ_TOKENS

    path = _write(tmp_path / name, text)
    options = {"task": task, "seq_len": 4} if task == "lm" else {"task": task}
    own = load_data(path, **options)
    specials = list(SEQ2SEQ_TOKENS) if task == "seq2seq" else ["<pad>", "<unk>"]
    tokens = sorted({t for t in own.vocab.tokens if t not in specials}
                    | {f"{p}{k}" for p in "wv" for k in range(10)} | set("abcdefghijklmnopqrstuvwxyz"))
    vocab = Vocabulary([*specials, *tokens])
    data = load_data(path, vocab=vocab, **options)
    assert data.vocab is vocab
    for part, split in data.splits.items():
        assert len(split) > 0, part
        ids = split.x if task != "seq2seq" else np.concatenate([split.x, split.y], axis=1)
        assert not (ids == 1).any(), f"{part}: a token of the given vocabulary became <unk>"


@pytest.mark.parametrize("line, task, hint", [
    ('{"tokens": ["the", "cat"], "tags": ["DET", "NOUN"]}', None, "train with --task tag"),
    ('{"text": "the cat", "label": "animal"}', "tag", "train without --task tag"),
])
def test_jsonl_of_the_other_task_says_which_task_reads_it(tmp_path, line, task, hint):
    """A JSONL tagging file given without --task tag (a .jsonl defaults to classify), or a
    classification file given with it, is refused with the task that reads it, as an .npz
    or a pairs .tsv of the other task is. Catches: "no key 'text' (keys: tokens, tags)"
    alone, which leaves the user renaming keys."""
    path = _write(tmp_path / "d.jsonl", (line + "\n") * 10)
    with pytest.raises(DataError, match=rf"d\.jsonl: line 1: .*; .*{hint}$"):
        load_data(path, **({"task": task} if task else {}))


# ---------------------------------------------------------------- options a source never reads
def _option_files(tmp_path: Path) -> dict[str, tuple[str, dict]]:
    rng = np.random.default_rng(0)
    words = [f"w{int(k)}" for k in rng.zipf(1.5, size=400) % 12]
    # 1-5 frequent words and a word of its own (min_freq shows) a row
    rows = [(" ".join(words[k * 5:(k + 1) * 5 - k % 3] + [f"r{k}"]), "ab"[k % 2]) for k in range(60)]
    x = rng.normal(size=(30, 6, 2))
    np.savez(tmp_path / "f.npz", x=x, y=(x[:, 0, 0] > 0).astype(int))
    np.save(tmp_path / "s.npy", np.sin(np.arange(200) / 3) + rng.normal(size=200) * 0.1)
    tag = "\n".join("".join(f"{w}\t{'AB'[len(w) % 2]}\n" for w in t.split()) for t, _ in rows)
    pairs = "".join(f"{t}\t{t[::-1]}\n" for t, _ in rows) + "Qj\tjQ\n"  # characters: Q and j are rare
    return {
        "csv": (_write(tmp_path / "r.csv", "text,label\n" + "".join(f"{t},{y}\n" for t, y in rows)), {}),
        "txt": (_write(tmp_path / "c.txt", "xyz" + "".join(words) * 2), {}),  # x, y, z: once each
        "npy": (str(tmp_path / "s.npy"), {}),
        "npz": (str(tmp_path / "f.npz"), {}),
        "tag": (_write(tmp_path / "t.tsv", tag), {"task": "tag"}),
        "seq2seq": (_write(tmp_path / "p.tsv", pairs), {"task": "seq2seq"}),
    }


@pytest.mark.parametrize("source", ["csv", "txt", "npy", "npz", "tag", "seq2seq"])
def test_an_option_the_source_never_reads_is_named_in_a_warning(tmp_path, caplog, source):
    """For each data option set away from its default, the arrays either change (the
    source reads it) or stay byte-identical, and exactly the options that leave them
    identical are named in a warning ("does not apply ... and is ignored").
    Catches: --data.seq_len=50 on a text classifier (or max_len on an .npz, label_level
    on a CSV, ...) accepted and ignored without a word, and a warning for an option that
    does shape the arrays."""
    path, base = _option_files(tmp_path)[source]
    options = {"seq_len": 5, "horizon": 3, "season": 2, "max_len": 2, "max_vocab": 4, "min_freq": 3,
               "label_level": "fine", "n_features": 13}

    def arrays(data):
        return [a for s in data.splits.values() for a in (s.x, s.y, s.lengths, s.naive) if a is not None]

    reference = arrays(load_data(path, **base))
    for name, value in options.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lstmlite.data"):
            changed = arrays(load_data(path, **base, **{name: value}))
        same = len(changed) == len(reference) and all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(changed, reference))
        warned = [r.getMessage() for r in caplog.records if f"option {name}=" in r.getMessage()]
        assert bool(warned) == same, (name, warned, "arrays unchanged" if same else "arrays changed")


@pytest.mark.parametrize("task", [None, "classify"])
def test_a_tsv_of_text_and_label_rows_says_where_classification_rows_go(tmp_path, task):
    """SST-2-style ``sentence<TAB>label`` rows: read as tagging data (a .tsv's default) or
    asked for as classification, the refusal says to give them as .csv/.jsonl. Catches:
    advice pointing at seq2seq only, or none ("'tsv' files feed task 'tag' or 'seq2seq',
    not 'classify'")."""
    path = _write(tmp_path / "sst.tsv", "sentence\tlabel\nit is a great movie\t1\nawful film\t0\n")
    with pytest.raises(DataError, match=r"sst\.tsv: .*classification .*\.csv \(or \.jsonl\) with text and label"):
        load_data(path, **({"task": task} if task else {}))


def test_a_semicolon_separated_csv_says_so(tmp_path):
    """A "CSV" saved by Excel in a locale that separates with ';' is refused saying so.
    Catches: "no column 'text' in the header (columns: text;label)" alone, which leaves
    the user renaming columns that are already right."""
    path = _write(tmp_path / "excel.csv", "text;label\ngood movie;pos\nbad movie;neg\n")
    with pytest.raises(DataError, match=r"excel\.csv: line 1: no column 'text' .*looks ';'-separated: save the file "
                                        r"comma-separated"):
        load_data(path)
