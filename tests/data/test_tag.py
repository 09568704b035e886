"""Tagging data (lstmlite.data.tag): CoNLL-style TSV and JSONL, split and encoded."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from lstmlite.data import DataError, DataSpec, load_data
from lstmlite.data.tag import PAD_LABEL, build_frame_tagging, build_tagging, read_tag_jsonl, read_tag_tsv


def _pos_rows(n: int = 40) -> list[tuple[list[str], list[str]]]:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(n):
        tokens, tags = ["the"], ["DET"]
        if rng.random() < 0.5:
            tokens, tags = tokens + ["big"], tags + ["ADJ"]
        tokens, tags = tokens + [str(rng.choice(["cat", "dog"])), "runs"], tags + ["NOUN", "VERB"]
        rows.append((tokens, tags))
    return rows


@pytest.mark.parametrize("separator", ["\n", "  \n", "\t\n", "\r\n"], ids=["empty", "spaces", "tab", "crlf"])
def test_tsv_and_jsonl_read_the_same_sequences(tmp_path, separator: str) -> None:
    """A CoNLL file and a JSONL file of the same rows read alike; a separator line that is
    empty or holds only whitespace ends a sequence. Catches a reader that ends sequences
    only at truly empty lines (a line of spaces then fails as a token without a label)."""
    rows = _pos_rows(5)
    tsv = tmp_path / "pos.tsv"
    tsv.write_text("# a comment\n" + "".join("".join(f"{w}\t{t}\n" for w, t in zip(*r)) + separator for r in rows))
    jsonl = tmp_path / "pos.jsonl"
    jsonl.write_text("".join(json.dumps({"tokens": r[0], "tags": r[1]}) + "\n" for r in rows))
    assert read_tag_tsv(tsv) == rows == read_tag_jsonl(jsonl)


def test_tokens_aligned_in_columns_read_without_their_spaces(tmp_path) -> None:
    """``the   \tDET`` (columns padded with spaces, as aligned CoNLL files are) reads the
    token ``the``: kept with its spaces it was another word than ``the``."""
    rows = _pos_rows(3)
    tsv = tmp_path / "pos.tsv"
    tsv.write_text("".join("".join(f"{w:<6}\t {t}\n" for w, t in zip(*r)) + "\n" for r in rows))
    assert read_tag_tsv(tsv) == rows


def test_load_tag_data_shapes_padding_and_labels(tmp_path):
    rows = _pos_rows()
    path = tmp_path / "pos.tsv"
    path.write_text("".join("".join(f"{w}\t{t}\n" for w, t in zip(*r)) + "\n" for r in rows))
    data = load_data(str(path))
    assert data.task == "tag" and data.spec.format == "tsv"
    assert data.class_names == ["ADJ", "DET", "NOUN", "VERB"]
    assert len(data.train) + len(data.val) + len(data.test) == len(rows)
    split = data.train
    assert split.x.shape == split.y.shape == (len(split), 4)  # the longest row: DET ADJ NOUN VERB
    for k in range(len(split)):
        n = split.lengths[k]
        assert np.all(split.y[k, n:] == PAD_LABEL) and np.all(split.x[k, n:] == 0)
        assert np.all(split.y[k, :n] >= 0)
        # token and label stay aligned: "the" is always DET
        the = data.vocab.id("the")
        assert np.all(split.y[k, :n][split.x[k, :n] == the] == data.class_names.index("DET"))
    again = load_data(str(path))
    assert np.array_equal(again.test.x, data.test.x)  # seeded split


def test_jsonl_tag_needs_task_tag_and_equal_lengths(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"tokens": ["a", "b"], "tags": ["X"]}) + "\n")
    with pytest.raises(DataError, match="same length"):
        load_data(str(path), task="tag")


def test_label_seen_only_outside_train_is_an_error(tmp_path):
    rows = _pos_rows(30)
    path = tmp_path / "pos.tsv"
    test = tmp_path / "test.tsv"
    path.write_text("".join("".join(f"{w}\t{t}\n" for w, t in zip(*r)) + "\n" for r in rows))
    test.write_text("the\tDET\ncat\tINTJ\n\n")
    with pytest.raises(DataError, match="INTJ"):
        load_data(str(path), test_path=str(test))


# ----- frames with a label per step (.npz) ---------------------------------------------------
def _frames_npz(path, n=20, steps=8, features=3, seed=0, lengths=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=5.0, scale=2.0, size=(n, steps, features))
    y = np.where(x[:, :, 0] > 5.0, "up", "down")
    arrays = {"x": x, "y": y}
    if lengths:
        arrays["lengths"] = rng.integers(3, steps + 1, size=n)
    np.savez(path, **arrays)
    return arrays


def test_frame_tags_from_npz_are_normalised_by_training_frames_and_padded(tmp_path):
    arrays = _frames_npz(tmp_path / "f.npz")
    data = load_data(str(tmp_path / "f.npz"), task="tag", val_fraction=0.2, test_fraction=0.2)
    assert data.task == "tag" and data.vocab is None and data.input_size == 3
    assert data.class_names == ["down", "up"]
    train = data.train
    assert train.x.dtype == np.float32 and train.x.shape[2] == 3
    valid = np.arange(train.x.shape[1])[None, :] < train.lengths[:, None]
    # the training frames (valid steps only) are normalised to mean 0, std 1 per feature
    frames = train.x[valid]
    np.testing.assert_allclose(frames.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(frames.std(0), 1.0, atol=1e-4)
    assert np.all(train.x[~valid] == 0) and np.all(train.y[~valid] == PAD_LABEL)
    # labels follow their frames: "up" exactly where the raw feature 0 was above 5
    raw0 = train.x[..., 0] * data.stats["std"][0] + data.stats["mean"][0]
    np.testing.assert_array_equal(train.y[valid], (raw0[valid] > 5.0).astype(np.int64))
    total = sum(len(s) for s in data.splits.values())
    assert total == len(arrays["x"])


def test_frame_tags_errors_name_the_problem(tmp_path):
    _frames_npz(tmp_path / "f.npz", lengths=False)
    with pytest.raises(DataError, match="label per step .* --task tag"):
        load_data(str(tmp_path / "f.npz"))  # the default task (classify) with per-step labels
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 5, 2)), y=np.zeros(4))
    with pytest.raises(DataError, match=r"a label per step, shape \(4, T\)"):
        load_data(str(tmp_path / "bad.npz"), task="tag")
    np.savez(tmp_path / "one.npz", x=np.ones((6, 5, 2)), y=np.zeros((6, 5), np.int64))
    with pytest.raises(DataError, match="one label only"):
        load_data(str(tmp_path / "one.npz"), task="tag")


def _row_ids(data, n_rows: int) -> dict[str, list[int]]:
    """Each split's rows as the k that row k of ``_numbered_frames`` holds (every frame = k)."""
    out = {}
    for name, split in data.splits.items():
        raw = split.x[:, 0, 0].astype(np.float64) * data.stats["std"][0] + data.stats["mean"][0]
        out[name] = np.rint(raw).astype(int).tolist()
        assert all(0 <= k < n_rows for k in out[name])
    return out


