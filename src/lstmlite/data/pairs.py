"""Sequence-to-sequence data (``--task seq2seq``): source/target text pairs.

File: a ``.tsv`` with one ``source<TAB>target`` pair a line (``#`` comment lines and
blank lines skipped; further columns are an error, so a CoNLL tagging file is not
silently read as pairs). ``lstmlite data make text-norm`` writes such a file.

Tokens: characters (``level="char"``, the default) or whitespace-separated words
(``level="word"``, case kept). One vocabulary, built from the training sources and
targets, serves both sides; its first four ids are ``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2,
``</s>`` 3 (:data:`lstmlite.nn.seq2seq.SEQ2SEQ_SPECIALS`).

Arrays: x (N, T) int64 source ids (0 = padding), lengths (N,) source lengths, y (N, S)
int64 target ids followed by ``</s>`` (3) and 0-padded. ``max_len`` cuts sources and
targets to that many tokens.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "pairs.tsv")
    >>> _ = open(path, "w").write("de>iso 5. März 2024\\t2024-03-05\\n" * 3)
    >>> read_pairs(path)[0]
    ('de>iso 5. März 2024', '2024-03-05')
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .containers import Split, TaskData
from .errors import DataError
from .readers import read_text
from .tag import _split_rows
from .vocab import PAD, PAD_ID, UNK, Vocabulary

if TYPE_CHECKING:
    from .spec import DataSpec

__all__ = ["read_pairs", "build_seq2seq", "pair_tokens", "PairRecords", "SEQ2SEQ_TOKENS"]

PairRecords = list[tuple[str, str]]
#: the specials every seq2seq vocabulary starts with, in id order
SEQ2SEQ_TOKENS = (PAD, UNK, "<s>", "</s>")
_EOS_ID = 3


def read_pairs(path: str | os.PathLike) -> PairRecords:
    """``source<TAB>target`` lines of a TSV file (both sides non-empty)."""
    records: PairRecords = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise DataError(f"{path}: line {number}: expected source<TAB>target (two non-empty columns), "
                            f"got {line[:60]!r}")
        records.append((fields[0], fields[1]))
    if not records:
        raise DataError(f"{path}: no source<TAB>target pairs")
    return records


def pair_tokens(text: str, level: str) -> list[str]:
    """Tokens of one side: its characters, or its whitespace-separated words."""
    return list(text) if level == "char" else text.split()


def build_seq2seq(name: str, spec: DataSpec, records: PairRecords, test_records: PairRecords | None = None, *,
                  vocab: Vocabulary | None = None) -> TaskData:
    """TaskData of the seq2seq task from text pairs (see the module doc); ``vocab`` (a
    trained run's, starting with :data:`SEQ2SEQ_TOKENS`) encodes both sides instead of
    one built from the training pairs."""
    train_idx, val_idx, test_idx = _split_rows(len(records), spec, test_records is not None)
    level = spec.level
    train_rows = [records[i] for i in train_idx]
    if vocab is None:
        counted = Vocabulary.build((pair_tokens(side, level) for pair in train_rows for side in pair),
                                   max(spec.max_vocab - 2, 2), spec.min_freq)
        vocab = Vocabulary([*SEQ2SEQ_TOKENS, *(t for t in counted.tokens[2:] if t not in SEQ2SEQ_TOKENS)])
    elif vocab.tokens[:len(SEQ2SEQ_TOKENS)] != list(SEQ2SEQ_TOKENS):
        raise DataError(f"{name}: a seq2seq vocabulary starts with {', '.join(SEQ2SEQ_TOKENS)}")
    rows_all = [*records, *(test_records or [])]
    src_len = max(len(pair_tokens(s, level)) for s, _ in rows_all)
    tgt_len = max(len(pair_tokens(t, level)) for _, t in rows_all)
    if spec.max_len is not None:
        src_len, tgt_len = min(src_len, spec.max_len), min(tgt_len, spec.max_len)

    def make(rows: PairRecords) -> Split:
        x = np.full((len(rows), src_len), PAD_ID, np.int64)
        y = np.full((len(rows), tgt_len + 1), PAD_ID, np.int64)
        lengths = np.zeros(len(rows), np.int64)
        for k, (source, target) in enumerate(rows):
            src = pair_tokens(source, level)[:src_len]
            tgt = pair_tokens(target, level)[:tgt_len]
            x[k, :len(src)] = vocab.encode(src)
            y[k, :len(tgt)] = vocab.encode(tgt)
            y[k, len(tgt)] = _EOS_ID
            lengths[k] = max(len(src), 1)
        return Split(x, y, lengths)

    test = test_records if test_records is not None else [records[i] for i in test_idx]
    if not test:
        raise DataError(f"{name}: no test pairs; raise test_fraction or give test_path")
    return TaskData(name=name, task="seq2seq", train=make(train_rows), val=make([records[i] for i in val_idx]),
                    test=make(test), input_size=0, n_classes=0, class_names=[], vocab=vocab, spec=spec,
                    stats={"max_target_len": int(tgt_len)})
