"""Seq2seq data: TSV pairs, the arrays, and text-normalization pairs from Babel whose
written forms Babel's own parsers read back to the ISO side."""

from __future__ import annotations

import datetime
import re

import numpy as np
import pytest

from lstmlite.data import DataError, load_data
from lstmlite.data.pairs import read_pairs
from lstmlite.data.textnorm import LOCALES, make_text_norm, text_norm_pairs


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_pairs_become_arrays(tmp_path):
    path = _write(tmp_path / "p.tsv", "# a comment\nab\tba\n\nabc\tcba\n" * 10)
    data = load_data(str(path), task="seq2seq", seed=1)
    assert data.task == "seq2seq" and data.vocab.tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert sorted(data.vocab.tokens[4:]) == ["a", "b", "c"]
    split = data.train
    for x, y, n in zip(split.x, split.y, split.lengths):
        source = "".join(data.vocab.tokens[i] for i in x[:n])
        end = int(np.argmax(y == 3))
        target = "".join(data.vocab.tokens[i] for i in y[:end])
        assert target == source[::-1]  # the pairs above reverse their source
        assert np.all(x[n:] == 0) and np.all(y[end + 1:] == 0)
    assert data.stats["max_target_len"] == 3 and split.y.shape[1] == 4  # 3 tokens + </s>


def test_pairs_vocabulary_holds_the_training_pairs_characters_only(tmp_path) -> None:
    """Each pair carries a letter of its own (row k: ``"ab" + X_k``), beside the shared a, b:
    the vocabulary after the four specials is exactly the characters of the training pairs
    (read back from train.x and train.y), and the val/test pairs' own letters are <unk>.
    Catches a vocabulary counted over every pair, which leaks val/test characters."""
    letters = [chr(c) for c in range(ord("C"), ord("C") + 20)]
    path = _write(tmp_path / "p.tsv", "".join(f"ab{c}\t{c}ba\n" for c in letters))
    data = load_data(str(path), task="seq2seq", val_fraction=0.2, test_fraction=0.2, seed=0)
    seen = set()
    for x, y, n in zip(data.train.x, data.train.y, data.train.lengths):
        seen |= set(data.vocab.decode(x[:n])) | set(data.vocab.decode(y[: int(np.argmax(y == 3))]))
    assert sorted(data.vocab.tokens[4:]) == sorted(seen) and len(seen - {"a", "b"}) == len(data.train)
    for split in (data.val, data.test):
        assert split.x[:, 2].tolist() == [data.vocab.tokens.index("<unk>")] * len(split)


@pytest.mark.parametrize("text, message", [
    ("a\tb\tc\n", "two non-empty columns"),
    ("a\t\n", "two non-empty columns"),
    ("# only a comment\n", "no source<TAB>target pairs"),
])
def test_bad_pair_files_name_the_line(tmp_path, text, message):
    path = _write(tmp_path / "bad.tsv", text)
    with pytest.raises(DataError, match=message):
        read_pairs(path)


def test_tsv_feeds_tag_or_seq2seq_only(tmp_path):
    path = _write(tmp_path / "p.tsv", "a\tb\n" * 10)
    with pytest.raises(DataError, match="'tag' or 'seq2seq'"):
        load_data(str(path), task="lm")


