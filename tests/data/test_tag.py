"""Tagging data (lstmlite.data.tag): CoNLL-style TSV and JSONL, split and encoded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstmlite.data import DataError, load_data
from lstmlite.data.tag import PAD_LABEL, read_tag_jsonl, read_tag_tsv


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


def test_tsv_and_jsonl_read_the_same_sequences(tmp_path):
    rows = _pos_rows(5)
    tsv = tmp_path / "pos.tsv"
    tsv.write_text("# a comment\n" + "".join("".join(f"{w}\t{t}\n" for w, t in zip(*r)) + "\n" for r in rows))
    jsonl = tmp_path / "pos.jsonl"
    jsonl.write_text("".join(json.dumps({"tokens": r[0], "tags": r[1]}) + "\n" for r in rows))
    assert read_tag_tsv(tsv) == rows == read_tag_jsonl(jsonl)


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