def _numbered_frames(n: int = 40) -> tuple[list[np.ndarray], list[list[str]]]:
    return [np.full((3, 1), float(k)) for k in range(n)], [["a", "b", "a"] for _ in range(n)]


def test_sequence_split_is_disjoint_complete_sized_and_seeded() -> None:
    """Rows (recognisable by their constant value) land in exactly one split (Counter
    oracle), val and test have round(fraction · N) rows, the same seed gives the same split
    and another seed another one. Catches test rows drawn from the start of the
    permutation (overlapping val, other rows lost) and a seed that is ignored."""
    series, labels = _numbered_frames()

    def split(seed: int) -> dict[str, list[int]]:
        spec = DataSpec("toy.npz", task="tag", val_fraction=0.2, test_fraction=0.1, seed=seed)
        return _row_ids(build_frame_tagging("toy", spec, series, labels), len(series))

    ids = split(0)
    assert Counter(ids["train"] + ids["val"] + ids["test"]) == Counter(range(len(series)))
    assert (len(ids["val"]), len(ids["test"])) == (8, 4)
    assert split(0) == ids
    assert split(1) != ids


def test_tagging_vocabulary_holds_the_training_rows_tokens_only() -> None:
    """Each row has a token of its own (``w<k>``) beside shared ones: the vocabulary is
    exactly the tokens of the training rows (read back from train.x), and the val/test rows'
    own tokens become ``<unk>``. Catches a vocabulary counted over every row, which leaks
    val/test tokens into training ids."""
    records = [(["the", f"w{k}", "runs"], ["DET", "NOUN", "VERB"]) for k in range(30)]
    data = build_tagging("toy", DataSpec("toy.tsv", task="tag", val_fraction=0.2, test_fraction=0.2), records)
    train_tokens = {t for row, n in zip(data.train.x, data.train.lengths) for t in data.vocab.decode(row[:n])}
    assert set(data.vocab.tokens[2:]) == train_tokens
    assert len([t for t in train_tokens if t.startswith("w")]) == len(data.train)
    for split in (data.val, data.test):
        assert split.x[:, 1].tolist() == [data.vocab.id("<unk>")] * len(split)