def test_text_norm_pairs_read_back_with_babel():
    from babel.dates import get_month_names, parse_time
    from babel.numbers import parse_decimal

    pairs = text_norm_pairs(300, seed=3)
    assert len(set(pairs)) > 250  # real variety, not a handful of templates
    seen = set()
    for source, target in pairs:
        direction, text = source.split(" ", 1)
        written, iso = (text, target) if direction.endswith(">iso") else (target, text)
        lang = direction.split(">")[0] if direction.endswith(">iso") else direction.split(">")[1]
        locale = LOCALES[lang]
        seen.add(lang)
        if len(iso) == 10 and iso[4] == "-":  # a date: day, year and the locale's month name
            day = datetime.date.fromisoformat(iso)
            numbers = [int(g) for g in re.findall(r"\d+", written)]
            assert sorted(numbers) == sorted([day.day, day.year])
            months = get_month_names("wide", locale=locale)
            named = [m for m, name in months.items() if re.search(rf"\b{re.escape(name)}\b", written, re.I)]
            assert named == [day.month], (written, iso)
        elif len(iso) == 5 and iso[2] == ":":
            assert parse_time(written, locale=locale, format="short").strftime("%H:%M") == iso
        elif iso[:3] in ("EUR", "USD"):
            # the plain side always has two decimals, as the module doc's "EUR 1234.50":
            # an unpadded 5 cents ("EUR 12.5") reads back as 50 cents
            assert re.fullmatch(r"(EUR|USD) [1-9]\d*\.\d\d", iso), iso
            amount = "".join(c for c in written if c.isdigit() or c in ".,\u202f\xa0 ").strip()
            assert parse_decimal(amount.replace("\xa0", "\u202f").strip(), locale=locale) == \
                parse_decimal(iso[4:], locale="en_US")
        else:
            assert parse_decimal(written, locale=locale) == parse_decimal(iso, locale="en_US")
    assert seen == set(LOCALES)


def test_make_text_norm_is_seeded(tmp_path):
    a = make_text_norm(tmp_path / "a", n=50, seed=7).read_bytes()
    b = make_text_norm(tmp_path / "b", n=50, seed=7).read_bytes()
    assert a == b and a != make_text_norm(tmp_path / "c", n=50, seed=8).read_bytes()
    with pytest.raises(DataError, match="unknown text-norm language"):
        text_norm_pairs(5, languages=("xx",))


@pytest.mark.parametrize("flags, n, languages, seed", [
    ([], 3000, LOCALES, 0),                                   # the defaults data make's --help gives
    (["--n", "20", "--languages", "de,fr", "--seed", "3"], 20, ("de", "fr"), 3),
])
def test_cli_make_text_norm_writes_what_the_api_writes(flags: list[str], n: int, languages: tuple[str, ...],
                                                       seed: int, tmp_path, capsys) -> None:
    """``lstmlite data make text-norm`` writes the bytes make_text_norm writes for the same
    --n, --languages and --seed (default 3000 pairs in every locale, seed 0). Catches another
    default count and --languages ignored."""
    from lstmlite.cli.main import main

    assert main(["data", "make", "text-norm", "--out", str(tmp_path / "cli"), *flags]) == 0
    expected = make_text_norm(tmp_path / "api", n=n, seed=seed, languages=tuple(languages)).read_bytes()
    assert (tmp_path / "cli" / "pairs.tsv").read_bytes() == expected
    assert f"wrote {n} text-normalization pairs" in capsys.readouterr().out


def test_make_text_norm_into_a_folder_with_files_is_refused_and_leaves_them(tmp_path, capsys) -> None:
    """A second ``data make text-norm`` into the same --out overwrote pairs.tsv without a word
    (a user's edited pairs lost); it is refused as ``make spoken-digits`` refuses, the file
    as it was; ``overwrite=True`` replaces it; an empty folder is taken."""
    from lstmlite.cli.main import main

    edited = make_text_norm(tmp_path / "pairs", n=5, seed=1)
    edited.write_text("my\tedit\n", encoding="utf-8")
    assert main(["data", "make", "text-norm", "--out", str(tmp_path / "pairs"), "--n", "7"]) != 0
    assert "folder is not empty" in capsys.readouterr().err
    assert edited.read_text(encoding="utf-8") == "my\tedit\n"
    with pytest.raises(DataError, match="folder is not empty"):
        make_text_norm(tmp_path / "pairs", n=7)
    again = make_text_norm(tmp_path / "pairs", n=7, overwrite=True)
    assert again.read_bytes() == make_text_norm(tmp_path / "fresh", n=7).read_bytes()
    (tmp_path / "empty").mkdir()
    assert make_text_norm(tmp_path / "empty", n=3).exists()


def test_another_file_is_read_in_the_runs_vocabulary(tmp_path):
    from lstmlite.cli.main import main
    from lstmlite.io import load_run
    from lstmlite.train import load_run_data

    train = _write(tmp_path / "a.tsv", "abc\tcba\nbca\tacb\ncab\tbac\n" * 8)
    other = _write(tmp_path / "b.tsv", "cc\tcc\nba\tab\nzz\tzz\n" * 4)  # other frequencies, an unseen 'z'
    assert main(["train", "--data", str(train), "--task", "seq2seq", "--out", str(tmp_path / "run"), "--no-progress",
                 "--train.epochs=1", "--model.hidden_size=8", "--model.embed_dim=4"]) == 0
    run = load_run(tmp_path / "run")
    data = load_run_data(run, str(other))
    tokens = run.vocab["tokens"]
    for split in data.splits.values():
        for x, y, n in zip(split.x, split.y, split.lengths):
            source = "".join(tokens[i] for i in x[:n])
            target = "".join(tokens[i] for i in y[: int(np.argmax(y == 3))])
            assert source.replace("<unk>", "z") == target.replace("<unk>", "z")[::-1]


def test_a_pairs_file_read_as_tagging_data_says_use_seq2seq(tmp_path):
    path = _write(tmp_path / "p.tsv", "de>iso 5. März 2024\t2024-03-05\n" * 5)
    with pytest.raises(DataError, match="--task seq2seq"):
        load_data(str(path))  # a .tsv defaults to the tag task


def test_encode_sources_maps_unknown_tokens_to_unk_and_pads_with_0():
    """Hand-worked ids in a 6-token vocabulary: known chars by their id, unknown ones
    <unk> (1), rows 0-padded, lengths the token counts; an empty text is one <unk>.
    Catches: unknown tokens encoded as padding (0), which the encoder then skips."""
    from lstmlite.seq2seq import encode_sources

    x, n = encode_sources(["abz", "b", ""], ["<pad>", "<unk>", "<s>", "</s>", "a", "b"])
    assert x.tolist() == [[4, 5, 1], [5, 0, 0], [1, 0, 0]] and n.tolist() == [3, 1, 1]


def test_texts_of_drops_the_specials_and_joins_by_level():
    """Hand-worked: ids 0-3 (<pad> <unk> <s> </s>) are dropped, chars are joined with
    nothing and words with one space.
    Catches: </s> (3) kept in the text; words run together."""
    from lstmlite.seq2seq import texts_of

    tokens = ["<pad>", "<unk>", "<s>", "</s>", "a", "bc"]
    rows = [[2, 4, 1, 5, 3, 0], [5, 4, 3]]
    assert texts_of(rows, tokens, "char") == ["abc", "bca"]
    assert texts_of(rows, tokens, "word") == ["a bc", "bc a"]


def test_max_vocab_counts_the_four_specials_and_word_tokens_keep_their_case(tmp_path) -> None:
    """``max_vocab=6`` gives six ids in all: the four seq2seq specials and the two most
    frequent words (hand-counted over the file: "Go" 60, "go" 40, "stop" 20; the train
    split keeps that order), and word level keeps case ("Go" and "go" are two words, as the module doc
    says). Catches max_vocab passed to the counter as is (eight ids: the specials counted
    twice short) and words lowercased as the classify tokeniser does."""
    path = _write(tmp_path / "w.tsv", "Go go\tGo\nGo stop\tgo\n" * 20)
    data = load_data(str(path), task="seq2seq", level="word", max_vocab=6, seed=0)
    counted = {}  # the words the training arrays hold
    for x, y, n in zip(data.train.x, data.train.y, data.train.lengths):
        for i in [*x[:n], *y[:int(np.argmax(y == 3))]]:
            counted[data.vocab.tokens[i]] = counted.get(data.vocab.tokens[i], 0) + 1
    assert data.vocab.tokens == ["<pad>", "<unk>", "<s>", "</s>", "Go", "go"]
    assert set(counted) == {"Go", "go", "<unk>"}  # "stop" is the third word: <unk>