def test_max_len_cuts_every_row_to_its_first_tokens_and_labels() -> None:
    """With ``max_len=2`` the arrays are 2 wide and each row holds its first two tokens with
    their own labels (hand-written rows of 3-4 tokens, "the" always DET and "runs" always
    VERB). Catches max_len ignored by the tagging builder."""
    records = [(["the", "big", "cat", "runs"], ["DET", "ADJ", "NOUN", "VERB"]),
               (["runs", "the", "dog"], ["VERB", "DET", "NOUN"])] * 10
    data = build_tagging("toy", DataSpec("toy.tsv", task="tag", max_len=2, val_fraction=0.2, test_fraction=0.2),
                         records)
    for split in data.splits.values():
        assert split.x.shape == split.y.shape == (len(split), 2) and split.lengths.tolist() == [2] * len(split)
        for x, y in zip(split.x, split.y):
            tokens = data.vocab.decode(x)
            assert tokens in (["the", "big"], ["runs", "the"])
            expected = ["DET", "ADJ"] if tokens[0] == "the" else ["VERB", "DET"]
            assert [data.class_names[k] for k in y] == expected


def test_tokens_keep_their_case_from_file_to_ids() -> None:
    """Tag tokens are used as written (a capital is a feature of named entities): "Paris"
    and "paris" are two vocabulary entries and every row's ids decode back to its tokens
    exactly. Catches tokens lowercased when encoded (the vocabulary keeps "Paris", the
    lookup asks for "paris")."""
    rows = [(["Paris", "is", "big"], ["LOC", "O", "O"]), (["paris", "is", "big"], ["O", "O", "O"])] * 20
    data = build_tagging("toy", DataSpec("toy.tsv", task="tag", seed=0), rows)
    assert {"Paris", "paris"} <= set(data.vocab.tokens)
    for split in data.splits.values():
        for x, n in zip(split.x, split.lengths):
            assert data.vocab.decode(x[:n]) in (["Paris", "is", "big"], ["paris", "is", "big"])
    decoded = [data.vocab.decode(x[:1])[0] for x in data.train.x]
    labels = [data.class_names[y[0]] for y in data.train.y]
    assert all((token == "Paris") == (label == "LOC") for token, label in zip(decoded, labels))


def test_npz_frame_labels_past_each_length_are_ignored(tmp_path) -> None:
    """``y`` values after a row's ``lengths`` are padding of any value (the reader's doc):
    here 7, never a label of a valid step, so the classes are the two used ones and each
    row's labels are its first ``length`` values (hand-made rows). Catches the reader
    keeping the whole row of y, which makes "7" a class."""
    from lstmlite.data.readers import read_npz_tags

    x = np.zeros((4, 5, 1))
    y = np.array([[0, 1, 7, 7, 7], [1, 1, 0, 7, 7], [0, 0, 0, 0, 1], [1, 7, 7, 7, 7]])
    np.savez(tmp_path / "f.npz", x=x, y=y, lengths=np.array([2, 3, 5, 1]))
    series, labels = read_npz_tags(tmp_path / "f.npz")
    assert [len(s) for s in series] == [2, 3, 5, 1]
    assert labels == [["0", "1"], ["1", "1", "0"], ["0", "0", "0", "0", "1"], ["1"]]


def test_a_split_that_would_leave_train_empty_is_refused():
    """2 rows with val and test 0.4 each: round(0.8) = 1 row each, none left to train on.
    Refused as too few (tagging, seq2seq and CTC share the split). Catches the check made
    `< 0`: the empty train split then failed later as "one label only", or built a seq2seq
    vocabulary of its 4 specials."""
    from lstmlite.data.tag import _split_rows

    with pytest.raises(DataError, match="2 sequences are too few"):
        _split_rows(2, DataSpec("toy.tsv", task="tag", val_fraction=0.4, test_fraction=0.4), False)
    train, val, test = _split_rows(3, DataSpec("toy.tsv", task="tag", val_fraction=0.4, test_fraction=0.4), False)
    assert (len(train), len(val), len(test)) == (1, 1, 1)