def test_max_len_cuts_sources_and_targets(tmp_path) -> None:
    """``max_len=2`` (the module doc: cuts sources and targets to that many tokens):
    "abcd" → "dcba" becomes the source "ab" and the target "dc" + </s>, in arrays 2 and 3
    wide, and max_target_len is 2. Catches: the targets left uncut (4 tokens + </s>)."""
    path = _write(tmp_path / "p.tsv", "abcd\tdcba\n" * 10)
    data = load_data(str(path), task="seq2seq", max_len=2, seed=0)
    tokens = data.vocab.tokens
    assert data.train.x.shape[1] == 2 and data.train.y.shape[1] == 3 and data.stats["max_target_len"] == 2
    for x, y, n in zip(data.train.x, data.train.y, data.train.lengths):
        assert [tokens[i] for i in x[:n]] == ["a", "b"]
        assert [tokens[i] for i in y] == ["d", "c", "</s>"]


def test_a_test_file_longer_than_the_training_pairs_is_read_whole(tmp_path) -> None:
    """A test file (``test_path``) whose pair is longer than every training pair: its
    source and target are kept whole (the arrays are as wide as the longest pair of both
    files) and max_target_len counts it. Catches: widths taken from the training file
    alone, which cuts the test pairs silently."""
    train = _write(tmp_path / "train.tsv", "ab\tba\nba\tab\n" * 5)
    test = _write(tmp_path / "test.tsv", "abba\tbaab\nab\tba\n")
    data = load_data(str(train), task="seq2seq", test_path=str(test), seed=0)
    tokens = data.vocab.tokens
    x, y, n = data.test.x[0], data.test.y[0], data.test.lengths[0]
    assert "".join(tokens[i] for i in x[:n]) == "abba"
    assert [tokens[i] for i in y] == ["b", "a", "a", "b", "</s>"]
    assert data.stats["max_target_len"] == 4


def test_encode_sources_splits_words_at_word_level():
    """Hand-worked ids at ``level="word"``: whitespace-separated words, each one id
    (an unknown word <unk>), rows 0-padded. Catches: level ignored (a word vocabulary
    read character by character: every source <unk>s)."""
    from lstmlite.seq2seq import encode_sources

    x, n = encode_sources(["go  stop", "stop", "halt go"], ["<pad>", "<unk>", "<s>", "</s>", "go", "stop"], "word")
    assert x.tolist() == [[4, 5], [5, 0], [1, 4]] and n.tolist() == [2, 1, 2]


def test_a_run_vocabulary_without_the_seq2seq_specials_is_refused(tmp_path) -> None:
    """A vocabulary given to encode the pairs (a run's) must start <pad> <unk> <s> </s>:
    one that does not (a text classifier's) is a DataError, since its ids 2 and 3 would be
    read as <s> and </s>. Catches: the check dropped (pairs encoded with tokens for BOS/EOS)."""
    from lstmlite.data.vocab import Vocabulary

    path = _write(tmp_path / "p.tsv", "ab\tba\n" * 6)
    with pytest.raises(DataError, match="a seq2seq vocabulary starts with <pad>, <unk>, <s>, </s>"):
        load_data(str(path), task="seq2seq", vocab=Vocabulary(["<pad>", "<unk>", "a", "b"]))


def test_literal_special_tokens_in_the_pairs_are_not_counted_twice(tmp_path) -> None:
    """Word-level pairs that spell "<s>" and "</s>" as words load: the vocabulary holds each
    special once (ids 2 and 3, where the words map). Catches: the counted words added after
    the specials unfiltered (a vocabulary with "</s>" twice: a ValueError on load)."""
    path = _write(tmp_path / "w.tsv", "<s> go </s>\tgo\ngo\t</s> go\n" * 6)
    data = load_data(str(path), task="seq2seq", level="word", seed=0)
    assert data.vocab.tokens == ["<pad>", "<unk>", "<s>", "</s>", "go"]


def test_the_docstring_examples_hold():
    """The examples in lstmlite.data.pairs's docstrings are run (nothing else runs them), so they
    stay true of the code."""
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module("lstmlite.data.pairs")).failed == 0
